//! `/verify`: 1:1, a probe against one enrolled person.

use axum::extract::State;
use serde_json::{json, Value};
use service::params::{MAX_IMAGES, MIN_SCORE_FLOOR};
use service::PersonId;

use super::params;
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
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
        _ => f.req_str_array("images", 1, MAX_IMAGES)?,
    };
    let min_score = params::score(&f, "min_score", MIN_SCORE_FLOOR)?;
    params::search_mode(&f)?;
    let collection = f.opt_str("collection_id")?;
    let id = PersonId::parse(id.trim()).map_err(|_| ApiError::PersonNotFound)?;
    let verified = st
        .service
        .verify(&client, &id, &images, collection, min_score)
        .await?;
    let matched = if verified.matched {
        present::match_item(&service::Match {
            person: verified.person,
            score: verified.score,
        })
    } else {
        Value::Null
    };
    Ok(st.envelope(json!({"match": matched, "score": verified.score.rounded()})))
}
