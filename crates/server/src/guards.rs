//! Middleware every request passes: sizes and the body budget before anything is read,
//! `Connection: close` after an early error, and headers that keep answers out of caches.

use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::admission::BodyBudget;
use crate::error::ApiError;

/// Longest request target read (paths and query strings of this API are far shorter).
const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes read (names and values); a JWT is ~250 bytes.
const MAX_HEADER_BYTES: usize = 32 * 1024;

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn has_body(req: &Request) -> bool {
    req.headers().contains_key(TRANSFER_ENCODING) || declared_length(req).is_some_and(|n| n > 0)
}

/// Refuses before reading the body: a target or headers larger than we read (414, 431), a
/// declared body over the limit (413), and a body that does not fit in the server-wide
/// budget of bytes being read (503). The budget is held until the answer is made.
pub async fn admit(req: Request, next: Next, body_limit: usize, budget: BodyBudget) -> Response {
    if req.uri().to_string().len() > MAX_URI_BYTES {
        return ApiError::UriTooLong.into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge.into_response();
    }
    let reserve = match declared_length(&req) {
        Some(n) if n > body_limit as u64 => return ApiError::PayloadTooLarge.into_response(),
        Some(n) => n as usize,
        // A streamed body may grow to the limit.
        None if has_body(&req) => body_limit,
        None => 0,
    };
    if reserve == 0 {
        return next.run(req).await;
    }
    match budget.reserve(reserve) {
        Some(_held) => next.run(req).await,
        None => ApiError::Busy.into_response(),
    }
}

/// An error answered before the request body was read (a refused token, an unavailable
/// database, a body too large) leaves unread bytes on the connection, which the server then
/// closes; saying so in `Connection: close` stops the client from sending its next request
/// on a connection that is going away.
pub async fn close_after_unread_body(req: Request, next: Next) -> Response {
    let had_body = has_body(&req);
    let mut response = next.run(req).await;
    let status = response.status();
    if had_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Answers carry faces and personal data: no cache may keep them, no browser may sniff them
/// into something else.
pub async fn private_responses(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
