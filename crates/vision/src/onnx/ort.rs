//! The ONNX Runtime engine.
//!
//! ONNX Runtime is not linked: its shared library is opened at run time ([`load`], from the
//! path `super::resolve` found: `ORT_DYLIB_PATH`, or the library `visage models fetch`
//! installed beside the models). Nothing is downloaded at build time.
//!
//! As with tract, a plan is specialised to one input shape: YuNet's file declares a fixed
//! 1x3x640x640 input (and 640x640 value_info), which ORT enforces, so `plan` rewrites the
//! graph (decoded with tract-onnx's protobuf types) to declare exactly the requested input
//! shape, with value_info and output shapes dropped, and ORT re-infers the rest.
//! `Session::run` takes `&mut self` in ort 2.0.0-rc.15, so a plan keeps a small pool of
//! sessions: a run takes an idle session (or builds one more when all are busy) and puts it
//! back afterwards. The pool grows to the largest number of concurrent runs seen on that
//! plan and never serialises callers.
//!
//! Sessions use `VISAGE_ORT_THREADS` intra-op threads (default 1, matching tract's single
//! thread; 0 lets ORT pick) and ORT's full graph optimisation (`ORT_ENABLE_ALL`, the classic
//! "level 3").

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ::ort::environment::Environment;
use ::ort::session::builder::{GraphOptimizationLevel, PrepackedWeights};
use ::ort::session::Session;
use ::ort::value::Tensor;
use prost::Message;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{type_proto, ModelProto};

use crate::error::{Error, Result};

/// Environment variable naming the number of intra-op threads per session.
const THREADS_VAR: &str = "VISAGE_ORT_THREADS";

/// A model parsed once, from which plans for concrete input shapes are built.
pub(crate) struct OnnxGraph {
    model: ModelProto,
    path: PathBuf,
    threads: usize,
    prepacked: PrepackedWeights,
}

/// A pool of sessions for one model; cheap to clone and share between threads.
#[derive(Clone)]
pub(crate) struct Plan(Arc<Pool>);

struct Pool {
    path: PathBuf,
    model: Vec<u8>,
    threads: usize,
    prepacked: PrepackedWeights,
    idle: Mutex<Vec<Session>>,
}

/// The process-wide ORT environment, created (and the library loaded) by the first
/// [`load`]; later calls keep it, whatever path they name.
static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Opens ONNX Runtime's library at `lib` and creates the environment.
pub(super) fn load(lib: &Path) -> Result<(), String> {
    ENV.get_or_init(|| {
        ::ort::init_from(lib)
            .map_err(|e| format!("cannot load ONNX Runtime: {e}"))?
            .with_name("visage")
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
    })
    .as_ref()
    .map(|_| ())
    .map_err(Clone::clone)
}

fn environment() -> Result<&'static Environment, String> {
    match ENV.get() {
        Some(env) => env.as_ref().map_err(Clone::clone),
        None => Err("ONNX Runtime is not loaded".to_owned()),
    }
}

fn intra_threads() -> Result<usize, String> {
    match std::env::var(THREADS_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(1),
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{THREADS_VAR}={s:?} is not a thread count")),
        Err(e) => Err(format!("{THREADS_VAR}: {e}")),
    }
}

impl OnnxGraph {
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let load_err = |message: String| Error::ModelLoad {
            path: path.to_owned(),
            message,
        };
        // Load the library now, so a missing or wrong ONNX Runtime fails at load time.
        environment().map_err(load_err)?;
        let model = ModelProto::decode(bytes).map_err(|e| load_err(e.to_string()))?;
        Ok(OnnxGraph {
            model,
            path: path.to_owned(),
            threads: intra_threads().map_err(load_err)?,
            prepacked: PrepackedWeights::new(),
        })
    }

    /// Specialises the graph to an NCHW f32 input of `shape` and opens a session on it.
    pub(crate) fn plan(&self, shape: [usize; 4]) -> Result<Plan> {
        let pool = Pool {
            path: self.path.clone(),
            model: self
                .specialised(shape)
                .map_err(|message| Error::ModelLoad {
                    path: self.path.clone(),
                    message,
                })?,
            threads: self.threads,
            prepacked: self.prepacked.clone(),
            idle: Mutex::new(Vec::new()),
        };
        // Build the first session now, so a bad model fails here rather than mid-request.
        let first = pool.new_session()?;
        pool.put_back(first);
        Ok(Plan(Arc::new(pool)))
    }

    /// The model's bytes with its input declared as `shape`, without initializers posing as
    /// inputs, without value_info or output shapes that would contradict the shape, and
    /// with constant-slope `PRelu`s made branch-free (see `prelu`).
    fn specialised(&self, shape: [usize; 4]) -> Result<Vec<u8>, String> {
        let mut model = self.model.clone();
        let graph = model.graph.as_mut().ok_or("the model has no graph")?;
        // Initializers listed among the graph's inputs (SFace's file lists every weight)
        // could be overridden at run time, so ONNX Runtime would not fold them (no
        // BatchNorm folded into its convolution): keep only the real inputs.
        let initializers: std::collections::HashSet<String> =
            graph.initializer.iter().map(|t| t.name.clone()).collect();
        graph.input.retain(|i| !initializers.contains(&i.name));
        super::prelu::unbranch(graph);
        if graph.input.len() != 1 {
            return Err(format!(
                "the model has {} inputs, expected 1",
                graph.input.len()
            ));
        }
        let dim = |d: usize| -> Result<Dimension, String> {
            Ok(Dimension {
                denotation: String::new(),
                value: Some(dimension::Value::DimValue(
                    i64::try_from(d).map_err(|e| e.to_string())?,
                )),
            })
        };
        let dims = shape
            .iter()
            .map(|&d| dim(d))
            .collect::<Result<Vec<_>, _>>()?;
        let tensor = match graph.input[0]
            .r#type
            .as_mut()
            .and_then(|t| t.value.as_mut())
        {
            Some(type_proto::Value::TensorType(t)) => t,
            None => return Err("the model's input is not a tensor".to_owned()),
        };
        tensor.shape.get_or_insert_with(Default::default).dim = dims;
        graph.value_info.clear();
        for output in &mut graph.output {
            if let Some(type_proto::Value::TensorType(t)) =
                output.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                t.shape = None;
            }
        }
        Ok(model.encode_to_vec())
    }
}

impl Pool {
    fn new_session(&self) -> Result<Session> {
        let load_err = |message: String| Error::ModelLoad {
            path: self.path.clone(),
            message,
        };
        let env = environment().map_err(load_err)?;
        self.build_session(env).map_err(load_err)
    }

    fn build_session(&self, env: &Environment) -> Result<Session, String> {
        Session::builder(env)
            .map_err(text)?
            .with_intra_threads(self.threads)
            .map_err(text)?
            .with_inter_threads(1)
            .map_err(text)?
            .with_parallel_execution(false)
            .map_err(text)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(text)?
            // Memory patterns plan one buffer layout per input shape and keep it: for the
            // detector's many shapes that held 50 MiB more after an enrolment burst, for no
            // speed measured.
            .with_memory_pattern(false)
            .map_err(text)?
            .with_prepacked_weights(&self.prepacked)
            .map_err(text)?
            .commit_from_memory(&self.model)
            .map_err(text)
    }

    fn take(&self) -> Result<Session> {
        let idle = self
            .idle
            .lock()
            // A poisoned lock only means a thread panicked while pushing or popping; the
            // list is still a valid pool.
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        match idle {
            Some(session) => Ok(session),
            None => self.new_session(),
        }
    }

    fn put_back(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
    }
}

impl Plan {
    /// Runs the model on an NCHW tensor given as flat data; returns every output flattened,
    /// in the model's output order.
    pub(crate) fn run(&self, shape: [usize; 4], data: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        let input = Tensor::from_array((shape, data)).map_err(Error::inference)?;
        let mut session = self.0.take()?;
        let result = run_session(&mut session, input);
        self.0.put_back(session);
        result
    }
}

fn run_session(session: &mut Session, input: Tensor<f32>) -> Result<Vec<Vec<f32>>> {
    let outputs = session
        .run(::ort::inputs![input])
        .map_err(Error::inference)?;
    outputs
        .iter()
        .map(|(_, value)| {
            value
                .try_extract_tensor::<f32>()
                .map(|(_, data)| data.to_vec())
                .map_err(Error::inference)
        })
        .collect()
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
