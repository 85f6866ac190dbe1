//! `/detect`: every face of one image; with `collection_id`, each face is also searched.

use axum::extract::State;
use serde_json::{json, Value};
use vision::{Detection, Score};

use super::params::{self, DEFAULT_MIN_SCORE, SEARCH_MODES};
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::faces;
use crate::matching;
use crate::present;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

/// The legacy contract's range for `min_score` and its default for `max_results`.
const DETECT_MIN_SCORE_RANGE: (f64, f64) = (0.70, 0.95);
const DETECT_MAX_RESULTS: u32 = 99;

fn point(p: [f32; 2]) -> Value {
    json!({"x": round1(p[0]), "y": round1(p[1])})
}

fn round1(v: f32) -> f64 {
    (f64::from(v) * 10.0).round() / 10.0
}

/// One face in the current shape (`bounding_box`, `confidence`, `landmarks`), plus the
/// legacy names (`box`, `detection_score`) of the same values.
fn face(d: &Detection) -> Value {
    let b = &d.bbox;
    // YuNet's order: subject's right eye, left eye, nose, right and left mouth corners.
    let [right_eye, left_eye, nose, right_mouth, left_mouth] = d.landmarks;
    let mouth = [
        (right_mouth[0] + left_mouth[0]) / 2.0,
        (right_mouth[1] + left_mouth[1]) / 2.0,
    ];
    let confidence = (f64::from(d.score) * 1e4).round() / 1e4;
    json!({
        "bounding_box": {"x": round1(b.x), "y": round1(b.y), "width": round1(b.width), "height": round1(b.height)},
        "confidence": confidence,
        "landmarks": {
            "left_eye": point(left_eye),
            "right_eye": point(right_eye),
            "nose": point(nose),
            "mouth": point(mouth),
            "left_mouth": point(left_mouth),
            "right_mouth": point(right_mouth),
        },
        "box": {"top": round1(b.y), "left": round1(b.x), "right": round1(b.x + b.width), "bottom": round1(b.y + b.height)},
        "detection_score": confidence,
    })
}

pub async fn detect(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    // The legacy sample sent the image as a one-item `images` array.
    let image = match f.opt_str("image")? {
        Some(image) => image,
        None if body.contains_key("images") => f.req_str_array("images", 1, 1)?[0],
        None => return Err(ApiError::required("image")),
    };
    let (floor, ceiling) = DETECT_MIN_SCORE_RANGE;
    let min_score = params::opt_score(&f, "min_score", floor, ceiling)?
        .or_else(|| Score::new(DEFAULT_MIN_SCORE))
        .ok_or_else(|| ApiError::internal("default min_score out of range"))?;
    let mode = params::search_mode(f.opt_enum("search_mode", &SEARCH_MODES)?.unwrap_or("FAST"));
    f.opt_str("collection_id")?;
    let max_results = f
        .opt_integer("max_results", 1, params::MAX_RESULTS)?
        .unwrap_or(DETECT_MAX_RESULTS) as usize;
    f.opt_bool("return_landmarks")?;
    f.opt_bool("return_attributes")?;
    let collection = params::collection(&st, &client, &f).await?;

    let mut detected = faces::all_faces(&st.pipeline, &st.cpu, image, collection.is_some()).await?;
    detected.truncate(max_results);
    let mut out = Vec::with_capacity(detected.len());
    for (detection, embedding) in &detected {
        let mut item = face(detection);
        if let (Some(collection), Some(embedding), Value::Object(fields)) =
            (&collection, embedding, &mut item)
        {
            let query = matching::SearchQuery {
                probe: embedding,
                collection: Some(collection),
                mode,
                min_score,
                max_results,
            };
            let found = matching::search(&st, &client, query).await?;
            let persons: Vec<Value> = found
                .matches
                .iter()
                .map(|(p, s)| present::match_item(p, *s))
                .collect();
            fields.insert("persons".into(), Value::Array(persons));
        }
        out.push(item);
    }
    Ok(st.envelope(json!({"face_count": out.len(), "faces": out})))
}
