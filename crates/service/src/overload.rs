//! Overload is logged at WARN, at most once per client per interval, with how many requests
//! were refused since the last line: a flood must not flood the log too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::ClientId;

/// Refusals per client, and when each client was last logged.
pub struct OverloadLog {
    every: Duration,
    last: Mutex<HashMap<ClientId, (Instant, u64)>>,
}

impl Default for OverloadLog {
    fn default() -> Self {
        OverloadLog::new(Duration::from_secs(10))
    }
}

impl OverloadLog {
    pub fn new(every: Duration) -> Self {
        OverloadLog {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    pub fn refused(&self, client: &ClientId, what: &'static str) {
        let now = Instant::now();
        let mut last = match self.last.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if last.len() > 10_000 {
            let every = self.every;
            last.retain(|_, (at, _)| now.duration_since(*at) < every);
        }
        match last.get_mut(client) {
            Some((at, count)) if now.duration_since(*at) < self.every => *count += 1,
            entry => {
                let since = entry.map_or(0, |(_, count)| *count);
                tracing::warn!(client = %client.as_str(), refused_since_last = since, "{what}");
                last.insert(client.clone(), (now, 0));
            }
        }
    }
}
