//! `/compare`: 1:1 between two sets of images, no enrolment.

use axum::extract::State;
use serde_json::{json, Value};
use service::params::{
    COMPARE_MIN_SCORE_RANGE, DEFAULT_COMPARE_MIN_SCORE, MAX_GALLERY_IMAGES, MAX_IMAGES,
};
use service::{Comparison, Score};

use super::params;
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::ApiResult;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

/// `compare_min_score`: 0.67..=0.95, default 0.85.
pub(super) fn threshold(f: &Fields<'_>) -> ApiResult<Score> {
    params::score_or(
        f,
        "compare_min_score",
        COMPARE_MIN_SCORE_RANGE,
        DEFAULT_COMPARE_MIN_SCORE,
    )
}

/// `{score, compare_min_score, passed}` of a comparison.
pub(super) fn outcome(c: &Comparison, threshold: Score) -> Value {
    json!({"score": c.score.rounded(), "compare_min_score": threshold.rounded(), "passed": c.passed})
}

/// The best probe/gallery pair (each image's largest face), in the union of the documented
/// answer shapes: `{score, result: {score, compare_min_score, passed}, compare_min_score}`.
pub async fn compare(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let probe = f.req_str_or_array("probe", 1, MAX_IMAGES)?;
    let gallery = f.req_str_or_array("gallery", 1, MAX_GALLERY_IMAGES)?;
    // Required by the docs, not sent by Verifik's own demo client: optional here.
    let mode = params::opt_search_mode(&f)?;
    let threshold = threshold(&f)?;
    let compared = st
        .service
        .compare(&client, &probe, &gallery, threshold)
        .await?;
    let mut data = outcome(&compared, threshold);
    if let Value::Object(fields) = &mut data {
        fields.insert("result".into(), outcome(&compared, threshold));
        fields.insert("type".into(), json!("compare"));
        fields.insert("search_mode".into(), json!(mode.as_str()));
        fields.insert("status".into(), json!("success"));
        fields.insert(
            "comparedAt".into(),
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
    }
    Ok(st.envelope(data))
}
