//! Passive liveness (single-image presentation-attack detection) with upstream's MiniFASNet
//! pair: MiniFASNetV2 on the face box scaled 2.7x, MiniFASNetV1SE on it scaled 4.0x, each an
//! 80x80 BGR crop in raw 0..255; the live score is the mean of their class-1 probabilities.
//! A print/replay filter, not a certified PAD system (`docs/liveness.md`).

use std::path::Path;

use image::RgbImage;

use crate::detect::{BoundingBox, Detection};
use crate::error::{Error, Result};
use crate::models::{read_verified, LIVENESS_FILES};
use crate::onnx::{Engine, OnnxGraph, Plan};

const SIDE: usize = 80;
const INPUT_SHAPE: [usize; 4] = [1, 3, SIDE, SIDE];
/// How much context around the face box each model was trained on, in `LIVENESS_FILES` order.
const CROP_SCALES: [f32; 2] = [2.7, 4.0];
const LIVE_CLASS: usize = 1;
/// Faces narrower than this are not scored. Measured with `visage eval liveness --sweep`:
/// shrinking live faces, the first one to fall under 0.6 did so at 24 px wide (0.16; 0.80 at
/// 31 px); the 2.7x context of a 30 px face is already the models' native 80 px.
pub const MIN_FACE_WIDTH: f32 = 40.0;

/// The two models, loaded once.
pub struct Liveness {
    plans: [Plan; 2],
}

impl Liveness {
    /// `Ok(None)` when the liveness files are not installed (liveness is optional); a file
    /// present with the wrong hash is still an error.
    pub(crate) fn load(engine: Engine, models_dir: &Path) -> Result<Option<Self>> {
        let mut plans = Vec::with_capacity(2);
        for file in LIVENESS_FILES {
            let bytes = match read_verified(models_dir, file) {
                Ok(b) => b,
                Err(Error::ModelMissing { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            plans
                .push(OnnxGraph::parse(engine, &models_dir.join(file), &bytes)?.plan(INPUT_SHAPE)?);
        }
        let [v2, v1se]: [Plan; 2] = plans
            .try_into()
            .map_err(|_| Error::Inference("liveness models did not load".into()))?;
        Ok(Some(Liveness { plans: [v2, v1se] }))
    }

    /// The live score of one detected face, 0..1 (1 = live); `FaceTooSmall` under
    /// [`MIN_FACE_WIDTH`].
    pub fn score(&self, img: &RgbImage, face: &Detection) -> Result<f32> {
        crate::stage::timed(crate::stage::LIVENESS, || self.score_untimed(img, face))
    }

    fn score_untimed(&self, img: &RgbImage, face: &Detection) -> Result<f32> {
        if face.bbox.width < MIN_FACE_WIDTH {
            return Err(Error::FaceTooSmall {
                width: face.bbox.width,
                min: MIN_FACE_WIDTH,
            });
        }
        let mut sum = 0.0;
        for (plan, scale) in self.plans.iter().zip(CROP_SCALES) {
            let input = bgr_planes(
                img,
                context_box(&face.bbox, scale, img.width(), img.height()),
            );
            let logits = plan.run(INPUT_SHAPE, input)?;
            sum += live_probability(logits.first().map(Vec::as_slice).unwrap_or_default())?;
        }
        Ok(sum / CROP_SCALES.len() as f32)
    }
}

/// A pixel rectangle `[x0, x1] x [y0, y1]`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

/// The face box scaled around its centre (never beyond what the image can hold), then
/// shifted, not clipped, back inside the image: the model always sees the same context.
fn context_box(b: &BoundingBox, scale: f32, w: u32, h: u32) -> Rect {
    let (max_x, max_y) = ((w.max(1) - 1) as f32, (h.max(1) - 1) as f32);
    let bw = b.width.max(1.0);
    let bh = b.height.max(1.0);
    let scale = scale.min(max_y / bh).min(max_x / bw);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (b.x + bw / 2.0, b.y + bh / 2.0);
    let shift = |lo: f32, hi: f32, max: f32| {
        let (lo, hi) = if lo < 0.0 { (0.0, hi - lo) } else { (lo, hi) };
        if hi > max {
            ((lo - (hi - max)).max(0.0), max)
        } else {
            (lo, hi)
        }
    };
    let (x0, x1) = shift(cx - nw / 2.0, cx + nw / 2.0, max_x);
    let (y0, y1) = shift(cy - nh / 2.0, cy + nh / 2.0, max_y);
    // Whole pixels, as the reference implementation crops.
    Rect {
        x0: x0.trunc(),
        y0: y0.trunc(),
        x1: x1.trunc(),
        y1: y1.trunc(),
    }
}

/// The rectangle resized to 80x80 with bilinear sampling (pixel centres aligned, as OpenCV's
/// INTER_LINEAR, which the models were trained with), as NCHW BGR planes in 0..255.
fn bgr_planes(img: &RgbImage, r: Rect) -> Vec<f32> {
    let plane = SIDE * SIDE;
    let mut out = vec![0.0f32; 3 * plane];
    let (w, h) = (r.x1 - r.x0 + 1.0, r.y1 - r.y0 + 1.0);
    let (sx, sy) = (w / SIDE as f32, h / SIDE as f32);
    let (max_x, max_y) = (
        img.width().saturating_sub(1),
        img.height().saturating_sub(1),
    );
    for dy in 0..SIDE {
        let fy = ((dy as f32 + 0.5) * sy - 0.5).max(0.0) + r.y0;
        let y0 = (fy.floor() as u32).min(max_y);
        let y1 = (y0 + 1).min(max_y);
        let ty = fy - fy.floor();
        for dx in 0..SIDE {
            let fx = ((dx as f32 + 0.5) * sx - 0.5).max(0.0) + r.x0;
            let x0 = (fx.floor() as u32).min(max_x);
            let x1 = (x0 + 1).min(max_x);
            let tx = fx - fx.floor();
            let (a, b) = (img.get_pixel(x0, y0).0, img.get_pixel(x1, y0).0);
            let (c, d) = (img.get_pixel(x0, y1).0, img.get_pixel(x1, y1).0);
            for ch in 0..3 {
                let top = f32::from(a[ch]) * (1.0 - tx) + f32::from(b[ch]) * tx;
                let bottom = f32::from(c[ch]) * (1.0 - tx) + f32::from(d[ch]) * tx;
                // RGB channel `ch` goes to BGR plane `2 - ch`.
                out[(2 - ch) * plane + dy * SIDE + dx] = top * (1.0 - ty) + bottom * ty;
            }
        }
    }
    out
}

fn live_probability(logits: &[f32]) -> Result<f32> {
    if logits.len() != 3 || logits.iter().any(|v| !v.is_finite()) {
        return Err(Error::Inference(format!(
            "liveness model gave {} unusable logits",
            logits.len()
        )));
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    Ok(exp[LIVE_CLASS] / exp.iter().sum::<f32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(x: f32, y: f32, width: f32, height: f32) -> BoundingBox {
        BoundingBox {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn context_is_scaled_around_the_face_and_shifted_inside() {
        // Centred: 100 px face, 2.7x = 270 px around the centre (200, 200).
        let r = context_box(&bbox(150.0, 150.0, 100.0, 100.0), 2.7, 1000, 1000);
        assert_eq!((r.x0, r.y0, r.x1, r.y1), (65.0, 65.0, 335.0, 335.0));
        // Near the top-left corner: shifted right and down, same size.
        let r = context_box(&bbox(0.0, 10.0, 100.0, 100.0), 2.7, 1000, 1000);
        assert_eq!((r.x0, r.y0), (0.0, 0.0));
        assert_eq!((r.x1, r.y1), (270.0, 270.0));
        // Larger than the image allows: the scale shrinks to fit.
        let r = context_box(&bbox(50.0, 50.0, 100.0, 100.0), 4.0, 300, 200);
        assert!(
            r.x0 >= 0.0 && r.y0 >= 0.0 && r.x1 <= 299.0 && r.y1 <= 199.0,
            "{r:?}"
        );
        assert!((r.y1 - r.y0 - 199.0).abs() <= 1.0, "{r:?}");
    }

    #[test]
    fn probabilities_are_a_softmax_of_three_logits() {
        let p = live_probability(&[0.0, 0.0, 0.0]).expect("valid");
        assert!((p - 1.0 / 3.0).abs() < 1e-6);
        assert!(live_probability(&[-10.0, 10.0, -10.0]).expect("valid") > 0.999);
        assert!(live_probability(&[1.0, 2.0]).is_err());
        assert!(live_probability(&[f32::NAN, 0.0, 0.0]).is_err());
    }

    #[test]
    fn planes_are_bgr_and_resampled() {
        let img = RgbImage::from_fn(160, 160, |x, _| image::Rgb([x as u8, 100, 200]));
        let planes = bgr_planes(
            &img,
            Rect {
                x0: 0.0,
                y0: 0.0,
                x1: 159.0,
                y1: 159.0,
            },
        );
        let plane = SIDE * SIDE;
        assert_eq!(planes[0], 200.0, "blue first");
        assert_eq!(planes[plane], 100.0);
        // Red ramps with x: 2x downsampling averages pixels 2k and 2k+1.
        assert!(
            (planes[2 * plane + 10] - 20.5).abs() < 1e-4,
            "{}",
            planes[2 * plane + 10]
        );
    }
}
