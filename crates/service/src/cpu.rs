//! A bounded pool for CPU-heavy work (decoding, detection, embedding): at most `workers`
//! jobs run at once on blocking threads, at most `queue` more wait, and anything beyond
//! that is refused at once with `Busy` (503 + Retry-After) instead of piling up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::Error;

#[derive(Clone)]
pub struct CpuPool {
    running: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

/// Gives the admission slot back however the job ends (including cancellation).
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CpuPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        CpuPool {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: workers + queue,
        }
    }

    pub async fn run<T, F>(&self, job: F) -> Result<T, Error>
    where
        F: FnOnce() -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        let _admission = Admission(self.admitted.clone());
        if admitted >= self.capacity {
            return Err(Error::Busy);
        }
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|_| Error::internal("cpu pool closed"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Error::internal(format!("cpu job failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn over_capacity_is_refused_not_queued() {
        let pool = CpuPool::new(1, 1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut jobs = Vec::new();
        for _ in 0..2 {
            let (pool, wait) = (pool.clone(), wait.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = wait.lock().map(|w| w.recv());
                    Ok(())
                })
                .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(matches!(pool.run(|| Ok(())).await, Err(Error::Busy)));
        release.send(()).expect("send");
        release.send(()).expect("send");
        for job in jobs {
            assert!(job.await.expect("joined").is_ok());
        }
        assert!(pool.run(|| Ok(())).await.is_ok());
    }
}
