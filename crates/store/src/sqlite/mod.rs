//! The embedded back-end: one SQLite file (`visage.db`) in the data directory, in WAL mode
//! with `synchronous=FULL` and `secure_delete=ON`.
//!
//! Writes go to a single writer thread that group-commits (see `writer.rs`); reads use a small
//! pool of separate connections on tokio's blocking pool. Nothing blocks the async executor.

mod conv;
mod queries;
mod read_only;
mod readers;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OpenFlags};

use crate::api::Store;
use crate::error::{Error, Result};
use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};
use crate::model::{
    AuditEntry, ClientErasure, ClientSwitch, Collection, CollectionUpdate, DetachOutcome, FaceCrop,
    FaceRecord, IssuedToken, NewCollection, NewPerson, Person, PersonFilter, PersonUpdate,
    TokenRenewal,
};
use crate::rules::{
    self, check_collection_update, check_issued_token, check_jti, check_new_collection,
    check_new_person, check_person_update, check_renewal,
};

use readers::Readers;
use writer::Writer;

pub use read_only::SqliteReadOnly;
pub use schema::SCHEMA_VERSION;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "visage.db";

/// Reading connections kept open.
const READERS: usize = 4;

/// The SQLite store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct SqliteStore {
    dir: PathBuf,
    writer: Writer,
    readers: Arc<Readers>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`: sets up the connection, upgrades an
    /// older schema and refuses a newer one ([`Error::SchemaTooNew`]). Blocking: call it at
    /// start-up (or inside `spawn_blocking`).
    pub fn open(dir: &Path) -> Result<Self> {
        create_private_dir(dir)?;
        let path = dir.join(DB_FILE);
        create_private_file(&path)?;
        // SQLite gives new -wal and -shm files the database file's permissions, whatever the
        // umask; ones an earlier run (or build) left are made private here.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            restrict_to_owner(Path::new(&side))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags)?;
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        // Start clean: whatever an earlier run left in the WAL goes into the database file.
        // (If another process's reader blocks that, the writer keeps retrying.)
        let wal_clean = writer::checkpoint(&conn, writer::Mode::Truncate).is_ok();
        let writer = Writer::start(conn, wal_clean)?;
        Ok(Self {
            dir: dir.to_owned(),
            writer,
            readers: Readers::new(path, READERS),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finishes queued writes, checkpoints the WAL and closes every connection. Later calls
    /// fail with [`Error::Closed`]. Dropping the store does the same without waiting.
    pub async fn close(&self) -> Result<()> {
        self.readers.close();
        if let Some(handle) = self.writer.shutdown() {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|_| Error::Closed)?
                .map_err(|_| Error::Corrupt("the store writer panicked".to_owned()))?;
        }
        Ok(())
    }
}

/// Makes an existing file readable and writable by its owner only (mode 0600); nothing when
/// it does not exist or is private already.
fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => set_mode(path, 0o600)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The database file, created empty with mode 0600 whatever the umask before SQLite opens it
/// (so it is never readable by others, not even for a moment); an existing one is made
/// private.
fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => set_mode(path, 0o600),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict_to_owner(path),
        Err(e) => Err(e.into()),
    }
}

/// Exactly `mode` (the creation mode was masked by the umask, which might even have taken the
/// owner's bits).
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The data directory, created with mode 0700 (parents too) whatever the umask; an existing
/// one is left as the operator made it.
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        // Face data: readable by the server's user only.
        b.mode(0o700);
    }
    b.create(dir)?;
    set_mode(dir, 0o700)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_collection(&self, client: &ClientId, new: NewCollection) -> Result<Collection> {
        check_new_collection(&new)?;
        let client = client.clone();
        self.writer
            .run(false, move |c| queries::create_collection(c, &client, &new))
            .await
    }

    async fn list_collections(&self, client: &ClientId) -> Result<Vec<Collection>> {
        let client = client.clone();
        self.readers
            .run(move |c| queries::list_collections(c, &client))
            .await
    }

    async fn get_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Option<Collection>> {
        let (client, id) = (client.clone(), id.clone());
        self.readers
            .run(move |c| queries::get_collection(c, &client, &id))
            .await
    }

    async fn resolve_collection(
        &self,
        client: &ClientId,
        reference: &str,
    ) -> Result<Option<Collection>> {
        let client = client.clone();
        if let Ok(id) = CollectionId::parse(reference) {
            return self
                .readers
                .run(move |c| queries::get_collection(c, &client, &id))
                .await;
        }
        if let Ok(code) = CollectionCode::parse(reference) {
            return self
                .readers
                .run(move |c| queries::collection_by_code(c, &client, &code))
                .await;
        }
        Ok(None)
    }

    async fn update_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
        update: CollectionUpdate,
    ) -> Result<Option<Collection>> {
        check_collection_update(&update)?;
        let (client, id) = (client.clone(), id.clone());
        self.writer
            .run(false, move |c| {
                queries::update_collection(c, &client, &id, &update)
            })
            .await
    }

    async fn delete_collection(
        &self,
        client: &ClientId,
        id: &CollectionId,
    ) -> Result<Option<Collection>> {
        let (client, id) = (client.clone(), id.clone());
        self.writer
            .run(false, move |c| queries::delete_collection(c, &client, &id))
            .await
    }

    async fn create_person(&self, client: &ClientId, new: NewPerson) -> Result<Person> {
        check_new_person(&new)?;
        let client = client.clone();
        self.writer
            .run(false, move |c| queries::create_person(c, &client, &new))
            .await
    }

    async fn list_persons(
        &self,
        client: &ClientId,
        filter: PersonFilter,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<Person>, u64)> {
        let client = client.clone();
        self.readers
            .run(move |c| queries::list_persons(c, &client, &filter, page, limit))
            .await
    }

    async fn lookup_persons(
        &self,
        client: &ClientId,
        name_contains: &str,
        date_of_birth: Option<NaiveDate>,
        page: u32,
        limit: u32,
    ) -> Result<(Vec<Person>, u64)> {
        let (client, name) = (client.clone(), name_contains.to_owned());
        self.readers
            .run(move |c| queries::lookup_persons(c, &client, &name, date_of_birth, page, limit))
            .await
    }

    async fn get_person(&self, client: &ClientId, id: &PersonId) -> Result<Option<Person>> {
        let (client, id) = (client.clone(), id.clone());
        self.readers
            .run(move |c| queries::get_person(c, &client, &id))
            .await
    }

    async fn update_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        update: PersonUpdate,
    ) -> Result<Option<Person>> {
        check_person_update(&update)?;
        let replaces_faces = update.faces.is_some();
        let (client, id) = (client.clone(), id.clone());
        self.writer
            .run(replaces_faces, move |c| {
                queries::update_person(c, &client, &id, &update)
            })
            .await
    }

    async fn erase_person(&self, client: &ClientId, id: &PersonId) -> Result<bool> {
        let (client, id) = (client.clone(), id.clone());
        self.writer
            .run(true, move |c| queries::erase_person(c, &client, &id))
            .await
    }

    async fn detach_person(
        &self,
        client: &ClientId,
        id: &PersonId,
        collection: &CollectionId,
    ) -> Result<DetachOutcome> {
        let (client, id, collection) = (client.clone(), id.clone(), collection.clone());
        self.writer
            .run(true, move |c| {
                queries::detach_person(c, &client, &id, &collection)
            })
            .await
    }

    async fn erase_client(&self, client: &ClientId) -> Result<ClientErasure> {
        let client = client.clone();
        self.writer
            .run(true, move |c| queries::erase_client(c, &client))
            .await
    }

    async fn seed_persons(
        &self,
        client: &ClientId,
        persons: Vec<NewPerson>,
    ) -> Result<Vec<PersonId>> {
        for p in &persons {
            check_new_person(p)?;
        }
        let client = client.clone();
        self.writer
            .run(false, move |c| queries::seed_persons(c, &client, &persons))
            .await
    }

    async fn faces_for_index(&self) -> Result<Vec<FaceRecord>> {
        self.readers.run(queries::faces_for_index).await
    }

    async fn face_embeddings(
        &self,
        client: &ClientId,
        model: &str,
        faces: &[FaceId],
    ) -> Result<Vec<(FaceId, Vec<f32>)>> {
        let (client, model, faces) = (client.clone(), model.to_owned(), faces.to_vec());
        self.readers
            .run(move |c| queries::face_embeddings(c, &client, &model, &faces))
            .await
    }

    async fn client_model(&self, client: &ClientId) -> Result<Option<String>> {
        let client = client.clone();
        self.readers
            .run(move |c| queries::client_model(c, &client))
            .await
    }

    async fn clients_off_model(&self, model: &str) -> Result<Vec<ClientId>> {
        let model = model.to_owned();
        self.readers
            .run(move |c| queries::clients_off_model(c, &model))
            .await
    }

    async fn crops_to_reembed(
        &self,
        client: &ClientId,
        model: &str,
        cursor: i64,
        limit: u32,
    ) -> Result<Vec<FaceCrop>> {
        let (client, model) = (client.clone(), model.to_owned());
        self.readers
            .run(move |c| queries::crops_to_reembed(c, &client, &model, cursor, limit))
            .await
    }

    async fn switch_client_model(
        &self,
        client: &ClientId,
        model: &str,
        faces: Vec<(FaceId, Vec<f32>)>,
    ) -> Result<ClientSwitch> {
        rules::check_replaced_embeddings(model, &faces)?;
        let (client, model) = (client.clone(), model.to_owned());
        self.writer
            .run(true, move |c| {
                queries::switch_client_model(c, &client, &model, &faces)
            })
            .await
    }

    async fn register_model(&self, model: &str, dimension: usize) -> Result<()> {
        rules::check_model(model, dimension)?;
        let model = model.to_owned();
        self.writer
            .run(false, move |c| {
                queries::register_model(c, &model, dimension)
            })
            .await
    }

    async fn warm_up(&self) -> Result<()> {
        self.readers.run(queries::warm_up).await
    }

    async fn generation(&self) -> Result<u64> {
        self.readers.run(queries::generation).await
    }

    async fn faces_of_person(&self, client: &ClientId, id: &PersonId) -> Result<Vec<FaceRecord>> {
        let (client, id) = (client.clone(), id.clone());
        self.readers
            .run(move |c| queries::faces_of_person(c, &client, &id))
            .await
    }

    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<()> {
        check_jti(jti)?;
        let jti = jti.to_owned();
        self.writer
            .run(false, move |c| queries::revoke_token(c, &jti, expires_at))
            .await
    }

    async fn record_token_issue(&self, token: &IssuedToken) -> Result<()> {
        check_issued_token(token)?;
        let token = token.clone();
        self.writer
            .run(false, move |c| queries::record_token_issue(c, &token))
            .await
    }

    async fn record_token_renewal(&self, renewal: &TokenRenewal) -> Result<()> {
        check_renewal(renewal)?;
        let renewal = renewal.clone();
        self.writer
            .run(false, move |c| queries::record_token_renewal(c, &renewal))
            .await
    }

    async fn revoke_client_tokens(&self, client: &ClientId, cutoff: DateTime<Utc>) -> Result<()> {
        let client = client.clone();
        self.writer
            .run(false, move |c| {
                queries::revoke_client_tokens(c, &client, cutoff)
            })
            .await
    }

    async fn is_token_revoked(
        &self,
        jti: &str,
        client: &ClientId,
        issued_at: DateTime<Utc>,
    ) -> Result<bool> {
        let (jti, client) = (jti.to_owned(), client.clone());
        self.readers
            .run(move |c| queries::is_token_revoked(c, &jti, &client, issued_at))
            .await
    }

    async fn audit_log(&self, client: &ClientId, limit: u32) -> Result<Vec<AuditEntry>> {
        let client = client.clone();
        self.readers
            .run(move |c| queries::audit_log(c, &client, limit))
            .await
    }
}
