//! 1:N search: `/search`, `/search/crops`, `/search-active-user`, and the two live-face
//! endpoints (`/search-live-face`, `/persons/search-live-face`).

use axum::extract::State;
use serde_json::{json, Value};
use store::{ClientId, CollectionId, Gender, NewFace, NewPerson, Person, PersonStatus};
use vision::{Embedding, Score};

use super::liveness;
use super::params::{self, MAX_PROBE_IMAGES, MIN_SCORE_FLOOR, OPERATING_SYSTEMS, SEARCH_MODES};
use super::persons::clean_name;
use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::faces;
use crate::matching;
use crate::present;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

/// `/search` alone accepts `min_score` down to 0.2.
const SEARCH_MIN_SCORE_FLOOR: f64 = 0.2;

/// The search fields every 1:N endpoint shares, validated, with the collection resolved.
struct Search<'a> {
    min_score: Score,
    mode: &'a str,
    collection: Option<CollectionId>,
    max_results: usize,
}

impl<'a> Search<'a> {
    /// Validates in Joi's order (`min_score`, `search_mode`, `collection_id`,
    /// `max_results`), then resolves the collection.
    async fn parse(
        st: &AppState,
        client: &ClientId,
        f: &Fields<'a>,
        min_score_floor: f64,
    ) -> ApiResult<Search<'a>> {
        let min_score = params::score(f, "min_score", min_score_floor)?;
        let mode = f.req_enum("search_mode", &SEARCH_MODES)?;
        f.opt_str("collection_id")?;
        let max_results = params::max_results(f)?;
        Ok(Search {
            min_score,
            mode,
            collection: params::collection(st, client, f).await?,
            max_results,
        })
    }

    async fn run(
        &self,
        st: &AppState,
        client: &ClientId,
        probe: &Embedding,
    ) -> ApiResult<matching::Found> {
        let query = matching::SearchQuery {
            probe,
            collection: self.collection.as_ref(),
            mode: params::search_mode(self.mode),
            min_score: self.min_score,
            max_results: self.max_results,
        };
        matching::search(st, client, query).await
    }

    /// Match items in `data`, and beside it how many faces were compared.
    async fn answer(
        &self,
        st: &AppState,
        client: &ClientId,
        probe: &Embedding,
        item: fn(&Person, Score) -> Value,
    ) -> ApiResult<Envelope> {
        let found = self.run(st, client, probe).await?;
        let data: Vec<Value> = found.matches.iter().map(|(p, s)| item(p, *s)).collect();
        Ok(st
            .envelope(Value::Array(data))
            .with("faces_searched", json!(found.faces_searched))
            .with("search_mode", json!(self.mode)))
    }
}

pub async fn search(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let images = f.req_str_array("images", 1, MAX_PROBE_IMAGES)?;
    let s = Search::parse(&st, &client, &f, SEARCH_MIN_SCORE_FLOOR).await?;
    let probe = faces::probe(&st.pipeline, &st.cpu, &images).await?;
    s.answer(&st, &client, &probe, present::match_item).await
}

/// Tight face crops: an image in which no face is detected is embedded whole.
pub async fn crops(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let images = f.req_str_array("images", 1, MAX_PROBE_IMAGES)?;
    let s = Search::parse(&st, &client, &f, MIN_SCORE_FLOOR).await?;
    let probe = faces::crop_probe(&st.pipeline, &st.cpu, &images).await?;
    s.answer(&st, &client, &probe, present::match_item).await
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
    let s = Search::parse(&st, &client, &f, MIN_SCORE_FLOOR).await?;
    let probe = faces::probe(&st.pipeline, &st.cpu, &[image]).await?;
    s.answer(&st, &client, &probe, present::match_item).await
}

/// Liveness on the probe, then 1:N: `{persons, liveness_score}`.
pub async fn live_face(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let image = f.req_str("image")?;
    f.req_enum("os", &OPERATING_SYSTEMS)?;
    let liveness_min = f.req_number("liveness_min_score", MIN_SCORE_FLOOR, 1.0)?;
    let s = Search::parse(&st, &client, &f, MIN_SCORE_FLOOR).await?;
    let (faces, live) = faces::largest_faces_first_live(&st.pipeline, &st.cpu, &[image]).await?;
    if !liveness::passes(live, liveness_min) {
        return Err(ApiError::LivenessFailed);
    }
    let probe = &faces.first().ok_or(ApiError::NoFaceDetected)?.embedding;
    let found = s.run(&st, &client, probe).await?;
    let persons: Vec<Value> = found
        .matches
        .iter()
        .map(|(p, score)| present::match_item(p, *score))
        .collect();
    Ok(st
        .envelope(json!({"persons": persons, "liveness_score": liveness::round4(f64::from(live))}))
        .with("faces_searched", json!(found.faces_searched))
        .with("search_mode", json!(s.mode)))
}

/// Enrolment guarded by a 1:N duplicate search in the collection (409 `duplicated_person`),
/// then liveness on the first image (409 `liveness_failed`), then creation in the collection.
pub async fn enrol_live_face(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let name = clean_name(f.req_str("name")?)?;
    let images = f.req_str_array("images", 1, MAX_PROBE_IMAGES)?;
    let gender = Gender::parse(f.req_enum("gender", &["M", "F"])?);
    let date_of_birth = f
        .opt_date("date_of_birth")?
        .ok_or_else(|| ApiError::required("date_of_birth"))?;
    let nationality = f.opt_str("nationality")?.map(str::to_owned);
    let notes = f.opt_str("notes")?.map(str::to_owned);
    f.req_str("collection_id")?;
    let liveness_min = f.req_number("liveness_min_score", MIN_SCORE_FLOOR, 1.0)?;
    // `collection_id` is required here, so the search below is scoped to that collection.
    let s = Search::parse(&st, &client, &f, MIN_SCORE_FLOOR).await?;
    let collection = s.collection.clone().ok_or(ApiError::CollectionNotFound)?;
    let (faces, live) = faces::largest_faces_first_live(&st.pipeline, &st.cpu, &images).await?;
    let probe =
        Embedding::mean(faces.iter().map(|f| &f.embedding)).ok_or(ApiError::NoFaceDetected)?;
    if !s.run(&st, &client, &probe).await?.matches.is_empty() {
        return Err(ApiError::DuplicatedPerson);
    }
    if !liveness::passes(live, liveness_min) {
        return Err(ApiError::LivenessFailed);
    }
    let new = NewPerson {
        name,
        gender,
        date_of_birth: Some(date_of_birth),
        nationality,
        notes,
        status: PersonStatus::Active,
        collections: vec![collection],
        faces: faces
            .into_iter()
            .map(|f| NewFace {
                embedding: f.embedding.as_slice().to_vec(),
                thumbnail_jpeg: f.thumbnail_jpeg,
            })
            .collect(),
    };
    let person = st.store.create_person(&client, new).await?;
    st.reindex_persons(&client, std::slice::from_ref(&person.id))
        .await;
    let mut data = present::person(&person, None);
    if let Value::Object(fields) = &mut data {
        fields.insert(
            "liveness_score".into(),
            json!(liveness::round4(f64::from(live))),
        );
    }
    Ok(st.envelope(data))
}
