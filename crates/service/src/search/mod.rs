//! Where 1:N search runs, behind one seam: [`SearchBackend`]. Embedded (SQLite): an in-memory
//! gallery on this node ([`memory::MemoryBackend`]), refreshed after every committed change.
//! PostgreSQL: pgvector in the database ([`pgvector::PgvectorBackend`]), so that every node
//! sees every committed enrolment and erasure on its very next request; nodes keep no copy.
//!
//! The use cases call the change notifications right after their store writes; nothing else
//! may write persons, so search cannot fall behind the store.

pub(crate) mod memory;
pub(crate) mod pgvector;

use async_trait::async_trait;
use index::SearchOutcome;
use store::{ClientId, CollectionId, PersonId};

use crate::error::Result;
use crate::params::SearchMode;

/// One search, owned (it crosses to the CPU pool).
pub struct Query {
    /// The model that made `probe`: only its faces are compared.
    pub model: String,
    pub probe: Vec<f32>,
    pub collection: Option<CollectionId>,
    pub mode: SearchMode,
    /// Hits below this cosine are left out.
    pub min_cosine: f32,
    pub max_results: usize,
}

impl Query {
    pub(crate) fn request(&self) -> index::SearchRequest<'_> {
        index::SearchRequest {
            probe: &self.probe,
            collection: self.collection.as_ref(),
            mode: self.mode.engine(),
            min_cosine: self.min_cosine,
            max_results: self.max_results,
        }
    }
}

/// Sizes of the search index at one moment, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Faces searchable (on PostgreSQL the planner's estimate).
    pub faces: u64,
    /// Faces not yet in the approximate graph (searched exactly meanwhile).
    pub graph_pending: u64,
    /// The database pool, where there is one.
    pub pool: Option<store::PoolUsage>,
}

#[async_trait]
pub trait SearchBackend: Send + Sync {
    /// Persons nearest to the probe, best first, and how many faces were compared.
    async fn search(&self, client: &ClientId, query: Query) -> Result<SearchOutcome>;

    /// Several probes (the faces of one image), each answered as [`Self::search`] would,
    /// in order. By default one search after the other.
    async fn search_many(
        &self,
        client: &ClientId,
        queries: Vec<Query>,
    ) -> Result<Vec<SearchOutcome>> {
        let mut outcomes = Vec::with_capacity(queries.len());
        for query in queries {
            outcomes.push(self.search(client, query).await?);
        }
        Ok(outcomes)
    }

    /// After a committed change to these persons (created, updated, detached). Search must
    /// not keep showing what the store no longer holds: when a refresh cannot read the
    /// store, the persons leave search until their next change or a restart.
    async fn persons_changed(&self, client: &ClientId, ids: &[PersonId]);

    /// After a committed change to a collection's membership (or its deletion); `now_listed`
    /// are the persons it lists now.
    async fn collection_changed(
        &self,
        client: &ClientId,
        collection: &CollectionId,
        now_listed: &[PersonId],
    );

    /// After a committed erasure.
    async fn person_erased(&self, client: &ClientId, id: &PersonId);

    /// How large the index is now.
    async fn stats(&self) -> IndexStats;

    /// Finishes any background indexing now (for benchmarks, which measure the settled
    /// index).
    async fn settle(&self) {}

    /// Called once, after the last request: saves or closes what the backend holds.
    async fn shutdown(&self);
}
