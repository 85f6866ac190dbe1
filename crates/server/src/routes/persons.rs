//! `/persons`: create (enrolment), list, lookup, retrieve, update, and delete (erasure or
//! detachment from one collection).

use axum::extract::{Path, RawQuery, State};
use serde_json::{json, Value};
use service::params::{MAX_COLLECTIONS, MAX_IMAGES};
use service::{
    CollectionId, Gender, PersonChanges, PersonDraft, PersonId, PersonList, PersonQuery,
    PersonStatus,
};

use crate::auth::AuthClient;
use crate::envelope::Envelope;
use crate::error::{ApiError, ApiResult};
use crate::present;
use crate::query::Query;
use crate::validate::{Fields, JsonObject};
use crate::AppState;

pub(super) const GENDERS: [&str; 2] = ["M", "F"];
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

/// The person fields of a create or update body, validated; all optional here.
fn changes<'a>(f: &Fields<'a>) -> ApiResult<PersonChanges<'a>> {
    Ok(PersonChanges {
        name: f.opt_name("name")?.map(clean_name).transpose()?,
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

pub async fn create(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let f = Fields(&body);
    // Required fields first, so their message wins as in Joi.
    f.req_name("name")?;
    f.req_str_array("images", 1, MAX_IMAGES)?;
    let p = changes(&f)?;
    let draft = PersonDraft {
        name: p.name.unwrap_or_default(),
        gender: p.gender,
        date_of_birth: p.date_of_birth,
        nationality: p.nationality,
        notes: p.notes,
        status: p.status.unwrap_or(PersonStatus::Active),
        collections: p.collections.unwrap_or_default(),
        images: p.images.unwrap_or_default(),
    };
    let person = st.service.enrol(&client, draft).await?;
    Ok(st.envelope(present::person(&person, None)))
}

/// `data`: the persons, with their collections whole when `collections` came along, and
/// their client as an object (`populates[]=client`) when `client_object`.
fn persons_page(list: &PersonList, client_object: bool) -> Value {
    let populated = list.collections.as_deref();
    Value::Array(
        list.persons
            .iter()
            .map(|p| {
                let mut person = present::person(p, populated);
                if let (true, Value::Object(fields)) = (client_object, &mut person) {
                    fields.insert("client".into(), present::client(&p.client));
                }
                person
            })
            .collect(),
    )
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
    let query = PersonQuery {
        collection: q.value("collection"),
        status,
        page,
        limit,
        with_collections: q.has(&["populates[]", "populates"], "collections"),
    };
    let client_object = q.has(&["populates[]", "populates"], "client");
    let list = st.service.list_persons(&client, query).await?;
    let pages = list.total.div_ceil(u64::from(limit));
    Ok(st.envelope(persons_page(&list, client_object)).with(
        "pagination",
        json!({"page": page, "limit": limit, "total": list.total, "pages": pages}),
    ))
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
    let list = st
        .service
        .lookup_persons(&client, name, dob, page, limit)
        .await?;
    Ok(st
        .envelope(persons_page(&list, false))
        .with("total", json!(list.total)))
}

pub async fn retrieve(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
) -> ApiResult<Envelope> {
    let person = st.service.person(&client, &person_id(&id)?).await?;
    Ok(st.envelope(present::person(&person, None)))
}

pub async fn update(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Envelope> {
    let id = person_id(&id)?;
    let changes = changes(&Fields(&body))?;
    let person = st.service.update_person(&client, &id, changes).await?;
    Ok(st.envelope(present::person(&person, None)))
}

pub async fn delete(
    State(st): State<AppState>,
    AuthClient(client): AuthClient,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Envelope> {
    let id = person_id(&id)?;
    let (deleted, remaining) = match Query::parse(raw.as_deref()).value("collection") {
        None => {
            st.service.erase_person(&client, &id).await?;
            (true, Vec::new())
        }
        Some(collection) => {
            let detached = st.service.detach_person(&client, &id, collection).await?;
            (detached.erased, detached.remaining)
        }
    };
    let collections: Vec<&str> = remaining.iter().map(CollectionId::as_str).collect();
    Ok(st.envelope(json!({"_id": id.as_str(), "deleted": deleted, "collections": collections})))
}
