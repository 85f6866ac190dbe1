//! The SQL, as plain async functions over an open transaction. Reads run in a read-only
//! REPEATABLE READ transaction (one snapshot for all the statements of a method); writes run
//! in a READ COMMITTED transaction that locks the rows it decides on:
//! - a person being changed, erased or detached: `FOR UPDATE` (two changes of one person
//!   never interleave, so "detached from its last collection" is decided on current data);
//! - collections and persons a new membership points at: `FOR KEY SHARE` (they cannot be
//!   deleted before the membership commits, yet other writers are not blocked);
//! - a collection being updated or deleted: `FOR UPDATE`;
//! - the duplicate check of `create_person` and `update_person`: an advisory lock on (client,
//!   name), so that two creations (or renames) into the same person cannot both pass it.
//!
//! Every query that takes a client filters by it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::conv::{count, embedding, get, parsed, parsed_opt, pg};
use crate::audit;
use crate::error::{Error, Result};
use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};
use crate::model::{
    now_millis, AuditEntry, AuditFilter, ClientErasure, ClientSwitch, Collection, CollectionUpdate,
    DetachOutcome, FaceCrop, FaceRecord, IssuedToken, ListedToken, NewCollection, NewFace,
    NewPerson, Person, PersonFilter, PersonUpdate, Thumbnail, TokenRenewal,
};
use crate::rules::{self, dedup, name_key, page_bounds, storable, MemberChange};

pub(crate) type Tx<'a> = deadpool_postgres::Transaction<'a>;
type Param<'a> = &'a (dyn ToSql + Sync);

// ---------------------------------------------------------------- statement helpers

async fn rows(tx: &Tx<'_>, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.query(&stmt, params).await.map_err(pg)
}

async fn row_opt(tx: &Tx<'_>, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
    Ok(rows(tx, sql, params).await?.into_iter().next())
}

async fn row_one(tx: &Tx<'_>, sql: &str, params: &[Param<'_>]) -> Result<Row> {
    row_opt(tx, sql, params)
        .await?
        .ok_or_else(|| Error::Corrupt("a query that returns one row returned none".to_owned()))
}

async fn exec(tx: &Tx<'_>, sql: &str, params: &[Param<'_>]) -> Result<u64> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg)?;
    tx.execute(&stmt, params).await.map_err(pg)
}

/// Records each model's length with its first faces and refuses faces whose length differs
/// from their model's, before they are written: the model's HNSW index would otherwise meet
/// them first and refuse them with pgvector's own error. Once per model and write; migration
/// 8's statement trigger checks the rows again (two writers bringing a new model at once).
async fn check_face_lengths<'a>(
    tx: &Tx<'_>,
    faces: impl IntoIterator<Item = (&'a str, usize)>,
) -> Result<()> {
    let mut pairs: Vec<(&str, usize)> = faces.into_iter().collect();
    pairs.sort_unstable();
    pairs.dedup();
    for (model, length) in pairs {
        let wanted = i32::try_from(length).unwrap_or(i32::MAX);
        let row = row_one(
            tx,
            "WITH new AS (INSERT INTO embedding_models (model, dimension) VALUES ($1, $2) \
                          ON CONFLICT (model) DO NOTHING RETURNING dimension) \
             SELECT dimension FROM new UNION ALL \
             SELECT dimension FROM embedding_models WHERE model = $1 LIMIT 1",
            &[&model, &wanted],
        )
        .await?;
        if get::<i32>(&row, 0)? != wanted {
            return Err(Error::invalid("faces", crate::error::DIMENSION_REFUSED));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- collections (read)

const COLLECTION_COLS: &str =
    "pk, id, code, client, name, description, project, created_at, updated_at";

fn collection_row(r: &Row) -> Result<(i64, Collection)> {
    Ok((
        get(r, 0)?,
        Collection {
            id: parsed(r, 1)?,
            code: parsed(r, 2)?,
            client: parsed(r, 3)?,
            name: get(r, 4)?,
            description: get(r, 5)?,
            project: get(r, 6)?,
            created_at: get(r, 7)?,
            updated_at: get(r, 8)?,
        },
    ))
}

/// The collection and its key; `lock` adds a row lock (`FOR UPDATE`) for a write.
async fn collection_with_pk(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &CollectionId,
    lock: bool,
) -> Result<Option<(i64, Collection)>> {
    let sql = if lock {
        // Counter rows are locked client first, then collections (see 0004_face_counters.sql):
        // a writer about to lock a collection takes its client's row first, so that it cannot
        // hold the collection while waiting for the client row held by a writer who waits for
        // the collection.
        lock_face_counters(tx, client).await?;
        format!(
            "SELECT {COLLECTION_COLS} FROM collections WHERE client = $1 AND id = $2 FOR UPDATE"
        )
    } else {
        format!("SELECT {COLLECTION_COLS} FROM collections WHERE client = $1 AND id = $2")
    };
    let r = row_opt(tx, &sql, &[&client.as_str(), &id.as_str()]).await?;
    r.map(|r| collection_row(&r)).transpose()
}

pub(crate) async fn get_collection(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &CollectionId,
) -> Result<Option<Collection>> {
    Ok(collection_with_pk(tx, client, id, false)
        .await?
        .map(|(_, c)| c))
}

pub(crate) async fn collection_by_code(
    tx: &Tx<'_>,
    client: &ClientId,
    code: &CollectionCode,
) -> Result<Option<Collection>> {
    let sql = format!("SELECT {COLLECTION_COLS} FROM collections WHERE client = $1 AND code = $2");
    let r = row_opt(tx, &sql, &[&client.as_str(), &code.as_str()]).await?;
    r.map(|r| collection_row(&r).map(|(_, c)| c)).transpose()
}

pub(crate) async fn list_collections(tx: &Tx<'_>, client: &ClientId) -> Result<Vec<Collection>> {
    let sql = format!("SELECT {COLLECTION_COLS} FROM collections WHERE client = $1 ORDER BY pk");
    rows(tx, &sql, &[&client.as_str()])
        .await?
        .iter()
        .map(|r| collection_row(r).map(|(_, c)| c))
        .collect()
}

// ---------------------------------------------------------------- persons (read)

const PERSON_COLS: &str = "p.pk, p.id, p.client, p.name, p.gender, p.date_of_birth, \
                           p.nationality, p.notes, p.status, p.created_at, p.updated_at";

fn person_row(r: &Row) -> Result<(i64, Person)> {
    Ok((
        get(r, 0)?,
        Person {
            id: parsed(r, 1)?,
            client: parsed(r, 2)?,
            name: get(r, 3)?,
            gender: parsed_opt(r, 4)?,
            date_of_birth: get(r, 5)?,
            nationality: get(r, 6)?,
            notes: get(r, 7)?,
            status: parsed(r, 8)?,
            collections: Vec::new(),
            thumbnails: Vec::new(),
            created_at: get(r, 9)?,
            updated_at: get(r, 10)?,
        },
    ))
}

async fn person_collections(tx: &Tx<'_>, person_pk: i64) -> Result<Vec<CollectionId>> {
    rows(
        tx,
        "SELECT c.id FROM memberships m JOIN collections c ON c.pk = m.collection_pk \
         WHERE m.person_pk = $1 ORDER BY m.seq",
        &[&person_pk],
    )
    .await?
    .iter()
    .map(|r| parsed(r, 0))
    .collect()
}

/// Fills in collections and thumbnails of persons read with [`person_row`] (two queries
/// for the whole page).
async fn complete(tx: &Tx<'_>, persons: Vec<(i64, Person)>) -> Result<Vec<Person>> {
    if persons.is_empty() {
        return Ok(Vec::new());
    }
    let pks: Vec<i64> = persons.iter().map(|(pk, _)| *pk).collect();
    let mut collections: HashMap<i64, Vec<CollectionId>> = HashMap::new();
    for r in rows(
        tx,
        "SELECT m.person_pk, c.id FROM memberships m JOIN collections c ON c.pk = m.collection_pk \
         WHERE m.person_pk = ANY($1) ORDER BY m.seq",
        &[&pks],
    )
    .await?
    {
        collections
            .entry(get(&r, 0)?)
            .or_default()
            .push(parsed(&r, 1)?);
    }
    let mut thumbnails: HashMap<i64, Vec<Thumbnail>> = HashMap::new();
    for r in rows(
        tx,
        "SELECT f.person_pk, f.id, t.jpeg FROM faces f JOIN thumbnails t ON t.face_pk = f.pk \
         WHERE f.person_pk = ANY($1) ORDER BY f.pk",
        &[&pks],
    )
    .await?
    {
        thumbnails.entry(get(&r, 0)?).or_default().push(Thumbnail {
            id: parsed(&r, 1)?,
            jpeg: get(&r, 2)?,
        });
    }
    Ok(persons
        .into_iter()
        .map(|(pk, mut p)| {
            p.collections = collections.remove(&pk).unwrap_or_default();
            p.thumbnails = thumbnails.remove(&pk).unwrap_or_default();
            p
        })
        .collect())
}

async fn person_by_pk(tx: &Tx<'_>, pk: i64) -> Result<Person> {
    let sql = format!("SELECT {PERSON_COLS} FROM persons p WHERE p.pk = $1");
    let r = row_one(tx, &sql, &[&pk]).await?;
    complete(tx, vec![person_row(&r)?])
        .await?
        .pop()
        .ok_or_else(|| Error::Corrupt("person vanished while read".to_owned()))
}

/// The key (`pk`) of the row `sql` selects by client (`$1`) and id (`$2`).
async fn key(tx: &Tx<'_>, sql: &str, client: &ClientId, id: &str) -> Result<Option<i64>> {
    let r = row_opt(tx, sql, &[&client.as_str(), &id]).await?;
    r.map(|r| get(&r, 0)).transpose()
}

/// The person's key, without a lock (reads).
async fn person_pk(tx: &Tx<'_>, client: &ClientId, id: &PersonId) -> Result<Option<i64>> {
    let sql = "SELECT pk FROM persons WHERE client = $1 AND id = $2";
    key(tx, sql, client, id.as_str()).await
}

/// The person's key, locked for a change of that person.
async fn lock_person(tx: &Tx<'_>, client: &ClientId, id: &PersonId) -> Result<Option<i64>> {
    let sql = "SELECT pk FROM persons WHERE client = $1 AND id = $2 FOR UPDATE";
    key(tx, sql, client, id.as_str()).await
}

/// The collection's key, without a lock (reads).
async fn collection_pk(tx: &Tx<'_>, client: &ClientId, id: &CollectionId) -> Result<Option<i64>> {
    let sql = "SELECT pk FROM collections WHERE client = $1 AND id = $2";
    key(tx, sql, client, id.as_str()).await
}

/// The collection's key, kept from being deleted until the transaction ends (a membership
/// is about to point at it).
async fn share_collection(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &CollectionId,
) -> Result<Option<i64>> {
    let sql = "SELECT pk FROM collections WHERE client = $1 AND id = $2 FOR KEY SHARE";
    key(tx, sql, client, id.as_str()).await
}

pub(crate) async fn get_person(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &PersonId,
) -> Result<Option<Person>> {
    let sql = format!("SELECT {PERSON_COLS} FROM persons p WHERE p.client = $1 AND p.id = $2");
    match row_opt(tx, &sql, &[&client.as_str(), &id.as_str()]).await? {
        Some(r) => Ok(complete(tx, vec![person_row(&r)?]).await?.pop()),
        None => Ok(None),
    }
}

pub(crate) async fn get_persons(
    tx: &Tx<'_>,
    client: &ClientId,
    ids: &[PersonId],
) -> Result<Vec<Person>> {
    let ids: Vec<&str> = ids.iter().map(PersonId::as_str).collect();
    let sql = format!("SELECT {PERSON_COLS} FROM persons p WHERE p.client = $1 AND p.id = ANY($2)");
    let found = rows(tx, &sql, &[&client.as_str(), &ids])
        .await?
        .iter()
        .map(person_row)
        .collect::<Result<Vec<_>>>()?;
    complete(tx, found).await
}

/// A page of persons matching `filter_sql` (over `persons p`, with `args` as $1..$n), oldest
/// first, with the total.
async fn page_of_persons(
    tx: &Tx<'_>,
    filter_sql: &str,
    args: &[Param<'_>],
    page: u32,
    limit: u32,
) -> Result<(Vec<Person>, u64)> {
    let count_sql = format!("SELECT count(*) FROM persons p WHERE {filter_sql}");
    let total = count(&row_one(tx, &count_sql, args).await?, 0)?;
    let (limit, offset) = page_bounds(page, limit);
    let n = args.len();
    let sql = format!(
        "SELECT {PERSON_COLS} FROM persons p WHERE {filter_sql} ORDER BY p.pk LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut all: Vec<Param<'_>> = args.to_vec();
    all.push(&limit);
    all.push(&offset);
    let found = rows(tx, &sql, &all)
        .await?
        .iter()
        .map(person_row)
        .collect::<Result<Vec<_>>>()?;
    Ok((complete(tx, found).await?, total))
}

pub(crate) async fn list_persons(
    tx: &Tx<'_>,
    client: &ClientId,
    filter: &PersonFilter,
    page: u32,
    limit: u32,
) -> Result<(Vec<Person>, u64)> {
    let collection = match &filter.collection {
        None => None,
        Some(c) => match collection_pk(tx, client, c).await? {
            Some(pk) => Some(pk),
            // Not this client's collection: nothing is in it.
            None => return Ok((Vec::new(), 0)),
        },
    };
    let status = filter.status.map(|s| s.as_str());
    page_of_persons(
        tx,
        "p.client = $1 AND ($2::text IS NULL OR p.status = $2) AND ($3::bigint IS NULL OR EXISTS \
         (SELECT 1 FROM memberships m WHERE m.person_pk = p.pk AND m.collection_pk = $3))",
        &[&client.as_str(), &status, &collection],
        page,
        limit,
    )
    .await
}

pub(crate) async fn lookup_persons(
    tx: &Tx<'_>,
    client: &ClientId,
    name_contains: &str,
    date_of_birth: Option<NaiveDate>,
    page: u32,
    limit: u32,
) -> Result<(Vec<Person>, u64)> {
    let needle = name_key(name_contains);
    if !storable(&needle) {
        return Ok((Vec::new(), 0));
    }
    page_of_persons(
        tx,
        "p.client = $1 AND strpos(p.name_key, $2) > 0 \
         AND ($3::date IS NULL OR p.date_of_birth = $3)",
        &[&client.as_str(), &needle, &date_of_birth],
        page,
        limit,
    )
    .await
}

// ---------------------------------------------------------------- faces (read)

fn face_record(r: &Row, collections: Vec<CollectionId>) -> Result<FaceRecord> {
    Ok(FaceRecord {
        face_id: parsed(r, 0)?,
        person_id: parsed(r, 1)?,
        client: parsed(r, 2)?,
        status: parsed(r, 3)?,
        model: get(r, 6)?,
        embedding: embedding(r, 4)?,
        collections,
    })
}

const FACE_SELECT: &str =
    "SELECT f.id, p.id, p.client, p.status, f.embedding::real[], p.pk, f.model \
                           FROM faces f JOIN persons p ON p.pk = f.person_pk";

pub(crate) async fn faces_for_index(tx: &Tx<'_>) -> Result<Vec<FaceRecord>> {
    let mut members: HashMap<i64, Vec<CollectionId>> = HashMap::new();
    for r in rows(
        tx,
        "SELECT m.person_pk, c.id FROM memberships m JOIN collections c ON c.pk = m.collection_pk \
         ORDER BY m.seq",
        &[],
    )
    .await?
    {
        members.entry(get(&r, 0)?).or_default().push(parsed(&r, 1)?);
    }
    let sql = format!("{FACE_SELECT} ORDER BY f.pk");
    rows(tx, &sql, &[])
        .await?
        .iter()
        .map(|r| {
            let pk: i64 = get(r, 5)?;
            face_record(r, members.get(&pk).cloned().unwrap_or_default())
        })
        .collect()
}

pub(crate) async fn faces_of_person(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &PersonId,
) -> Result<Vec<FaceRecord>> {
    let Some(pk) = person_pk(tx, client, id).await? else {
        return Ok(Vec::new());
    };
    let collections = person_collections(tx, pk).await?;
    let sql = format!("{FACE_SELECT} WHERE f.person_pk = $1 ORDER BY f.pk");
    rows(tx, &sql, &[&pk])
        .await?
        .iter()
        .map(|r| face_record(r, collections.clone()))
        .collect()
}

pub(crate) async fn register_model(tx: &Tx<'_>, model: &str, dimension: usize) -> Result<()> {
    let wanted = i32::try_from(dimension).unwrap_or(i32::MAX);
    exec(
        tx,
        "INSERT INTO embedding_models (model, dimension) VALUES ($1, $2) \
         ON CONFLICT (model) DO NOTHING",
        &[&model, &wanted],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT dimension FROM embedding_models WHERE model = $1",
            &[&model],
        )
        .await
        .map_err(pg)?;
    let recorded: i32 = get(&row, 0)?;
    if recorded != wanted {
        return Err(Error::ModelDimension {
            model: model.to_owned(),
            recorded: usize::try_from(recorded).unwrap_or(0),
            wanted: dimension,
        });
    }
    exec(tx, "SELECT embedding_model_index($1)", &[&model]).await?;
    Ok(())
}

pub(crate) async fn face_embeddings(
    tx: &Tx<'_>,
    client: &ClientId,
    model: &str,
    faces: &[FaceId],
) -> Result<Vec<(FaceId, Vec<f32>)>> {
    let ids: Vec<&str> = faces.iter().map(FaceId::as_str).collect();
    rows(
        tx,
        "SELECT f.id, f.embedding::real[] FROM faces f JOIN persons p ON p.pk = f.person_pk \
         WHERE p.client = $1 AND p.status = 'active' AND f.model = $2 AND f.id = ANY($3)",
        &[&client.as_str(), &model, &ids],
    )
    .await?
    .iter()
    .map(|r| Ok((parsed(r, 0)?, embedding(r, 1)?)))
    .collect()
}

pub(crate) async fn client_model(tx: &Tx<'_>, client: &ClientId) -> Result<Option<String>> {
    row_opt(
        tx,
        "SELECT model FROM client_models WHERE client = $1",
        &[&client.as_str()],
    )
    .await?
    .map(|r| get(&r, 0))
    .transpose()
}

pub(crate) async fn clients_off_model(tx: &Tx<'_>, model: &str) -> Result<Vec<ClientId>> {
    rows(
        tx,
        "SELECT client FROM client_models WHERE model <> $1 ORDER BY client",
        &[&model],
    )
    .await?
    .iter()
    .map(|r| parsed(r, 0))
    .collect()
}

/// Makes `model` the client's if it has none yet; refuses a face of another model than the
/// client's. The row stays locked (FOR SHARE) until the transaction ends, so a concurrent
/// [`switch_client_model`] either waits for this write (and then finds its faces) or
/// commits first (and then this write is refused).
async fn claim_client_model(tx: &Tx<'_>, client: &ClientId, model: &str) -> Result<()> {
    const CURRENT: &str = "SELECT model FROM client_models WHERE client = $1 FOR SHARE";
    let mut current = row_opt(tx, CURRENT, &[&client.as_str()]).await?;
    if current.is_none() {
        exec(
            tx,
            "INSERT INTO client_models (client, model) VALUES ($1, $2) \
             ON CONFLICT (client) DO NOTHING",
            &[&client.as_str(), &model],
        )
        .await?;
        current = row_opt(tx, CURRENT, &[&client.as_str()]).await?;
    }
    let current: String = match current {
        Some(r) => get(&r, 0)?,
        None => return Err(Error::Unavailable("client model row vanished".into())),
    };
    match current == model {
        true => Ok(()),
        false => Err(Error::ClientModel {
            client_model: current,
            wanted: model.to_owned(),
        }),
    }
}

pub(crate) async fn crops_to_reembed(
    tx: &Tx<'_>,
    client: &ClientId,
    model: &str,
    cursor: i64,
    limit: u32,
) -> Result<Vec<FaceCrop>> {
    rows(
        tx,
        "SELECT f.pk, f.id, c.png FROM persons p \
         JOIN faces f ON f.person_pk = p.pk JOIN crops c ON c.face_pk = f.pk \
         WHERE p.client = $1 AND f.model <> $2 AND f.pk > $3 ORDER BY f.pk LIMIT $4",
        &[&client.as_str(), &model, &cursor, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(FaceCrop {
            cursor: get(r, 0)?,
            face_id: parsed(r, 1)?,
            png: get(r, 2)?,
        })
    })
    .collect()
}

pub(crate) async fn switch_client_model(
    tx: &Tx<'_>,
    client: &ClientId,
    model: &str,
    faces: &[(FaceId, Vec<f32>)],
) -> Result<ClientSwitch> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;

    // The client's row, locked: writers of its faces wait for this transaction, or have
    // committed before it (and their faces are found below).
    exec(
        tx,
        "INSERT INTO client_models (client, model) VALUES ($1, $2) ON CONFLICT (client) DO NOTHING",
        &[&client.as_str(), &model],
    )
    .await?;
    exec(
        tx,
        "SELECT 1 FROM client_models WHERE client = $1 FOR UPDATE",
        &[&client.as_str()],
    )
    .await?;
    let old = rows(
        tx,
        "SELECT f.id, p.id, c.face_pk IS NOT NULL FROM persons p \
         JOIN faces f ON f.person_pk = p.pk LEFT JOIN crops c ON c.face_pk = f.pk \
         WHERE p.client = $1 AND f.model <> $2",
        &[&client.as_str(), &model],
    )
    .await?;
    let given: HashSet<&str> = faces.iter().map(|(id, _)| id.as_str()).collect();
    let (mut missing, mut without_crop) = (0u64, 0u64);
    let mut persons = Vec::new();
    for r in &old {
        let face: &str = get(r, 0)?;
        if !given.contains(face) {
            missing += 1;
            without_crop += u64::from(!get::<bool>(r, 2)?);
        }
        persons.push(parsed::<PersonId>(r, 1)?);
    }
    if missing > 0 {
        return Ok(ClientSwitch::Missing {
            faces: missing,
            without_crop,
        });
    }
    persons.sort();
    persons.dedup();
    check_face_lengths(tx, faces.iter().map(|(_, e)| (model, e.len()))).await?;
    tx.batch_execute("CREATE TEMP TABLE switch_in (id text, embedding real[]) ON COMMIT DROP")
        .await
        .map_err(pg)?;
    let sink = tx
        .copy_in("COPY switch_in FROM STDIN (FORMAT binary)")
        .await
        .map_err(pg)?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(
        sink,
        &[Type::TEXT, Type::FLOAT4_ARRAY]
    ));
    for (id, embedding) in faces {
        writer
            .as_mut()
            .write(&[&id.as_str(), embedding])
            .await
            .map_err(pg)?;
    }
    writer.finish().await.map_err(pg)?;
    let replaced = exec(
        tx,
        "UPDATE faces f SET embedding = s.embedding::vector, model = $3 \
         FROM switch_in s, persons p \
         WHERE f.id = s.id AND p.pk = f.person_pk AND p.client = $1 AND f.model <> $2",
        &[&client.as_str(), &model, &model],
    )
    .await?;
    exec(
        tx,
        "UPDATE client_models SET model = $2 WHERE client = $1",
        &[&client.as_str(), &model],
    )
    .await?;
    write_audit(tx, now_millis(), client, audit::FACES_REEMBED, model).await?;
    Ok(ClientSwitch::Switched {
        faces: replaced,
        persons,
    })
}

/// Every write appends an audit row in its own transaction and audit rows are never
/// deleted, so their count moves on with every committed write.
pub(crate) async fn generation(tx: &Tx<'_>) -> Result<u64> {
    let r = rows(tx, "SELECT count(*) FROM audit", &[]).await?;
    r.first().map_or(Ok(0), |r| count(r, 0))
}

// ---------------------------------------------------------------- tokens, audit (read)

/// The token, or one it was renewed from (its family up to the root, followed through the
/// client's renewals), is revoked; or the client's cutoff is at or after its issue.
pub(crate) async fn is_token_revoked(
    tx: &Tx<'_>,
    jti: Option<&str>,
    client: &ClientId,
    issued_at: DateTime<Utc>,
) -> Result<bool> {
    let r = row_one(
        tx,
        "WITH RECURSIVE family (jti) AS ( \
             SELECT $1::text \
             UNION \
             SELECT r.parent FROM token_renewals r JOIN family f ON r.jti = f.jti \
             WHERE r.client = $2 \
         ) \
         SELECT EXISTS (SELECT 1 FROM revoked_tokens t JOIN family f ON t.jti = f.jti) \
             OR EXISTS (SELECT 1 FROM client_token_cutoffs WHERE client = $2 AND cutoff >= $3)",
        &[&jti, &client.as_str(), &issued_at],
    )
    .await?;
    get(&r, 0)
}

pub(crate) async fn audit_log(
    tx: &Tx<'_>,
    client: &ClientId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    rows(
        tx,
        "SELECT seq, at, client, action, object_id FROM audit WHERE client = $1 \
         ORDER BY seq DESC LIMIT $2",
        &[&client.as_str(), &i64::from(limit)],
    )
    .await?
    .iter()
    .map(audit_row)
    .collect()
}

fn audit_row(r: &Row) -> Result<AuditEntry> {
    let client: &str = get(r, 2)?;
    Ok(AuditEntry {
        seq: get(r, 0)?,
        at: get(r, 1)?,
        client: ClientId::from_stored(client).ok(),
        action: get(r, 3)?,
        object_id: get(r, 4)?,
    })
}

pub(crate) async fn audit_entries(
    tx: &Tx<'_>,
    filter: &AuditFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let client = filter.client.as_ref().map(ClientId::as_str);
    rows(
        tx,
        "SELECT seq, at, client, action, object_id FROM audit WHERE seq > $1 \
         AND ($2::text IS NULL OR client = $2) AND ($3::timestamptz IS NULL OR at >= $3) \
         AND ($4::text IS NULL OR action = $4) ORDER BY seq LIMIT $5",
        &[
            &after,
            &client,
            &filter.since,
            &filter.action,
            &i64::from(limit),
        ],
    )
    .await?
    .iter()
    .map(audit_row)
    .collect()
}

pub(crate) async fn issued_tokens(
    tx: &Tx<'_>,
    client: Option<&ClientId>,
) -> Result<Vec<ListedToken>> {
    let filter = client.map(ClientId::as_str);
    let found = rows(
        tx,
        "SELECT jti, client, created_at, expires_at, parent FROM issued_tokens \
         WHERE $1::text IS NULL OR client = $1 ORDER BY created_at, jti",
        &[&filter],
    )
    .await?;
    let mut listed = Vec::with_capacity(found.len());
    for r in &found {
        let token = IssuedToken {
            jti: get(r, 0)?,
            client: parsed(r, 1)?,
            created_at: get(r, 2)?,
            expires_at: get(r, 3)?,
            parent: get(r, 4)?,
        };
        let revoked = is_token_revoked(
            tx,
            Some(token.jti.as_str()),
            &token.client,
            token.created_at,
        )
        .await?;
        listed.push(ListedToken { token, revoked });
    }
    Ok(listed)
}

// ---------------------------------------------------------------- writes

async fn write_audit(
    tx: &Tx<'_>,
    at: DateTime<Utc>,
    client: impl AsRef<str>,
    action: &str,
    object_id: impl AsRef<str>,
) -> Result<()> {
    exec(
        tx,
        "INSERT INTO audit (at, client, action, object_id) VALUES ($1, $2, $3, $4)",
        &[&at, &client.as_ref(), &action, &object_id.as_ref()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn create_collection(
    tx: &Tx<'_>,
    client: &ClientId,
    new: &NewCollection,
) -> Result<Collection> {
    let now = now_millis();
    let c = rules::new_collection(client, new, now);
    exec(
        tx,
        "INSERT INTO collections (id, code, client, name, description, project, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        &[
            &c.id.as_str(),
            &c.code.as_str(),
            &c.client.as_str(),
            &c.name,
            &c.description,
            &c.project,
            &now,
        ],
    )
    .await?;
    write_audit(tx, now, client, audit::COLLECTION_CREATE, &c.id).await?;
    Ok(c)
}

async fn touch_person(tx: &Tx<'_>, person_pk: i64, now: DateTime<Utc>) -> Result<()> {
    exec(
        tx,
        "UPDATE persons SET updated_at = $2 WHERE pk = $1",
        &[&person_pk, &now],
    )
    .await?;
    Ok(())
}

pub(crate) async fn update_collection(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &CollectionId,
    update: &CollectionUpdate,
) -> Result<Option<Collection>> {
    let Some((pk, c)) = collection_with_pk(tx, client, id, true).await? else {
        return Ok(None);
    };
    let now = now_millis();
    let c = rules::merge_collection(c, update, now);
    exec(
        tx,
        "UPDATE collections SET name = $2, description = $3, project = $4, updated_at = $5 \
         WHERE pk = $1",
        &[&pk, &c.name, &c.description, &c.project, &now],
    )
    .await?;
    write_audit(tx, now, client, audit::COLLECTION_UPDATE, id).await?;

    if let Some(people) = &update.people {
        // Wanted members: listed persons that exist for this client (others are ignored),
        // kept from being erased until this commits.
        let listed = dedup(people);
        let ids: Vec<&str> = listed.iter().map(|p| p.as_str()).collect();
        let mut found: HashMap<String, i64> = HashMap::new();
        for r in rows(
            tx,
            "SELECT pk, id FROM persons WHERE client = $1 AND id = ANY($2) ORDER BY pk \
             FOR KEY SHARE",
            &[&client.as_str(), &ids],
        )
        .await?
        {
            found.insert(get(&r, 1)?, get(&r, 0)?);
        }
        let wanted: Vec<(i64, PersonId)> = listed
            .into_iter()
            .filter_map(|p| found.get(p.as_str()).map(|pk| (*pk, p)))
            .collect();
        let current: Vec<(i64, PersonId)> = rows(
            tx,
            "SELECT m.person_pk, p.id FROM memberships m JOIN persons p ON p.pk = m.person_pk \
             WHERE m.collection_pk = $1 ORDER BY m.seq",
            &[&pk],
        )
        .await?
        .iter()
        .map(|r| Ok((get(r, 0)?, parsed(r, 1)?)))
        .collect::<Result<_>>()?;
        for (change, (ppk, pid)) in rules::membership_changes(&current, &wanted) {
            let sql = match change {
                MemberChange::Detach => {
                    "DELETE FROM memberships WHERE person_pk = $1 AND collection_pk = $2"
                }
                MemberChange::Attach => {
                    "INSERT INTO memberships (person_pk, collection_pk) VALUES ($1, $2)"
                }
            };
            exec(tx, sql, &[&ppk, &pk]).await?;
            touch_person(tx, ppk, now).await?;
            write_audit(tx, now, client, change.audit_action(), pid).await?;
        }
    }
    Ok(Some(c))
}

pub(crate) async fn delete_collection(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &CollectionId,
) -> Result<Option<Collection>> {
    let Some((pk, c)) = collection_with_pk(tx, client, id, true).await? else {
        return Ok(None);
    };
    // Memberships go with it (ON DELETE CASCADE); persons stay.
    exec(tx, "DELETE FROM collections WHERE pk = $1", &[&pk]).await?;
    write_audit(tx, now_millis(), client, audit::COLLECTION_DELETE, id).await?;
    Ok(Some(c))
}

/// Collection keys for `ids` (deduplicated, order kept), kept from deletion until commit;
/// fails on one that is not the client's.
async fn collection_pks(tx: &Tx<'_>, client: &ClientId, ids: &[CollectionId]) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in dedup(ids) {
        match share_collection(tx, client, &id).await? {
            Some(pk) => out.push(pk),
            None => return Err(Error::UnknownCollection(id.to_string())),
        }
    }
    Ok(out)
}

async fn insert_faces(
    tx: &Tx<'_>,
    client: &ClientId,
    person_pk: i64,
    faces: &[NewFace],
) -> Result<()> {
    check_face_lengths(
        tx,
        faces.iter().map(|f| (f.model.as_str(), f.embedding.len())),
    )
    .await?;
    for f in faces {
        let face_id = FaceId::new_random();
        // One round trip per face: the face row, then its thumbnail and crop keyed by it.
        exec(
            tx,
            "WITH f AS (INSERT INTO faces (id, person_pk, embedding, model) \
                        VALUES ($1, $2, $3::real[]::vector, $5) RETURNING pk), \
                  c AS (INSERT INTO crops (face_pk, png) SELECT pk, $6::bytea FROM f \
                        WHERE octet_length($6::bytea) > 0) \
             INSERT INTO thumbnails (face_pk, jpeg) SELECT pk, $4 FROM f",
            &[
                &face_id.as_str(),
                &person_pk,
                &f.embedding,
                &f.thumbnail_jpeg,
                &f.model,
                &f.crop_png,
            ],
        )
        .await?;
    }
    // After the faces: their insert records a new model (which client_models refers to).
    for model in dedup(faces.iter().map(|f| &f.model)) {
        claim_client_model(tx, client, &model).await?;
    }
    Ok(())
}

async fn insert_memberships(tx: &Tx<'_>, person_pk: i64, collection_pks: &[i64]) -> Result<()> {
    for c in collection_pks {
        exec(
            tx,
            "INSERT INTO memberships (person_pk, collection_pk) VALUES ($1, $2)",
            &[&person_pk, c],
        )
        .await?;
    }
    Ok(())
}

async fn insert_person(
    tx: &Tx<'_>,
    client: &ClientId,
    new: &NewPerson,
    collection_pks: &[i64],
    now: DateTime<Utc>,
) -> Result<(i64, PersonId)> {
    let id = PersonId::new();
    let name = new.name.trim();
    let r = row_one(
        tx,
        "INSERT INTO persons (id, client, name, name_key, gender, date_of_birth, nationality, \
         notes, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING pk",
        &[
            &id.as_str(),
            &client.as_str(),
            &name,
            &name_key(name),
            &new.gender.map(|g| g.as_str()),
            &new.date_of_birth,
            &new.nationality,
            &new.notes,
            &new.status.as_str(),
            &now,
        ],
    )
    .await?;
    let pk: i64 = get(&r, 0)?;
    insert_faces(tx, client, pk, &new.faces).await?;
    insert_memberships(tx, pk, collection_pks).await?;
    write_audit(tx, now, client, audit::PERSON_CREATE, &id).await?;
    Ok((pk, id))
}

/// Fails with [`Error::PersonAlreadySet`] (the oldest match) when a person of the client
/// other than `except` has the name key and date of birth and is in one of `collections`.
async fn refuse_duplicate(
    tx: &Tx<'_>,
    client: &ClientId,
    name: &str,
    date_of_birth: Option<NaiveDate>,
    collections: &[i64],
    except: Option<i64>,
) -> Result<()> {
    if collections.is_empty() {
        return Ok(());
    }
    let key = name_key(name);
    // Whoever creates (or renames into) this name for this client first decides; the other
    // then sees it.
    let lock_key = format!("person-name\u{1f}{}\u{1f}{key}", client.as_str());
    exec(
        tx,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&lock_key],
    )
    .await?;
    for c in collections {
        let existing = row_opt(
            tx,
            "SELECT p.pk FROM persons p JOIN memberships m ON m.person_pk = p.pk \
             WHERE p.client = $1 AND p.name_key = $2 \
             AND p.date_of_birth IS NOT DISTINCT FROM $3 \
             AND m.collection_pk = $4 AND p.pk IS DISTINCT FROM $5 ORDER BY p.pk LIMIT 1",
            &[&client.as_str(), &key, &date_of_birth, c, &except],
        )
        .await?;
        if let Some(r) = existing {
            let pk: i64 = get(&r, 0)?;
            return Err(Error::PersonAlreadySet(Box::new(
                person_by_pk(tx, pk).await?,
            )));
        }
    }
    Ok(())
}

pub(crate) async fn create_person(
    tx: &Tx<'_>,
    client: &ClientId,
    new: &NewPerson,
) -> Result<Person> {
    let pks = collection_pks(tx, client, &new.collections).await?;
    refuse_duplicate(tx, client, &new.name, new.date_of_birth, &pks, None).await?;
    let (pk, _) = insert_person(tx, client, new, &pks, now_millis()).await?;
    person_by_pk(tx, pk).await
}

/// Bulk insert: the batch goes to temporary tables in three binary `COPY`s, then into the
/// real tables in one `INSERT ... SELECT` each (a handful of round trips per batch instead
/// of four per person). Faces, memberships and audit rows keep the input order.
pub(crate) async fn seed_persons(
    tx: &Tx<'_>,
    client: &ClientId,
    persons: &[NewPerson],
) -> Result<Vec<PersonId>> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::Type;

    let now = now_millis();
    check_face_lengths(
        tx,
        persons
            .iter()
            .flat_map(|p| &p.faces)
            .map(|f| (f.model.as_str(), f.embedding.len())),
    )
    .await?;
    // Each collection is looked up once; an unknown one fails the whole seed.
    let distinct = dedup(persons.iter().flat_map(|p| &p.collections));
    let known: HashMap<&CollectionId, i64> = distinct
        .iter()
        .zip(collection_pks(tx, client, &distinct).await?)
        .collect();
    tx.batch_execute(
        "CREATE TEMP TABLE seed_persons_in (ord bigint, id text, name text, name_key text, \
           gender text, date_of_birth date, nationality text, notes text, status text) \
           ON COMMIT DROP; \
         CREATE TEMP TABLE seed_faces_in (ord bigint, seq bigint, id text, embedding real[], \
           jpeg bytea, model text, crop bytea) ON COMMIT DROP; \
         CREATE TEMP TABLE seed_members_in (ord bigint, seq bigint, collection_pk bigint) \
           ON COMMIT DROP;",
    )
    .await
    .map_err(pg)?;
    let ids: Vec<PersonId> = persons.iter().map(|_| PersonId::new()).collect();

    let sink = tx
        .copy_in("COPY seed_persons_in FROM STDIN (FORMAT binary)")
        .await
        .map_err(pg)?;
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::DATE,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    for (ord, (p, id)) in persons.iter().zip(&ids).enumerate() {
        let name = p.name.trim();
        writer
            .as_mut()
            .write(&[
                &(ord as i64),
                &id.as_str(),
                &name,
                &name_key(name),
                &p.gender.map(|g| g.as_str()),
                &p.date_of_birth,
                &p.nationality,
                &p.notes,
                &p.status.as_str(),
            ])
            .await
            .map_err(pg)?;
    }
    writer.finish().await.map_err(pg)?;

    let sink = tx
        .copy_in("COPY seed_faces_in FROM STDIN (FORMAT binary)")
        .await
        .map_err(pg)?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::FLOAT4_ARRAY,
        Type::BYTEA,
        Type::TEXT,
        Type::BYTEA,
    ];
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let mut seq = 0i64;
    for (ord, p) in persons.iter().enumerate() {
        for f in &p.faces {
            let face_id = FaceId::new_random();
            writer
                .as_mut()
                .write(&[
                    &(ord as i64),
                    &seq,
                    &face_id.as_str(),
                    &f.embedding,
                    &f.thumbnail_jpeg,
                    &f.model,
                    &f.crop_png,
                ])
                .await
                .map_err(pg)?;
            seq += 1;
        }
    }
    writer.finish().await.map_err(pg)?;

    let sink = tx
        .copy_in("COPY seed_members_in FROM STDIN (FORMAT binary)")
        .await
        .map_err(pg)?;
    let types = [Type::INT8, Type::INT8, Type::INT8];
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &types));
    let mut seq = 0i64;
    for (ord, p) in persons.iter().enumerate() {
        for c in dedup(&p.collections) {
            if let Some(pk) = known.get(&c) {
                writer
                    .as_mut()
                    .write(&[&(ord as i64), &seq, pk])
                    .await
                    .map_err(pg)?;
                seq += 1;
            }
        }
    }
    writer.finish().await.map_err(pg)?;

    // Statistics first: without them the planner guesses the temporary tables' sizes.
    // Faces go in before memberships, as in `create_person` (the counters' triggers count a
    // membership's faces when it is added).
    tx.batch_execute("ANALYZE seed_persons_in, seed_faces_in, seed_members_in;")
        .await
        .map_err(pg)?;
    exec(
        tx,
        "INSERT INTO persons (id, client, name, name_key, gender, date_of_birth, nationality, \
         notes, status, created_at, updated_at) \
         SELECT id, $1, name, name_key, gender, date_of_birth, nationality, notes, status, $2, $2 \
         FROM seed_persons_in ORDER BY ord",
        &[&client.as_str(), &now],
    )
    .await?;
    exec(
        tx,
        "INSERT INTO faces (id, person_pk, embedding, model) \
         SELECT f.id, p.pk, f.embedding::vector, f.model FROM seed_faces_in f \
         JOIN seed_persons_in s ON s.ord = f.ord JOIN persons p ON p.id = s.id ORDER BY f.seq",
        &[],
    )
    .await?;
    // After the faces: their insert records a new model (which client_models refers to).
    for model in dedup(persons.iter().flat_map(|p| &p.faces).map(|f| &f.model)) {
        claim_client_model(tx, client, &model).await?;
    }
    exec(
        tx,
        "INSERT INTO thumbnails (face_pk, jpeg) \
         SELECT x.pk, f.jpeg FROM seed_faces_in f JOIN faces x ON x.id = f.id ORDER BY f.seq",
        &[],
    )
    .await?;
    exec(
        tx,
        "INSERT INTO crops (face_pk, png) \
         SELECT x.pk, f.crop FROM seed_faces_in f JOIN faces x ON x.id = f.id \
         WHERE octet_length(f.crop) > 0 ORDER BY f.seq",
        &[],
    )
    .await?;
    exec(
        tx,
        "INSERT INTO memberships (person_pk, collection_pk) \
         SELECT p.pk, m.collection_pk FROM seed_members_in m \
         JOIN seed_persons_in s ON s.ord = m.ord JOIN persons p ON p.id = s.id ORDER BY m.seq",
        &[],
    )
    .await?;
    exec(
        tx,
        "INSERT INTO audit (at, client, action, object_id) \
         SELECT $1, $2, $3, id FROM seed_persons_in ORDER BY ord",
        &[&now, &client.as_str(), &audit::PERSON_CREATE],
    )
    .await?;
    Ok(ids)
}

pub(crate) async fn update_person(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &PersonId,
    u: &PersonUpdate,
) -> Result<Option<Person>> {
    let Some(pk) = lock_person(tx, client, id).await? else {
        return Ok(None);
    };
    // Resolved and checked first: nothing is written when either fails.
    let current: Vec<i64> = rows(
        tx,
        "SELECT collection_pk FROM memberships WHERE person_pk = $1 ORDER BY seq",
        &[&pk],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect::<Result<_>>()?;
    let collection_pks = match &u.collections {
        Some(c) => Some(collection_pks(tx, client, c).await?),
        None => None,
    };
    let now = now_millis();
    let before = person_by_pk(tx, pk).await?;
    let p = rules::merge_person(before.clone(), u, now);
    let ends_in = collection_pks.as_deref().unwrap_or(&current);
    let scope = rules::duplicate_scope((&before, &current), (&p, ends_in));
    refuse_duplicate(tx, client, &p.name, p.date_of_birth, &scope, Some(pk)).await?;
    exec(
        tx,
        "UPDATE persons SET name = $2, name_key = $3, gender = $4, date_of_birth = $5, \
         nationality = $6, notes = $7, status = $8, updated_at = $9 WHERE pk = $1",
        &[
            &pk,
            &p.name,
            &name_key(&p.name),
            &p.gender.map(|g| g.as_str()),
            &p.date_of_birth,
            &p.nationality,
            &p.notes,
            &p.status.as_str(),
            &now,
        ],
    )
    .await?;
    if let Some(faces) = &u.faces {
        // Thumbnails go with their faces (ON DELETE CASCADE).
        exec(tx, "DELETE FROM faces WHERE person_pk = $1", &[&pk]).await?;
        insert_faces(tx, client, pk, faces).await?;
        write_audit(tx, now, client, audit::PERSON_FACES_REPLACE, id).await?;
    }
    if let Some(pks) = &collection_pks {
        exec(tx, "DELETE FROM memberships WHERE person_pk = $1", &[&pk]).await?;
        insert_memberships(tx, pk, pks).await?;
    }
    write_audit(tx, now, client, audit::PERSON_UPDATE, id).await?;
    Ok(Some(person_by_pk(tx, pk).await?))
}

async fn erase_pk(tx: &Tx<'_>, client: &ClientId, pk: i64, id: &PersonId) -> Result<()> {
    // Faces, thumbnails and memberships go by ON DELETE CASCADE, in this transaction.
    exec(tx, "DELETE FROM persons WHERE pk = $1", &[&pk]).await?;
    write_audit(tx, now_millis(), client, audit::PERSON_ERASE, id).await
}

pub(crate) async fn erase_person(tx: &Tx<'_>, client: &ClientId, id: &PersonId) -> Result<bool> {
    match lock_person(tx, client, id).await? {
        Some(pk) => {
            erase_pk(tx, client, pk, id).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub(crate) async fn detach_person(
    tx: &Tx<'_>,
    client: &ClientId,
    id: &PersonId,
    collection: &CollectionId,
) -> Result<DetachOutcome> {
    let Some(pk) = lock_person(tx, client, id).await? else {
        return Ok(DetachOutcome::PersonNotFound);
    };
    let removed = match collection_pk(tx, client, collection).await? {
        Some(cpk) => {
            let sql = "DELETE FROM memberships WHERE person_pk = $1 AND collection_pk = $2";
            exec(tx, sql, &[&pk, &cpk]).await?
        }
        None => 0,
    };
    let now = now_millis();
    let mut remaining = None;
    if removed > 0 {
        write_audit(tx, now, client, audit::PERSON_DETACH, id).await?;
        remaining = Some(person_collections(tx, pk).await?);
    }
    let outcome = rules::detach_outcome(remaining);
    match outcome {
        DetachOutcome::Erased => erase_pk(tx, client, pk, id).await?,
        DetachOutcome::Detached { .. } => touch_person(tx, pk, now).await?,
        _ => {}
    }
    Ok(outcome)
}

/// Drops revocations and renewals past their expiry: the tokens they concern are refused for
/// being expired anyway.
async fn prune_tokens(tx: &Tx<'_>, now: DateTime<Utc>) -> Result<()> {
    exec(
        tx,
        "DELETE FROM revoked_tokens WHERE expires_at < $1",
        &[&now],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM token_renewals WHERE expires_at < $1",
        &[&now],
    )
    .await?;
    Ok(())
}

pub(crate) async fn revoke_token(tx: &Tx<'_>, jti: &str, expires_at: DateTime<Utc>) -> Result<()> {
    let now = now_millis();
    prune_tokens(tx, now).await?;
    // Kept while a token renewed from this one may still be used: a renewal row's expiry
    // covers its token's descendants, so its own row and its children's rows say how long.
    exec(
        tx,
        "INSERT INTO revoked_tokens (jti, expires_at) \
         SELECT $1, greatest($2, (SELECT max(expires_at) FROM token_renewals \
                                  WHERE jti = $1 OR parent = $1)) \
         ON CONFLICT (jti) DO UPDATE \
         SET expires_at = greatest(revoked_tokens.expires_at, excluded.expires_at)",
        &[&jti, &expires_at],
    )
    .await?;
    write_audit(tx, now, "", audit::TOKEN_REVOKE, jti).await
}

pub(crate) async fn record_token_renewal(tx: &Tx<'_>, r: &TokenRenewal) -> Result<()> {
    let now = now_millis();
    prune_tokens(tx, now).await?;
    let client = r.client.as_str();
    exec(
        tx,
        "INSERT INTO token_renewals (jti, parent, client, expires_at) VALUES ($1, $2, $3, $4)",
        &[&r.jti, &r.parent, &client, &r.expires_at],
    )
    .await?;
    // Every ancestor's row lives at least as long as this token, so that the chain from it to
    // a revoked ancestor is never pruned while it can be used.
    exec(
        tx,
        "WITH RECURSIVE up (jti) AS ( \
             SELECT $1::text \
             UNION \
             SELECT r.parent FROM token_renewals r JOIN up ON r.jti = up.jti \
             WHERE r.client = $2 \
         ) \
         UPDATE token_renewals SET expires_at = $3 \
         WHERE expires_at < $3 AND jti IN (SELECT jti FROM up)",
        &[&r.parent, &client, &r.expires_at],
    )
    .await?;
    // Whole seconds, as the token's own `iat` (which a client's cutoff is compared with).
    let issued = IssuedToken {
        jti: r.jti.clone(),
        client: r.client.clone(),
        created_at: rules::whole_second(now),
        expires_at: r.expires_at,
        parent: Some(r.parent.clone()),
    };
    insert_issued_token(tx, &issued).await?;
    write_audit(tx, now, &r.client, audit::TOKEN_RENEW, &r.jti).await
}

async fn insert_issued_token(tx: &Tx<'_>, t: &IssuedToken) -> Result<()> {
    exec(
        tx,
        "INSERT INTO issued_tokens (jti, client, created_at, expires_at, parent) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &t.jti,
            &t.client.as_str(),
            &t.created_at,
            &t.expires_at,
            &t.parent,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn record_token_issue(tx: &Tx<'_>, t: &IssuedToken) -> Result<()> {
    insert_issued_token(tx, t).await?;
    write_audit(tx, now_millis(), &t.client, audit::TOKEN_CREATE, &t.jti).await
}

pub(crate) async fn erase_client(tx: &Tx<'_>, client: &ClientId) -> Result<ClientErasure> {
    let persons = rows(
        tx,
        "SELECT pk, id FROM persons WHERE client = $1 ORDER BY pk FOR UPDATE",
        &[&client.as_str()],
    )
    .await?;
    for r in &persons {
        let id: PersonId = parsed(r, 1)?;
        erase_pk(tx, client, get(r, 0)?, &id).await?;
    }
    let collections = rows(
        tx,
        "DELETE FROM collections WHERE client = $1 RETURNING id",
        &[&client.as_str()],
    )
    .await?;
    exec(
        tx,
        "DELETE FROM client_models WHERE client = $1",
        &[&client.as_str()],
    )
    .await?;
    let now = now_millis();
    for r in &collections {
        let id: &str = get(r, 0)?;
        write_audit(tx, now, client, audit::COLLECTION_DELETE, id).await?;
    }
    write_audit(tx, now, client, audit::CLIENT_ERASE, client).await?;
    Ok(ClientErasure {
        persons: persons.len() as u64,
        collections: collections.len() as u64,
    })
}

pub(crate) async fn revoke_client_tokens(
    tx: &Tx<'_>,
    client: &ClientId,
    cutoff: DateTime<Utc>,
) -> Result<()> {
    let now = now_millis();
    prune_tokens(tx, now).await?;
    exec(
        tx,
        "INSERT INTO client_token_cutoffs (client, cutoff) VALUES ($1, $2) \
         ON CONFLICT (client) DO UPDATE \
         SET cutoff = greatest(client_token_cutoffs.cutoff, excluded.cutoff)",
        &[&client.as_str(), &cutoff],
    )
    .await?;
    write_audit(tx, now, client, audit::TOKEN_REVOKE_CLIENT, client).await
}

// ---------------------------------------------------------------- 1:N search

/// Faces that search may compare: embedded by the searching model, of active persons of the
/// client, and (when given) in one of the collections. The arguments name the parameters
/// holding the client, the collection ids (text[] or NULL) and the model id.
fn searchable(client: &str, collections: &str, model: &str) -> String {
    format!("f.model = {model} AND {}", in_scope(client, collections))
}

/// Faces of active persons of the client, in one of the collections when given, whatever
/// model embedded them.
fn in_scope(client: &str, collections: &str) -> String {
    format!(
        "p.client = {client} AND p.status = 'active' \
         AND ({collections}::text[] IS NULL OR EXISTS \
         (SELECT 1 FROM memberships m JOIN collections c ON c.pk = m.collection_pk \
          WHERE m.person_pk = p.pk AND c.client = {client} AND c.id = ANY({collections})))"
    )
}

/// Exact: every searchable face is compared ($1 probe as real[], $4 k, $5 model). The per-person
/// aggregate cannot be answered from the HNSW index (which only serves `ORDER BY distance
/// LIMIT`), so this is always a full scan of the client's faces.
pub(crate) fn nearest_exact_sql() -> String {
    let searchable = searchable("$2", "$3", "$5");
    format!(
        "SELECT p.id, (1 - min(f.embedding <=> $1::real[]::vector))::real AS score \
         FROM faces f JOIN persons p ON p.pk = f.person_pk \
         WHERE {searchable} \
         GROUP BY p.pk, p.id ORDER BY score DESC, p.pk LIMIT $4"
    )
}

/// What a model's HNSW index orders by (migration 0006: partial, one per model, over its
/// faces cast to its `dimension`, half-precision from pgvector 0.7 on). The planner uses the
/// index only for the very expression it was built on; scores are always the full-precision
/// distance.
fn index_order(dimension: usize, half: bool) -> String {
    let kind = if half { "halfvec" } else { "vector" };
    format!("f.embedding::{kind}({dimension}) <=> $1::real[]::vector::{kind}({dimension})")
}

/// Approximate: the `$6` faces nearest to the probe by the model's HNSW index (the subquery
/// with its own LIMIT is planned alone, as a plain index scan), then the same filters and
/// per-person grouping as the exact search. pgvector before 0.8 applies filters after its
/// index scan of `ef_search` rows anyway, so filtering outside the subquery loses nothing.
///
/// The query names the model as a literal so that the planner can prove the partial index's
/// predicate. `model` must be a model id (checked by the caller: letters, digits, `.`, `_`,
/// `-`).
pub(crate) fn nearest_approx_sql(dimension: usize, model: &str, half: bool) -> String {
    let searchable = searchable("$2", "$3", "$5");
    let order = index_order(dimension, half);
    format!(
        "SELECT p.id, (1 - min(f.distance))::real AS score FROM ( \
           SELECT f.person_pk, f.model, f.embedding <=> $1::real[]::vector AS distance FROM faces f \
           WHERE f.model = '{model}' ORDER BY {order} LIMIT $6 \
         ) f JOIN persons p ON p.pk = f.person_pk \
         WHERE {searchable} \
         GROUP BY p.pk, p.id ORDER BY score DESC, p.pk LIMIT $4"
    )
}

/// Approximate with filters inside the index scan, for pgvector's iterative index scans
/// (0.8+, `hnsw.iterative_scan` on): the `$6` nearest *searchable* faces by the HNSW index
/// (the scan goes on past `ef_search` until that many pass the filters), then each person's
/// best face. `model` as in [`nearest_approx_sql`].
pub(crate) fn nearest_filtered_approx_sql(dimension: usize, model: &str, half: bool) -> String {
    let searchable = searchable("$2", "$3", "$5");
    let order = index_order(dimension, half);
    format!(
        "SELECT f.id, (1 - min(f.distance))::real AS score FROM ( \
           SELECT p.pk, p.id, f.embedding <=> $1::real[]::vector AS distance \
           FROM faces f JOIN persons p ON p.pk = f.person_pk \
           WHERE f.model = '{model}' AND {searchable} \
           ORDER BY {order} LIMIT $6 \
         ) f \
         GROUP BY f.pk, f.id ORDER BY score DESC, f.pk LIMIT $4"
    )
}

/// Takes the row lock on the client's face counter (creating it at zero), which every write
/// that changes searchable faces takes first.
async fn lock_face_counters(tx: &Tx<'_>, client: &ClientId) -> Result<()> {
    exec(
        tx,
        "INSERT INTO client_faces (client, faces) VALUES ($1, 0) \
         ON CONFLICT (client) DO UPDATE SET faces = client_faces.faces",
        &[&client.as_str()],
    )
    .await?;
    Ok(())
}

/// Faces a search over the client (and collections) compares, `faces_searched`, as one
/// statement ($1 client, $2 collection ids as text[] or NULL, $3 model), so that it needs no
/// transaction of its own (a statement sees one snapshot). The client's and each collection's
/// counts are kept by triggers in the write transactions, so this reads one counter row; only
/// a search over several collections (a person in two counts once) counts.
pub(crate) fn searchable_faces_sql(collections: Option<usize>) -> String {
    let count_faces = |filter: String| {
        format!(
            "(SELECT count(*) FROM faces f JOIN persons p ON p.pk = f.person_pk WHERE {filter})"
        )
    };
    // The counters (migration 0004) count every face, whichever model embedded it; faces of
    // another model than the query's (a client searched by a node that does not run its
    // model) are counted and taken off. A client's faces are all of one model (migration
    // 0007), so usually there are none, and the index `faces_model` finds that at once.
    let others = count_faces(format!(
        "(f.model < $3 OR f.model > $3) AND {}",
        in_scope("$1", "$2")
    ));
    let counter = match collections {
        None => "SELECT faces FROM client_faces WHERE client = $1",
        Some(1) => "SELECT faces FROM collections WHERE client = $1 AND id = ($2::text[])[1]",
        Some(_) => return format!("SELECT {}", count_faces(searchable("$1", "$2", "$3"))),
    };
    format!("SELECT greatest(coalesce(({counter}), 0) - {others}, 0)")
}

/// `sql` prepared on the transaction's connection (cached per connection).
pub(crate) async fn prepare(tx: &Tx<'_>, sql: &str) -> Result<Statement> {
    tx.prepare_cached(sql).await.map_err(pg)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn nearest(
    tx: &Tx<'_>,
    sql: &str,
    probe: &Vec<f32>,
    client: &ClientId,
    collections: &Option<Vec<String>>,
    model: &str,
    k: i64,
    fetch: Option<i64>,
) -> Result<Vec<(PersonId, f32)>> {
    let stmt = prepare(tx, sql).await?;
    nearest_prepared(tx, &stmt, probe, client, collections, model, k, fetch).await
}

/// [`nearest`] with its statement already prepared: its first poll sends the query, so it
/// can be pipelined behind another statement on the same connection.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn nearest_prepared(
    tx: &Tx<'_>,
    stmt: &Statement,
    probe: &Vec<f32>,
    client: &ClientId,
    collections: &Option<Vec<String>>,
    model: &str,
    k: i64,
    fetch: Option<i64>,
) -> Result<Vec<(PersonId, f32)>> {
    let client = client.as_str();
    let with_fetch: [Param<'_>; 6];
    let without: [Param<'_>; 5];
    let params: &[Param<'_>] = match &fetch {
        Some(fetch) => {
            with_fetch = [probe, &client, collections, &k, &model, fetch];
            &with_fetch
        }
        None => {
            without = [probe, &client, collections, &k, &model];
            &without
        }
    };
    let found = tx.query(stmt, params).await.map_err(pg)?;
    found
        .iter()
        .map(|r| Ok((parsed(r, 0)?, get(r, 1)?)))
        .collect()
}
