//! The few calls `visage enroll` makes to a running server's HTTP API: every rule the API
//! applies to an enrolment applies here too. Busy answers (503, 429) are retried after their
//! `Retry-After`; a refused token or an unreachable server stops the whole run.

use std::time::Duration;

use anyhow::{anyhow, bail};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

const API: &str = "/v2/face-recognition";
/// Busy answers retried per request before it is reported as failed with `server_busy`.
const BUSY_RETRIES: u32 = 60;
/// The longest `Retry-After` honoured.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Attempts when the connection fails (refused, reset, timed out) before the run stops.
const CONNECT_ATTEMPTS: u32 = 4;
/// One request's time limit (an enrolment runs the face pipeline up to three times).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// A request the server refused: its Verifik error code, and the sentence when the code alone
/// does not say it (validation errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub detail: Option<String>,
}

#[derive(Clone)]
pub struct Api {
    http: Client,
    base: String,
    auth: String,
}

impl Api {
    pub fn new(url: &str, token: &str) -> anyhow::Result<Api> {
        let base = url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("bad --url {url:?}: expected http://HOST:PORT");
        }
        let http = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| anyhow!("HTTP client: {e}"))?;
        Ok(Api {
            http,
            base: base.to_owned(),
            auth: format!("Bearer {}", token.trim()),
        })
    }

    /// Checks that the server answers and takes the token (and that the collection exists).
    /// A server that cannot be reached at all stops the run at once.
    pub fn check(&self, collection: Option<&str>) -> anyhow::Result<()> {
        let (status, body) = self.send_tries(|| self.get("/persons?page=1&limit=1"), 1)?;
        if status != 200 {
            bail!("{}{API}/persons answered {status}: {body}", self.base);
        }
        if let Some(c) = collection {
            let (status, _) = self.send(|| self.get(&format!("/collections/{c}")))?;
            match status {
                200 => {}
                404 => bail!("no collection {c:?} for this token's client (--collection)"),
                s => bail!("looking up the collection {c:?}: the server answered {s}"),
            }
        }
        Ok(())
    }

    /// Enrols a person; its `_id`, or the refusal.
    pub fn enrol(&self, body: &Value) -> anyhow::Result<Result<String, Refusal>> {
        let (status, answer) = self.send(|| self.post("/persons", body))?;
        if status == 200 {
            return match answer["data"]["_id"].as_str() {
                Some(id) => Ok(Ok(id.to_owned())),
                None => bail!("the server's enrolment answer has no data._id"),
            };
        }
        Ok(Err(refusal(status, &answer)))
    }

    /// The area in pixels of the largest face detected in `image` (0 when there is none), or
    /// the refusal (an invalid image).
    pub fn largest_face(&self, image: &str) -> anyhow::Result<Result<f64, Refusal>> {
        let body = json!({ "image": image });
        let (status, answer) = self.send(|| self.post("/detect", &body))?;
        if status != 200 {
            return Ok(Err(refusal(status, &answer)));
        }
        let area = answer["data"]["faces"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let b = &f["bounding_box"];
                b["width"].as_f64().unwrap_or(0.0) * b["height"].as_f64().unwrap_or(0.0)
            })
            .fold(0.0, f64::max);
        Ok(Ok(area))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http
            .get(format!("{}{API}{path}", self.base))
            .header("Authorization", &self.auth)
    }

    fn post(&self, path: &str, body: &Value) -> RequestBuilder {
        self.http
            .post(format!("{}{API}{path}", self.base))
            .header("Authorization", &self.auth)
            .json(body)
    }

    /// Sends (again as needed) and reads the answer: status and JSON body (`null` when not
    /// JSON). Busy answers are waited out; 401 and 403 stop the run.
    fn send(&self, request: impl Fn() -> RequestBuilder) -> anyhow::Result<(u16, Value)> {
        self.send_tries(request, CONNECT_ATTEMPTS)
    }

    fn send_tries(
        &self,
        request: impl Fn() -> RequestBuilder,
        connect_attempts: u32,
    ) -> anyhow::Result<(u16, Value)> {
        let mut busy = 0;
        let mut failed_connections = 0;
        loop {
            let response = match request().send() {
                Ok(r) => r,
                Err(e) => {
                    failed_connections += 1;
                    if failed_connections >= connect_attempts {
                        bail!("the server at {} cannot be reached: {e}", self.base);
                    }
                    std::thread::sleep(Duration::from_secs(1 << failed_connections));
                    continue;
                }
            };
            let status = response.status().as_u16();
            if matches!(status, 429 | 503) && busy < BUSY_RETRIES {
                busy += 1;
                std::thread::sleep(retry_after(&response));
                continue;
            }
            let body: Value = response.json().unwrap_or(Value::Null);
            match status {
                401 => bail!("the server refused the token (401 {})", body["message"]),
                403 => bail!("the token is expired or revoked (403 {})", body["message"]),
                _ => return Ok((status, body)),
            }
        }
    }
}

fn retry_after(response: &Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .clamp(Duration::from_millis(100), LONGEST_WAIT)
}

/// The Verifik error code of a refusal: the `message` when it is a code
/// (`no_face_detected`), else the `code` with the sentence as detail (validation errors).
pub fn refusal(status: u16, body: &Value) -> Refusal {
    let message = body["message"].as_str().unwrap_or_default();
    let is_code = !message.is_empty()
        && message
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':');
    if is_code {
        return Refusal {
            code: message.to_owned(),
            detail: None,
        };
    }
    let code = body["code"]
        .as_str()
        .map_or_else(|| format!("http_{status}"), str::to_owned);
    Refusal {
        code,
        detail: Some(message.to_owned()).filter(|m| !m.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_verifik_code() {
        let r = refusal(
            412,
            &json!({"message": "no_face_detected", "code": "ERROR"}),
        );
        assert_eq!(r.code, "no_face_detected");
        assert_eq!(r.detail, None);
        let r = refusal(
            409,
            &json!({"message": "\"name\" is required", "code": "MissingParameter"}),
        );
        assert_eq!(r.code, "MissingParameter");
        assert_eq!(r.detail.as_deref(), Some("\"name\" is required"));
        assert_eq!(refusal(502, &Value::Null).code, "http_502");
    }
}
