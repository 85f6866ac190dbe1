//! The gallery kept in step with the store: loaded at start-up (from a clean shutdown's
//! snapshot when the store has not changed since, else from the store), refreshed from the
//! store after every committed change, and searched with exact re-scoring against the
//! store's f32 embeddings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use store::{ClientId, CollectionId, FaceId, FaceRecord, PersonId, PersonStatus, Store};

use crate::client::IndexParams;
use crate::gallery::{rank_persons, CandidateSet, Gallery, SearchOutcome, SearchRequest};
use crate::quantized::dot_f32;
use crate::snapshot::{self, SnapshotError};

/// Rows the background builder adds per step, under one client's write lock (a step runs on
/// all the builder's threads: ~10-20 ms of searches waiting at most, at 10^6 faces).
const GRAPH_STEP_ROWS: usize = 64;

/// Where the gallery came from at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadedFrom {
    Snapshot,
    Store,
}

pub struct SyncedGallery {
    gallery: Arc<Gallery>,
    store: Arc<dyn Store>,
    /// Held across "read the store, apply to the gallery", so that refreshes apply in the
    /// order they read: the last refresh after a set of commits always sees all of them, and
    /// no older read can be applied over it (a face update racing an erasure cannot bring an
    /// erased person back).
    refresh: tokio::sync::Mutex<()>,
    /// Set when a refresh failed and persons were taken out of search: the gallery no longer
    /// mirrors the store, so it must not be saved as a snapshot.
    diverged: AtomicBool,
    /// The embedding model whose faces this gallery holds; faces of others are left out.
    model: String,
}

impl SyncedGallery {
    /// Loads the faces `model` embedded into the gallery: from the snapshot at `snapshot` if
    /// there is one stamped with the store's current generation and this model (the file is
    /// erased either way), else from the store.
    pub async fn load(
        store: Arc<dyn Store>,
        params: IndexParams,
        snapshot: Option<&Path>,
        model: &str,
    ) -> store::Result<(Self, LoadedFrom)> {
        let generation = store.generation().await?;
        let saved = match snapshot {
            Some(path) => read_snapshot(path.to_owned(), params).await,
            None => None,
        };
        let (gallery, from) = match saved {
            Some((g, m, gallery)) if g == generation && m == model => {
                // Loading from the store would have read the embeddings; from a snapshot,
                // read them in the background so that the first searches' re-scoring does
                // not wait on the disk.
                let store = store.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    match store.warm_up().await {
                        Ok(()) => tracing::info!(
                            seconds = started.elapsed().as_secs_f64(),
                            "stored embeddings read into the page cache"
                        ),
                        Err(e) => tracing::warn!(error = %e, "warming up the store failed"),
                    }
                });
                (gallery, LoadedFrom::Snapshot)
            }
            _ => (from_store(&*store, params, model).await?, LoadedFrom::Store),
        };
        let synced = SyncedGallery {
            gallery: Arc::new(gallery),
            store,
            refresh: tokio::sync::Mutex::new(()),
            diverged: AtomicBool::new(false),
            model: model.to_owned(),
        };
        Ok((synced, from))
    }

    /// Writes the snapshot for the next start; call once no more writes can happen (after
    /// the server has stopped). Returns `false` (and writes nothing) when the gallery may
    /// have diverged from the store.
    pub async fn save_snapshot(&self, path: &Path) -> Result<bool, SnapshotError> {
        if self.diverged.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let generation = self
            .store
            .generation()
            .await
            .map_err(|e| SnapshotError::Io(std::io::Error::other(e.to_string())))?;
        let (gallery, path, model) = (self.gallery.clone(), path.to_owned(), self.model.clone());
        tokio::task::spawn_blocking(move || snapshot::save(&gallery, generation, &model, &path))
            .await
            .map_err(|e| SnapshotError::Io(std::io::Error::other(e.to_string())))??;
        Ok(true)
    }

    /// Adds pending faces to the graphs of large galleries in the background, on at most
    /// `threads` cores, a step at a time (each step holds one client's lock briefly). Stops
    /// when the gallery is dropped.
    pub fn spawn_graph_builder(&self, threads: usize) -> std::io::Result<()> {
        let weak: Weak<Gallery> = Arc::downgrade(&self.gallery);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("graph-builder-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        std::thread::Builder::new()
            .name("graph-builder".to_owned())
            .spawn(move || {
                let mut busy_since: Option<std::time::Instant> = None;
                loop {
                    let Some(gallery) = weak.upgrade() else {
                        return;
                    };
                    let backlog = gallery.graph_backlog();
                    if backlog > 0 {
                        busy_since.get_or_insert_with(|| {
                            tracing::info!(faces = backlog, "building the search graph");
                            std::time::Instant::now()
                        });
                        pool.install(|| gallery.build_graphs(GRAPH_STEP_ROWS));
                        continue;
                    }
                    if let Some(t) = busy_since.take() {
                        gallery.shrink_to_fit();
                        tracing::info!(
                            seconds = t.elapsed().as_secs_f64(),
                            bytes = gallery.memory_bytes(),
                            "search graph up to date"
                        );
                    }
                    drop(gallery);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .map(|_| ())
    }

    /// Candidate faces (CPU work: run it off the async threads), for [`Self::rescore`].
    pub fn candidates(&self, client: &ClientId, request: &SearchRequest<'_>) -> CandidateSet {
        self.gallery.candidates(client, request)
    }

    /// Ranks the candidates' persons on the exact cosines of their stored embeddings. A face
    /// erased since the scan is not in the store any more and so never returned.
    pub async fn rescore(
        &self,
        client: &ClientId,
        found: &CandidateSet,
        probe: &[f32],
        min_cosine: f32,
        max_results: usize,
    ) -> store::Result<SearchOutcome> {
        let ids: Vec<FaceId> = found.candidates.iter().map(|c| c.face.clone()).collect();
        let stored: HashMap<FaceId, Vec<f32>> = if ids.is_empty() {
            HashMap::new()
        } else {
            self.store
                .face_embeddings(client, &self.model, &ids)
                .await?
                .into_iter()
                .collect()
        };
        let hits = rank_persons(
            &found.candidates,
            |f| stored.get(f).map(|v| dot_f32(v, probe)),
            min_cosine,
            max_results,
        );
        Ok(SearchOutcome {
            hits,
            faces_searched: found.faces_searched,
        })
    }

    /// The whole search: candidates then re-scoring (for callers without a CPU pool).
    pub async fn search(
        &self,
        client: &ClientId,
        request: &SearchRequest<'_>,
    ) -> store::Result<SearchOutcome> {
        let found = self.candidates(client, request);
        self.rescore(
            client,
            &found,
            request.probe,
            request.min_cosine,
            request.max_results,
        )
        .await
    }

    /// The model whose faces this gallery holds.
    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn gallery(&self) -> &Gallery {
        &self.gallery
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
                Ok(mut faces) => {
                    faces.retain(|f| f.model == self.model);
                    self.apply(client, id, faces).await
                }
                Err(e) => {
                    self.diverged.store(true, Ordering::SeqCst);
                    for id in ids {
                        self.apply(client, id, Vec::new()).await;
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
        self.apply(client, id, Vec::new()).await;
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

    /// Applies a person's faces on a blocking thread: the client's lock may be held by a
    /// scan or a graph step for milliseconds, which must not stall the async workers.
    async fn apply(&self, client: &ClientId, id: &PersonId, faces: Vec<FaceRecord>) {
        let (gallery, client, id) = (self.gallery.clone(), client.clone(), id.clone());
        let done = tokio::task::spawn_blocking(move || put(&gallery, &client, &id, &faces)).await;
        if done.is_err() {
            // The update panicked: the gallery may be missing this person.
            self.diverged.store(true, Ordering::SeqCst);
        }
    }
}

async fn read_snapshot(path: PathBuf, params: IndexParams) -> Option<snapshot::Saved> {
    let shown = path.display().to_string();
    let read = tokio::task::spawn_blocking(move || snapshot::load_and_erase(&path, params)).await;
    match read {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(path = %shown, error = %e, "search index snapshot not used; rebuilding from the store");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the search index snapshot failed");
            None
        }
    }
}

async fn from_store(store: &dyn Store, params: IndexParams, model: &str) -> store::Result<Gallery> {
    let mut faces = store.faces_for_index().await?;
    faces.retain(|f| f.model == model);
    let gallery = Gallery::new(params);
    // A person's faces are written in one transaction, so they are usually adjacent; sort to
    // be sure (stable: the enrolment order of each person's faces is kept).
    faces.sort_by(|a, b| (&a.client, &a.person_id).cmp(&(&b.client, &b.person_id)));
    for group in faces.chunk_by(|a, b| a.client == b.client && a.person_id == b.person_id) {
        put(&gallery, &group[0].client, &group[0].person_id, group);
    }
    gallery.shrink_to_fit();
    Ok(gallery)
}

/// Indexes a person from their face records; inactive and pending persons are not searchable.
fn put(gallery: &Gallery, client: &ClientId, person: &PersonId, faces: &[FaceRecord]) {
    match faces.first() {
        Some(first) if first.status == PersonStatus::Active => {
            let vectors: Vec<(FaceId, &[f32])> = faces
                .iter()
                .map(|f| (f.face_id.clone(), f.embedding.as_slice()))
                .collect();
            gallery.put_person(client, person, &first.collections, &vectors);
        }
        _ => {
            gallery.remove_person(client, person);
        }
    }
}
