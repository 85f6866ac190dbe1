//! Route table. Static segments (`/persons/lookup`) win over captures (`/persons/{id}`).

mod collections;
mod persons;
mod session;

use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    const BASE: &str = "/v2/face-recognition";
    Router::new()
        .route("/health", get(health))
        .route("/v2/auth/session", get(session::renew))
        .route(
            &format!("{BASE}/collections"),
            get(collections::list).post(collections::create),
        )
        .route(
            &format!("{BASE}/collections/{{id}}"),
            get(collections::retrieve)
                .put(collections::update)
                .delete(collections::delete),
        )
        .route(
            &format!("{BASE}/persons"),
            get(persons::list).post(persons::create),
        )
        .route(&format!("{BASE}/persons/lookup"), get(persons::lookup))
        .route(
            &format!("{BASE}/persons/{{id}}"),
            get(persons::retrieve)
                .put(persons::update)
                .delete(persons::delete),
        )
}

/// 200 when the store answers.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<serde_json::Value>, crate::error::ApiError> {
    state.store.is_token_revoked("health-check").await?;
    Ok(axum::Json(serde_json::json!({"status": "ok"})))
}
