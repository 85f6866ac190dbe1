//! What a request must get past before any work: a share of the server-wide budget of
//! request-body bytes being read, and its client's rate limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use service::ClientId;

/// Bytes of request bodies being read at once, across all connections: without it, stalled
/// uploads each hold up to the body limit in memory.
#[derive(Clone)]
pub struct BodyBudget {
    in_use: Arc<AtomicUsize>,
    capacity: usize,
}

/// Gives the reserved bytes back when the request is answered.
pub struct BodyReservation {
    in_use: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.in_use.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl BodyBudget {
    pub fn new(capacity: usize) -> Self {
        BodyBudget {
            in_use: Arc::new(AtomicUsize::new(0)),
            capacity,
        }
    }

    /// Reserves `bytes`, or `None` when that would go over the budget.
    pub fn reserve(&self, bytes: usize) -> Option<BodyReservation> {
        let mut current = self.in_use.load(Ordering::Acquire);
        loop {
            let next = current.checked_add(bytes).filter(|n| *n <= self.capacity)?;
            match self.in_use.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(BodyReservation {
                        in_use: self.in_use.clone(),
                        bytes,
                    })
                }
                Err(seen) => current = seen,
            }
        }
    }
}

/// Requests per second and burst, per client and per node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        // Far above what the face pipeline can serve on a few cores (~20-40 images/s), so
        // that only a flood meets it; cheap reads (GET /persons/{id}) stay unthrottled in
        // practice.
        RateLimit {
            per_second: 100.0,
            burst: 200.0,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per client. Buckets of clients idle long enough to be full again are
/// dropped, so the map holds only recently active clients.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<ClientId, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`; when there is none, how long until there is.
    pub fn admit(&self, client: &ClientId) -> Result<(), Duration> {
        let now = Instant::now();
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > 10_000 {
            let full_after = burst / per_second;
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < full_after);
        }
        let bucket = buckets.entry(client.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_would_go_over_and_frees_on_drop() {
        let budget = BodyBudget::new(100);
        let a = budget.reserve(60).expect("fits");
        assert!(budget.reserve(50).is_none());
        let b = budget.reserve(40).expect("fits exactly");
        drop(a);
        assert!(budget.reserve(60).is_some());
        drop(b);
        assert!(budget.reserve(usize::MAX).is_none());
    }

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 1.0,
            burst: 3.0,
        });
        let (a, b) = (
            ClientId::parse("a").expect("id"),
            ClientId::parse("b").expect("id"),
        );
        for _ in 0..3 {
            assert!(limiter.admit(&a).is_ok());
        }
        let wait = limiter.admit(&a).expect_err("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter.admit(&b).is_ok(),
            "another client has its own bucket"
        );
    }
}
