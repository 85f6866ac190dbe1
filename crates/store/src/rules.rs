//! The business rules every back-end keeps, as pure functions over domain values: what input
//! is accepted, how partial updates merge, how a collection's membership is reconciled, what
//! detaching a person comes to, and paging. The back-ends hold only their SQL.

use std::collections::HashSet;
use std::hash::Hash;

use chrono::{DateTime, Utc};

use crate::audit;
use crate::error::Error;
use crate::ids::{ClientId, CollectionCode, CollectionId};
use crate::model::{
    Collection, CollectionUpdate, DetachOutcome, IssuedToken, NewCollection, NewFace, NewPerson,
    Person, PersonUpdate, TokenRenewal, MAX_CROP_BYTES, MAX_EMBEDDING_DIM, MAX_FACES_PER_PERSON,
    MAX_JTI_LEN, MAX_MODEL_LEN, MAX_NAME_CHARS, MAX_TEXT_CHARS, MAX_THUMBNAIL_BYTES,
};

// ---------------------------------------------------------------- validation

fn check_name(field: &'static str, name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(field, "too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Whether a value can be stored at all: PostgreSQL text cannot hold NUL, so every back-end
/// refuses it alike, and a lookup by such a value finds nothing.
pub(crate) fn storable(text: &str) -> bool {
    !text.contains('\0')
}

fn check_text(field: &'static str, text: Option<&str>) -> Result<(), Error> {
    if let Some(t) = text {
        if t.chars().count() > MAX_TEXT_CHARS {
            return Err(Error::invalid(field, "too long"));
        }
        if !storable(t) {
            return Err(Error::invalid(field, "contains a NUL character"));
        }
    }
    Ok(())
}

/// A revoked token's id: 1-256 bytes, no NUL.
pub(crate) fn check_jti(jti: &str) -> Result<(), Error> {
    if jti.is_empty() || jti.len() > MAX_JTI_LEN || !storable(jti) {
        return Err(Error::invalid("jti", "must be 1-256 bytes without NUL"));
    }
    Ok(())
}

/// A renewal to record: both ids are token ids, the expiry is the new token's.
pub(crate) fn check_renewal(r: &TokenRenewal) -> Result<(), Error> {
    check_jti(&r.jti)?;
    check_jti(&r.parent)?;
    if r.jti == r.parent {
        return Err(Error::invalid(
            "jti",
            "a token cannot be renewed from itself",
        ));
    }
    Ok(())
}

/// A token to record: a token id, and an expiry after its creation.
pub(crate) fn check_issued_token(t: &IssuedToken) -> Result<(), Error> {
    check_jti(&t.jti)?;
    if t.parent.as_deref().is_some_and(|p| check_jti(p).is_err()) {
        return Err(Error::invalid("parent", "must be 1-256 bytes without NUL"));
    }
    if t.expires_at <= t.created_at {
        return Err(Error::invalid("expires_at", "must be after created_at"));
    }
    Ok(())
}

/// The checks of `Store::switch_client_model`.
pub(crate) fn check_replaced_embeddings(
    model: &str,
    faces: &[(crate::ids::FaceId, Vec<f32>)],
) -> Result<(), Error> {
    if !is_model_id(model) {
        return Err(Error::invalid(
            "model",
            "must be 1-64 of a-z, 0-9, '.', '_', '-'",
        ));
    }
    for (_, e) in faces {
        if e.is_empty() || e.len() > MAX_EMBEDDING_DIM {
            return Err(Error::invalid("faces", "embedding must have 1-1024 values"));
        }
        if !e.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("faces", "embedding has a non-finite value"));
        }
    }
    Ok(())
}

/// The checks of `Store::register_model`.
pub(crate) fn check_model(model: &str, dimension: usize) -> Result<(), Error> {
    if !is_model_id(model) {
        return Err(Error::invalid(
            "model",
            "must be 1-64 of a-z, 0-9, '.', '_', '-'",
        ));
    }
    if dimension == 0 || dimension > MAX_EMBEDDING_DIM {
        return Err(Error::invalid("dimension", "must be 1-1024"));
    }
    Ok(())
}

/// Whether `id` can name an embedding model.
pub(crate) fn is_model_id(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    !id.is_empty() && id.len() <= MAX_MODEL_LEN && id.chars().all(allowed)
}

fn check_faces(faces: &[NewFace]) -> Result<(), Error> {
    if faces.len() > MAX_FACES_PER_PERSON {
        return Err(Error::invalid("faces", "more than 3 faces"));
    }
    for f in faces {
        if f.embedding.is_empty() || f.embedding.len() > MAX_EMBEDDING_DIM {
            return Err(Error::invalid("faces", "embedding must have 1-1024 values"));
        }
        if !f.embedding.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("faces", "embedding has a non-finite value"));
        }
        if !is_model_id(&f.model) {
            return Err(Error::invalid(
                "faces",
                "model must be 1-64 of a-z, 0-9, '.', '_', '-'",
            ));
        }
        if f.crop_png.len() > MAX_CROP_BYTES {
            return Err(Error::invalid("faces", "crop too large"));
        }
        if f.thumbnail_jpeg.is_empty() {
            return Err(Error::invalid("faces", "empty thumbnail"));
        }
        if f.thumbnail_jpeg.len() > MAX_THUMBNAIL_BYTES {
            return Err(Error::invalid("faces", "thumbnail too large"));
        }
    }
    Ok(())
}

pub(crate) fn check_new_person(p: &NewPerson) -> Result<(), Error> {
    check_name("name", &p.name)?;
    check_text("nationality", p.nationality.as_deref())?;
    check_text("notes", p.notes.as_deref())?;
    check_faces(&p.faces)
}

pub(crate) fn check_person_update(u: &PersonUpdate) -> Result<(), Error> {
    if let Some(n) = &u.name {
        check_name("name", n)?;
    }
    check_text("nationality", u.nationality.as_deref())?;
    check_text("notes", u.notes.as_deref())?;
    if let Some(f) = &u.faces {
        check_faces(f)?;
    }
    Ok(())
}

pub(crate) fn check_new_collection(c: &NewCollection) -> Result<(), Error> {
    check_name("name", &c.name)?;
    check_text("description", c.description.as_deref())?;
    check_text("project", c.project.as_deref())
}

pub(crate) fn check_collection_update(c: &CollectionUpdate) -> Result<(), Error> {
    if let Some(n) = &c.name {
        check_name("name", n)?;
    }
    check_text("description", c.description.as_deref())?;
    check_text("project", c.project.as_deref())
}

/// The migrations (numbered, in order) a database at schema version `found` (`None`: no
/// schema yet) needs to reach `supported`, or `None` when it is there already. A schema
/// written by a newer build is refused.
pub(crate) fn migrations_after(
    found: Option<i64>,
    supported: i64,
    migrations: &[(i64, &'static str)],
) -> Result<Option<Vec<&'static str>>, Error> {
    let found = found.unwrap_or(0);
    if found > supported {
        return Err(Error::SchemaTooNew { found, supported });
    }
    if found == supported {
        return Ok(None);
    }
    let after = migrations.iter().filter(|(v, _)| *v > found);
    Ok(Some(after.map(|(_, sql)| *sql).collect()))
}

// ---------------------------------------------------------------- names and lists

/// Case-folded form used for case-insensitive name matching (Unicode lower case).
pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Keeps the first occurrence of each id, in order.
pub(crate) fn dedup<'a, T: Eq + Hash + Clone + 'a>(ids: impl IntoIterator<Item = &'a T>) -> Vec<T> {
    let mut seen = HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(*id))
        .cloned()
        .collect()
}

/// `(limit, offset)` of a 1-based page (0 is taken as 1) of `limit` rows.
pub(crate) fn page_bounds(page: u32, limit: u32) -> (i64, i64) {
    let page = i64::from(page.max(1));
    let limit = i64::from(limit);
    (limit, (page - 1).saturating_mul(limit))
}

// ---------------------------------------------------------------- collections

/// A new collection of the client, with fresh ids, created at `now`.
pub(crate) fn new_collection(
    client: &ClientId,
    new: &NewCollection,
    now: DateTime<Utc>,
) -> Collection {
    Collection {
        id: CollectionId::new(),
        code: CollectionCode::new_random(),
        client: client.clone(),
        name: new.name.trim().to_owned(),
        description: new.description.clone(),
        project: new.project.clone(),
        created_at: now,
        updated_at: now,
    }
}

/// The stored collection with the fields `u` sets, updated at `now` (its `people` are
/// reconciled by [`membership_changes`]).
pub(crate) fn merge_collection(
    c: Collection,
    u: &CollectionUpdate,
    now: DateTime<Utc>,
) -> Collection {
    Collection {
        name: u.name.as_deref().map_or(c.name, |n| n.trim().to_owned()),
        description: u.description.clone().or(c.description),
        project: u.project.clone().or(c.project),
        updated_at: now,
        ..c
    }
}

/// One change of a collection's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberChange {
    Detach,
    Attach,
}

impl MemberChange {
    /// The audit action it writes (`object_id` = the person).
    pub(crate) fn audit_action(self) -> &'static str {
        match self {
            MemberChange::Detach => audit::PERSON_DETACH,
            MemberChange::Attach => audit::PERSON_ATTACH,
        }
    }
}

/// Makes `wanted` the complete membership of a collection (see [`CollectionUpdate::people`]):
/// `current` are its members in membership order, `wanted` the listed persons that exist for
/// the client, deduplicated, in list order. Members not wanted are detached first, in
/// membership order, then the wanted persons not yet members are attached, in list order. A
/// person detached from its last collection this way is kept, never erased.
pub(crate) fn membership_changes<K: PartialEq + Clone>(
    current: &[K],
    wanted: &[K],
) -> Vec<(MemberChange, K)> {
    let detach = current.iter().filter(|m| !wanted.contains(m));
    let attach = wanted.iter().filter(|w| !current.contains(w));
    detach
        .map(|m| (MemberChange::Detach, m.clone()))
        .chain(attach.map(|w| (MemberChange::Attach, w.clone())))
        .collect()
}

// ---------------------------------------------------------------- persons

/// The stored person with the fields `u` sets, updated at `now` (its faces and collections
/// are replaced by the back-end).
pub(crate) fn merge_person(p: Person, u: &PersonUpdate, now: DateTime<Utc>) -> Person {
    Person {
        name: u.name.as_deref().map_or(p.name, |n| n.trim().to_owned()),
        gender: u.gender.or(p.gender),
        date_of_birth: u.date_of_birth.or(p.date_of_birth),
        nationality: u.nationality.clone().or(p.nationality),
        notes: u.notes.clone().or(p.notes),
        status: u.status.unwrap_or(p.status),
        updated_at: now,
        ..p
    }
}

/// The collections in which `update_person` must look for another person of the client with
/// the updated person's resulting name (case-insensitive) and date of birth, the rule
/// `create_person` keeps. `before` is the stored person with its collections, `after` the
/// merged person with the collections it ends up in. When the name or the date of birth
/// changes, every resulting collection; otherwise only those the person joins (a match in a
/// collection it was already in was there before this update, which then still succeeds).
pub(crate) fn duplicate_scope<K: Eq + Hash + Clone>(
    before: (&Person, &[K]),
    after: (&Person, &[K]),
) -> Vec<K> {
    let ((old, was_in), (new, ends_in)) = (before, after);
    let same = name_key(&old.name) == name_key(&new.name) && old.date_of_birth == new.date_of_birth;
    let scope = ends_in.iter().filter(|c| !same || !was_in.contains(c));
    dedup(scope)
}

/// What detaching an existing person from one collection comes to, given the collections the
/// person is left in once the membership was removed (read after the removal), or `None` when
/// there was no such membership (or no such collection for the client). `Erased`: that was
/// its last collection, and the person is to be erased as by `erase_person`.
pub(crate) fn detach_outcome(remaining: Option<Vec<CollectionId>>) -> DetachOutcome {
    match remaining {
        None => DetachOutcome::NotAMember,
        Some(r) if r.is_empty() => DetachOutcome::Erased,
        Some(remaining) => DetachOutcome::Detached { remaining },
    }
}

/// `t` without its fraction of a second (token times are whole seconds).
pub(crate) fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::ids::PersonId;
    use crate::model::{Gender, PersonStatus};

    fn invalid(r: Result<(), Error>) -> Option<(&'static str, &'static str)> {
        match r {
            Err(Error::Invalid { field, reason }) => Some((field, reason)),
            _ => None,
        }
    }

    #[test]
    fn validation() {
        // A new person and an update setting the same fields are checked alike.
        let check = |name: &str, notes: &str, faces: Vec<NewFace>| {
            let (name, notes) = (name.to_owned(), Some(notes.to_owned()));
            let new = NewPerson {
                name: name.clone(),
                notes: notes.clone(),
                faces: faces.clone(),
                ..Default::default()
            };
            let update = PersonUpdate {
                name: Some(name),
                notes,
                faces: Some(faces),
                ..Default::default()
            };
            let found = invalid(check_new_person(&new));
            assert_eq!(invalid(check_person_update(&update)), found);
            found
        };
        let f = |dim, value, jpeg| NewFace {
            model: crate::model::DEFAULT_MODEL.into(),
            embedding: vec![value; dim],
            thumbnail_jpeg: vec![1; jpeg],
            crop_png: Vec::new(),
        };
        let (nan, max) = (f32::NAN, MAX_THUMBNAIL_BYTES);
        assert_eq!(check("Ana", "", vec![f(128, 0.5, max); 3]), None);
        let long_name = "é".repeat(MAX_NAME_CHARS + 1);
        for (name, why) in [
            (" ", "must not be empty"),
            (long_name.as_str(), "too long"),
            ("A\tB", "contains control characters"),
        ] {
            assert_eq!(check(name, "", vec![]), Some(("name", why)));
        }
        let long_text = "x".repeat(MAX_TEXT_CHARS + 1);
        for (notes, why) in [
            (long_text.as_str(), "too long"),
            ("a\0b", "contains a NUL character"),
        ] {
            assert_eq!(check("Ana", notes, vec![]), Some(("notes", why)));
        }
        for (faces, why) in [
            (vec![f(128, 0.5, 1); 4], "more than 3 faces"),
            (vec![f(0, 0.5, 1)], "embedding must have 1-1024 values"),
            (vec![f(1025, 0.5, 1)], "embedding must have 1-1024 values"),
            (vec![f(128, nan, 1)], "embedding has a non-finite value"),
            (vec![f(128, 0.5, 0)], "empty thumbnail"),
            (vec![f(128, 0.5, max + 1)], "thumbnail too large"),
        ] {
            assert_eq!(check("Ana", "", faces), Some(("faces", why)));
        }
        // An update checks only the fields it sets.
        assert_eq!(invalid(check_person_update(&PersonUpdate::default())), None);
        assert_eq!(invalid(check_collection_update(&Default::default())), None);
        let c = NewCollection {
            name: "C".into(),
            project: Some("a\0".into()),
            ..Default::default()
        };
        let nul = Some(("project", "contains a NUL character"));
        assert_eq!(invalid(check_new_collection(&c)), nul);
        let (long, longest) = ("j".repeat(MAX_JTI_LEN + 1), "j".repeat(MAX_JTI_LEN));
        for (jti, ok) in [
            ("", false),
            ("a\0b", false),
            (&long, false),
            (&longest, true),
        ] {
            assert_eq!(check_jti(jti).is_ok(), ok, "{jti:?}");
        }
    }

    #[test]
    fn schema_upgrades() {
        let all = [(1, "one"), (2, "two"), (3, "three")];
        let after = |found| migrations_after(found, 3, &all).map_err(|e| e.to_string());
        assert_eq!(after(None), Ok(Some(vec!["one", "two", "three"])));
        assert_eq!(after(Some(1)), Ok(Some(vec!["two", "three"])));
        assert_eq!(after(Some(3)), Ok(None));
        assert!(after(Some(4)).is_err_and(|e| e.contains("version 4 is newer")));
    }

    #[test]
    fn names_lists_and_pages() {
        assert_eq!(dedup(&[1, 2, 1, 3, 2]), vec![1, 2, 3]);
        assert_eq!(name_key(" MaRÍa "), "maría");
        assert_eq!(page_bounds(0, 20), (20, 0));
        assert_eq!(page_bounds(1, 20), (20, 0));
        assert_eq!(page_bounds(3, 20), (20, 40));
        let max = i64::from(u32::MAX);
        assert_eq!(page_bounds(u32::MAX, u32::MAX), (max, i64::MAX));
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    #[test]
    fn collection_updates_merge() {
        let client = ClientId::new_random();
        let new = NewCollection {
            name: "  Staff ".into(),
            description: Some("d".into()),
            project: None,
        };
        let c = new_collection(&client, &new, at(1));
        let created = (
            c.name.as_str(),
            &c.client,
            &c.description,
            c.created_at,
            c.updated_at,
        );
        assert_eq!(created, ("Staff", &client, &new.description, at(1), at(1)));
        // Unset fields stay, set ones replace (names trimmed), the update time moves.
        let stay = Collection {
            updated_at: at(2),
            ..c.clone()
        };
        assert_eq!(
            merge_collection(c.clone(), &Default::default(), at(2)),
            stay
        );
        let u = CollectionUpdate {
            name: Some(" Guests".into()),
            project: Some("p".into()),
            people: Some(Vec::new()),
            ..Default::default()
        };
        let want = Collection {
            name: "Guests".into(),
            project: u.project.clone(),
            ..stay
        };
        assert_eq!(merge_collection(c, &u, at(2)), want);
    }

    #[test]
    fn membership_reconciles() {
        use MemberChange::{Attach, Detach};
        // Keep 2, drop 4 and 1 (membership order), add 5 and 3 (list order).
        let changes = membership_changes(&[4, 1, 2], &[5, 2, 3]);
        assert_eq!(
            changes,
            [(Detach, 4), (Detach, 1), (Attach, 5), (Attach, 3)]
        );
        assert!(membership_changes(&[1, 2], &[2, 1]).is_empty());
        assert_eq!(membership_changes(&[1], &[]), [(Detach, 1)]);
        assert_eq!(membership_changes(&[], &[1]), [(Attach, 1)]);
        assert_eq!(Detach.audit_action(), audit::PERSON_DETACH);
        assert_eq!(Attach.audit_action(), audit::PERSON_ATTACH);
    }

    #[test]
    fn person_updates_merge() {
        let p = Person {
            id: PersonId::new(),
            client: ClientId::new_random(),
            name: "Ana".into(),
            gender: Some(Gender::F),
            date_of_birth: NaiveDate::from_ymd_opt(1990, 5, 17),
            nationality: Some("CO".into()),
            notes: None,
            status: PersonStatus::Active,
            collections: vec![CollectionId::new()],
            thumbnails: Vec::new(),
            created_at: at(1),
            updated_at: at(1),
        };
        let stay = Person {
            updated_at: at(2),
            ..p.clone()
        };
        assert_eq!(
            merge_person(p.clone(), &PersonUpdate::default(), at(2)),
            stay
        );
        // Faces and collections are the back-end's to replace.
        let u = PersonUpdate {
            name: Some(" Ana María ".into()),
            gender: Some(Gender::M),
            notes: Some("n".into()),
            status: Some(PersonStatus::Inactive),
            collections: Some(Vec::new()),
            faces: Some(Vec::new()),
            ..Default::default()
        };
        let want = Person {
            name: "Ana María".into(),
            gender: u.gender,
            notes: u.notes.clone(),
            status: PersonStatus::Inactive,
            ..stay
        };
        assert_eq!(merge_person(p, &u, at(2)), want);
    }

    #[test]
    fn duplicates_are_looked_for_where_the_update_puts_the_person() {
        let p = Person {
            id: PersonId::new(),
            client: ClientId::new_random(),
            name: "Ana".into(),
            gender: None,
            date_of_birth: NaiveDate::from_ymd_opt(1990, 5, 17),
            nationality: None,
            notes: None,
            status: PersonStatus::Active,
            collections: Vec::new(),
            thumbnails: Vec::new(),
            created_at: at(1),
            updated_at: at(1),
        };
        let scope =
            |after: &Person, was: &[i32], ends: &[i32]| duplicate_scope((&p, was), (after, ends));
        // Other fields only: only the collections joined.
        let notes = merge_person(p.clone(), &PersonUpdate::default(), at(2));
        assert_eq!(scope(&notes, &[1, 2], &[1, 2]), Vec::<i32>::new());
        assert_eq!(scope(&notes, &[1, 2], &[2, 3, 3]), vec![3]);
        // The same name in another case is no change.
        let case = PersonUpdate {
            name: Some(" ANA ".into()),
            ..Default::default()
        };
        assert!(scope(&merge_person(p.clone(), &case, at(2)), &[1], &[1]).is_empty());
        // A new name or date of birth: every resulting collection.
        let renamed = PersonUpdate {
            name: Some("Bea".into()),
            ..Default::default()
        };
        let renamed = merge_person(p.clone(), &renamed, at(2));
        assert_eq!(scope(&renamed, &[1, 2], &[2, 1]), vec![2, 1]);
        let born = PersonUpdate {
            date_of_birth: NaiveDate::from_ymd_opt(1991, 1, 1),
            ..Default::default()
        };
        assert_eq!(
            scope(&merge_person(p.clone(), &born, at(2)), &[1], &[1]),
            [1]
        );
        assert!(scope(&renamed, &[1], &[]).is_empty());
    }

    #[test]
    fn renewals_name_two_tokens() {
        let r = |jti: &str, parent: &str| TokenRenewal {
            jti: jti.into(),
            parent: parent.into(),
            client: ClientId::new_random(),
            expires_at: at(1),
        };
        assert!(check_renewal(&r("b", "a")).is_ok());
        assert!(check_renewal(&r("a", "a")).is_err());
        assert!(check_renewal(&r("", "a")).is_err());
        assert!(check_renewal(&r("b", "a\0")).is_err());
    }

    #[test]
    fn detach_outcomes() {
        let c = CollectionId::new();
        assert_eq!(detach_outcome(None), DetachOutcome::NotAMember);
        assert_eq!(detach_outcome(Some(Vec::new())), DetachOutcome::Erased);
        let remaining = vec![c];
        let detached = DetachOutcome::Detached {
            remaining: remaining.clone(),
        };
        assert_eq!(detach_outcome(Some(remaining)), detached);
    }
}
