//! The web console's files as the router serves them: the page and every embedded file,
//! their types, the Content-Security-Policy and the other headers, 404s for anything else,
//! and checks on the files themselves that keep them within that policy.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

use common::{open_app, App, BODY_LIMIT};

fn fixture() -> &'static App {
    static FIXTURE: OnceLock<App> = OnceLock::new();
    FIXTURE.get_or_init(|| open_app("console", server::RequestLimits::for_body_limit(BODY_LIMIT)))
}

/// One request without a token: status, headers, body bytes.
fn fetch(method: &str, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let f = fixture();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    f.rt.block_on(async {
        let response = server::router(f.app.clone(), BODY_LIMIT)
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, headers, bytes.to_vec())
    })
}

fn header_of<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// Every file of the console directory: its name and bytes.
fn console_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(console_dir())
        .expect("console dir")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 name")
                .to_owned();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    files
}

fn expected_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => panic!("{name}: a console file of a type the test does not know"),
    }
}

#[test]
fn the_page_is_served_without_a_token_under_a_strict_policy() {
    let page = std::fs::read(console_dir().join("index.html")).expect("index.html");
    for path in ["/console", "/console/", "/console/index.html"] {
        let (status, headers, body) = fetch("GET", path);
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, page, "{path}");
        assert_eq!(
            header_of(&headers, "content-type"),
            "text/html; charset=utf-8"
        );
        let policy = header_of(&headers, "content-security-policy");
        let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
        for wanted in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(directives.contains(&wanted), "{path}: {wanted} in {policy}");
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(
            !policy.contains("http"),
            "no other host may be allowed: {policy}"
        );
        assert_eq!(header_of(&headers, "x-frame-options"), "DENY");
        assert_eq!(header_of(&headers, "referrer-policy"), "no-referrer");
        assert!(header_of(&headers, "permissions-policy").contains("camera=(self)"));
        // The headers every answer carries stay.
        assert_eq!(header_of(&headers, "cache-control"), "no-store");
        assert_eq!(header_of(&headers, "x-content-type-options"), "nosniff");
        assert!(headers.contains_key("x-request-id"));
    }
}

#[test]
fn every_console_file_is_served_as_it_is_with_its_type() {
    let files = console_files();
    assert!(files.len() >= 5, "{files:?}");
    for (name, bytes) in files {
        let (status, headers, body) = fetch("GET", &format!("/console/{name}"));
        assert_eq!(
            status,
            StatusCode::OK,
            "{name}: is it in ASSETS of console.rs?"
        );
        assert_eq!(body, bytes, "{name}");
        assert_eq!(header_of(&headers, "content-type"), expected_type(&name));
        assert_eq!(header_of(&headers, "x-content-type-options"), "nosniff");
        assert!(headers.contains_key("content-security-policy"), "{name}");
    }
}

#[test]
fn anything_else_under_console_is_a_verifik_404_and_writes_are_405() {
    let not_found = json!({"code": "ERROR", "message": "route_not_found"});
    for path in [
        "/console/nothing.js",
        "/console/..%2f..%2fCargo.toml",
        "/console/%2e%2e/src/console.rs",
        "/console/app.js/more",
        "/console/APP.JS",
        "/consoles",
    ] {
        let (status, _, body) = fetch("GET", path);
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body, not_found, "{path}");
    }
    for method in ["POST", "PUT", "DELETE"] {
        let (status, _, body) = fetch(method, "/console/app.js");
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["message"], "method_not_allowed");
    }
}

/// What the policy forbids would fail in the browser only; these catch it here first.
#[test]
fn the_files_stay_within_the_policy() {
    let files = console_files();
    let html = String::from_utf8(
        files
            .iter()
            .find(|(n, _)| n == "index.html")
            .expect("index.html")
            .1
            .clone(),
    )
    .expect("utf-8");
    // Every file the page loads is one of ours, by absolute path.
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let value = &html[at + attribute.len()..];
            let value = &value[..value.find('"').expect("closing quote")];
            if value.starts_with('#') {
                continue;
            }
            let name = value
                .strip_prefix("/console/")
                .unwrap_or_else(|| panic!("index.html loads {value} from outside /console/"));
            assert!(
                files.iter().any(|(n, _)| n == name),
                "index.html loads {value}, which is not a console file"
            );
        }
    }
    assert!(!html.contains(" style="), "inline style in index.html");
    assert!(!html.contains("<style"), "inline style in index.html");
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..at + html[at..].find('>').expect("tag end")];
        assert!(tag.contains(" src=\"/console/"), "inline script: {tag}");
    }
    for (name, bytes) in &files {
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        // The SVG's namespace is a name, not something fetched.
        let text = text.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "{name} names another host"
        );
        if name.ends_with(".js") {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage.setItem",
                "setAttribute('style'",
                ".style.",
            ] {
                assert!(!text.contains(banned), "{name} uses {banned}");
            }
        }
    }
}
