//! The request and response bodies as typed schemas, for the OpenAPI document. Field names,
//! requiredness, ranges and defaults are those the handlers check (in Joi's words) and the
//! presenters write; `tests/openapi.rs` sends the documented examples to a real server.

#![allow(dead_code)] // Read only by the OpenAPI derive.

use serde::Serialize;
use utoipa::ToSchema;

/// One image or an array of them. An image is base64 (standard or URL-safe) or a
/// `data:image/...;base64,` URI of a JPEG, PNG, WebP or BMP: at most 40 Mpixel and 12000 px
/// a side. Where Verifik takes image URLs (`/liveness`, `/liveness-score`, `/detect`,
/// `/search/crops`, the `/compare-with-liveness` gallery), an `https://` URL under one of the
/// operator's `--image-url-allow` prefixes is fetched; any other URL is 412.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMoreImages {
    One(String),
    Many(Vec<String>),
}

#[derive(Serialize, ToSchema)]
pub enum SearchMode {
    #[serde(rename = "FAST")]
    Fast,
    #[serde(rename = "ACCURATE")]
    Accurate,
}

#[derive(Serialize, ToSchema)]
pub enum Os {
    #[serde(rename = "DESKTOP")]
    Desktop,
    #[serde(rename = "IOS")]
    Ios,
    #[serde(rename = "ANDROID")]
    Android,
}

#[derive(Serialize, ToSchema)]
pub enum Gender {
    M,
    F,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PersonStatus {
    Active,
    Inactive,
    Pending,
}

// ---- requests ----

#[derive(Serialize, ToSchema)]
pub struct CollectionBody {
    /// Required; control, bidirectional and zero-width characters are refused.
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CollectionUpdateBody {
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
    /// The collection's members, replacing the current ones.
    pub persons: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonBody {
    /// Digits are removed, as Verifik does.
    pub name: String,
    /// 1-3 images of the person; the largest face of each is enrolled.
    #[schema(min_items = 1, max_items = 3)]
    pub images: Vec<String>,
    pub gender: Option<Gender>,
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: Option<PersonStatus>,
    /// Collection ids or codes.
    pub collections: Option<Vec<String>>,
}

/// Every field optional; `images` replaces the enrolled faces.
#[derive(Serialize, ToSchema)]
pub struct PersonUpdateBody {
    pub name: Option<String>,
    #[schema(min_items = 1, max_items = 3)]
    pub images: Option<Vec<String>>,
    pub gender: Option<Gender>,
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub status: Option<PersonStatus>,
    pub collections: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchBody {
    #[schema(min_items = 1, max_items = 3)]
    pub images: Vec<String>,
    /// From 0.2 (`/search`) or 0.5 (`/search/crops`) to 1.
    #[schema(minimum = 0.2, maximum = 1.0, example = 0.85)]
    pub min_score: f64,
    pub search_mode: SearchMode,
    pub collection_id: Option<String>,
    #[schema(minimum = 1, maximum = 100, default = 5)]
    pub max_results: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ActiveUserBody {
    pub image: String,
    pub os: Os,
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub min_score: f64,
    pub search_mode: SearchMode,
    pub collection_id: Option<String>,
    #[schema(minimum = 1, maximum = 100, default = 5)]
    pub max_results: Option<u32>,
}

/// The current docs' body takes `image`; the legacy sample's takes `images` (1-3 of one
/// person: liveness on the first, the search with all of them). One of the two is required.
#[derive(Serialize, ToSchema)]
pub struct SearchLiveFaceBody {
    pub image: Option<String>,
    #[schema(min_items = 1, max_items = 3)]
    pub images: Option<Vec<String>>,
    pub os: Os,
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub liveness_min_score: f64,
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub min_score: f64,
    pub search_mode: SearchMode,
    pub collection_id: Option<String>,
    #[schema(minimum = 1, maximum = 100, default = 5)]
    pub max_results: Option<u32>,
}

/// The current docs' body (every field) or the legacy one (`name`, `images`,
/// `collection_id`, optional `os` and `notes`): absent fields get the legacy defaults.
#[derive(Serialize, ToSchema)]
pub struct EnrolLiveFaceBody {
    pub name: String,
    #[schema(min_items = 1, max_items = 3)]
    pub images: Vec<String>,
    pub gender: Option<Gender>,
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub collection_id: String,
    pub os: Option<Os>,
    #[schema(minimum = 0.5, maximum = 1.0, default = 0.65)]
    pub liveness_min_score: Option<f64>,
    #[schema(minimum = 0.5, maximum = 1.0, default = 0.8)]
    pub min_score: Option<f64>,
    #[schema(default = "FAST")]
    pub search_mode: Option<SearchMode>,
    #[schema(minimum = 1, maximum = 100, default = 5)]
    pub max_results: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyBody {
    /// The enrolled person's `_id`.
    pub id: String,
    #[schema(min_items = 1, max_items = 3)]
    pub images: Vec<String>,
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub min_score: f64,
    pub search_mode: SearchMode,
    pub collection_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CompareBody {
    pub probe: OneOrMoreImages,
    pub gallery: OneOrMoreImages,
    #[schema(minimum = 0.5, maximum = 1.0, default = 0.85)]
    pub compare_min_score: Option<f64>,
    pub search_mode: Option<SearchMode>,
}

#[derive(Serialize, ToSchema)]
pub struct DetectBody {
    pub image: String,
    /// Also search every face (at most 20) in this collection.
    pub collection_id: Option<String>,
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub min_score: Option<f64>,
    #[schema(minimum = 1, maximum = 100)]
    pub max_results: Option<u32>,
    pub search_mode: Option<SearchMode>,
    pub return_landmarks: Option<bool>,
    pub return_attributes: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct LivenessBody {
    pub image: String,
    pub os: Os,
    #[schema(minimum = 0.5, maximum = 1.0, default = 0.6)]
    pub liveness_min_score: Option<f64>,
    pub collection_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CompareLiveBody {
    pub probe: String,
    pub gallery: OneOrMoreImages,
    pub os: Os,
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub liveness_min_score: f64,
    #[schema(minimum = 0.5, maximum = 1.0, default = 0.85)]
    pub compare_min_score: Option<f64>,
    pub search_mode: Option<SearchMode>,
}

#[derive(Serialize, ToSchema)]
pub struct CompareWithLivenessBody {
    pub probe: String,
    pub gallery: OneOrMoreImages,
    pub search_mode: SearchMode,
    #[schema(minimum = 0.5, maximum = 1.0, default = 0.6)]
    pub liveness_min_score: Option<f64>,
    /// When given and not reached, liveness is skipped (`"liveness": null`); when absent,
    /// `comparison.passed` is judged at 0.85 and liveness is always reported.
    #[schema(minimum = 0.5, maximum = 1.0)]
    pub compare_min_score: Option<f64>,
}

// ---- responses ----

#[derive(Serialize, ToSchema)]
pub struct Signature {
    pub message: String,
    #[serde(rename = "dateTime")]
    #[schema(example = "January 16, 2024 3:44 PM")]
    pub date_time: String,
}

/// Every successful answer. `id` is also the response's `X-Request-Id`.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T> {
    #[schema(example = "a1B2c")]
    pub id: String,
    pub data: T,
    pub signature: Signature,
}

/// Every error answer (some also carry `data` or `error`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "no_face_detected")]
    pub message: String,
    #[schema(example = "ERROR")]
    pub code: Option<String>,
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Probe {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// The lifetime granted, in months: the one asked for, capped at `--token-max-months`.
    #[schema(example = 1)]
    pub expires_in: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Collection {
    #[serde(rename = "_id")]
    pub id: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub project: Option<String>,
    pub client: String,
    pub deleted: bool,
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Thumbnail {
    pub id: String,
    /// The aligned 112x112 face, JPEG, base64.
    pub thumbnail: String,
}

/// A person (never embeddings). `collections` holds ids, or objects with
/// `populates[]=collections`.
#[derive(Serialize, ToSchema)]
pub struct Person {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub gender: Option<Gender>,
    #[schema(format = Date)]
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub notes: Option<String>,
    pub collections: Vec<serde_json::Value>,
    pub thumbnails: Vec<Thumbnail>,
    pub client: String,
    pub status: PersonStatus,
    pub deleted: bool,
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(rename = "updatedAt")]
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A person found by search or verify: the person's fields plus the match.
#[derive(Serialize, ToSchema)]
pub struct Match {
    #[serde(rename = "_id")]
    pub person_id: String,
    pub id: String,
    pub name: String,
    /// Calibrated 0..1 (see docs/scores.md).
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub score: f64,
    pub create_date: String,
    pub modified_date: String,
    pub collections: Vec<serde_json::Value>,
    pub thumbnails: Vec<Thumbnail>,
}

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub pages: u64,
}

/// `GET /persons`: the page of persons and, beside `data`, `pagination`.
#[derive(Serialize, ToSchema)]
pub struct PersonPage {
    pub id: String,
    pub data: Vec<Person>,
    pub pagination: Pagination,
    pub signature: Signature,
}

/// 1:N answers carry, beside `data`, how many faces were compared and the mode used.
#[derive(Serialize, ToSchema)]
pub struct SearchAnswer {
    pub id: String,
    pub data: Vec<Match>,
    pub faces_searched: u64,
    pub search_mode: SearchMode,
    pub signature: Signature,
}

#[derive(Serialize, ToSchema)]
pub struct LiveSearch {
    pub persons: Vec<Match>,
    pub liveness_score: f64,
}

#[derive(Serialize, ToSchema)]
pub struct LiveSearchAnswer {
    pub id: String,
    pub data: LiveSearch,
    pub faces_searched: u64,
    pub search_mode: SearchMode,
    pub signature: Signature,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    #[serde(rename = "_id")]
    pub id: String,
    /// `false` when the person was only detached from `?collection=` and is still in others.
    pub deleted: bool,
    /// The collections the person is still in.
    pub collections: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Verified {
    /// The person when the score clears `min_score`, else `null`.
    #[serde(rename = "match")]
    pub matched: Option<Match>,
    pub score: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Compared {
    pub score: f64,
    pub compare_min_score: f64,
    pub passed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[derive(Serialize, ToSchema)]
pub struct BoundingBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Landmarks {
    pub left_eye: Point,
    pub right_eye: Point,
    pub nose: Point,
    pub mouth: Point,
    pub left_mouth: Point,
    pub right_mouth: Point,
}

#[derive(Serialize, ToSchema)]
pub struct DetectedFace {
    pub bounding_box: BoundingBox,
    pub confidence: f64,
    pub landmarks: Landmarks,
    /// Legacy name of `bounding_box`: `{top, left, right, bottom}`.
    #[serde(rename = "box")]
    pub legacy_box: serde_json::Value,
    /// Legacy name of `confidence`.
    pub detection_score: f64,
    /// With `collection_id`: the face's matches.
    pub matches: Option<Vec<Match>>,
    /// Always `null`: no age or gender model is installed (see `attributes_available`).
    pub attributes: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct Detected {
    pub face_count: u32,
    pub faces: Vec<DetectedFace>,
    /// Always `false`: age and gender estimation is not available, with or without
    /// `return_attributes`.
    pub attributes_available: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Liveness {
    pub liveness_score: f64,
    pub min_score: f64,
    pub passed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CompareLive {
    pub score: f64,
    pub liveness: Liveness,
    pub compare_min_score: f64,
    pub liveness_min_score: f64,
    pub passed: bool,
    pub result: serde_json::Value,
    #[serde(rename = "type")]
    pub kind: String,
    pub search_mode: SearchMode,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct CompareWithLiveness {
    pub comparison: serde_json::Value,
    /// `null` when the comparison did not pass.
    pub liveness: Option<serde_json::Value>,
}
