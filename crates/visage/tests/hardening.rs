//! The server under hostile or careless clients, over real sockets: half-sent headers are
//! closed, SIGTERM is not held up by them, a flooding client leaves room for a quiet one, and
//! framework-level answers keep the Verifik shape and private headers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{error_body, fixture_b64, person_body, post_status, TestServer, BASE};
use serde_json::json;

/// Opens a connection and sends half a request head.
fn half_sent_header(s: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(s.socket_addr()).expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: visage\r\nX-Slow: ")
        .expect("write");
    stream
}

#[test]
fn a_half_sent_header_is_closed_after_the_header_timeout() {
    let s = TestServer::start_with(&["--header-timeout-secs", "2"]);
    let mut stream = half_sent_header(&s);
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 256];
    // The server closes the connection (end of stream or a reset), never waits forever.
    match stream.read(&mut buf) {
        Ok(_) => {}
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "still open after {:?}",
            started.elapsed()
        ),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let (status, _) = s.call("GET", "/health", None, None);
    assert_eq!(status, 200, "other clients are served meanwhile");
}

#[test]
fn sigterm_with_a_half_open_connection_exits_within_the_grace_period() {
    let mut s = TestServer::start_with(&["--shutdown-grace-secs", "3"]);
    let t = s.token("acme");
    let (status, _) = post_status(&s, &t, "/persons", person_body("Barack Obama", "obama.jpg"));
    assert_eq!(status, 200);
    let _half_open = half_sent_header(&s);
    let _idle = TcpStream::connect(s.socket_addr()).expect("connect");
    std::thread::sleep(Duration::from_millis(200));
    let status = s
        .terminate_within(Duration::from_secs(20))
        .expect("visage serve still running 20 s after SIGTERM");
    assert!(status.success(), "{status:?}");
    if !common::on_postgres() {
        assert!(
            s.data_dir.join("index.snapshot").exists(),
            "the clean stop wrote the index snapshot"
        );
    }
}

#[test]
fn a_quiet_client_is_served_while_another_floods_the_pipeline() {
    let s = Arc::new(TestServer::start_with(&[
        "--cpu-workers",
        "1",
        "--cpu-queue",
        "6",
    ]));
    let (flood, quiet) = (s.token("flood"), s.token("quiet"));
    let body =
        json!({"images": [fixture_b64("obama.jpg")], "min_score": 0.8, "search_mode": "FAST"});
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..16)
        .map(|_| {
            let (s, t, b, stop, refused) = (
                s.clone(),
                flood.clone(),
                body.clone(),
                stop.clone(),
                refused.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = post_status(&s, &t, "/search", b.clone());
                    assert!(matches!(status, 200 | 429 | 503), "flood got {status}");
                    if status != 200 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let quiet_statuses: Vec<u16> = (0..5)
        .map(|_| post_status(&s, &quiet, "/search", body.clone()).0)
        .collect();
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flooder");
    }
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the flood went past the queue (else this test shows nothing)"
    );
    assert_eq!(quiet_statuses, vec![200; 5], "the quiet client was served");
}

#[test]
fn framework_answers_keep_the_verifik_shape_and_private_headers() {
    let s = TestServer::start();
    let t = s.token("acme");
    let (status, headers, body) =
        s.call_raw("PATCH", &format!("{BASE}/collections"), Some(&t), None);
    assert_eq!((status, body), (405, error_body("method_not_allowed")));
    assert_eq!(
        headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
    let resp = reqwest::blocking::Client::new()
        .get(format!("{}{BASE}/collections", s.url))
        .header("Authorization", format!("BEARER {t}"))
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200, "BEARER is the Bearer scheme");
}

/// What the server answers on a fresh connection to raw bytes: status and body.
fn raw_exchange(s: &TestServer, request: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(s.socket_addr()).expect("connect");
    // The server may answer and close before reading all of a large request.
    let _ = stream.write_all(request);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn requests_http_cannot_parse_still_get_verifik_bodies() {
    let s = TestServer::start();
    assert_eq!(
        raw_exchange(&s, b"GARBAGE LINE\r\n\r\n"),
        (400, error_body("bad_request"))
    );
    let mut huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 600 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        raw_exchange(&s, &huge),
        (431, error_body("headers_too_large"))
    );
    let (status, _) = s.call("GET", "/health", None, None);
    assert_eq!(status, 200);
}
