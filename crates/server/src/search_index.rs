//! Where 1:N search runs. Embedded (SQLite): an in-memory gallery on this node, refreshed
//! after every committed change. PostgreSQL: pgvector in the database, so that every node
//! sees every committed enrolment and erasure on its very next request; nodes keep no copy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use index::{Mode, SearchOutcome, SearchRequest, SyncedGallery};
use store::{ClientId, CollectionId, PersonId, PostgresStore};

use crate::cpu::CpuPool;
use crate::error::ApiResult;

#[derive(Clone)]
pub enum SearchIndex {
    Memory(Arc<SyncedGallery>),
    Database(Arc<Database>),
}

/// PostgreSQL, and whether persons were erased since the last `VACUUM`.
pub struct Database {
    pub store: Arc<PostgresStore>,
    erased: AtomicBool,
}

impl Database {
    pub fn new(store: Arc<PostgresStore>) -> Arc<Self> {
        Arc::new(Database {
            store,
            erased: AtomicBool::new(false),
        })
    }

    /// Erased rows keep their bytes in the table files until `VACUUM`: run it at most once
    /// per `every`, and only after erasures (cheap then, and never on an idle database).
    pub fn spawn_vacuum(self: &Arc<Self>, every: Duration) {
        let db = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(db) = db.upgrade() else { return };
                if db.erased.swap(false, Ordering::SeqCst) {
                    if let Err(e) = db.store.vacuum().await {
                        db.erased.store(true, Ordering::SeqCst);
                        tracing::warn!(error = %e, "VACUUM after erasures failed; retrying later");
                    }
                }
            }
        });
    }
}

/// One search, owned (it crosses to the CPU pool).
pub struct Query {
    pub probe: Vec<f32>,
    pub collection: Option<CollectionId>,
    pub mode: Mode,
    pub min_cosine: f32,
    pub max_results: usize,
}

impl Query {
    fn request(&self) -> SearchRequest<'_> {
        SearchRequest {
            probe: &self.probe,
            collection: self.collection.as_ref(),
            mode: self.mode,
            min_cosine: self.min_cosine,
            max_results: self.max_results,
        }
    }
}

impl SearchIndex {
    pub async fn search(
        &self,
        cpu: &CpuPool,
        client: &ClientId,
        q: Query,
    ) -> ApiResult<SearchOutcome> {
        match self {
            SearchIndex::Memory(gallery) => {
                let started = std::time::Instant::now();
                let q = Arc::new(q);
                let (g, c, job) = (gallery.clone(), client.clone(), q.clone());
                let found = cpu
                    .run(move || Ok(g.candidates(&c, &job.request())))
                    .await?;
                let scanned = started.elapsed();
                let outcome = gallery
                    .rescore(client, &found, &q.probe, q.min_cosine, q.max_results)
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
            SearchIndex::Database(db) => {
                let db = &db.store;
                let collections = q.collection.as_ref().map(std::slice::from_ref);
                let exact = q.mode == Mode::Exact;
                let (found, faces_searched) = db
                    .search(client, collections, &q.probe, q.max_results, exact)
                    .await?;
                Ok(SearchOutcome {
                    hits: found
                        .into_iter()
                        .filter(|(_, cosine)| *cosine >= q.min_cosine)
                        .map(|(person, cosine)| index::Hit { person, cosine })
                        .collect(),
                    faces_searched: faces_searched as usize,
                })
            }
        }
    }

    /// After a committed change to these persons (nothing to do on PostgreSQL).
    pub async fn refresh_persons(&self, client: &ClientId, ids: &[PersonId]) -> store::Result<()> {
        match self {
            SearchIndex::Memory(g) => g.refresh_persons(client, ids).await,
            SearchIndex::Database(_) => Ok(()),
        }
    }

    pub async fn refresh_collection(
        &self,
        client: &ClientId,
        collection: &CollectionId,
        now_listed: &[PersonId],
    ) -> store::Result<()> {
        match self {
            SearchIndex::Memory(g) => g.refresh_collection(client, collection, now_listed).await,
            SearchIndex::Database(_) => Ok(()),
        }
    }

    /// After an erasure.
    pub async fn forget_person(&self, client: &ClientId, id: &PersonId) {
        match self {
            SearchIndex::Memory(g) => g.forget_person(client, id).await,
            SearchIndex::Database(db) => db.erased.store(true, Ordering::SeqCst),
        }
    }
}
