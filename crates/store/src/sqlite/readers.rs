//! A small pool of reading connections. Each read runs on tokio's blocking pool inside one
//! short read transaction (a consistent snapshot across the statements of one method).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

use super::schema;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    size: usize,
    permits: Semaphore,
}

impl Readers {
    pub fn new(path: PathBuf, size: usize) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::with_capacity(size)),
            size,
            permits: Semaphore::new(size),
        })
    }

    fn take(&self) -> Result<Connection> {
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match conn {
            Some(c) => Ok(c),
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&self.path, flags)?;
                schema::configure_reader(&conn)?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // More than `size` can be out at once when callers were cancelled mid-read (their
        // permit is gone, the blocking read is not): keep at most `size`.
        if idle.len() < self.size && !self.permits.is_closed() {
            idle.push(conn);
        }
    }

    /// Runs `f` on a pooled connection inside a read transaction, off the async executor.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self.permits.acquire().await.map_err(|_| Error::Closed)?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = this.take()?;
            let out = (|| {
                let tx = conn.unchecked_transaction()?;
                let v = f(&tx)?;
                tx.commit()?;
                Ok(v)
            })();
            this.give_back(conn);
            out
        })
        .await
        .map_err(|e| {
            if e.is_panic() {
                Error::Corrupt("a store read panicked".to_owned())
            } else {
                Error::Closed
            }
        })?
    }

    /// Closes the idle connections (in-flight reads close theirs when the pool is dropped).
    pub fn close(&self) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        self.permits.close();
    }
}
