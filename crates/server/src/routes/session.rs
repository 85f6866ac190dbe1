//! `GET /v2/auth/session`: renew a still-valid token (Verifik's token refresh).

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::ClientId;

use crate::auth::{self, token_from_header};
use crate::error::ApiError;
use crate::query::Query;
use crate::AppState;

/// Renewed tokens live `expiresIn` months (default 1, at most 12).
const MAX_MONTHS: u32 = 12;
const MONTH_SECS: i64 = 30 * 86_400;

pub async fn renew(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match renewed_token(&st, &headers, raw.as_deref()).await {
        Ok(token) => {
            axum::Json(json!({"accessToken": token, "tokenType": "bearer"})).into_response()
        }
        Err(RenewError::MissingHeader) => {
            ApiError::Validation("missing Authorization header".into()).into_response()
        }
        Err(RenewError::Invalid) => (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "code": "Unauthorized",
                "message": "Invalid or expired token.",
                "signature": {"message": &*st.message, "dateTime": crate::envelope::date_time()},
            })),
        )
            .into_response(),
        Err(RenewError::Api(e)) => e.into_response(),
    }
}

enum RenewError {
    MissingHeader,
    Invalid,
    Api(ApiError),
}

async fn renewed_token(
    st: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, RenewError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(RenewError::MissingHeader)?;
    let now = chrono::Utc::now().timestamp();
    let claims = auth::verify(&st.secret, token_from_header(header), now)
        .map_err(|_| RenewError::Invalid)?;
    if st
        .store
        .is_token_revoked(&claims.jti)
        .await
        .map_err(|e| RenewError::Api(e.into()))?
    {
        return Err(RenewError::Invalid);
    }
    let months = Query::parse(query)
        .number(&["expiresIn"], 1, MAX_MONTHS)
        .map_err(|_| {
            RenewError::Api(ApiError::Validation(format!(
                "\"expiresIn\" must be between 1 and {MAX_MONTHS}"
            )))
        })?;
    let client = ClientId::parse(&claims.client_id).map_err(|_| RenewError::Invalid)?;
    let (token, _) = auth::issue(&st.secret, &client, now, i64::from(months) * MONTH_SECS);
    Ok(token)
}
