//! Moving a gallery to another embedding model from the kept face crops: no original photo
//! is needed. Every crop whose face another model embedded is embedded by the new one (on
//! `workers` threads); then all the new embeddings replace the old ones in one transaction,
//! so each client moves from the old model to the new one at once and a search never sees a
//! mixed gallery. Faces enrolled while it ran (beside a PostgreSQL node) are caught by
//! another pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use store::{FaceCrop, FaceId, Store};
use vision::Pipeline;

use crate::open::{open_store, Access, StoreConfig, INDEX_SNAPSHOT};

/// Crops read per page.
const PAGE: u32 = 256;
/// Passes after the first, for faces enrolled by the old model meanwhile.
const MAX_PASSES: usize = 3;

/// What a re-embedding did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reembedded {
    /// Faces now embedded by the new model.
    pub faces: u64,
    /// Bytes of the crops read (their storage cost).
    pub crop_bytes: u64,
    /// Time spent embedding (reading crops included), not committing.
    pub embedding: Duration,
    /// Time the replacing transactions took.
    pub committing: Duration,
}

/// Re-embeds every face with a kept crop that `pipeline`'s model did not embed. On the
/// embedded store this takes the data directory for itself (a running server holds the old
/// model's faces in memory; restart it with the new `--embedder` afterwards) and erases a
/// stopped server's index snapshot; on PostgreSQL it runs beside the nodes, which find the
/// moved faces once they run the new model.
pub async fn reembed(
    config: &StoreConfig,
    pipeline: Arc<Pipeline>,
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Reembedded> {
    let opened = open_store(config, Access::Exclusive).await?;
    let done = reembed_store(&*opened.store, pipeline, workers, progress).await?;
    match opened.postgres() {
        // The replaced embeddings' old versions are dead tuples until VACUUM.
        Some(pg) => pg.vacuum().await.context("VACUUM after re-embedding")?,
        None => {
            let snapshot = config.data_dir.join(INDEX_SNAPSHOT);
            index::erase_snapshot(&snapshot)
                .with_context(|| format!("erasing {}", snapshot.display()))?;
        }
    }
    Ok(done)
}

/// [`reembed`] on an open store.
pub async fn reembed_store(
    store: &dyn Store,
    pipeline: Arc<Pipeline>,
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Reembedded> {
    let model = pipeline.embedder().id.clone();
    store
        .register_model(&model, pipeline.embedder().dimension)
        .await
        .with_context(|| format!("recording embedding model {model}"))?;
    let mut done = Reembedded::default();
    for _ in 0..=MAX_PASSES {
        let started = Instant::now();
        let mut embedded = Vec::new();
        let mut cursor = 0;
        loop {
            let page = store
                .crops_to_reembed(&model, cursor, PAGE)
                .await
                .context("reading kept crops")?;
            let Some(last) = page.last() else { break };
            cursor = last.cursor;
            done.crop_bytes += page.iter().map(|c| c.png.len() as u64).sum::<u64>();
            let pipeline = pipeline.clone();
            let batch = tokio::task::spawn_blocking(move || embed_all(&pipeline, &page, workers))
                .await
                .context("re-embedding thread")??;
            embedded.extend(batch);
            progress(done.faces + embedded.len() as u64);
        }
        done.embedding += started.elapsed();
        if embedded.is_empty() {
            break;
        }
        let started = Instant::now();
        done.faces += store
            .replace_embeddings(&model, embedded)
            .await
            .context("replacing the embeddings")?;
        done.committing += started.elapsed();
    }
    Ok(done)
}

type NewEmbedding = (FaceId, Vec<f32>);

/// Embeds `crops` on `workers` threads, in order.
fn embed_all(
    pipeline: &Pipeline,
    crops: &[FaceCrop],
    workers: usize,
) -> anyhow::Result<Vec<NewEmbedding>> {
    let chunk = crops.len().div_ceil(workers.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = crops
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> anyhow::Result<Vec<NewEmbedding>> {
                    part.iter()
                        .map(|c| {
                            let e = pipeline
                                .embed_kept_crop(&c.png)
                                .with_context(|| format!("face {}", c.face_id))?;
                            Ok((c.face_id.clone(), e.as_slice().to_vec()))
                        })
                        .collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(crops.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow::anyhow!("a re-embedding thread panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}
