//! Request ids and the access log: every answer carries `X-Request-Id` (the client's own, if
//! it sent a well-formed one; else the envelope's fresh id), and one INFO line per request
//! says method, matched route, status, latency, client and request id. Never bodies, images,
//! names or embeddings.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use service::ClientId;

use crate::AppState;

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Five random alphanumerics, like Verifik's request ids.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    // Falls back to fixed bytes only if the OS has no randomness, which would already
    // have failed at start-up when the JWT secret was made; the id is a trace aid.
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        // 62 * 4 = 248: values 248..=255 are skipped to keep the draw uniform.
        .filter(|b| **b < 248)
        .take(5)
        .map(|b| char::from(ID_ALPHABET[usize::from(*b % 62)]))
        .collect()
}

const HEADER: &str = "x-request-id";

/// What the log line needs to learn while the request runs.
struct Current {
    id: String,
    route: Mutex<Option<String>>,
    client: Mutex<Option<ClientId>>,
}

tokio::task_local! {
    static CURRENT: Arc<Current>;
}

/// The id of the request being answered on this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|c| c.id.clone()).ok()
}

/// Records the authenticated client for the access log.
pub fn record_client(client: &ClientId) {
    let _ = CURRENT.try_with(|c| {
        if let Ok(mut slot) = c.client.lock() {
            *slot = Some(client.clone());
        }
    });
}

/// A client's id is echoed only when it is short and plain (no header or log injection).
fn well_formed(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    (!text.is_empty() && text.len() <= 64 && text.chars().all(plain)).then(|| text.to_owned())
}

/// The outer layer: the request id, the task-local record, the header, the log line and
/// the HTTP metrics.
pub async fn log_request(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(well_formed)
        .unwrap_or_else(new_request_id);
    let method = req.method().clone();
    let current = Arc::new(Current {
        id: id.clone(),
        route: Mutex::new(None),
        client: Mutex::new(None),
    });
    let started = Instant::now();
    let mut response = CURRENT.scope(current.clone(), next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    let route = current
        .route
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .unwrap_or_else(|| "(no route)".to_owned());
    let client = current.client.lock().ok().and_then(|c| c.clone());
    let elapsed = started.elapsed();
    crate::metrics::record_request(
        &st.metrics,
        &method,
        &route,
        response.status(),
        elapsed,
        client.as_ref(),
    );
    tracing::info!(
        target: "visage::access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        ms = elapsed.as_secs_f64() * 1e3,
        client = %client.as_ref().map_or("-", ClientId::as_str),
        request_id = %id,
        "request"
    );
    response
}

/// The inner layer (on matched routes only): the route's pattern, never the raw path, which
/// holds ids.
pub async fn record_route(req: Request, next: Next) -> Response {
    if let Some(path) = req.extensions().get::<MatchedPath>() {
        let route = path.as_str().to_owned();
        let _ = CURRENT.try_with(|c| {
            if let Ok(mut slot) = c.route.lock() {
                *slot = Some(route);
            }
        });
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_five_alphanumerics() {
        for _ in 0..100 {
            let id = new_request_id();
            assert_eq!(id.len(), 5, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn only_short_plain_ids_are_echoed() {
        let ok = HeaderValue::from_static("req-42_a.b");
        assert_eq!(well_formed(&ok).as_deref(), Some("req-42_a.b"));
        for bad in ["", "has space", "new\\nline", "ünï"] {
            if let Ok(v) = HeaderValue::from_str(bad) {
                assert_eq!(well_formed(&v), None, "{bad:?}");
            }
        }
        let long = HeaderValue::from_str(&"a".repeat(65)).expect("header");
        assert_eq!(well_formed(&long), None);
    }
}
