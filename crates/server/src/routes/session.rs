//! `GET /v2/auth/session`: renew a still-valid token (Verifik's token refresh).

use axum::extract::{RawQuery, State};
use serde_json::{json, Value};
use service::tokens::MAX_RENEWAL_MONTHS;

use crate::auth::RenewingClient;
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::AppState;

/// `{accessToken, tokenType}`, outside the envelope as Verifik answers it.
pub async fn renew(
    State(st): State<AppState>,
    RenewingClient(session): RenewingClient,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<Value>> {
    let months = Query::parse(raw.as_deref())
        .number(&["expiresIn"], 1, MAX_RENEWAL_MONTHS)
        .map_err(|_| {
            ApiError::Validation(format!(
                "\"expiresIn\" must be between 1 and {MAX_RENEWAL_MONTHS}"
            ))
        })?;
    let token = st.service.renew_token(&session, months).await?;
    Ok(axum::Json(
        json!({"accessToken": token, "tokenType": "bearer"}),
    ))
}
