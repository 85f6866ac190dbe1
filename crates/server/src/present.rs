//! Stored objects as the API shows them (Verifik field names; never embeddings).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use service::{ClientId, Collection, Match, Person};

fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn collection(c: &Collection) -> Value {
    json!({
        "_id": c.id.as_str(),
        "code": c.code.as_str(),
        "name": c.name,
        "description": c.description,
        "project": c.project,
        "client": c.client.as_str(),
        "deleted": false,
        "createdAt": iso(&c.created_at),
        "updatedAt": iso(&c.updated_at),
        "__v": 0,
    })
}

/// The owner of an object, populated (`populates[]=client`). visage knows a client only by
/// the id its tokens carry, so the object holds that id alone.
pub fn client(id: &ClientId) -> Value {
    json!({"_id": id.as_str()})
}

/// A person; with `populated` the collections are objects instead of ids.
pub fn person(p: &Person, populated: Option<&[Collection]>) -> Value {
    let collections: Vec<Value> = match populated {
        Some(all) => p
            .collections
            .iter()
            .filter_map(|id| all.iter().find(|c| &c.id == id))
            .map(|c| json!({"_id": c.id.as_str(), "code": c.code.as_str(), "name": c.name, "description": c.description}))
            .collect(),
        None => p.collections.iter().map(|c| json!(c.as_str())).collect(),
    };
    let thumbnails: Vec<Value> = p
        .thumbnails
        .iter()
        .map(|t| json!({"id": t.id.as_str(), "thumbnail": STANDARD.encode(&t.jpeg)}))
        .collect();
    json!({
        "_id": p.id.as_str(),
        "name": p.name,
        "gender": p.gender.map(|g| g.as_str()),
        "date_of_birth": p.date_of_birth.map(|d| d.format("%Y-%m-%d").to_string()),
        "nationality": p.nationality,
        "notes": p.notes,
        "collections": collections,
        "thumbnails": thumbnails,
        "client": p.client.as_str(),
        "status": p.status.as_str(),
        "deleted": false,
        "createdAt": iso(&p.created_at),
        "updatedAt": iso(&p.updated_at),
    })
}

/// Legacy face-engine time stamps: naive ISO with microseconds, no zone.
fn engine_time(t: &DateTime<Utc>) -> String {
    t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// A person found by search or verify: the face engine's match item (`id`, `score`,
/// `create_date`, `modified_date`) over the person's usual fields.
pub fn match_item(m: &Match) -> Value {
    let (p, score) = (&m.person, m.score);
    let mut item = person(p, None);
    if let Value::Object(fields) = &mut item {
        fields.insert("id".into(), json!(p.id.as_str()));
        fields.insert("score".into(), json!(score.rounded()));
        fields.insert("create_date".into(), json!(engine_time(&p.created_at)));
        fields.insert("modified_date".into(), json!(engine_time(&p.updated_at)));
    }
    item
}
