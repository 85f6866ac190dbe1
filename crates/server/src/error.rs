//! Every error the API can answer with, and the one table mapping each to its HTTP status
//! and Verifik body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, malformed or badly signed credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// A well-formed token that has expired or was revoked.
    #[error("token expired or revoked")]
    TokenExpired,
    /// `/v2/auth/session` refuses to renew a token that is invalid, expired or revoked; its
    /// body is signed like an envelope, with this message.
    #[error("token renewal refused")]
    RenewalRefused(std::sync::Arc<str>),
    /// A request field failed validation; the text is in Joi's wording.
    #[error("validation: {0}")]
    Validation(String),
    /// List query parameters that cannot be understood.
    #[error("invalid query parameters")]
    InvalidQuery,
    #[error("person not found")]
    PersonNotFound,
    #[error("invalid collection")]
    CollectionNotFound,
    /// A person with the same name and date of birth is already in a requested collection.
    #[error("person already set")]
    PersonAlreadySet(Value),
    /// `/persons/search-live-face` found someone at or above `min_score` in the collection.
    #[error("duplicated person")]
    DuplicatedPerson,
    /// The probe's live score is not above `liveness_min_score`.
    #[error("liveness failed")]
    LivenessFailed,
    /// The face is too small for a trustworthy live score.
    #[error("face too small")]
    FaceTooSmall,
    /// A liveness step was asked for and this server has no presentation-attack model.
    #[error("liveness not available")]
    LivenessNotAvailable,
    /// An image string that is not base64 (or is too short to be an image).
    #[error("only images in base64")]
    NotBase64,
    /// An image URL no allowed prefix admits (or none is allowed: the default).
    #[error("image urls disabled")]
    ImageUrlsDisabled,
    /// An allowed image URL whose host resolves to an address that is not public.
    #[error("image url not allowed")]
    ImageUrlNotAllowed,
    /// An allowed image URL that did not answer with an image in time (error status,
    /// redirect, no connection, deadline).
    #[error("image url unreachable")]
    ImageUrlUnreachable,
    /// An allowed image URL whose bytes go over the body limit.
    #[error("image url too large")]
    ImageUrlTooLarge,
    #[error("invalid image")]
    InvalidImage,
    #[error("image too large")]
    ImageTooLarge,
    #[error("no face detected")]
    NoFaceDetected,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("route not found")]
    RouteNotFound,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request line or headers are larger than this server reads.
    #[error("uri too long")]
    UriTooLong,
    #[error("headers too large")]
    HeadersTooLarge,
    /// The body did not arrive within the body deadline.
    #[error("request timeout")]
    RequestTimeout,
    /// The client's rate limit; try again after the duration.
    #[error("rate limited")]
    RateLimited(std::time::Duration),
    /// The client's faces were embedded by a model this server does not load.
    #[error("embedding model not served")]
    ModelNotServed,
    /// The CPU queue is full; try again shortly.
    #[error("busy")]
    Busy,
    /// Anything unexpected; the detail is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// `"field" is required`, as Joi says it.
    pub fn required(field: &str) -> Self {
        ApiError::Validation(format!("\"{field}\" is required"))
    }

    pub fn status_and_body(&self) -> (StatusCode, Value) {
        let error = |message: &str| json!({"message": message, "code": "ERROR"});
        match self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                json!({"message": "Authentication required", "code": "UNAUTHORIZED"}),
            ),
            ApiError::TokenExpired => (
                StatusCode::FORBIDDEN,
                json!({"message": "token_expired", "code": "FORBIDDEN"}),
            ),
            ApiError::RenewalRefused(signature) => (
                StatusCode::UNAUTHORIZED,
                json!({
                    "code": "Unauthorized",
                    "message": "Invalid or expired token.",
                    "signature": {"message": &**signature, "dateTime": crate::envelope::date_time()},
                }),
            ),
            ApiError::Validation(message) => (
                StatusCode::CONFLICT,
                json!({"message": message, "code": "MissingParameter"}),
            ),
            ApiError::InvalidQuery => (
                StatusCode::CONFLICT,
                json!({"message": "Invalid query parameters", "code": "INVALID_PARAMETERS"}),
            ),
            ApiError::PersonNotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "Person not found", "message": "PERSON_NOT_FOUND"}),
            ),
            ApiError::CollectionNotFound => (StatusCode::NOT_FOUND, error("invalid_collection")),
            ApiError::PersonAlreadySet(existing) => (
                StatusCode::PRECONDITION_FAILED,
                json!({"message": "person_already_set", "code": "PreconditionFailed", "data": existing}),
            ),
            ApiError::DuplicatedPerson => (StatusCode::CONFLICT, error("409:duplicated_person")),
            ApiError::LivenessFailed => (StatusCode::CONFLICT, error("409:liveness_failed")),
            ApiError::FaceTooSmall => (StatusCode::PRECONDITION_FAILED, error("face_too_small")),
            ApiError::LivenessNotAvailable => {
                (StatusCode::NOT_IMPLEMENTED, error("liveness_not_available"))
            }
            ApiError::NotBase64 => (
                StatusCode::PRECONDITION_FAILED,
                error("only_images_in_base64"),
            ),
            ApiError::ImageUrlsDisabled => (
                StatusCode::PRECONDITION_FAILED,
                error("image_urls_disabled"),
            ),
            ApiError::ImageUrlNotAllowed => (
                StatusCode::PRECONDITION_FAILED,
                error("image_url_not_allowed"),
            ),
            ApiError::ImageUrlUnreachable => (
                StatusCode::PRECONDITION_FAILED,
                error("image_url_unreachable"),
            ),
            ApiError::ImageUrlTooLarge => (
                StatusCode::PRECONDITION_FAILED,
                error("image_url_too_large"),
            ),
            ApiError::InvalidImage => (StatusCode::PRECONDITION_FAILED, error("invalid_image")),
            ApiError::ImageTooLarge => (StatusCode::PRECONDITION_FAILED, error("image_too_large")),
            ApiError::NoFaceDetected => {
                (StatusCode::PRECONDITION_FAILED, error("no_face_detected"))
            }
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, error("payload_too_large"))
            }
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, error("route_not_found")),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, error("method_not_allowed"))
            }
            ApiError::UriTooLong => (StatusCode::URI_TOO_LONG, error("uri_too_long")),
            ApiError::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                error("headers_too_large"),
            ),
            ApiError::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, error("request_timeout")),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, error("too_many_requests")),
            ApiError::ModelNotServed => (
                StatusCode::SERVICE_UNAVAILABLE,
                error("embedding_model_not_served"),
            ),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, error("server_busy")),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, error("internal_error")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let (status, body) = self.status_and_body();
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match &self {
            ApiError::Busy => Some(1),
            ApiError::RateLimited(wait) => Some(wait.as_secs().max(1)),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        use service::{Error as E, ImageError as I};
        match e {
            E::Unauthenticated => ApiError::Unauthenticated,
            E::TokenExpired => ApiError::TokenExpired,
            E::Invalid { field, reason } => ApiError::Validation(format!("\"{field}\" {reason}")),
            E::PersonNotFound => ApiError::PersonNotFound,
            E::CollectionNotFound => ApiError::CollectionNotFound,
            E::DuplicatePerson(person) => {
                ApiError::PersonAlreadySet(crate::present::person(&person, None))
            }
            E::DuplicatedFace => ApiError::DuplicatedPerson,
            E::LivenessFailed => ApiError::LivenessFailed,
            E::NoFace => ApiError::NoFaceDetected,
            E::FaceTooSmall => ApiError::FaceTooSmall,
            E::LivenessUnavailable => ApiError::LivenessNotAvailable,
            E::Image(I::NotBase64) => ApiError::NotBase64,
            E::Image(I::UrlsDisabled) => ApiError::ImageUrlsDisabled,
            E::Image(I::UrlNotAllowed) => ApiError::ImageUrlNotAllowed,
            E::Image(I::UrlUnreachable) => ApiError::ImageUrlUnreachable,
            E::Image(I::UrlTooLarge) => ApiError::ImageUrlTooLarge,
            E::Image(I::Invalid) => ApiError::InvalidImage,
            E::Image(I::DimensionsTooLarge) => ApiError::ImageTooLarge,
            E::Image(I::EncodedTooLarge) => ApiError::PayloadTooLarge,
            E::ModelNotServed { model } => {
                tracing::warn!(%model, "a client's faces are of a model this server does not load: start it with --reembed-from");
                ApiError::ModelNotServed
            }
            E::Busy => ApiError::Busy,
            E::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
