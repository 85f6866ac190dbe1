//! Authentication over real HTTP: every documented error body.

mod common;

use common::{visage, visage_fails, TestServer, BASE};
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
    // Above the maximum is capped (tests/contract.rs); nonsense is refused.
    for (bad, message) in [
        ("0", "\"expiresIn\" must be greater than or equal to 1"),
        ("soon", "\"expiresIn\" must be a number"),
    ] {
        let (status, b) = s.call(
            "GET",
            &format!("/v2/auth/session?expiresIn={bad}"),
            Some(&token),
            None,
        );
        assert_eq!((status, &b["message"]), (409, &json!(message)), "{bad}");
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

#[test]
fn renewed_tokens_are_revoked_with_their_parent() {
    let s = TestServer::start();
    let path = format!("{BASE}/collections");
    let root = s.token("acme");
    let child = s.renew(&root);
    let grandchild = s.renew(&child);
    let sibling = s.renew(&root);
    let unrelated = s.token("acme");
    for t in [&root, &child, &grandchild, &sibling, &unrelated] {
        assert_eq!(s.get(&path, t).0, 200);
    }

    // Revoking the child (by the token itself) revokes what was renewed from it.
    s.revoke(&[&child]);
    for t in [&child, &grandchild] {
        let (status, b) = s.get(&path, t);
        assert_eq!((status, body(&b).as_str()), (403, FORBIDDEN));
    }
    for t in [&root, &sibling, &unrelated] {
        assert_eq!(
            s.get(&path, t).0,
            200,
            "the parent and other branches stay valid"
        );
    }
    // A revoked family cannot renew itself back to life.
    let (status, b) = s.call("GET", "/v2/auth/session", Some(&grandchild), None);
    assert_eq!(
        (status, &b["message"]),
        (401, &json!("Invalid or expired token."))
    );

    // Revoking the root by its jti reaches every branch.
    let jti = jti_of(&root);
    s.revoke(&[&jti]);
    for t in [&root, &sibling] {
        let (status, b) = s.get(&path, t);
        assert_eq!((status, body(&b).as_str()), (403, FORBIDDEN));
    }
    assert_eq!(s.get(&path, &unrelated).0, 200);
}

/// The `jti` claim of a token.
fn jti_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    claims["jti"].as_str().expect("jti").to_owned()
}

#[test]
fn revoking_a_client_revokes_all_its_tokens_only() {
    let s = TestServer::start();
    let path = format!("{BASE}/collections");
    let (a1, a2) = (s.token("acme"), s.token("acme"));
    let renewed = s.renew(&a1);
    let other = s.token("globex");
    s.revoke(&["--client", "acme"]);
    for t in [&a1, &a2, &renewed] {
        let (status, b) = s.get(&path, t);
        assert_eq!((status, body(&b).as_str()), (403, FORBIDDEN));
    }
    assert_eq!(s.get(&path, &other).0, 200, "another client is untouched");
    // A token made after the command returned works.
    let fresh = s.token("acme");
    assert_eq!(s.get(&path, &fresh).0, 200);

    let dir = s.data_dir.to_str().expect("utf-8 path");
    let e = visage_fails(&["token", "revoke", "--data-dir", dir, "--client", " acme"]);
    assert!(e.contains("leading or trailing whitespace"), "{e}");
}

#[test]
fn token_create_refuses_empty_or_padded_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path().to_str().expect("utf-8 path");
    for (client, why) in [
        ("", "empty"),
        (" acme", "leading or trailing whitespace"),
        ("acme ", "leading or trailing whitespace"),
    ] {
        let e = visage_fails(&["token", "create", "--data-dir", dir, "--client", client]);
        assert!(
            e.contains("bad --client") && e.contains(why),
            "{client:?}: {e}"
        );
    }
}
