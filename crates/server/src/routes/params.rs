//! Parameters shared by the biometric endpoints, validated in Joi's words. The numbers are
//! the service's (`service::params`).

use service::params::{DEFAULT_MAX_RESULTS, MAX_RESULTS};
use service::{Score, SearchMode, SearchParams};

use crate::error::{ApiError, ApiResult};
use crate::validate::Fields;

/// A score threshold field within `floor..=1`.
pub fn score(f: &Fields<'_>, key: &str, floor: f64) -> ApiResult<Score> {
    let n = f.req_number(key, floor, 1.0)?;
    Score::new(n).ok_or_else(|| ApiError::Validation(format!("\"{key}\" must be a number")))
}

/// An optional score threshold within `range`, else `default`.
pub fn score_or(
    f: &Fields<'_>,
    key: &str,
    (floor, ceiling): (f64, f64),
    default: f64,
) -> ApiResult<Score> {
    f.opt_number(key, floor, ceiling)?
        .or(Some(default))
        .and_then(Score::new)
        .ok_or_else(|| ApiError::internal(format!("default {key} out of range")))
}

pub fn search_mode(f: &Fields<'_>) -> ApiResult<SearchMode> {
    let name = f.req_enum("search_mode", &SearchMode::NAMES)?;
    SearchMode::parse(name).ok_or_else(|| ApiError::required("search_mode"))
}

/// Where the docs require `search_mode` and Verifik's own clients omit it.
pub fn opt_search_mode(f: &Fields<'_>) -> ApiResult<SearchMode> {
    Ok(f.opt_enum("search_mode", &SearchMode::NAMES)?
        .and_then(SearchMode::parse)
        .unwrap_or(SearchMode::DEFAULT))
}

/// `max_results`: 1..=100, `default` when absent.
pub fn max_results(f: &Fields<'_>, default: u32) -> ApiResult<usize> {
    Ok(f.opt_integer("max_results", 1, MAX_RESULTS)?
        .unwrap_or(default) as usize)
}

/// The search fields every 1:N endpoint shares, in Joi's order (`min_score`,
/// `search_mode`, `collection_id`, `max_results`).
pub fn search<'a>(f: &Fields<'a>, min_score_floor: f64) -> ApiResult<SearchParams<'a>> {
    Ok(SearchParams {
        min_score: score(f, "min_score", min_score_floor)?,
        mode: search_mode(f)?,
        collection: f.opt_str("collection_id")?,
        max_results: max_results(f, DEFAULT_MAX_RESULTS)?,
    })
}
