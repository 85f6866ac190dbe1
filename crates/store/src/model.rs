//! Domain types handed across the [`Store`](crate::Store) trait. No SQL types here.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};

/// Values in one face embedding (SFace).
pub const EMBEDDING_DIM: usize = 128;
/// Bytes of one embedding as stored: little-endian f32.
pub const EMBEDDING_BYTES: usize = EMBEDDING_DIM * 4;
/// Most faces one person may have (the API takes 1-3 images per create/update).
pub const MAX_FACES_PER_PERSON: usize = 3;
/// Largest thumbnail accepted, in bytes.
pub const MAX_THUMBNAIL_BYTES: usize = 1 << 20;
/// Longest person or collection name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest accepted token id, in bytes.
pub const MAX_JTI_LEN: usize = 256;
/// Longest free-text field (notes, description, nationality, project), in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// `M` or `F`, as in the Verifik API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gender {
    M,
    F,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::M => "M",
            Gender::F => "F",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "M" => Some(Gender::M),
            "F" => Some(Gender::F),
            _ => None,
        }
    }
}

/// `active` = usable for matching; `inactive` = excluded from new operations; `pending` = not
/// fully processed or approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonStatus {
    #[default]
    Active,
    Inactive,
    Pending,
}

impl PersonStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::Active => "active",
            PersonStatus::Inactive => "inactive",
            PersonStatus::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(PersonStatus::Active),
            "inactive" => Some(PersonStatus::Inactive),
            "pending" => Some(PersonStatus::Pending),
            _ => None,
        }
    }
}

/// A named group of persons, owned by one client. Serialises in the Verifik shape
/// (`_id`, `code`, `client`, `name`, `description`, `project`, `createdAt`, `updatedAt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    #[serde(rename = "_id")]
    pub id: CollectionId,
    pub code: CollectionCode,
    pub client: ClientId,
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
    #[serde(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    #[serde(rename = "updatedAt")]
    pub updated_at: DateTime<Utc>,
}

/// Input of [`Store::create_collection`](crate::Store::create_collection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCollection {
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
}

/// Input of [`Store::update_collection`](crate::Store::update_collection). `None` leaves a
/// field unchanged (the HTTP layer requires `name` on every update; the store does not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub project: Option<String>,
    /// When `Some`, the complete membership of the collection: listed persons of the same
    /// client are added, members not listed are removed. Ids of unknown persons or of another
    /// client's persons are ignored (never reported, so they reveal nothing).
    pub people: Option<Vec<PersonId>>,
}

/// One enrolled face's crop, as shown to API clients.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub id: FaceId,
    pub jpeg: Vec<u8>,
}

impl fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print face data (it ends up in logs).
        f.debug_struct("Thumbnail")
            .field("id", &self.id)
            .field("jpeg_bytes", &self.jpeg.len())
            .finish()
    }
}

/// A person, owned by one client. Raw embeddings are not part of it (see [`FaceRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub client: ClientId,
    pub name: String,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: PersonStatus,
    /// In the order they were given at create/update time.
    pub collections: Vec<CollectionId>,
    /// One per enrolled face, in enrolment order.
    pub thumbnails: Vec<Thumbnail>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One face to enrol: its embedding and the crop shown back as a thumbnail.
#[derive(Clone, PartialEq)]
pub struct NewFace {
    /// [`EMBEDDING_DIM`] finite values.
    pub embedding: Vec<f32>,
    pub thumbnail_jpeg: Vec<u8>,
}

impl fmt::Debug for NewFace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewFace")
            .field("embedding_dim", &self.embedding.len())
            .field("thumbnail_bytes", &self.thumbnail_jpeg.len())
            .finish()
    }
}

/// Input of [`Store::create_person`](crate::Store::create_person).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewPerson {
    pub name: String,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: PersonStatus,
    /// Collections of the same client; duplicates are collapsed, order is kept.
    pub collections: Vec<CollectionId>,
    /// At most [`MAX_FACES_PER_PERSON`].
    pub faces: Vec<NewFace>,
}

/// Input of [`Store::update_person`](crate::Store::update_person): `None` leaves a field as
/// it is. There is no way to clear an optional field back to null (the API has none either).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonUpdate {
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: Option<PersonStatus>,
    /// Replaces all faces; the old embeddings and thumbnails are erased.
    pub faces: Option<Vec<NewFace>>,
    /// Replaces all memberships (every id must be a collection of the same client).
    pub collections: Option<Vec<CollectionId>>,
}

/// Filters of [`Store::list_persons`](crate::Store::list_persons).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFilter {
    pub collection: Option<CollectionId>,
    pub status: Option<PersonStatus>,
}

/// Result of [`Store::detach_person`](crate::Store::detach_person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachOutcome {
    /// No such person for this client.
    PersonNotFound,
    /// The person exists but is not in that collection (or the collection does not exist).
    NotAMember,
    /// The membership was removed; the person stays, in these collections.
    Detached { remaining: Vec<CollectionId> },
    /// The collection was the person's only one: the person was erased as by `erase_person`.
    Erased,
}

/// One enrolled face with what a search index needs. Carries the raw embedding: keep it out
/// of logs and responses.
#[derive(Clone, PartialEq)]
pub struct FaceRecord {
    pub face_id: FaceId,
    pub person_id: PersonId,
    pub client: ClientId,
    /// The person's status (an index may leave out inactive persons).
    pub status: PersonStatus,
    pub embedding: Vec<f32>,
    pub collections: Vec<CollectionId>,
}

impl fmt::Debug for FaceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaceRecord")
            .field("face_id", &self.face_id)
            .field("person_id", &self.person_id)
            .field("client", &self.client)
            .field("status", &self.status)
            .field("embedding_dim", &self.embedding.len())
            .field("collections", &self.collections)
            .finish()
    }
}

/// One row of the audit log: who did what to which object, and when. Never any face data,
/// names or images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `None` for operator actions that belong to no client (token revocation).
    pub client: Option<ClientId>,
    /// See [`crate::audit`] for the actions written.
    pub action: String,
    /// The object acted on (person or collection `_id`, or a token's `jti`).
    pub object_id: String,
}

// ---- validation shared by back-ends ----

pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(field, "too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(())
}

pub(crate) fn check_text(field: &'static str, text: Option<&str>) -> Result<(), Error> {
    if let Some(t) = text {
        if t.chars().count() > MAX_TEXT_CHARS {
            return Err(Error::invalid(field, "too long"));
        }
        // PostgreSQL text cannot hold NUL; refused by every back-end alike.
        if t.contains('\0') {
            return Err(Error::invalid(field, "contains a NUL character"));
        }
    }
    Ok(())
}

/// A revoked token's id: 1-256 bytes, no NUL.
pub(crate) fn check_jti(jti: &str) -> Result<(), Error> {
    if jti.is_empty() || jti.len() > MAX_JTI_LEN || jti.contains('\0') {
        return Err(Error::invalid("jti", "must be 1-256 bytes without NUL"));
    }
    Ok(())
}

pub(crate) fn check_faces(faces: &[NewFace]) -> Result<(), Error> {
    if faces.len() > MAX_FACES_PER_PERSON {
        return Err(Error::invalid("faces", "more than 3 faces"));
    }
    for f in faces {
        if f.embedding.len() != EMBEDDING_DIM {
            return Err(Error::invalid("faces", "embedding must have 128 values"));
        }
        if !f.embedding.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("faces", "embedding has a non-finite value"));
        }
        if f.thumbnail_jpeg.is_empty() {
            return Err(Error::invalid("faces", "empty thumbnail"));
        }
        if f.thumbnail_jpeg.len() > MAX_THUMBNAIL_BYTES {
            return Err(Error::invalid("faces", "thumbnail too large"));
        }
    }
    Ok(())
}

pub(crate) fn check_new_person(p: &NewPerson) -> Result<(), Error> {
    check_name("name", &p.name)?;
    check_text("nationality", p.nationality.as_deref())?;
    check_text("notes", p.notes.as_deref())?;
    check_faces(&p.faces)
}

pub(crate) fn check_person_update(u: &PersonUpdate) -> Result<(), Error> {
    if let Some(n) = &u.name {
        check_name("name", n)?;
    }
    check_text("nationality", u.nationality.as_deref())?;
    check_text("notes", u.notes.as_deref())?;
    if let Some(f) = &u.faces {
        check_faces(f)?;
    }
    Ok(())
}

pub(crate) fn check_new_collection(c: &NewCollection) -> Result<(), Error> {
    check_name("name", &c.name)?;
    check_text("description", c.description.as_deref())?;
    check_text("project", c.project.as_deref())
}

pub(crate) fn check_collection_update(c: &CollectionUpdate) -> Result<(), Error> {
    if let Some(n) = &c.name {
        check_name("name", n)?;
    }
    check_text("description", c.description.as_deref())?;
    check_text("project", c.project.as_deref())
}

/// Case-folded form used for case-insensitive name matching (Unicode lower case).
pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Keeps the first occurrence of each id, in order.
pub(crate) fn dedup<T: PartialEq + Clone>(ids: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// Little-endian f32 bytes of an embedding.
pub fn embedding_to_bytes(e: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.len() * 4);
    for v in e {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Inverse of [`embedding_to_bytes`]; `None` when the length is not a multiple of 4.
pub fn embedding_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Now, truncated to whole milliseconds (what is stored, so a value read back compares equal).
pub(crate) fn now_millis() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_roundtrip() {
        let e: Vec<f32> = (0..128).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b = embedding_to_bytes(&e);
        assert_eq!(b.len(), EMBEDDING_BYTES);
        assert_eq!(embedding_from_bytes(&b), Some(e));
        assert_eq!(embedding_from_bytes(&[0u8; 3]), None);
    }

    #[test]
    fn debug_hides_face_data() {
        let f = NewFace {
            embedding: vec![0.123_456_7; 128],
            thumbnail_jpeg: vec![0xAB; 10],
        };
        let s = format!("{f:?}");
        assert!(!s.contains("0.1234"), "{s}");
        assert!(!s.contains("171"), "{s}");
    }

    #[test]
    fn validation() {
        assert!(check_name("name", "  ").is_err());
        assert!(check_name("name", "Ana").is_ok());
        assert!(check_faces(&[NewFace {
            embedding: vec![f32::NAN; 128],
            thumbnail_jpeg: vec![1],
        }])
        .is_err());
        assert!(check_faces(&[NewFace {
            embedding: vec![0.0; 127],
            thumbnail_jpeg: vec![1],
        }])
        .is_err());
        assert_eq!(dedup(&[1, 2, 1, 3, 2]), vec![1, 2, 3]);
        assert_eq!(name_key(" MaRÍa "), "maría");
    }
}
