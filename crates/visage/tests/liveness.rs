//! Every live endpoint over real HTTP with the real liveness models: the printed-poster and
//! phone-replay attacks fail, the live selfie passes; without the models they answer 501 and
//! create nothing.

mod common;

use base64::Engine;
use common::{
    error_body, fixture_b64, person_total, post_data, post_status, repo_path, validation_body,
    TestServer, BASE,
};
use serde_json::{json, Value};

fn live_fixture(name: &str) -> String {
    let bytes = std::fs::read(repo_path("fixtures/liveness").join(name)).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// obama.jpg shrunk so that its face is about 30 px wide.
fn tiny_face() -> String {
    let bytes = std::fs::read(repo_path("fixtures/faces/obama.jpg")).expect("fixture");
    let img = image::load_from_memory(&bytes).expect("decodes");
    let small = img.resize(114, 142, image::imageops::FilterType::Triangle);
    let mut png = Vec::new();
    small
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    base64::engine::general_purpose::STANDARD.encode(png)
}

#[test]
fn liveness_endpoints_pass_the_live_selfie_and_fail_the_attacks() {
    let s = TestServer::start();
    let t = s.token("acme");
    for path in ["/liveness", "/liveness-score"] {
        for (name, live) in [
            ("image_F1.jpg", false),
            ("image_F2.jpg", false),
            ("image_T1.jpg", true),
        ] {
            let d = post_data(
                &s,
                &t,
                path,
                json!({"os": "IOS", "image": live_fixture(name)}),
            );
            assert_eq!(d["passed"], live, "{path} {name}: {d}");
            assert_eq!(d["min_score"], 0.6);
            let score = d["liveness_score"].as_f64().expect("score");
            assert_eq!(score > 0.6, live, "{name}: {score}");
        }
    }
    // A stricter threshold than T1's score fails it: the rule is score > min_score.
    let d = post_data(
        &s,
        &t,
        "/liveness",
        json!({"os": "ANDROID", "image": live_fixture("image_F1.jpg"), "liveness_min_score": 0.1}),
    );
    assert_eq!(d["passed"], true, "F1 scores about 0.22: {d}");

    // Errors: validation, unknown collection, a face too small to judge, no face.
    let img = live_fixture("image_T1.jpg");
    for (body, status, expected) in [
        (
            json!({"image": img}),
            409,
            validation_body("\"os\" is required"),
        ),
        (
            json!({"os": "WINDOWS", "image": img}),
            409,
            validation_body("\"os\" must be one of [DESKTOP, IOS, ANDROID]"),
        ),
        (
            json!({"os": "IOS"}),
            409,
            validation_body("\"image\" is required"),
        ),
        (
            json!({"os": "IOS", "image": img, "liveness_min_score": 2}),
            409,
            validation_body("\"liveness_min_score\" must be less than or equal to 1"),
        ),
        (
            json!({"os": "IOS", "image": img, "collection_id": "0123456789abcdef01234567"}),
            404,
            error_body("invalid_collection"),
        ),
        (
            json!({"os": "IOS", "image": tiny_face()}),
            412,
            error_body("face_too_small"),
        ),
        (
            json!({"os": "IOS", "image": "abc"}),
            412,
            error_body("only_images_in_base64"),
        ),
    ] {
        assert_eq!(
            s.post(&format!("{BASE}/liveness"), &t, body),
            (status, expected)
        );
    }
}

#[test]
fn live_compare_search_and_enrolment() {
    let s = TestServer::start();
    let t = s.token("acme");
    let (_, b) = s.post(&format!("{BASE}/collections"), &t, json!({"name": "desk"}));
    let desk = b["data"]["_id"].as_str().expect("id").to_owned();
    let (_, b) = s.post(&format!("{BASE}/collections"), &t, json!({"name": "lobby"}));
    let lobby = b["data"]["_id"].as_str().expect("id").to_owned();

    // compare-live: both verdicts always reported.
    let d = post_data(
        &s,
        &t,
        "/compare-live",
        json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("obama.jpg")], "os": "DESKTOP", "liveness_min_score": 0.6}),
    );
    assert_eq!(d["result"]["passed"], true, "{d}");
    assert_eq!(d["liveness"]["passed"], true);
    assert!(d["score"].as_f64().expect("score") >= 0.85);
    let d = post_data(
        &s,
        &t,
        "/compare-live",
        json!({"probe": live_fixture("image_F2.jpg"), "gallery": [fixture_b64("obama.jpg")], "os": "IOS", "liveness_min_score": 0.6}),
    );
    assert_eq!(d["liveness"]["passed"], false, "{d}");
    assert_eq!(d["passed"], false);
    assert_eq!(
        post_status(
            &s,
            &t,
            "/compare-live",
            json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("obama.jpg")], "os": "IOS", "liveness_min_score": 0.5})
        ),
        (
            409,
            validation_body("\"liveness_min_score\" must be greater than or equal to 0.52")
        )
    );

    // compare-with-liveness: liveness skipped only when a given compare_min_score is not met
    // (tests/contract.rs has every case).
    let d = post_data(
        &s,
        &t,
        "/compare-with-liveness",
        json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("obama.jpg")], "search_mode": "FAST"}),
    );
    assert_eq!(d["comparison"]["passed"], true, "{d}");
    assert_eq!(d["liveness"]["passed"], true);
    assert_eq!(d["liveness"]["min_score"], 0.6);
    let d = post_data(
        &s,
        &t,
        "/compare-with-liveness",
        json!({"probe": fixture_b64("biden.jpg"), "gallery": [fixture_b64("obama.jpg")], "search_mode": "FAST", "compare_min_score": 0.85}),
    );
    assert_eq!(d["comparison"]["passed"], false, "{d}");
    assert_eq!(d["liveness"], Value::Null);
    assert_eq!(
        post_status(
            &s,
            &t,
            "/compare-with-liveness",
            json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("obama.jpg")]})
        ),
        (409, validation_body("\"search_mode\" is required"))
    );

    // persons/search-live-face: the live selfie is enrolled into the collection.
    let enrol = |image: String, collection: &str| {
        json!({"name": "Live Person", "images": [image], "gender": "F", "date_of_birth": "1990-01-01",
               "collection_id": collection, "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST"})
    };
    let created = post_data(
        &s,
        &t,
        "/persons/search-live-face",
        enrol(live_fixture("image_T1.jpg"), &desk),
    );
    assert_eq!(created["collections"], json!([desk]));
    assert!(created["liveness_score"].as_f64().expect("score") > 0.6);
    // The same person again: a duplicate, found before liveness runs.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            enrol(live_fixture("image_T1.jpg"), &desk)
        ),
        (409, error_body("409:duplicated_person"))
    );
    // The upstream samples show one man: his phone-replay attack is a duplicate in `desk`
    // (the search runs first), and in `lobby` it is refused by liveness; nothing is created.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            enrol(live_fixture("image_F2.jpg"), &desk)
        ),
        (409, error_body("409:duplicated_person"))
    );
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            enrol(live_fixture("image_F2.jpg"), &lobby)
        ),
        (409, error_body("409:liveness_failed"))
    );
    assert_eq!(person_total(&s, &t), 1);

    // search-live-face: liveness, then 1:N.
    let d = post_data(
        &s,
        &t,
        "/search-live-face",
        json!({"image": live_fixture("image_T1.jpg"), "os": "IOS", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "ACCURATE", "collection_id": desk}),
    );
    assert_eq!(d["persons"][0]["id"], created["_id"], "{d}");
    assert!(d["liveness_score"].as_f64().expect("score") > 0.6);
    assert_eq!(
        post_status(
            &s,
            &t,
            "/search-live-face",
            json!({"image": live_fixture("image_F1.jpg"), "os": "IOS", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST"})
        ),
        (409, error_body("409:liveness_failed"))
    );
}

#[test]
fn without_the_liveness_models_live_endpoints_answer_501_and_create_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let models = tmp.path().join("models");
    std::fs::create_dir(&models).expect("mkdir");
    for file in [
        "face_detection_yunet_2023mar.onnx",
        "face_recognition_sface_2021dec.onnx",
    ] {
        std::fs::copy(common::models_dir().join(file), models.join(file)).expect("copy model");
    }
    let s = TestServer::start_with_models(&tmp.path().join("data"), &models, &[]);
    let t = s.token("acme");
    let (_, b) = s.post(&format!("{BASE}/collections"), &t, json!({"name": "desk"}));
    let desk = b["data"]["_id"].clone();
    let selfie = live_fixture("image_T1.jpg");
    let not_available = (501, error_body("liveness_not_available"));
    for (path, body) in [
        ("/liveness", json!({"os": "IOS", "image": selfie})),
        ("/liveness-score", json!({"os": "IOS", "image": selfie})),
        (
            "/compare-live",
            json!({"probe": selfie, "gallery": [selfie], "os": "IOS", "liveness_min_score": 0.6}),
        ),
        (
            "/compare-with-liveness",
            json!({"probe": selfie, "gallery": [selfie], "search_mode": "FAST"}),
        ),
        (
            "/search-live-face",
            json!({"image": selfie, "os": "IOS", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST"}),
        ),
        (
            "/persons/search-live-face",
            json!({"name": "Live Person", "images": [selfie], "gender": "F", "date_of_birth": "1990-01-01",
            "collection_id": desk, "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST"}),
        ),
    ] {
        assert_eq!(
            s.post(&format!("{BASE}{path}"), &t, body),
            not_available,
            "{path}"
        );
    }
    assert_eq!(person_total(&s, &t), 0, "nothing was created");
    // Everything else still works.
    post_data(
        &s,
        &t,
        "/search",
        json!({"images": [selfie], "min_score": 0.81, "search_mode": "FAST"}),
    );
}
