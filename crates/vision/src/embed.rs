//! Face embeddings with SFace (2021dec): an aligned 112x112 face to a unit 128-d vector.

use std::path::Path;

use image::RgbImage;

use crate::align::ALIGNED_SIDE;
use crate::error::{Error, Result};
use crate::onnx::{Engine, OnnxGraph, Plan};

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

/// SFace, specialised to one 112x112 face. (A batch of two, face and mirror, measured
/// slower in tract than two single runs: 183 ms against 2 x 55 ms.)
pub struct Embedder {
    plan: Plan,
}

const SIDE: usize = ALIGNED_SIDE as usize;
const PLANE: usize = SIDE * SIDE;
const INPUT_SHAPE: [usize; 4] = [1, 3, SIDE, SIDE];

impl Embedder {
    pub(crate) fn from_bytes(engine: Engine, path: &Path, bytes: &[u8]) -> Result<Self> {
        Ok(Embedder {
            plan: OnnxGraph::parse(engine, path, bytes)?.plan(INPUT_SHAPE)?,
        })
    }

    /// Embeds an aligned face, or its mirror image.
    pub fn embed(&self, aligned: &RgbImage, mirrored: bool) -> Result<Embedding> {
        let mut data = vec![0.0f32; 3 * PLANE];
        write_planes(aligned, mirrored, &mut data)?;
        let out = self.plan.run(INPUT_SHAPE, data)?;
        to_embedding(out.first().map(Vec::as_slice).unwrap_or_default())
    }
}

fn to_embedding(values: &[f32]) -> Result<Embedding> {
    Embedding::from_slice(values)
        .ok_or_else(|| Error::Inference(format!("SFace gave {} unusable values", values.len())))
}

/// Writes `aligned` as NCHW RGB 0..255 planes (normalisation is inside the graph).
fn write_planes(aligned: &RgbImage, mirrored: bool, out: &mut [f32]) -> Result<()> {
    if aligned.dimensions() != (ALIGNED_SIDE, ALIGNED_SIDE) {
        return Err(Error::Inference(format!(
            "SFace needs a {SIDE}x{SIDE} face, got {:?}",
            aligned.dimensions()
        )));
    }
    for (i, px) in aligned.as_raw().chunks_exact(3).enumerate() {
        let (y, x) = (i / SIDE, i % SIDE);
        let x = if mirrored { SIDE - 1 - x } else { x };
        for (c, v) in px.iter().enumerate() {
            out[c * PLANE + y * SIDE + x] = f32::from(*v);
        }
    }
    Ok(())
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
