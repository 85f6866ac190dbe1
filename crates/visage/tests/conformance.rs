//! Client conformance: for every endpoint of `../shared/api/verifik-reference.md`, the request
//! bodies its sources show (the current docs [D], the legacy GitBook pages [D-old], Verifik's
//! demo client [D-demo]) are sent as-is to a real `visage serve`, and the status and the
//! shape of each answer are checked against what the reference says a client reads.

mod common;

use base64::Engine;
use common::{fixture_b64, id, repo_path, TestServer, BASE};
use serde_json::{json, Value};

fn live_fixture(name: &str) -> String {
    let bytes = std::fs::read(repo_path("fixtures/liveness").join(name)).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `data:` URI of a fixture face (accepted where the docs allow data URIs).
fn data_uri(name: &str) -> String {
    format!("data:image/jpeg;base64,{}", fixture_b64(name))
}

/// Every key of `keys` is in the object `v`.
#[track_caller]
fn assert_keys(v: &Value, keys: &[&str], what: &str) {
    let object = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for key in keys {
        assert!(object.contains_key(*key), "{what}: no {key:?} in {v}");
    }
}

/// The success envelope (`id` of 5 alphanumerics, `data`, `signature {message, dateTime}`);
/// its `data`.
#[track_caller]
fn envelope(b: &Value, what: &str) -> Value {
    assert_keys(b, &["id", "data", "signature"], what);
    let request_id = b["id"].as_str().expect("id");
    assert!(
        request_id.len() == 5 && request_id.chars().all(|c| c.is_ascii_alphanumeric()),
        "{what}: id {request_id:?}"
    );
    assert_keys(&b["signature"], &["message", "dateTime"], what);
    b["data"].clone()
}

/// The reference's Person (§2.1, the fields P1 answers with).
const PERSON: &[&str] = &[
    "_id",
    "name",
    "gender",
    "date_of_birth",
    "nationality",
    "thumbnails",
    "collections",
    "notes",
    "client",
    "status",
    "createdAt",
    "updatedAt",
];
/// The reference's Collection (§2.3).
const COLLECTION: &[&str] = &[
    "_id",
    "code",
    "name",
    "description",
    "client",
    "createdAt",
    "updatedAt",
];
/// A face-engine match item (§2.2).
const MATCH: &[&str] = &[
    "id",
    "name",
    "score",
    "gender",
    "date_of_birth",
    "thumbnails",
    "collections",
    "create_date",
    "modified_date",
];

struct Client<'a> {
    server: &'a TestServer,
    token: String,
}

impl Client<'_> {
    /// Sends `body` as-is; the status must be `status`; the envelope's `data`.
    #[track_caller]
    fn send(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, b) = self.server.call(
            method,
            &format!("{BASE}{path}"),
            Some(&self.token),
            body.as_ref(),
        );
        assert_eq!(got, status, "{what}: {method} {path}: {b}");
        if status == 200 {
            envelope(&b, what)
        } else {
            b
        }
    }

    #[track_caller]
    fn post(&self, what: &str, path: &str, body: Value) -> Value {
        self.send(what, "POST", path, Some(body), 200)
    }
}

#[test]
fn collections_and_persons_as_documented() {
    let s = TestServer::start();
    let c = Client {
        server: &s,
        token: s.token("acme"),
    };

    // C1 [D]: name and description.
    let staff = c.post(
        "C1",
        "/collections",
        json!({"name": "staff", "description": "people at the front desk"}),
    );
    assert_keys(&staff, COLLECTION, "C1");
    // C1 [D-old]: description was required, and a project could be named.
    let visitors = c.post(
        "C1 legacy",
        "/collections",
        json!({"name": "visitors", "description": "default collection for project 65a1b2c3d4e5f60718293a4b", "project": "65a1b2c3d4e5f60718293a4b"}),
    );
    assert_keys(&visitors, COLLECTION, "C1 legacy");
    let code = staff["code"].as_str().expect("code").to_owned();
    // C2 [D]: no query, every collection.
    let all = c.send("C2", "GET", "/collections", None, 200);
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    assert_keys(&all[0], COLLECTION, "C2");
    // C3 [D]: by _id.
    let got = c.send(
        "C3",
        "GET",
        &format!("/collections/{}", id(&staff)),
        None,
        200,
    );
    assert_eq!(got["_id"], staff["_id"]);

    // P1 [D]: every documented field; collections by _id.
    let obama = c.post(
        "P1",
        "/persons",
        json!({"name": "Barack Obama 44", "images": [fixture_b64("obama.jpg")], "gender": "M",
               "date_of_birth": "1961-08-04", "nationality": "American", "collections": [id(&staff)],
               "notes": "president"}),
    );
    assert_keys(&obama, PERSON, "P1");
    assert_eq!(obama["name"], "Barack Obama", "digits are stripped");
    // P1 [D]: only name and images.
    let minimal = c.post(
        "P1 minimal",
        "/persons",
        json!({"name": "Joe Biden", "images": [fixture_b64("biden.jpg")]}),
    );
    assert_keys(&minimal, PERSON, "P1 minimal");
    // P1 [D-old]: the legacy table's fields, collections by code.
    let legacy = c.post(
        "P1 legacy",
        "/persons",
        json!({"name": "Tom Hanks", "images": [fixture_b64("t1.jpg")], "gender": "M",
               "date_of_birth": "1956-07-09", "nationality": "American", "collections": [code],
               "notes": "", "emails": ["tom@example.com"], "phones": ["+1 555 0100"],
               "documentValidations": [], "environment": "not_set", "client": "someone-else"}),
    );
    assert_keys(&legacy, PERSON, "P1 legacy");
    assert_eq!(legacy["collections"], json!([id(&staff)]));
    assert_eq!(legacy["client"], "acme", "the client comes from the token");
    // P1 [D-demo]: singular email and phone.
    let demo = c.post(
        "P1 demo",
        "/persons",
        json!({"name": "Barack Twin", "images": [fixture_b64("obama3.jpg")], "gender": "M",
               "date_of_birth": "1961-08-05", "collections": [id(&visitors)],
               "email": "twin@example.com", "phone": "+1 555 0101"}),
    );
    assert_keys(&demo, PERSON, "P1 demo");
    // P1 [D]: the same name and birth date in a requested collection.
    let (status, b) = s.post(
        &format!("{BASE}/persons"),
        &c.token,
        json!({"name": "Barack Obama", "images": [fixture_b64("obama2.jpg")], "gender": "M",
               "date_of_birth": "1961-08-04", "collections": [id(&staff)]}),
    );
    assert_eq!(
        (status, &b["message"], &b["code"]),
        (
            412,
            &json!("person_already_set"),
            &json!("PreconditionFailed")
        )
    );
    assert_keys(
        &b["data"],
        &[
            "_id",
            "name",
            "date_of_birth",
            "gender",
            "collections",
            "thumbnails",
        ],
        "P1 412",
    );
    let (status, b) = s.post(
        &format!("{BASE}/persons"),
        &c.token,
        json!({"name": "Short", "images": ["abc"]}),
    );
    assert_eq!(
        (status, b),
        (
            412,
            json!({"message": "only_images_in_base64", "code": "ERROR"})
        )
    );

    // P3 [D]: the documented query, both populates.
    let (status, b) = s.get(
        &format!("{BASE}/persons?page=1&limit=10&collection={}&status=active&populates[]=collections&populates[]=client", id(&staff)),
        &c.token,
    );
    assert_eq!(status, 200, "P3: {b}");
    let page = envelope(&b, "P3");
    assert_keys(&b["pagination"], &["page", "limit", "total", "pages"], "P3");
    assert_eq!(b["pagination"]["total"], 2);
    assert_keys(&page[0], PERSON, "P3");
    assert_keys(
        &page[0]["collections"][0],
        &["_id", "code", "name", "description"],
        "P3",
    );
    assert_keys(&page[0]["client"], &["_id"], "P3");
    let (status, b) = s.get(&format!("{BASE}/persons?limit=1000"), &c.token);
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "Invalid query parameters", "code": "INVALID_PARAMETERS"})
        )
    );

    // P4 [D]: name (contains, case-insensitive), date of birth, paging.
    let (status, b) = s.get(
        &format!("{BASE}/persons/lookup?name=obama&date_of_birth=1961-08-04&page=1&limit=20"),
        &c.token,
    );
    assert_eq!(status, 200, "P4: {b}");
    assert_eq!(b["total"], 1);
    assert_keys(
        &b["data"][0],
        &[
            "_id",
            "name",
            "date_of_birth",
            "gender",
            "thumbnails",
            "collections",
        ],
        "P4",
    );
    let (status, b) = s.get(&format!("{BASE}/persons/lookup?name=zz"), &c.token);
    assert_eq!((status, &b["message"]), (409, &json!("name_too_short")));

    // P5 [D].
    let got = c.send("P5", "GET", &format!("/persons/{}", id(&obama)), None, 200);
    assert_keys(&got, PERSON, "P5");
    // P6 [D]: partial; images replace the faces; [D-old] collections replace the list.
    let updated = c.send(
        "P6",
        "PUT",
        &format!("/persons/{}", id(&obama)),
        Some(json!({"notes": "44th president", "nationality": "US"})),
        200,
    );
    assert_eq!(updated["notes"], "44th president");
    assert_eq!(updated["gender"], "M", "omitted fields are unchanged");
    let updated = c.send(
        "P6 images",
        "PUT",
        &format!("/persons/{}", id(&obama)),
        Some(json!({"images": [fixture_b64("obama.jpg"), fixture_b64("obama2.jpg")], "collections": [id(&staff), id(&visitors)]})),
        200,
    );
    assert_eq!(updated["thumbnails"].as_array().map(Vec::len), Some(2));
    assert_eq!(updated["collections"].as_array().map(Vec::len), Some(2));
    // C4 [D]: name on every update, membership from `people` objects with `_id` or `id`.
    let synced = c.send(
        "C4",
        "PUT",
        &format!("/collections/{}", id(&visitors)),
        Some(json!({"name": "visitors", "description": "guests", "people": [{"_id": id(&obama)}, {"id": id(&demo)}]})),
        200,
    );
    assert_keys(&synced, COLLECTION, "C4");
    let (status, b) = s.put(
        &format!("{BASE}/collections/{}", id(&visitors)),
        &c.token,
        json!({"description": "no name"}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"name\" is required", "code": "MissingParameter"})
        )
    );

    // P7 [D]: detach from one collection, then delete.
    let detached = c.send(
        "P7 collection",
        "DELETE",
        &format!("/persons/{}?collection={}", id(&obama), id(&visitors)),
        None,
        200,
    );
    assert_eq!(detached["_id"], obama["_id"]);
    let deleted = c.send(
        "P7",
        "DELETE",
        &format!("/persons/{}", id(&obama)),
        None,
        200,
    );
    assert_eq!(deleted["_id"], obama["_id"]);
    let (status, b) = s.get(&format!("{BASE}/persons/{}", id(&obama)), &c.token);
    assert_eq!(
        (status, b),
        (
            404,
            json!({"error": "Person not found", "message": "PERSON_NOT_FOUND"})
        )
    );
    // C5 [D]: a snapshot of the deleted collection; its persons stay.
    let gone = c.send(
        "C5",
        "DELETE",
        &format!("/collections/{}", id(&visitors)),
        None,
        200,
    );
    assert_eq!(gone["_id"], visitors["_id"]);
    c.send(
        "C5 persons stay",
        "GET",
        &format!("/persons/{}", id(&demo)),
        None,
        200,
    );
    let (status, b) = s.get(&format!("{BASE}/collections/{}", id(&visitors)), &c.token);
    assert_eq!(
        (status, b),
        (
            404,
            json!({"message": "invalid_collection", "code": "ERROR"})
        )
    );
}

#[test]
fn search_verify_and_detect_as_documented() {
    let s = TestServer::start();
    let c = Client {
        server: &s,
        token: s.token("acme"),
    };
    let staff = c.post("C1", "/collections", json!({"name": "staff"}));
    let code = staff["code"].as_str().expect("code").to_owned();
    let obama = c.post(
        "P1",
        "/persons",
        json!({"name": "Barack Obama", "images": [fixture_b64("obama.jpg")], "gender": "M",
               "date_of_birth": "1961-08-04", "collections": [id(&staff)]}),
    );

    // S1 [D]: min_score from 0.2, optional collection and max_results.
    for (what, body) in [
        (
            "S1",
            json!({"images": [fixture_b64("obama2.jpg")], "min_score": 0.81, "search_mode": "FAST", "collection_id": id(&staff), "max_results": 5}),
        ),
        (
            "S1 low threshold",
            json!({"images": [fixture_b64("obama2.jpg")], "min_score": 0.2, "search_mode": "ACCURATE"}),
        ),
        // [D-old] the search guide: collection by code.
        (
            "S1 legacy",
            json!({"images": [fixture_b64("obama2.jpg"), fixture_b64("obama3.jpg")], "min_score": 0.5, "search_mode": "FAST", "collection_id": code}),
        ),
    ] {
        let found = c.post(what, "/search", body);
        assert_eq!(found[0]["id"], obama["_id"], "{what}: {found}");
        assert_keys(&found[0], MATCH, what);
    }
    let (status, b) = s.post(
        &format!("{BASE}/search"),
        &c.token,
        json!({"images": [fixture_b64("obama2.jpg")], "search_mode": "FAST"}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"min_score\" is required", "code": "MissingParameter"})
        )
    );
    // S2 [D]: crops, min_score from 0.5.
    let found = c.post(
        "S2",
        "/search/crops",
        json!({"images": [fixture_b64("obama2.jpg")], "min_score": 0.7, "search_mode": "ACCURATE", "collection_id": id(&staff)}),
    );
    assert_keys(&found[0], &["id", "score"], "S2");
    // S4 [D]: one image and os, no liveness.
    let found = c.post(
        "S4",
        "/search-active-user",
        json!({"image": fixture_b64("obama2.jpg"), "os": "DESKTOP", "min_score": 0.81, "search_mode": "FAST", "collection_id": id(&staff)}),
    );
    assert_eq!(found[0]["id"], obama["_id"]);
    assert_keys(&found[0], &["id", "score"], "S4");
    let (status, b) = s.post(
        &format!("{BASE}/search-active-user"),
        &c.token,
        json!({"image": fixture_b64("obama2.jpg"), "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"os\" is required", "code": "MissingParameter"})
        )
    );

    // V1 [D]: images; [D-old] the table's `image`.
    for (what, body) in [
        (
            "V1",
            json!({"id": id(&obama), "images": [fixture_b64("obama2.jpg")], "min_score": 0.81, "search_mode": "FAST", "collection_id": id(&staff)}),
        ),
        (
            "V1 legacy",
            json!({"id": id(&obama), "image": fixture_b64("obama2.jpg"), "min_score": 0.81, "search_mode": "ACCURATE"}),
        ),
    ] {
        let verified = c.post(what, "/verify", body);
        assert_keys(
            &verified["match"],
            &[
                "id",
                "name",
                "score",
                "gender",
                "date_of_birth",
                "thumbnails",
                "collections",
            ],
            what,
        );
    }
    let verified = c.post(
        "V1 no match",
        "/verify",
        json!({"id": id(&obama), "images": [fixture_b64("biden.jpg")], "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(verified["match"], Value::Null);
    assert!(verified["score"].is_number());

    // D1 version A [D-old][D-demo]: min_score and search_mode, collection by code, a
    // search of each face.
    let detected = c.post(
        "D1 A",
        "/detect",
        json!({"image": fixture_b64("obama2.jpg"), "min_score": 0.8, "search_mode": "FAST", "collection_id": code, "max_results": 99}),
    );
    let face = &detected["faces"][0];
    assert_keys(
        face,
        &["box", "landmarks", "detection_score", "persons"],
        "D1 A",
    );
    assert_keys(&face["box"], &["top", "left", "right", "bottom"], "D1 A");
    assert_eq!(face["persons"][0]["id"], obama["_id"]);
    // D1 A's body sample sent a one-item `images`.
    let detected = c.post(
        "D1 A sample",
        "/detect",
        json!({"images": [fixture_b64("obama.jpg")], "min_score": 0.8, "search_mode": "ACCURATE"}),
    );
    assert_eq!(detected["face_count"], 1);
    // D1 version B [D]: a data URI and the two flags.
    let detected = c.post(
        "D1 B",
        "/detect",
        json!({"image": data_uri("obama.jpg"), "return_landmarks": true, "return_attributes": true}),
    );
    assert_keys(&detected, &["faces", "face_count"], "D1 B");
    let face = &detected["faces"][0];
    assert_keys(
        face,
        &["bounding_box", "confidence", "landmarks", "attributes"],
        "D1 B",
    );
    assert_keys(
        &face["bounding_box"],
        &["x", "y", "width", "height"],
        "D1 B",
    );
    assert_keys(
        &face["landmarks"],
        &["left_eye", "right_eye", "nose", "mouth"],
        "D1 B",
    );
    assert_keys(&face["landmarks"]["nose"], &["x", "y"], "D1 B");
    let (status, b) = s.post(&format!("{BASE}/detect"), &c.token, json!({}));
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"image\" is required", "code": "MissingParameter"})
        )
    );
}

#[test]
fn compare_and_liveness_as_documented() {
    let s = TestServer::start();
    let c = Client {
        server: &s,
        token: s.token("acme"),
    };
    let selfie = live_fixture("image_T1.jpg");

    // K1 [D]: arrays and search_mode; [D-demo] without search_mode; [D-old] a single probe
    // string and os.
    for (what, body) in [
        (
            "K1",
            json!({"probe": [fixture_b64("obama2.jpg")], "gallery": [fixture_b64("obama.jpg")], "search_mode": "FAST", "compare_min_score": 0.85}),
        ),
        (
            "K1 demo",
            json!({"probe": [fixture_b64("obama2.jpg")], "gallery": [fixture_b64("obama.jpg")], "compare_min_score": 0.8}),
        ),
        (
            "K1 legacy",
            json!({"probe": fixture_b64("obama2.jpg"), "gallery": [fixture_b64("obama.jpg")], "os": "DESKTOP", "search_mode": "ACCURATE"}),
        ),
    ] {
        let compared = c.post(what, "/compare", body);
        assert_keys(&compared, &["score", "result", "compare_min_score"], what);
        assert_keys(
            &compared["result"],
            &["score", "compare_min_score", "passed"],
            what,
        );
        assert_eq!(compared["result"]["passed"], true, "{what}: {compared}");
    }
    // K2 [D]; [D-demo] without search_mode.
    for (what, body) in [
        (
            "K2",
            json!({"probe": selfie, "gallery": [selfie], "os": "IOS", "search_mode": "FAST", "liveness_min_score": 0.6, "compare_min_score": 0.85}),
        ),
        (
            "K2 demo",
            json!({"probe": selfie, "gallery": [selfie], "os": "ANDROID", "liveness_min_score": 0.65}),
        ),
    ] {
        let compared = c.post(what, "/compare-live", body);
        assert_keys(&compared, &["score", "liveness"], what);
        assert_keys(
            &compared["liveness"],
            &["liveness_score", "min_score", "passed"],
            what,
        );
    }
    let (status, b) = s.post(
        &format!("{BASE}/compare-live"),
        &c.token,
        json!({"probe": selfie, "gallery": [selfie], "os": "IOS", "liveness_min_score": 0.5}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"liveness_min_score\" must be greater than or equal to 0.52", "code": "MissingParameter"})
        )
    );
    // K3 [D]: liveness after the comparison; [D-old] with os.
    for (what, body) in [
        (
            "K3",
            json!({"probe": selfie, "gallery": [selfie], "search_mode": "FAST", "liveness_min_score": 0.6, "compare_min_score": 0.85}),
        ),
        (
            "K3 minimal",
            json!({"probe": selfie, "gallery": [selfie], "search_mode": "ACCURATE"}),
        ),
        (
            "K3 legacy",
            json!({"probe": selfie, "gallery": [selfie], "search_mode": "FAST", "os": "IOS"}),
        ),
    ] {
        let compared = c.post(what, "/compare-with-liveness", body);
        assert_keys(&compared, &["comparison", "liveness"], what);
        assert_keys(&compared["comparison"], &["score"], what);
        assert_keys(
            &compared["liveness"],
            &["liveness_score", "min_score", "passed"],
            what,
        );
    }
    let (status, b) = s.post(
        &format!("{BASE}/compare-with-liveness"),
        &c.token,
        json!({"probe": selfie, "gallery": [selfie]}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"search_mode\" is required", "code": "MissingParameter"})
        )
    );

    // L1 and L2 [D]: os and image (raw base64 or a data URI), optional collection and
    // threshold.
    let desk = c.post("C1", "/collections", json!({"name": "desk"}));
    for path in ["/liveness", "/liveness-score"] {
        for (what, body) in [
            ("minimal", json!({"os": "IOS", "image": selfie})),
            (
                "every field",
                json!({"os": "ANDROID", "image": selfie, "collection_id": id(&desk), "liveness_min_score": 0.75}),
            ),
            (
                "data URI",
                json!({"os": "DESKTOP", "image": format!("data:image/jpeg;base64,{selfie}")}),
            ),
        ] {
            let judged = c.post(&format!("{path} {what}"), path, body);
            assert_keys(&judged, &["passed", "min_score", "liveness_score"], path);
            assert_eq!(judged["passed"], true, "{path} {what}: {judged}");
        }
        let (status, b) = s.post(&format!("{BASE}{path}"), &c.token, json!({"image": selfie}));
        assert_eq!(
            (status, b),
            (
                409,
                json!({"message": "\"os\" is required", "code": "MissingParameter"})
            )
        );
    }

    // P2 [D]: every field required, collection by _id.
    let created = c.post(
        "P2",
        "/persons/search-live-face",
        json!({"name": "Live Person", "images": [selfie], "gender": "F", "date_of_birth": "1990-01-15",
               "nationality": "Colombian", "collection_id": id(&desk), "liveness_min_score": 0.6,
               "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_keys(
        &created,
        &[
            "_id",
            "name",
            "gender",
            "date_of_birth",
            "collections",
            "deleted",
            "createdAt",
            "updatedAt",
        ],
        "P2",
    );
    // P2 [D-old]: name, images, collection_id (a code), optional os and notes.
    let lobby = c.post("C1", "/collections", json!({"name": "lobby"}));
    let legacy = c.post(
        "P2 legacy",
        "/persons/search-live-face",
        json!({"name": "Live Person", "images": [selfie], "collection_id": lobby["code"], "os": "IOS", "notes": "legacy"}),
    );
    assert_keys(
        &legacy,
        &["_id", "name", "collections", "createdAt", "updatedAt"],
        "P2 legacy",
    );
    let (status, b) = s.post(
        &format!("{BASE}/persons/search-live-face"),
        &c.token,
        json!({"name": "Live Person", "images": [selfie], "collection_id": id(&desk)}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "409:duplicated_person", "code": "ERROR"})
        )
    );

    // S3 [D]: one image; the legacy sample's `images`.
    for (what, body) in [
        (
            "S3",
            json!({"image": selfie, "os": "IOS", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST", "collection_id": id(&desk)}),
        ),
        (
            "S3 legacy",
            json!({"images": [selfie], "os": "IOS", "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST", "collection_id": id(&desk)}),
        ),
    ] {
        let found = c.post(what, "/search-live-face", body);
        assert_keys(&found, &["persons", "liveness_score"], what);
        assert_eq!(found["persons"][0]["id"], created["_id"], "{what}: {found}");
    }
    let (status, b) = s.post(
        &format!("{BASE}/search-live-face"),
        &c.token,
        json!({"image": selfie, "liveness_min_score": 0.6, "min_score": 0.81, "search_mode": "FAST"}),
    );
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "\"os\" is required", "code": "MissingParameter"})
        )
    );
}

#[test]
fn authentication_as_documented() {
    let s = TestServer::start();
    let token = s.token("acme");
    let http = reqwest::blocking::Client::new();
    let get = |path: &str, authorization: Option<String>| {
        let mut req = http.get(format!("{}{path}", s.url));
        if let Some(value) = authorization {
            req = req.header("Authorization", value);
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    // §1.1 [D]: Bearer, JWT, jwt, and the bare token of the renewal page.
    for scheme in ["Bearer ", "JWT ", "jwt ", ""] {
        let (status, b) = get(
            &format!("{BASE}/collections"),
            Some(format!("{scheme}{token}")),
        );
        assert_eq!(status, 200, "{scheme:?}: {b}");
        envelope(&b, scheme);
    }
    let (status, b) = get(&format!("{BASE}/persons"), None);
    assert_eq!(
        (status, b),
        (
            401,
            json!({"message": "Authentication required", "code": "UNAUTHORIZED"})
        )
    );
    // A1 [D]: the bare token, origin=refresh and expiresIn in months; no envelope.
    let (status, b) = get(
        "/v2/auth/session?origin=refresh&expiresIn=1",
        Some(token.clone()),
    );
    assert_eq!(status, 200, "A1: {b}");
    assert_keys(&b, &["accessToken", "tokenType"], "A1");
    assert_eq!(b["tokenType"], "bearer");
    let (status, b) = get("/v2/auth/session?origin=refresh&expiresIn=1", None);
    assert_eq!(
        (status, b),
        (
            409,
            json!({"message": "missing Authorization header", "code": "MissingParameter"})
        )
    );
    let (status, b) = get("/v2/auth/session", Some("not-a-token".into()));
    assert_eq!(status, 401);
    assert_eq!(
        (&b["code"], &b["message"]),
        (&json!("Unauthorized"), &json!("Invalid or expired token."))
    );
}
