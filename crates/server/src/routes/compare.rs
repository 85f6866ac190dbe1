//! `/compare`: 1:1 between two sets of images, no enrolment.

use axum::extract::State;
use serde_json::json;
use vision::{Face, Score};

use super::params::{self, MAX_PROBE_IMAGES, SEARCH_MODES};
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::faces;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

pub const MAX_GALLERY_IMAGES: usize = 10;
const COMPARE_MIN_SCORE_RANGE: (f64, f64) = (0.67, 0.95);
const DEFAULT_COMPARE_MIN_SCORE: f64 = 0.85;

/// `compare_min_score`: 0.67..=0.95, default 0.85.
pub struct CompareThreshold(Score);

impl CompareThreshold {
    pub fn parse(f: &Fields<'_>) -> ApiResult<Self> {
        let (floor, ceiling) = COMPARE_MIN_SCORE_RANGE;
        params::opt_score(f, "compare_min_score", floor, ceiling)?
            .or_else(|| Score::new(DEFAULT_COMPARE_MIN_SCORE))
            .map(CompareThreshold)
            .ok_or_else(|| ApiError::internal("default compare_min_score out of range"))
    }

    pub fn passes(&self, score: Score) -> bool {
        score >= self.0
    }

    pub fn rounded(&self) -> f64 {
        self.0.rounded()
    }
}

/// The score of the best probe/gallery pair.
pub fn best_pair(probe: &[Face], gallery: &[Face]) -> Score {
    let best = probe
        .iter()
        .flat_map(|p| gallery.iter().map(|g| p.embedding.cosine(&g.embedding)))
        .fold(f32::NEG_INFINITY, f32::max);
    Score::from_cosine(best)
}

/// The best probe/gallery pair (each image's largest face), in the union of the documented
/// answer shapes: `{score, result: {score, compare_min_score, passed}, compare_min_score}`.
pub async fn compare(
    State(st): State<AppState>,
    AuthClient(_client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let probe = f.req_str_or_array("probe", 1, MAX_PROBE_IMAGES)?;
    let gallery = f.req_str_or_array("gallery", 1, MAX_GALLERY_IMAGES)?;
    // Required by the docs, not sent by Verifik's own demo client: optional here.
    let mode = f.opt_enum("search_mode", &SEARCH_MODES)?.unwrap_or("FAST");
    let threshold = CompareThreshold::parse(&f)?;
    let images: Vec<&str> = probe.iter().chain(&gallery).copied().collect();
    let faces = faces::largest_faces(&st.pipeline, &st.cpu, &images).await?;
    let (probe_faces, gallery_faces) = faces.split_at(probe.len());
    let score = best_pair(probe_faces, gallery_faces);
    let passed = threshold.passes(score);
    Ok(st.envelope(json!({
        "score": score.rounded(),
        "compare_min_score": threshold.rounded(),
        "passed": passed,
        "result": {
            "score": score.rounded(),
            "compare_min_score": threshold.rounded(),
            "passed": passed,
        },
        "type": "compare",
        "search_mode": mode,
        "status": "success",
        "comparedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })))
}
