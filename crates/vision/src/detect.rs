//! Face detection with YuNet (2023mar): boxes, five landmarks and a score per face.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use image::imageops::{self, FilterType};
use image::RgbImage;

use crate::error::{Error, Result};
use crate::onnx::{Engine, OnnxGraph, Plan};

/// Axis-aligned box in source-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl BoundingBox {
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }

    fn iou(&self, other: &BoundingBox) -> f32 {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (self.x + self.width).min(other.x + other.width);
        let y1 = (self.y + self.height).min(other.y + other.height);
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// Five facial landmarks, in YuNet's order: right eye, left eye, nose tip, right mouth
/// corner, left mouth corner (the subject's right and left).
pub type Landmarks = [[f32; 2]; 5];

/// One detected face.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: BoundingBox,
    pub landmarks: Landmarks,
    pub score: f32,
}

impl Detection {
    fn scaled(mut self, scale: f32, dx: f32, dy: f32) -> Self {
        let map = |x: f32, d: f32| x * scale - d;
        self.bbox = BoundingBox {
            x: map(self.bbox.x, dx),
            y: map(self.bbox.y, dy),
            width: self.bbox.width * scale,
            height: self.bbox.height * scale,
        };
        for p in &mut self.landmarks {
            *p = [map(p[0], dx), map(p[1], dy)];
        }
        self
    }
}

/// Detector settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// Faces scoring below this are dropped.
    pub score_threshold: f32,
    /// Overlapping boxes above this IoU are merged (the higher score wins).
    pub nms_iou: f32,
    /// Images are shrunk so that their longer side is at most this before detection.
    pub max_input_side: u32,
    /// Smaller images are enlarged so that their longer side is this: landmarks come out
    /// more precise on faces YuNet sees larger.
    pub min_input_side: u32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            score_threshold: 0.7,
            nms_iou: 0.3,
            max_input_side: 640,
            min_input_side: 500,
        }
    }
}

const STRIDES: [usize; 3] = [8, 16, 32];
/// Input sides are rounded up to this, which bounds how many shape-specialised plans exist.
const SIDE_QUANTUM: u32 = 32;
/// Plans kept at once, the least recently used dropped first: each holds its engine's
/// buffers for its shape (ONNX Runtime keeps an arena per session), and photos of many
/// shapes would otherwise keep one per quantised shape for good.
const MAX_PLANS: usize = 12;

/// The smallest face YuNet finds, in pixels of its input: OpenCV Zoo's model card says it
/// detects faces "between around 10x10 to 300x300" pixels, from its training scheme.
pub(crate) const MIN_FACE_SIDE: u32 = 10;

/// The no-face retry runs only on frames whose long side is at most this many times the
/// short one. A face fills a frame only when the frame is about face-shaped: YuNet's boxes
/// are about 1:1.2, and a loose head-and-shoulders crop is still under 1:2. In a longer
/// frame the face covers at most half the long side, which YuNet finds without a border.
const RETRY_MAX_ASPECT: u32 = 2;

/// The detector's input size for a `w` x `h` image: the long side shrunk to
/// `max_input_side` or enlarged to `min_input_side`, the aspect ratio kept.
fn input_size(w: u32, h: u32, config: &DetectorConfig) -> (u32, u32) {
    let longest = w.max(h);
    let target = longest
        .min(config.max_input_side)
        .max(config.min_input_side.min(config.max_input_side));
    if target == longest {
        return (w, h);
    }
    let scale = f64::from(target) / f64::from(longest);
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).max(1);
    (side(w), side(h))
}

/// Where the retry puts the detector's input: shrunk to half inside a border of a quarter
/// of its long side, so the canvas is no larger than the input. (The same framing as a
/// border of half the long side around the full-resolution image, shrunk to the input
/// size, without ever holding that canvas.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    width: u32,
    height: u32,
    pad: u32,
}

/// The retry for an input of `iw` x `ih`, or `None` when the frame is too elongated for a
/// face to fill it.
fn retry_geometry(iw: u32, ih: u32) -> Option<Retry> {
    let (long, short) = (iw.max(ih), iw.min(ih));
    if short == 0 || long > short.saturating_mul(RETRY_MAX_ASPECT) {
        return None;
    }
    Some(Retry {
        width: iw.div_ceil(2),
        height: ih.div_ceil(2),
        pad: long / 4,
    })
}

pub struct Detector {
    graph: OnnxGraph,
    plans: Mutex<PlanCache<Plan>>,
    config: DetectorConfig,
}

/// Shape-specialised plans by input size, at most [`MAX_PLANS`], with the tick each was
/// last used at.
struct PlanCache<T> {
    plans: HashMap<(u32, u32), (T, u64)>,
    tick: u64,
}

impl<T: Clone> PlanCache<T> {
    fn new() -> Self {
        PlanCache {
            plans: HashMap::new(),
            tick: 0,
        }
    }

    /// The plan for `shape`, made by `make` when absent (dropping the least recently used
    /// one when full).
    fn get_or_make(&mut self, shape: (u32, u32), make: impl FnOnce() -> Result<T>) -> Result<T> {
        self.tick += 1;
        let tick = self.tick;
        if let Some((plan, used)) = self.plans.get_mut(&shape) {
            *used = tick;
            return Ok(plan.clone());
        }
        let plan = make()?;
        if self.plans.len() >= MAX_PLANS {
            let oldest = self
                .plans
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(shape, _)| *shape);
            if let Some(oldest) = oldest {
                self.plans.remove(&oldest);
            }
        }
        self.plans.insert(shape, (plan.clone(), tick));
        Ok(plan)
    }
}

impl Detector {
    pub(crate) fn from_bytes(
        engine: Engine,
        path: &Path,
        bytes: &[u8],
        config: DetectorConfig,
    ) -> Result<Self> {
        Ok(Detector {
            graph: OnnxGraph::parse(engine, path, bytes)?,
            plans: Mutex::new(PlanCache::new()),
            config,
        })
    }

    /// All faces in `img`, best score first. When nothing is found in a frame about as tall
    /// as wide, the image is retried inside a border: YuNet misses faces that fill the whole
    /// frame (a crop tighter than SFace's 112x112 alignment). Both passes run at the
    /// detector's input scale, so the cost is bounded by what was decoded, whatever the
    /// image's shape.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let (w, h) = img.dimensions();
        let longest = w.max(h);
        let (iw, ih) = input_size(w, h, &self.config);
        // Input pixels to source pixels; one factor for both axes, as the resize kept the
        // aspect ratio (to rounding).
        let back = longest as f32 / iw.max(ih) as f32;
        let shrunk =
            (iw.max(ih) < longest).then(|| imageops::resize(img, iw, ih, FilterType::Triangle));
        let faces = match &shrunk {
            Some(shrunk) => self.infer(shrunk)?,
            // Enlarged straight into the detector's planes: no enlarged image is held.
            None if iw.max(ih) > longest => {
                self.infer_planes(iw, ih, |pw, ph| enlarged_bgr_planes(img, iw, ih, pw, ph))?
            }
            None => self.infer(img)?,
        };
        if !faces.is_empty() {
            return Ok(faces
                .into_iter()
                .map(|d| d.scaled(back, 0.0, 0.0))
                .collect());
        }
        let Some(retry) = retry_geometry(iw, ih) else {
            return Ok(faces);
        };
        // From the shrunk image when there is one: a large photo is not read in full again.
        let small = imageops::resize(
            shrunk.as_ref().unwrap_or(img),
            retry.width,
            retry.height,
            FilterType::Triangle,
        );
        let mut canvas = RgbImage::new(retry.width + 2 * retry.pad, retry.height + 2 * retry.pad);
        imageops::replace(
            &mut canvas,
            &small,
            i64::from(retry.pad),
            i64::from(retry.pad),
        );
        let back = longest as f32 / retry.width.max(retry.height) as f32;
        let shift = retry.pad as f32 * back;
        Ok(self
            .infer(&canvas)?
            .into_iter()
            .map(|d| d.scaled(back, shift, shift))
            .collect())
    }

    /// YuNet on an image already at its input scale; boxes in that image's pixels.
    fn infer(&self, input: &RgbImage) -> Result<Vec<Detection>> {
        let (iw, ih) = input.dimensions();
        self.infer_planes(iw, ih, |pw, ph| bgr_planes(input, pw, ph))
    }

    /// YuNet on an `iw` x `ih` input that `planes` writes into its padded `pw` x `ph` planes.
    fn infer_planes(
        &self,
        iw: u32,
        ih: u32,
        planes: impl FnOnce(u32, u32) -> Vec<f32>,
    ) -> Result<Vec<Detection>> {
        let pw = iw.div_ceil(SIDE_QUANTUM) * SIDE_QUANTUM;
        let ph = ih.div_ceil(SIDE_QUANTUM) * SIDE_QUANTUM;
        let shape = [1, 3, ph as usize, pw as usize];
        let outputs = self.plan_for(pw, ph)?.run(shape, planes(pw, ph))?;
        let faces = self.decode(&outputs, pw as usize, ph as usize)?;
        Ok(nms(faces, self.config.nms_iou))
    }

    fn plan_for(&self, w: u32, h: u32) -> Result<Plan> {
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still a valid cache.
        self.plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_make((w, h), || self.graph.plan([1, 3, h as usize, w as usize]))
    }

    /// Turns YuNet's twelve outputs (cls, obj, bbox, kps for strides 8, 16, 32) into faces.
    fn decode(&self, out: &[Vec<f32>], w: usize, h: usize) -> Result<Vec<Detection>> {
        if out.len() != 12 {
            return Err(Error::Inference(format!(
                "YuNet gave {} outputs, expected 12",
                out.len()
            )));
        }
        let mut faces = Vec::new();
        for (i, &stride) in STRIDES.iter().enumerate() {
            let cols = w / stride;
            let rows = h / stride;
            let (cls, obj, bbox, kps) = (&out[i], &out[i + 3], &out[i + 6], &out[i + 9]);
            let n = rows * cols;
            if cls.len() != n || obj.len() != n || bbox.len() != 4 * n || kps.len() != 10 * n {
                return Err(Error::Inference(format!(
                    "YuNet output sizes do not match a {w}x{h} input at stride {stride}"
                )));
            }
            let s = stride as f32;
            for idx in 0..n {
                let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
                if score < self.config.score_threshold {
                    continue;
                }
                let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
                let b = &bbox[4 * idx..4 * idx + 4];
                let cx = (c + b[0]) * s;
                let cy = (r + b[1]) * s;
                let bw = b[2].exp() * s;
                let bh = b[3].exp() * s;
                let k = &kps[10 * idx..10 * idx + 10];
                let mut landmarks = [[0.0; 2]; 5];
                for (n, p) in landmarks.iter_mut().enumerate() {
                    *p = [(k[2 * n] + c) * s, (k[2 * n + 1] + r) * s];
                }
                faces.push(Detection {
                    bbox: BoundingBox {
                        x: cx - bw / 2.0,
                        y: cy - bh / 2.0,
                        width: bw,
                        height: bh,
                    },
                    landmarks,
                    score,
                });
            }
        }
        Ok(faces)
    }
}

/// NCHW, BGR, raw 0..255, zero-padded on the right and bottom to `pw` x `ph`.
fn bgr_planes(img: &RgbImage, pw: u32, ph: u32) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (pw * ph) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let (b, rest) = data.split_at_mut(plane);
    let (g, r) = rest.split_at_mut(plane);
    let src = img.as_raw();
    for y in 0..h as usize {
        let row = &src[y * w as usize * 3..(y + 1) * w as usize * 3];
        let off = y * pw as usize;
        for (x, px) in row.chunks_exact(3).enumerate() {
            r[off + x] = f32::from(px[0]);
            g[off + x] = f32::from(px[1]);
            b[off + x] = f32::from(px[2]);
        }
    }
    data
}

/// `img` enlarged to `iw` x `ih` by bilinear interpolation (what a triangle filter is when
/// enlarging), written straight into [`bgr_planes`]' layout.
fn enlarged_bgr_planes(img: &RgbImage, iw: u32, ih: u32, pw: u32, ph: u32) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (pw * ph) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    if w == 0 || h == 0 {
        return data;
    }
    // For each output column (row): the two source columns (rows) and the second's weight,
    // pixel centres aligned.
    let taps = |out: u32, src: u32| -> Vec<(usize, usize, f32)> {
        let ratio = src as f32 / out as f32;
        let last = src as usize - 1;
        (0..out)
            .map(|o| {
                let x = ((o as f32 + 0.5) * ratio - 0.5).max(0.0);
                let x0 = (x.floor() as usize).min(last);
                (x0, (x0 + 1).min(last), x - x0 as f32)
            })
            .collect()
    };
    let (columns, rows) = (taps(iw, w), taps(ih, h));
    let src = img.as_raw();
    let stride = w as usize * 3;
    for (oy, &(y0, y1, fy)) in rows.iter().enumerate() {
        let (top, bottom) = (&src[y0 * stride..][..stride], &src[y1 * stride..][..stride]);
        let off = oy * pw as usize;
        for (ox, &(x0, x1, fx)) in columns.iter().enumerate() {
            for c in 0..3 {
                let lerp = |row: &[u8]| {
                    let a = f32::from(row[x0 * 3 + c]);
                    a + (f32::from(row[x1 * 3 + c]) - a) * fx
                };
                let (t, b) = (lerp(top), lerp(bottom));
                // RGB in, BGR planes out.
                data[(2 - c) * plane + off + ox] = t + (b - t) * fy;
            }
        }
    }
    data
}

fn nms(mut faces: Vec<Detection>, iou: f32) -> Vec<Detection> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| k.bbox.iou(&face.bbox) <= iou) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Detection {
        Detection {
            bbox: BoundingBox {
                x,
                y: 0.0,
                width: 10.0,
                height: 10.0,
            },
            landmarks: [[0.0; 2]; 5],
            score,
        }
    }

    #[test]
    fn the_plan_cache_keeps_the_most_recently_used_shapes() {
        let mut cache = PlanCache::new();
        let mut made = 0;
        let mut get = |cache: &mut PlanCache<u32>, side: u32| {
            cache
                .get_or_make((side, side), || {
                    made += 1;
                    Ok(side)
                })
                .expect("made")
        };
        for side in 0..MAX_PLANS as u32 {
            assert_eq!(get(&mut cache, side), side);
        }
        // Shape 0 used again, then one shape too many: 1, the least recently used, goes.
        get(&mut cache, 0);
        get(&mut cache, 100);
        assert_eq!(cache.plans.len(), MAX_PLANS);
        assert!(cache.plans.contains_key(&(0, 0)) && !cache.plans.contains_key(&(1, 1)));
        get(&mut cache, 1);
        assert_eq!(
            made,
            MAX_PLANS + 2,
            "only the new and the dropped shapes were made"
        );
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let kept = nms(vec![face(0.0, 0.8), face(1.0, 0.9), face(50.0, 0.75)], 0.3);
        let xs: Vec<f32> = kept.iter().map(|d| d.bbox.x).collect();
        assert_eq!(xs, vec![1.0, 50.0]);
    }

    #[test]
    fn the_retry_canvas_is_never_larger_than_the_detector_input() {
        let config = DetectorConfig::default();
        let sides = [
            1, 2, 9, 10, 63, 112, 250, 499, 500, 640, 641, 1000, 4000, 11_999, 12_000,
        ];
        for w in sides {
            for h in sides {
                let (iw, ih) = input_size(w, h, &config);
                assert!(iw.max(ih) <= config.max_input_side, "{w}x{h} -> {iw}x{ih}");
                if let Some(r) = retry_geometry(iw, ih) {
                    let (cw, ch) = (r.width + 2 * r.pad, r.height + 2 * r.pad);
                    assert!(cw <= iw.max(ih) && ch <= iw.max(ih), "{w}x{h}: {r:?}");
                }
            }
        }
    }

    #[test]
    fn the_retry_frames_the_input_as_a_border_of_half_its_long_side_would() {
        let config = DetectorConfig::default();
        // A 112x112 crop is enlarged to 500x500; the retry puts it at 250 px in the middle.
        let (iw, ih) = input_size(112, 112, &config);
        assert_eq!((iw, ih), (500, 500));
        let expected = Retry {
            width: 250,
            height: 250,
            pad: 125,
        };
        assert_eq!(retry_geometry(iw, ih), Some(expected));
        // A large portrait photo is shrunk to 480x640 and retried at 240x320 in 480x640.
        assert_eq!(input_size(3000, 4000, &config), (480, 640));
        let expected = Retry {
            width: 240,
            height: 320,
            pad: 160,
        };
        assert_eq!(retry_geometry(480, 640), Some(expected));
    }

    #[test]
    fn elongated_frames_are_not_retried() {
        assert!(retry_geometry(640, 320).is_some());
        assert_eq!(retry_geometry(640, 319), None);
        assert_eq!(retry_geometry(319, 640), None);
        let (iw, ih) = input_size(1, 11_999, &DetectorConfig::default());
        assert_eq!((iw, ih), (1, 640));
        assert_eq!(retry_geometry(iw, ih), None);
        assert_eq!(retry_geometry(0, 0), None);
    }

    #[test]
    fn enlarging_into_the_planes_matches_a_triangle_resize() {
        // A smooth gradient with a bright square: the enlarged planes must match the image
        // crate's triangle-filter resize of the same image (which rounds to whole values).
        let img = RgbImage::from_fn(50, 40, |x, y| {
            let spot = if (20..30).contains(&x) && (10..20).contains(&y) {
                120
            } else {
                0
            };
            image::Rgb([(x * 2 + spot) as u8, (y * 3) as u8, (x + y + spot) as u8])
        });
        let (iw, ih) = (125, 100);
        let ours = enlarged_bgr_planes(&img, iw, ih, 128, 128);
        let reference = bgr_planes(
            &imageops::resize(&img, iw, ih, FilterType::Triangle),
            128,
            128,
        );
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1.0, "differs by {worst}");
        // The padding stays zero.
        assert_eq!(ours[127], 0.0);
        assert_eq!(ours[128 * 127], 0.0);
    }

    #[test]
    fn bgr_planes_swaps_channels_and_pads_with_zero() {
        let img = RgbImage::from_pixel(1, 1, image::Rgb([10, 20, 30]));
        let data = bgr_planes(&img, 2, 1);
        assert_eq!(data, vec![30.0, 0.0, 20.0, 0.0, 10.0, 0.0]);
    }
}
