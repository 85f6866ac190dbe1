//! Parameters shared by the biometric endpoints, validated in Joi's words.

use store::{ClientId, CollectionId};
use vision::Score;

use crate::error::{ApiError, ApiResult};
use crate::validate::Fields;
use crate::AppState;

pub const MAX_PROBE_IMAGES: usize = 3;
pub const SEARCH_MODES: [&str; 2] = ["FAST", "ACCURATE"];

/// The engine behind a validated `search_mode`: ACCURATE compares every face; FAST uses the
/// approximate graph on large galleries.
pub fn search_mode(mode: &str) -> index::Mode {
    if mode == "ACCURATE" {
        index::Mode::Exact
    } else {
        index::Mode::Fast
    }
}
pub const OPERATING_SYSTEMS: [&str; 3] = ["DESKTOP", "IOS", "ANDROID"];
pub const DEFAULT_MAX_RESULTS: u32 = 10;
pub const MAX_RESULTS: u32 = 100;
/// The floor of `min_score` on every endpoint but `/search`, which allows 0.2.
pub const MIN_SCORE_FLOOR: f64 = 0.5;
/// The documented default of search thresholds where `min_score` is optional.
pub const DEFAULT_MIN_SCORE: f64 = 0.81;

/// A score threshold field within `floor..=1`.
pub fn score(f: &Fields<'_>, key: &str, floor: f64) -> ApiResult<Score> {
    let n = f.req_number(key, floor, 1.0)?;
    Score::new(n).ok_or_else(|| ApiError::Validation(format!("\"{key}\" must be a number")))
}

pub fn opt_score(f: &Fields<'_>, key: &str, floor: f64, ceiling: f64) -> ApiResult<Option<Score>> {
    Ok(f.opt_number(key, floor, ceiling)?.and_then(Score::new))
}

/// `max_results`: 1..=100, default 10.
pub fn max_results(f: &Fields<'_>) -> ApiResult<usize> {
    Ok(f.opt_integer("max_results", 1, MAX_RESULTS)?
        .unwrap_or(DEFAULT_MAX_RESULTS) as usize)
}

/// The collection named by `collection_id` (`_id` or `code`), if any: an unknown one (or
/// another client's) is 404 `invalid_collection`.
pub async fn collection(
    st: &AppState,
    client: &ClientId,
    f: &Fields<'_>,
) -> ApiResult<Option<CollectionId>> {
    let Some(reference) = f.opt_str("collection_id")? else {
        return Ok(None);
    };
    let found = st
        .store
        .resolve_collection(client, reference.trim())
        .await?
        .ok_or(ApiError::CollectionNotFound)?;
    Ok(Some(found.id))
}
