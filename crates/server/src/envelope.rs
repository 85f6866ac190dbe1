//! The Verifik success envelope: `{id, data, signature: {message, dateTime}}`.

use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};

use crate::access_log::new_request_id;

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
        let id = crate::access_log::current_request_id().unwrap_or_else(new_request_id);
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
