//! The gallery kept in step with the store: loaded from it at start-up and refreshed from it
//! after every committed change.

use std::collections::HashMap;
use std::sync::Arc;

use store::{ClientId, CollectionId, FaceRecord, PersonId, PersonStatus, Store};

use crate::{Gallery, SearchOutcome, SearchRequest};

pub struct SyncedGallery {
    gallery: Gallery,
    store: Arc<dyn Store>,
    /// Held across "read the store, apply to the gallery", so that refreshes apply in the
    /// order they read: the last refresh after a set of commits always sees all of them, and
    /// no older read can be applied over it (a face update racing an erasure cannot bring an
    /// erased person back).
    refresh: tokio::sync::Mutex<()>,
}

impl SyncedGallery {
    /// Every active person's faces, from the store.
    pub async fn load(store: Arc<dyn Store>) -> store::Result<Self> {
        let gallery = Gallery::new();
        let mut persons: HashMap<(ClientId, PersonId), Vec<FaceRecord>> = HashMap::new();
        for face in store.faces_for_index().await? {
            persons
                .entry((face.client.clone(), face.person_id.clone()))
                .or_default()
                .push(face);
        }
        for ((client, person), faces) in persons {
            put(&gallery, &client, &person, &faces);
        }
        Ok(SyncedGallery {
            gallery,
            store,
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    pub fn search(&self, client: &ClientId, request: &SearchRequest<'_>) -> SearchOutcome {
        self.gallery.search(client, request)
    }

    pub fn face_count(&self, client: &ClientId) -> usize {
        self.gallery.face_count(client)
    }

    pub fn total_faces(&self) -> usize {
        self.gallery.total_faces()
    }

    /// Re-reads the persons from the store (call after their change is committed). On a store
    /// error the persons are taken out of search rather than left stale, and the error returned.
    pub async fn refresh_persons(&self, client: &ClientId, ids: &[PersonId]) -> store::Result<()> {
        let _order = self.refresh.lock().await;
        for id in ids {
            match self.store.faces_of_person(client, id).await {
                Ok(faces) => put(&self.gallery, client, id, &faces),
                Err(e) => {
                    for id in ids {
                        self.gallery.remove_person(client, id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub async fn refresh_person(&self, client: &ClientId, id: &PersonId) -> store::Result<()> {
        self.refresh_persons(client, std::slice::from_ref(id)).await
    }

    /// Takes an erased person out of search.
    pub async fn forget_person(&self, client: &ClientId, id: &PersonId) {
        let _order = self.refresh.lock().await;
        self.gallery.remove_person(client, id);
    }

    /// After a collection's membership changed (update or delete): re-reads everyone who
    /// was indexed in it and everyone in `now_listed`.
    pub async fn refresh_collection(
        &self,
        client: &ClientId,
        collection: &CollectionId,
        now_listed: &[PersonId],
    ) -> store::Result<()> {
        let mut ids = self.gallery.members(client, collection);
        for id in now_listed {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        self.refresh_persons(client, &ids).await
    }
}

/// Indexes a person from their face records; inactive and pending persons are not searchable.
fn put(gallery: &Gallery, client: &ClientId, person: &PersonId, faces: &[FaceRecord]) {
    let Some(first) = faces.first() else {
        gallery.remove_person(client, person);
        return;
    };
    if first.status != PersonStatus::Active {
        gallery.remove_person(client, person);
        return;
    }
    let vectors: Vec<&[f32]> = faces.iter().map(|f| f.embedding.as_slice()).collect();
    gallery.put_person(client, person, first.collections.clone(), &vectors);
}
