//! Domain types handed across the `Store` trait. No SQL types here.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};

/// Values in one face embedding of the default model (SFace).
pub const EMBEDDING_DIM: usize = 128;
/// Most values in one face embedding, whatever the model (the index and both stores take any
/// length from 1 to this; all faces of one model have the same).
pub const MAX_EMBEDDING_DIM: usize = 1024;
/// The model id of SFace 2021dec, the default embedder, and of every face enrolled before
/// faces carried their model.
pub const DEFAULT_MODEL: &str = "sface-2021dec";
/// Longest embedding model id.
pub const MAX_MODEL_LEN: usize = 64;
/// Largest aligned-face crop accepted, in bytes.
pub const MAX_CROP_BYTES: usize = 1 << 20;
/// Bytes of one embedding of the default model as stored: little-endian f32.
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

/// Input of `Store::create_collection`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCollection {
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
}

/// Input of `Store::update_collection`. `None` leaves a field unchanged (the HTTP layer
/// requires `name` on every update; the store does not).
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

/// One face to enrol: its embedding, the id of the model that made it, the crop shown back
/// as a thumbnail, and the aligned face kept losslessly to re-embed it later.
#[derive(Clone, PartialEq)]
pub struct NewFace {
    /// Lowercase letters, digits, `.`, `_`, `-`; at most [`MAX_MODEL_LEN`].
    pub model: String,
    /// 1 to [`MAX_EMBEDDING_DIM`] finite values, as many as every face of `model` has.
    pub embedding: Vec<f32>,
    pub thumbnail_jpeg: Vec<u8>,
    /// The aligned face as PNG; empty when not kept.
    pub crop_png: Vec<u8>,
}

impl fmt::Debug for NewFace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewFace")
            .field("model", &self.model)
            .field("embedding_dim", &self.embedding.len())
            .field("thumbnail_bytes", &self.thumbnail_jpeg.len())
            .field("crop_bytes", &self.crop_png.len())
            .finish()
    }
}

/// Input of `Store::create_person`.
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

/// Input of `Store::update_person`: `None` leaves a field as it is. There is no way to clear
/// an optional field back to null (the API has none either).
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

/// Filters of `Store::list_persons`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFilter {
    pub collection: Option<CollectionId>,
    pub status: Option<PersonStatus>,
}

/// Result of `Store::detach_person`.
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
    /// The id of the model that made `embedding`.
    pub model: String,
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
            .field("model", &self.model)
            .field("embedding_dim", &self.embedding.len())
            .field("collections", &self.collections)
            .finish()
    }
}

/// What [`crate::Store::switch_client_model`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSwitch {
    /// All the client's faces are embedded by the model now: `faces` were replaced, and
    /// these persons' faces changed.
    Switched { faces: u64, persons: Vec<PersonId> },
    /// Nothing was written: `faces` faces of the client not embedded by the model were not
    /// given (enrolled meanwhile), `without_crop` of them with no kept crop to embed again.
    Missing { faces: u64, without_crop: u64 },
}

/// The kept aligned crop of one face, to re-embed it. Biometric data: keep it out of logs.
#[derive(Clone, PartialEq)]
pub struct FaceCrop {
    /// Where to continue from (see `Store::crops_to_reembed`).
    pub cursor: i64,
    pub face_id: FaceId,
    pub png: Vec<u8>,
}

impl fmt::Debug for FaceCrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaceCrop")
            .field("cursor", &self.cursor)
            .field("face_id", &self.face_id)
            .field("png_bytes", &self.png.len())
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
    /// The object acted on (person or collection `_id`, a token's `jti`, or the client whose
    /// tokens were revoked).
    pub object_id: String,
}

/// A token issued by renewing another one (`/v2/auth/session`): revoking the parent, or any
/// token it descends from, revokes this one too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRenewal {
    /// The new token's `jti`.
    pub jti: String,
    /// The `jti` of the token it was renewed from.
    pub parent: String,
    pub client: ClientId,
    /// When the new token expires.
    pub expires_at: DateTime<Utc>,
}

/// A token as issued (never the token itself): recorded when created, by `visage token
/// create` or by a renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub jti: String,
    pub client: ClientId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The `jti` of the token it was renewed from.
    pub parent: Option<String>,
}

/// An issued token and whether it is revoked (itself, a token it was renewed from, or by its
/// client's cutoff) as of the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedToken {
    pub token: IssuedToken,
    pub revoked: bool,
}

/// Which audit rows to read; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub client: Option<ClientId>,
    /// Rows written at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub action: Option<String>,
}

/// What erasing a whole client removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientErasure {
    pub persons: u64,
    pub collections: u64,
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
            model: DEFAULT_MODEL.into(),
            embedding: vec![0.123_456_7; 128],
            thumbnail_jpeg: vec![0xAB; 10],
            crop_png: vec![0xAB; 10],
        };
        let s = format!("{f:?}");
        assert!(!s.contains("0.1234"), "{s}");
        assert!(!s.contains("171"), "{s}");
    }
}
