//! Passive liveness: `/liveness`, `/liveness-score`, `/compare-live`,
//! `/compare-with-liveness`. A live score passes when it is strictly above the threshold.

use axum::extract::State;
use serde_json::{json, Value};
use vision::Score;

use super::compare::{best_pair, CompareThreshold, MAX_GALLERY_IMAGES};
use super::params::{self, OPERATING_SYSTEMS, SEARCH_MODES};
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::ApiResult;
use crate::faces;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

/// The documented default of `liveness_min_score` where it is optional.
pub const DEFAULT_LIVENESS_MIN_SCORE: f64 = 0.6;

/// A live score as shown in answers.
pub fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// `{liveness_score, min_score, passed}`.
pub fn verdict(score: f32, min_score: f64) -> Value {
    let score = f64::from(score);
    json!({"liveness_score": round4(score), "min_score": min_score, "passed": score > min_score})
}

pub fn passes(score: f32, min_score: f64) -> bool {
    f64::from(score) > min_score
}

/// `/liveness` and `/liveness-score` (one contract): the live score of the image's largest face.
pub async fn liveness(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    f.req_enum("os", &OPERATING_SYSTEMS)?;
    let image = f.req_str("image")?;
    // Only associates the attempt with a collection; it must still be the client's.
    params::collection(&st, &client, &f).await?;
    let min_score = f
        .opt_number("liveness_min_score", 0.0, 1.0)?
        .unwrap_or(DEFAULT_LIVENESS_MIN_SCORE);
    let score = faces::liveness(&st.pipeline, &st.cpu, image).await?;
    Ok(st.envelope(verdict(score, min_score)))
}

/// The best probe/gallery score and the live probe's live score, in one pass.
async fn compare_and_score_live(
    st: &AppState,
    probe: &str,
    gallery: &[&str],
) -> ApiResult<(Score, f32)> {
    let images: Vec<&str> = std::iter::once(probe)
        .chain(gallery.iter().copied())
        .collect();
    let (faces, live) = faces::largest_faces_first_live(&st.pipeline, &st.cpu, &images).await?;
    let (probe_face, gallery_faces) = faces.split_at(1);
    Ok((best_pair(probe_face, gallery_faces), live))
}

/// `/compare-live`: compare and liveness on the probe, both always reported.
pub async fn compare_live(
    State(st): State<AppState>,
    AuthClient(_client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let probe = f.req_str("probe")?;
    let gallery = f.req_str_or_array("gallery", 1, MAX_GALLERY_IMAGES)?;
    f.req_enum("os", &OPERATING_SYSTEMS)?;
    let mode = f.opt_enum("search_mode", &SEARCH_MODES)?.unwrap_or("FAST");
    let liveness_min = f.req_number("liveness_min_score", 0.52, 1.0)?;
    let threshold = CompareThreshold::parse(&f)?;
    let (score, live) = compare_and_score_live(&st, probe, &gallery).await?;
    let compared = threshold.passes(score);
    let alive = passes(live, liveness_min);
    Ok(st.envelope(json!({
        "score": score.rounded(),
        "liveness": verdict(live, liveness_min),
        "compare_min_score": threshold.rounded(),
        "liveness_min_score": liveness_min,
        "passed": compared && alive,
        "result": {
            "score": score.rounded(),
            "liveness_score": round4(f64::from(live)),
            "compare_min_score": threshold.rounded(),
            "passed": compared && alive,
        },
        "type": "compareLive",
        "search_mode": mode,
        "status": "success",
    })))
}

/// `/compare-with-liveness`: compare first; liveness only reported when the compare passed.
pub async fn compare_with_liveness(
    State(st): State<AppState>,
    AuthClient(_client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let probe = f.req_str("probe")?;
    let gallery = f.req_str_or_array("gallery", 1, MAX_GALLERY_IMAGES)?;
    let mode = f.req_enum("search_mode", &SEARCH_MODES)?;
    let liveness_min = f
        .opt_number("liveness_min_score", 0.52, 1.0)?
        .unwrap_or(DEFAULT_LIVENESS_MIN_SCORE);
    let threshold = CompareThreshold::parse(&f)?;
    let (score, live) = compare_and_score_live(&st, probe, &gallery).await?;
    let compared = threshold.passes(score);
    let liveness = if compared {
        let mut v = verdict(live, liveness_min);
        if let Value::Object(fields) = &mut v {
            fields.insert("type".into(), json!("liveness"));
            fields.insert("result".into(), verdict(live, liveness_min));
        }
        v
    } else {
        Value::Null
    };
    Ok(st.envelope(json!({
        "comparison": {
            "score": score.rounded(),
            "compare_min_score": threshold.rounded(),
            "passed": compared,
            "result": {"score": score.rounded(), "compare_min_score": threshold.rounded(), "passed": compared},
            "type": "compareLive",
            "search_mode": mode,
            "status": "success",
        },
        "liveness": liveness,
    })))
}
