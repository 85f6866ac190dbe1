//! visage's 1:N search: every active person's faces in memory, per client, as int8 codes
//! (exact scan, or an HNSW graph for FAST search on large galleries), re-scored exactly on
//! the store's f32 embeddings, and kept in step with the store.
//!
//! [`Gallery`] is the pure in-memory structure; [`SyncedGallery`] owns one and refreshes it from
//! a [`store::Store`] after every committed change, so that what search sees never runs ahead of
//! what is durable, and a person erased or detached is gone from search before the erasing
//! request is answered.
//!
//! Modules, each using only those listed before it: `quantized` (int8 codes, exact dot
//! products), `sketch` (2-bit sketches of the codes, the exact scan's first stage), `hnsw`
//! (the graph over the codes), `client` (one client's faces), `gallery` (all clients, the
//! two-step search), `snapshot` (the one file format), `synced` (the gallery kept in step
//! with the store).

mod client;
mod gallery;
mod hnsw;
mod quantized;
mod sketch;
mod snapshot;
mod synced;

pub use client::{EfSearch, ExactScan, IndexParams, Mode};
pub use gallery::{
    candidate_count, rank_persons, Candidate, CandidateSet, Gallery, Hit, SearchOutcome,
    SearchRequest,
};
pub use hnsw::HnswParams;
pub use quantized::{dot_f32, valid_dimension, TopK, MAX_DIMENSION};
pub use snapshot::{erase as erase_snapshot, SnapshotError};
pub use synced::{LoadedFrom, SyncedGallery};
