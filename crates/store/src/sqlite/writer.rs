//! The single writer: one thread owns the only writing connection, takes jobs from a channel
//! and group-commits whatever is queued.
//!
//! One batch = `BEGIN IMMEDIATE`, each job inside its own `SAVEPOINT` (a failing job rolls
//! back only itself), one `COMMIT`. While a batch commits, new jobs queue up and form the next
//! batch, so throughput grows with concurrency while a lone caller pays no waiting time.
//!
//! Durability and erasure (every flush costs milliseconds, so each one is counted):
//! - A batch with no job that can erase face data runs with `synchronous=FULL`: the commit
//!   fsyncs the WAL. Callers are answered after the commit.
//! - A batch with a job that can erase (erase, detach, replacing faces) runs with
//!   `synchronous=NORMAL` and is always followed by a checkpoint, which fsyncs the WAL, copies
//!   every frame into the database file and fsyncs that: the commit is just as durable, and
//!   the database file now holds the zeroed pages (`secure_delete`) instead of the erased
//!   bytes.
//!   - If the WAL was empty (truncated) when the batch began, it now holds only this batch's
//!     frames: page images taken after the deletions, so without the erased bytes. Callers
//!     are answered right after that checkpoint (`wal_checkpoint(FULL)`), and the WAL stays
//!     as it is.
//!   - Otherwise older frames may hold erased bytes: the checkpoint also truncates the WAL
//!     (`wal_checkpoint(TRUNCATE)`) before callers are answered.
//!
//!   Under a stream of erasures the two kinds alternate, so every other batch skips the
//!   truncation and every other batch skips the WAL-header fsync that follows one. An idle
//!   writer truncates a non-empty WAL after a short pause, so an isolated erasure finds it
//!   empty.
//!   - If a reader of an older snapshot blocks the checkpoint past its retries, the commit is
//!     made durable by a small `synchronous=FULL` write, erasing callers get
//!     [`Error::ErasureNotFlushed`], and the writer retries the truncating checkpoint when
//!     idle.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Most jobs in one transaction.
const MAX_BATCH: usize = 512;
/// Attempts at a truncating checkpoint before reporting failure.
const CHECKPOINT_ATTEMPTS: u32 = 3;
/// How long one checkpoint attempt waits for readers of older snapshots to finish (our own
/// reads take milliseconds; this bounds the stall an outside reader can cause).
const CHECKPOINT_WAIT: Duration = Duration::from_millis(1000);
/// After a failed checkpoint, how soon an idle writer tries again.
const CHECKPOINT_RETRY: Duration = Duration::from_millis(200);
/// How long the writer must be idle before it empties a non-empty WAL.
const IDLE_TRUNCATE_AFTER: Duration = Duration::from_millis(50);

/// What happened to the batch a job was part of.
#[derive(Clone)]
enum BatchOutcome {
    /// Committed, and checkpointed when needed.
    Committed,
    /// Committed, but the WAL could not be truncated (only matters to erasing jobs).
    NotFlushed(String),
    /// Not committed: nothing of the batch (since its last successful commit) was written.
    Failed(String),
}

/// A job after it ran inside the transaction: whether it erased face data, and how to answer
/// its caller once the batch outcome is known.
struct Ran {
    erased: bool,
    reply: Box<dyn FnOnce(BatchOutcome) + Send>,
}

trait Job: Send {
    /// Whether the job may erase face data (declared before it runs).
    fn may_erase(&self) -> bool;
    /// Runs inside the open transaction (the job's savepoint is handled here).
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    /// Answers the caller without running (the transaction could not be started).
    fn abort(self: Box<Self>, why: String);
}

/// The value a job's body returns: its result and whether it erased face data.
pub(crate) struct Done<T> {
    pub value: T,
    pub erased: bool,
}

impl<T> Done<T> {
    pub fn kept(value: T) -> Self {
        Self {
            value,
            erased: false,
        }
    }

    pub fn erased(value: T, erased: bool) -> Self {
        Self { value, erased }
    }
}

struct TypedJob<T, F> {
    body: F,
    may_erase: bool,
    tx: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<Done<T>> + Send + 'static,
{
    fn may_erase(&self) -> bool {
        self.may_erase
    }

    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let TypedJob { body, tx, .. } = *self;
        match in_savepoint(conn, body) {
            Ok(Done { value, erased }) => Ran {
                erased,
                reply: Box::new(move |outcome| {
                    let answer = match outcome {
                        BatchOutcome::Committed => Ok(value),
                        BatchOutcome::NotFlushed(why) if erased => {
                            Err(Error::ErasureNotFlushed(why))
                        }
                        BatchOutcome::NotFlushed(_) => Ok(value),
                        BatchOutcome::Failed(why) => Err(Error::Commit(why)),
                    };
                    // The caller may have gone away (request cancelled); nothing to do then.
                    let _ = tx.send(answer);
                }),
            },
            Err(e) => Ran {
                erased: false,
                reply: Box::new(move |_| {
                    let _ = tx.send(Err(e));
                }),
            },
        }
    }

    fn abort(self: Box<Self>, why: String) {
        let _ = self.tx.send(Err(Error::Commit(why)));
    }
}

/// Runs `body` in a savepoint: released on success, rolled back on error or panic.
fn in_savepoint<T>(
    conn: &Connection,
    body: impl FnOnce(&Connection) -> Result<Done<T>>,
) -> Result<Done<T>> {
    conn.execute_batch("SAVEPOINT job")?;
    let result = match catch_unwind(AssertUnwindSafe(|| body(conn))) {
        Ok(r) => r,
        Err(_) => Err(Error::Corrupt("a store operation panicked".to_owned())),
    };
    match result {
        Ok(done) => match conn.execute_batch("RELEASE job") {
            Ok(()) => Ok(done),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                Err(e.into())
            }
        },
        Err(e) => {
            // If the database already rolled the whole transaction back, this fails too; the
            // batch loop notices (autocommit is on again) and fails the batch.
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Shutdown,
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Sender<Msg>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `conn`. `wal_clean`: the WAL was just truncated.
    pub fn start(conn: Connection, wal_clean: bool) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("visage-store-writer".to_owned())
            .spawn(move || writer_loop(conn, rx, wal_clean))?;
        Ok(Self {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Queues `body` for the next batch and waits until the batch is durable (and, when
    /// `may_erase`, until the erased bytes are gone from the files). A body that reports
    /// `erased` should be queued with `may_erase` (else its batch pays a full truncating
    /// checkpoint before answering). Dropping the returned future does not cancel the job.
    pub async fn run<T, F>(&self, may_erase: bool, body: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<Done<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Job(Box::new(TypedJob {
                body,
                may_erase,
                tx,
            })))
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Asks the thread to finish the queued jobs and stop; returns its handle to join.
    pub fn shutdown(&self) -> Option<JoinHandle<()>> {
        let _ = self.tx.send(Msg::Shutdown);
        self.thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// What the writer knows about the WAL between batches.
struct WalState {
    /// The WAL was truncated and nothing was committed since.
    clean: bool,
    /// An erasure was reported as not flushed: truncate as soon as possible.
    flush_owed: bool,
    /// The connection's current `synchronous` setting is NORMAL (else FULL).
    normal_sync: bool,
    /// An idle-time truncation failed since the last commit (do not spin on it).
    idle_tried: bool,
}

fn writer_loop(conn: Connection, rx: Receiver<Msg>, wal_clean: bool) {
    let mut wal = WalState {
        clean: wal_clean,
        // A WAL left by an earlier run may hold erased bytes: truncate it soon.
        flush_owed: !wal_clean,
        normal_sync: false,
        idle_tried: false,
    };
    loop {
        // Owed erasure: retry the truncation periodically. WAL not empty: truncate once the
        // writer has been idle a moment, so the next erasing batch finds it empty.
        let wait = if wal.flush_owed {
            Some(CHECKPOINT_RETRY)
        } else if !wal.clean && !wal.idle_tried {
            Some(IDLE_TRUNCATE_AFTER)
        } else {
            None
        };
        let first = match wait {
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
            Some(d) => match rx.recv_timeout(d) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    if checkpoint(&conn, Mode::Truncate).is_ok() {
                        wal.clean = true;
                        wal.flush_owed = false;
                    } else {
                        wal.idle_tried = true;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut jobs = Vec::new();
        let mut stop = false;
        match first {
            Msg::Job(j) => jobs.push(j),
            Msg::Shutdown => stop = true,
        }
        while !stop && jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => jobs.push(j),
                Ok(Msg::Shutdown) => stop = true,
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            run_batch(&conn, jobs, &mut wal);
        }
        if stop {
            break;
        }
    }
    // Leave no WAL behind (closing the last connection also checkpoints).
    let _ = checkpoint(&conn, Mode::Truncate);
    drop(conn);
}

fn set_sync(conn: &Connection, wal: &mut WalState, normal: bool) -> rusqlite::Result<()> {
    if wal.normal_sync != normal {
        conn.pragma_update(None, "synchronous", if normal { "NORMAL" } else { "FULL" })?;
        wal.normal_sync = normal;
    }
    Ok(())
}

fn run_batch(conn: &Connection, jobs: Vec<Box<dyn Job>>, wal: &mut WalState) {
    let erasing = jobs.iter().any(|j| j.may_erase());
    if let Err(e) = set_sync(conn, wal, erasing) {
        let why = format!("could not set the sync mode: {e}");
        for job in jobs {
            job.abort(why.clone());
        }
        return;
    }
    let clean_at_start = wal.clean;
    let mut pending: Vec<Ran> = Vec::with_capacity(jobs.len());
    let mut in_tx = false;
    for job in jobs {
        if !in_tx {
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                job.abort(format!("could not start a transaction: {e}"));
                continue;
            }
            in_tx = true;
            // From here on the WAL may get frames, even if the commit fails.
            wal.clean = false;
            wal.idle_tried = false;
        }
        let ran = job.run(conn);
        if conn.is_autocommit() {
            // The database rolled the whole transaction back (I/O error, disk full...):
            // everything this batch wrote so far is gone.
            let why = "the transaction was rolled back by the database".to_owned();
            for r in pending.drain(..) {
                (r.reply)(BatchOutcome::Failed(why.clone()));
            }
            (ran.reply)(BatchOutcome::Failed(why));
            in_tx = false;
            continue;
        }
        pending.push(ran);
    }
    if !in_tx {
        return;
    }
    // Every committed batch moves the generation on (see `Store::generation`).
    if let Err(e) = conn.execute_batch("UPDATE generation SET n = n + 1") {
        let _ = conn.execute_batch("ROLLBACK");
        let why = format!("could not advance the generation: {e}");
        for r in pending {
            (r.reply)(BatchOutcome::Failed(why.clone()));
        }
        return;
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        let why = format!("commit failed: {e}");
        for r in pending {
            (r.reply)(BatchOutcome::Failed(why.clone()));
        }
        return;
    }
    let erased = pending.iter().any(|r| r.erased);

    if !erasing && !erased {
        // synchronous=FULL: the commit is durable. (A job that erased without declaring it
        // still gets the checkpoint below.)
        reply_all(pending, BatchOutcome::Committed);
        return;
    }

    // synchronous=NORMAL: a checkpoint makes the batch durable and moves the zeroed pages
    // into the database file.
    let mode = if clean_at_start {
        Mode::Full
    } else {
        Mode::Truncate
    };
    match checkpoint(conn, mode) {
        Ok(()) => {
            wal.flush_owed = false;
            // After a FULL checkpoint the WAL holds only this batch's frames, which carry no
            // erased bytes. It is truncated by the next erasing batch (its checkpoint then
            // truncates before answering) or when the writer is idle, whichever comes first:
            // under load every other erasing batch skips the WAL header fsync.
            wal.clean = mode == Mode::Truncate;
            reply_all(pending, BatchOutcome::Committed);
        }
        Err(why) => {
            // Blocked by a reader: make the commit durable another way, then report.
            if let Err(e) = durability_barrier(conn, wal) {
                let why = format!("committed but could not be made durable: {e}");
                reply_all(pending, BatchOutcome::Failed(why));
                wal.flush_owed |= erased;
                return;
            }
            wal.flush_owed |= erased;
            reply_all(pending, BatchOutcome::NotFlushed(why));
        }
    }
}

fn reply_all(pending: Vec<Ran>, outcome: BatchOutcome) {
    for r in pending {
        (r.reply)(outcome.clone());
    }
}

/// A one-row write with `synchronous=FULL`: its commit fsyncs the WAL, and with it every
/// earlier frame.
fn durability_barrier(conn: &Connection, wal: &mut WalState) -> rusqlite::Result<()> {
    set_sync(conn, wal, false)?;
    conn.execute_batch(
        "BEGIN IMMEDIATE; UPDATE durability_marker SET n = n + 1 WHERE id = 1; COMMIT;",
    )
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Copy every frame into the database file and fsync both; keep the WAL file.
    Full,
    /// As `Full`, then truncate the WAL file to zero bytes.
    Truncate,
}

/// Runs a checkpoint that must copy every frame; waits (a short busy timeout, then retries)
/// for readers of older snapshots.
pub(crate) fn checkpoint(conn: &Connection, mode: Mode) -> std::result::Result<(), String> {
    let _ = conn.busy_timeout(CHECKPOINT_WAIT);
    let r = checkpoint_attempts(conn, mode);
    let _ = conn.busy_timeout(super::schema::BUSY_TIMEOUT);
    r
}

fn checkpoint_attempts(conn: &Connection, mode: Mode) -> std::result::Result<(), String> {
    let sql = match mode {
        Mode::Full => "PRAGMA wal_checkpoint(FULL)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let mut last = String::new();
    for attempt in 0..CHECKPOINT_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(5 << attempt));
        }
        let r = conn.query_row(sql, [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match r {
            Ok((0, log, done)) if log == done => return Ok(()),
            Ok((_, log, done)) => {
                last = format!("checkpoint blocked by readers ({done} of {log} WAL frames copied)")
            }
            Err(e) => last = format!("checkpoint failed: {e}"),
        }
    }
    Err(last)
}
