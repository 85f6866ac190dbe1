//! Property tests ("fuzzing on stable") of every endpoint's input handling, in-process
//! through `server::router(...).oneshot(...)` with the real service (SQLite in a temporary
//! directory, the real models from `VISAGE_MODELS_DIR`) behind it.
//!
//! For each POST and PUT route: arbitrary JSON values, objects with the route's own field
//! names holding valid values, values of the wrong type, numbers out of range, unicode and
//! NUL strings, short or broken image strings, huge arrays, and raw bytes; GET and DELETE
//! routes with arbitrary query strings and path ids. The properties: never a 500 (the
//! router's `CatchPanicLayer` turns a panic into a 500, so this also means never a panic),
//! no request hangs, the status is a documented one (200, 404, 409, 412, 413, 501, 503),
//! a success is a JSON object, and every error body is a JSON object with a string
//! `message` and a `code` or an `error`. Image strings are kept short, broken or tiny, so
//! that almost no face work runs; one property sends real fixture photos.
//!
//! Every property runs a fixed number of cases from a fixed seed (ChaCha), so the test
//! command is deterministic and fast. To search harder locally:
//!
//! ```text
//! VISAGE_FUZZ_SCALE=20 VISAGE_FUZZ_SEED=12345 cargo nextest run --release -p server --test fuzz_bodies
//! ```
//!
//! `VISAGE_FUZZ_SCALE` multiplies every property's case count; `VISAGE_FUZZ_SEED` (a u64)
//! starts from another seed. Nothing is written to `.proptest-regressions`: an input that
//! fails is printed, shrunk, and then belongs here as an explicit regression test.

use std::fmt::Debug;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

mod common;

use common::{fixture_image, open_app, App, BASE, BODY_LIMIT};
/// Longer than this and a request is taken to hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The runner: fixed seed, explicit case counts, no failure files.

/// The seed every property starts from (ChaCha takes 32 bytes).
const SEED: [u8; 32] = *b"visage/fuzz_bodies: fixed seed 1";

fn runner(cases: u32) -> TestRunner {
    let scale = std::env::var("VISAGE_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let mut seed = SEED;
    if let Some(s) = std::env::var("VISAGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        seed[..8].copy_from_slice(&s.to_le_bytes());
    }
    let config = Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        // Each case is a request; keep a failure's shrinking bounded.
        max_shrink_iters: 512,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Runs `test` on `cases` inputs from `strategy`; a failure panics with the shrunk input.
fn check<S>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let result = runner(cases).run(&strategy, test);
    if std::env::var_os("VISAGE_FUZZ_STATS").is_some() {
        let mut seen = answers().lock().unwrap_or_else(|e| e.into_inner());
        for (answer, n) in std::mem::take(&mut *seen) {
            eprintln!("{n:6} {answer}");
        }
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// How often each status and message was answered (printed with `VISAGE_FUZZ_STATS=1`, to
/// see how deep the generated requests get).
fn answers() -> &'static std::sync::Mutex<std::collections::BTreeMap<String, usize>> {
    static ANSWERS: OnceLock<std::sync::Mutex<std::collections::BTreeMap<String, usize>>> =
        OnceLock::new();
    ANSWERS.get_or_init(Default::default)
}

// ---------------------------------------------------------------------------------------
// The service behind the router (as in tests/inprocess.rs), with one collection and one
// enrolled person for the generated requests to find.

/// The in-process app, plus what the generated requests can find.
struct Fixture {
    app: App,
    /// A collection's `_id` and `code`, and an enrolled person's `_id`.
    collection_id: String,
    collection_code: String,
    person_id: String,
}

/// One service for every property of this binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut limits = server::RequestLimits::for_body_limit(BODY_LIMIT);
        // Thousands of requests from one client in seconds: the rate limit is not under test.
        limits.rate = server::RateLimit {
            per_second: 1e9,
            burst: 1e9,
        };
        let mut f = Fixture {
            app: open_app("fuzz", limits),
            collection_id: String::new(),
            collection_code: String::new(),
            person_id: String::new(),
        };
        let (status, created) = send(&f, "POST", "/collections", Some(b"{\"name\": \"fuzz\"}"));
        assert_eq!(status, StatusCode::OK, "{created}");
        f.collection_id = created["data"]["_id"].as_str().expect("_id").to_owned();
        f.collection_code = created["data"]["code"]
            .as_str()
            .unwrap_or("fuzz")
            .to_owned();
        let person = json!({
            "name": "Barack Obama",
            "images": [fixture_image("obama.jpg")],
            "collections": [f.collection_id],
            "date_of_birth": "1961-08-04",
            "gender": "M",
        });
        let (status, created) = send(&f, "POST", "/persons", Some(person.to_string().as_bytes()));
        assert_eq!(status, StatusCode::OK, "{created}");
        f.person_id = created["data"]["_id"].as_str().expect("_id").to_owned();
        f
    })
}

/// One request through a fresh router (`path` under [`BASE`] unless it starts elsewhere):
/// the status and the body parsed as JSON, checked against the properties every answer
/// keeps.
fn send(f: &Fixture, method: &str, path: &str, body: Option<&[u8]>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(full_path(path))
        .header(header::AUTHORIZATION, format!("Bearer {}", f.app.token));
    let request = match body {
        Some(b) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_vec())),
        None => request.body(Body::empty()),
    }
    .expect("request");
    let (status, bytes) = respond(f, request).expect("an answer in time");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn full_path(path: &str) -> String {
    if path.starts_with("/v2/") || path.starts_with("/health") {
        path.to_owned()
    } else {
        format!("{BASE}{path}")
    }
}

/// The status and body bytes of `request`, or `None` when it takes too long.
fn respond(f: &Fixture, request: Request<Body>) -> Option<(StatusCode, Vec<u8>)> {
    f.app.rt.block_on(async {
        let answer = async {
            let response = server::router(f.app.app.clone(), BODY_LIMIT)
                .oneshot(request)
                .await
                .expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, bytes.to_vec())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, answer).await.ok()
    })
}

/// The statuses the API documents for an authenticated caller.
const DOCUMENTED: [u16; 7] = [200, 404, 409, 412, 413, 501, 503];

/// The properties of every answer: in time, a documented status (so never a 500, never a
/// panic), a JSON object, and for an error a string `message` and a `code` or `error`.
fn answer_checked(
    request: Request<Body>,
    what: &str,
) -> Result<(StatusCode, Value), TestCaseError> {
    let f = fixture();
    let Some((status, bytes)) = respond(f, request) else {
        return Err(TestCaseError::fail(format!(
            "{what}: no answer in {REQUEST_TIMEOUT:?}"
        )));
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let text = String::from_utf8_lossy(&bytes);
    prop_assert!(
        DOCUMENTED.contains(&status.as_u16()),
        "{what}: status {status}, body {text}"
    );
    prop_assert!(
        body.is_object(),
        "{what}: {status} with a body that is not a JSON object: {text}"
    );
    if std::env::var_os("VISAGE_FUZZ_STATS").is_some() {
        let message = body["message"].as_str().unwrap_or("-");
        let message = message.split(" must ").next().unwrap_or(message);
        let answer = format!("{} {message}", status.as_u16());
        let mut seen = answers().lock().unwrap_or_else(|e| e.into_inner());
        *seen.entry(answer).or_default() += 1;
    }
    if !status.is_success() {
        prop_assert!(
            body["message"].is_string(),
            "{what}: {status} without a string message: {text}"
        );
        prop_assert!(
            body["code"].is_string() || body["error"].is_string(),
            "{what}: {status} without code or error: {text}"
        );
    }
    Ok((status, body))
}

fn request(method: &str, uri: &str, content_type: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let f = fixture();
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", f.app.token));
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder.body(Body::from(body)).expect("request")
}

// ---------------------------------------------------------------------------------------
// The routes that take a body, and the kinds of their fields.

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A person's or collection's name, or free text.
    Text,
    /// One image string.
    Image,
    /// An array of image strings (or, where the docs allow it, one string).
    Images,
    Enum(&'static [&'static str]),
    Date,
    /// A number, usually a threshold in 0..=1.
    Score,
    /// `max_results`.
    Count,
    Bool,
    /// A collection `_id` or `code`.
    Collection,
    /// A person `_id`.
    Person,
    /// `collections`: an array of collection references.
    Collections,
    /// `people`: an array of person ids or `{_id}` objects.
    People,
}

const MODES: &[&str] = &["FAST", "ACCURATE"];
const OS: &[&str] = &["DESKTOP", "IOS", "ANDROID"];
const GENDERS: &[&str] = &["M", "F"];
const STATUSES: &[&str] = &["active", "inactive", "pending"];

#[derive(Debug, Clone, Copy)]
struct Route {
    method: &'static str,
    /// Under [`BASE`]; `{id}` is replaced by a generated id.
    path: &'static str,
    fields: &'static [(&'static str, Kind)],
}

const SEARCH_FIELDS: &[(&str, Kind)] = &[
    ("images", Kind::Images),
    ("min_score", Kind::Score),
    ("search_mode", Kind::Enum(MODES)),
    ("collection_id", Kind::Collection),
    ("max_results", Kind::Count),
];

const PERSON_FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("images", Kind::Images),
    ("gender", Kind::Enum(GENDERS)),
    ("date_of_birth", Kind::Date),
    ("nationality", Kind::Text),
    ("notes", Kind::Text),
    ("status", Kind::Enum(STATUSES)),
    ("collections", Kind::Collections),
];

const COLLECTION_FIELDS: &[(&str, Kind)] = &[
    ("name", Kind::Text),
    ("description", Kind::Text),
    ("project", Kind::Text),
    ("people", Kind::People),
];

/// Every POST and PUT route of `routes/mod.rs`, with its fields.
const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/collections",
        fields: COLLECTION_FIELDS,
    },
    Route {
        method: "PUT",
        path: "/collections/{id}",
        fields: COLLECTION_FIELDS,
    },
    Route {
        method: "POST",
        path: "/persons",
        fields: PERSON_FIELDS,
    },
    Route {
        method: "PUT",
        path: "/persons/{id}",
        fields: PERSON_FIELDS,
    },
    Route {
        method: "POST",
        path: "/persons/search-live-face",
        fields: &[
            ("name", Kind::Text),
            ("images", Kind::Images),
            ("gender", Kind::Enum(GENDERS)),
            ("date_of_birth", Kind::Date),
            ("nationality", Kind::Text),
            ("notes", Kind::Text),
            ("collection_id", Kind::Collection),
            ("liveness_min_score", Kind::Score),
            ("min_score", Kind::Score),
            ("search_mode", Kind::Enum(MODES)),
            ("max_results", Kind::Count),
        ],
    },
    Route {
        method: "POST",
        path: "/search",
        fields: SEARCH_FIELDS,
    },
    Route {
        method: "POST",
        path: "/search/crops",
        fields: SEARCH_FIELDS,
    },
    Route {
        method: "POST",
        path: "/search-active-user",
        fields: &[
            ("image", Kind::Image),
            ("os", Kind::Enum(OS)),
            ("min_score", Kind::Score),
            ("search_mode", Kind::Enum(MODES)),
            ("collection_id", Kind::Collection),
            ("max_results", Kind::Count),
        ],
    },
    Route {
        method: "POST",
        path: "/search-live-face",
        fields: &[
            ("image", Kind::Image),
            ("images", Kind::Images),
            ("os", Kind::Enum(OS)),
            ("liveness_min_score", Kind::Score),
            ("min_score", Kind::Score),
            ("search_mode", Kind::Enum(MODES)),
            ("collection_id", Kind::Collection),
            ("max_results", Kind::Count),
        ],
    },
    Route {
        method: "POST",
        path: "/verify",
        fields: &[
            ("id", Kind::Person),
            ("image", Kind::Image),
            ("images", Kind::Images),
            ("min_score", Kind::Score),
            ("search_mode", Kind::Enum(MODES)),
            ("collection_id", Kind::Collection),
        ],
    },
    Route {
        method: "POST",
        path: "/compare",
        fields: &[
            ("probe", Kind::Images),
            ("gallery", Kind::Images),
            ("search_mode", Kind::Enum(MODES)),
            ("compare_min_score", Kind::Score),
        ],
    },
    Route {
        method: "POST",
        path: "/detect",
        fields: &[
            ("image", Kind::Image),
            ("images", Kind::Images),
            ("min_score", Kind::Score),
            ("search_mode", Kind::Enum(MODES)),
            ("collection_id", Kind::Collection),
            ("max_results", Kind::Count),
            ("return_landmarks", Kind::Bool),
            ("return_attributes", Kind::Bool),
        ],
    },
    Route {
        method: "POST",
        path: "/liveness",
        fields: &[
            ("os", Kind::Enum(OS)),
            ("image", Kind::Image),
            ("collection_id", Kind::Collection),
            ("liveness_min_score", Kind::Score),
        ],
    },
    Route {
        method: "POST",
        path: "/liveness-score",
        fields: &[
            ("os", Kind::Enum(OS)),
            ("image", Kind::Image),
            ("collection_id", Kind::Collection),
            ("liveness_min_score", Kind::Score),
        ],
    },
    Route {
        method: "POST",
        path: "/compare-live",
        fields: &[
            ("probe", Kind::Image),
            ("gallery", Kind::Images),
            ("os", Kind::Enum(OS)),
            ("search_mode", Kind::Enum(MODES)),
            ("liveness_min_score", Kind::Score),
            ("compare_min_score", Kind::Score),
        ],
    },
    Route {
        method: "POST",
        path: "/compare-with-liveness",
        fields: &[
            ("probe", Kind::Image),
            ("gallery", Kind::Images),
            ("search_mode", Kind::Enum(MODES)),
            ("liveness_min_score", Kind::Score),
            ("compare_min_score", Kind::Score),
        ],
    },
];

fn route() -> impl Strategy<Value = Route> {
    prop::sample::select(ROUTES)
}

// ---------------------------------------------------------------------------------------
// Values.

/// Which id a generated path or field refers to.
#[derive(Debug, Clone)]
enum Id {
    /// The fixture's collection `_id` / `code`, or its person's `_id`.
    KnownCollection,
    KnownCollectionCode,
    KnownPerson,
    Literal(String),
}

impl Id {
    fn resolve(&self) -> String {
        let f = fixture();
        match self {
            Id::KnownCollection => f.collection_id.clone(),
            Id::KnownCollectionCode => f.collection_code.clone(),
            Id::KnownPerson => f.person_id.clone(),
            Id::Literal(s) => s.clone(),
        }
    }
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        2 => Just(Id::KnownCollection),
        1 => Just(Id::KnownCollectionCode),
        2 => Just(Id::KnownPerson),
        2 => "[0-9a-f]{24}".prop_map(Id::Literal),
        1 => "[0-9a-fA-F]{23,25}".prop_map(Id::Literal),
        2 => "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}".prop_map(Id::Literal),
        2 => any::<String>().prop_map(Id::Literal),
        1 => "[ -~]{0,30}".prop_map(Id::Literal),
    ]
}

/// A tiny valid PNG with no face (decoding and detection run, fast).
fn tiny_png() -> &'static str {
    static PNG: OnceLock<String> = OnceLock::new();
    PNG.get_or_init(|| {
        let mut out = Vec::new();
        image_png(&mut out, 24, 16);
        base64::engine::general_purpose::STANDARD.encode(out)
    })
}

/// A minimal grey PNG, written by hand (the server's tests do not depend on `image`).
fn image_png(out: &mut Vec<u8>, width: u32, height: u32) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(out, b"IHDR", &ihdr);
    // Stored (uncompressed) deflate blocks of rows, each row filter 0 and grey 128.
    let row = 1 + width as usize;
    let mut raw = Vec::new();
    for _ in 0..height {
        raw.push(0);
        raw.extend(std::iter::repeat_n(128u8, row - 1));
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    chunk(out, b"IDAT", &zlib);
    chunk(out, b"IEND", &[]);
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A PNG header claiming 100000 x 100000 (refused from the header: `image_too_large`).
fn huge_png() -> &'static str {
    static PNG: OnceLock<String> = OnceLock::new();
    PNG.get_or_init(|| {
        let mut out = Vec::new();
        image_png(&mut out, 1, 1);
        out[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        out[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&out[12..29]);
        out[29..33].copy_from_slice(&crc.to_be_bytes());
        base64::engine::general_purpose::STANDARD.encode(out)
    })
}

/// An image string: short, not base64, base64 of junk, a URL, a data: URI; rarely a tiny
/// real image (decoded and searched for faces, none found) or a bomb's header.
fn image_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9+/=]{0,99}",
        2 => any::<String>(),
        2 => "[A-Za-z0-9+/]{100,300}={0,2}",
        2 => "[^A-Za-z0-9+/=]{100,140}",
        1 => "[ -~]{100,200}",
        1 => "(https?)://[a-z.]{1,20}/[a-zA-Z0-9/]{90,120}",
        1 => prop::collection::vec(any::<u8>(), 75..300)
            .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        1 => ("[a-z/;=]{0,20}", "[A-Za-z0-9+/]{100,200}")
            .prop_map(|(media, data)| format!("data:{media};base64,{data}")),
        1 => Just(tiny_png().to_owned()),
        1 => Just(format!("data:image/png;base64,{}", huge_png())),
        1 => Just(format!("\u{0}{}", "A".repeat(120))),
    ]
}

/// Numbers and number-like strings, in and out of every range.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0.0f64..=1.0).prop_map(|n| json!(n)),
        2 => prop::sample::select(vec![
            0.0, 0.2, 0.5, 0.52, 0.6, 0.67, 0.7, 0.81, 0.85, 0.95, 1.0, -0.0, 0.1999999,
            1.0000001, 100.0, 101.0, 2.5, -1.0, 1e308, -1e308, 5e-324, f64::EPSILON,
        ])
        .prop_map(|n| json!(n)),
        2 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
        1 => (0u32..=120).prop_map(|n| json!(n)),
        2 => prop::sample::select(vec![
            "0.8", " 0.9 ", "1", "10", "NaN", "inf", "-inf", "Infinity", "1e400", "-0",
            "0x10", "", " ", "1_0", "٣", "0.8\u{0}",
        ])
        .prop_map(|s| json!(s)),
        1 => "[0-9.eE+-]{1,12}".prop_map(|s| json!(s)),
    ]
}

/// Text: ordinary, unicode, NUL and control characters, digits only, very long.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z ]{1,30}",
        2 => any::<String>(),
        1 => "[0-9 ]{0,10}",
        1 => "[a-z]{0,5}\u{0}[a-z]{0,5}",
        1 => "[\u{1}-\u{1f}\u{7f}]{1,5}",
        1 => "\\PC{1,40}",
        1 => (250usize..=260, "[a-zé]").prop_map(|(n, c)| c.repeat(n)),
        1 => (4090usize..=4100).prop_map(|n| "x".repeat(n)),
    ]
}

/// A value every route accepts for a field of `kind` (image strings aside: those are short,
/// broken or faceless, so that no real face work runs).
fn strict(kind: Kind) -> BoxedStrategy<Value> {
    let known = |id: Id| Just(id).prop_map(|id| json!(id.resolve()));
    match kind {
        Kind::Text => "[A-Za-z]{1,12}( [A-Za-z]{1,12}){0,2}"
            .prop_map(Value::String)
            .boxed(),
        Kind::Image => image_string().prop_map(Value::String).boxed(),
        Kind::Images => prop::collection::vec(image_string(), 1..=3)
            .prop_map(|v| json!(v))
            .boxed(),
        Kind::Enum(names) => prop::sample::select(names).prop_map(|s| json!(s)).boxed(),
        Kind::Date => (1900i32..2030, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| json!(format!("{y:04}-{m:02}-{d:02}")))
            .boxed(),
        // Within every route's range: detect 0.70-0.95, compare 0.67-0.95, others from 0.5.
        Kind::Score => (0.70f64..=0.95).prop_map(|n| json!(n)).boxed(),
        Kind::Count => (1u32..=100).prop_map(|n| json!(n)).boxed(),
        Kind::Bool => any::<bool>().prop_map(|b| json!(b)).boxed(),
        Kind::Collection => {
            prop_oneof![known(Id::KnownCollection), known(Id::KnownCollectionCode)].boxed()
        }
        Kind::Person => known(Id::KnownPerson).boxed(),
        Kind::Collections => prop_oneof![
            Just(json!([])),
            known(Id::KnownCollection).prop_map(|id| json!([id])),
        ]
        .boxed(),
        Kind::People => prop_oneof![
            Just(json!([])),
            known(Id::KnownPerson).prop_map(|id| json!([id])),
            known(Id::KnownPerson).prop_map(|id| json!([{"_id": id}])),
        ]
        .boxed(),
    }
}

/// A plausible value of a field of `kind`: the edges of what is valid, and just past them.
fn plausible(kind: Kind) -> BoxedStrategy<Value> {
    match kind {
        Kind::Text => text().prop_map(Value::String).boxed(),
        Kind::Image => image_string().prop_map(Value::String).boxed(),
        Kind::Images => prop_oneof![
            4 => prop::collection::vec(image_string(), 0..5).prop_map(|v| json!(v)),
            1 => image_string().prop_map(Value::String),
        ]
        .boxed(),
        Kind::Enum(names) => prop_oneof![
            4 => prop::sample::select(names).prop_map(|s| json!(s)),
            1 => prop::sample::select(names).prop_map(|s| json!(s.to_lowercase())),
            1 => prop::sample::select(names).prop_map(|s| json!(format!(" {s}"))),
        ]
        .boxed(),
        Kind::Date => prop_oneof![
            3 => (1900i32..2030, 1u32..=12, 1u32..=28)
                .prop_map(|(y, m, d)| json!(format!("{y:04}-{m:02}-{d:02}"))),
            1 => Just(json!("1990-02-30")),
            1 => Just(json!("1990-01-01T10:00:00.000Z")),
            1 => Just(json!("+99999-01-01")),
            1 => Just(json!("0000-00-00")),
            1 => Just(json!("1990-1-1")),
            1 => Just(json!("१९९०-०१-०१")),
            1 => Just(json!("é1990-01-01")),
            1 => "[0-9-]{0,12}".prop_map(|s| json!(s)),
        ]
        .boxed(),
        Kind::Score => number().boxed(),
        Kind::Count => prop_oneof![
            3 => (0u32..=120).prop_map(|n| json!(n)),
            1 => number(),
        ]
        .boxed(),
        Kind::Bool => prop_oneof![
            any::<bool>().prop_map(|b| json!(b)),
            Just(json!("true")),
            Just(json!("false")),
            Just(json!("TRUE")),
            Just(json!(1)),
        ]
        .boxed(),
        Kind::Collection => prop_oneof![
            3 => id().prop_map(|id| json!(id.resolve())),
            1 => text().prop_map(Value::String),
        ]
        .boxed(),
        Kind::Person => id().prop_map(|id| json!(id.resolve())).boxed(),
        Kind::Collections => prop::collection::vec(
            prop_oneof![
                3 => id().prop_map(|id| json!(id.resolve())),
                1 => nasty(),
            ],
            0..6,
        )
        .prop_map(Value::Array)
        .boxed(),
        Kind::People => prop::collection::vec(
            prop_oneof![
                3 => id().prop_map(|id| json!(id.resolve())),
                2 => id().prop_map(|id| json!({"_id": id.resolve()})),
                1 => id().prop_map(|id| json!({"id": id.resolve()})),
                1 => nasty(),
            ],
            0..6,
        )
        .prop_map(Value::Array)
        .boxed(),
    }
}

/// A value of any JSON type, as a field of the wrong type would hold.
fn nasty() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        any::<String>().prop_map(Value::String),
        Just(json!("")),
        Just(json!(" \t\n")),
        Just(json!("\u{0}")),
        Just(json!([])),
        Just(json!({})),
        prop::collection::vec(any::<i32>(), 0..8).prop_map(|v| json!(v)),
        Just(json!([[["deep"]]])),
        Just(json!({"_id": {"_id": null}})),
    ]
    .boxed()
}

/// Any JSON value at all, nested.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        "[a-z_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner.clone(), 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One of the field names any route uses.
fn field_name() -> impl Strategy<Value = String> {
    let mut names: Vec<&str> = ROUTES
        .iter()
        .flat_map(|r| r.fields.iter().map(|(name, _)| *name))
        .collect();
    names.sort_unstable();
    names.dedup();
    prop::sample::select(names).prop_map(str::to_owned)
}

/// What becomes of one field of an otherwise valid body.
#[derive(Debug, Clone)]
enum Change {
    Remove,
    /// A value at or past the edges of the field's kind.
    Plausible(Value),
    /// A value of any type.
    Nasty(Value),
}

/// A body for `route`: every field valid, then a few fields removed, pushed to or past
/// their edges, or given a value of the wrong type; sometimes unknown fields beside them.
fn body_for(route: Route) -> impl Strategy<Value = Map<String, Value>> {
    let strict: Vec<BoxedStrategy<Value>> =
        route.fields.iter().map(|&(_, kind)| strict(kind)).collect();
    let change = any::<prop::sample::Index>().prop_flat_map(move |at| {
        let (_, kind) = route.fields[at.index(route.fields.len())];
        let change = prop_oneof![
            1 => Just(Change::Remove),
            3 => plausible(kind).prop_map(Change::Plausible),
            2 => nasty().prop_map(Change::Nasty),
        ];
        (Just(at), change)
    });
    let changes = prop_oneof![
        1 => Just(Vec::new()),
        3 => prop::collection::vec(change.clone(), 1..=1),
        2 => prop::collection::vec(change, 2..=4),
    ];
    let extra = prop_oneof![
        4 => Just(Vec::new()),
        1 => prop::collection::vec((any::<String>(), nasty()), 1..=2),
    ];
    (strict, changes, extra).prop_map(move |(values, changes, extra)| {
        let mut map = Map::new();
        for (k, v) in extra {
            map.insert(k, v);
        }
        for (&(name, _), v) in route.fields.iter().zip(values) {
            map.insert(name.to_owned(), v);
        }
        for (at, change) in changes {
            let (name, _) = route.fields[at.index(route.fields.len())];
            match change {
                Change::Remove => {
                    map.remove(name);
                }
                Change::Plausible(v) | Change::Nasty(v) => {
                    map.insert(name.to_owned(), v);
                }
            }
        }
        map
    })
}

/// The id in a route's path: mostly the fixture's own (a person for `/persons/{id}`, a
/// collection for `/collections/{id}`), else any.
fn path_id(route: Route) -> impl Strategy<Value = Id> {
    let known = if route.path.starts_with("/persons/") {
        Id::KnownPerson
    } else {
        Id::KnownCollection
    };
    prop_oneof![2 => Just(known), 1 => id()]
}

/// The URI of `route` with its `{id}` filled in.
fn uri(route: &Route, id: &Id) -> String {
    let path = route.path.replace("{id}", &percent_encode(&id.resolve()));
    format!("{BASE}{path}")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The properties.

#[test]
fn bodies_with_each_routes_fields_get_documented_answers() {
    let case = route().prop_flat_map(|r| (Just(r), path_id(r), body_for(r)));
    check(3000, case, |(route, id, body)| {
        let uri = uri(&route, &id);
        let body = Value::Object(body).to_string();
        let what = format!("{} {uri} {body:.300}", route.method);
        let request = request(
            route.method,
            &uri,
            Some("application/json"),
            body.into_bytes(),
        );
        answer_checked(request, &what)?;
        Ok(())
    });
}

#[test]
fn arbitrary_json_values_as_bodies_get_documented_answers() {
    check(1000, (route(), id(), any_json()), |(route, id, body)| {
        let uri = uri(&route, &id);
        let body = body.to_string();
        let what = format!("{} {uri} {body:.300}", route.method);
        let request = request(
            route.method,
            &uri,
            Some("application/json"),
            body.into_bytes(),
        );
        answer_checked(request, &what)?;
        Ok(())
    });
}

/// Raw bytes: anything, JSON-looking prefixes, JSON cut short or with a byte changed.
fn raw_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (
            prop::sample::select(vec![
                &b"{"[..],
                &b"["[..],
                &b"\""[..],
                &b"{\"images\":"[..],
                &b"\xEF\xBB\xBF{}"[..],
                &b"  \n"[..],
            ]),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(start, rest)| [start, &rest[..]].concat()),
        (
            any_json(),
            any::<prop::sample::Index>(),
            any::<u8>(),
            any::<bool>()
        )
            .prop_map(|(value, at, byte, cut)| {
                let mut bytes = value.to_string().into_bytes();
                let i = at.index(bytes.len());
                if cut {
                    bytes.truncate(i);
                } else {
                    bytes[i] = byte;
                }
                bytes
            }),
        Just(b"{\"name\": \"\\ud800\"}".to_vec()),
        Just(b"{\"name\": \"a\", \"name\": 5}".to_vec()),
        Just(format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes()),
        Just(format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes()),
        Just(b"{\"min_score\": 1e999999}".to_vec()),
    ]
}

#[test]
fn raw_bytes_as_bodies_get_documented_answers() {
    let content_type = prop::option::of(prop::sample::select(vec![
        "application/json",
        "text/plain",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ]));
    check(
        1000,
        (route(), id(), raw_body(), content_type, any::<bool>()),
        |(route, id, body, content_type, with_length)| {
            let uri = uri(&route, &id);
            let what = format!(
                "{} {uri} {:?}",
                route.method,
                String::from_utf8_lossy(&body)
            );
            let length = body.len();
            let mut request = request(route.method, &uri, content_type, body);
            if with_length {
                request
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, length.into());
            }
            answer_checked(request, &what)?;
            Ok(())
        },
    );
}

#[test]
fn huge_arrays_and_bodies_get_documented_answers() {
    // A body for the route with one field an array of up to 400k items (past 1 MiB).
    let item = prop_oneof![
        Just(json!(0)),
        Just(json!("AAAA")),
        Just(json!(null)),
        Just(json!({"_id": "0123456789abcdef01234567"})),
    ];
    let size = prop::sample::select(vec![4usize, 101, 1_000, 50_000, 400_000]);
    let case = route().prop_flat_map(move |r| {
        let names: Vec<&'static str> = r.fields.iter().map(|(n, _)| *n).collect();
        (
            Just(r),
            path_id(r),
            body_for(r),
            prop::sample::select(names),
            item.clone(),
            size.clone(),
        )
    });
    check(60, case, |(route, id, mut map, field, item, n)| {
        let uri = uri(&route, &id);
        map.insert(field.to_owned(), Value::Array(vec![item.clone(); n]));
        let body = Value::Object(map).to_string();
        let what = format!("{} {uri} {{{field}: [{item}; {n}]}}", route.method);
        let request = request(
            route.method,
            &uri,
            Some("application/json"),
            body.into_bytes(),
        );
        answer_checked(request, &what)?;
        Ok(())
    });
}

/// A query string: known keys and arbitrary ones, with values of every kind, encoded; or
/// raw text with broken escapes.
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "page", "limit", "perPage", "status", "collection", "populates[]", "populates",
            "name", "date_of_birth", "expiresIn",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let value = prop_oneof![
        2 => (0u64..200).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "-1", "0", "4294967296", "99999999999999999999", "1.5", "", "collections",
            "active", "inactive", "pending", "ACTIVE", "1990-01-01", "1990-02-30", "Oba",
            "ob", "123", "   ", "%", "\u{0}",
        ])
        .prop_map(str::to_owned),
        1 => id().prop_map(|id| id.resolve()),
        1 => any::<String>(),
    ];
    prop_oneof![
        4 => prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => "([A-Za-z0-9=&;+._~!$'()*,:@/?-]|%[0-9A-Fa-f]{2}|%[^0-9A-Fa-f]?){0,40}",
    ]
}

#[derive(Debug, Clone, Copy)]
enum Get {
    ListPersons,
    Lookup,
    ListCollections,
    Session,
    Health,
    Person,
    Collection,
    DeletePerson,
    DeleteCollection,
}

#[test]
fn queries_and_path_ids_get_documented_answers() {
    let which = prop::sample::select(vec![
        Get::ListPersons,
        Get::Lookup,
        Get::ListCollections,
        Get::Session,
        Get::Health,
        Get::Person,
        Get::Collection,
        Get::DeletePerson,
        Get::DeleteCollection,
    ]);
    // Deleting the fixture's own person or collection would make later cases shallower:
    // only unknown ids are deleted.
    let unknown_id = id().prop_filter("not the fixture's", |id| matches!(id, Id::Literal(_)));
    check(
        1500,
        (which, id(), unknown_id, query()),
        |(which, id, unknown, query)| {
            let id = percent_encode(&id.resolve());
            let unknown = percent_encode(&unknown.resolve());
            let (method, path) = match which {
                Get::ListPersons => ("GET", format!("{BASE}/persons")),
                Get::Lookup => ("GET", format!("{BASE}/persons/lookup")),
                Get::ListCollections => ("GET", format!("{BASE}/collections")),
                Get::Session => ("GET", "/v2/auth/session".to_owned()),
                Get::Health => ("GET", "/health".to_owned()),
                Get::Person => ("GET", format!("{BASE}/persons/{id}")),
                Get::Collection => ("GET", format!("{BASE}/collections/{id}")),
                Get::DeletePerson => ("DELETE", format!("{BASE}/persons/{unknown}")),
                Get::DeleteCollection => ("DELETE", format!("{BASE}/collections/{unknown}")),
            };
            let uri = format!("{path}?{query}");
            let Ok(request) = Request::builder()
                .method(method)
                .uri(&uri)
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", fixture().app.token),
                )
                .body(Body::empty())
            else {
                // Not a URI the HTTP layer would hand over at all.
                return Ok(());
            };
            answer_checked(request, &format!("{method} {uri}"))?;
            Ok(())
        },
    );
}

#[test]
fn real_photos_with_fuzzed_fields_get_documented_answers() {
    // The routes that run face work, each image a real photo (a few cases: each costs a
    // detection and an embedding per image).
    let photos = ["obama2.jpg", "t1.jpg", "Tom_Hanks_54745.png"];
    let photos: Vec<String> = photos.iter().map(|p| fixture_image(p)).collect();
    let face_routes: Vec<Route> = ROUTES
        .iter()
        .copied()
        .filter(|r| {
            r.fields
                .iter()
                .any(|(_, k)| matches!(k, Kind::Image | Kind::Images))
        })
        .collect();
    let case = prop::sample::select(face_routes).prop_flat_map(|r| {
        (
            Just(r),
            path_id(r),
            body_for(r),
            prop::collection::vec(any::<prop::sample::Index>(), 1..=2),
        )
    });
    check(48, case, |(route, id, mut body, picks)| {
        let chosen: Vec<Value> = picks
            .iter()
            .map(|i| json!(photos[i.index(photos.len())]))
            .collect();
        for (name, kind) in route.fields {
            match kind {
                Kind::Image => {
                    body.insert((*name).to_owned(), chosen[0].clone());
                }
                Kind::Images => {
                    body.insert((*name).to_owned(), Value::Array(chosen.clone()));
                }
                _ => {}
            }
        }
        let uri = uri(&route, &id);
        let text = Value::Object(body.clone()).to_string();
        let shown: Map<String, Value> = body
            .into_iter()
            .filter(|(k, _)| {
                !route
                    .fields
                    .iter()
                    .any(|(n, kind)| n == k && matches!(kind, Kind::Image | Kind::Images))
            })
            .collect();
        let what = format!("{} {uri} (photos) {}", route.method, Value::Object(shown));
        let request = request(
            route.method,
            &uri,
            Some("application/json"),
            text.into_bytes(),
        );
        answer_checked(request, &what)?;
        Ok(())
    });
}
