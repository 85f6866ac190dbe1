//! Which embedding model serves a client. Every client's faces are of one model (the store
//! refuses any other), so a client is served by that model: the one the service runs, or,
//! while clients are being moved to it, one of the previous models it still loads. A client
//! with no face yet takes the running model.
//!
//! While clients move, a use case holds its client's lock shared from choosing the model
//! until its search or write is done, and a move holds it exclusively from the switch until
//! search has caught up: no request embeds with one model and searches the other's faces.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use store::{ClientId, Store};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::error::{Error, Result};
use crate::faces::Faces;

pub(crate) struct ClientModels {
    running: Faces,
    /// By model id; empty unless clients are being moved to the running model.
    previous: HashMap<String, Faces>,
    locks: ClientLocks,
}

/// The faces pipeline of a client's model, holding the client on that model until dropped.
pub(crate) struct ClientFaces<'a> {
    pub faces: &'a Faces,
    _held: Option<OwnedRwLockReadGuard<()>>,
}

impl std::ops::Deref for ClientFaces<'_> {
    type Target = Faces;

    fn deref(&self) -> &Faces {
        self.faces
    }
}

impl ClientModels {
    pub fn new(running: Faces, previous: Vec<Faces>) -> Self {
        let previous = previous
            .into_iter()
            .map(|f| (f.model().to_owned(), f))
            .collect();
        ClientModels {
            running,
            previous,
            locks: ClientLocks::default(),
        }
    }

    /// The model new clients are enrolled with and every client is moved to.
    pub fn running(&self) -> &Faces {
        &self.running
    }

    /// Whether clients may still be on previous models this service loads.
    pub fn moving(&self) -> bool {
        !self.previous.is_empty()
    }

    pub fn locks(&self) -> &ClientLocks {
        &self.locks
    }

    /// The pipeline of the client's model. With one model loaded that is the running one
    /// (a client on another model finds nothing, and its enrolments are refused by the
    /// store with [`Error::ModelNotServed`]).
    pub async fn for_client(
        &self,
        store: &dyn Store,
        client: &ClientId,
    ) -> Result<ClientFaces<'_>> {
        if !self.moving() {
            return Ok(ClientFaces {
                faces: &self.running,
                _held: None,
            });
        }
        let held = self.locks.shared(client).await;
        let faces = match store.client_model(client).await? {
            None => &self.running,
            Some(model) if model == self.running.model() => &self.running,
            Some(model) => match self.previous.get(&model) {
                Some(faces) => faces,
                None => return Err(Error::ModelNotServed { model }),
            },
        };
        Ok(ClientFaces {
            faces,
            _held: Some(held),
        })
    }
}

/// One lock per client while anyone holds or waits for it: an entry nobody holds is dropped
/// once the map has grown to [`PRUNE_AT`] entries (a lock is only handed out under the map's
/// mutex, so an entry held by the map alone cannot be in use).
#[derive(Default)]
pub(crate) struct ClientLocks {
    by_client: Mutex<HashMap<ClientId, Arc<RwLock<()>>>>,
}

/// Entries the lock map holds before it drops the unused ones.
const PRUNE_AT: usize = 1024;

impl ClientLocks {
    fn lock(&self, client: &ClientId) -> Arc<RwLock<()>> {
        let mut map = self
            .by_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= PRUNE_AT && !map.contains_key(client) {
            map.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        map.entry(client.clone()).or_default().clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub async fn shared(&self, client: &ClientId) -> OwnedRwLockReadGuard<()> {
        self.lock(client).read_owned().await
    }

    pub async fn exclusive(&self, client: &ClientId) -> OwnedRwLockWriteGuard<()> {
        self.lock(client).write_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(i: usize) -> ClientId {
        ClientId::parse(&format!("client-{i}")).expect("a valid client id")
    }

    #[tokio::test]
    async fn locks_nobody_holds_are_dropped_and_held_ones_kept() {
        let locks = ClientLocks::default();
        let held = locks.exclusive(&client(0)).await;
        for i in 1..5 * PRUNE_AT {
            drop(locks.shared(&client(i)).await);
        }
        assert!(locks.len() <= PRUNE_AT, "{} locks kept", locks.len());
        // The held lock survived every pruning: another exclusive taker still waits on it.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.exclusive(&client(0)),
        )
        .await;
        assert!(
            waiting.is_err(),
            "a second exclusive holder got client 0's lock"
        );
        drop(held);
        drop(locks.exclusive(&client(0)).await);
    }
}
