//! The only module that knows an inference engine: loading an ONNX graph and running it on
//! one tensor, with tract (always built in) or ONNX Runtime (opened at run time when its
//! library is installed), behind one crate-internal API (`OnnxGraph::parse`,
//! `OnnxGraph::plan`, `Plan::run`).

mod ort;
mod prelu;
mod tract;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The engine that runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Tract,
    Ort,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Tract => "tract",
            Engine::Ort => "ort",
        })
    }
}

/// Which engine to use: one of them, or ONNX Runtime where it is installed and tract
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineChoice {
    Tract,
    Ort,
    #[default]
    Auto,
}

impl FromStr for EngineChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tract" => Ok(EngineChoice::Tract),
            "ort" => Ok(EngineChoice::Ort),
            "auto" => Ok(EngineChoice::Auto),
            _ => Err(format!("unknown engine {s:?}: tract, ort or auto")),
        }
    }
}

/// The engine chosen for a models directory, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedEngine {
    pub engine: Engine,
    /// What was loaded, or why `auto` fell back to tract.
    pub note: String,
}

/// Resolves `choice`: ONNX Runtime's library is `ORT_DYLIB_PATH` when set, else the one
/// `visage models fetch` installed in `models_dir` (checked against `models.lock`). `ort`
/// fails when it cannot be loaded; `auto` then runs tract and says why.
pub fn resolve(choice: EngineChoice, models_dir: &Path) -> Result<ResolvedEngine> {
    if choice == EngineChoice::Tract {
        return Ok(ResolvedEngine {
            engine: Engine::Tract,
            note: "chosen".to_owned(),
        });
    }
    let loaded = ort_library(models_dir).and_then(|lib| match ort::load(&lib) {
        Ok(()) => Ok(lib),
        Err(message) => Err(Error::ModelLoad { path: lib, message }),
    });
    match (loaded, choice) {
        (Ok(lib), _) => Ok(ResolvedEngine {
            engine: Engine::Ort,
            note: format!("ONNX Runtime from {}", lib.display()),
        }),
        (Err(e), EngineChoice::Auto) => Ok(ResolvedEngine {
            engine: Engine::Tract,
            note: format!("ONNX Runtime unavailable ({e})"),
        }),
        (Err(e), _) => Err(e),
    }
}

fn ort_library(models_dir: &Path) -> Result<PathBuf> {
    match std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
        Some(path) => Ok(PathBuf::from(path)),
        None => crate::models::runtime_library(models_dir),
    }
}

/// A model parsed once, from which plans for concrete input shapes are built.
pub(crate) enum OnnxGraph {
    Tract(tract::OnnxGraph),
    Ort(Box<ort::OnnxGraph>),
}

/// A shape-specialised plan; cheap to clone and share between threads.
#[derive(Clone)]
pub(crate) enum Plan {
    Tract(tract::Plan),
    Ort(ort::Plan),
}

impl OnnxGraph {
    pub(crate) fn parse(engine: Engine, path: &Path, bytes: &[u8]) -> Result<Self> {
        Ok(match engine {
            Engine::Tract => OnnxGraph::Tract(tract::OnnxGraph::parse(path, bytes)?),
            Engine::Ort => OnnxGraph::Ort(Box::new(ort::OnnxGraph::parse(path, bytes)?)),
        })
    }

    /// Specialises the graph to an NCHW f32 input of `shape`.
    pub(crate) fn plan(&self, shape: [usize; 4]) -> Result<Plan> {
        Ok(match self {
            OnnxGraph::Tract(g) => Plan::Tract(g.plan(shape)?),
            OnnxGraph::Ort(g) => Plan::Ort(g.plan(shape)?),
        })
    }
}

impl Plan {
    /// Runs the plan on an NCHW tensor given as flat data; returns every output flattened,
    /// in the model's output order.
    pub(crate) fn run(&self, shape: [usize; 4], data: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        match self {
            Plan::Tract(p) => p.run(shape, data),
            Plan::Ort(p) => p.run(shape, data),
        }
    }
}
