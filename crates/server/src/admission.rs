//! What a request must get past before any work: a share of the server-wide budget of
//! request-body bytes being read, and its client's rate limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use service::ClientId;

use crate::error::ApiError;
use crate::AppState;

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
        self.take(client, 1.0)
    }

    /// Takes `n` tokens for `client` at once (one per image URL a request makes the server
    /// fetch); when there are not that many, how long until there are.
    pub fn admit_many(&self, client: &ClientId, n: usize) -> Result<(), Duration> {
        match n {
            0 => Ok(()),
            n => self.take(client, n as f64),
        }
    }

    fn take(&self, client: &ClientId, n: f64) -> Result<(), Duration> {
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
        if bucket.tokens >= n {
            bucket.tokens -= n;
            Ok(())
        } else {
            // More than a burst can never be had: wait as long as a full burst takes.
            let missing = n.min(burst) - bucket.tokens;
            Err(Duration::from_secs_f64(missing.max(0.0) / per_second))
        }
    }
}

/// Each image URL the server will fetch costs its client one more request of its rate
/// limit: a body of URLs must not turn one admitted request into many outgoing ones for free.
pub fn charge_image_urls(
    state: &AppState,
    client: &ClientId,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    if !state.service.image_urls_enabled() {
        return Ok(());
    }
    const IMAGE_FIELDS: [&str; 4] = ["image", "images", "probe", "gallery"];
    let is_url = |v: &Value| v.as_str().is_some_and(service::is_image_url);
    let urls: usize = IMAGE_FIELDS
        .iter()
        .filter_map(|key| body.get(*key))
        .map(|v| match v {
            Value::Array(items) => items.iter().filter(|i| is_url(i)).count(),
            other => usize::from(is_url(other)),
        })
        .sum();
    state.rate_limiter.admit_many(client, urls).map_err(|wait| {
        state.overload.refused(client, "rate limit reached: 429");
        ApiError::RateLimited(wait)
    })
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
