//! The Verifik success envelope: `{id, data, signature: {message, dateTime}}`.

use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Five random alphanumerics, like Verifik's request ids.
pub fn request_id() -> String {
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

/// Verifik's human-readable time stamp, e.g. `January 16, 2024 3:44 PM` (UTC).
pub fn date_time() -> String {
    Utc::now().format("%B %-d, %Y %-I:%M %p").to_string()
}

/// A successful answer; `extra` holds top-level fields beside `data` (e.g. `pagination`).
pub struct Envelope {
    data: Value,
    extra: Map<String, Value>,
    message: std::sync::Arc<str>,
}

impl Envelope {
    pub fn new(message: std::sync::Arc<str>, data: Value) -> Self {
        Envelope {
            data,
            extra: Map::new(),
            message,
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

impl IntoResponse for Envelope {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        // The request's id (also its `X-Request-Id` and in its access-log line).
        let id = crate::access_log::current_request_id().unwrap_or_else(request_id);
        body.insert("id".into(), Value::String(id));
        body.insert("data".into(), self.data);
        body.extend(self.extra);
        body.insert(
            "signature".into(),
            json!({
                "message": &*self.message,
                "dateTime": date_time(),
            }),
        );
        axum::Json(Value::Object(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_five_alphanumerics() {
        for _ in 0..100 {
            let id = request_id();
            assert_eq!(id.len(), 5, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
