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

/// The value of one sample line of a Prometheus exposition (`name{labels} value`), summed
/// over every line whose series starts with `series` and contains each of `labels`.
fn metric(text: &str, series: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(name, _)| {
            (name == &series || name.starts_with(&format!("{series}{{")))
                && labels.iter().all(|label| name.contains(label))
        })
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[test]
fn metrics_expose_requests_pipeline_stages_queue_and_index() {
    let s = TestServer::start();
    let t = s.token("acme");
    let c = common::collection(&s, &t, "Staff");
    let body = json!({
        "name": "Barack Obama",
        "images": [common::fixture_b64("obama.jpg")],
        "collections": [common::id(&c)],
    });
    let person = common::create_person(&s, &t, body);
    let (status, _) = s.get(&format!("{BASE}/persons/{}", common::id(&person)), &t);
    assert_eq!(status, 200);
    let (status, _) = s.get(&format!("{BASE}/persons/000000000000000000000000"), &t);
    assert_eq!(status, 404);

    let (status, headers, text) = s.call_raw("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    let content_type = headers["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = text.as_str().expect("text body").to_owned();

    // Matched routes, never raw paths with ids; statuses as they were answered.
    let person_route = "route=\"/v2/face-recognition/persons/{id}\"";
    assert_eq!(
        metric(
            &text,
            "visage_http_requests_total",
            &[person_route, "status=\"200\"", "method=\"GET\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "visage_http_requests_total",
            &[person_route, "status=\"404\""]
        ),
        Some(1.0)
    );
    assert!(!text.contains(&common::id(&person)), "an id in a label");
    assert!(
        !text.contains("acme"),
        "a client name without --metrics-per-client"
    );
    assert!(metric(
        &text,
        "visage_http_request_duration_seconds_bucket",
        &[person_route]
    )
    .is_some());
    for stage in ["decode", "detect", "align", "embed"] {
        let count = metric(
            &text,
            "visage_pipeline_stage_seconds_count",
            &[&format!("stage=\"{stage}\"")],
        );
        assert!(count.is_some_and(|n| n >= 1.0), "{stage}: {text}");
    }
    assert!(metric(
        &text,
        "visage_store_write_seconds_count",
        &["op=\"create_person\""]
    )
    .is_some_and(|n| n >= 1.0));
    // On PostgreSQL the gauge is the planner's estimate (`reltuples`), which stays 0 until
    // the table is first analysed; the embedded index counts exactly.
    let faces = metric(&text, "visage_index_faces", &[]);
    if common::on_postgres() {
        assert!(faces.is_some_and(|n| n >= 0.0), "{text}");
    } else {
        assert_eq!(faces, Some(1.0));
    }
    assert_eq!(
        metric(&text, "visage_index_graph_pending_faces", &[]),
        Some(0.0)
    );
    assert_eq!(metric(&text, "visage_cpu_queue_depth", &[]), Some(0.0));
    assert_eq!(metric(&text, "visage_cpu_rejections_total", &[]), Some(0.0));
    assert_eq!(metric(&text, "visage_rate_limited_total", &[]), Some(0.0));
    // No face data or names anywhere.
    assert!(!text.contains("Obama") && !text.contains("Staff"));
}

#[test]
fn a_metrics_token_guards_metrics_and_per_client_labels_are_opt_in() {
    let s = TestServer::start_with(&["--metrics-token", "scrape-me", "--metrics-per-client"]);
    let t = s.token("acme");
    assert_eq!(s.get(&format!("{BASE}/collections"), &t).0, 200);
    let (status, body) = s.call("GET", "/metrics", None, None);
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Authentication required"))
    );
    let (status, _) = s.call("GET", "/metrics", Some("wrong"), None);
    assert_eq!(status, 401);
    let (status, _, text) = s.call_raw("GET", "/metrics", Some("scrape-me"), None);
    assert_eq!(status, 200);
    let text = text.as_str().expect("text").to_owned();
    assert_eq!(
        metric(
            &text,
            "visage_http_requests_total",
            &[
                "client=\"acme\"",
                "route=\"/v2/face-recognition/collections\""
            ]
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn the_openapi_document_is_3_1_and_lists_every_route_the_server_answers() {
    let s = TestServer::start();
    let (status, doc) = s.call("GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 22, "{} paths", paths.len());
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    for (path, item) in paths {
        let concrete = path.replace("{id}", "000000000000000000000000");
        for method in methods {
            let documented = item.get(method.to_lowercase()).is_some();
            let (status, body) = s.call(method, &concrete, None, None);
            // A documented operation is routed (any answer but 404 route / 405); anything
            // else on a documented path is 405.
            if documented {
                assert!(
                    status != 405 && body["message"] != "route_not_found",
                    "{method} {path}: {status} {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is answered but not documented: {body}"
                );
            }
        }
    }
    // Every operation under /v2 names the bearer scheme and documents its errors.
    let search = &doc["paths"]["/v2/face-recognition/search"]["post"];
    assert_eq!(search["security"], json!([{"bearer": []}]));
    for status in ["200", "401", "409", "412", "429", "503"] {
        assert!(search["responses"][status].is_object(), "{status}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn the_docs_page_is_served_whole_by_visage() {
    let s = TestServer::start();
    let (status, headers, page) = s.call_raw("GET", "/docs/", None, None);
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    let page = page.as_str().expect("html").to_owned();
    assert!(page.contains("swagger"), "{page}");
    // Every asset the page and its initializer name is served here.
    let (status, _, init) = s.call_raw("GET", "/docs/swagger-initializer.js", None, None);
    assert_eq!(status, 200);
    let init = init.as_str().expect("js").to_owned();
    assert!(init.contains("/openapi.json"), "{init}");
    for text in [&page, &init] {
        let elsewhere: Vec<&str> = text
            .split(['"', '\''])
            .filter(|t| t.contains("://"))
            .collect();
        assert!(
            elsewhere.is_empty(),
            "references to other hosts: {elsewhere:?}"
        );
    }
    for asset in page
        .split(['"', '\''])
        .filter(|t| t.starts_with("./") && (t.ends_with(".js") || t.ends_with(".css")))
    {
        let (status, _, _) = s.call_raw("GET", &format!("/docs/{}", &asset[2..]), None, None);
        assert_eq!(status, 200, "{asset}");
    }
}

#[test]
fn cors_answers_only_the_configured_origins() {
    let allowed = "https://console.example.com";
    let s = TestServer::start_with(&["--cors-origin", allowed]);
    let preflight = |origin: &str| {
        reqwest::blocking::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{}{BASE}/search", s.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .expect("preflight")
    };
    let ok = preflight(allowed);
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers()["access-control-allow-origin"], allowed);
    let other = preflight("https://evil.example.net");
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let plain = TestServer::start();
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}/livez", plain.url))
        .header("Origin", allowed)
        .send()
        .expect("get");
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "CORS is off by default"
    );
}

#[test]
fn tls_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, &key_pem).expect("write key");
    let s = TestServer::start_with(&[
        "--tls-cert",
        cert_path.to_str().expect("utf-8"),
        "--tls-key",
        key_path.to_str().expect("utf-8"),
    ]);
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let port = s.url.rsplit(':').next().expect("port");
    let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem");
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(root)
        .resolve(
            "localhost",
            format!("127.0.0.1:{port}").parse().expect("addr"),
        )
        .build()
        .expect("client");
    let resp = https
        .get(format!("https://localhost:{port}/livez"))
        .send()
        .expect("https request");
    assert_eq!(resp.status().as_u16(), 200);
    let t = s.token("acme");
    let resp = https
        .get(format!("https://localhost:{port}{BASE}/collections"))
        .bearer_auth(&t)
        .send()
        .expect("https request");
    assert_eq!(resp.status().as_u16(), 200);
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{port}/livez"))
        .send();
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));

    // A renewed certificate is served after SIGHUP, without a restart.
    let renewed = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let renewed_pem = renewed.cert.pem();
    std::fs::write(&cert_path, &renewed_pem).expect("write cert");
    std::fs::write(&key_path, renewed.signing_key.serialize_pem()).expect("write key");
    let trusting_renewed = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(renewed_pem.as_bytes()).expect("pem"))
        .resolve(
            "localhost",
            format!("127.0.0.1:{port}").parse().expect("addr"),
        )
        .build()
        .expect("client");
    let livez = format!("https://localhost:{port}/livez");
    assert!(
        trusting_renewed.get(&livez).send().is_err(),
        "the old certificate is still served"
    );
    common::send_signal(s.pid() as i32, "HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match trusting_renewed.get(&livez).send() {
            Ok(resp) => {
                assert_eq!(resp.status().as_u16(), 200);
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "not reloaded: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

#[test]
fn a_certificate_that_does_not_match_its_key_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, a.cert.pem()).expect("write");
    std::fs::write(&key_path, b.signing_key.serialize_pem()).expect("write");
    let data = dir.path().join("data");
    let err = common::visage_fails(&[
        "serve",
        "--port",
        "0",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--tls-cert",
        cert_path.to_str().expect("utf-8"),
        "--tls-key",
        key_path.to_str().expect("utf-8"),
    ]);
    assert!(err.contains("does not match its key"), "{err}");
}

/// SIGHUP never ends a server (its default action would): without HTTPS it is logged and
/// the server goes on answering, so `systemctl reload` is always safe.
#[test]
fn sighup_without_tls_is_logged_and_the_server_keeps_answering() {
    let s = TestServer::start();
    common::send_signal(s.pid() as i32, "HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !s
        .log_lines()
        .iter()
        .any(|l| l.contains("nothing to reload"))
    {
        assert!(std::time::Instant::now() < deadline, "SIGHUP not logged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(s.call("GET", "/livez", None, None).0, 200);
}
