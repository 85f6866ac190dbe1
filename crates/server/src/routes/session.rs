//! `GET /v2/auth/session`: renew a still-valid token (Verifik's token refresh).

use axum::extract::{RawQuery, State};
use serde_json::{json, Value};

use crate::auth::RenewingClient;
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::AppState;

/// `expiresIn`, in months: 1 when absent, a whole number from 1 up (the service caps it at
/// its maximum rather than refusing a client that asks for more).
fn months(q: &Query) -> ApiResult<u32> {
    let Some(raw) = q.value("expiresIn") else {
        return Ok(1);
    };
    match raw.trim().parse::<u64>() {
        Ok(0) => Err(ApiError::Validation(
            "\"expiresIn\" must be greater than or equal to 1".into(),
        )),
        Ok(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
        Err(_) => Err(ApiError::Validation(
            "\"expiresIn\" must be a number".into(),
        )),
    }
}

/// `{accessToken, tokenType}`, outside the envelope as Verifik answers it, and `expiresIn`:
/// the months granted.
pub async fn renew(
    State(st): State<AppState>,
    RenewingClient(session): RenewingClient,
    RawQuery(raw): RawQuery,
) -> ApiResult<axum::Json<Value>> {
    let months = months(&Query::parse(raw.as_deref()))?;
    let (token, granted) = st.service.renew_token(&session, months).await?;
    Ok(axum::Json(
        json!({"accessToken": token, "tokenType": "bearer", "expiresIn": granted}),
    ))
}
