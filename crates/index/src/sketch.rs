//! The first stage of the exact scan: every face's int8 codes are also kept as a 2-bit
//! sketch (a quarter of their bytes), which gives a cheap estimate of the int8 similarity
//! and a margin that bounds its error. The scan reads every sketch, keeps only the faces whose
//! estimate plus margin could still reach the k-th best, and computes the int8 similarity of
//! those survivors alone (see `client`'s `scan_two_stage`).
//!
//! A sketch first rotates the codes `c` (a fixed random orthogonal map: random signs and a
//! Walsh-Hadamard transform, twice, over `P`, the next power of two of at least 128), which
//! leaves dot products unchanged and spreads any vector's energy over all `P` coordinates.
//! It then quantises the rotated codes with a step `a = |c| / sqrt(P)` (their RMS, the best
//! uniform 4-level step for Gaussian-like values) to levels `0..=3` meaning `a * (level -
//! 1.5)`. The probe is rotated the same way and rounded back to int8, so that the estimate is
//! integer arithmetic on bytes (`maddubs`). Its error has two parts:
//! - `r . Rq`, with `r` the sketch's residual: Cauchy-Schwarz bounds it by `|r| |q|` whatever
//!   the vectors; with the rotation, the residual's coordinates behave as independent of the
//!   probe's (rounding errors), and its spread is `|r| |q| / sqrt(P)`, so the margin covers
//!   EPSILON of those (for short embeddings, d < [`SHORT`], the full Cauchy-Schwarz bound);
//! - `sketch . (Rq - rounded Rq)`, bounded by Cauchy-Schwarz (always, and small: the probe's
//!   rounding error is under 1 % of its length).
//!
//! The tests measure the spread and how often an error leaves its margin, and
//! `visage bench index` checks the result against the plain int8 scan on every query.

use std::ops::Range;

use crate::quantized::CodeMatrix;

/// Standard deviations of the estimate's error that the margin covers (a face of the int8
/// top k is missed only if its estimate is that much too low, minus its lead over the k-th:
/// a Gaussian's 3 in 100,000 at the boundary).
pub const EPSILON: f32 = 4.0;

/// Embeddings shorter than this get the Cauchy-Schwarz margin (a rotation of a few
/// coordinates is too regular for the spread argument).
pub const SHORT: usize = 64;

/// Dimensions per 32-byte block: byte `j` of a block holds dimensions `j`, `32 + j`,
/// `64 + j` and `96 + j` in its bit pairs 0-1, 2-3, 4-5 and 6-7.
const BLOCK_DIMS: usize = 128;
const BLOCK_BYTES: usize = 32;

/// The stored residual norm is `ceil(|r| / (a sqrt(P)) * RESIDUAL_UNITS)`: at most
/// `sqrt(1.25) * RESIDUAL_UNITS` (each coordinate's error is under half a step, or under the
/// coordinate itself when it is clipped), so a byte holds it, rounded up.
const RESIDUAL_UNITS: f32 = 128.0;

/// Seed of the rotation's random signs (any fixed value: the sketches are derived data,
/// rebuilt from the codes whenever an index is loaded).
const ROTATION_SEED: u64 = 0x5DEE_CE66_D1CE_4E5B;

/// 2-bit sketches of a [`CodeMatrix`]'s rows, appended in the same row order.
#[derive(Debug, Clone)]
pub struct SketchMatrix {
    dimension: usize,
    /// `P`: the rotated length.
    rotated: usize,
    /// The rotation's signs, two rounds of `P`.
    signs: Vec<f32>,
    bytes_per_row: usize,
    levels: Vec<u8>,
    /// `a` times the codes' scale per row: the step as a cosine contribution.
    steps: Vec<f32>,
    /// `|r| / (a sqrt(P))` in 1/[`RESIDUAL_UNITS`], rounded up, per row.
    residuals: Vec<u8>,
}

/// A probe prepared for the sketches: its rotated codes rounded to int8, the offset and
/// scale of the estimate, and the margin's terms.
pub struct SketchProbe {
    rounded: Vec<i8>,
    /// `1.5 * sum(rounded)`: the levels' offset.
    half_sum: f32,
    /// The probe's scale times the rounding's.
    scale: f32,
    /// A row's margin is `step * (residual * per_residual + fixed)`.
    per_residual: f32,
    fixed: f32,
}

impl SketchMatrix {
    pub fn new(dimension: usize) -> Self {
        let rotated = dimension.next_power_of_two().max(BLOCK_DIMS);
        let mut x = ROTATION_SEED;
        let signs = (0..2 * rotated)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x >> 63 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        SketchMatrix {
            dimension,
            rotated,
            signs,
            bytes_per_row: rotated / BLOCK_DIMS * BLOCK_BYTES,
            levels: Vec::new(),
            steps: Vec::new(),
            residuals: Vec::new(),
        }
    }

    /// The sketches of every row of `codes`.
    pub fn of(codes: &CodeMatrix, dimension: usize) -> Self {
        let mut m = SketchMatrix::new(dimension);
        m.levels.reserve_exact(codes.len() * m.bytes_per_row);
        m.steps.reserve_exact(codes.len());
        m.residuals.reserve_exact(codes.len());
        for row in 0..codes.len() as u32 {
            m.push(codes.row(row), codes.scale_of(row));
        }
        m
    }

    /// `R x`: `x` padded to `P` values, then twice random signs and an orthonormal
    /// Walsh-Hadamard transform.
    fn rotate(&self, x: &[i8]) -> Vec<f32> {
        let p = self.rotated;
        let mut v = vec![0.0f32; p];
        for (o, &c) in v.iter_mut().zip(x) {
            *o = f32::from(c);
        }
        let norm = 1.0 / (p as f32).sqrt();
        for signs in self.signs.chunks_exact(p) {
            for (a, s) in v.iter_mut().zip(signs) {
                *a *= s;
            }
            let mut h = 1;
            while h < p {
                for pair in v.chunks_exact_mut(2 * h) {
                    let (lo, hi) = pair.split_at_mut(h);
                    for (a, b) in lo.iter_mut().zip(hi) {
                        (*a, *b) = (*a + *b, *a - *b);
                    }
                }
                h *= 2;
            }
            for a in v.iter_mut() {
                *a *= norm;
            }
        }
        v
    }

    /// Appends the sketch of one row of int8 codes (`dimension` of them) and their scale.
    pub fn push(&mut self, codes: &[i8], scale: f32) {
        let p = self.rotated;
        let rotated = self.rotate(&codes[..self.dimension.min(codes.len())]);
        let norm_sq: f32 = rotated.iter().map(|x| x * x).sum();
        let step = (norm_sq / p as f32).sqrt();
        let start = self.levels.len();
        self.levels.resize(start + self.bytes_per_row, 0);
        let row = &mut self.levels[start..];
        let mut residual_sq = 0.0f32;
        for (i, &c) in rotated.iter().enumerate() {
            let level = if step > 0.0 {
                ((c / step).floor() + 2.0).clamp(0.0, 3.0)
            } else {
                2.0
            };
            let error = c - step * (level - 1.5);
            residual_sq += error * error;
            let (block, within) = (i / BLOCK_DIMS, i % BLOCK_DIMS);
            let byte = block * BLOCK_BYTES + within % BLOCK_BYTES;
            row[byte] |= (level as u8) << (2 * (within / BLOCK_BYTES));
        }
        let residual = if step > 0.0 {
            (residual_sq.sqrt() / (step * (p as f32).sqrt()) * RESIDUAL_UNITS).ceil()
        } else {
            0.0
        };
        self.steps.push(step * scale);
        self.residuals.push(residual.min(255.0) as u8);
    }

    /// The probe's int8 codes and their scale, prepared for [`SketchMatrix::upper_bounds`].
    pub fn probe(&self, codes: &[i8], scale: f32) -> SketchProbe {
        let p = self.rotated;
        let rotated = self.rotate(&codes[..self.dimension.min(codes.len())]);
        let max = rotated.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let unit = if max > 0.0 { max / 127.0 } else { 1.0 };
        let rounded: Vec<i8> = rotated
            .iter()
            .map(|x| (x / unit).round().clamp(-127.0, 127.0) as i8)
            .collect();
        let norm = rotated.iter().map(|x| x * x).sum::<f32>().sqrt();
        let rounding_error = rotated
            .iter()
            .zip(&rounded)
            .map(|(x, &r)| (x - unit * f32::from(r)).powi(2))
            .sum::<f32>()
            .sqrt();
        let sum: i32 = rounded.iter().map(|&c| i32::from(c)).sum();
        let root_p = (p as f32).sqrt();
        let spread = if self.dimension < SHORT {
            1.0
        } else {
            (EPSILON / root_p).min(1.0)
        };
        // In the step's units: |r| = residual * sqrt(P) / RESIDUAL_UNITS, and the sketch's
        // length is at most |c| + |r| = sqrt(P) (1 + residual / RESIDUAL_UNITS). A
        // thousandth more covers the float rounding of the products compared with them.
        let statistical = spread * norm * root_p / RESIDUAL_UNITS;
        let rounding = root_p * rounding_error;
        SketchProbe {
            rounded,
            half_sum: 1.5 * sum as f32,
            scale: scale * unit,
            per_residual: (statistical + rounding / RESIDUAL_UNITS) * scale * 1.001,
            fixed: rounding * scale * 1.001,
        }
    }

    /// `sum(level * q)` of each row in `rows` into `out` (as long as `rows`): the part of
    /// the estimate that reads the sketches, for a run of rows at a time.
    pub fn weighted_levels(&self, probe: &SketchProbe, rows: Range<usize>, out: &mut [i32]) {
        let levels = &self.levels[rows.start * self.bytes_per_row..rows.end * self.bytes_per_row];
        dot_levels_rows(levels, self.bytes_per_row, &probe.rounded, out);
    }

    /// The estimate of `row`'s int8 similarity to the probe (its codes' dot product times
    /// both scales) from its `weighted` levels, and the margin its error stays within.
    #[cfg(test)]
    pub fn estimate(&self, probe: &SketchProbe, row: u32, weighted: i32) -> (f32, f32) {
        let r = row as usize;
        let estimate = self.steps[r] * probe.scale * (weighted as f32 - probe.half_sum);
        (estimate, self.margin(probe, row))
    }

    /// The margin of `row`'s estimate.
    #[inline]
    pub fn margin(&self, probe: &SketchProbe, row: u32) -> f32 {
        let r = row as usize;
        self.steps[r] * (f32::from(self.residuals[r]) * probe.per_residual + probe.fixed)
    }

    /// Estimate plus margin for rows `first..` from their `weighted` levels (as many as
    /// `out`), in one pass the compiler vectorises.
    pub fn upper_bounds(
        &self,
        probe: &SketchProbe,
        first: usize,
        weighted: &[i32],
        out: &mut [f32],
    ) {
        let n = out.len();
        let (steps, residuals) = (
            &self.steps[first..first + n],
            &self.residuals[first..first + n],
        );
        for (((o, &w), &step), &res) in out.iter_mut().zip(weighted).zip(steps).zip(residuals) {
            *o = step
                * (probe.scale * (w as f32 - probe.half_sum)
                    + f32::from(res) * probe.per_residual
                    + probe.fixed);
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.levels.shrink_to_fit();
        self.steps.shrink_to_fit();
        self.residuals.shrink_to_fit();
    }

    pub fn memory_bytes(&self) -> usize {
        self.levels.capacity() + self.steps.capacity() * 4 + self.residuals.capacity()
    }
}

/// `sum(level_i * q_i)` of each row of sketches (`row_bytes` each) into `out` (`q` padded
/// to whole blocks).
fn dot_levels_rows(levels: &[u8], row_bytes: usize, q: &[i8], out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the only requirement of a `target_feature` function is that the CPU has
        // the feature, which was just checked (the check is a cached atomic load).
        return unsafe { dot_levels_rows_avx2(levels, row_bytes, q, out) };
    }
    for (row, o) in levels.chunks_exact(row_bytes).zip(out) {
        *o = dot_levels_portable(row, q);
    }
}

/// At 1..=128 dimensions (one block a row) the probe stays in registers and four rows'
/// sums are reduced together; longer rows go one at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
fn dot_levels_rows_avx2(levels: &[u8], row_bytes: usize, q: &[i8], out: &mut [i32]) {
    use std::arch::x86_64::*;
    if row_bytes != BLOCK_BYTES || q.len() < BLOCK_DIMS {
        for (row, o) in levels.chunks_exact(row_bytes).zip(out) {
            *o = dot_levels_avx2(row, q);
        }
        return;
    }
    // SAFETY: `q` holds at least one block (128 codes), checked above.
    let (q0, q1, q2, q3) = unsafe {
        let qp = q.as_ptr().cast::<__m256i>();
        (
            _mm256_loadu_si256(qp),
            _mm256_loadu_si256(qp.add(1)),
            _mm256_loadu_si256(qp.add(2)),
            _mm256_loadu_si256(qp.add(3)),
        )
    };
    let ones = _mm256_set1_epi16(1);
    let row_sum = |row: &[u8]| {
        // SAFETY: `row` is one `chunks_exact(BLOCK_BYTES)` chunk: 32 readable bytes.
        let v = unsafe { _mm256_loadu_si256(row.as_ptr().cast::<__m256i>()) };
        _mm256_madd_epi16(block_products_avx2(v, [q0, q1, q2, q3]), ones)
    };
    let n = out.len().min(levels.len() / BLOCK_BYTES);
    let at = |i: usize| &levels[i * BLOCK_BYTES..(i + 1) * BLOCK_BYTES];
    let mut i = 0;
    while i + 4 <= n {
        let (a, b, c, d) = (
            row_sum(at(i)),
            row_sum(at(i + 1)),
            row_sum(at(i + 2)),
            row_sum(at(i + 3)),
        );
        let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
        let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
        out[i] = _mm_extract_epi32::<0>(s);
        out[i + 1] = _mm_extract_epi32::<1>(s);
        out[i + 2] = _mm_extract_epi32::<2>(s);
        out[i + 3] = _mm_extract_epi32::<3>(s);
        i += 4;
    }
    for (j, o) in out.iter_mut().enumerate().take(n).skip(i) {
        *o = dot_levels_avx2(at(j), q);
    }
}

/// The blocks' products ([`block_products_avx2`]) summed in i16 lanes: at most 2 * 3 * 127
/// per lane per block, so 8 blocks fit in an i16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
fn dot_levels_avx2(levels: &[u8], q: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let blocks = (levels.len() / BLOCK_BYTES).min(q.len() / BLOCK_DIMS);
    let mut acc = _mm256_setzero_si256();
    for b in 0..blocks {
        // SAFETY: `b < blocks`, so the 32 bytes of levels and 128 of codes read are inside
        // both slices; unaligned loads are allowed.
        let (v, q0, q1, q2, q3) = unsafe {
            let qp = q.as_ptr().add(b * BLOCK_DIMS).cast::<__m256i>();
            (
                _mm256_loadu_si256(levels.as_ptr().add(b * BLOCK_BYTES).cast::<__m256i>()),
                _mm256_loadu_si256(qp),
                _mm256_loadu_si256(qp.add(1)),
                _mm256_loadu_si256(qp.add(2)),
                _mm256_loadu_si256(qp.add(3)),
            )
        };
        acc = _mm256_add_epi16(acc, block_products_avx2(v, [q0, q1, q2, q3]));
    }
    let wide = _mm256_madd_epi16(acc, _mm256_set1_epi16(1));
    let s = _mm_add_epi32(
        _mm256_castsi256_si128(wide),
        _mm256_extracti128_si256::<1>(wide),
    );
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// One 32-byte block of levels times its 128 probe codes: the four bit pairs shifted down
/// and masked give 32 levels (0..=3) each, multiplied with the codes by `maddubs` (unsigned
/// by signed bytes, pairs summed into i16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn block_products_avx2(
    v: std::arch::x86_64::__m256i,
    q: [std::arch::x86_64::__m256i; 4],
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let mask = _mm256_set1_epi8(3);
    let l0 = _mm256_and_si256(v, mask);
    let l1 = _mm256_and_si256(_mm256_srli_epi16::<2>(v), mask);
    let l2 = _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask);
    let l3 = _mm256_and_si256(_mm256_srli_epi16::<6>(v), mask);
    let s01 = _mm256_add_epi16(
        _mm256_maddubs_epi16(l0, q[0]),
        _mm256_maddubs_epi16(l1, q[1]),
    );
    let s23 = _mm256_add_epi16(
        _mm256_maddubs_epi16(l2, q[2]),
        _mm256_maddubs_epi16(l3, q[3]),
    );
    _mm256_add_epi16(s01, s23)
}

fn dot_levels_portable(levels: &[u8], q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for (block, qb) in levels
        .chunks_exact(BLOCK_BYTES)
        .zip(q.chunks_exact(BLOCK_DIMS))
    {
        for (j, &byte) in block.iter().enumerate() {
            for plane in 0..4 {
                let level = i32::from((byte >> (2 * plane)) & 3);
                sum += level * i32::from(qb[plane * BLOCK_BYTES + j]);
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantized::{dot_codes, MAX_DIMENSION};

    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        }
    }

    fn matrix(dim: usize, rows: usize, seed: u64) -> CodeMatrix {
        let mut next = rng(seed);
        let mut m = CodeMatrix::new(dim);
        for _ in 0..rows {
            let v: Vec<f32> = (0..dim).map(|_| next()).collect();
            m.push(&v);
        }
        m
    }

    #[test]
    fn the_accelerated_level_product_equals_the_portable_one() {
        for dim in [1, 5, 127, 128, 129, 300, MAX_DIMENSION] {
            let m = matrix(dim, 20, dim as u64);
            let s = SketchMatrix::of(&m, dim);
            for a in 0..20u32 {
                let probe = s.probe(m.row((a + 1) % 20), 1.0);
                let levels = &s.levels[a as usize * s.bytes_per_row..][..s.bytes_per_row];
                let mut out = [0i32];
                s.weighted_levels(&probe, a as usize..a as usize + 1, &mut out);
                assert_eq!(
                    out[0],
                    dot_levels_portable(levels, &probe.rounded),
                    "dim {dim}"
                );
            }
        }
        // The largest levels against the largest codes: no i16 lane overflows.
        let levels = vec![0xFFu8; MAX_DIMENSION / 4];
        let q = vec![127i8; MAX_DIMENSION];
        let mut out = [0i32; 2];
        dot_levels_rows(
            &[&levels[..], &levels[..]].concat(),
            levels.len(),
            &q,
            &mut out,
        );
        assert_eq!(out, [3 * 127 * MAX_DIMENSION as i32; 2]);
        let q = vec![-127i8; MAX_DIMENSION];
        dot_levels_rows(&levels, levels.len(), &q, &mut out[..1]);
        assert_eq!(out[0], -3 * 127 * MAX_DIMENSION as i32);
    }

    /// The margin's premise, measured: the estimate's error in units of `|r| |q| / sqrt(d)`
    /// has a spread near 1 and stays within EPSILON on all but a Gaussian tail's share of
    /// pairs; for short vectors (d <= EPSILON^2) the margin is Cauchy-Schwarz and holds always.
    #[test]
    fn the_estimate_error_stays_within_its_margin() {
        for dim in [1, 2, 9, 63, 64, 100, 128, 512, MAX_DIMENSION] {
            let rows = 400;
            let m = matrix(dim, rows, 1000 + dim as u64);
            let s = SketchMatrix::of(&m, dim);
            let (mut outside, mut pairs, mut sq) = (0usize, 0usize, 0.0f64);
            for a in 0..40u32 {
                let probe = s.probe(m.row(a), m.scale_of(a));
                for b in 40..rows as u32 {
                    let exact =
                        dot_codes(m.row(b), m.row(a)) as f32 * m.scale_of(a) * m.scale_of(b);
                    let mut w = [0i32];
                    s.weighted_levels(&probe, b as usize..b as usize + 1, &mut w);
                    let (estimate, margin) = s.estimate(&probe, b, w[0]);
                    let error = exact - estimate;
                    pairs += 1;
                    if error.abs() > margin {
                        outside += 1;
                    }
                    let sigma = margin / EPSILON;
                    if sigma > 0.0 {
                        sq += f64::from(error / sigma).powi(2);
                    }
                }
            }
            let spread = (sq / pairs as f64).sqrt();
            if dim < SHORT {
                assert_eq!(outside, 0, "dim {dim}: Cauchy-Schwarz always holds");
            } else {
                // A Gaussian leaves 0.006% outside 4 sigma; the residuals' spread is at most 1.
                assert!(
                    outside * 100 <= pairs,
                    "dim {dim}: {outside}/{pairs} outside"
                );
                assert!(spread < 1.05, "dim {dim}: spread {spread}");
            }
        }
    }

    #[test]
    fn a_zero_row_is_estimated_exactly() {
        let mut m = CodeMatrix::new(3);
        m.push(&[0.0, 0.0, 0.0]);
        m.push(&[0.6, 0.0, 0.8]);
        let s = SketchMatrix::of(&m, 3);
        let probe = s.probe(m.row(1), m.scale_of(1));
        let mut w = [0i32; 2];
        s.weighted_levels(&probe, 0..2, &mut w);
        assert_eq!(s.estimate(&probe, 0, w[0]), (0.0, 0.0));
        let (estimate, margin) = s.estimate(&probe, 1, w[1]);
        let exact = dot_codes(m.row(1), m.row(1)) as f32 * m.scale_of(1) * m.scale_of(1);
        assert!((exact - estimate).abs() <= margin);
        assert_eq!(s.steps.len(), 2);
    }
}
