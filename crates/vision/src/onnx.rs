//! The only module that knows an inference engine: loading an ONNX graph and running it on
//! one tensor. tract is the default; the cargo feature `ort` swaps in ONNX Runtime behind the
//! same crate-internal API (`OnnxGraph::parse`, `OnnxGraph::plan`, `Plan::run`).

#[cfg(feature = "ort")]
mod ort;
#[cfg(not(feature = "ort"))]
mod tract;

#[cfg(feature = "ort")]
pub(crate) use self::ort::{OnnxGraph, Plan};
#[cfg(not(feature = "ort"))]
pub(crate) use self::tract::{OnnxGraph, Plan};
