//! `/collections`: create, list, retrieve, update (with membership sync), delete.

use axum::extract::{Path, State};
use serde_json::Value;
use service::{CollectionId, CollectionUpdate, NewCollection, PersonId};

use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::present;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

fn collection_id(raw: &str) -> ApiResult<CollectionId> {
    CollectionId::parse(raw).map_err(|_| ApiError::CollectionNotFound)
}

pub async fn create(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    let new = NewCollection {
        name: f.req_name("name")?.trim().to_owned(),
        description: f.opt_str("description")?.map(str::to_owned),
        project: f.opt_str("project")?.map(str::to_owned),
    };
    let created = st.service.create_collection(&client, new).await?;
    Ok(st.envelope(present::collection(&created)))
}

pub async fn list(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
) -> ApiResult<Envelope> {
    let all = st.service.list_collections(&client).await?;
    let data = all.iter().map(present::collection).collect::<Vec<_>>();
    Ok(st.envelope(Value::Array(data)))
}

pub async fn retrieve(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
) -> ApiResult<Envelope> {
    let found = st.service.collection(&client, &collection_id(&id)?).await?;
    Ok(st.envelope(present::collection(&found)))
}

/// `people` items may be `{_id}` / `{id}` objects or bare id strings.
fn people(value: &Value) -> ApiResult<Vec<PersonId>> {
    let items = value
        .as_array()
        .ok_or_else(|| ApiError::Validation("\"people\" must be an array".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let raw = match item {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o.get("_id").or_else(|| o.get("id")).and_then(Value::as_str),
                _ => None,
            };
            raw.and_then(|r| PersonId::parse(r).ok()).ok_or_else(|| {
                ApiError::Validation(format!("\"people[{i}]\" must carry a valid _id"))
            })
        })
        .collect()
}

pub async fn update(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let id = collection_id(&id)?;
    let f = Fields(&body);
    let update = CollectionUpdate {
        name: Some(f.req_name("name")?.trim().to_owned()),
        description: f.opt_str("description")?.map(str::to_owned),
        project: f.opt_str("project")?.map(str::to_owned),
        people: body
            .get("people")
            .filter(|v| !v.is_null())
            .map(people)
            .transpose()?,
    };
    let updated = st.service.update_collection(&client, &id, update).await?;
    Ok(st.envelope(present::collection(&updated)))
}

pub async fn delete(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
) -> ApiResult<Envelope> {
    let id = collection_id(&id)?;
    let deleted = st.service.delete_collection(&client, &id).await?;
    Ok(st.envelope(present::collection(&deleted)))
}
