//! The HTTP layer in-process, through `router().oneshot(...)`: validation, error bodies and
//! the envelope, fast (no process, no socket), with the real service behind the router.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

use common::{open_app, token_for, App, BASE, BODY_LIMIT};

/// One service for every test of this binary.
fn fixture() -> &'static App {
    static FIXTURE: OnceLock<App> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        open_app(
            "inprocess",
            server::RequestLimits::for_body_limit(BODY_LIMIT),
        )
    })
}

/// One request through a fresh router; the status and the body as JSON (`Null` if empty).
fn call(method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (StatusCode, Value) {
    let (status, _, body) = call_with(&fixture().app, method, path, token, body);
    (status, body)
}

/// [`call`] through a router on `app`, with the response headers.
fn call_with(
    app: &server::AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(b) => {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, b.len());
            Body::from(b.to_owned())
        }
        None => Body::empty(),
    };
    send(app, request.body(body).expect("request"))
}

/// A request already built, through a fresh router on `app`: status, headers, and the body
/// as JSON (`Null` if empty or not JSON).
fn send(
    app: &server::AppState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    fixture().rt.block_on(async {
        let response = server::router(app.clone(), BODY_LIMIT)
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    })
}

fn post(path: &str, body: Value) -> (StatusCode, Value) {
    let f = fixture();
    call(
        "POST",
        &format!("{BASE}{path}"),
        Some(&f.token),
        Some(&body.to_string()),
    )
}

fn validation(message: &str) -> Value {
    json!({"code": "MissingParameter", "message": message})
}

fn error(message: &str) -> Value {
    json!({"code": "ERROR", "message": message})
}

/// Long enough to pass the length check, so that what is judged is the content.
fn filler(c: char) -> String {
    std::iter::repeat_n(c, 200).collect()
}

#[test]
fn requests_without_a_valid_token_are_refused_before_anything_else() {
    let unauthorized = json!({"code": "UNAUTHORIZED", "message": "Authentication required"});
    for token in [None, Some("garbage"), Some("a.b.c")] {
        let (status, body) = call("POST", &format!("{BASE}/search"), token, Some("{"));
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, unauthorized.clone()),
            "{token:?}"
        );
    }
}

#[test]
fn bodies_that_are_not_json_objects_get_joi_worded_409s() {
    let f = fixture();
    let path = format!("{BASE}/collections");
    for (body, message) in [
        ("{\"name\": ", "\"body\" must be valid JSON"),
        ("[1, 2]", "\"value\" must be of type object"),
        ("{\"name\": 5}", "\"name\" must be a string"),
        ("{}", "\"name\" is required"),
    ] {
        let (status, reply) = call("POST", &path, Some(&f.token), Some(body));
        assert_eq!(
            (status, reply),
            (StatusCode::CONFLICT, validation(message)),
            "{body}"
        );
    }
}

#[test]
fn search_fields_are_checked_in_joi_order() {
    let image = filler('A');
    let cases = [
        (json!({}), "\"images\" is required"),
        (
            json!({"images": []}),
            "\"images\" must contain at least 1 items",
        ),
        (
            json!({"images": [image, image, image, image]}),
            "\"images\" must contain less than or equal to 3 items",
        ),
        (json!({"images": [image]}), "\"min_score\" is required"),
        (
            json!({"images": [image], "min_score": 0.1}),
            "\"min_score\" must be greater than or equal to 0.2",
        ),
        (
            json!({"images": [image], "min_score": "x"}),
            "\"min_score\" must be a number",
        ),
        (
            json!({"images": [image], "min_score": 0.8}),
            "\"search_mode\" is required",
        ),
        (
            json!({"images": [image], "min_score": 0.8, "search_mode": "SLOW"}),
            "\"search_mode\" must be one of [FAST, ACCURATE]",
        ),
        (
            json!({"images": [image], "min_score": 0.8, "search_mode": "FAST", "collection_id": 7}),
            "\"collection_id\" must be a string",
        ),
        (
            json!({"images": [image], "min_score": 0.8, "search_mode": "FAST", "max_results": 2.5}),
            "\"max_results\" must be an integer",
        ),
        (
            json!({"images": [image], "min_score": 0.8, "search_mode": "FAST", "max_results": 101}),
            "\"max_results\" must be less than or equal to 100",
        ),
    ];
    for (body, message) in cases {
        let (status, reply) = post("/search", body.clone());
        assert_eq!(
            (status, reply),
            (StatusCode::CONFLICT, validation(message)),
            "{body}"
        );
    }
}

#[test]
fn images_are_judged_before_any_face_work() {
    let search = |image: &str| {
        post(
            "/search",
            json!({"images": [image], "min_score": 0.8, "search_mode": "ACCURATE"}),
        )
    };
    assert_eq!(
        search("abc"),
        (
            StatusCode::PRECONDITION_FAILED,
            error("only_images_in_base64")
        )
    );
    assert_eq!(
        search(&format!("https://example.com/{}", filler('a'))),
        (
            StatusCode::PRECONDITION_FAILED,
            error("image_urls_disabled")
        )
    );
    assert_eq!(
        search(&filler('!')),
        (
            StatusCode::PRECONDITION_FAILED,
            error("only_images_in_base64")
        )
    );
    // Valid base64 of bytes that are no image.
    assert_eq!(
        search(&filler('A')),
        (StatusCode::PRECONDITION_FAILED, error("invalid_image"))
    );
}

#[test]
fn unknown_collections_and_persons_are_404_with_verifik_bodies() {
    let image = filler('A');
    let (status, reply) = post(
        "/search",
        json!({"images": [image], "min_score": 0.8, "search_mode": "FAST", "collection_id": "nope"}),
    );
    assert_eq!(
        (status, reply),
        (StatusCode::NOT_FOUND, error("invalid_collection"))
    );
    let f = fixture();
    let not_found = json!({"error": "Person not found", "message": "PERSON_NOT_FOUND"});
    for id in ["not-an-id", "0123456789abcdef01234567"] {
        let (status, reply) = call("GET", &format!("{BASE}/persons/{id}"), Some(&f.token), None);
        assert_eq!(
            (status, reply),
            (StatusCode::NOT_FOUND, not_found.clone()),
            "{id}"
        );
    }
    let (status, reply) = call("GET", "/nowhere", Some(&f.token), None);
    assert_eq!(
        (status, reply),
        (StatusCode::NOT_FOUND, error("route_not_found"))
    );
}

#[test]
fn a_declared_oversize_body_is_413_unread() {
    let f = fixture();
    let request = Request::builder()
        .method("POST")
        .uri(format!("{BASE}/search"))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .header(header::CONTENT_LENGTH, (BODY_LIMIT + 1).to_string())
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&f.app, request).0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn token_renewal_answers_in_its_own_words() {
    let f = fixture();
    let (status, reply) = call("GET", "/v2/auth/session", None, None);
    assert_eq!(
        (status, reply),
        (
            StatusCode::CONFLICT,
            validation("missing Authorization header")
        )
    );
    let (status, reply) = call("GET", "/v2/auth/session", Some("garbage"), None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply["code"], "Unauthorized");
    assert_eq!(reply["message"], "Invalid or expired token.");
    assert_eq!(reply["signature"]["message"], "Signed by visage");
    let (status, reply) = call("GET", "/v2/auth/session?expiresIn=0", Some(&f.token), None);
    assert_eq!(
        (status, reply),
        (
            StatusCode::CONFLICT,
            validation("\"expiresIn\" must be greater than or equal to 1")
        )
    );
    let (status, reply) = call("GET", "/v2/auth/session?expiresIn=13", Some(&f.token), None);
    assert_eq!(
        (status, &reply["expiresIn"]),
        (StatusCode::OK, &json!(12)),
        "capped at the maximum: {reply}"
    );
    let (status, reply) = call("GET", "/v2/auth/session?expiresIn=2", Some(&f.token), None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["tokenType"], "bearer");
    let renewed = reply["accessToken"].as_str().expect("token");
    let (status, _) = call("GET", &format!("{BASE}/collections"), Some(renewed), None);
    assert_eq!(status, StatusCode::OK, "the renewed token works");
}

#[test]
fn a_collection_round_trips_in_the_envelope() {
    let f = fixture();
    let (status, created) = post(
        "/collections",
        json!({"name": "  staff  ", "description": "d"}),
    );
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["data"]["name"], "staff");
    assert_eq!(created["signature"]["message"], "Signed by visage");
    let id = created["data"]["_id"].as_str().expect("_id");
    assert!(created["id"].as_str().is_some_and(|i| i.len() == 5));
    let (status, fetched) = call(
        "GET",
        &format!("{BASE}/collections/{id}"),
        Some(&f.token),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["data"], created["data"]);
    let (status, _) = call(
        "DELETE",
        &format!("{BASE}/collections/{id}"),
        Some(&f.token),
        None,
    );
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = call(
        "GET",
        &format!("{BASE}/collections/{id}"),
        Some(&f.token),
        None,
    );
    assert_eq!(
        (status, reply),
        (StatusCode::NOT_FOUND, error("invalid_collection"))
    );
}

#[test]
fn framework_errors_have_verifik_bodies() {
    let f = fixture();
    let (status, reply) = call(
        "PATCH",
        &format!("{BASE}/collections"),
        Some(&f.token),
        None,
    );
    assert_eq!(
        (status, reply),
        (StatusCode::METHOD_NOT_ALLOWED, error("method_not_allowed"))
    );
    let long = format!("{BASE}/persons?name={}", "a".repeat(9000));
    let (status, reply) = call("GET", &long, Some(&f.token), None);
    assert_eq!(
        (status, reply),
        (StatusCode::URI_TOO_LONG, error("uri_too_long"))
    );
    let request = Request::builder()
        .uri(format!("{BASE}/collections"))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.token))
        .header("x-padding", "p".repeat(40 * 1024))
        .body(Body::empty())
        .expect("request");
    let (status, _, reply) = send(&f.app, request);
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(reply, error("headers_too_large"));
}

#[test]
fn every_answer_is_private_and_unsniffable() {
    let f = fixture();
    for (method, path, token) in [
        ("GET", format!("{BASE}/collections"), Some(f.token.as_str())),
        ("GET", format!("{BASE}/collections"), None),
        ("GET", "/health".to_owned(), None),
    ] {
        let (_, headers, _) = call_with(&f.app, method, &path, token, None);
        assert_eq!(
            headers.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
            Some(&b"no-store"[..]),
            "{path}"
        );
        assert_eq!(
            headers
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let f = fixture();
    for scheme in ["Bearer", "bearer", "BEARER", "JWT"] {
        let request = Request::builder()
            .uri(format!("{BASE}/collections"))
            .header(header::AUTHORIZATION, format!("{scheme} {}", f.token))
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&f.app, request).0, StatusCode::OK, "{scheme}");
    }
}

#[test]
fn names_that_would_display_as_another_are_refused() {
    for name in ["Barack\u{202E}amabO", "Ba\u{200B}rack", "Bar\u{0007}ack"] {
        let (status, reply) = post("/collections", json!({ "name": name }));
        assert_eq!(
            (status, reply),
            (
                StatusCode::CONFLICT,
                validation(
                    "\"name\" must not contain control, bidirectional or zero-width characters"
                )
            ),
            "{name:?}"
        );
    }
}

#[test]
fn a_client_over_its_rate_is_429_and_others_are_not() {
    let f = fixture();
    let mut limits = server::RequestLimits::for_body_limit(BODY_LIMIT);
    limits.rate = server::RateLimit {
        per_second: 0.5,
        burst: 3.0,
    };
    let app = server::AppState::new(f.app.service.clone(), "Signed by visage", limits);
    let path = format!("{BASE}/collections");
    for _ in 0..3 {
        let (status, _, _) = call_with(&app, "GET", &path, Some(&f.token), None);
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, reply) = call_with(&app, "GET", &path, Some(&f.token), None);
    assert_eq!(
        (status, reply),
        (StatusCode::TOO_MANY_REQUESTS, error("too_many_requests"))
    );
    let retry: u64 = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    let token = token_for(&f.dir, "another");
    let (status, _, _) = call_with(&app, "GET", &path, Some(&token), None);
    assert_eq!(status, StatusCode::OK, "another client has its own bucket");
}

#[test]
fn bodies_over_the_server_wide_budget_are_503_unread() {
    let f = fixture();
    let mut limits = server::RequestLimits::for_body_limit(BODY_LIMIT);
    limits.body_budget = 1000;
    let app = server::AppState::new(f.app.service.clone(), "Signed by visage", limits);
    let big = json!({"name": "x".repeat(2000)}).to_string();
    let (status, headers, reply) = call_with(
        &app,
        "POST",
        &format!("{BASE}/collections"),
        Some(&f.token),
        Some(&big),
    );
    assert_eq!(
        (status, reply),
        (StatusCode::SERVICE_UNAVAILABLE, error("server_busy"))
    );
    assert!(headers.contains_key(header::RETRY_AFTER));
    let small = json!({"name": "fits"}).to_string();
    let (status, _, _) = call_with(
        &app,
        "POST",
        &format!("{BASE}/collections"),
        Some(&f.token),
        Some(&small),
    );
    assert_eq!(status, StatusCode::OK, "a body within the budget is read");
}
