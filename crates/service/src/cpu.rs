//! A bounded pool for CPU-heavy work (decoding, detection, embedding, the index scan): at
//! most `workers` jobs run at once on blocking threads, at most `queue` more wait, and
//! anything beyond that is refused at once with `Busy` (503 + Retry-After) instead of piling
//! up. No client may hold more than half of those places, so a client flooding the pool
//! leaves room for the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::ClientId;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::overload::OverloadLog;

#[derive(Clone)]
pub struct CpuPool {
    running: Arc<Semaphore>,
    admitted: Arc<Mutex<Admitted>>,
    capacity: usize,
    per_client: usize,
    overload: Arc<OverloadLog>,
}

#[derive(Default)]
struct Admitted {
    total: usize,
    per_client: HashMap<ClientId, usize>,
}

/// Gives the admission place back however the job ends (including cancellation).
struct Admission {
    admitted: Arc<Mutex<Admitted>>,
    client: ClientId,
}

fn lock(m: &Mutex<Admitted>) -> std::sync::MutexGuard<'_, Admitted> {
    // The counters stay consistent under a panic elsewhere: every change is one statement.
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut admitted = lock(&self.admitted);
        admitted.total = admitted.total.saturating_sub(1);
        if let Some(n) = admitted.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                admitted.per_client.remove(&self.client);
            }
        }
    }
}

/// One job waiting for a worker, counted in `visage_cpu_queue_depth` until it starts or is
/// cancelled.
struct QueueDepth;

impl QueueDepth {
    fn enter() -> Self {
        metrics::gauge!("visage_cpu_queue_depth").increment(1.0);
        QueueDepth
    }
}

impl Drop for QueueDepth {
    fn drop(&mut self) {
        metrics::gauge!("visage_cpu_queue_depth").decrement(1.0);
    }
}

impl CpuPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let capacity = workers + queue;
        CpuPool {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Mutex::new(Admitted::default())),
            capacity,
            per_client: (capacity / 2).max(1),
            overload: Arc::new(OverloadLog::default()),
        }
    }

    fn admit(&self, client: &ClientId) -> Option<Admission> {
        let mut admitted = lock(&self.admitted);
        let mine = admitted.per_client.get(client).copied().unwrap_or(0);
        if admitted.total >= self.capacity || mine >= self.per_client {
            return None;
        }
        admitted.total += 1;
        admitted.per_client.insert(client.clone(), mine + 1);
        Some(Admission {
            admitted: self.admitted.clone(),
            client: client.clone(),
        })
    }

    /// Runs `job` for `client` on a blocking thread once a worker is free; `Busy` at once
    /// when the pool, or the client's share of it, is full.
    pub async fn run<T, F>(&self, client: &ClientId, job: F) -> Result<T, Error>
    where
        F: FnOnce() -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let Some(_admission) = self.admit(client) else {
            metrics::counter!("visage_cpu_rejections_total").increment(1);
            self.overload.refused(client, "face pipeline full: 503");
            return Err(Error::Busy);
        };
        let waiting = QueueDepth::enter();
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|_| Error::internal("cpu pool closed"))?;
        drop(waiting);
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Error::internal(format!("cpu job failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> ClientId {
        ClientId::parse(name).expect("client id")
    }

    /// Starts `n` jobs for `who` that block until released; returns the release handle.
    fn hold(
        pool: &CpuPool,
        who: &ClientId,
        n: usize,
    ) -> (
        std::sync::mpsc::Sender<()>,
        Vec<tokio::task::JoinHandle<Result<(), Error>>>,
    ) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let jobs = (0..n)
            .map(|_| {
                let (pool, wait, who) = (pool.clone(), wait.clone(), who.clone());
                tokio::spawn(async move {
                    pool.run(&who, move || {
                        let _ = wait.lock().map(|w| w.recv());
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        (release, jobs)
    }

    #[tokio::test]
    async fn over_capacity_is_refused_not_queued() {
        let pool = CpuPool::new(1, 3);
        let (a, b) = (client("a"), client("b"));
        let (release_a, jobs_a) = hold(&pool, &a, 2);
        let (release_b, jobs_b) = hold(&pool, &b, 2);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(matches!(
            pool.run(&client("c"), || Ok(())).await,
            Err(Error::Busy)
        ));
        for _ in 0..2 {
            release_a.send(()).expect("send");
            release_b.send(()).expect("send");
        }
        for job in jobs_a.into_iter().chain(jobs_b) {
            assert!(job.await.expect("joined").is_ok());
        }
        assert!(pool.run(&a, || Ok(())).await.is_ok());
    }

    #[tokio::test]
    async fn a_flooding_client_leaves_room_for_the_others() {
        let pool = CpuPool::new(1, 7);
        let (flood, quiet) = (client("flood"), client("quiet"));
        let (release, jobs) = hold(&pool, &flood, 4);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            matches!(pool.run(&flood, || Ok(())).await, Err(Error::Busy)),
            "the flooding client is held to half of the pool"
        );
        let quiet_job = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(&quiet, || Ok(7)).await })
        };
        for _ in 0..4 {
            release.send(()).expect("send");
        }
        assert_eq!(quiet_job.await.expect("joined").ok(), Some(7));
        for job in jobs {
            assert!(job.await.expect("joined").is_ok());
        }
    }
}
