//! 1:N search: `/search`, `/search/crops`, `/search-active-user`, and the two live-face
//! endpoints (`/search-live-face`, `/persons/search-live-face`).

use axum::extract::State;
use serde_json::{json, Value};
use service::params::{
    DEFAULT_MAX_RESULTS, LEGACY_LIVENESS_MIN_SCORE, LEGACY_LIVE_ENROL_MIN_SCORE, MAX_IMAGES,
    MIN_SCORE_FLOOR, SEARCH_MIN_SCORE_FLOOR,
};
use service::{
    ClientId, Found, Gender, LiveEnrolment, PersonDraft, PersonStatus, SearchMode, SearchParams,
};

use super::params;
use super::persons::{clean_name, GENDERS};
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::present;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

const OPERATING_SYSTEMS: [&str; 3] = ["DESKTOP", "IOS", "ANDROID"];

fn matches(found: &Found) -> Value {
    Value::Array(found.matches.iter().map(present::match_item).collect())
}

/// Matches in `data`, and beside it how many faces were compared.
fn answer(st: &AppState, data: Value, found: &Found, mode: SearchMode) -> Envelope {
    st.envelope(data)
        .with("faces_searched", json!(found.faces_searched))
        .with("search_mode", json!(mode.as_str()))
}

pub async fn search(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    search_images(&st, &client, &Fields(&body), false).await
}

/// Tight face crops: an image in which no face is detected is embedded whole.
pub async fn crops(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    search_images(&st, &client, &Fields(&body), true).await
}

/// `/search` (`min_score` from 0.2) and `/search/crops` (from 0.5).
async fn search_images(
    st: &AppState,
    client: &ClientId,
    f: &Fields<'_>,
    crops: bool,
) -> ApiResult<Envelope> {
    let images = f.req_str_array("images", 1, MAX_IMAGES)?;
    let floor = if crops {
        MIN_SCORE_FLOOR
    } else {
        SEARCH_MIN_SCORE_FLOOR
    };
    let params = params::search(f, floor)?;
    let found = if crops {
        st.service.search_crops(client, &images, &params).await?
    } else {
        st.service.search(client, &images, &params).await?
    };
    Ok(answer(st, matches(&found), &found, params.mode))
}

/// One probe, no liveness (as documented), answered as `[{id, score, ...}]`.
pub async fn active_user(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let image = f.req_str("image")?;
    f.req_enum("os", &OPERATING_SYSTEMS)?;
    let params = params::search(&f, MIN_SCORE_FLOOR)?;
    let found = st.service.search(&client, &[image], &params).await?;
    Ok(answer(&st, matches(&found), &found, params.mode))
}

/// Liveness on the probe, then 1:N: `{persons, liveness_score}`. The probe is `image`, or
/// the legacy sample's `images` (1-3 of one person: liveness on the first, the search with
/// all of them averaged).
pub async fn live_face(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let images = match f.opt_str("image")? {
        Some(_) => vec![f.req_str("image")?],
        None if body.contains_key("images") => f.req_str_array("images", 1, MAX_IMAGES)?,
        None => return Err(ApiError::required("image")),
    };
    f.req_enum("os", &OPERATING_SYSTEMS)?;
    let liveness_min = f.req_number("liveness_min_score", MIN_SCORE_FLOOR, 1.0)?;
    let params = params::search(&f, MIN_SCORE_FLOOR)?;
    let (found, live) = st
        .service
        .search_live(&client, &images, liveness_min, &params)
        .await?;
    let data = json!({"persons": matches(&found), "liveness_score": live.rounded()});
    Ok(answer(&st, data, &found, params.mode))
}

/// Enrolment guarded by a 1:N duplicate search in the collection (409 `duplicated_person`),
/// then liveness on the first image (409 `liveness_failed`), then creation in the collection.
/// The current docs require every field; the legacy body (`name`, `images`,
/// `collection_id`, optional `notes`, `os`) is accepted too, with the legacy defaults:
/// `liveness_min_score` 0.65, `min_score` 0.8, `search_mode` FAST.
pub async fn enrol_live_face(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let name = clean_name(f.req_name("name")?)?;
    let images = f.req_str_array("images", 1, MAX_IMAGES)?;
    let gender = f.opt_enum("gender", &GENDERS)?.and_then(Gender::parse);
    let date_of_birth = f.opt_date("date_of_birth")?;
    let nationality = f.opt_str("nationality")?.map(str::to_owned);
    let notes = f.opt_str("notes")?.map(str::to_owned);
    let collection = f.req_str("collection_id")?;
    f.opt_enum("os", &OPERATING_SYSTEMS)?;
    let liveness_min_score = f
        .opt_number("liveness_min_score", MIN_SCORE_FLOOR, 1.0)?
        .unwrap_or(LEGACY_LIVENESS_MIN_SCORE);
    let search = SearchParams {
        min_score: params::score_or(
            &f,
            "min_score",
            (MIN_SCORE_FLOOR, 1.0),
            LEGACY_LIVE_ENROL_MIN_SCORE,
        )?,
        mode: params::opt_search_mode(&f)?,
        collection: Some(collection),
        max_results: params::max_results(&f, DEFAULT_MAX_RESULTS)?,
    };
    let enrolment = LiveEnrolment {
        person: PersonDraft {
            name,
            gender,
            date_of_birth,
            nationality,
            notes,
            status: PersonStatus::Active,
            collections: Vec::new(),
            images,
        },
        search,
        liveness_min_score,
    };
    let (person, live) = st.service.enrol_if_new_and_live(&client, enrolment).await?;
    let mut data = present::person(&person, None);
    if let Value::Object(fields) = &mut data {
        fields.insert("liveness_score".into(), json!(live.rounded()));
    }
    Ok(st.envelope(data))
}
