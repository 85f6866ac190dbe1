//! Passive liveness: `/liveness`, `/liveness-score`, `/compare-live`,
//! `/compare-with-liveness`. A live score passes when it is strictly above the threshold.

use axum::extract::State;
use serde_json::{json, Value};
use service::params::{
    COMPARE_LIVENESS_MIN_SCORE_FLOOR, DEFAULT_LIVENESS_MIN_SCORE, MAX_GALLERY_IMAGES,
};
use service::LiveScore;

use super::compare::{outcome, threshold};
use super::params;
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::ApiResult;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

const OPERATING_SYSTEMS: [&str; 3] = ["DESKTOP", "IOS", "ANDROID"];

/// `{liveness_score, min_score, passed}`.
fn verdict(score: LiveScore, min_score: f64) -> Value {
    json!({"liveness_score": score.rounded(), "min_score": min_score, "passed": score.passes(min_score)})
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
    let collection = f.opt_str("collection_id")?;
    let min_score = f
        .opt_number("liveness_min_score", 0.0, 1.0)?
        .unwrap_or(DEFAULT_LIVENESS_MIN_SCORE);
    let score = st.service.liveness(&client, image, collection).await?;
    Ok(st.envelope(verdict(score, min_score)))
}

/// `/compare-live`: compare and liveness on the probe, both always reported.
pub async fn compare_live(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let probe = f.req_str("probe")?;
    let gallery = f.req_str_or_array("gallery", 1, MAX_GALLERY_IMAGES)?;
    f.req_enum("os", &OPERATING_SYSTEMS)?;
    let mode = params::opt_search_mode(&f)?;
    let liveness_min = f.req_number("liveness_min_score", COMPARE_LIVENESS_MIN_SCORE_FLOOR, 1.0)?;
    let threshold = threshold(&f)?;
    let (compared, live) = st
        .service
        .compare_live(&client, probe, &gallery, threshold)
        .await?;
    let passed = compared.passed && live.passes(liveness_min);
    Ok(st.envelope(json!({
        "score": compared.score.rounded(),
        "liveness": verdict(live, liveness_min),
        "compare_min_score": threshold.rounded(),
        "liveness_min_score": liveness_min,
        "passed": passed,
        "result": {
            "score": compared.score.rounded(),
            "liveness_score": live.rounded(),
            "compare_min_score": threshold.rounded(),
            "passed": passed,
        },
        "type": "compareLive",
        "search_mode": mode.as_str(),
        "status": "success",
    })))
}

/// `/compare-with-liveness`: compare first; liveness is skipped (`null`) only when
/// `compare_min_score` was given and the comparison did not reach it, as Verifik documents.
/// Without it, `comparison.passed` uses the default threshold and liveness is reported.
pub async fn compare_with_liveness(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let probe = f.req_str("probe")?;
    let gallery = f.req_str_or_array("gallery", 1, MAX_GALLERY_IMAGES)?;
    let mode = params::search_mode(&f)?;
    let liveness_min = f
        .opt_number("liveness_min_score", COMPARE_LIVENESS_MIN_SCORE_FLOOR, 1.0)?
        .unwrap_or(DEFAULT_LIVENESS_MIN_SCORE);
    let threshold = threshold(&f)?;
    let threshold_given = body.get("compare_min_score").is_some_and(|v| !v.is_null());
    let (compared, live) = st
        .service
        .compare_live(&client, probe, &gallery, threshold)
        .await?;
    let liveness = if compared.passed || !threshold_given {
        let mut v = verdict(live, liveness_min);
        if let Value::Object(fields) = &mut v {
            fields.insert("type".into(), json!("liveness"));
            fields.insert("result".into(), verdict(live, liveness_min));
        }
        v
    } else {
        Value::Null
    };
    let mut comparison = outcome(&compared, threshold);
    if let Value::Object(fields) = &mut comparison {
        fields.insert("result".into(), outcome(&compared, threshold));
        fields.insert("type".into(), json!("compareLive"));
        fields.insert("search_mode".into(), json!(mode.as_str()));
        fields.insert("status".into(), json!("success"));
    }
    Ok(st.envelope(json!({"comparison": comparison, "liveness": liveness})))
}
