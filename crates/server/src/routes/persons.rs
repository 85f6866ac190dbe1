//! `/persons`: create (enrolment), list, lookup, retrieve, update, and delete (erasure or
//! detachment from one collection).

use axum::extract::{Path, RawQuery, State};
use serde_json::{json, Value};
use store::{
    ClientId, Collection, CollectionId, DetachOutcome, Gender, NewFace, NewPerson, PersonFilter,
    PersonId, PersonStatus, PersonUpdate,
};

use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::faces::largest_faces;
use crate::present;
use crate::query::Query;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

const MAX_IMAGES: usize = 3;
const MAX_COLLECTIONS: usize = 100;
const GENDERS: [&str; 2] = ["M", "F"];
const STATUSES: [&str; 3] = ["active", "inactive", "pending"];

fn person_id(raw: &str) -> ApiResult<PersonId> {
    PersonId::parse(raw).map_err(|_| ApiError::PersonNotFound)
}

/// Verifik strips digits from names.
pub(super) fn clean_name(raw: &str) -> ApiResult<String> {
    let name: String = raw.chars().filter(|c| !c.is_ascii_digit()).collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(ApiError::Validation(
            "\"name\" is not allowed to be empty".into(),
        ));
    }
    Ok(name)
}

async fn resolve_collections(
    st: &AppState,
    client: &ClientId,
    refs: &[&str],
) -> ApiResult<Vec<CollectionId>> {
    let mut ids = Vec::with_capacity(refs.len());
    for r in refs {
        let c = st
            .store
            .resolve_collection(client, r)
            .await?
            .ok_or(ApiError::CollectionNotFound)?;
        if !ids.contains(&c.id) {
            ids.push(c.id);
        }
    }
    Ok(ids)
}

async fn enrol(st: &AppState, images: &[&str]) -> ApiResult<Vec<NewFace>> {
    let faces = largest_faces(&st.pipeline, &st.cpu, images).await?;
    Ok(faces
        .into_iter()
        .map(|f| NewFace {
            embedding: f.embedding.as_slice().to_vec(),
            thumbnail_jpeg: f.thumbnail_jpeg,
        })
        .collect())
}

/// The person fields of a create or update body, validated; all optional here.
struct PersonFields<'a> {
    name: Option<String>,
    images: Option<Vec<&'a str>>,
    gender: Option<Gender>,
    date_of_birth: Option<chrono::NaiveDate>,
    nationality: Option<String>,
    notes: Option<String>,
    status: Option<PersonStatus>,
    collections: Option<Vec<&'a str>>,
}

impl<'a> PersonFields<'a> {
    fn parse(f: &Fields<'a>) -> ApiResult<Self> {
        Ok(PersonFields {
            name: f.opt_str("name")?.map(clean_name).transpose()?,
            images: f.opt_str_array("images", 1, MAX_IMAGES)?,
            gender: f.opt_enum("gender", &GENDERS)?.and_then(Gender::parse),
            date_of_birth: f.opt_date("date_of_birth")?,
            nationality: f.opt_str("nationality")?.map(str::to_owned),
            notes: f.opt_str("notes")?.map(str::to_owned),
            status: f
                .opt_enum("status", &STATUSES)?
                .and_then(PersonStatus::parse),
            collections: f.opt_str_array("collections", 0, MAX_COLLECTIONS)?,
        })
    }
}

pub async fn create(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    // Required fields first, so their message wins as in Joi.
    f.req_str("name")?;
    f.req_str_array("images", 1, MAX_IMAGES)?;
    let p = PersonFields::parse(&f)?;
    let refs = p.collections.unwrap_or_default();
    let collections = resolve_collections(&st, &client, &refs).await?;
    let faces = enrol(&st, &p.images.unwrap_or_default()).await?;
    let new = NewPerson {
        name: p.name.unwrap_or_default(),
        gender: p.gender,
        date_of_birth: p.date_of_birth,
        nationality: p.nationality,
        notes: p.notes,
        status: p.status.unwrap_or(PersonStatus::Active),
        collections,
        faces,
    };
    let person = st.store.create_person(&client, new).await?;
    st.reindex_persons(&client, std::slice::from_ref(&person.id))
        .await;
    Ok(st.envelope(present::person(&person, None)))
}

fn pagination(page: u32, limit: u32, total: u64) -> Value {
    json!({"page": page, "limit": limit, "total": total, "pages": total.div_ceil(u64::from(limit))})
}

pub async fn list(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    RawQuery(raw): RawQuery,
) -> ApiResult<Envelope> {
    let q = Query::parse(raw.as_deref());
    let page = q.number(&["page"], 1, u32::MAX)?;
    let limit = q.number(&["limit", "perPage"], 10, 100)?;
    let status = match q.value("status") {
        None => None,
        Some(s) => Some(PersonStatus::parse(s).ok_or(ApiError::InvalidQuery)?),
    };
    let collection = match q.value("collection") {
        None => None,
        Some(c) => Some(resolve_collections(&st, &client, &[c]).await?.remove(0)),
    };
    let populate = q.has(&["populates[]", "populates"], "collections");
    let (persons, total) = st
        .store
        .list_persons(&client, PersonFilter { collection, status }, page, limit)
        .await?;
    let all = if populate {
        Some(st.store.list_collections(&client).await?)
    } else {
        None
    };
    let data: Vec<Value> = persons
        .iter()
        .map(|p| present::person(p, all.as_deref()))
        .collect();
    Ok(st
        .envelope(Value::Array(data))
        .with("pagination", pagination(page, limit, total)))
}

pub async fn lookup(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    RawQuery(raw): RawQuery,
) -> ApiResult<Envelope> {
    let q = Query::parse(raw.as_deref());
    let name: String = q
        .value("name")
        .ok_or_else(|| ApiError::Validation("name is required".into()))?
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    let name = name.trim();
    if name.chars().count() < 3 {
        return Err(ApiError::Validation("name_too_short".into()));
    }
    let dob = match q.value("date_of_birth") {
        None => None,
        Some(d) => Some(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ApiError::required("date_of_birth"))?,
        ),
    };
    let page = q.number(&["page"], 1, u32::MAX)?;
    let limit = q.number(&["limit"], 20, 100)?;
    let (persons, total) = st
        .store
        .lookup_persons(&client, name, dob, page, limit)
        .await?;
    let all: Vec<Collection> = st.store.list_collections(&client).await?;
    let data: Vec<Value> = persons
        .iter()
        .map(|p| present::person(p, Some(&all)))
        .collect();
    Ok(st.envelope(Value::Array(data)).with("total", json!(total)))
}

pub async fn retrieve(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
) -> ApiResult<Envelope> {
    let person = st
        .store
        .get_person(&client, &person_id(&id)?)
        .await?
        .ok_or(ApiError::PersonNotFound)?;
    Ok(st.envelope(present::person(&person, None)))
}

pub async fn update(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let id = person_id(&id)?;
    let p = PersonFields::parse(&Fields(&body))?;
    let collections = match p.collections {
        Some(refs) => Some(resolve_collections(&st, &client, &refs).await?),
        None => None,
    };
    // Existence first, so a missing person costs no face work.
    if st.store.get_person(&client, &id).await?.is_none() {
        return Err(ApiError::PersonNotFound);
    }
    let faces = match p.images {
        Some(images) => Some(enrol(&st, &images).await?),
        None => None,
    };
    let update = PersonUpdate {
        name: p.name,
        gender: p.gender,
        date_of_birth: p.date_of_birth,
        nationality: p.nationality,
        notes: p.notes,
        status: p.status,
        faces,
        collections,
    };
    let person = st
        .store
        .update_person(&client, &id, update)
        .await?
        .ok_or(ApiError::PersonNotFound)?;
    st.reindex_persons(&client, std::slice::from_ref(&id)).await;
    Ok(st.envelope(present::person(&person, None)))
}

pub async fn delete(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Envelope> {
    let id = person_id(&id)?;
    let q = Query::parse(raw.as_deref());
    let (deleted, remaining) = match q.value("collection") {
        None => {
            if !st.store.erase_person(&client, &id).await? {
                return Err(ApiError::PersonNotFound);
            }
            st.search.forget_person(&client, &id).await;
            (true, Vec::new())
        }
        Some(reference) => {
            let collection = st
                .store
                .resolve_collection(&client, reference)
                .await?
                .ok_or(ApiError::CollectionNotFound)?;
            match st.store.detach_person(&client, &id, &collection.id).await? {
                DetachOutcome::PersonNotFound | DetachOutcome::NotAMember => {
                    return Err(ApiError::PersonNotFound)
                }
                DetachOutcome::Detached { remaining } => {
                    st.reindex_persons(&client, std::slice::from_ref(&id)).await;
                    (false, remaining)
                }
                DetachOutcome::Erased => {
                    st.search.forget_person(&client, &id).await;
                    (true, Vec::new())
                }
            }
        }
    };
    let collections: Vec<&str> = remaining.iter().map(CollectionId::as_str).collect();
    Ok(st.envelope(json!({"_id": id.as_str(), "deleted": deleted, "collections": collections})))
}
