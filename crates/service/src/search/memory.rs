//! The embedded backend: the in-memory gallery of `crates/index`, kept in step with the
//! SQLite store, saved as a snapshot at a clean shutdown.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use index::{SearchOutcome, SyncedGallery};
use store::{ClientId, CollectionId, PersonId};

use super::{IndexStats, Query, SearchBackend};
use crate::cpu::CpuPool;
use crate::error::Result;

pub(crate) struct MemoryBackend {
    gallery: Arc<SyncedGallery>,
    cpu: CpuPool,
    /// Where the gallery is saved at shutdown and read at the next start.
    snapshot: PathBuf,
}

impl MemoryBackend {
    pub fn new(gallery: SyncedGallery, cpu: CpuPool, snapshot: PathBuf) -> Self {
        MemoryBackend {
            gallery: Arc::new(gallery),
            cpu,
            snapshot,
        }
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
        let (gallery, c, job) = (self.gallery.clone(), client.clone(), query.clone());
        let found = self
            .cpu
            .run(client, move || Ok(gallery.candidates(&c, &job.request())))
            .await?;
        let scanned = started.elapsed();
        let outcome = self
            .gallery
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
        let queries = Arc::new(queries);
        let (gallery, c, jobs) = (self.gallery.clone(), client.clone(), queries.clone());
        let found = self
            .cpu
            .run(client, move || {
                Ok(jobs
                    .iter()
                    .map(|q| gallery.candidates(&c, &q.request()))
                    .collect::<Vec<_>>())
            })
            .await?;
        let scanned = started.elapsed();
        let mut outcomes = Vec::with_capacity(found.len());
        for (query, found) in queries.iter().zip(&found) {
            outcomes.push(
                self.gallery
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
        Self::log_refresh_failure(self.gallery.refresh_persons(client, ids).await);
    }

    async fn collection_changed(
        &self,
        client: &ClientId,
        collection: &CollectionId,
        now_listed: &[PersonId],
    ) {
        Self::log_refresh_failure(
            self.gallery
                .refresh_collection(client, collection, now_listed)
                .await,
        );
    }

    async fn person_erased(&self, client: &ClientId, id: &PersonId) {
        self.gallery.forget_person(client, id).await;
    }

    async fn stats(&self) -> IndexStats {
        let gallery = self.gallery.gallery();
        IndexStats {
            faces: gallery.total_faces() as u64,
            graph_pending: gallery.graph_backlog() as u64,
            pool: None,
        }
    }

    async fn settle(&self) {
        let gallery = self.gallery.clone();
        let built =
            tokio::task::spawn_blocking(move || while gallery.gallery().build_graphs(10_000) {})
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
