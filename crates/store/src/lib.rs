//! Persistence for visage: collections, persons, their faces (embeddings and thumbnails), the
//! audit log and revoked tokens, behind one domain-shaped trait, [`Store`].
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

pub mod error;
pub mod ids;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

pub use error::{Error, Result};
pub use ids::{ClientId, CollectionCode, CollectionId, FaceId, IdError, PersonId};
pub use model::{
    AuditEntry, Collection, CollectionUpdate, DetachOutcome, FaceRecord, Gender, NewCollection,
    NewFace, NewPerson, Person, PersonFilter, PersonStatus, PersonUpdate, Thumbnail,
    EMBEDDING_BYTES, EMBEDDING_DIM, MAX_FACES_PER_PERSON,
};
#[cfg(feature = "postgres")]
pub use postgres::{PoolOptions, PostgresStore};
pub use sqlite::SqliteStore;

/// Audit actions written by the store.
pub mod audit {
    pub const COLLECTION_CREATE: &str = "collection.create";
    pub const COLLECTION_UPDATE: &str = "collection.update";
    pub const COLLECTION_DELETE: &str = "collection.delete";
    /// A person added to a collection by a collection update (`object_id` = person).
    pub const PERSON_ATTACH: &str = "person.attach";
    /// A person removed from a collection, by `detach_person` or a collection update
    /// (`object_id` = person).
    pub const PERSON_DETACH: &str = "person.detach";
    pub const PERSON_CREATE: &str = "person.create";
    pub const PERSON_UPDATE: &str = "person.update";
    /// Faces replaced by an update: the old embeddings and thumbnails were erased.
    pub const PERSON_FACES_REPLACE: &str = "person.faces.replace";
    pub const PERSON_ERASE: &str = "person.erase";
    pub const TOKEN_REVOKE: &str = "token.revoke";
}

/// Persistence of everything visage keeps. Object-safe: use it as `&dyn Store` or
/// `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync {
    // ---- collections ----

    async fn create_collection(&self, client: &ClientId, new: NewCollection) -> Result<Collection>;

    /// Every collection of the client, oldest first.
    async fn list_collections(&self, client: &ClientId) -> Result<Vec<Collection>>;

    async fn get_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Option<Collection>>;

    /// Finds a collection by its `_id` or its `code`.
    async fn resolve_collection(
        &self,
        client: &ClientId,
        reference: &str,
    ) -> Result<Option<Collection>>;

    /// `None` when the collection does not exist for this client. See
    /// [`CollectionUpdate::people`] for membership reconciliation (one transaction).
    async fn update_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
        update: CollectionUpdate,
    ) -> Result<Option<Collection>>;

    /// Deletes the collection and returns what it was. Its persons are detached, never
    /// deleted (a person whose only collection this was keeps no collection).
    async fn delete_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Option<Collection>>;

    // ---- persons ----

    /// All or nothing. Fails with [`Error::PersonAlreadySet`] (carrying the existing person)
    /// when a person of the client with the same name (case-insensitive) and date of birth
    /// (both absent counts as equal) is already in one of the requested collections, and with
    /// [`Error::UnknownCollection`] when a collection is not the client's.
    async fn create_person(&self, client: &ClientId, new: NewPerson) -> Result<Person>;

    /// A page (1-based; 0 is taken as 1) of the client's persons, oldest first, and the total
    /// matching the filter.
    async fn list_persons(
        &self,
        client: &ClientId,
        filter: PersonFilter,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<Person>, u64)>;

    /// Persons whose name contains `name_contains` (case-insensitive), optionally born on
    /// `date_of_birth`; oldest first, with the total.
    async fn lookup_persons(
        &self,
        client: &ClientId,
        name_contains: &str,
        date_of_birth: Option<NaiveDate>,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<Person>, u64)>;

    async fn get_person(&self, client: &ClientId, id: &PersonId) -> Result<Option<Person>>;

    /// Partial update; `None` when the person does not exist for this client. Replacing the
    /// faces erases the old ones before returning. All or nothing (an unknown collection
    /// fails with [`Error::UnknownCollection`]). No duplicate check (that is on create only).
    async fn update_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        update: PersonUpdate,
    ) -> Result<Option<Person>>;

    /// Erases the person with every face, embedding, thumbnail and membership; `false` when
    /// there was no such person for this client.
    async fn erase_person(&self, client: &ClientId, id: &PersonId) -> Result<bool>;

    /// Removes the person from one collection; when that was its only collection the person
    /// is erased as by [`Store::erase_person`].
    async fn detach_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        collection: &CollectionId,
    ) -> Result<DetachOutcome>;

    /// Bulk insert for benchmarks and imports: no duplicate check, few large transactions,
    /// one audit row per person. Returns the new ids in input order. All or nothing.
    async fn seed_persons(
        &self,
        client: &ClientId,
        persons: Vec<NewPerson>,
    ) -> Result<Vec<PersonId>>;

    // ---- faces ----

    /// Every face of every client (to build the in-memory search index at start-up).
    async fn faces_for_index(&self) -> Result<Vec<FaceRecord>>;

    /// The embeddings of those of `faces` that belong to the client's active persons (the
    /// others are left out, in no particular order): to re-score search candidates exactly.
    async fn face_embeddings(
        &self,
        client: &ClientId,
        faces: &[FaceId],
    ) -> Result<Vec<(FaceId, Vec<f32>)>>;

    /// Reads every stored embedding once and discards it, so that the operating system caches
    /// the pages that search re-scoring reads (a no-op where that does not help).
    async fn warm_up(&self) -> Result<()> {
        Ok(())
    }

    /// A number that changes with every committed write, so that a search index saved at
    /// shutdown can tell at the next start whether it still matches the store.
    async fn generation(&self) -> Result<u64>;

    /// The faces of one person; empty when there is no such person for this client.
    async fn faces_of_person(&self, client: &ClientId, id: &PersonId) -> Result<Vec<FaceRecord>>;

    // ---- tokens ----

    /// Records that the token with this `jti` is revoked (idempotent). Rows whose
    /// `expires_at` has passed are pruned on the way.
    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<()>;

    async fn is_token_revoked(&self, jti: &str) -> Result<bool>;

    // ---- audit ----

    /// The client's most recent audit rows, newest first.
    async fn audit_log(&self, client: &ClientId, limit: u32) -> Result<Vec<AuditEntry>>;
}
