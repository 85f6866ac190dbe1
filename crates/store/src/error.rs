use crate::model::Person;

/// Everything a store operation can fail with. Not-found is not an error: methods return
/// `None`, `false` or [`PersonNotFound`](crate::model::DetachOutcome::PersonNotFound).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input field is unacceptable; nothing was written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },

    /// A person of the same client with the same name (case-insensitive) and date of birth
    /// is already in one of the requested collections. Carries that existing person; nothing
    /// was written.
    #[error("person_already_set")]
    PersonAlreadySet(Box<Person>),

    /// A referenced collection does not exist for this client; nothing was written.
    #[error("unknown collection {0}")]
    UnknownCollection(String),

    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(rusqlite::Error),

    /// PostgreSQL refused or failed an operation (not a connection problem: those are
    /// [`Error::Unavailable`]).
    #[cfg(feature = "postgres")]
    #[error("database error: {0}")]
    Postgres(tokio_postgres::Error),

    /// The database server cannot be reached right now (refused or lost connection, no free
    /// connection within the pool's wait timeout, server shutting down). Nothing was written,
    /// or for a lost commit, the write may or may not have happened. Worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),

    /// The transaction holding this write (and others grouped with it) failed to commit, or
    /// (very rarely) committed but could not be made durable: the write must be taken as
    /// not done, and may or may not survive a crash.
    #[error("commit failed: {0}")]
    Commit(String),

    /// The erasure was committed (the rows are gone and later reads do not see them) but the
    /// write-ahead log could not be checkpointed and truncated, so erased bytes may still be
    /// in the `-wal` file. The store retries the checkpoint when it is next idle.
    #[error("erasure committed but not yet flushed from the write-ahead log: {0}")]
    ErasureNotFlushed(String),

    /// A model was recorded with embeddings of another length than the one given (two
    /// descriptors give one model id different dimensions); nothing was written.
    #[error("embedding model {model} has embeddings of {recorded} values in this store, not {wanted}: give the new model another id")]
    ModelDimension {
        model: String,
        recorded: usize,
        wanted: usize,
    },

    /// The client's faces are all embedded by another model than this face's (a search never
    /// compares two models' embeddings); nothing was written. The client moves to another
    /// model only through `Store::switch_client_model`.
    #[error("the client's faces are embedded by model {client_model}, not {wanted}")]
    ClientModel {
        client_model: String,
        wanted: String,
    },

    /// The data directory holds a schema newer than this build understands.
    #[error("database schema version {found} is newer than the newest this build supports ({supported}); upgrade visage")]
    SchemaTooNew { found: i64, supported: i64 },

    /// A read-only view found a schema older than this build's: a server of this build
    /// upgrades it when it next starts on the data directory.
    #[error("database schema version {found} is older than this build's ({supported}): start this build's `visage serve` on it once, which upgrades it")]
    SchemaTooOld { found: i64, supported: i64 },

    /// A stored value could not be decoded (the file was changed outside visage).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),

    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// The TLS settings of a database URL cannot be used (an unreadable root certificate).
    #[error("database TLS: {0}")]
    Tls(String),

    /// The store was closed, or its writer thread stopped.
    #[error("store closed")]
    Closed,
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        Error::Invalid { field, reason }
    }
}

/// Why a face whose embedding length differs from its model's is refused: said by both
/// stores' own checks before a write, and by PostgreSQL's statement trigger (migration 8)
/// behind them; mapped to [`Error::Invalid`].
pub(crate) const DIMENSION_REFUSED: &str = "embedding length differs from its model's";

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Database(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
