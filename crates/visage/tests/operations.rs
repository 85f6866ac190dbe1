//! What an operator relies on, over a real server: probes, and request ids that tie an
//! answer to its access-log line (which never holds names or images).

mod common;

use common::{TestServer, BASE};
use serde_json::json;

#[test]
fn liveness_and_readiness_probes_answer() {
    let s = TestServer::start();
    for probe in ["/livez", "/readyz", "/health"] {
        let (status, body) = s.call("GET", probe, None, None);
        assert_eq!((status, body), (200, json!({"status": "ok"})), "{probe}");
    }
}

#[test]
fn the_request_id_is_the_envelope_id_and_is_in_the_access_log() {
    let s = TestServer::start();
    let t = s.token("acme");
    let marker = "Zebediah Quartermaine";
    let (status, headers, body) = s.call_raw(
        "POST",
        &format!("{BASE}/collections"),
        Some(&t),
        Some(json!({ "name": marker }).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id")
        .to_owned();
    assert_eq!(body["id"].as_str(), Some(id.as_str()));
    let collection = body["data"]["_id"].as_str().expect("_id").to_owned();
    let (status, headers, _) = s.call_raw(
        "GET",
        &format!("{BASE}/collections/{collection}"),
        Some(&t),
        None,
    );
    assert_eq!(status, 200);
    let second = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id")
        .to_owned();
    // The log line is written after the answer: give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let line_of = |id: &str| {
        s.log_lines()
            .into_iter()
            .find(|l| l.contains("visage::access") && l.contains(&format!("request_id={id}")))
    };
    while (line_of(&id).is_none() || line_of(&second).is_none())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let line = line_of(&id).expect("an access-log line for the request");
    for part in [
        "method=POST",
        "route=/v2/face-recognition/collections",
        "status=200",
        "client=acme",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    let line = line_of(&second).expect("an access-log line for the second request");
    assert!(
        line.contains("route=/v2/face-recognition/collections/{id}") && !line.contains(&collection),
        "the route pattern, not the path with its id: {line}"
    );
    assert!(
        s.log_lines().iter().all(|l| !l.contains(marker)),
        "names never reach the log"
    );
}

#[test]
fn a_well_formed_request_id_from_the_client_is_kept() {
    let s = TestServer::start();
    let t = s.token("acme");
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}{BASE}/collections", s.url))
        .header("Authorization", format!("Bearer {t}"))
        .header("X-Request-Id", "trace-7f3a.1")
        .send()
        .expect("request");
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-7f3a.1")
    );
    let body: serde_json::Value = resp.json().expect("json");
    assert_eq!(body["id"], "trace-7f3a.1");
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}{BASE}/collections", s.url))
        .header("Authorization", format!("Bearer {t}"))
        .header("X-Request-Id", "spaces and\ttabs")
        .send()
        .expect("request");
    let echoed = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        !echoed.is_empty() && echoed != "spaces and\ttabs",
        "{echoed}"
    );
}
