//! Operator use cases on a store: erasing a whole client, moving every client to another
//! embedding model (`visage reembed`), and the read-only view the audit and token commands
//! read beside a running server.

use std::sync::Arc;

use anyhow::Context;
use store::sqlite::SqliteReadOnly;
use store::{ClientErasure, ClientId, OperatorReads, PoolOptions, PostgresStore};

use crate::open::{open_store, Access, StoreConfig, INDEX_SNAPSHOT};
use crate::reembed::{move_every_client, Reembedded};

/// Moves every client of the store to `pipeline`'s model from the kept crops (see
/// `reembed`), with the server stopped (on the embedded store, this takes the data directory
/// for itself and erases a stopped server's index snapshot) or beside PostgreSQL nodes
/// (which must load both models meanwhile: `--reembed-from`).
pub async fn reembed(
    config: &StoreConfig,
    pipeline: Arc<vision::Pipeline>,
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Reembedded> {
    let opened = open_store(config, Access::Exclusive).await?;
    let done = move_every_client(&*opened.store, &pipeline, workers, progress).await?;
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

/// Erases every person, face, thumbnail and collection of `client` (see
/// `Store::erase_client`). On the embedded store this takes the data directory for itself (a
/// running server would keep the client's faces in its in-memory index), and the index
/// snapshot a stopped server left, which holds the client's quantised faces, is erased too.
/// On PostgreSQL, where nodes keep no faces in memory, it runs beside them and `VACUUM`s
/// afterwards so the rows' bytes leave the table files now.
pub async fn erase_client(
    config: &StoreConfig,
    client: &ClientId,
) -> anyhow::Result<ClientErasure> {
    let opened = open_store(config, Access::Exclusive).await?;
    let erased = opened
        .store
        .erase_client(client)
        .await
        .context("erasing the client")?;
    match opened.postgres() {
        Some(pg) => pg
            .vacuum()
            .await
            .context("VACUUM after the erasure (the rows are gone; run VACUUM again)")?,
        None => {
            let snapshot = config.data_dir.join(INDEX_SNAPSHOT);
            index::erase_snapshot(&snapshot)
                .with_context(|| format!("erasing {}", snapshot.display()))?;
        }
    }
    Ok(erased)
}

/// The audit log and issued tokens of the store `config` names, read without disturbing a
/// running server: a read-only connection per read on the embedded store, a small pool on
/// PostgreSQL.
pub async fn operator_reads(config: &StoreConfig) -> anyhow::Result<Arc<dyn OperatorReads>> {
    match &config.database {
        Some(url) => {
            let options = PoolOptions {
                max_size: 2,
                ..PoolOptions::default()
            };
            let pg = PostgresStore::connect(url, options)
                .await
                .context("connecting to PostgreSQL")?;
            Ok(Arc::new(pg))
        }
        None => {
            let dir = config.data_dir.clone();
            let view = tokio::task::spawn_blocking(move || SqliteReadOnly::open(&dir))
                .await
                .context("opening the store")?
                .with_context(|| format!("reading {}", config.data_dir.display()))?;
            Ok(Arc::new(view))
        }
    }
}
