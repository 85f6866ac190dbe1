//! `/verify`: 1:1, a probe against one enrolled person.

use axum::extract::State;
use serde_json::{json, Value};
use store::PersonId;

use super::params::{self, MAX_PROBE_IMAGES, MIN_SCORE_FLOOR, SEARCH_MODES};
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::faces;
use crate::matching;
use crate::present;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

/// `{"match": item, "score": s}` at or above `min_score`, else `{"match": null, "score": s}`.
pub async fn verify(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let id = f.req_str("id")?;
    // The legacy page named the probe `image`; its own sample sent `images`.
    let images = match f.opt_str("image")? {
        Some(image) if !body.contains_key("images") => vec![image],
        _ => f.req_str_array("images", 1, MAX_PROBE_IMAGES)?,
    };
    let min_score = params::score(&f, "min_score", MIN_SCORE_FLOOR)?;
    f.req_enum("search_mode", &SEARCH_MODES)?;
    let collection = params::collection(&st, &client, &f).await?;
    let id = PersonId::parse(id.trim()).map_err(|_| ApiError::PersonNotFound)?;
    // The person first, so an unknown id costs no face work.
    let person = matching::verifiable_person(&st, &client, &id, collection.as_ref()).await?;
    let probe = faces::probe(&st.pipeline, &st.cpu, &images).await?;
    let score = matching::best_score(&st, &client, &id, &probe).await?;
    let matched = if score >= min_score {
        present::match_item(&person, score)
    } else {
        Value::Null
    };
    Ok(st.envelope(json!({"match": matched, "score": score.rounded()})))
}
