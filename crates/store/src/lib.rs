//! Persistence for visage: collections, persons, their faces (embeddings and thumbnails), the
//! audit log and token revocations, behind one domain-shaped trait, [`Store`].
//!
//! Rules every back-end keeps:
//! - Every object belongs to exactly one client and every method filters by client: another
//!   client's ids behave exactly like unknown ids (`None`, `false`, `PersonNotFound`), and
//!   lists never include another client's objects.
//! - A method returns only after its write is durable.
//! - Erasing a person (or replacing its faces, or detaching it from its last collection)
//!   removes the rows, embeddings and thumbnails in the same transaction as its audit row.
//!   SQLite: before the method returns, the bytes are gone from every file of the store
//!   (`secure_delete` plus a truncating WAL checkpoint). PostgreSQL: the rows are gone for
//!   every reader at commit; their bytes stay in dead tuples until `VACUUM`
//!   (`PostgresStore::vacuum`, or autovacuum), see `docs/postgres.md`.
//! - Every mutation appends an audit row in the same transaction: who, what, which object,
//!   when; never face data, names or images.
//! - Lists are ordered by creation, oldest first (so pages stay stable while new objects
//!   arrive).

mod api;
pub mod audit;
pub mod error;
pub mod ids;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
mod rules;
pub mod sqlite;

pub use api::{OperatorReads, Store};
pub use error::{Error, Result};
pub use ids::{ClientId, CollectionCode, CollectionId, FaceId, IdError, PersonId};
pub use model::{
    AuditEntry, AuditFilter, ClientErasure, ClientSwitch, Collection, CollectionUpdate,
    DetachOutcome, FaceCrop, FaceRecord, Gender, IssuedToken, ListedToken, NewCollection, NewFace,
    NewPerson, Person, PersonFilter, PersonStatus, PersonUpdate, Thumbnail, TokenRenewal,
    DEFAULT_MODEL, EMBEDDING_BYTES, EMBEDDING_DIM, MAX_CROP_BYTES, MAX_EMBEDDING_DIM,
    MAX_FACES_PER_PERSON, MAX_MODEL_LEN,
};
#[cfg(feature = "postgres")]
pub use postgres::{PoolOptions, PoolUsage, PostgresStore, VectorExtension};
pub use sqlite::SqliteStore;
