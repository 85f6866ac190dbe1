//! Request bodies: JSON parsing that answers with our error bodies, and field checks
//! worded as Joi words them (`"name" is required`, `"x" must be a string`, ...).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};
use service::ClientId;

use crate::error::ApiError;
use crate::AppState;

/// A JSON object body. Bad JSON, or JSON that is not an object, is a 409 validation error;
/// a body over the limit is a 413.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    /// A body that has not arrived in full within the body deadline is 408: a client that
    /// stalls mid-upload holds its memory and its share of the body budget no longer.
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let client = req.extensions().get::<ClientId>().cloned();
        let read = Bytes::from_request(req, state);
        let bytes = tokio::time::timeout(state.body_timeout, read)
            .await
            .map_err(|_| ApiError::RequestTimeout)?
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::Validation("\"body\" could not be read".into())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => {
                if let Some(client) = client {
                    crate::admission::charge_image_urls(state, &client, &map)?;
                }
                Ok(JsonObject(map))
            }
            Ok(_) => Err(ApiError::Validation(
                "\"value\" must be of type object".into(),
            )),
            Err(_) => Err(ApiError::Validation("\"body\" must be valid JSON".into())),
        }
    }
}

/// Characters that change how a name displays without being visible themselves.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space, joiners, marks
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{061C}' // Arabic letter mark
            | '\u{FEFF}' // zero-width no-break space
        )
}

/// Typed access to the fields of a body, each failure a Joi-worded 409.
pub struct Fields<'a>(pub &'a Map<String, Value>);

fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

impl<'a> Fields<'a> {
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match present(self.0.get(key)) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::Validation(format!("\"{key}\" must be a string"))),
        }
    }

    /// A name: no control characters, no bidirectional overrides or isolates and no
    /// zero-width characters, which would make one name display as another.
    pub fn opt_name(&self, key: &str) -> Result<Option<&'a str>, ApiError> {
        match self.opt_str(key)? {
            Some(s) if s.chars().any(is_deceptive) => Err(ApiError::Validation(format!(
                "\"{key}\" must not contain control, bidirectional or zero-width characters"
            ))),
            other => Ok(other),
        }
    }

    pub fn req_name(&self, key: &str) -> Result<&'a str, ApiError> {
        self.opt_name(key)?;
        self.req_str(key)
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, ApiError> {
        let s = self.opt_str(key)?.ok_or_else(|| ApiError::required(key))?;
        if s.trim().is_empty() {
            return Err(ApiError::Validation(format!(
                "\"{key}\" is not allowed to be empty"
            )));
        }
        Ok(s)
    }

    /// One of `allowed`, compared exactly.
    pub fn opt_enum(&self, key: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        match self.opt_str(key)? {
            Some(s) if !allowed.contains(&s) => Err(ApiError::Validation(format!(
                "\"{key}\" must be one of [{}]",
                allowed.join(", ")
            ))),
            other => Ok(other),
        }
    }

    pub fn opt_date(&self, key: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(s) => {
                // Accept a bare date or the date part of an ISO date-time.
                let day = s.get(..10).unwrap_or(s);
                chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| {
                        ApiError::Validation(format!("\"{key}\" must be in YYYY-MM-DD format"))
                    })
            }
        }
    }

    /// An array of strings with `min..=max` items.
    pub fn opt_str_array(
        &self,
        key: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<Vec<&'a str>>, ApiError> {
        let Some(value) = present(self.0.get(key)) else {
            return Ok(None);
        };
        let items = value
            .as_array()
            .ok_or_else(|| ApiError::Validation(format!("\"{key}\" must be an array")))?;
        if items.len() < min {
            return Err(ApiError::Validation(format!(
                "\"{key}\" must contain at least {min} items"
            )));
        }
        if items.len() > max {
            return Err(ApiError::Validation(format!(
                "\"{key}\" must contain less than or equal to {max} items"
            )));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .ok_or_else(|| ApiError::Validation(format!("\"{key}[{i}]\" must be a string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub fn req_str_array(
        &self,
        key: &str,
        min: usize,
        max: usize,
    ) -> Result<Vec<&'a str>, ApiError> {
        self.opt_str_array(key, min, max)?
            .ok_or_else(|| ApiError::required(key))
    }

    /// A string, or an array of `min..=max` strings (fields the docs show both ways).
    pub fn req_str_or_array(
        &self,
        key: &str,
        min: usize,
        max: usize,
    ) -> Result<Vec<&'a str>, ApiError> {
        match present(self.0.get(key)) {
            Some(Value::String(_)) => Ok(vec![self.req_str(key)?]),
            _ => self.req_str_array(key, min, max),
        }
    }

    pub fn req_enum(&self, key: &str, allowed: &[&str]) -> Result<&'a str, ApiError> {
        self.opt_enum(key, allowed)?
            .ok_or_else(|| ApiError::required(key))
    }

    /// A number within `min..=max`; numeric strings are converted, as Joi does by default.
    pub fn opt_number(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>, ApiError> {
        let n = match present(self.0.get(key)) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        let n = n
            .filter(|n| n.is_finite())
            .ok_or_else(|| ApiError::Validation(format!("\"{key}\" must be a number")))?;
        if n < min {
            return Err(ApiError::Validation(format!(
                "\"{key}\" must be greater than or equal to {min}"
            )));
        }
        if n > max {
            return Err(ApiError::Validation(format!(
                "\"{key}\" must be less than or equal to {max}"
            )));
        }
        Ok(Some(n))
    }

    pub fn req_number(&self, key: &str, min: f64, max: f64) -> Result<f64, ApiError> {
        self.opt_number(key, min, max)?
            .ok_or_else(|| ApiError::required(key))
    }

    /// A whole number within `min..=max`.
    pub fn opt_integer(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        match self.opt_number(key, f64::from(min), f64::from(max))? {
            None => Ok(None),
            Some(n) if n.fract() == 0.0 => Ok(Some(n as u32)),
            Some(_) => Err(ApiError::Validation(format!(
                "\"{key}\" must be an integer"
            ))),
        }
    }

    /// A boolean; `"true"` and `"false"` strings are converted, as Joi does by default.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match present(self.0.get(key)) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(ApiError::Validation(format!("\"{key}\" must be a boolean"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(e: ApiError) -> String {
        match e {
            ApiError::Validation(m) => m,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn messages_follow_joi_wording() {
        let body =
            json!({"name": 5, "gender": "X", "images": [], "dob": "1990-13-45", "list": ["a", 1]});
        let map = body.as_object().expect("object");
        let f = Fields(map);
        assert_eq!(
            msg(f.req_str("missing").unwrap_err()),
            "\"missing\" is required"
        );
        assert_eq!(
            msg(f.req_str("name").unwrap_err()),
            "\"name\" must be a string"
        );
        assert_eq!(
            msg(f.opt_enum("gender", &["M", "F"]).unwrap_err()),
            "\"gender\" must be one of [M, F]"
        );
        assert_eq!(
            msg(f.req_str_array("images", 1, 3).unwrap_err()),
            "\"images\" must contain at least 1 items"
        );
        assert_eq!(
            msg(f.opt_date("dob").unwrap_err()),
            "\"dob\" must be in YYYY-MM-DD format"
        );
        assert_eq!(
            msg(f.opt_str_array("list", 0, 9).unwrap_err()),
            "\"list[1]\" must be a string"
        );
        let body =
            json!({"min": "0.1", "max": 1.5, "word": "x", "frac": 2.5, "flag": 1, "probe": "abc"});
        let f = Fields(body.as_object().expect("object"));
        assert_eq!(
            msg(f.req_number("min", 0.2, 1.0).unwrap_err()),
            "\"min\" must be greater than or equal to 0.2"
        );
        assert_eq!(
            msg(f.req_number("max", 0.2, 1.0).unwrap_err()),
            "\"max\" must be less than or equal to 1"
        );
        assert_eq!(
            msg(f.req_number("word", 0.0, 1.0).unwrap_err()),
            "\"word\" must be a number"
        );
        assert_eq!(
            msg(f.opt_integer("frac", 1, 100).unwrap_err()),
            "\"frac\" must be an integer"
        );
        assert_eq!(
            msg(f.opt_bool("flag").unwrap_err()),
            "\"flag\" must be a boolean"
        );
        assert_eq!(
            msg(f.req_enum("mode", &["FAST", "ACCURATE"]).unwrap_err()),
            "\"mode\" is required"
        );
        assert_eq!(f.req_number("min", 0.0, 1.0).ok(), Some(0.1));
        for name in [
            "Ev\u{202E}il",
            "Zero\u{200B}Width",
            "Bell\u{7}",
            "Tab\tbed",
            "Iso\u{2066}late",
        ] {
            let body = json!({ "name": name });
            let f = Fields(body.as_object().expect("object"));
            assert_eq!(
                msg(f.req_name("name").unwrap_err()),
                "\"name\" must not contain control, bidirectional or zero-width characters",
                "{name:?}"
            );
        }
        let body = json!({"name": "José Ñúñez-O'Brien 李"});
        assert!(Fields(body.as_object().expect("object"))
            .req_name("name")
            .is_ok());
        assert_eq!(f.req_str_or_array("probe", 1, 3).ok(), Some(vec!["abc"]));
    }
}
