//! Cheap requests that used to cost a lot: images no face fits in, refused before any pixel
//! is decoded, and `/detect` on a crowd with a collection, whose search is capped.

mod common;

use base64::Engine;
use common::{collection, fixture_b64, post_ok, TestServer, BASE};
use serde_json::{json, Value};
use service::params::DETECT_MAX_SEARCHED_FACES;

fn b64_png(img: &image::RgbImage) -> String {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// The server's peak resident memory so far, in KiB (`VmHWM`).
fn peak_rss_kib(s: &TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn hair_thin_images_are_refused_without_decoding_and_the_server_keeps_answering() {
    let s = TestServer::start();
    let t = s.token("acme");
    let obama = post_ok(
        &s,
        &t,
        "/persons",
        json!({"name": "Barack Obama", "images": [fixture_b64("obama.jpg")]}),
    )["data"]["_id"]
        .clone();
    let before = peak_rss_kib(&s);
    // Four at once, as the report that found it: each one used to be decoded, then padded
    // into a 12000x24000 canvas at full resolution (about 3 s and 100 MB apiece).
    let thin = [
        b64_png(&image::RgbImage::from_pixel(
            1,
            11_999,
            image::Rgb([128; 3]),
        )),
        b64_png(&image::RgbImage::from_pixel(
            12_000,
            1,
            image::Rgb([128; 3]),
        )),
    ];
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..4)
            .map(|i| {
                let (s, t, image) = (&s, &t, &thin[i % 2]);
                scope.spawn(move || {
                    s.post(
                        &format!("{BASE}/search"),
                        t,
                        json!({"images": [image], "min_score": 0.8, "search_mode": "FAST"}),
                    )
                })
            })
            .collect();
        posts
            .into_iter()
            .map(|p| p.join().expect("thread"))
            .collect()
    });
    for answer in answers {
        assert_eq!(answer, (412, common::error_body("invalid_image")));
    }
    let grown_mib = peak_rss_kib(&s).saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
    let found = post_ok(
        &s,
        &t,
        "/search",
        json!({"images": [fixture_b64("obama2.jpg")], "min_score": 0.8, "search_mode": "FAST"}),
    );
    assert_eq!(found["data"][0]["id"], obama, "{found}");
}

/// Four copies of t1.jpg (six faces each) in a 2x2 grid: 24 faces.
fn crowd() -> String {
    let bytes = std::fs::read(common::repo_path("fixtures/faces/t1.jpg")).expect("fixture");
    let t1 = image::load_from_memory(&bytes).expect("t1.jpg").into_rgb8();
    let (w, h) = (t1.width() / 2, t1.height() / 2);
    let tile = image::imageops::resize(&t1, w, h, image::imageops::FilterType::Triangle);
    let mut grid = image::RgbImage::new(2 * w, 2 * h);
    for (x, y) in [(0, 0), (w, 0), (0, h), (w, h)] {
        image::imageops::replace(&mut grid, &tile, i64::from(x), i64::from(y));
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&grid)
        .expect("jpeg");
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

#[test]
fn detect_with_a_collection_searches_at_most_the_cap_of_faces() {
    let s = TestServer::start();
    let t = s.token("acme");
    let team = collection(&s, &t, "team");
    let person = post_ok(
        &s,
        &t,
        "/persons",
        json!({"name": "t1 largest face", "images": [fixture_b64("t1.jpg")], "collections": [team["_id"]]}),
    )["data"]["_id"]
        .clone();
    let image = crowd();
    let det = post_ok(
        &s,
        &t,
        "/detect",
        json!({"image": image, "collection_id": team["_id"], "min_score": 0.7, "search_mode": "ACCURATE"}),
    );
    let faces = det["data"]["faces"].as_array().expect("faces");
    assert_eq!(det["data"]["face_count"], faces.len());
    assert!(
        faces.len() > DETECT_MAX_SEARCHED_FACES,
        "{} faces",
        faces.len()
    );
    // The first faces (best detection first) carry `persons`, the rest none.
    let searched: Vec<bool> = faces.iter().map(|f| f.get("persons").is_some()).collect();
    let expected: Vec<bool> = (0..faces.len())
        .map(|i| i < DETECT_MAX_SEARCHED_FACES)
        .collect();
    assert_eq!(searched, expected);
    let confidences: Vec<f64> = faces
        .iter()
        .map(|f| f["confidence"].as_f64().expect("confidence"))
        .collect();
    assert!(
        confidences.windows(2).all(|p| p[0] >= p[1]),
        "{confidences:?}"
    );
    // The batch answers each face with its own matches: the enrolled face is found on some
    // of the four copies, and not on every searched face.
    let matched = faces
        .iter()
        .filter_map(|f| f.get("persons"))
        .filter(|p| {
            p.as_array()
                .expect("persons")
                .iter()
                .any(|m| m["id"] == person)
        })
        .count();
    assert!((1..=4).contains(&matched), "{matched} faces matched");
    // Without a collection, nothing is searched.
    let det = post_ok(&s, &t, "/detect", json!({"image": image}));
    let faces = det["data"]["faces"].as_array().expect("faces");
    assert!(faces.len() > DETECT_MAX_SEARCHED_FACES);
    assert!(faces.iter().all(|f| f.get("persons").is_none()));
}
