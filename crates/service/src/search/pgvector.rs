//! The PostgreSQL backend: pgvector in the database. Nodes keep no copy, so there is nothing
//! to refresh after a change; erased rows keep their bytes in the table files until
//! `VACUUM`, which this backend runs after erasures, at most once per interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use index::{Hit, SearchOutcome};
use store::{ClientId, CollectionId, PersonId, PostgresStore};

use super::{IndexStats, Query, SearchBackend};
use crate::error::Result;
use crate::params::SearchMode;

pub(crate) struct PgvectorBackend {
    store: Arc<PostgresStore>,
    /// Whether persons were erased since the last `VACUUM`.
    erased: Arc<AtomicBool>,
}

impl PgvectorBackend {
    /// Starts the VACUUM policy on the current runtime: at most once per `vacuum_every`,
    /// and only after erasures (cheap then, and never on an idle database).
    pub fn new(store: Arc<PostgresStore>, vacuum_every: Duration) -> Self {
        let erased = Arc::new(AtomicBool::new(false));
        let (db, flag) = (Arc::downgrade(&store), Arc::downgrade(&erased));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(vacuum_every).await;
                let (Some(db), Some(flag)) = (db.upgrade(), flag.upgrade()) else {
                    return;
                };
                if flag.swap(false, Ordering::SeqCst) {
                    if let Err(e) = db.vacuum().await {
                        flag.store(true, Ordering::SeqCst);
                        tracing::warn!(error = %e, "VACUUM after erasures failed; retrying later");
                    }
                }
            }
        });
        PgvectorBackend { store, erased }
    }
}

#[async_trait]
impl SearchBackend for PgvectorBackend {
    async fn search(&self, client: &ClientId, query: Query) -> Result<SearchOutcome> {
        let collections = query.collection.as_ref().map(std::slice::from_ref);
        let exact = query.mode == SearchMode::Accurate;
        let (found, faces_searched) = self
            .store
            .search(
                client,
                &query.model,
                collections,
                &query.probe,
                query.max_results,
                exact,
            )
            .await?;
        Ok(SearchOutcome {
            hits: found
                .into_iter()
                .filter(|(_, cosine)| *cosine >= query.min_cosine)
                .map(|(person, cosine)| Hit { person, cosine })
                .collect(),
            faces_searched: faces_searched as usize,
        })
    }

    async fn persons_changed(&self, _: &ClientId, _: &[PersonId]) {}

    async fn collection_changed(&self, _: &ClientId, _: &CollectionId, _: &[PersonId]) {}

    async fn person_erased(&self, _: &ClientId, _: &PersonId) {
        self.erased.store(true, Ordering::SeqCst);
    }

    async fn stats(&self) -> IndexStats {
        let faces = match self.store.approximate_face_count().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "counting faces for metrics failed");
                0
            }
        };
        IndexStats {
            faces,
            graph_pending: 0,
            pool: Some(self.store.pool_usage()),
        }
    }

    async fn shutdown(&self) {
        self.store.close();
    }
}
