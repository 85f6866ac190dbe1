//! Alignment: the least-squares similarity transform (rotation, uniform scale,
//! translation; no reflection) from five landmarks to SFace's 112x112 template, and the
//! bilinear warp that cuts the aligned face out of the image.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use crate::detect::Landmarks;

pub const ALIGNED_SIDE: u32 = 112;

/// Where SFace expects the five landmarks in its 112x112 input.
pub(crate) const TEMPLATE: Landmarks = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// Where one embedding model wants the face: the five landmarks' places in its square input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AlignTarget {
    pub template: Landmarks,
    pub side: u32,
}

/// SFace's target, the 112x112 five-point template.
pub(crate) const SFACE_TARGET: AlignTarget = AlignTarget {
    template: TEMPLATE,
    side: ALIGNED_SIDE,
};

/// `dst = [a -b; b a] * src + [tx ty]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// The least-squares fit of `src` onto `dst` (Umeyama's solution, which for 2-D
    /// similarities has this closed form).
    pub fn fit(src: &Landmarks, dst: &Landmarks) -> Option<Similarity> {
        let n = src.len() as f64;
        let mean = |pts: &Landmarks, i: usize| pts.iter().map(|p| f64::from(p[i])).sum::<f64>() / n;
        let (sx, sy, dx, dy) = (mean(src, 0), mean(src, 1), mean(dst, 0), mean(dst, 1));
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (px, py) = (f64::from(s[0]) - sx, f64::from(s[1]) - sy);
            let (qx, qy) = (f64::from(d[0]) - dx, f64::from(d[1]) - dy);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        if den < 1e-9 {
            return None;
        }
        let (a, b) = (num_a / den, num_b / den);
        Some(Similarity {
            a,
            b,
            tx: dx - (a * sx - b * sy),
            ty: dy - (b * sx + a * sy),
        })
    }

    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

/// Cuts the face with `landmarks` out of `img`, aligned to the 112x112 template.
/// Pixels outside the image are black, as in OpenCV's `warpAffine`.
pub fn align_face(img: &RgbImage, landmarks: &Landmarks) -> Option<RgbImage> {
    align_face_to(img, landmarks, &SFACE_TARGET)
}

/// Cuts the face with `landmarks` out of `img`, aligned to `target`.
pub(crate) fn align_face_to(
    img: &RgbImage,
    landmarks: &Landmarks,
    target: &AlignTarget,
) -> Option<RgbImage> {
    let fit = Similarity::fit(landmarks, &target.template)?;
    // When the face is much larger than the output, sampling it bilinearly aliases; shrink the
    // surrounding region with a proper filter first so the warp works near 1:1.
    let shrink = 1.0 / fit.scale();
    if shrink > 1.5 {
        let (region, origin) = face_region(img, &fit, target.side);
        let factor = 1.0 / shrink;
        let rw = ((f64::from(region.width()) * factor).round() as u32).max(1);
        let rh = ((f64::from(region.height()) * factor).round() as u32).max(1);
        let small = imageops::resize(&region, rw, rh, FilterType::Triangle);
        let kx = f64::from(rw) / f64::from(region.width());
        let ky = f64::from(rh) / f64::from(region.height());
        let mut moved = *landmarks;
        for p in &mut moved {
            *p = [
                ((f64::from(p[0]) - origin.0) * kx) as f32,
                ((f64::from(p[1]) - origin.1) * ky) as f32,
            ];
        }
        let fit = Similarity::fit(&moved, &target.template)?;
        return Some(warp(&small, &fit, target.side));
    }
    Some(warp(img, &fit, target.side))
}

/// The part of `img` that maps into the `side` x `side` output, with a margin for the filter.
fn face_region(img: &RgbImage, fit: &Similarity, side: u32) -> (RgbImage, (f64, f64)) {
    let inv = fit.inverse();
    let side = f64::from(side);
    let corners = [[0.0, 0.0], [side, 0.0], [0.0, side], [side, side]].map(|c| inv.apply(c));
    let margin = 4.0 / fit.scale();
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let clampx = |v: f64| v.clamp(0.0, w);
    let clampy = |v: f64| v.clamp(0.0, h);
    let x0 = clampx(corners.iter().map(|c| c[0]).fold(f64::MAX, f64::min) - margin).floor();
    let y0 = clampy(corners.iter().map(|c| c[1]).fold(f64::MAX, f64::min) - margin).floor();
    let x1 = clampx(corners.iter().map(|c| c[0]).fold(f64::MIN, f64::max) + margin).ceil();
    let y1 = clampy(corners.iter().map(|c| c[1]).fold(f64::MIN, f64::max) + margin).ceil();
    let (rw, rh) = (((x1 - x0) as u32).max(1), ((y1 - y0) as u32).max(1));
    let region = imageops::crop_imm(img, x0 as u32, y0 as u32, rw, rh).to_image();
    (region, (x0, y0))
}

fn warp(img: &RgbImage, fit: &Similarity, side: u32) -> RgbImage {
    let inv = fit.inverse();
    let (w, h) = (img.width() as i64, img.height() as i64);
    let px = |x: i64, y: i64| -> [f64; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            [0.0; 3]
        } else {
            img.get_pixel(x as u32, y as u32).0.map(f64::from)
        }
    };
    RgbImage::from_fn(side, side, |u, v| {
        let [sx, sy] = inv.apply([f64::from(u), f64::from(v)]);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (p00, p10, p01, p11) = (
            px(x0, y0),
            px(x0 + 1, y0),
            px(x0, y0 + 1),
            px(x0 + 1, y0 + 1),
        );
        let mut out = [0u8; 3];
        for c in 0..3 {
            let top = p00[c] * (1.0 - fx) + p10[c] * fx;
            let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
            out[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        Rgb(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        let truth = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 12.0,
            ty: -7.0,
        };
        let src: Landmarks = [
            [10.0, 20.0],
            [60.0, 18.0],
            [35.0, 45.0],
            [15.0, 70.0],
            [58.0, 72.0],
        ];
        let dst = src.map(|p| {
            let q = truth.apply([f64::from(p[0]), f64::from(p[1])]);
            [q[0] as f32, q[1] as f32]
        });
        let fit = Similarity::fit(&src, &dst).expect("non-degenerate");
        for (got, want) in [(fit.a, 0.8), (fit.b, 0.3), (fit.tx, 12.0), (fit.ty, -7.0)] {
            assert!((got - want).abs() < 1e-4, "{fit:?}");
        }
        let back = fit.inverse().apply(fit.apply([3.0, 4.0]));
        assert!((back[0] - 3.0).abs() < 1e-9 && (back[1] - 4.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        assert!(Similarity::fit(&[[5.0, 5.0]; 5], &TEMPLATE).is_none());
    }

    #[test]
    fn template_landmarks_align_to_an_identity_warp() {
        let img = RgbImage::from_fn(112, 112, |x, y| Rgb([x as u8, y as u8, 7]));
        let aligned = align_face(&img, &TEMPLATE).expect("aligns");
        assert_eq!(aligned.get_pixel(30, 60).0, [30, 60, 7]);
    }
}
