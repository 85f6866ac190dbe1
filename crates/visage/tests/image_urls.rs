//! Image URLs over real HTTP: a real `visage serve` with an allow-list, and a tiny image host
//! on loopback started by the test (no outside network). Allowed URLs are fetched and their
//! faces found; every other URL, a redirect, a private address behind an allowed host name,
//! an oversized and a slow answer each get their 412, and refused URLs are never requested.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    collection, create_person, error_body, fixture_b64, id, post_data, post_status, repo_path,
    TestServer,
};
use serde_json::json;

/// A loopback HTTP/1.1 image host; it records every path asked for.
struct ImageHost {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

/// Larger than the 1 MiB body limit the servers of this file run with.
const OVERSIZED: usize = 2 * 1024 * 1024;

impl ImageHost {
    fn start() -> ImageHost {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, port, &log));
            }
        });
        ImageHost { port, asked }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

fn face_bytes(name: &str) -> Vec<u8> {
    std::fs::read(repo_path("fixtures/faces").join(name)).expect("fixture")
}

/// Answers one request: `/faces/NAME.jpg` and `/private/NAME.jpg` are fixture photos;
/// `/faces/redirect` sends to `/private/obama.jpg`; `/faces/big` streams more than the body
/// limit without declaring a length, `/faces/big-declared` declares it; `/faces/slow` sends
/// its head and then nothing for 20 s; anything else is a 404.
fn serve(mut stream: TcpStream, port: u16, asked: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    if let Ok(mut a) = asked.lock() {
        a.push(path.clone());
    }
    let head = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n").into_bytes()
    };
    let _ = match path.as_str() {
        "/faces/redirect" => stream.write_all(&head(
            "302 Found",
            &format!(
                "Location: http://127.0.0.1:{port}/private/obama.jpg\r\nContent-Length: 0\r\n"
            ),
        )),
        "/faces/big" => {
            // No Content-Length: the body ends when the connection closes.
            let _ = stream.write_all(&head("200 OK", "Content-Type: image/jpeg\r\n"));
            let mut bytes = face_bytes("obama.jpg");
            bytes.resize(OVERSIZED, 0);
            stream.write_all(&bytes)
        }
        "/faces/big-declared" => {
            let mut bytes = face_bytes("obama.jpg");
            bytes.resize(OVERSIZED, 0);
            let _ = stream.write_all(&head(
                "200 OK",
                &format!("Content-Length: {}\r\n", bytes.len()),
            ));
            stream.write_all(&bytes)
        }
        "/faces/slow" => {
            let _ = stream.write_all(&head("200 OK", "Content-Length: 100000\r\n"));
            std::thread::sleep(Duration::from_secs(20));
            Ok(())
        }
        p if p.starts_with("/faces/") || p.starts_with("/private/") => {
            let name = p.rsplit('/').next().unwrap_or("");
            match std::fs::read(repo_path("fixtures/faces").join(name))
                .or_else(|_| std::fs::read(repo_path("fixtures/liveness").join(name)))
            {
                Ok(bytes) => {
                    let _ = stream.write_all(&head(
                        "200 OK",
                        &format!(
                            "Content-Type: image/jpeg\r\nContent-Length: {}\r\n",
                            bytes.len()
                        ),
                    ));
                    stream.write_all(&bytes)
                }
                Err(_) => stream.write_all(&head("404 Not Found", "Content-Length: 0\r\n")),
            }
        }
        _ => stream.write_all(&head("404 Not Found", "Content-Length: 0\r\n")),
    };
    // Let the client read to the end before the socket goes away.
    let _ = stream.flush();
    let mut rest = [0u8; 64];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = stream.read(&mut rest);
}

/// A server that fetches under `/faces/` of the image host, named by its IP address, and
/// (to prove the address check) under `http://localhost:PORT/faces/`, a host name that
/// resolves to loopback.
fn server_for(host: &ImageHost, extra: &[&str]) -> TestServer {
    let by_address = host.url("/faces/");
    let by_name = format!("http://localhost:{}/faces/", host.port);
    let mut args = vec![
        "--image-url-allow",
        &by_address,
        "--image-url-allow",
        &by_name,
        "--body-limit-mb",
        "1",
        "--image-url-timeout-secs",
        "2",
    ];
    args.extend_from_slice(extra);
    TestServer::start_with(&args)
}

#[test]
fn allowed_urls_are_fetched_and_their_faces_found() {
    let host = ImageHost::start();
    let s = server_for(&host, &[]);
    let t = s.token("acme");
    let d = post_data(
        &s,
        &t,
        "/detect",
        json!({"image": host.url("/faces/obama.jpg")}),
    );
    assert_eq!(d["face_count"], 1, "{d}");

    // Enrolled from base64, found from a URL of another photo of him.
    let staff = collection(&s, &t, "staff");
    let obama = create_person(
        &s,
        &t,
        json!({"name": "Barack Obama", "images": [fixture_b64("obama.jpg")], "collections": [id(&staff)]}),
    );
    let found = post_data(
        &s,
        &t,
        "/search/crops",
        json!({"images": [host.url("/faces/obama2.jpg")], "min_score": 0.81, "search_mode": "ACCURATE"}),
    );
    assert_eq!(found[0]["id"], obama["_id"], "{found}");

    // Liveness on a fetched live selfie, and a compare-with-liveness gallery by URL.
    let live = post_data(
        &s,
        &t,
        "/liveness",
        json!({"os": "IOS", "image": host.url("/faces/image_T1.jpg")}),
    );
    assert_eq!(live["passed"], true, "{live}");
    let compared = post_data(
        &s,
        &t,
        "/compare-with-liveness",
        json!({"probe": fixture_b64("obama2.jpg"), "gallery": [host.url("/faces/obama.jpg")], "search_mode": "FAST"}),
    );
    assert_eq!(compared["comparison"]["passed"], true, "{compared}");
    let asked = host.asked();
    for path in [
        "/faces/obama.jpg",
        "/faces/obama2.jpg",
        "/faces/image_T1.jpg",
    ] {
        assert!(asked.iter().any(|a| a == path), "{path} in {asked:?}");
    }
}

#[test]
fn every_url_outside_the_rules_gets_its_412_and_is_never_requested() {
    let host = ImageHost::start();
    let s = server_for(&host, &[]);
    let t = s.token("acme");
    let detect = |image: String| post_status(&s, &t, "/detect", json!({ "image": image }));
    let refused = |message: &str| (412, error_body(message));

    // Outside every prefix: another path on the same host, another scheme, another host.
    assert_eq!(
        detect(host.url("/private/obama.jpg")),
        refused("image_urls_disabled")
    );
    assert_eq!(
        detect(host.url("/faces/../private/obama.jpg")),
        refused("image_urls_disabled")
    );
    assert_eq!(
        detect(format!("https://127.0.0.1:{}/faces/obama.jpg", host.port)),
        refused("image_urls_disabled")
    );
    assert_eq!(
        detect("https://images.example.com/faces/obama.jpg".into()),
        refused("image_urls_disabled")
    );
    // An allowed host name that resolves to a private (loopback) address.
    assert_eq!(
        detect(format!("http://localhost:{}/faces/obama.jpg", host.port)),
        refused("image_url_not_allowed")
    );
    // A redirect is never followed, wherever it points.
    assert_eq!(
        detect(host.url("/faces/redirect")),
        refused("image_url_unreachable")
    );
    assert_eq!(
        detect(host.url("/faces/missing.jpg")),
        refused("image_url_unreachable")
    );
    // Over the 1 MiB body limit, declared or streamed.
    assert_eq!(
        detect(host.url("/faces/big-declared")),
        refused("image_url_too_large")
    );
    assert_eq!(
        detect(host.url("/faces/big")),
        refused("image_url_too_large")
    );
    // Slower than --image-url-timeout-secs.
    assert_eq!(
        detect(host.url("/faces/slow")),
        refused("image_url_unreachable")
    );
    // A URL on an endpoint that takes several images fails the whole request.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/search",
            json!({"images": [fixture_b64("obama.jpg"), host.url("/private/obama.jpg")], "min_score": 0.81, "search_mode": "FAST"})
        ),
        refused("image_urls_disabled")
    );
    // Nothing was created by a refused enrolment.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons",
            json!({"name": "From a URL", "images": [host.url("/faces/big")]})
        ),
        refused("image_url_too_large")
    );
    assert_eq!(common::person_total(&s, &t), 0);

    let asked = host.asked();
    assert!(
        !asked.iter().any(|a| a.starts_with("/private/")),
        "a refused URL or a redirect's target was requested: {asked:?}"
    );
}

#[test]
fn without_an_allow_list_urls_stay_refused() {
    let host = ImageHost::start();
    let s = TestServer::start();
    let t = s.token("acme");
    assert_eq!(
        post_status(
            &s,
            &t,
            "/detect",
            json!({"image": host.url("/faces/obama.jpg")})
        ),
        (412, error_body("image_urls_disabled"))
    );
    assert!(host.asked().is_empty());
}

#[test]
fn each_fetched_url_counts_against_the_clients_rate_limit() {
    let host = ImageHost::start();
    // A burst of 4 and next to no refill: one request with three URLs costs 4.
    let s = server_for(&host, &["--rate-burst", "4", "--rate-limit", "0.01"]);
    let t = s.token("acme");
    // 744 KB in all, under the 1 MiB the fetches of one request may bring together.
    let three = json!({"images": [host.url("/faces/obama.jpg"), host.url("/faces/obama2.jpg"), host.url("/faces/obama.jpg")],
                       "min_score": 0.81, "search_mode": "FAST"});
    let (status, b) = post_status(&s, &t, "/search", three.clone());
    assert_eq!(status, 200, "{b}");
    let (status, b) = post_status(&s, &t, "/search", three);
    assert_eq!((status, &b["message"]), (429, &json!("too_many_requests")));
    assert_eq!(host.asked().len(), 3, "the refused request fetched nothing");
    // Another client has its own budget.
    let other = s.token("globex");
    let (status, b) = post_status(
        &s,
        &other,
        "/search",
        json!({"images": [fixture_b64("obama.jpg")], "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(status, 200, "{b}");
}
