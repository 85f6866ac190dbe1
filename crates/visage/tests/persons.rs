//! `/persons` over real HTTP: enrolment through the real models, lists, updates, deletes,
//! tenancy, and every bad input leaving the store untouched.

mod common;

use base64::Engine;
use common::{
    collection, create_person, fixture_b64, id, person_body, person_total, TestServer, BASE,
};
use serde_json::{json, Value};

const NOT_FOUND: &str = r#"{"error":"Person not found","message":"PERSON_NOT_FOUND"}"#;

#[test]
fn enrol_list_lookup_retrieve_update_delete() {
    let s = TestServer::start();
    let t = s.token("acme");
    let staff = collection(&s, &t, "staff");
    let p = create_person(
        &s,
        &t,
        json!({"name": "Barack 44 Obama", "images": [fixture_b64("obama.jpg"), fixture_b64("obama2.jpg")],
               "gender": "M", "date_of_birth": "1961-08-04", "nationality": "US", "notes": "n",
               "collections": [staff["code"]]}),
    );
    assert_eq!(p["name"], "Barack Obama", "digits are stripped");
    assert_eq!(p["date_of_birth"], "1961-08-04");
    assert_eq!(p["collections"], json!([staff["_id"]]));
    assert_eq!(p["status"], "active");
    let thumbs = p["thumbnails"].as_array().expect("thumbnails");
    assert_eq!(thumbs.len(), 2);
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(thumbs[0]["thumbnail"].as_str().expect("b64"))
        .expect("base64 thumbnail");
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "thumbnail is a JPEG");
    assert!(p.get("faceEncodings").is_none() && !p.to_string().contains("embedding"));
    let pid = id(&p);

    create_person(&s, &t, person_body("Joe Biden", "biden.jpg"));
    create_person(&s, &t, person_body("Eileen Collins", "astronaut.png"));

    let (status, page) = s.get(&format!("{BASE}/persons?page=2&limit=2"), &t);
    assert_eq!(status, 200);
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "limit": 2, "total": 3, "pages": 2})
    );
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let (_, filtered) = s.get(
        &format!(
            "{BASE}/persons?collection={}&populates[]=collections",
            id(&staff)
        ),
        &t,
    );
    assert_eq!(filtered["pagination"]["total"], 1);
    assert_eq!(filtered["data"][0]["collections"][0]["name"], "staff");
    let (status, b) = s.get(&format!("{BASE}/persons?limit=1000"), &t);
    assert_eq!(
        (status, b.to_string().as_str()),
        (
            409,
            r#"{"code":"INVALID_PARAMETERS","message":"Invalid query parameters"}"#
        )
    );

    let (status, found) = s.get(&format!("{BASE}/persons/lookup?name=obam"), &t);
    assert_eq!((status, &found["total"]), (200, &json!(1)));
    assert_eq!(found["data"][0]["collections"][0]["code"], staff["code"]);
    let (status, b) = s.get(&format!("{BASE}/persons/lookup?name=ob"), &t);
    assert_eq!(
        (status, b["message"].as_str()),
        (409, Some("name_too_short"))
    );

    let (status, got) = s.get(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(
        (status, &got["data"]["name"]),
        (200, &json!("Barack Obama"))
    );

    let (status, upd) = s.put(
        &format!("{BASE}/persons/{pid}"),
        &t,
        json!({"notes": "updated", "images": [fixture_b64("obama3.jpg")]}),
    );
    assert_eq!(status, 200, "{upd}");
    assert_eq!(upd["data"]["notes"], "updated");
    assert_eq!(upd["data"]["nationality"], "US", "omitted fields are kept");
    let new_thumbs = upd["data"]["thumbnails"].as_array().expect("thumbnails");
    assert_eq!(new_thumbs.len(), 1, "images replace all faces");
    assert_ne!(new_thumbs[0]["id"], thumbs[0]["id"]);

    let (status, del) = s.delete(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(status, 200);
    assert_eq!(
        del["data"],
        json!({"_id": pid, "deleted": true, "collections": []})
    );
    let (status, b) = s.get(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!((status, b.to_string().as_str()), (404, NOT_FOUND));
    let (status, b) = s.delete(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!((status, b.to_string().as_str()), (404, NOT_FOUND));
    assert_eq!(person_total(&s, &t), 2);
}

#[test]
fn duplicate_name_and_birth_date_in_a_collection_is_412() {
    let s = TestServer::start();
    let t = s.token("acme");
    let c = collection(&s, &t, "staff");
    let body = json!({"name": "Barack Obama", "date_of_birth": "1961-08-04", "images": [fixture_b64("obama.jpg")], "collections": [c["_id"]]});
    let first = create_person(&s, &t, body.clone());
    let (status, b) = s.post(&format!("{BASE}/persons"), &t, body);
    assert_eq!(status, 412);
    assert_eq!(
        (b["message"].as_str(), b["code"].as_str()),
        (Some("person_already_set"), Some("PreconditionFailed"))
    );
    assert_eq!(b["data"]["_id"], first["_id"]);
    assert_eq!(person_total(&s, &t), 1);
}

#[test]
fn renaming_into_a_duplicate_in_a_shared_collection_is_412_and_changes_nothing() {
    let s = TestServer::start();
    let t = s.token("acme");
    let c = collection(&s, &t, "staff");
    let obama = create_person(
        &s,
        &t,
        json!({"name": "Barack Obama", "date_of_birth": "1961-08-04",
               "images": [fixture_b64("obama.jpg")], "collections": [c["_id"]]}),
    );
    let biden = create_person(
        &s,
        &t,
        json!({"name": "Joe Biden", "date_of_birth": "1942-11-20", "notes": "vp",
               "images": [fixture_b64("biden.jpg")], "collections": [c["_id"]]}),
    );
    let path = format!("{BASE}/persons/{}", id(&biden));
    let (_, before) = s.get(&path, &t);
    let (status, b) = s.put(
        &path,
        &t,
        json!({"name": "BARACK OBAMA", "date_of_birth": "1961-08-04", "notes": "renamed",
               "images": [fixture_b64("obama2.jpg")]}),
    );
    assert_eq!(status, 412, "{b}");
    assert_eq!(
        (b["message"].as_str(), b["code"].as_str()),
        (Some("person_already_set"), Some("PreconditionFailed"))
    );
    assert_eq!(b["data"]["_id"], obama["_id"]);
    let (status, after) = s.get(&path, &t);
    assert_eq!(status, 200);
    assert_eq!(
        after["data"], before["data"],
        "nothing changed, faces included"
    );
    // Another date of birth is another person.
    let (status, b) = s.put(
        &path,
        &t,
        json!({"name": "Barack Obama", "date_of_birth": "1961-08-05"}),
    );
    assert_eq!(status, 200, "{b}");
}

#[test]
fn detach_from_one_collection_or_erase_with_the_last() {
    let s = TestServer::start();
    let t = s.token("acme");
    let (a, b) = (collection(&s, &t, "a"), collection(&s, &t, "b"));
    let p = create_person(
        &s,
        &t,
        json!({"name": "Obama", "images": [fixture_b64("obama.jpg")], "collections": [a["_id"], b["_id"]]}),
    );
    let pid = id(&p);
    let other = create_person(&s, &t, person_body("Biden", "biden.jpg"));

    let (status, body) = s.delete(
        &format!(
            "{BASE}/persons/{pid}?collection={}",
            a["code"].as_str().unwrap_or("")
        ),
        &t,
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"_id": pid, "deleted": false, "collections": [b["_id"]]})
    );
    let (status, body) = s.delete(&format!("{BASE}/persons/{pid}?collection={}", id(&a)), &t);
    assert_eq!(
        (status, body.to_string().as_str()),
        (404, NOT_FOUND),
        "no longer in a"
    );
    let (status, body) = s.delete(
        &format!("{BASE}/persons/{pid}?collection=0123456789abcdef01234567"),
        &t,
    );
    assert_eq!(
        (status, body.to_string().as_str()),
        (404, r#"{"code":"ERROR","message":"invalid_collection"}"#)
    );
    let (status, body) = s.delete(
        &format!("{BASE}/persons/{}?collection={}", id(&other), id(&b)),
        &t,
    );
    assert_eq!(
        (status, body.to_string().as_str()),
        (404, NOT_FOUND),
        "never in b"
    );

    let (status, body) = s.delete(&format!("{BASE}/persons/{pid}?collection={}", id(&b)), &t);
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"_id": pid, "deleted": true, "collections": []})
    );
    assert_eq!(s.get(&format!("{BASE}/persons/{pid}"), &t).0, 404);
}

#[test]
fn another_clients_persons_are_404_and_never_listed() {
    let s = TestServer::start();
    let (a, b) = (s.token("acme"), s.token("globex"));
    let p = create_person(&s, &a, person_body("Barack Obama", "obama.jpg"));
    let pid = id(&p);
    let (_, list) = s.get(&format!("{BASE}/persons"), &b);
    assert_eq!(
        (list["data"].clone(), list["pagination"]["total"].clone()),
        (json!([]), json!(0))
    );
    let (_, found) = s.get(&format!("{BASE}/persons/lookup?name=obama"), &b);
    assert_eq!(found["total"], 0);
    for (status, body) in [
        s.get(&format!("{BASE}/persons/{pid}"), &b),
        s.put(
            &format!("{BASE}/persons/{pid}"),
            &b,
            json!({"notes": "mine now"}),
        ),
        s.delete(&format!("{BASE}/persons/{pid}"), &b),
    ] {
        assert_eq!((status, body.to_string().as_str()), (404, NOT_FOUND));
    }
    let ca = collection(&s, &a, "acme-only");
    let (status, _) = s.post(
        &format!("{BASE}/persons"),
        &b,
        json!({"name": "x", "images": [fixture_b64("biden.jpg")], "collections": [ca["_id"]]}),
    );
    assert_eq!(status, 404, "another client's collection cannot be joined");
    let (status, got) = s.get(&format!("{BASE}/persons/{pid}"), &a);
    assert_eq!((status, got["data"]["notes"].clone()), (200, Value::Null));
}

/// A PNG of under 1 KB whose header claims 50000 x 50000 pixels.
fn png_bomb() -> String {
    let mut png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
        .expect("png");
    png[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in &png[12..29] {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    // Trailing bytes after IEND lift it over the 100-character minimum; still < 1 KB.
    png.extend_from_slice(&[0u8; 120]);
    base64::engine::general_purpose::STANDARD.encode(png)
}

#[test]
fn bad_input_gets_an_error_and_changes_nothing() {
    let s = TestServer::start_with(&["--body-limit-mb", "4"]);
    let t = s.token("acme");
    let p = create_person(&s, &t, person_body("Barack Obama", "obama.jpg"));
    let pid = id(&p);
    let before = s.get(&format!("{BASE}/persons/{pid}"), &t).1["data"].clone();
    let obama = std::fs::read(common::repo_path("fixtures/faces/obama.jpg")).expect("fixture");
    let truncated = base64::engine::general_purpose::STANDARD.encode(&obama[..obama.len() / 2]);
    let blank = {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(64, 64, image::Rgb([90, 90, 90]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        base64::engine::general_purpose::STANDARD.encode(png)
    };
    let err = |code: &str, message: &str| json!({"code": code, "message": message});
    let cases: Vec<(Value, u16, Value)> = vec![
        (
            json!({"images": [fixture_b64("obama.jpg")]}),
            409,
            err("MissingParameter", "\"name\" is required"),
        ),
        (
            json!({"name": "x"}),
            409,
            err("MissingParameter", "\"images\" is required"),
        ),
        (
            json!({"name": 12, "images": [fixture_b64("obama.jpg")]}),
            409,
            err("MissingParameter", "\"name\" must be a string"),
        ),
        (
            json!({"name": "x", "images": "abc"}),
            409,
            err("MissingParameter", "\"images\" must be an array"),
        ),
        (
            json!({"name": "x", "images": []}),
            409,
            err(
                "MissingParameter",
                "\"images\" must contain at least 1 items",
            ),
        ),
        (
            json!({"name": "x", "images": ["a", "b", "c", "d"]}),
            409,
            err(
                "MissingParameter",
                "\"images\" must contain less than or equal to 3 items",
            ),
        ),
        (
            json!({"name": "x", "images": [fixture_b64("obama.jpg")], "gender": "X"}),
            409,
            err("MissingParameter", "\"gender\" must be one of [M, F]"),
        ),
        (
            json!({"name": "x", "images": [fixture_b64("obama.jpg")], "date_of_birth": "04/08/1961"}),
            409,
            err(
                "MissingParameter",
                "\"date_of_birth\" must be in YYYY-MM-DD format",
            ),
        ),
        (
            json!({"name": "x", "images": ["too short"]}),
            412,
            err("ERROR", "only_images_in_base64"),
        ),
        (
            json!({"name": "x", "images": ["!".repeat(400)]}),
            412,
            err("ERROR", "only_images_in_base64"),
        ),
        (
            json!({"name": "x", "images": ["https://example.com/face.jpg"]}),
            412,
            err("ERROR", "image_urls_disabled"),
        ),
        (
            json!({"name": "x", "images": [base64::engine::general_purpose::STANDARD.encode("x".repeat(300))]}),
            412,
            err("ERROR", "invalid_image"),
        ),
        (
            json!({"name": "x", "images": [truncated]}),
            412,
            err("ERROR", "invalid_image"),
        ),
        (
            json!({"name": "x", "images": [png_bomb()]}),
            412,
            err("ERROR", "image_too_large"),
        ),
        (
            json!({"name": "x", "images": [fixture_b64("obama.jpg"), blank]}),
            412,
            err("ERROR", "no_face_detected"),
        ),
    ];
    for (body, status, expected) in cases {
        let (got_status, got) = s.post(&format!("{BASE}/persons"), &t, body.clone());
        assert_eq!(
            (got_status, &got),
            (status, &expected),
            "create {}",
            &body.to_string()[..body.to_string().len().min(80)]
        );
        // Image errors must fail an update the same way (other bodies may be valid updates).
        if status == 412 {
            let (got_status, got) = s.put(&format!("{BASE}/persons/{pid}"), &t, body);
            assert_eq!((got_status, &got), (status, &expected), "update");
        }
    }
    for raw in ["{not json", "[1,2]", "\"text\""] {
        let (status, _, b) = s.call_raw(
            "POST",
            &format!("{BASE}/persons"),
            Some(&t),
            Some(raw.to_owned()),
        );
        assert_eq!(
            (status, b["code"].as_str()),
            (409, Some("MissingParameter")),
            "{raw}"
        );
    }
    // Announce a 5 MiB body over a 4 MiB limit and send only its start: the server must
    // answer from the header alone (a raw socket, so no client races the early reply).
    let (status, b) = s.post_declared_size(&format!("{BASE}/persons"), &t, 5 * 1024 * 1024);
    assert_eq!((status, b), (413, err("ERROR", "payload_too_large")));

    assert_eq!(person_total(&s, &t), 1, "nothing was created");
    let after = s.get(&format!("{BASE}/persons/{pid}"), &t).1["data"].clone();
    assert_eq!(before, after, "the person was not changed");
    assert_eq!(
        s.call("GET", "/health", None, None).0,
        200,
        "the server is still up"
    );
}

#[test]
fn enrolment_queue_overflow_is_503_and_cheap_calls_still_answer() {
    let s = std::sync::Arc::new(TestServer::start_with(&[
        "--cpu-workers",
        "1",
        "--cpu-queue",
        "1",
    ]));
    let t = s.token("acme");
    let body = json!({"name": "x", "images": [fixture_b64("obama3.jpg"), fixture_b64("obama3.jpg"), fixture_b64("obama3.jpg")]}).to_string();
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (s, t, body) = (s.clone(), t.clone(), body.clone());
            std::thread::spawn(move || {
                s.call_raw("POST", &format!("{BASE}/persons"), Some(&t), Some(body))
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        s.get(&format!("{BASE}/persons"), &t).0,
        200,
        "lists answer while enrolments queue"
    );
    let results: Vec<_> = workers
        .into_iter()
        .map(|w| w.join().expect("thread"))
        .collect();
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert!(
        !busy.is_empty(),
        "statuses: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (_, headers, body) in &busy {
        assert_eq!(
            headers.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        assert_eq!(body, &json!({"code": "ERROR", "message": "server_busy"}));
    }
    let created = results.iter().filter(|r| r.0 == 200).count() as u64;
    assert!(created >= 1);
    assert_eq!(person_total(&s, &t), created);
}

#[test]
fn an_unexpected_failure_is_a_bare_500() {
    crate::sqlite_only!();
    let s = TestServer::start();
    let t = s.token("acme");
    let p = create_person(&s, &t, person_body("Barack Obama", "obama.jpg"));
    // Damage the stored row behind the server's back, as a broken disk or a careless
    // operator might.
    let db = rusqlite::Connection::open(s.data_dir.join("visage.db")).expect("open db");
    db.busy_timeout(std::time::Duration::from_secs(5))
        .expect("timeout");
    db.execute(
        "UPDATE persons SET date_of_birth = 'not a date' WHERE id = ?1",
        [id(&p)],
    )
    .expect("update");
    drop(db);
    let (status, b) = s.get(&format!("{BASE}/persons/{}", id(&p)), &t);
    assert_eq!(
        (status, b.to_string().as_str()),
        (500, r#"{"code":"ERROR","message":"internal_error"}"#)
    );
    assert_eq!(
        s.call("GET", "/health", None, None).0,
        200,
        "the server is still up"
    );
}
