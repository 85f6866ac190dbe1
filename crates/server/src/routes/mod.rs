//! Route table. Static segments (`/persons/lookup`) win over captures (`/persons/{id}`).

mod collections;
mod compare;
mod detect;
mod liveness;
mod params;
mod persons;
mod scrape;
mod search;
mod session;
mod verify;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiResult;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    const BASE: &str = "/v2/face-recognition";
    Router::new()
        .route("/livez", get(live))
        .route("/metrics", get(scrape::scrape))
        .route("/readyz", get(ready))
        .route("/health", get(ready))
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
            &format!("{BASE}/persons/search-live-face"),
            post(search::enrol_live_face),
        )
        .route(
            &format!("{BASE}/persons/{{id}}"),
            get(persons::retrieve)
                .put(persons::update)
                .delete(persons::delete),
        )
        .route(&format!("{BASE}/search"), post(search::search))
        .route(&format!("{BASE}/search/crops"), post(search::crops))
        .route(
            &format!("{BASE}/search-active-user"),
            post(search::active_user),
        )
        .route(&format!("{BASE}/search-live-face"), post(search::live_face))
        .route(&format!("{BASE}/verify"), post(verify::verify))
        .route(&format!("{BASE}/compare"), post(compare::compare))
        .route(&format!("{BASE}/detect"), post(detect::detect))
        .route(&format!("{BASE}/liveness"), post(liveness::liveness))
        .route(&format!("{BASE}/liveness-score"), post(liveness::liveness))
        .route(
            &format!("{BASE}/compare-live"),
            post(liveness::compare_live),
        )
        .route(
            &format!("{BASE}/compare-with-liveness"),
            post(liveness::compare_with_liveness),
        )
}

/// 200 while the process answers at all; touches nothing (for a liveness probe, which must
/// not restart a healthy node during a database outage).
async fn live() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// 200 when the store answers (the models and the index are loaded before the server
/// listens); 503 otherwise. `/health` is the same probe.
async fn ready(State(st): State<AppState>) -> ApiResult<axum::Json<serde_json::Value>> {
    st.service.health().await?;
    Ok(axum::Json(serde_json::json!({"status": "ok"})))
}
