//! Face embeddings with SFace (2021dec): an aligned 112x112 face to a unit 128-d vector.

use std::path::Path;

use image::RgbImage;

use crate::align::ALIGNED_SIDE;
use crate::error::{Error, Result};
use crate::onnx::{OnnxGraph, Plan};

pub const EMBEDDING_DIM: usize = 128;

/// An L2-normalised SFace embedding; the cosine of two is their dot product.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding([f32; EMBEDDING_DIM]);

impl Embedding {
    /// Normalises `values`; `None` unless there are exactly 128 finite values, not all zero.
    pub fn from_slice(values: &[f32]) -> Option<Embedding> {
        let array: [f32; EMBEDDING_DIM] = values.try_into().ok()?;
        let norm = array.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm < 1e-12 {
            return None;
        }
        Some(Embedding(array.map(|v| v / norm)))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// The normalised mean of several embeddings (of one face seen several ways).
    pub fn mean<'a>(items: impl IntoIterator<Item = &'a Embedding>) -> Option<Embedding> {
        let mut sum = [0.0f32; EMBEDDING_DIM];
        for e in items {
            for (s, v) in sum.iter_mut().zip(&e.0) {
                *s += v;
            }
        }
        Embedding::from_slice(&sum)
    }
}

pub struct Embedder {
    plan: Plan,
}

const INPUT_SHAPE: [usize; 4] = [1, 3, ALIGNED_SIDE as usize, ALIGNED_SIDE as usize];

impl Embedder {
    pub(crate) fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        Ok(Embedder {
            plan: OnnxGraph::parse(path, bytes)?.plan(INPUT_SHAPE)?,
        })
    }

    /// Embeds an aligned face; `mirrored` embeds its horizontal flip instead.
    pub fn embed(&self, aligned: &RgbImage, mirrored: bool) -> Result<Embedding> {
        if aligned.dimensions() != (ALIGNED_SIDE, ALIGNED_SIDE) {
            return Err(Error::Inference(format!(
                "SFace needs a {ALIGNED_SIDE}x{ALIGNED_SIDE} face, got {:?}",
                aligned.dimensions()
            )));
        }
        let side = ALIGNED_SIDE as usize;
        let plane = side * side;
        let mut data = vec![0.0f32; 3 * plane];
        for (i, px) in aligned.as_raw().chunks_exact(3).enumerate() {
            let (y, x) = (i / side, i % side);
            let x = if mirrored { side - 1 - x } else { x };
            for (c, v) in px.iter().enumerate() {
                data[c * plane + y * side + x] = f32::from(*v);
            }
        }
        let out = self.plan.run(INPUT_SHAPE, data)?;
        let first = out
            .first()
            .ok_or_else(|| Error::Inference("SFace gave no output".into()))?;
        Embedding::from_slice(first)
            .ok_or_else(|| Error::Inference(format!("SFace gave {} values", first.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_unit_length_and_validated() {
        let e = Embedding::from_slice(&[2.0; EMBEDDING_DIM]).expect("valid");
        assert!((e.cosine(&e) - 1.0).abs() < 1e-5);
        assert!(Embedding::from_slice(&[0.0; EMBEDDING_DIM]).is_none());
        assert!(Embedding::from_slice(&[1.0; 3]).is_none());
        assert!(Embedding::from_slice(&[f32::NAN; EMBEDDING_DIM]).is_none());
    }
}
