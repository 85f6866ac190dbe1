//! Every use case of visage, transport-free: enrolment, updates, erasure, collections, 1:N
//! search, 1:1 verify and compare, detection, liveness, live enrolment and token rules. The
//! HTTP server and the command line both drive this crate; it knows no HTTP.
//!
//! [`open`] is the composition root: it picks the store (SQLite or PostgreSQL) and the search
//! backend that goes with it, once. Each mutating use case does its store write and its search
//! refresh together, so no caller can forget the second.

mod collections;
mod cpu;
mod error;
mod faces;
mod matching;
mod open;
mod overload;
pub mod params;
mod persons;
mod search;
pub mod tokens;

use std::sync::Arc;

use store::Store;

pub use cpu::CpuPool;
pub use error::{Error, ImageError, Result};
pub use matching::{
    Comparison, DetectParams, DetectedFace, Found, Match, SearchParams, Verification,
};
pub use open::{lock_data_dir, open, open_store, Access, Config, OpenStore, StoreConfig};
pub use overload::OverloadLog;
pub use params::{LiveScore, SearchMode};
pub use persons::{Detached, LiveEnrolment, PersonChanges, PersonDraft, PersonList, PersonQuery};
pub use search::SearchBackend;
// The domain types the use cases take and return, so that callers need no engine crate.
pub use store::{
    ClientId, Collection, CollectionId, CollectionUpdate, Gender, NewCollection, Person, PersonId,
    PersonStatus,
};
pub use vision::{round_score, BoundingBox, Detection, Embedding, Score};

// The store keeps what the embedder makes: one size, checked where both meet.
const _: () = assert!(vision::EMBEDDING_DIM == store::EMBEDDING_DIM);

/// Every use case, over one store, one search backend and one face pipeline. Cheap to
/// share behind an `Arc`.
pub struct Service {
    store: Arc<dyn Store>,
    search: Arc<dyn SearchBackend>,
    faces: faces::Faces,
    secret: tokens::Secret,
    /// Held for as long as the service runs on an embedded store (see [`lock_data_dir`]).
    _lock: Option<std::fs::File>,
}

impl Service {
    /// The client a token stands for, if it is well signed, unexpired and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<ClientId> {
        let now = chrono::Utc::now().timestamp();
        let claims = match tokens::verify(&self.secret, token, now) {
            Ok(c) => c,
            Err(tokens::TokenError::Expired) => return Err(Error::TokenExpired),
            Err(_) => return Err(Error::Unauthenticated),
        };
        if self.store.is_token_revoked(&claims.jti).await? {
            return Err(Error::TokenExpired);
        }
        ClientId::parse(&claims.client_id).map_err(|_| Error::Unauthenticated)
    }

    /// A new token for the client of a valid one, living `months` (1 to
    /// [`tokens::MAX_RENEWAL_MONTHS`]) months.
    pub fn renew_token(&self, client: &ClientId, months: u32) -> Result<String> {
        if !(1..=tokens::MAX_RENEWAL_MONTHS).contains(&months) {
            return Err(Error::Invalid {
                field: "expiresIn",
                reason: "out of range",
            });
        }
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::from(months) * tokens::MONTH_SECS;
        Ok(tokens::issue(&self.secret, client, now, ttl)?.0)
    }

    /// Whether the store answers (for health probes).
    pub async fn health(&self) -> Result<()> {
        self.store.is_token_revoked("health-check").await?;
        Ok(())
    }

    /// Whether the liveness models are installed.
    pub fn has_liveness(&self) -> bool {
        self.faces.pipeline.liveness().is_some()
    }

    /// Finishes background indexing now (benchmarks measure the settled index).
    pub async fn settle(&self) {
        self.search.settle().await;
    }

    /// After the last request: saves the search index for the next start (embedded) or
    /// closes the database pool (PostgreSQL).
    pub async fn shutdown(&self) {
        self.search.shutdown().await;
    }
}
