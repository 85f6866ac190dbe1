//! Search, verify, compare and detect over real HTTP, with the fixture faces through the real
//! models: who is found, what scope and tenancy allow, what erasure removes at once, and every
//! validation error body.

mod common;

use common::{collection, fixture_b64, post_ok, TestServer, BASE};
use serde_json::{json, Value};

fn enrol(s: &TestServer, t: &str, name: &str, image: &str, collections: &[&Value]) -> String {
    let ids: Vec<&Value> = collections.iter().map(|c| &c["_id"]).collect();
    let b = post_ok(
        s,
        t,
        "/persons",
        json!({"name": name, "images": [fixture_b64(image)], "collections": ids}),
    );
    b["data"]["_id"].as_str().expect("_id").to_owned()
}

fn search(s: &TestServer, t: &str, image: &str, min_score: f64, extra: Value) -> Value {
    let mut body =
        json!({"images": [fixture_b64(image)], "min_score": min_score, "search_mode": "ACCURATE"});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    post_ok(s, t, "/search", body)
}

fn ids(reply: &Value) -> Vec<String> {
    reply["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

fn scores(reply: &Value) -> Vec<f64> {
    reply["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|m| m["score"].as_f64().expect("score"))
        .collect()
}

#[test]
fn search_finds_obama_within_scope_and_tenant_and_forgets_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let s = TestServer::start_in(&dir, &[]);
    let t = s.token("acme");
    let other = s.token("globex");
    let vip = collection(&s, &t, "vip");
    let staff = collection(&s, &t, "staff");
    let obama = enrol(&s, &t, "Barack Obama", "obama.jpg", &[&vip, &staff]);
    let biden = enrol(&s, &t, "Joe Biden", "biden.jpg", &[&vip]);
    let collins = enrol(&s, &t, "Eileen Collins", "astronaut.png", &[]);
    let hanks = enrol(&s, &t, "Tom Hanks", "Tom_Hanks_54745.png", &[]);
    let elsewhere = enrol(&s, &other, "Obama Elsewhere", "obama3.jpg", &[]);

    // At the default threshold, only Obama; the answer says how many faces were compared.
    let found = search(&s, &t, "obama2.jpg", 0.81, json!({}));
    assert_eq!(ids(&found), [obama.as_str()], "{found}");
    assert_eq!(found["faces_searched"], 4);
    let item = &found["data"][0];
    assert_eq!(item["name"], "Barack Obama");
    assert!(
        item["score"].as_f64().expect("score") >= 0.81
            && item["score"].as_f64().expect("score") <= 1.0
    );
    assert_eq!(item["thumbnails"].as_array().expect("thumbnails").len(), 1);
    assert!(item["create_date"].as_str().expect("create_date").len() >= 26);
    assert!(item.get("faceEncodings").is_none() && !item.to_string().contains("embedding"));

    // At a low threshold, everyone of this client, best first, never the other client's.
    let all = search(&s, &t, "obama2.jpg", 0.2, json!({"max_results": 100}));
    let mut everyone = ids(&all);
    assert_eq!(everyone[0], obama);
    let sc = scores(&all);
    assert!(sc.windows(2).all(|w| w[0] >= w[1]), "{sc:?}");
    assert!(sc[1] < 0.81, "nobody else reaches the default: {sc:?}");
    everyone.sort();
    let mut expected = vec![obama.clone(), biden.clone(), collins, hanks];
    expected.sort();
    assert_eq!(everyone, expected);
    assert_eq!(
        ids(&search(
            &s,
            &t,
            "obama2.jpg",
            0.2,
            json!({"max_results": 2})
        ))
        .len(),
        2
    );

    // The other client finds only its own Obama, and cannot name our collection.
    let theirs = search(&s, &other, "obama2.jpg", 0.81, json!({}));
    assert_eq!(ids(&theirs), [elsewhere]);
    let (status, b) = s.post(
        &format!("{BASE}/search"),
        &other,
        json!({"images": [fixture_b64("obama2.jpg")], "min_score": 0.81, "search_mode": "FAST", "collection_id": vip["_id"]}),
    );
    assert_eq!(
        (status, b),
        (
            404,
            json!({"message": "invalid_collection", "code": "ERROR"})
        )
    );

    // Collection scope, by `_id` or by `code`.
    for reference in [&vip["_id"], &vip["code"]] {
        let scoped = search(
            &s,
            &t,
            "obama2.jpg",
            0.2,
            json!({"collection_id": reference}),
        );
        assert_eq!(scoped["faces_searched"], 2);
        assert_eq!(ids(&scoped).len(), 2);
        assert_eq!(ids(&scoped)[0], obama);
    }

    // Detached from vip: gone from vip searches at once, still found elsewhere.
    let (status, b) = s.delete(
        &format!(
            "{BASE}/persons/{obama}?collection={}",
            vip["_id"].as_str().expect("id")
        ),
        &t,
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["data"]["deleted"], false);
    let scoped = search(
        &s,
        &t,
        "obama2.jpg",
        0.81,
        json!({"collection_id": vip["code"]}),
    );
    assert!(ids(&scoped).is_empty(), "{scoped}");
    assert_eq!(scoped["faces_searched"], 1);
    assert_eq!(
        ids(&search(
            &s,
            &t,
            "obama2.jpg",
            0.81,
            json!({"collection_id": staff["_id"]})
        )),
        [obama.as_str()]
    );

    // Erased: gone from every search before the DELETE's answer arrived.
    let (status, _) = s.delete(&format!("{BASE}/persons/{obama}"), &t);
    assert_eq!(status, 200);
    let after = search(&s, &t, "obama2.jpg", 0.2, json!({"max_results": 100}));
    assert!(!ids(&after).contains(&obama));
    assert_eq!(after["faces_searched"], 3);

    // Deactivated persons are not matched; reactivated ones are again.
    let (status, _) = s.put(
        &format!("{BASE}/persons/{biden}"),
        &t,
        json!({"status": "inactive"}),
    );
    assert_eq!(status, 200);
    assert!(ids(&search(&s, &t, "biden.jpg", 0.81, json!({}))).is_empty());
    let (status, _) = s.put(
        &format!("{BASE}/persons/{biden}"),
        &t,
        json!({"status": "active"}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        ids(&search(&s, &t, "biden.jpg", 0.81, json!({}))),
        [biden.as_str()]
    );

    // After a restart the index is rebuilt from the store: same answers.
    s.stop();
    let s = TestServer::start_in(&dir, &[]);
    assert_eq!(ids(&search(&s, &t, "biden.jpg", 0.81, json!({}))), [biden]);
    let after = search(&s, &t, "obama2.jpg", 0.2, json!({"max_results": 100}));
    assert!(!ids(&after).contains(&obama));
    assert_eq!(after["faces_searched"], 3);
}

#[test]
fn crops_active_user_verify_compare_and_detect() {
    let s = TestServer::start();
    let t = s.token("acme");
    let team = collection(&s, &t, "team");
    let obama = enrol(&s, &t, "Barack Obama", "obama.jpg", &[&team]);
    let biden = enrol(&s, &t, "Joe Biden", "biden.jpg", &[]);
    let hanks = enrol(&s, &t, "Tom Hanks", "Tom_Hanks_54745.png", &[]);

    // A 112x112 aligned crop is searchable through /search/crops.
    let crops = post_ok(
        &s,
        &t,
        "/search/crops",
        json!({"images": [fixture_b64("Tom_Hanks_54745.png")], "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(ids(&crops), [hanks]);

    // search-active-user: one image, `[{id, score}]`.
    let active = post_ok(
        &s,
        &t,
        "/search-active-user",
        json!({"image": fixture_b64("obama3.jpg"), "os": "DESKTOP", "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(ids(&active), [obama.as_str()]);
    assert!(active["data"][0]["score"].as_f64().expect("score") >= 0.81);

    // Verify: obama2 is the enrolled Obama; Biden's photo is not (200, match null, a score).
    let v = post_ok(
        &s,
        &t,
        "/verify",
        json!({"id": obama, "images": [fixture_b64("obama2.jpg")], "min_score": 0.81, "search_mode": "ACCURATE"}),
    );
    assert_eq!(v["data"]["match"]["id"], obama.as_str());
    assert_eq!(v["data"]["match"]["name"], "Barack Obama");
    assert!(v["data"]["score"].as_f64().expect("score") >= 0.81);
    let v = post_ok(
        &s,
        &t,
        "/verify",
        json!({"id": obama, "images": [fixture_b64("biden.jpg")], "min_score": 0.81, "search_mode": "ACCURATE", "collection_id": team["code"]}),
    );
    assert_eq!(v["data"]["match"], Value::Null);
    let low = v["data"]["score"].as_f64().expect("score");
    assert!((0.0..0.81).contains(&low), "{v}");
    // Biden is not in `team`, and another client cannot verify against our Obama.
    let (status, b) = s.post(
        &format!("{BASE}/verify"),
        &t,
        json!({"id": biden, "images": [fixture_b64("biden.jpg")], "min_score": 0.81, "search_mode": "FAST", "collection_id": team["_id"]}),
    );
    assert_eq!(
        (status, b),
        (
            404,
            json!({"error": "Person not found", "message": "PERSON_NOT_FOUND"})
        )
    );
    let (status, _) = s.post(
        &format!("{BASE}/verify"),
        &s.token("globex"),
        json!({"id": obama, "images": [fixture_b64("obama2.jpg")], "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(status, 404);

    // Compare: Obama vs Biden fails; Obama vs Obama passes; the answer is the documented union.
    let c = post_ok(
        &s,
        &t,
        "/compare",
        json!({"probe": [fixture_b64("obama.jpg")], "gallery": [fixture_b64("biden.jpg")], "search_mode": "FAST"}),
    );
    let d = &c["data"];
    assert_eq!(d["result"]["passed"], false, "{c}");
    assert_eq!(d["compare_min_score"], 0.85);
    assert_eq!(d["result"]["compare_min_score"], 0.85);
    assert_eq!(d["score"], d["result"]["score"]);
    assert!(d["score"].as_f64().expect("score") < 0.85);
    // Demo-client shape: no search_mode, probe as one string, several gallery images.
    let c = post_ok(
        &s,
        &t,
        "/compare",
        json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("biden.jpg"), fixture_b64("obama3.jpg")], "compare_min_score": 0.9}),
    );
    assert_eq!(c["data"]["result"]["passed"], true, "{c}");
    assert!(c["data"]["score"].as_f64().expect("score") >= 0.9);

    // Detect: six faces on t1.jpg, in the current shape.
    let det = post_ok(&s, &t, "/detect", json!({"image": fixture_b64("t1.jpg")}));
    assert_eq!(det["data"]["face_count"], 6, "{det}");
    let faces = det["data"]["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 6);
    for f in faces {
        let bb = &f["bounding_box"];
        assert!(
            bb["width"].as_f64().expect("width") > 10.0
                && bb["height"].as_f64().expect("height") > 10.0
        );
        assert!(f["confidence"].as_f64().expect("confidence") >= 0.7);
        for k in ["left_eye", "right_eye", "nose", "mouth"] {
            assert!(f["landmarks"][k]["x"].is_number(), "{k}");
        }
        assert!(f.get("persons").is_none());
    }
    // Legacy parameters, with a collection: each face carries its matches.
    let det = post_ok(
        &s,
        &t,
        "/detect",
        json!({"image": fixture_b64("obama2.jpg"), "min_score": 0.8, "search_mode": "FAST", "collection_id": team["_id"], "max_results": 5}),
    );
    assert_eq!(det["data"]["face_count"], 1);
    let persons = det["data"]["faces"][0]["persons"]
        .as_array()
        .expect("persons");
    assert_eq!(persons.len(), 1);
    assert_eq!(persons[0]["id"], obama.as_str());
}

#[test]
fn every_validation_error_has_its_joi_worded_body() {
    let s = TestServer::start();
    let t = s.token("acme");
    let img = fixture_b64("obama.jpg");
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/search", json!({}), 409, "\"images\" is required"),
        (
            "/search",
            json!({"images": []}),
            409,
            "\"images\" must contain at least 1 items",
        ),
        (
            "/search",
            json!({"images": [img, img, img, img]}),
            409,
            "\"images\" must contain less than or equal to 3 items",
        ),
        (
            "/search",
            json!({"images": [img]}),
            409,
            "\"min_score\" is required",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": "high"}),
            409,
            "\"min_score\" must be a number",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.1}),
            409,
            "\"min_score\" must be greater than or equal to 0.2",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 1.5}),
            409,
            "\"min_score\" must be less than or equal to 1",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.8}),
            409,
            "\"search_mode\" is required",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.8, "search_mode": "SLOW"}),
            409,
            "\"search_mode\" must be one of [FAST, ACCURATE]",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.8, "search_mode": "FAST", "max_results": 0}),
            409,
            "\"max_results\" must be greater than or equal to 1",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.8, "search_mode": "FAST", "max_results": 101}),
            409,
            "\"max_results\" must be less than or equal to 100",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.8, "search_mode": "FAST", "max_results": 2.5}),
            409,
            "\"max_results\" must be an integer",
        ),
        (
            "/search",
            json!({"images": [img], "min_score": 0.8, "search_mode": "FAST", "collection_id": 7}),
            409,
            "\"collection_id\" must be a string",
        ),
        (
            "/search/crops",
            json!({"images": [img], "min_score": 0.3, "search_mode": "FAST"}),
            409,
            "\"min_score\" must be greater than or equal to 0.5",
        ),
        (
            "/search-active-user",
            json!({"image": img, "min_score": 0.8, "search_mode": "FAST"}),
            409,
            "\"os\" is required",
        ),
        (
            "/search-active-user",
            json!({"image": img, "os": "WINDOWS", "min_score": 0.8, "search_mode": "FAST"}),
            409,
            "\"os\" must be one of [DESKTOP, IOS, ANDROID]",
        ),
        (
            "/search-live-face",
            json!({"image": img, "os": "IOS", "min_score": 0.8, "search_mode": "FAST"}),
            409,
            "\"liveness_min_score\" is required",
        ),
        (
            "/persons/search-live-face",
            json!({"name": "A", "images": [img], "gender": "M", "date_of_birth": "1990-01-01", "liveness_min_score": 0.6, "min_score": 0.8, "search_mode": "FAST"}),
            409,
            "\"collection_id\" is required",
        ),
        (
            "/verify",
            json!({"images": [img], "min_score": 0.8, "search_mode": "FAST"}),
            409,
            "\"id\" is required",
        ),
        (
            "/verify",
            json!({"id": "0123456789abcdef01234567", "images": [img], "min_score": 0.4, "search_mode": "FAST"}),
            409,
            "\"min_score\" must be greater than or equal to 0.5",
        ),
        (
            "/compare",
            json!({"gallery": [img]}),
            409,
            "\"probe\" is required",
        ),
        (
            "/compare",
            json!({"probe": [img]}),
            409,
            "\"gallery\" is required",
        ),
        (
            "/compare",
            json!({"probe": [img], "gallery": [img], "compare_min_score": 0.5}),
            409,
            "\"compare_min_score\" must be greater than or equal to 0.67",
        ),
        (
            "/compare",
            json!({"probe": [img], "gallery": [img], "compare_min_score": 0.99}),
            409,
            "\"compare_min_score\" must be less than or equal to 0.95",
        ),
        ("/detect", json!({}), 409, "\"image\" is required"),
        (
            "/detect",
            json!({"image": img, "min_score": 0.5}),
            409,
            "\"min_score\" must be greater than or equal to 0.7",
        ),
        (
            "/detect",
            json!({"image": img, "return_landmarks": "yes"}),
            409,
            "\"return_landmarks\" must be a boolean",
        ),
    ];
    for (path, body, status, message) in cases {
        let (got, b) = s.post(&format!("{BASE}{path}"), &t, body.clone());
        assert_eq!(
            (got, b.clone()),
            (
                status,
                json!({"message": message, "code": "MissingParameter"})
            ),
            "{path} {}",
            body.to_string().chars().take(200).collect::<String>()
        );
    }

    // Bad images: 412 bodies, and nothing is searched.
    let error = |m: &str| json!({"message": m, "code": "ERROR"});
    let plain = |image: &str| json!({"images": [image], "min_score": 0.8, "search_mode": "FAST"});
    let no_face = {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(300, 300, image::Rgb([200, 180, 160]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png)
    };
    let truncated = {
        let bytes = std::fs::read(common::repo_path("fixtures/faces/obama.jpg")).expect("fixture");
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &bytes[..bytes.len() / 2],
        )
    };
    for (body, status, expected) in [
        (plain("abc"), 412, error("only_images_in_base64")),
        (plain(&"!".repeat(200)), 412, error("only_images_in_base64")),
        (plain(&"QUJD".repeat(100)), 412, error("invalid_image")),
        (plain(&truncated), 412, error("invalid_image")),
        (
            plain("https://example.com/face.jpg"),
            412,
            error("image_urls_disabled"),
        ),
        (plain(&no_face), 412, error("no_face_detected")),
    ] {
        let (got, b) = s.post(&format!("{BASE}/search"), &t, body);
        assert_eq!((got, b), (status, expected));
    }
    // Verify and compare with a faceless image, detect with a faceless image (zero faces).
    let (got, b) = s.post(
        &format!("{BASE}/compare"),
        &t,
        json!({"probe": [img], "gallery": [no_face]}),
    );
    assert_eq!((got, b), (412, error("no_face_detected")));
    let det = post_ok(&s, &t, "/detect", json!({"image": no_face}));
    assert_eq!(
        det["data"],
        json!({"face_count": 0, "faces": [], "attributes_available": false})
    );
    // An unknown person id, well-formed or not.
    for id in ["0123456789abcdef01234567", "not-an-id"] {
        let (got, b) = s.post(
            &format!("{BASE}/verify"),
            &t,
            json!({"id": id, "images": [img], "min_score": 0.8, "search_mode": "FAST"}),
        );
        assert_eq!(
            (got, b),
            (
                404,
                json!({"error": "Person not found", "message": "PERSON_NOT_FOUND"})
            )
        );
    }
    // Without a token: 401 on every biometric route.
    for path in [
        "/search",
        "/search/crops",
        "/search-active-user",
        "/search-live-face",
        "/verify",
        "/compare",
        "/detect",
        "/persons/search-live-face",
    ] {
        let (got, _) = s.call("POST", &format!("{BASE}{path}"), None, Some(&json!({})));
        assert_eq!(got, 401, "{path}");
    }
}
