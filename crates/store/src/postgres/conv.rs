//! Conversions between domain types and PostgreSQL values, and error classification.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use crate::error::Error;
use crate::ids::{ClientId, CollectionCode, CollectionId, FaceId, PersonId};
use crate::model::{Gender, PersonStatus, MAX_EMBEDDING_DIM};

/// Maps a driver error: connection trouble is [`Error::Unavailable`] (503 material), the rest
/// is [`Error::Postgres`].
pub(crate) fn pg(e: tokio_postgres::Error) -> Error {
    // The SQLSTATE migration 8's trigger (6's before it) raises for a face of another
    // length than its model's.
    if e.code().is_some_and(|c| c.code() == "VS001") {
        return Error::invalid("faces", crate::error::DIMENSION_REFUSED);
    }
    if is_connection_error(&e) {
        Error::Unavailable(e.to_string())
    } else {
        Error::Postgres(e)
    }
}

fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            // Class 08: connection exception; 57P01-57P03: the server is shutting down,
            // crashed or not yet accepting connections; 53300: too many connections.
            c.starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
        }
        // No server error code: an I/O error on the socket, a timeout, a protocol failure.
        None => std::error::Error::source(e)
            .map(|s| s.is::<std::io::Error>())
            .unwrap_or(false),
    }
}

/// Errors worth running the whole transaction again for.
pub(crate) fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Postgres(e) => matches!(
            e.code(),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
        ),
        _ => false,
    }
}

/// Getting a connection from the pool failed: the database is not reachable (or the pool
/// was closed).
pub(crate) fn pool(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => Error::Unavailable(format!("cannot connect: {e}")),
        PoolError::Timeout(t) => Error::Unavailable(format!("no connection available ({t:?})")),
        PoolError::Closed => Error::Closed,
        PoolError::PostCreateHook(e) => {
            Error::Unavailable(format!("cannot set up a connection: {e}"))
        }
        other => Error::Unavailable(other.to_string()),
    }
}

/// Values stored as text that parse into a domain type.
pub(crate) trait FromText: Sized {
    fn from_text(s: &str) -> Option<Self>;
}

macro_rules! from_text_ids {
    ($($t:ty),*) => {$(
        impl FromText for $t {
            fn from_text(s: &str) -> Option<Self> {
                <$t>::parse(s).ok()
            }
        }
    )*};
}

from_text_ids!(PersonId, CollectionId, CollectionCode, FaceId);

impl FromText for ClientId {
    fn from_text(s: &str) -> Option<Self> {
        ClientId::from_stored(s).ok()
    }
}

impl FromText for Gender {
    fn from_text(s: &str) -> Option<Self> {
        Gender::parse(s)
    }
}

impl FromText for PersonStatus {
    fn from_text(s: &str) -> Option<Self> {
        PersonStatus::parse(s)
    }
}

/// A column of a plain type; a type mismatch is a [`Error::Corrupt`].
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
) -> Result<T, Error> {
    row.try_get(idx)
        .map_err(|e| Error::Corrupt(format!("column {idx}: {e}")))
}

/// A text column parsed into a domain type.
pub(crate) fn parsed<T: FromText>(row: &Row, idx: usize) -> Result<T, Error> {
    let s: &str = get(row, idx)?;
    T::from_text(s).ok_or_else(|| Error::Corrupt(format!("unexpected stored value {s:?}")))
}

/// A nullable text column parsed into a domain type.
pub(crate) fn parsed_opt<T: FromText>(row: &Row, idx: usize) -> Result<Option<T>, Error> {
    let s: Option<&str> = get(row, idx)?;
    s.map(|s| {
        T::from_text(s).ok_or_else(|| Error::Corrupt(format!("unexpected stored value {s:?}")))
    })
    .transpose()
}

/// An embedding read as `real[]` (the `vector` column cast in the query).
pub(crate) fn embedding(row: &Row, idx: usize) -> Result<Vec<f32>, Error> {
    let e: Vec<f32> = get(row, idx)?;
    if e.is_empty() || e.len() > MAX_EMBEDDING_DIM {
        return Err(Error::Corrupt(format!("embedding of {} values", e.len())));
    }
    Ok(e)
}

/// A row count or similar as the `u64` the API uses (negative counts do not happen).
pub(crate) fn count(row: &Row, idx: usize) -> Result<u64, Error> {
    let n: i64 = get(row, idx)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
