//! A read-only view of an embedded store that a running server may be writing: every read
//! opens its own read-only connection and runs one short read transaction, so it never takes
//! the writer's lock and holds back the server's WAL checkpoints (which erasure waits for)
//! only for as long as that one read.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{queries, schema, DB_FILE, SCHEMA_VERSION};
use crate::api::OperatorReads;
use crate::error::{Error, Result};
use crate::ids::ClientId;
use crate::model::{AuditEntry, AuditFilter, ListedToken};

/// Reads of `DIR/visage.db` that never write, beside a server or without one.
#[derive(Debug, Clone)]
pub struct SqliteReadOnly {
    path: PathBuf,
}

impl SqliteReadOnly {
    /// The store of `dir`, which must exist and hold this build's schema (an older one is
    /// [`Error::SchemaTooOld`], a newer one [`Error::SchemaTooNew`]). Blocking.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no visage store in {} (no {DB_FILE})", dir.display()),
            )));
        }
        let view = Self { path };
        let found = view.read(schema_version)?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(Error::SchemaTooOld {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(view)
    }

    /// Runs `f` in one read transaction on a fresh read-only connection (blocking).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        schema::configure_reader(&conn)?;
        let tx = conn.unchecked_transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    async fn read_async<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read(f))
            .await
            .map_err(|_| Error::Corrupt("a store read panicked".to_owned()))?
    }

    /// The audit log's last sequence number (0 when empty): where a backup of this store
    /// stands in its history.
    pub fn last_audit_seq(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?))
    }

    /// The audit row `seq`, if there is one.
    pub fn audit_entry(&self, seq: i64) -> Result<Option<AuditEntry>> {
        self.read(|c| {
            let rows = queries::audit_entries(c, &AuditFilter::default(), seq - 1, 1)?;
            Ok(rows.into_iter().next().filter(|e| e.seq == seq))
        })
    }

    /// A consistent copy of the whole database into `dest` (`VACUUM INTO`: one read
    /// transaction, so writers go on meanwhile; the copy has no free pages, hence none of the
    /// zeroed remains of erased rows). `dest` must not exist or be empty; create it private
    /// first. Blocking.
    pub fn copy_into(&self, dest: &Path) -> Result<()> {
        let dest = dest
            .to_str()
            .ok_or(Error::invalid("backup path", "must be valid UTF-8"))?
            .to_owned();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // Not `query_only`: the copy is a write, to another file.
        conn.busy_timeout(schema::BUSY_TIMEOUT)?;
        conn.execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }
}

fn schema_version(c: &Connection) -> Result<i64> {
    Ok(
        c.query_row("SELECT max(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0),
    )
}

#[async_trait]
impl OperatorReads for SqliteReadOnly {
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let filter = filter.clone();
        self.read_async(move |c| queries::audit_entries(c, &filter, after, limit))
            .await
    }

    async fn issued_tokens(&self, client: Option<&ClientId>) -> Result<Vec<ListedToken>> {
        let client = client.cloned();
        self.read_async(move |c| queries::issued_tokens(c, client.as_ref()))
            .await
    }
}
