//! The [`Store`] trait every back-end implements (the rules they keep are in the crate docs).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::ids::{ClientId, CollectionId, FaceId, PersonId};
use crate::model::{
    AuditEntry, AuditFilter, ClientErasure, ClientSwitch, Collection, CollectionUpdate,
    DetachOutcome, FaceCrop, FaceRecord, IssuedToken, ListedToken, NewCollection, NewPerson,
    Person, PersonFilter, PersonUpdate, TokenRenewal,
};

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

    /// The client's persons among `ids` (unknown ids are left out), in no particular order:
    /// what a search reads back for its hits. By default one [`Self::get_person`] each;
    /// PostgreSQL reads them all in one transaction.
    async fn get_persons(&self, client: &ClientId, ids: &[PersonId]) -> Result<Vec<Person>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.get_person(client, id).await? {
                found.push(p);
            }
        }
        Ok(found)
    }

    /// Partial update; `None` when the person does not exist for this client. Replacing the
    /// faces erases the old ones before returning. All or nothing (an unknown collection
    /// fails with [`Error::UnknownCollection`]). The duplicate rule of
    /// [`Store::create_person`] holds for the person's resulting name, date of birth and
    /// collections: [`Error::PersonAlreadySet`] when another person of the client matches in
    /// a collection to be checked (all of them when the name or date of birth changes, else
    /// only those the person joins).
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

    /// Erases every person (faces, embeddings, thumbnails, memberships) and every collection
    /// of the client, in one transaction with a `person.erase` row per person, a
    /// `collection.delete` row per collection and a `client.erase` row; the same on-disk
    /// guarantee as [`Store::erase_person`]. Tokens and the audit log are kept.
    async fn erase_client(&self, client: &ClientId) -> Result<ClientErasure>;

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

    /// The embeddings `model` made of those of `faces` that belong to the client's active
    /// persons (the others are left out, in no particular order): to re-score search
    /// candidates exactly, never against another model's embedding.
    async fn face_embeddings(
        &self,
        client: &ClientId,
        model: &str,
        faces: &[FaceId],
    ) -> Result<Vec<(FaceId, Vec<f32>)>>;

    /// The model that embeds the client's faces: every face the client stores must be of it
    /// ([`Error::ClientModel`] otherwise). `None` until the client's first face.
    async fn client_model(&self, client: &ClientId) -> Result<Option<String>>;

    /// The clients whose faces are embedded by another model than `model`, to move them.
    async fn clients_off_model(&self, model: &str) -> Result<Vec<ClientId>>;

    /// Up to `limit` kept crops of the client's faces that `model` did not embed, in
    /// enrolment order, after `cursor` (0 to start; continue from the last crop's `cursor`).
    /// Faces enrolled without a crop are never listed.
    async fn crops_to_reembed(
        &self,
        client: &ClientId,
        model: &str,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<FaceCrop>>;

    /// Moves the client to `model` in one transaction: replaces the embeddings of all its
    /// faces with the ones given (which `model` made), records `model` as the client's, and
    /// writes a `faces.reembed` audit row; the old embeddings' bytes are erased. Faces
    /// erased meanwhile are skipped. When a face of the client that `model` did not embed is
    /// not among those given, nothing is written ([`ClientSwitch::Missing`]).
    async fn switch_client_model(
        &self,
        client: &ClientId,
        model: &str,
        faces: Vec<(FaceId, Vec<f32>)>,
    ) -> Result<ClientSwitch>;

    /// Records that `model` makes embeddings of `dimension` values (1..=1,024), as a server
    /// does for its model at start: [`Error::ModelDimension`] when the store has the model
    /// with another length. A model's first stored face records it too; a face of another
    /// length than its model's is refused. On PostgreSQL, also creates the model's HNSW index
    /// (for FAST search) when missing.
    async fn register_model(&self, model: &str, dimension: usize) -> Result<()>;

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

    /// Records that the token with this `jti` is revoked, and with it every token renewed from
    /// it, at any depth (idempotent). The revocation is kept until `expires_at` or until the
    /// last of those renewed tokens expires, whichever is later. Revocations and renewals whose
    /// expiry has passed are pruned on the way.
    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<()>;

    /// Records a token issued by the operator, with a `token.create` audit row of its client.
    async fn record_token_issue(&self, token: &IssuedToken) -> Result<()>;

    /// Records that `renewal.jti` was issued by renewing `renewal.parent`, with a
    /// `token.renew` audit row of the client (expired rows are pruned on the way), and as an
    /// issued token (see [`OperatorReads::issued_tokens`]).
    async fn record_token_renewal(&self, renewal: &TokenRenewal) -> Result<()>;

    /// Revokes every token of the client issued at or before `cutoff` (a later cutoff
    /// replaces an earlier one, never the reverse), with a `token.revoke_client` audit row.
    async fn revoke_client_tokens(&self, client: &ClientId, cutoff: DateTime<Utc>) -> Result<()>;

    /// Whether the token `jti` of `client`, issued at `issued_at`, is revoked: itself or any
    /// token it was renewed from (one recursive query), or by its client's cutoff.
    async fn is_token_revoked(
        &self,
        jti: &str,
        client: &ClientId,
        issued_at: DateTime<Utc>,
    ) -> Result<bool>;

    // ---- audit ----

    /// The client's most recent audit rows, newest first.
    async fn audit_log(&self, client: &ClientId, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// What an operator reads beside a running server: the whole audit log and the issued
/// tokens. The embedded store implements it on a read-only connection
/// ([`crate::sqlite::SqliteReadOnly`]), so that reading never takes the writer's lock; each
/// call is one short read transaction.
#[async_trait]
pub trait OperatorReads: Send + Sync {
    /// Up to `limit` audit rows with `seq > after` that pass the filter, oldest first.
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;

    /// Every recorded token (of one client, or of all), oldest first, with whether it is
    /// revoked.
    async fn issued_tokens(&self, client: Option<&ClientId>) -> Result<Vec<ListedToken>>;
}
