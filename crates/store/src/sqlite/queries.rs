//! The SQL. Plain functions over a connection: reads run on a pooled reader inside a read
//! transaction, writes run on the writer inside the batch transaction and the job's
//! savepoint. Every query that takes a client filters by it.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::conv::{date_col, date_text, ms, time_col};
use super::writer::Done;
use crate::audit;
use crate::error::{Error, Result};
use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};
use crate::model::{
    embedding_from_bytes, embedding_to_bytes, now_millis, AuditEntry, AuditFilter, ClientErasure,
    ClientSwitch, Collection, CollectionUpdate, DetachOutcome, FaceCrop, FaceRecord, IssuedToken,
    ListedToken, NewCollection, NewFace, NewPerson, Person, PersonFilter, PersonStatus,
    PersonUpdate, Thumbnail, TokenRenewal, MAX_EMBEDDING_DIM,
};
use crate::rules::{self, dedup, name_key, page_bounds, MemberChange};

// ---------------------------------------------------------------- collections (read)

const COLLECTION_COLS: &str =
    "pk, id, code, client, name, description, project, created_at, updated_at";

fn collection_row(r: &Row<'_>) -> rusqlite::Result<(i64, Collection)> {
    Ok((
        r.get(0)?,
        Collection {
            id: r.get(1)?,
            code: r.get(2)?,
            client: r.get(3)?,
            name: r.get(4)?,
            description: r.get(5)?,
            project: r.get(6)?,
            created_at: time_col(r, 7)?,
            updated_at: time_col(r, 8)?,
        },
    ))
}

fn collection_with_pk(
    conn: &Connection,
    client: &ClientId,
    id: &CollectionId,
) -> Result<Option<(i64, Collection)>> {
    let sql = format!("SELECT {COLLECTION_COLS} FROM collections WHERE client = ?1 AND id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![client, id], collection_row)
        .optional()?)
}

pub(crate) fn get_collection(
    conn: &Connection,
    client: &ClientId,
    id: &CollectionId,
) -> Result<Option<Collection>> {
    Ok(collection_with_pk(conn, client, id)?.map(|(_, c)| c))
}

pub(crate) fn collection_by_code(
    conn: &Connection,
    client: &ClientId,
    code: &CollectionCode,
) -> Result<Option<Collection>> {
    let sql = format!("SELECT {COLLECTION_COLS} FROM collections WHERE client = ?1 AND code = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![client, code], collection_row)
        .optional()?
        .map(|(_, c)| c))
}

pub(crate) fn list_collections(conn: &Connection, client: &ClientId) -> Result<Vec<Collection>> {
    let sql = format!("SELECT {COLLECTION_COLS} FROM collections WHERE client = ?1 ORDER BY pk");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![client], collection_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?.1);
    }
    Ok(out)
}

// ---------------------------------------------------------------- persons (read)

const PERSON_COLS: &str = "p.pk, p.id, p.client, p.name, p.gender, p.date_of_birth, \
                           p.nationality, p.notes, p.status, p.created_at, p.updated_at";

fn person_row(r: &Row<'_>) -> rusqlite::Result<(i64, Person)> {
    Ok((
        r.get(0)?,
        Person {
            id: r.get(1)?,
            client: r.get(2)?,
            name: r.get(3)?,
            gender: r.get(4)?,
            date_of_birth: date_col(r, 5)?,
            nationality: r.get(6)?,
            notes: r.get(7)?,
            status: r.get(8)?,
            collections: Vec::new(),
            thumbnails: Vec::new(),
            created_at: time_col(r, 9)?,
            updated_at: time_col(r, 10)?,
        },
    ))
}

fn person_collections(conn: &Connection, person_pk: i64) -> Result<Vec<CollectionId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id FROM memberships m JOIN collections c ON c.pk = m.collection_pk \
         WHERE m.person_pk = ?1 ORDER BY m.rowid",
    )?;
    let rows = stmt.query_map([person_pk], |r| r.get::<_, CollectionId>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn person_thumbnails(conn: &Connection, person_pk: i64) -> Result<Vec<Thumbnail>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.id, t.jpeg FROM faces f JOIN thumbnails t ON t.face_pk = f.pk \
         WHERE f.person_pk = ?1 ORDER BY f.pk",
    )?;
    let rows = stmt.query_map([person_pk], |r| {
        Ok(Thumbnail {
            id: r.get(0)?,
            jpeg: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn complete(conn: &Connection, pk: i64, mut p: Person) -> Result<Person> {
    p.collections = person_collections(conn, pk)?;
    p.thumbnails = person_thumbnails(conn, pk)?;
    Ok(p)
}

fn person_by_pk(conn: &Connection, pk: i64) -> Result<Person> {
    let sql = format!("SELECT {PERSON_COLS} FROM persons p WHERE p.pk = ?1");
    let (_, p) = conn.prepare_cached(&sql)?.query_row([pk], person_row)?;
    complete(conn, pk, p)
}

fn person_pk(conn: &Connection, client: &ClientId, id: &PersonId) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT pk FROM persons WHERE client = ?1 AND id = ?2")?
        .query_row(params![client, id], |r| r.get(0))
        .optional()?)
}

fn collection_pk(conn: &Connection, client: &ClientId, id: &CollectionId) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT pk FROM collections WHERE client = ?1 AND id = ?2")?
        .query_row(params![client, id], |r| r.get(0))
        .optional()?)
}

pub(crate) fn get_person(
    conn: &Connection,
    client: &ClientId,
    id: &PersonId,
) -> Result<Option<Person>> {
    let sql = format!("SELECT {PERSON_COLS} FROM persons p WHERE p.client = ?1 AND p.id = ?2");
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![client, id], person_row)
        .optional()?;
    match row {
        Some((pk, p)) => Ok(Some(complete(conn, pk, p)?)),
        None => Ok(None),
    }
}

fn page_of_persons(
    conn: &Connection,
    filter_sql: &str,
    args: &[&dyn rusqlite::ToSql],
    page: u32,
    limit: u32,
) -> Result<(Vec<Person>, u64)> {
    let count_sql = format!("SELECT count(*) FROM persons p WHERE {filter_sql}");
    let total: i64 = conn
        .prepare_cached(&count_sql)?
        .query_row(args, |r| r.get(0))?;
    let (limit, offset) = page_bounds(page, limit);
    let n = args.len();
    let sql = format!(
        "SELECT {PERSON_COLS} FROM persons p WHERE {filter_sql} ORDER BY p.pk LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    );
    let mut all: Vec<&dyn rusqlite::ToSql> = args.to_vec();
    all.push(&limit);
    all.push(&offset);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(all.as_slice(), person_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (pk, p) in rows {
        out.push(complete(conn, pk, p)?);
    }
    Ok((out, u64::try_from(total).unwrap_or(0)))
}

pub(crate) fn list_persons(
    conn: &Connection,
    client: &ClientId,
    filter: &PersonFilter,
    page: u32,
    limit: u32,
) -> Result<(Vec<Person>, u64)> {
    let collection = match &filter.collection {
        None => None,
        Some(c) => match collection_pk(conn, client, c)? {
            Some(pk) => Some(pk),
            // Not this client's collection: nothing is in it.
            None => return Ok((Vec::new(), 0)),
        },
    };
    let status = filter.status;
    page_of_persons(
        conn,
        "p.client = ?1 AND (?2 IS NULL OR p.status = ?2) AND (?3 IS NULL OR EXISTS \
         (SELECT 1 FROM memberships m WHERE m.person_pk = p.pk AND m.collection_pk = ?3))",
        &[client, &status, &collection],
        page,
        limit,
    )
}

pub(crate) fn lookup_persons(
    conn: &Connection,
    client: &ClientId,
    name_contains: &str,
    date_of_birth: Option<NaiveDate>,
    page: u32,
    limit: u32,
) -> Result<(Vec<Person>, u64)> {
    let needle = name_key(name_contains);
    let dob = date_text(date_of_birth);
    page_of_persons(
        conn,
        "p.client = ?1 AND instr(p.name_key, ?2) > 0 AND (?3 IS NULL OR p.date_of_birth = ?3)",
        &[client, &needle, &dob],
        page,
        limit,
    )
}

// ---------------------------------------------------------------- faces (read)

fn memberships_by_person(conn: &Connection) -> Result<HashMap<i64, Vec<CollectionId>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.person_pk, c.id FROM memberships m JOIN collections c ON c.pk = m.collection_pk \
         ORDER BY m.rowid",
    )?;
    let mut out: HashMap<i64, Vec<CollectionId>> = HashMap::new();
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, CollectionId>(1)?))
    })?;
    for row in rows {
        let (pk, c) = row?;
        out.entry(pk).or_default().push(c);
    }
    Ok(out)
}

fn decode_embedding(blob: &[u8]) -> Result<Vec<f32>> {
    match embedding_from_bytes(blob) {
        Some(e) if (1..=MAX_EMBEDDING_DIM).contains(&e.len()) => Ok(e),
        _ => Err(Error::Corrupt(format!("embedding of {} bytes", blob.len()))),
    }
}

type FaceRow = (
    FaceId,
    PersonId,
    ClientId,
    PersonStatus,
    Vec<u8>,
    i64,
    String,
);

fn face_row(r: &Row<'_>) -> rusqlite::Result<FaceRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

const FACE_SELECT: &str = "SELECT f.id, p.id, p.client, p.status, f.embedding, p.pk, f.model \
                           FROM faces f JOIN persons p ON p.pk = f.person_pk";

/// The faces `filter_sql` selects (after [`FACE_SELECT`]), each with the collections
/// `collections` gives for its person's key.
fn faces(
    conn: &Connection,
    filter_sql: &str,
    params: impl rusqlite::Params,
    collections: impl Fn(i64) -> Vec<CollectionId>,
) -> Result<Vec<FaceRecord>> {
    let mut stmt = conn.prepare_cached(&format!("{FACE_SELECT} {filter_sql}"))?;
    let rows = stmt.query_map(params, face_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (face_id, person_id, client, status, blob, pk, model) = row?;
        out.push(FaceRecord {
            face_id,
            person_id,
            client,
            status,
            model,
            embedding: decode_embedding(&blob)?,
            collections: collections(pk),
        });
    }
    Ok(out)
}

pub(crate) fn faces_for_index(conn: &Connection) -> Result<Vec<FaceRecord>> {
    let members = memberships_by_person(conn)?;
    faces(conn, "ORDER BY f.pk", [], |pk| {
        members.get(&pk).cloned().unwrap_or_default()
    })
}

pub(crate) fn client_model(conn: &Connection, client: &ClientId) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT model FROM client_models WHERE client = ?1")?
        .query_row([client], |r| r.get(0))
        .optional()?)
}

pub(crate) fn clients_off_model(conn: &Connection, model: &str) -> Result<Vec<ClientId>> {
    let mut stmt =
        conn.prepare_cached("SELECT client FROM client_models WHERE model <> ?1 ORDER BY client")?;
    let rows = stmt.query_map([model], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records `model`'s embedding length if it is new; refuses another length than the one
/// recorded (the store checks it here, not by a row trigger: see migration 0008).
fn check_model_length(conn: &Connection, model: &str, dimension: usize) -> Result<()> {
    let wanted = i64::try_from(dimension).unwrap_or(i64::MAX);
    let recorded: Option<i64> = conn
        .prepare_cached("SELECT dimension FROM embedding_models WHERE model = ?1")?
        .query_row(params![model], |r| r.get(0))
        .optional()?;
    match recorded {
        None => {
            conn.prepare_cached("INSERT INTO embedding_models (model, dimension) VALUES (?1, ?2)")?
                .execute(params![model, wanted])?;
            Ok(())
        }
        Some(recorded) if recorded == wanted => Ok(()),
        Some(recorded) => Err(Error::ModelDimension {
            model: model.to_owned(),
            recorded: usize::try_from(recorded).unwrap_or(0),
            wanted: dimension,
        }),
    }
}

/// [`check_model_length`] for faces to store: another length is an invalid face.
fn check_face_length(conn: &Connection, model: &str, dimension: usize) -> Result<()> {
    check_model_length(conn, model, dimension).map_err(|e| match e {
        Error::ModelDimension { .. } => Error::invalid("faces", crate::error::DIMENSION_REFUSED),
        other => other,
    })
}

/// Makes `model` the client's if it has none yet; refuses a face of another model than the
/// client's.
fn claim_client_model(conn: &Connection, client: &ClientId, model: &str) -> Result<()> {
    match client_model(conn, client)? {
        Some(current) if current == model => Ok(()),
        Some(current) => Err(Error::ClientModel {
            client_model: current,
            wanted: model.to_owned(),
        }),
        None => {
            conn.prepare_cached("INSERT INTO client_models (client, model) VALUES (?1, ?2)")?
                .execute(params![client, model])?;
            Ok(())
        }
    }
}

pub(crate) fn crops_to_reembed(
    conn: &Connection,
    client: &ClientId,
    model: &str,
    cursor: i64,
    limit: u32,
) -> Result<Vec<FaceCrop>> {
    let mut stmt = conn.prepare_cached(
        "SELECT f.pk, f.id, c.png FROM persons p \
         JOIN faces f ON f.person_pk = p.pk JOIN crops c ON c.face_pk = f.pk \
         WHERE p.client = ?1 AND f.model <> ?2 AND f.pk > ?3 ORDER BY f.pk LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![client, model, cursor, limit], |r| {
        Ok(FaceCrop {
            cursor: r.get(0)?,
            face_id: r.get(1)?,
            png: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn switch_client_model(
    conn: &Connection,
    client: &ClientId,
    model: &str,
    faces: &[(FaceId, Vec<f32>)],
) -> Result<Done<ClientSwitch>> {
    let given: HashMap<&FaceId, &Vec<f32>> = faces.iter().map(|(id, e)| (id, e)).collect();
    // (face, person, whether it has a crop) of every face of the client another model made.
    let mut stmt = conn.prepare_cached(
        "SELECT f.id, p.id, c.face_pk IS NOT NULL FROM persons p \
         JOIN faces f ON f.person_pk = p.pk LEFT JOIN crops c ON c.face_pk = f.pk \
         WHERE p.client = ?1 AND f.model <> ?2",
    )?;
    let old: Vec<(FaceId, PersonId, bool)> = stmt
        .query_map(params![client, model], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let missing: Vec<&(FaceId, PersonId, bool)> = old
        .iter()
        .filter(|(f, _, _)| !given.contains_key(f))
        .collect();
    if !missing.is_empty() {
        return Ok(Done::kept(ClientSwitch::Missing {
            faces: missing.len() as u64,
            without_crop: missing.iter().filter(|(_, _, crop)| !crop).count() as u64,
        }));
    }
    // Once per distinct length, not per face (a switch carries a whole client's faces).
    let mut lengths: Vec<usize> = faces.iter().map(|(_, e)| e.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for length in lengths {
        check_face_length(conn, model, length)?;
    }
    let mut persons = Vec::new();
    for (face, person, _) in &old {
        // Every face is given: `missing` is empty.
        let Some(embedding) = given.get(face) else {
            continue;
        };
        conn.prepare_cached("UPDATE faces SET embedding = ?1, model = ?2 WHERE id = ?3")?
            .execute(params![embedding_to_bytes(embedding), model, face])?;
        persons.push(person.clone());
    }
    persons.sort();
    persons.dedup();
    conn.prepare_cached(
        "INSERT INTO client_models (client, model) VALUES (?1, ?2) \
         ON CONFLICT (client) DO UPDATE SET model = excluded.model",
    )?
    .execute(params![client, model])?;
    write_audit(conn, now_millis(), client, audit::FACES_REEMBED, model)?;
    let replaced = old.len() as u64;
    Ok(Done::erased(
        ClientSwitch::Switched {
            faces: replaced,
            persons,
        },
        replaced > 0,
    ))
}

pub(crate) fn register_model(conn: &Connection, model: &str, dimension: usize) -> Result<Done<()>> {
    check_model_length(conn, model, dimension)?;
    Ok(Done::kept(()))
}

pub(crate) fn face_embeddings(
    conn: &Connection,
    client: &ClientId,
    model: &str,
    faces: &[FaceId],
) -> Result<Vec<(FaceId, Vec<f32>)>> {
    let mut out = Vec::with_capacity(faces.len());
    // SQLite allows 32,766 parameters; a search asks for a few hundred at most.
    for chunk in faces.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        // CROSS JOIN keeps `faces` as the outer loop (looked up by id): with a long IN list
        // the planner would otherwise walk every person of the client (0.7 s at 10^6).
        let sql = format!(
            "SELECT f.id, f.embedding FROM faces f CROSS JOIN persons p ON p.pk = f.person_pk \
             WHERE p.client = ? AND p.status = 'active' AND f.model = ? AND f.id IN ({marks})"
        );
        let mut stmt = conn.prepare(&sql)?;
        let params = [client.as_str(), model]
            .into_iter()
            .chain(chunk.iter().map(FaceId::as_str));
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
            Ok((r.get::<_, FaceId>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (id, blob) = row?;
            out.push((id, decode_embedding(&blob)?));
        }
    }
    Ok(out)
}

/// Reads the faces table from end to end (each row's embedding is inline in its page).
pub(crate) fn warm_up(conn: &Connection) -> Result<()> {
    conn.query_row("SELECT sum(length(embedding)) FROM faces", [], |r| {
        r.get::<_, Option<i64>>(0)
    })?;
    Ok(())
}

pub(crate) fn generation(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT n FROM generation WHERE id = 1", [], |r| r.get(0))?;
    Ok(n as u64)
}

pub(crate) fn faces_of_person(
    conn: &Connection,
    client: &ClientId,
    id: &PersonId,
) -> Result<Vec<FaceRecord>> {
    let Some(pk) = person_pk(conn, client, id)? else {
        return Ok(Vec::new());
    };
    let collections = person_collections(conn, pk)?;
    faces(conn, "WHERE f.person_pk = ?1 ORDER BY f.pk", [pk], |_| {
        collections.clone()
    })
}

// ---------------------------------------------------------------- tokens, audit (read)

/// The token, or one it was renewed from (its family up to the root, followed through the
/// client's renewals), is revoked; or the client's cutoff is at or after its issue.
pub(crate) fn is_token_revoked(
    conn: &Connection,
    jti: &str,
    client: &ClientId,
    issued_at: DateTime<Utc>,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "WITH RECURSIVE family (jti) AS ( \
                 SELECT ?1 \
                 UNION \
                 SELECT r.parent FROM token_renewals r JOIN family f ON r.jti = f.jti \
                 WHERE r.client = ?2 \
             ) \
             SELECT EXISTS (SELECT 1 FROM revoked_tokens t JOIN family f ON t.jti = f.jti) \
                 OR EXISTS (SELECT 1 FROM client_token_cutoffs WHERE client = ?2 AND cutoff >= ?3)",
        )?
        .query_row(params![jti, client, ms(issued_at)], |r| r.get(0))?)
}

pub(crate) fn audit_log(
    conn: &Connection,
    client: &ClientId,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, client, action, object_id FROM audit WHERE client = ?1 \
         ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![client, i64::from(limit)], audit_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let client: String = r.get(2)?;
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: time_col(r, 1)?,
        client: ClientId::from_stored(&client).ok(),
        action: r.get(3)?,
        object_id: r.get(4)?,
    })
}

pub(crate) fn audit_entries(
    conn: &Connection,
    filter: &AuditFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at, client, action, object_id FROM audit WHERE seq > ?1 \
         AND (?2 IS NULL OR client = ?2) AND (?3 IS NULL OR at >= ?3) \
         AND (?4 IS NULL OR action = ?4) ORDER BY seq LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            after,
            filter.client,
            filter.since.map(ms),
            filter.action,
            i64::from(limit)
        ],
        audit_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn issued_tokens(
    conn: &Connection,
    client: Option<&ClientId>,
) -> Result<Vec<ListedToken>> {
    let tokens: Vec<IssuedToken> = conn
        .prepare_cached(
            "SELECT jti, client, created_at, expires_at, parent FROM issued_tokens \
             WHERE ?1 IS NULL OR client = ?1 ORDER BY created_at, jti",
        )?
        .query_map([client], |r| {
            Ok(IssuedToken {
                jti: r.get(0)?,
                client: r.get(1)?,
                created_at: time_col(r, 2)?,
                expires_at: time_col(r, 3)?,
                parent: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    tokens
        .into_iter()
        .map(|token| {
            let revoked = is_token_revoked(conn, &token.jti, &token.client, token.created_at)?;
            Ok(ListedToken { token, revoked })
        })
        .collect()
}

// ---------------------------------------------------------------- writes

fn write_audit(
    conn: &Connection,
    at: DateTime<Utc>,
    client: impl AsRef<str>,
    action: &str,
    object_id: impl AsRef<str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, client, action, object_id) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![ms(at), client.as_ref(), action, object_id.as_ref()])?;
    Ok(())
}

pub(crate) fn create_collection(
    conn: &Connection,
    client: &ClientId,
    new: &NewCollection,
) -> Result<Done<Collection>> {
    let now = now_millis();
    let c = rules::new_collection(client, new, now);
    conn.prepare_cached(
        "INSERT INTO collections (id, code, client, name, description, project, created_at, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )?
    .execute(params![
        c.id,
        c.code,
        c.client,
        c.name,
        c.description,
        c.project,
        ms(now)
    ])?;
    write_audit(conn, now, client, audit::COLLECTION_CREATE, &c.id)?;
    Ok(Done::kept(c))
}

pub(crate) fn update_collection(
    conn: &Connection,
    client: &ClientId,
    id: &CollectionId,
    update: &CollectionUpdate,
) -> Result<Done<Option<Collection>>> {
    let Some((pk, c)) = collection_with_pk(conn, client, id)? else {
        return Ok(Done::kept(None));
    };
    let now = now_millis();
    let c = rules::merge_collection(c, update, now);
    conn.prepare_cached(
        "UPDATE collections SET name = ?2, description = ?3, project = ?4, updated_at = ?5 \
         WHERE pk = ?1",
    )?
    .execute(params![pk, c.name, c.description, c.project, ms(now)])?;
    write_audit(conn, now, client, audit::COLLECTION_UPDATE, id)?;

    if let Some(people) = &update.people {
        // Wanted members: listed persons that exist for this client (others are ignored).
        let mut wanted: Vec<(i64, PersonId)> = Vec::new();
        for pid in dedup(people) {
            if let Some(ppk) = person_pk(conn, client, &pid)? {
                wanted.push((ppk, pid));
            }
        }
        let current: Vec<(i64, PersonId)> = conn
            .prepare_cached(
                "SELECT m.person_pk, p.id FROM memberships m JOIN persons p ON p.pk = m.person_pk \
                 WHERE m.collection_pk = ?1 ORDER BY m.rowid",
            )?
            .query_map([pk], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (change, (ppk, pid)) in rules::membership_changes(&current, &wanted) {
            let sql = match change {
                MemberChange::Detach => {
                    "DELETE FROM memberships WHERE person_pk = ?1 AND collection_pk = ?2"
                }
                MemberChange::Attach => {
                    "INSERT INTO memberships (person_pk, collection_pk) VALUES (?1, ?2)"
                }
            };
            conn.prepare_cached(sql)?.execute([ppk, pk])?;
            touch_person(conn, ppk, now)?;
            write_audit(conn, now, client, change.audit_action(), pid)?;
        }
    }
    Ok(Done::kept(Some(c)))
}

fn touch_person(conn: &Connection, person_pk: i64, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("UPDATE persons SET updated_at = ?2 WHERE pk = ?1")?
        .execute(params![person_pk, ms(now)])?;
    Ok(())
}

pub(crate) fn delete_collection(
    conn: &Connection,
    client: &ClientId,
    id: &CollectionId,
) -> Result<Done<Option<Collection>>> {
    let Some((pk, c)) = collection_with_pk(conn, client, id)? else {
        return Ok(Done::kept(None));
    };
    // Memberships go with it (ON DELETE CASCADE); persons stay.
    conn.prepare_cached("DELETE FROM collections WHERE pk = ?1")?
        .execute([pk])?;
    write_audit(conn, now_millis(), client, audit::COLLECTION_DELETE, id)?;
    Ok(Done::kept(Some(c)))
}

/// Collection keys for `ids` (deduplicated, order kept); fails on one that is not the
/// client's.
fn collection_pks(conn: &Connection, client: &ClientId, ids: &[CollectionId]) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in dedup(ids) {
        match collection_pk(conn, client, &id)? {
            Some(pk) => out.push(pk),
            None => return Err(Error::UnknownCollection(id.to_string())),
        }
    }
    Ok(out)
}

fn insert_faces(
    conn: &Connection,
    client: &ClientId,
    person_pk: i64,
    faces: &[NewFace],
) -> Result<()> {
    let mut checked: Vec<(&str, usize)> = Vec::new();
    for f in faces {
        let key = (f.model.as_str(), f.embedding.len());
        if !checked.contains(&key) {
            check_face_length(conn, &f.model, f.embedding.len())?;
            claim_client_model(conn, client, &f.model)?;
            checked.push(key);
        }
    }
    for f in faces {
        let face_id = FaceId::new_random();
        conn.prepare_cached(
            "INSERT INTO faces (id, person_pk, embedding, model) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            face_id,
            person_pk,
            embedding_to_bytes(&f.embedding),
            f.model
        ])?;
        let face_pk = conn.last_insert_rowid();
        conn.prepare_cached("INSERT INTO thumbnails (face_pk, jpeg) VALUES (?1, ?2)")?
            .execute(params![face_pk, f.thumbnail_jpeg])?;
        if !f.crop_png.is_empty() {
            conn.prepare_cached("INSERT INTO crops (face_pk, png) VALUES (?1, ?2)")?
                .execute(params![face_pk, f.crop_png])?;
        }
    }
    Ok(())
}

fn insert_memberships(conn: &Connection, person_pk: i64, collection_pks: &[i64]) -> Result<()> {
    for c in collection_pks {
        conn.prepare_cached("INSERT INTO memberships (person_pk, collection_pk) VALUES (?1, ?2)")?
            .execute([person_pk, *c])?;
    }
    Ok(())
}

fn insert_person(
    conn: &Connection,
    client: &ClientId,
    new: &NewPerson,
    collection_pks: &[i64],
    now: DateTime<Utc>,
) -> Result<(i64, PersonId)> {
    let id = PersonId::new();
    let name = new.name.trim();
    conn.prepare_cached(
        "INSERT INTO persons (id, client, name, name_key, gender, date_of_birth, nationality, \
         notes, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
    )?
    .execute(params![
        id,
        client,
        name,
        name_key(name),
        new.gender,
        date_text(new.date_of_birth),
        new.nationality,
        new.notes,
        new.status,
        ms(now)
    ])?;
    let pk = conn.last_insert_rowid();
    insert_faces(conn, client, pk, &new.faces)?;
    insert_memberships(conn, pk, collection_pks)?;
    write_audit(conn, now, client, audit::PERSON_CREATE, &id)?;
    Ok((pk, id))
}

/// Fails with [`Error::PersonAlreadySet`] (the oldest match) when a person of the client
/// other than `except` has the name key and date of birth and is in one of `collections`.
fn refuse_duplicate(
    conn: &Connection,
    client: &ClientId,
    name: &str,
    date_of_birth: Option<NaiveDate>,
    collections: &[i64],
    except: Option<i64>,
) -> Result<()> {
    let (key, dob) = (name_key(name), date_text(date_of_birth));
    for c in collections {
        let existing: Option<i64> = conn
            .prepare_cached(
                "SELECT p.pk FROM persons p JOIN memberships m ON m.person_pk = p.pk \
                 WHERE p.client = ?1 AND p.name_key = ?2 AND p.date_of_birth IS ?3 \
                 AND m.collection_pk = ?4 AND p.pk IS NOT ?5 ORDER BY p.pk LIMIT 1",
            )?
            .query_row(params![client, key, dob, c, except], |r| r.get(0))
            .optional()?;
        if let Some(pk) = existing {
            return Err(Error::PersonAlreadySet(Box::new(person_by_pk(conn, pk)?)));
        }
    }
    Ok(())
}

pub(crate) fn create_person(
    conn: &Connection,
    client: &ClientId,
    new: &NewPerson,
) -> Result<Done<Person>> {
    let pks = collection_pks(conn, client, &new.collections)?;
    refuse_duplicate(conn, client, &new.name, new.date_of_birth, &pks, None)?;
    let (pk, _) = insert_person(conn, client, new, &pks, now_millis())?;
    Ok(Done::kept(person_by_pk(conn, pk)?))
}

pub(crate) fn seed_persons(
    conn: &Connection,
    client: &ClientId,
    persons: &[NewPerson],
) -> Result<Done<Vec<PersonId>>> {
    let now = now_millis();
    // Each collection is looked up once; an unknown one fails the whole seed.
    let distinct = dedup(persons.iter().flat_map(|p| &p.collections));
    let known: HashMap<&CollectionId, i64> = distinct
        .iter()
        .zip(collection_pks(conn, client, &distinct)?)
        .collect();
    let mut ids = Vec::with_capacity(persons.len());
    for p in persons {
        let pks: Vec<i64> = dedup(&p.collections)
            .iter()
            .filter_map(|c| known.get(c).copied())
            .collect();
        ids.push(insert_person(conn, client, p, &pks, now)?.1);
    }
    Ok(Done::kept(ids))
}

pub(crate) fn update_person(
    conn: &Connection,
    client: &ClientId,
    id: &PersonId,
    u: &PersonUpdate,
) -> Result<Done<Option<Person>>> {
    let Some(pk) = person_pk(conn, client, id)? else {
        return Ok(Done::kept(None));
    };
    // Resolved and checked before anything is written.
    let current: Vec<i64> = conn
        .prepare_cached(
            "SELECT collection_pk FROM memberships WHERE person_pk = ?1 ORDER BY rowid",
        )?
        .query_map([pk], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let wanted = match &u.collections {
        Some(c) => Some(collection_pks(conn, client, c)?),
        None => None,
    };
    let now = now_millis();
    let before = person_by_pk(conn, pk)?;
    let p = rules::merge_person(before.clone(), u, now);
    let ends_in = wanted.as_deref().unwrap_or(&current);
    let scope = rules::duplicate_scope((&before, &current), (&p, ends_in));
    refuse_duplicate(conn, client, &p.name, p.date_of_birth, &scope, Some(pk))?;
    conn.prepare_cached(
        "UPDATE persons SET name = ?2, name_key = ?3, gender = ?4, date_of_birth = ?5, \
         nationality = ?6, notes = ?7, status = ?8, updated_at = ?9 WHERE pk = ?1",
    )?
    .execute(params![
        pk,
        p.name,
        name_key(&p.name),
        p.gender,
        date_text(p.date_of_birth),
        p.nationality,
        p.notes,
        p.status,
        ms(now)
    ])?;
    let mut erased = false;
    if let Some(faces) = &u.faces {
        // Thumbnails go with their faces (ON DELETE CASCADE); secure_delete zeroes the bytes.
        let removed = conn
            .prepare_cached("DELETE FROM faces WHERE person_pk = ?1")?
            .execute([pk])?;
        erased = removed > 0;
        insert_faces(conn, client, pk, faces)?;
        write_audit(conn, now, client, audit::PERSON_FACES_REPLACE, id)?;
    }
    if let Some(pks) = &wanted {
        conn.prepare_cached("DELETE FROM memberships WHERE person_pk = ?1")?
            .execute([pk])?;
        insert_memberships(conn, pk, pks)?;
    }
    write_audit(conn, now, client, audit::PERSON_UPDATE, id)?;
    Ok(Done::erased(Some(person_by_pk(conn, pk)?), erased))
}

fn erase_pk(conn: &Connection, client: &ClientId, pk: i64, id: &PersonId) -> Result<()> {
    // Faces, thumbnails and memberships go by ON DELETE CASCADE.
    conn.prepare_cached("DELETE FROM persons WHERE pk = ?1")?
        .execute([pk])?;
    write_audit(conn, now_millis(), client, audit::PERSON_ERASE, id)
}

pub(crate) fn erase_person(
    conn: &Connection,
    client: &ClientId,
    id: &PersonId,
) -> Result<Done<bool>> {
    match person_pk(conn, client, id)? {
        Some(pk) => {
            erase_pk(conn, client, pk, id)?;
            Ok(Done::erased(true, true))
        }
        None => Ok(Done::kept(false)),
    }
}

pub(crate) fn detach_person(
    conn: &Connection,
    client: &ClientId,
    id: &PersonId,
    collection: &CollectionId,
) -> Result<Done<DetachOutcome>> {
    let Some(pk) = person_pk(conn, client, id)? else {
        return Ok(Done::kept(DetachOutcome::PersonNotFound));
    };
    let removed = match collection_pk(conn, client, collection)? {
        Some(cpk) => conn
            .prepare_cached("DELETE FROM memberships WHERE person_pk = ?1 AND collection_pk = ?2")?
            .execute([pk, cpk])?,
        None => 0,
    };
    let now = now_millis();
    let mut remaining = None;
    if removed > 0 {
        write_audit(conn, now, client, audit::PERSON_DETACH, id)?;
        remaining = Some(person_collections(conn, pk)?);
    }
    let outcome = rules::detach_outcome(remaining);
    match outcome {
        DetachOutcome::Erased => erase_pk(conn, client, pk, id)?,
        DetachOutcome::Detached { .. } => touch_person(conn, pk, now)?,
        _ => {}
    }
    let erased = outcome == DetachOutcome::Erased;
    Ok(Done::erased(outcome, erased))
}

/// Drops revocations and renewals past their expiry: the tokens they concern are refused for
/// being expired anyway.
fn prune_tokens(conn: &Connection, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("DELETE FROM revoked_tokens WHERE expires_at < ?1")?
        .execute([ms(now)])?;
    conn.prepare_cached("DELETE FROM token_renewals WHERE expires_at < ?1")?
        .execute([ms(now)])?;
    Ok(())
}

pub(crate) fn revoke_token(
    conn: &Connection,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<Done<()>> {
    let now = now_millis();
    prune_tokens(conn, now)?;
    // Kept while a token renewed from this one may still be used: a renewal row's expiry
    // covers its token's descendants, so its own row and its children's rows say how long.
    conn.prepare_cached(
        "INSERT INTO revoked_tokens (jti, expires_at) \
         SELECT ?1, max(?2, coalesce((SELECT max(expires_at) FROM token_renewals \
                                      WHERE jti = ?1 OR parent = ?1), ?2)) \
         WHERE true \
         ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
    )?
    .execute(params![jti, ms(expires_at)])?;
    write_audit(conn, now, "", audit::TOKEN_REVOKE, jti)?;
    Ok(Done::kept(()))
}

pub(crate) fn record_token_renewal(conn: &Connection, r: &TokenRenewal) -> Result<Done<()>> {
    let now = now_millis();
    prune_tokens(conn, now)?;
    conn.prepare_cached(
        "INSERT INTO token_renewals (jti, parent, client, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![r.jti, r.parent, r.client, ms(r.expires_at)])?;
    // Every ancestor's row lives at least as long as this token, so that the chain from it to
    // a revoked ancestor is never pruned while it can be used.
    conn.prepare_cached(
        "UPDATE token_renewals SET expires_at = ?3 WHERE expires_at < ?3 AND jti IN ( \
             WITH RECURSIVE up (jti) AS ( \
                 SELECT ?1 \
                 UNION \
                 SELECT r.parent FROM token_renewals r JOIN up ON r.jti = up.jti \
                 WHERE r.client = ?2 \
             ) SELECT jti FROM up)",
    )?
    .execute(params![r.parent, r.client, ms(r.expires_at)])?;
    // Whole seconds, as the token's own `iat` (which a client's cutoff is compared with).
    let issued = IssuedToken {
        jti: r.jti.clone(),
        client: r.client.clone(),
        created_at: rules::whole_second(now),
        expires_at: r.expires_at,
        parent: Some(r.parent.clone()),
    };
    insert_issued_token(conn, &issued)?;
    write_audit(conn, now, &r.client, audit::TOKEN_RENEW, &r.jti)?;
    Ok(Done::kept(()))
}

fn insert_issued_token(conn: &Connection, t: &IssuedToken) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO issued_tokens (jti, client, created_at, expires_at, parent) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        t.jti,
        t.client,
        ms(t.created_at),
        ms(t.expires_at),
        t.parent
    ])?;
    Ok(())
}

pub(crate) fn record_token_issue(conn: &Connection, t: &IssuedToken) -> Result<Done<()>> {
    insert_issued_token(conn, t)?;
    write_audit(conn, now_millis(), &t.client, audit::TOKEN_CREATE, &t.jti)?;
    Ok(Done::kept(()))
}

pub(crate) fn erase_client(conn: &Connection, client: &ClientId) -> Result<Done<ClientErasure>> {
    let persons: Vec<(i64, PersonId)> = conn
        .prepare_cached("SELECT pk, id FROM persons WHERE client = ?1 ORDER BY pk")?
        .query_map([client], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (pk, id) in &persons {
        erase_pk(conn, client, *pk, id)?;
    }
    let collections: Vec<CollectionId> = conn
        .prepare_cached("SELECT id FROM collections WHERE client = ?1 ORDER BY pk")?
        .query_map([client], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached("DELETE FROM collections WHERE client = ?1")?
        .execute([client])?;
    conn.prepare_cached("DELETE FROM client_models WHERE client = ?1")?
        .execute([client])?;
    let now = now_millis();
    for id in &collections {
        write_audit(conn, now, client, audit::COLLECTION_DELETE, id)?;
    }
    write_audit(conn, now, client, audit::CLIENT_ERASE, client)?;
    let erased = ClientErasure {
        persons: persons.len() as u64,
        collections: collections.len() as u64,
    };
    Ok(Done::erased(erased, erased.persons > 0))
}

pub(crate) fn revoke_client_tokens(
    conn: &Connection,
    client: &ClientId,
    cutoff: DateTime<Utc>,
) -> Result<Done<()>> {
    let now = now_millis();
    prune_tokens(conn, now)?;
    conn.prepare_cached(
        "INSERT INTO client_token_cutoffs (client, cutoff) VALUES (?1, ?2) \
         ON CONFLICT (client) DO UPDATE SET cutoff = max(cutoff, excluded.cutoff)",
    )?
    .execute(params![client, ms(cutoff)])?;
    write_audit(conn, now, client, audit::TOKEN_REVOKE_CLIENT, client)?;
    Ok(Done::kept(()))
}
