//! `/collections` over real HTTP.

mod common;

use common::{person_body, TestServer, BASE};
use serde_json::{json, Value};

const INVALID_COLLECTION: &str = r#"{"code":"ERROR","message":"invalid_collection"}"#;

fn create(s: &TestServer, token: &str, name: &str) -> Value {
    let (status, b) = s.post(
        &format!("{BASE}/collections"),
        token,
        json!({"name": name, "description": "d"}),
    );
    assert_eq!(status, 200, "{b}");
    b["data"].clone()
}

#[test]
fn collection_lifecycle() {
    let s = TestServer::start();
    let t = s.token("acme");
    let c = create(&s, &t, "staff");
    let id = c["_id"].as_str().expect("_id").to_owned();
    assert_eq!(id.len(), 24);
    assert_eq!(c["code"].as_str().map(str::len), Some(36));
    assert_eq!(c["name"], "staff");
    assert_eq!(c["client"], "acme");

    let (status, list) = s.get(&format!("{BASE}/collections"), &t);
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));

    let (status, got) = s.get(&format!("{BASE}/collections/{id}"), &t);
    assert_eq!((status, &got["data"]["_id"]), (200, &json!(id)));

    let (status, upd) = s.put(
        &format!("{BASE}/collections/{id}"),
        &t,
        json!({"name": "crew", "description": "new"}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        (
            upd["data"]["name"].as_str(),
            upd["data"]["description"].as_str()
        ),
        (Some("crew"), Some("new"))
    );

    let (status, del) = s.delete(&format!("{BASE}/collections/{id}"), &t);
    assert_eq!(
        (status, del["data"]["_id"].as_str()),
        (200, Some(id.as_str()))
    );
    let (status, b) = s.get(&format!("{BASE}/collections/{id}"), &t);
    assert_eq!((status, b.to_string().as_str()), (404, INVALID_COLLECTION));
}

#[test]
fn errors_have_verifik_bodies() {
    let s = TestServer::start();
    let t = s.token("acme");
    let (status, b) = s.post(
        &format!("{BASE}/collections"),
        &t,
        json!({"description": "no name"}),
    );
    assert_eq!(
        (status, b.to_string()),
        (
            409,
            r#"{"code":"MissingParameter","message":"\"name\" is required"}"#.to_owned()
        )
    );
    let (status, b) = s.post(&format!("{BASE}/collections"), &t, json!({"name": ["x"]}));
    assert_eq!(
        (status, b["message"].as_str()),
        (409, Some("\"name\" must be a string"))
    );
    for path in ["not-an-id", "0123456789abcdef01234567"] {
        let (status, b) = s.get(&format!("{BASE}/collections/{path}"), &t);
        assert_eq!((status, b.to_string().as_str()), (404, INVALID_COLLECTION));
        let (status, _) = s.put(
            &format!("{BASE}/collections/{path}"),
            &t,
            json!({"name": "x"}),
        );
        assert_eq!(status, 404);
        let (status, _) = s.delete(&format!("{BASE}/collections/{path}"), &t);
        assert_eq!(status, 404);
    }
    let c = create(&s, &t, "staff");
    let (status, b) = s.put(
        &format!("{BASE}/collections/{}", c["_id"].as_str().unwrap_or("")),
        &t,
        json!({"description": "no name"}),
    );
    assert_eq!(
        (status, b["message"].as_str()),
        (409, Some("\"name\" is required"))
    );
}

#[test]
fn update_syncs_people_and_delete_detaches_them() {
    let s = TestServer::start();
    let t = s.token("acme");
    let c = create(&s, &t, "staff");
    let cid = c["_id"].as_str().expect("_id").to_owned();
    let (status, p) = s.post(
        &format!("{BASE}/persons"),
        &t,
        person_body("Barack Obama", "obama.jpg"),
    );
    assert_eq!(status, 200, "{p}");
    let pid = p["data"]["_id"].as_str().expect("_id").to_owned();

    let (status, _) = s.put(
        &format!("{BASE}/collections/{cid}"),
        &t,
        json!({"name": "staff", "people": [{"_id": pid}]}),
    );
    assert_eq!(status, 200);
    let (_, got) = s.get(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(got["data"]["collections"], json!([cid]));

    let (status, _) = s.put(
        &format!("{BASE}/collections/{cid}"),
        &t,
        json!({"name": "staff", "people": []}),
    );
    assert_eq!(status, 200);
    let (_, got) = s.get(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(got["data"]["collections"], json!([]));

    let (status, _) = s.put(
        &format!("{BASE}/collections/{cid}"),
        &t,
        json!({"name": "staff", "people": [pid]}),
    );
    assert_eq!(status, 200);
    let (status, _) = s.delete(&format!("{BASE}/collections/{cid}"), &t);
    assert_eq!(status, 200);
    let (status, got) = s.get(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!((status, &got["data"]["collections"]), (200, &json!([])));
}

#[test]
fn another_clients_collections_are_invisible() {
    let s = TestServer::start();
    let (a, b) = (s.token("acme"), s.token("globex"));
    let c = create(&s, &a, "secret");
    let id = c["_id"].as_str().expect("_id");
    let (_, list) = s.get(&format!("{BASE}/collections"), &b);
    assert_eq!(list["data"], json!([]));
    for (status, body) in [
        s.get(&format!("{BASE}/collections/{id}"), &b),
        s.put(
            &format!("{BASE}/collections/{id}"),
            &b,
            json!({"name": "stolen"}),
        ),
        s.delete(&format!("{BASE}/collections/{id}"), &b),
    ] {
        assert_eq!(
            (status, body.to_string().as_str()),
            (404, INVALID_COLLECTION)
        );
    }
    let (status, still) = s.get(&format!("{BASE}/collections/{id}"), &a);
    assert_eq!((status, &still["data"]["name"]), (200, &json!("secret")));
}
