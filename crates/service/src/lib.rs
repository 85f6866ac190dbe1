//! Every use case of visage, transport-free: enrolment, updates, erasure, collections, 1:N
//! search, 1:1 verify and compare, detection, liveness, live enrolment and token rules. The
//! HTTP server and the command line both drive this crate; it knows no HTTP.
//!
//! [`open`] is the composition root: it picks the store (SQLite or PostgreSQL) and the search
//! backend that goes with it, once. Each mutating use case does its store write and its search
//! refresh together, so no caller can forget the second.

mod admin;
mod collections;
mod cpu;
mod error;
mod faces;
mod image_url;
mod matching;
mod models;
mod open;
mod overload;
pub mod params;
mod persons;
mod reembed;
mod search;
mod store_timing;
pub mod tokens;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use store::{Store, TokenRenewal};

pub use admin::{erase_client, operator_reads, reembed};
pub use cpu::CpuPool;
pub use error::{Error, ImageError, Result};
pub use image_url::{is_url as is_image_url, ImageUrlConfig, UrlPrefix};
pub use matching::{
    Comparison, DetectParams, DetectedFace, Found, Match, SearchParams, Verification,
};
pub use open::{
    load_pipeline, lock_data_dir, open, open_store, Access, Config, OpenStore, StoreConfig,
};
pub use overload::OverloadLog;
pub use params::{LiveScore, SearchMode};
pub use persons::{Detached, LiveEnrolment, PersonChanges, PersonDraft, PersonList, PersonQuery};
pub use reembed::Reembedded;
pub use search::{IndexStats, SearchBackend};
// The domain types the use cases take and return, so that callers need no engine crate.
pub use store::{
    ClientId, Collection, CollectionId, CollectionUpdate, Gender, NewCollection, Person, PersonId,
    PersonStatus,
};
pub use vision::{round_score, BoundingBox, Detection, Embedding, Score};

// The store and the index keep what any embedder makes: the same limits, checked where they
// meet (a descriptor's dimension is checked when it is read).
const _: () = assert!(vision::EMBEDDING_DIM == store::EMBEDDING_DIM);
const _: () = assert!(vision::MAX_EMBEDDING_DIM == store::MAX_EMBEDDING_DIM);
const _: () = assert!(index::MAX_DIMENSION == store::MAX_EMBEDDING_DIM);

/// Every use case, over one store, one search backend and one face pipeline. Cheap to
/// share behind an `Arc`.
pub struct Service {
    store: Arc<dyn Store>,
    search: Arc<dyn SearchBackend>,
    models: Arc<models::ClientModels>,
    /// Moves clients to the running model in the background, while previous models serve.
    mover: reembed::BackgroundMove,
    secret: tokens::Secret,
    /// A renewal grants at most this many months.
    max_renewal_months: u32,
    /// Held for as long as the service runs on an embedded store (see [`lock_data_dir`]).
    _lock: Option<std::fs::File>,
}

/// A caller authenticated by a token: its client, and which token it used (to renew it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub client: ClientId,
    jti: String,
    issued_at: DateTime<Utc>,
}

impl Service {
    /// The id of the embedding model this service runs: new clients' faces are embedded by
    /// it, and every client once moved to it (see [`models`]).
    pub fn model(&self) -> &str {
        self.models.running().model()
    }

    /// The faces pipeline of the client's model, holding the client on it while in use.
    pub(crate) async fn client_faces(&self, client: &ClientId) -> Result<models::ClientFaces<'_>> {
        self.models.for_client(&*self.store, client).await
    }

    /// The client a token stands for, if it is well signed, unexpired and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<ClientId> {
        Ok(self.session(token).await?.client)
    }

    /// The session of a token that is well signed, unexpired, and not revoked: neither itself
    /// nor any token it was renewed from, nor by its client's cutoff.
    pub async fn session(&self, token: &str) -> Result<Session> {
        let now = Utc::now().timestamp();
        let claims = match tokens::verify(&self.secret, token, now) {
            Ok(c) => c,
            Err(tokens::TokenError::Expired) => return Err(Error::TokenExpired),
            Err(_) => return Err(Error::Unauthenticated),
        };
        let client = ClientId::parse(&claims.client_id).map_err(|_| Error::Unauthenticated)?;
        let issued_at = DateTime::from_timestamp(claims.iat, 0).ok_or(Error::Unauthenticated)?;
        if self
            .store
            .is_token_revoked(&claims.jti, &client, issued_at)
            .await?
        {
            return Err(Error::TokenExpired);
        }
        Ok(Session {
            client,
            jti: claims.jti,
            issued_at,
        })
    }

    /// The longest lifetime, in months, a renewal grants.
    pub fn max_renewal_months(&self) -> u32 {
        self.max_renewal_months
    }

    /// A new token for the client of a valid one, living `months` months, capped at
    /// [`Self::max_renewal_months`]; the new token and the months granted. The store records
    /// it as renewed from the session's token (with a `token.renew` audit row), so that
    /// revoking that token, or any it descends from, revokes the new one too.
    pub async fn renew_token(&self, parent: &Session, months: u32) -> Result<(String, u32)> {
        if months == 0 {
            return Err(Error::Invalid {
                field: "expiresIn",
                reason: "must be greater than or equal to 1",
            });
        }
        let months = months.min(self.max_renewal_months);
        let now = Utc::now().timestamp();
        let ttl = i64::from(months) * tokens::MONTH_SECS;
        let (token, claims) =
            tokens::issue_renewal(&self.secret, &parent.client, now, ttl, &parent.jti)?;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| Error::internal("token expiry out of range"))?;
        let renewal = TokenRenewal {
            jti: claims.jti,
            parent: parent.jti.clone(),
            client: parent.client.clone(),
            expires_at,
        };
        store_timing::timed_write(
            "record_token_renewal",
            self.store.record_token_renewal(&renewal),
        )
        .await?;
        // A revocation that committed after the parent was authenticated and before the
        // renewal was recorded did not see the new token: refuse to hand it out.
        if self
            .store
            .is_token_revoked(&parent.jti, &parent.client, parent.issued_at)
            .await?
        {
            return Err(Error::TokenExpired);
        }
        Ok((token, months))
    }

    /// Whether the store answers (for health probes).
    pub async fn health(&self) -> Result<()> {
        let probe = ClientId::parse("health-check").map_err(Error::internal)?;
        self.store
            .is_token_revoked("health-check", &probe, DateTime::UNIX_EPOCH)
            .await?;
        Ok(())
    }

    /// The search index's size and the database pool's use, for metrics.
    pub async fn index_stats(&self) -> IndexStats {
        self.search.stats().await
    }

    /// Whether any image URL may be fetched (an allow-list was given).
    pub fn image_urls_enabled(&self) -> bool {
        self.models.running().urls.enabled()
    }

    /// Whether the liveness models are installed.
    pub fn has_liveness(&self) -> bool {
        self.models.running().pipeline.liveness().is_some()
    }

    /// Finishes background indexing now (benchmarks measure the settled index).
    pub async fn settle(&self) {
        self.search.settle().await;
    }

    /// After the last request: saves the search index for the next start (embedded) or
    /// closes the database pool (PostgreSQL).
    pub async fn shutdown(&self) {
        self.mover.stop().await;
        self.search.shutdown().await;
    }
}
