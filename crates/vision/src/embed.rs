//! Face embeddings: an aligned face to a unit vector, by the model an
//! [`EmbedderDescriptor`] describes (SFace 2021dec, 128-d, by default).

use std::path::Path;

use image::RgbImage;

use crate::descriptor::{ColourOrder, EmbedderDescriptor, MAX_EMBEDDING_DIM};
use crate::error::{Error, Result};
use crate::models::sha256_hex;
use crate::onnx::{Engine, OnnxGraph, Plan};

/// SFace's dimension (the default embedder's).
pub const EMBEDDING_DIM: usize = 128;

/// An L2-normalised embedding; the cosine of two of the same model is their dot product.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Box<[f32]>);

impl Embedding {
    /// Normalises `values`; `None` unless there are 1 to [`MAX_EMBEDDING_DIM`] finite
    /// values, not all zero.
    pub fn from_slice(values: &[f32]) -> Option<Embedding> {
        if values.is_empty() || values.len() > MAX_EMBEDDING_DIM {
            return None;
        }
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm < 1e-12 {
            return None;
        }
        Some(Embedding(values.iter().map(|v| v / norm).collect()))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    pub fn dimension(&self) -> usize {
        self.0.len()
    }

    /// The dot product; 0 for embeddings of different dimensions (of different models,
    /// which are never compared).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }

    /// The normalised mean of several embeddings (of one face seen several ways, by one
    /// model); `None` when they are none, of different dimensions, or cancel out.
    pub fn mean<'a>(items: impl IntoIterator<Item = &'a Embedding>) -> Option<Embedding> {
        let mut sum: Option<Vec<f32>> = None;
        for e in items {
            let sum = sum.get_or_insert_with(|| vec![0.0; e.0.len()]);
            if sum.len() != e.0.len() {
                return None;
            }
            for (s, v) in sum.iter_mut().zip(&e.0) {
                *s += v;
            }
        }
        Embedding::from_slice(&sum?)
    }
}

/// One embedding model, specialised to one face at its input size. (A batch of two, face
/// and mirror, measured slower in tract than two single runs: 183 ms against 2 x 55 ms.)
pub struct Embedder {
    plan: Plan,
    descriptor: EmbedderDescriptor,
}

impl Embedder {
    /// Loads the model `descriptor` names from `path`, refusing it unless its sha256 and
    /// the dimension of what it gives match the descriptor.
    pub(crate) fn load(
        engine: Engine,
        descriptor: &EmbedderDescriptor,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Self> {
        let actual = sha256_hex(bytes);
        if actual != descriptor.sha256 {
            return Err(Error::DescriptorHashMismatch {
                model: descriptor.id.clone(),
                path: path.to_path_buf(),
                expected: descriptor.sha256.clone(),
                actual,
            });
        }
        let side = descriptor.input_size as usize;
        let embedder = Embedder {
            plan: OnnxGraph::parse(engine, path, bytes)?.plan([1, 3, side, side])?,
            descriptor: descriptor.clone(),
        };
        let grey = RgbImage::from_pixel(
            descriptor.input_size,
            descriptor.input_size,
            [128; 3].into(),
        );
        let given = embedder.raw(&grey, false)?.len();
        if given != descriptor.dimension {
            return Err(Error::DescriptorDimensionMismatch {
                model: descriptor.id.clone(),
                declared: descriptor.dimension,
                actual: given,
            });
        }
        Ok(embedder)
    }

    pub fn descriptor(&self) -> &EmbedderDescriptor {
        &self.descriptor
    }

    /// Embeds an aligned face, or its mirror image.
    pub fn embed(&self, aligned: &RgbImage, mirrored: bool) -> Result<Embedding> {
        let values = self.raw(aligned, mirrored)?;
        if values.len() != self.descriptor.dimension {
            return Err(Error::DescriptorDimensionMismatch {
                model: self.descriptor.id.clone(),
                declared: self.descriptor.dimension,
                actual: values.len(),
            });
        }
        Embedding::from_slice(&values)
            .ok_or_else(|| Error::Inference(format!("{} gave unusable values", self.descriptor.id)))
    }

    /// The model's first output for one face.
    fn raw(&self, aligned: &RgbImage, mirrored: bool) -> Result<Vec<f32>> {
        let side = self.descriptor.input_size as usize;
        let mut data = vec![0.0f32; 3 * side * side];
        write_planes(aligned, &self.descriptor, mirrored, &mut data)?;
        let out = self.plan.run([1, 3, side, side], data)?;
        Ok(out.into_iter().next().unwrap_or_default())
    }
}

/// Writes `aligned` as NCHW planes in the model's colour order, each value scaled as
/// `(pixel - mean) / std`.
fn write_planes(
    aligned: &RgbImage,
    d: &EmbedderDescriptor,
    mirrored: bool,
    out: &mut [f32],
) -> Result<()> {
    let side = d.input_size as usize;
    let plane = side * side;
    if aligned.dimensions() != (d.input_size, d.input_size) {
        return Err(Error::Inference(format!(
            "{} needs a {side}x{side} face, got {:?}",
            d.id,
            aligned.dimensions()
        )));
    }
    let order = match d.colour_order {
        ColourOrder::Rgb => [0, 1, 2],
        ColourOrder::Bgr => [2, 1, 0],
    };
    for (i, px) in aligned.as_raw().chunks_exact(3).enumerate() {
        let (y, x) = (i / side, i % side);
        let x = if mirrored { side - 1 - x } else { x };
        for (plane_no, &c) in order.iter().enumerate() {
            let v = (f32::from(px[c]) - d.mean[plane_no]) / d.std[plane_no];
            out[plane_no * plane + y * side + x] = v;
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
        assert!(Embedding::from_slice(&[f32::NAN; EMBEDDING_DIM]).is_none());
        assert_eq!(
            Embedding::from_slice(&[1.0; 3]).map(|e| e.dimension()),
            Some(3)
        );
        assert!(Embedding::from_slice(&[1.0; MAX_EMBEDDING_DIM + 1]).is_none());
        assert!(Embedding::from_slice(&[]).is_none());
    }

    #[test]
    fn embeddings_of_different_dimensions_neither_compare_nor_average() {
        let a = Embedding::from_slice(&[1.0; 128]).expect("valid");
        let b = Embedding::from_slice(&[1.0; 512]).expect("valid");
        assert_eq!(a.cosine(&b), 0.0);
        assert!(Embedding::mean([&a, &b]).is_none());
        assert!(Embedding::mean([&a, &a]).is_some());
    }
}
