//! What the vision test binaries share: paths and the pipeline configuration under test.

#![allow(dead_code)]

use std::path::PathBuf;

use vision::{EngineChoice, PipelineConfig};

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// `VISAGE_MODELS_DIR`, else the repository's `models/`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("VISAGE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("models"))
}

/// The engine under test: `VISAGE_ENGINE` (tract, ort or auto; `.ci/run` runs these suites
/// on each engine), auto when unset.
pub fn config() -> PipelineConfig {
    let engine = std::env::var("VISAGE_ENGINE").map_or(EngineChoice::Auto, |e| {
        e.parse().unwrap_or_else(|e| panic!("VISAGE_ENGINE: {e}"))
    });
    PipelineConfig {
        engine,
        ..PipelineConfig::default()
    }
}
