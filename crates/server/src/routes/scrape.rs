//! `GET /metrics`: the Prometheus text format, behind `--metrics-token` when one is set.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

/// Whether the `Authorization` header carries the metrics token (compared in constant time).
fn authorized(expected: &str, headers: &HeaderMap) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(char::is_whitespace))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /metrics`: the gauges read now, then everything rendered.
pub async fn scrape(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &st.metrics.token {
        if !authorized(token, &headers) {
            return ApiError::Unauthenticated.into_response();
        }
    }
    let body = crate::metrics::render(&st.service).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn only_the_exact_bearer_token_reads_metrics() {
        assert!(authorized("s3cret", &bearer("Bearer s3cret")));
        assert!(authorized("s3cret", &bearer("bearer  s3cret ")));
        assert!(!authorized("s3cret", &bearer("Bearer s3cre")));
        assert!(!authorized("s3cret", &bearer("Bearer s3cretx")));
        assert!(!authorized("s3cret", &bearer("s3cret")));
        assert!(!authorized("s3cret", &bearer("Basic s3cret")));
        assert!(!authorized("s3cret", &HeaderMap::new()));
    }
}
