//! Authentication over real HTTP: every documented error body.

mod common;

use common::{visage, TestServer, BASE};
use serde_json::json;

const UNAUTHORIZED: &str = r#"{"code":"UNAUTHORIZED","message":"Authentication required"}"#;
const FORBIDDEN: &str = r#"{"code":"FORBIDDEN","message":"token_expired"}"#;

fn body(v: &serde_json::Value) -> String {
    v.to_string()
}

#[test]
fn health_needs_no_token() {
    let s = TestServer::start();
    let (status, _) = s.call("GET", "/health", None, None);
    assert_eq!(status, 200);
}

#[test]
fn missing_malformed_and_foreign_tokens_are_401() {
    let s = TestServer::start();
    let path = format!("{BASE}/persons");
    let (status, b) = s.call("GET", &path, None, None);
    assert_eq!((status, body(&b).as_str()), (401, UNAUTHORIZED));
    let (status, b) = s.call("GET", &path, Some("not-a-jwt"), None);
    assert_eq!((status, body(&b).as_str()), (401, UNAUTHORIZED));
    // Signed with another server's secret.
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = common::token(other.path(), "acme", "1d");
    let (status, b) = s.call("GET", &path, Some(&foreign), None);
    assert_eq!((status, body(&b).as_str()), (401, UNAUTHORIZED));
}

#[test]
fn expired_and_revoked_tokens_are_403() {
    let s = TestServer::start();
    let path = format!("{BASE}/collections");
    let short = common::token(&s.data_dir, "acme", "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (status, b) = s.call("GET", &path, Some(&short), None);
    assert_eq!((status, body(&b).as_str()), (403, FORBIDDEN));

    let token = s.token("acme");
    assert_eq!(s.get(&path, &token).0, 200);
    let mut args = vec!["token".to_owned(), "revoke".to_owned()];
    args.extend(s.store_args());
    args.push(token.clone());
    visage(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, b) = s.get(&path, &token);
    assert_eq!((status, body(&b).as_str()), (403, FORBIDDEN));
}

#[test]
fn every_documented_scheme_is_accepted() {
    let s = TestServer::start();
    let token = s.token("acme");
    for header in [
        format!("Bearer {token}"),
        format!("JWT {token}"),
        format!("jwt {token}"),
        token.clone(),
    ] {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{BASE}/collections", s.url))
            .header("Authorization", header)
            .send()
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let (status, envelope) = s.post(&format!("{BASE}/collections"), &token, json!({"name": "x"}));
    assert_eq!(status, 200);
    assert_eq!(envelope["id"].as_str().map(str::len), Some(5));
    assert!(envelope["signature"]["dateTime"].is_string());
}

#[test]
fn session_renews_valid_tokens_only() {
    let s = TestServer::start();
    let token = s.token("acme");
    let (status, b) = s.call(
        "GET",
        "/v2/auth/session?origin=refresh&expiresIn=2",
        Some(&token),
        None,
    );
    assert_eq!((status, &b["tokenType"]), (200, &json!("bearer")));
    let renewed = b["accessToken"].as_str().expect("token").to_owned();
    assert_ne!(renewed, token);
    let (status, _) = s.post(
        &format!("{BASE}/collections"),
        &renewed,
        json!({"name": "x"}),
    );
    assert_eq!(status, 200, "the renewed token works");
    for bad in ["0", "13", "soon"] {
        let (status, b) = s.call(
            "GET",
            &format!("/v2/auth/session?expiresIn={bad}"),
            Some(&token),
            None,
        );
        assert_eq!(
            (status, &b["message"]),
            (409, &json!("\"expiresIn\" must be between 1 and 12")),
            "{bad}"
        );
    }
    let (status, b) = s.call("GET", "/v2/auth/session", Some("garbage"), None);
    assert_eq!(
        (status, &b["code"], &b["message"]),
        (
            401,
            &json!("Unauthorized"),
            &json!("Invalid or expired token.")
        )
    );
    let (status, b) = s.call("GET", "/v2/auth/session", None, None);
    assert_eq!(
        (status, b.to_string().as_str()),
        (
            409,
            r#"{"code":"MissingParameter","message":"missing Authorization header"}"#
        )
    );
}
