//! Moving clients to another embedding model from the kept face crops: no original photo is
//! needed. A client's crops that another model embedded are embedded by the new one, then
//! all the client's embeddings are replaced in one transaction, so that each client moves
//! from the old model to the new one at once and a search never sees a mixed gallery. Faces
//! enrolled meanwhile are caught by another pass.
//!
//! Two drivers: `visage reembed` (`admin::reembed`: the server stopped, or beside
//! PostgreSQL nodes), and a server that loads previous models ([`BackgroundMove`]), which
//! moves its clients one by one while the previous models keep serving those not moved yet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use store::{ClientId, ClientSwitch, FaceCrop, FaceId, Store};
use vision::Pipeline;

use crate::models::ClientModels;
use crate::search::SearchBackend;

/// Crops read (and embedded) per step; a stop waits for at most one step.
const PAGE: u32 = 64;
/// Passes after the first, for faces enrolled by the old model meanwhile.
const MAX_PASSES: usize = 3;

/// What a re-embedding did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reembedded {
    /// Clients now on the new model.
    pub clients: u64,
    /// Clients left on their model: some of their faces have no kept crop.
    pub clients_without_crops: u64,
    /// Faces now embedded by the new model.
    pub faces: u64,
    /// Bytes of the crops read (their storage cost).
    pub crop_bytes: u64,
    /// Time spent embedding (reading crops included), not committing.
    pub embedding: Duration,
    /// Time the switching transactions took.
    pub committing: Duration,
}

/// Moves every client of `store` not on `pipeline`'s model to it, one after the other, on
/// `workers` threads, with no server using the store's faces (see `admin::reembed`).
pub(crate) async fn move_every_client(
    store: &dyn Store,
    pipeline: &Arc<Pipeline>,
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> anyhow::Result<Reembedded> {
    let model = pipeline.embedder().id.clone();
    store
        .register_model(&model, pipeline.embedder().dimension)
        .await
        .with_context(|| format!("recording embedding model {model}"))?;
    let mut done = Reembedded::default();
    let stop = AtomicBool::new(false);
    for client in store.clients_off_model(&model).await? {
        let mover = ClientMover {
            store,
            pipeline,
            workers,
            serving: None,
            stop: &stop,
        };
        mover.run(&client, &mut done, progress).await?;
    }
    Ok(done)
}

/// What a running server needs told when a client moves: its lock (held from the switch
/// until search has caught up) and its search.
struct Serving<'a> {
    models: &'a ClientModels,
    search: &'a dyn SearchBackend,
}

struct ClientMover<'a> {
    store: &'a dyn Store,
    pipeline: &'a Arc<Pipeline>,
    workers: usize,
    serving: Option<Serving<'a>>,
    stop: &'a AtomicBool,
}

enum Moved {
    /// The client is on the new model; its requests waited at most this long for the
    /// switch and for search to catch up.
    Switched { held: Duration },
    /// Stopped before its switch: the client is still on its model.
    Stopped,
    /// Left on its model: this many faces have no kept crop.
    WithoutCrops(u64),
}

impl ClientMover<'_> {
    /// Moves one client, adding what it did to `done`.
    async fn run(
        &self,
        client: &ClientId,
        done: &mut Reembedded,
        progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<Moved> {
        let model = &self.pipeline.embedder().id;
        let mut embedded: Vec<(FaceId, Vec<f32>)> = Vec::new();
        let mut cursor = 0;
        for _ in 0..=MAX_PASSES {
            let started = Instant::now();
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    return Ok(Moved::Stopped);
                }
                let page = self
                    .store
                    .crops_to_reembed(client, model, cursor, PAGE)
                    .await
                    .context("reading kept crops")?;
                let Some(last) = page.last() else { break };
                cursor = last.cursor;
                done.crop_bytes += page.iter().map(|c| c.png.len() as u64).sum::<u64>();
                let (pipeline, workers) = (self.pipeline.clone(), self.workers);
                let batch =
                    tokio::task::spawn_blocking(move || embed_all(&pipeline, &page, workers))
                        .await
                        .context("re-embedding thread")??;
                embedded.extend(batch);
                progress(done.faces + embedded.len() as u64);
            }
            done.embedding += started.elapsed();
            let held = match &self.serving {
                Some(s) => Some(s.models.locks().exclusive(client).await),
                None => None,
            };
            let switching = Instant::now();
            let switched = self
                .store
                .switch_client_model(client, model, embedded.clone())
                .await
                .context("switching the client's embeddings")?;
            done.committing += switching.elapsed();
            match switched {
                ClientSwitch::Switched { faces, persons } => {
                    if let Some(s) = &self.serving {
                        s.search.persons_changed(client, &persons).await;
                    }
                    drop(held);
                    done.faces += faces;
                    done.clients += 1;
                    return Ok(Moved::Switched {
                        held: switching.elapsed(),
                    });
                }
                ClientSwitch::Missing { without_crop, .. } if without_crop > 0 => {
                    done.clients_without_crops += 1;
                    return Ok(Moved::WithoutCrops(without_crop));
                }
                // Faces enrolled since the crops were read: they come after `cursor`.
                ClientSwitch::Missing { .. } => {}
            }
        }
        anyhow::bail!("faces kept being enrolled while the client moved; it stays on its model")
    }
}

/// The move a server runs in the background: every client not on the running model, one
/// after the other, embedding on one thread so that requests keep the other cores.
pub(crate) struct BackgroundMove {
    stop: Arc<AtomicBool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl BackgroundMove {
    pub fn none() -> Self {
        BackgroundMove {
            stop: Arc::new(AtomicBool::new(false)),
            task: Mutex::new(None),
        }
    }

    /// Starts moving on the current runtime.
    pub fn start(
        store: Arc<dyn Store>,
        search: Arc<dyn SearchBackend>,
        models: Arc<ClientModels>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            move_clients(&*store, &*search, &models, &flag).await;
        });
        BackgroundMove {
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Stops after the client being moved (before its switch, or once search caught up).
    pub async fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "the background re-embedding ended abnormally");
            }
        }
    }
}

async fn move_clients(
    store: &dyn Store,
    search: &dyn SearchBackend,
    models: &ClientModels,
    stop: &AtomicBool,
) {
    let pipeline = models.running().pipeline.clone();
    let model = pipeline.embedder().id.clone();
    let clients = match store.clients_off_model(&model).await {
        Ok(clients) => clients,
        Err(e) => {
            tracing::warn!(error = %e, "listing clients to re-embed failed; restart to retry");
            return;
        }
    };
    tracing::info!(clients = clients.len(), model = %model, "re-embedding clients in the background");
    let started = Instant::now();
    let mut done = Reembedded::default();
    for client in &clients {
        let mover = ClientMover {
            store,
            pipeline: &pipeline,
            workers: 1,
            serving: Some(Serving { models, search }),
            stop,
        };
        match mover.run(client, &mut done, &|_| {}).await {
            Ok(Moved::Switched { held }) => tracing::info!(
                client = %client,
                model = %model,
                held_s = held.as_secs_f64(),
                "client moved to the running model"
            ),
            Ok(Moved::Stopped) => return,
            Ok(Moved::WithoutCrops(faces)) => tracing::warn!(
                client = %client,
                faces,
                "client left on its model: faces enrolled without a kept crop cannot be re-embedded"
            ),
            Err(e) => tracing::warn!(
                client = %client,
                error = format!("{e:#}"),
                "client left on its model; restart to retry"
            ),
        }
    }
    tracing::info!(
        clients = done.clients,
        faces = done.faces,
        seconds = started.elapsed().as_secs_f64(),
        "background re-embedding finished"
    );
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
