//! One person's enrolment: read the images, keep the 3 with the largest faces when there are
//! more, and enrol through the API; the outcome is a line of the report.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::api::{Api, Refusal};
use super::archive::PersonInput;

/// Images per person the API takes.
const MAX_IMAGES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Enrolled,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub person: String,
    pub status: Status,
    pub id: Option<String>,
    pub error: Option<Refusal>,
    /// The files enrolled (or tried).
    pub files: Vec<String>,
    /// Anything the operator should know (images left out).
    pub note: Option<String>,
}

impl Outcome {
    pub fn skipped(p: &PersonInput, id: &str) -> Outcome {
        Outcome {
            person: p.name.clone(),
            status: Status::Skipped,
            id: Some(id.to_owned()).filter(|i| !i.is_empty()),
            error: None,
            files: p.labels.clone(),
            note: Some("enrolled by an earlier run (journal)".to_owned()),
        }
    }

    fn failed(p: &PersonInput, code: &str, detail: Option<String>) -> Outcome {
        Outcome {
            person: p.name.clone(),
            status: Status::Failed,
            id: None,
            error: Some(Refusal {
                code: code.to_owned(),
                detail,
            }),
            files: p.labels.clone(),
            note: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut line = Map::new();
        line.insert("person".into(), json!(self.person));
        let status = match self.status {
            Status::Enrolled => "enrolled",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        };
        line.insert("status".into(), json!(status));
        if let Some(id) = &self.id {
            line.insert("id".into(), json!(id));
        }
        if let Some(e) = &self.error {
            line.insert("error".into(), json!(e.code));
            if let Some(d) = &e.detail {
                line.insert("detail".into(), json!(d));
            }
        }
        line.insert("files".into(), json!(self.files));
        if let Some(n) = &self.note {
            line.insert("note".into(), json!(n));
        }
        Value::Object(line)
    }
}

/// Enrols `p`; `Err` only when the whole run must stop (token refused, server gone).
pub fn enrol(api: &Api, p: &PersonInput, collection: Option<&str>) -> anyhow::Result<Outcome> {
    if p.files.is_empty() {
        return Ok(Outcome::failed(p, "no_images", None));
    }
    let mut images = Vec::with_capacity(p.files.len());
    for (file, label) in p.files.iter().zip(&p.labels) {
        match std::fs::read(file) {
            Ok(bytes) => images.push(STANDARD.encode(bytes)),
            Err(e) => {
                return Ok(Outcome::failed(
                    p,
                    "unreadable_file",
                    Some(format!("{label}: {e}")),
                ))
            }
        }
    }
    let mut files = p.labels.clone();
    let mut note = None;
    if images.len() > MAX_IMAGES {
        match largest_faces(api, &images)? {
            Ok(keep) => {
                note = Some(format!(
                    "{} images: enrolled the {} with the largest faces",
                    images.len(),
                    keep.len()
                ));
                files = keep.iter().map(|&i| p.labels[i].clone()).collect();
                images = keep.iter().map(|&i| images[i].clone()).collect();
            }
            Err(refusal) => {
                let mut out = Outcome::failed(p, &refusal.code, refusal.detail);
                out.note = Some(format!("{} images, none with a face", images.len()));
                return Ok(out);
            }
        }
    }
    let mut body = json!({ "name": p.name, "images": images });
    if let Some(c) = collection {
        body["collections"] = json!([c]);
    }
    for (field, value) in [
        ("gender", &p.gender),
        ("date_of_birth", &p.date_of_birth),
        ("notes", &p.notes),
    ] {
        if let Some(v) = value {
            body[field] = json!(v);
        }
    }
    let outcome = match api.enrol(&body)? {
        Ok(id) => Outcome {
            person: p.name.clone(),
            status: Status::Enrolled,
            id: Some(id),
            error: None,
            files,
            note,
        },
        Err(refusal) => Outcome {
            files,
            note,
            ..Outcome::failed(p, &refusal.code, refusal.detail)
        },
    };
    Ok(outcome)
}

/// The indices of the (at most 3) images whose largest face is largest, in file order;
/// images without a face, or that the server refuses, are left out. `Err` when none has one.
fn largest_faces(api: &Api, images: &[String]) -> anyhow::Result<Result<Vec<usize>, Refusal>> {
    let mut scored = Vec::with_capacity(images.len());
    for (i, image) in images.iter().enumerate() {
        if let Ok(area) = api.largest_face(image)? {
            if area > 0.0 {
                scored.push((area, i));
            }
        }
    }
    if scored.is_empty() {
        return Ok(Err(Refusal {
            code: "no_face_detected".to_owned(),
            detail: None,
        }));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut keep: Vec<usize> = scored.iter().take(MAX_IMAGES).map(|&(_, i)| i).collect();
    keep.sort_unstable();
    Ok(Ok(keep))
}
