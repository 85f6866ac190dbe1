//! `/detect`: every face of one image; with `collection_id`, each face is also searched.

use axum::extract::State;
use serde_json::{json, Value};
use service::params::{DEFAULT_MIN_SCORE, DETECT_DEFAULT_MAX_RESULTS, DETECT_MIN_SCORE_RANGE};
use service::{DetectParams, Detection};

use super::params;
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::present;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

fn point(p: [f32; 2]) -> Value {
    json!({"x": round1(p[0]), "y": round1(p[1])})
}

fn round1(v: f32) -> f64 {
    (f64::from(v) * 10.0).round() / 10.0
}

/// One face in the current shape (`bounding_box`, `confidence`, `landmarks`, `attributes`),
/// plus the legacy names (`box`, `detection_score`) of the same values. `attributes` is
/// always `null`: no age or gender model is installed, and guessing would be worse.
fn face(d: &Detection) -> Value {
    let b = &d.bbox;
    // YuNet's order: subject's right eye, left eye, nose, right and left mouth corners.
    let [right_eye, left_eye, nose, right_mouth, left_mouth] = d.landmarks;
    let mouth = [
        (right_mouth[0] + left_mouth[0]) / 2.0,
        (right_mouth[1] + left_mouth[1]) / 2.0,
    ];
    let confidence = service::round_score(f64::from(d.score));
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
        "attributes": Value::Null,
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
    let min_score = params::score_or(&f, "min_score", DETECT_MIN_SCORE_RANGE, DEFAULT_MIN_SCORE)?;
    let mode = params::opt_search_mode(&f)?;
    let collection = f.opt_str("collection_id")?;
    let max_results = params::max_results(&f, DETECT_DEFAULT_MAX_RESULTS)?;
    f.opt_bool("return_landmarks")?;
    // Answered, not ignored: `attributes` is null on every face and `attributes_available`
    // says why, whether or not they were asked for.
    f.opt_bool("return_attributes")?;
    let detect = DetectParams {
        collection,
        mode,
        min_score,
        max_results,
    };
    let detected = st.service.detect(&client, image, &detect).await?;
    let faces: Vec<Value> = detected
        .iter()
        .map(|d| {
            let mut item = face(&d.detection);
            if let (Some(matches), Value::Object(fields)) = (&d.matches, &mut item) {
                let persons = matches.iter().map(present::match_item).collect();
                fields.insert("persons".into(), Value::Array(persons));
            }
            item
        })
        .collect();
    Ok(st.envelope(json!({
        "face_count": faces.len(),
        "faces": faces,
        "attributes_available": false,
    })))
}
