//! Schema migrations, run at connect time.

use deadpool_postgres::Object;

use super::conv::pg;
use crate::error::Result;
use crate::rules::migrations_after;

/// Migrations in order; the number is the schema version the file brings the database to.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgresql/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgresql/0002_token_families.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgresql/0003_issued_tokens.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgresql/0004_face_counters.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgresql/0005_face_models.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgresql/0006_embedding_dimensions.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgresql/0007_client_models.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgresql/0008_model_length_checked_per_statement.sql"),
    ),
];

/// Newest schema this build understands.
pub const SCHEMA_VERSION: i64 = 8;

/// Key of the transaction-scoped advisory lock that serialises migrations between nodes
/// starting at the same time ("visage" in ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x7669_7361_6765_0001;

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction (DDL is transactional in
/// PostgreSQL: a failed upgrade leaves the old schema) holding an advisory lock, so that of
/// several nodes starting at once one migrates and the others then find the work done.
/// Refuses a database written by a newer build.
pub(crate) async fn migrate(conn: &mut Object) -> Result<()> {
    let tx = conn.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS vector; \
         CREATE TABLE IF NOT EXISTS schema_version (version bigint NOT NULL);",
    )
    .await
    .map_err(pg)?;
    let found: Option<i64> = tx
        .query_one("SELECT max(version) FROM schema_version", &[])
        .await
        .map_err(pg)?
        .try_get(0)
        .map_err(pg)?;
    let Some(pending) = migrations_after(found, SCHEMA_VERSION, MIGRATIONS)? else {
        // Nothing to change: commit only releases the lock.
        tx.commit().await.map_err(pg)?;
        return Ok(());
    };
    for sql in pending {
        tx.batch_execute(sql).await.map_err(pg)?;
    }
    tx.execute("DELETE FROM schema_version", &[])
        .await
        .map_err(pg)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(())
}
