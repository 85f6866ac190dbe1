//! The operations, one per route of `routes::routes`. The functions are declarations only:
//! the `#[utoipa::path]` attribute on each is what `ApiDoc` reads.

#![allow(dead_code)]

use super::schemas::*;

// ---- probes and auth ----

/// The process answers (never touches the database).
#[utoipa::path(get, path = "/livez", tag = "probes",
    responses((status = 200, body = Probe)))]
fn livez() {}

/// The store answers, and the models and the index are loaded.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses((status = 200, body = Probe), (status = 503, body = ErrorBody)))]
fn readyz() {}

/// The same probe as `/readyz`.
#[utoipa::path(get, path = "/health", tag = "probes",
    responses((status = 200, body = Probe), (status = 503, body = ErrorBody)))]
fn health() {}

/// Prometheus text format. With `--metrics-token`, `Authorization: Bearer <token>`.
#[utoipa::path(get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain"),
        (status = 401, body = ErrorBody)))]
fn metrics() {}

/// A new token for the caller's client, renewing a still-valid one.
#[utoipa::path(get, path = "/v2/auth/session", tag = "auth",
    params(("expiresIn" = Option<u32>, Query, description = "Months, from 1 (default 1); capped at `--token-max-months` (default 12), the answer's `expiresIn` says what was granted")),
    responses((status = 200, body = Envelope<Session>)),
    security(("bearer" = [])))]
fn session() {}

// ---- collections ----

#[utoipa::path(get, path = "/v2/face-recognition/collections", tag = "collections",
    responses((status = 200, body = Envelope<Vec<Collection>>)),
    security(("bearer" = [])))]
fn collections_list() {}

#[utoipa::path(post, path = "/v2/face-recognition/collections", tag = "collections",
    request_body = CollectionBody,
    responses((status = 200, body = Envelope<Collection>)),
    security(("bearer" = [])))]
fn collections_create() {}

#[utoipa::path(get, path = "/v2/face-recognition/collections/{id}", tag = "collections",
    params(("id" = String, Path, description = "Collection `_id` or `code`")),
    responses((status = 200, body = Envelope<Collection>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
fn collections_retrieve() {}

#[utoipa::path(put, path = "/v2/face-recognition/collections/{id}", tag = "collections",
    params(("id" = String, Path, description = "Collection `_id` or `code`")),
    request_body = CollectionUpdateBody,
    responses((status = 200, body = Envelope<Collection>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
fn collections_update() {}

/// Deletes the collection; its persons are detached, never erased.
#[utoipa::path(delete, path = "/v2/face-recognition/collections/{id}", tag = "collections",
    params(("id" = String, Path, description = "Collection `_id` or `code`")),
    responses((status = 200, body = Envelope<Collection>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
fn collections_delete() {}

// ---- persons ----

#[utoipa::path(get, path = "/v2/face-recognition/persons", tag = "persons",
    params(
        ("page" = Option<u32>, Query, description = "From 1"),
        ("limit" = Option<u32>, Query, description = "1-100, default 10 (`perPage` too)"),
        ("collection" = Option<String>, Query, description = "Only this collection's members"),
        ("status" = Option<PersonStatus>, Query),
        ("populates[]" = Option<String>, Query, description = "`collections`: collections as objects"),
    ),
    responses((status = 200, body = PersonPage)),
    security(("bearer" = [])))]
fn persons_list() {}

/// Enrols a person: the largest face of each image.
#[utoipa::path(post, path = "/v2/face-recognition/persons", tag = "persons",
    request_body = PersonBody,
    responses((status = 200, body = Envelope<Person>),
        (status = 404, description = "An unknown collection", body = ErrorBody),
        (status = 412, description = "`no_face_detected`, `invalid_image`, `image_too_large`, `only_images_in_base64`, `person_already_set`", body = ErrorBody)),
    security(("bearer" = [])))]
fn persons_create() {}

#[utoipa::path(get, path = "/v2/face-recognition/persons/lookup", tag = "persons",
    params(
        ("name" = String, Query, description = "At least 3 letters"),
        ("date_of_birth" = Option<String>, Query, description = "YYYY-MM-DD"),
        ("page" = Option<u32>, Query), ("limit" = Option<u32>, Query),
    ),
    responses((status = 200, body = Envelope<Vec<Person>>)),
    security(("bearer" = [])))]
fn persons_lookup() {}

/// Enrols only if nobody in the collection matches at `min_score` and the first image is live.
#[utoipa::path(post, path = "/v2/face-recognition/persons/search-live-face", tag = "persons",
    request_body = EnrolLiveFaceBody,
    responses((status = 200, body = Envelope<Person>),
        (status = 409, description = "`409:duplicated_person`, `409:liveness_failed`, or validation", body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 501, description = "No liveness models", body = ErrorBody)),
    security(("bearer" = [])))]
fn persons_search_live_face() {}

#[utoipa::path(get, path = "/v2/face-recognition/persons/{id}", tag = "persons",
    params(("id" = String, Path)),
    responses((status = 200, body = Envelope<Person>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
fn persons_retrieve() {}

#[utoipa::path(put, path = "/v2/face-recognition/persons/{id}", tag = "persons",
    params(("id" = String, Path)),
    request_body = PersonUpdateBody,
    responses((status = 200, body = Envelope<Person>), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn persons_update() {}

/// Erases the person (record, embeddings, thumbnails; gone from search at once), or with
/// `?collection=` detaches them from that collection only.
#[utoipa::path(delete, path = "/v2/face-recognition/persons/{id}", tag = "persons",
    params(("id" = String, Path),
        ("collection" = Option<String>, Query, description = "Detach from this collection only")),
    responses((status = 200, body = Envelope<Deleted>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
fn persons_delete() {}

// ---- search ----

#[utoipa::path(post, path = "/v2/face-recognition/search", tag = "search",
    request_body = SearchBody,
    responses((status = 200, body = SearchAnswer), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn search() {}

/// Like `/search`, for tight face crops: a crop without a detectable face is embedded whole.
#[utoipa::path(post, path = "/v2/face-recognition/search/crops", tag = "search",
    request_body = SearchBody,
    responses((status = 200, body = SearchAnswer), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn search_crops() {}

#[utoipa::path(post, path = "/v2/face-recognition/search-active-user", tag = "search",
    request_body = ActiveUserBody,
    responses((status = 200, body = SearchAnswer), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn search_active_user() {}

/// Liveness on the probe, then 1:N search.
#[utoipa::path(post, path = "/v2/face-recognition/search-live-face", tag = "search",
    request_body = SearchLiveFaceBody,
    responses((status = 200, body = LiveSearchAnswer),
        (status = 409, description = "`409:liveness_failed`, or validation", body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 501, body = ErrorBody)),
    security(("bearer" = [])))]
fn search_live_face() {}

// ---- 1:1, detection, liveness ----

#[utoipa::path(post, path = "/v2/face-recognition/verify", tag = "biometrics",
    request_body = VerifyBody,
    responses((status = 200, body = Envelope<Verified>), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn verify() {}

#[utoipa::path(post, path = "/v2/face-recognition/compare", tag = "biometrics",
    request_body = CompareBody,
    responses((status = 200, body = Envelope<Compared>), (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn compare() {}

#[utoipa::path(post, path = "/v2/face-recognition/detect", tag = "biometrics",
    request_body = DetectBody,
    responses((status = 200, body = Envelope<Detected>), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody)),
    security(("bearer" = [])))]
fn detect() {}

#[utoipa::path(post, path = "/v2/face-recognition/liveness", tag = "biometrics",
    request_body = LivenessBody,
    responses((status = 200, body = Envelope<Liveness>), (status = 412, body = ErrorBody),
        (status = 501, body = ErrorBody)),
    security(("bearer" = [])))]
fn liveness() {}

/// The same as `/liveness`.
#[utoipa::path(post, path = "/v2/face-recognition/liveness-score", tag = "biometrics",
    request_body = LivenessBody,
    responses((status = 200, body = Envelope<Liveness>), (status = 412, body = ErrorBody),
        (status = 501, body = ErrorBody)),
    security(("bearer" = [])))]
fn liveness_score() {}

#[utoipa::path(post, path = "/v2/face-recognition/compare-live", tag = "biometrics",
    request_body = CompareLiveBody,
    responses((status = 200, body = Envelope<CompareLive>), (status = 412, body = ErrorBody),
        (status = 501, body = ErrorBody)),
    security(("bearer" = [])))]
fn compare_live() {}

#[utoipa::path(post, path = "/v2/face-recognition/compare-with-liveness", tag = "biometrics",
    request_body = CompareWithLivenessBody,
    responses((status = 200, body = Envelope<CompareWithLiveness>), (status = 412, body = ErrorBody),
        (status = 501, body = ErrorBody)),
    security(("bearer" = [])))]
fn compare_with_liveness() {}
