//! The tract back-end (the default): loading an ONNX graph and running it on one tensor.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::{Error, Result};

/// A model parsed once, from which plans for concrete input shapes are built.
pub(crate) struct OnnxGraph {
    model: InferenceModel,
    path: std::path::PathBuf,
}

/// An optimised, shape-specialised plan; cheap to share between threads.
#[derive(Clone)]
pub(crate) struct Plan(Arc<TypedRunnableModel>);

impl OnnxGraph {
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let model = tract_onnx::onnx()
            // YuNet's file carries value_info for 640x640 only; we run other sizes.
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true)
            .model_for_read(&mut Cursor::new(bytes))
            .map_err(|e| Error::ModelLoad {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Ok(OnnxGraph {
            model,
            path: path.to_owned(),
        })
    }

    /// Specialises the graph to an NCHW f32 input of `shape` and optimises it.
    pub(crate) fn plan(&self, shape: [usize; 4]) -> Result<Plan> {
        let load_err = |e: TractError| Error::ModelLoad {
            path: self.path.clone(),
            message: format!("{e:#}"),
        };
        let plan = self
            .model
            .clone()
            .with_input_fact(0, f32::fact(shape).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(load_err)?;
        Ok(Plan(plan))
    }
}

impl Plan {
    /// Runs the plan on an NCHW tensor given as flat data; returns every output flattened.
    pub(crate) fn run(&self, shape: [usize; 4], data: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        let input = tract_ndarray::ArrayD::from_shape_vec(&shape[..], data)
            .map_err(Error::inference)?
            .into_tensor();
        let outputs = self
            .0
            .run(tvec!(input.into_tvalue()))
            .map_err(Error::inference)?;
        outputs
            .iter()
            .map(|o| {
                o.to_plain_array_view::<f32>()
                    .map(|v| v.iter().copied().collect())
                    .map_err(Error::inference)
            })
            .collect()
    }
}
