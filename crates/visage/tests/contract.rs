//! The last gaps between visage and what Verifik clients send and read, over real HTTP with
//! the real models: the compare-with-liveness rule, the legacy live-enrolment body and
//! `images` on `/search-live-face`, `populates[]=client`, the `expiresIn` cap, ObjectId
//! creation times, and `/detect`'s explicit `attributes: null`.

mod common;

use base64::Engine;
use common::{
    collection, create_person, error_body, fixture_b64, id, person_total, post_data, post_status,
    repo_path, validation_body, TestServer, BASE,
};
use serde_json::{json, Value};

fn live_fixture(name: &str) -> String {
    let bytes = std::fs::read(repo_path("fixtures/liveness").join(name)).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The seconds an ObjectId's first 8 hex digits carry.
fn object_id_secs(id: &str) -> u64 {
    u64::from_str_radix(&id[..8], 16).expect("hex")
}

#[test]
fn compare_with_liveness_skips_liveness_only_below_a_given_compare_min_score() {
    let s = TestServer::start();
    let t = s.token("acme");
    let different = |extra: Value| {
        let mut body = json!({"probe": fixture_b64("biden.jpg"), "gallery": [fixture_b64("obama.jpg")], "search_mode": "FAST"});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        post_data(&s, &t, "/compare-with-liveness", body)
    };
    // No compare_min_score: the comparison fails at the default 0.85, liveness still runs.
    let d = different(json!({}));
    assert_eq!(d["comparison"]["passed"], false, "{d}");
    assert_eq!(d["comparison"]["compare_min_score"], 0.85);
    assert!(d["liveness"]["liveness_score"].is_number(), "{d}");
    assert_eq!(d["liveness"]["min_score"], 0.6);
    // Given and not met: liveness is skipped.
    let d = different(json!({"compare_min_score": 0.85}));
    assert_eq!(d["comparison"]["passed"], false, "{d}");
    assert_eq!(d["liveness"], Value::Null);
    // Given and met: liveness runs.
    let d = post_data(
        &s,
        &t,
        "/compare-with-liveness",
        json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("obama.jpg")], "search_mode": "FAST", "compare_min_score": 0.7}),
    );
    assert_eq!(d["comparison"]["passed"], true, "{d}");
    assert!(d["liveness"]["passed"].is_boolean(), "{d}");
}

#[test]
fn the_legacy_live_enrolment_body_enrols_with_the_legacy_defaults() {
    let s = TestServer::start();
    let t = s.token("acme");
    let desk = collection(&s, &t, "desk");
    let lobby = collection(&s, &t, "lobby");
    let code = |c: &Value| c["code"].as_str().expect("code").to_owned();
    // The legacy sample: name, images, collection_id (the collection's code), os, notes.
    let legacy = |image: String, collection: String| json!({"name": "Live Person", "images": [image], "collection_id": collection, "os": "IOS", "notes": "front desk"});
    let created = post_data(
        &s,
        &t,
        "/persons/search-live-face",
        legacy(live_fixture("image_T1.jpg"), code(&desk)),
    );
    assert_eq!(created["collections"], json!([id(&desk)]), "{created}");
    assert_eq!(created["notes"], "front desk");
    assert_eq!(created["gender"], Value::Null);
    assert_eq!(created["date_of_birth"], Value::Null);
    // The live score passed the legacy default, 0.65.
    assert!(created["liveness_score"].as_f64().expect("score") > 0.65);
    // The same face again: a duplicate at the legacy default min_score 0.8.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            legacy(live_fixture("image_T1.jpg"), id(&desk))
        ),
        (409, error_body("409:duplicated_person"))
    );
    // A replay attack in another collection: refused by liveness at 0.65.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            legacy(live_fixture("image_F2.jpg"), code(&lobby))
        ),
        (409, error_body("409:liveness_failed"))
    );
    assert_eq!(person_total(&s, &t), 1);
    // What is given is still checked.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            json!({"name": "X", "images": [live_fixture("image_T1.jpg")], "collection_id": id(&lobby), "min_score": 0.3})
        ),
        (
            409,
            validation_body("\"min_score\" must be greater than or equal to 0.5")
        )
    );
    assert_eq!(
        post_status(
            &s,
            &t,
            "/persons/search-live-face",
            json!({"name": "X", "images": [live_fixture("image_T1.jpg")]})
        ),
        (409, validation_body("\"collection_id\" is required"))
    );
}

#[test]
fn search_live_face_takes_the_legacy_images_array() {
    let s = TestServer::start();
    let t = s.token("acme");
    let person = create_person(
        &s,
        &t,
        json!({"name": "Live Person", "images": [live_fixture("image_T1.jpg")]}),
    );
    let body = |images: Value| json!({"images": images, "os": "ANDROID", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "ACCURATE"});
    let d = post_data(
        &s,
        &t,
        "/search-live-face",
        body(json!([live_fixture("image_T1.jpg")])),
    );
    assert_eq!(d["persons"][0]["id"], person["_id"], "{d}");
    assert!(d["liveness_score"].as_f64().expect("score") > 0.6);
    // Liveness is judged on the first image.
    assert_eq!(
        post_status(
            &s,
            &t,
            "/search-live-face",
            body(json!([
                live_fixture("image_F1.jpg"),
                live_fixture("image_T1.jpg")
            ]))
        ),
        (409, error_body("409:liveness_failed"))
    );
    assert_eq!(
        post_status(&s, &t, "/search-live-face", body(json!([]))),
        (
            409,
            validation_body("\"images\" must contain at least 1 items")
        )
    );
    assert_eq!(
        post_status(
            &s,
            &t,
            "/search-live-face",
            json!({"os": "IOS", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST"})
        ),
        (409, validation_body("\"image\" is required"))
    );
}

#[test]
fn persons_populate_their_client_and_ids_carry_their_creation_time() {
    let s = TestServer::start();
    let t = s.token("acme");
    let before = now_secs();
    let staff = collection(&s, &t, "staff");
    let person = create_person(
        &s,
        &t,
        json!({"name": "Barack Obama", "images": [fixture_b64("obama.jpg")], "collections": [id(&staff)]}),
    );
    let after = now_secs();
    for object in [&staff, &person] {
        let secs = object_id_secs(&id(object));
        assert!(
            (before..=after).contains(&secs),
            "{object}: {secs} not in {before}..={after}"
        );
    }
    // The same second as createdAt.
    let created_at =
        chrono::DateTime::parse_from_rfc3339(person["createdAt"].as_str().expect("createdAt"))
            .expect("iso");
    assert!(
        created_at
            .timestamp()
            .abs_diff(object_id_secs(&id(&person)) as i64)
            <= 1
    );

    let (status, b) = s.get(
        &format!("{BASE}/persons?populates[]=collections&populates[]=client"),
        &t,
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["data"][0]["client"], json!({"_id": "acme"}));
    assert_eq!(b["data"][0]["collections"][0]["_id"], staff["_id"]);
    let (_, b) = s.get(&format!("{BASE}/persons"), &t);
    assert_eq!(b["data"][0]["client"], "acme", "an id unless populated");
}

/// The lifetime, in days, of a JWT (from its unverified payload).
fn lifetime_days(token: &str) -> i64 {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("json");
    (claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat")) / 86_400
}

#[test]
fn expires_in_above_the_maximum_is_capped_and_the_maximum_is_configurable() {
    let s = TestServer::start();
    let t = s.token("acme");
    let renew = |server: &TestServer, months: &str| {
        server.call(
            "GET",
            &format!("/v2/auth/session?origin=refresh&expiresIn={months}"),
            Some(&t),
            None,
        )
    };
    let (status, b) = renew(&s, "24");
    assert_eq!((status, &b["expiresIn"]), (200, &json!(12)), "{b}");
    assert_eq!(
        lifetime_days(b["accessToken"].as_str().expect("token")),
        360
    );
    let (status, b) = renew(&s, "3");
    assert_eq!((status, &b["expiresIn"]), (200, &json!(3)), "{b}");
    assert_eq!(lifetime_days(b["accessToken"].as_str().expect("token")), 90);
    for (bad, message) in [
        ("0", "\"expiresIn\" must be greater than or equal to 1"),
        ("soon", "\"expiresIn\" must be a number"),
    ] {
        assert_eq!(renew(&s, bad), (409, validation_body(message)), "{bad}");
    }
    drop(s);

    let tmp = tempfile::tempdir().expect("tempdir");
    let s = TestServer::start_in(&tmp.path().join("data"), &["--token-max-months", "24"]);
    let t = s.token("acme");
    let (status, b) = s.call("GET", "/v2/auth/session?expiresIn=36", Some(&t), None);
    assert_eq!((status, &b["expiresIn"]), (200, &json!(24)), "{b}");
    assert_eq!(
        lifetime_days(b["accessToken"].as_str().expect("token")),
        720
    );
}

#[test]
fn detect_answers_attributes_as_null_and_says_they_are_unavailable() {
    let s = TestServer::start();
    let t = s.token("acme");
    for body in [
        json!({"image": fixture_b64("obama.jpg"), "return_attributes": true, "return_landmarks": true}),
        json!({"image": fixture_b64("obama.jpg")}),
    ] {
        let d = post_data(&s, &t, "/detect", body);
        assert_eq!(d["face_count"], 1, "{d}");
        assert_eq!(d["attributes_available"], false);
        let face = d["faces"][0].as_object().expect("face");
        assert_eq!(face.get("attributes"), Some(&Value::Null), "{d}");
    }
}
