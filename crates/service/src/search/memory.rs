//! The embedded backend: the in-memory gallery of `crates/index`, kept in step with the
//! SQLite store, saved as a snapshot at a clean shutdown. One gallery per model served: the
//! running model's, and while clients move to it, one per previous model (each holds only
//! its model's faces, so a client's persons leave one and join the other as it moves).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use index::{SearchOutcome, SyncedGallery};
use store::{ClientId, CollectionId, PersonId};

use super::{IndexStats, Query, SearchBackend};
use crate::cpu::CpuPool;
use crate::error::{Error, Result};

pub(crate) struct MemoryBackend {
    /// The running model's.
    gallery: Arc<SyncedGallery>,
    previous: Vec<Arc<SyncedGallery>>,
    cpu: CpuPool,
    /// Where the gallery is saved at shutdown and read at the next start.
    snapshot: PathBuf,
}

impl MemoryBackend {
    pub fn new(
        gallery: SyncedGallery,
        previous: Vec<SyncedGallery>,
        cpu: CpuPool,
        snapshot: PathBuf,
    ) -> Self {
        MemoryBackend {
            gallery: Arc::new(gallery),
            previous: previous.into_iter().map(Arc::new).collect(),
            cpu,
            snapshot,
        }
    }

    /// The gallery of `model`'s faces.
    fn gallery(&self, model: &str) -> Result<&Arc<SyncedGallery>> {
        self.all()
            .find(|g| g.model() == model)
            .ok_or_else(|| Error::ModelNotServed {
                model: model.to_owned(),
            })
    }

    fn all(&self) -> impl Iterator<Item = &Arc<SyncedGallery>> {
        std::iter::once(&self.gallery).chain(&self.previous)
    }

    fn log_refresh_failure(result: store::Result<()>) {
        if let Err(e) = result {
            tracing::error!(error = %e, "search index refresh failed");
        }
    }
}

#[async_trait]
impl SearchBackend for MemoryBackend {
    async fn search(&self, client: &ClientId, query: Query) -> Result<SearchOutcome> {
        let started = std::time::Instant::now();
        let query = Arc::new(query);
        let gallery = self.gallery(&query.model)?;
        let (g, c, job) = (gallery.clone(), client.clone(), query.clone());
        let found = self
            .cpu
            .run(client, move || Ok(g.candidates(&c, &job.request())))
            .await?;
        let scanned = started.elapsed();
        let outcome = gallery
            .rescore(
                client,
                &found,
                &query.probe,
                query.min_cosine,
                query.max_results,
            )
            .await?;
        tracing::debug!(
            faces = found.faces_searched,
            graph = found.used_graph,
            candidates = found.candidates.len(),
            scan_ms = scanned.as_secs_f64() * 1e3,
            rescore_ms = (started.elapsed() - scanned).as_secs_f64() * 1e3,
            "search"
        );
        Ok(outcome)
    }

    /// Every probe's candidates in one CPU-pool job (one queue slot, not one per face), then
    /// each re-scored.
    async fn search_many(
        &self,
        client: &ClientId,
        queries: Vec<Query>,
    ) -> Result<Vec<SearchOutcome>> {
        let started = std::time::Instant::now();
        let galleries = queries
            .iter()
            .map(|q| self.gallery(&q.model).cloned())
            .collect::<Result<Vec<_>>>()?;
        let queries = Arc::new(queries);
        let (gs, c, jobs) = (galleries.clone(), client.clone(), queries.clone());
        let found = self
            .cpu
            .run(client, move || {
                Ok(jobs
                    .iter()
                    .zip(&gs)
                    .map(|(q, g)| g.candidates(&c, &q.request()))
                    .collect::<Vec<_>>())
            })
            .await?;
        let scanned = started.elapsed();
        let mut outcomes = Vec::with_capacity(found.len());
        for ((query, found), gallery) in queries.iter().zip(&found).zip(&galleries) {
            outcomes.push(
                gallery
                    .rescore(
                        client,
                        found,
                        &query.probe,
                        query.min_cosine,
                        query.max_results,
                    )
                    .await?,
            );
        }
        tracing::debug!(
            probes = queries.len(),
            scan_ms = scanned.as_secs_f64() * 1e3,
            rescore_ms = (started.elapsed() - scanned).as_secs_f64() * 1e3,
            "search_many"
        );
        Ok(outcomes)
    }

    async fn persons_changed(&self, client: &ClientId, ids: &[PersonId]) {
        for gallery in self.all() {
            Self::log_refresh_failure(gallery.refresh_persons(client, ids).await);
        }
    }

    async fn collection_changed(
        &self,
        client: &ClientId,
        collection: &CollectionId,
        now_listed: &[PersonId],
    ) {
        for gallery in self.all() {
            Self::log_refresh_failure(
                gallery
                    .refresh_collection(client, collection, now_listed)
                    .await,
            );
        }
    }

    async fn person_erased(&self, client: &ClientId, id: &PersonId) {
        for gallery in self.all() {
            gallery.forget_person(client, id).await;
        }
    }

    async fn stats(&self) -> IndexStats {
        IndexStats {
            faces: self.all().map(|g| g.total_faces() as u64).sum(),
            graph_pending: self.all().map(|g| g.gallery().graph_backlog() as u64).sum(),
            pool: None,
        }
    }

    async fn settle(&self) {
        let galleries: Vec<_> = self.all().cloned().collect();
        let built = tokio::task::spawn_blocking(move || {
            for gallery in galleries {
                while gallery.gallery().build_graphs(10_000) {}
            }
        })
        .await;
        if let Err(e) = built {
            tracing::warn!(error = %e, "building the search graph failed");
        }
    }

    async fn shutdown(&self) {
        // Every request has finished: the gallery mirrors the store, and can be saved for a
        // fast next start.
        match self.gallery.save_snapshot(&self.snapshot).await {
            Ok(true) => tracing::info!("search index saved for the next start"),
            Ok(false) => tracing::warn!("search index not saved: it may differ from the store"),
            Err(e) => tracing::warn!(error = %e, "search index not saved"),
        }
    }
}
