//! visage's 1:N search: every active person's face embeddings in memory, per client, scanned
//! exactly, and kept in step with the store.
//!
//! [`Gallery`] is the pure in-memory structure; [`SyncedGallery`] owns one and refreshes it from
//! a [`store::Store`] after every committed change, so that what search sees never runs ahead of
//! what is durable, and a person erased or detached is gone from search before the erasing
//! request is answered.

mod gallery;
pub mod hnsw;
pub mod quantized;
mod synced;

pub use gallery::{Gallery, Hit, SearchOutcome, SearchRequest};
pub use synced::SyncedGallery;
