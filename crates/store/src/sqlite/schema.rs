//! Connection settings and schema migrations.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::rules::migrations_after;

/// Migrations in order; the number is the schema version the file brings the database to.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_generation.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_token_families.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_issued_tokens.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_face_models.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_embedding_dimensions.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_client_models.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_model_length_checked_by_the_store.sql"),
    ),
];

/// Newest schema this build understands.
pub const SCHEMA_VERSION: i64 = 8;

/// How long a connection waits on a lock held by another connection before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the single writing connection.
pub(crate) fn configure_writer(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "the database refused write-ahead logging (journal_mode is {mode})"
        )));
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Deleted content is overwritten with zeros, in the database and in the WAL pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Temporary b-trees (sorts, big IN lists) stay in memory, never in a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.set_prepared_statement_cache_capacity(64);
    let on: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    if on != 1 || fk != 1 {
        return Err(Error::Corrupt(
            "the database did not accept secure_delete / foreign_keys".to_owned(),
        ));
    }
    Ok(())
}

/// Settings of a reading connection.
pub(crate) fn configure_reader(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -8_000)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction (DDL is transactional in
/// SQLite, so a failed upgrade leaves the old schema). Refuses a database written by a newer
/// build.
///
/// Foreign keys are off meanwhile (a migration may rebuild a table others refer to, which
/// with them on would cascade its rows away) and checked before the commit.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = migrate_without_foreign_keys(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

fn migrate_without_foreign_keys(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(pending) = migrations_after(found, SCHEMA_VERSION, MIGRATIONS)? else {
        return Ok(());
    };
    for sql in pending {
        tx.execute_batch(sql)?;
    }
    let dangling: Option<String> = tx
        .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
        .optional()?;
    if let Some(table) = dangling {
        return Err(Error::Corrupt(format!(
            "a migration left rows of {table} referring to nothing"
        )));
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(())
}
