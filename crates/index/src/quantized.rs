//! Exact search in a quarter of the memory traffic: every face is also kept as int8 codes
//! (one scale per face), the scan ranks the faces on the codes (those that its first stage,
//! `sketch`, has not ruled out), and only the best candidates are re-scored on their f32
//! vectors. The answer equals a full f32 scan's whenever the true
//! top results are among the candidates; the candidate count leaves a wide margin over the
//! int8 rounding error (see `client`'s tests, and `visage bench index`).

/// The longest embedding an index takes (the store's limit too).
pub const MAX_DIMENSION: usize = store::MAX_EMBEDDING_DIM;

/// One face as int8 codes and the scale that maps them back (`value ~ code * scale`).
#[derive(Debug, Clone, PartialEq)]
pub struct Codes {
    pub codes: Vec<i8>,
    pub scale: f32,
}

impl Codes {
    /// Symmetric per-vector quantisation: the largest magnitude maps to 127.
    pub fn quantise(v: &[f32]) -> Codes {
        let mut codes = Vec::with_capacity(v.len());
        let scale = quantise_into(v, &mut codes);
        Codes { codes, scale }
    }
}

/// Appends the codes of `v` to `out` and returns their scale.
fn quantise_into(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    out.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// Integer dot product of two code vectors (exact in i32: 1,024 * 127 * 127 < 2^31).
#[inline]
pub fn dot_codes(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the only requirement of a `target_feature` function is that the CPU has
        // the feature, which was just checked (the check is a cached atomic load).
        return unsafe { dot_codes_avx2(a, b) };
    }
    dot_codes_portable(a, b)
}

/// 32 codes at a time: `maddubs` multiplies unsigned by signed bytes, so `a`'s magnitudes
/// meet `b` carrying `a`'s signs. Codes are within ±127 (quantisation never makes -128), so a
/// pair of products (at most 2 * 127 * 127 = 32,258) fits maddubs' i16 without saturating.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
fn dot_codes_avx2(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len()) / 32 * 32;
    let ones = _mm256_set1_epi16(1);
    let mut acc = _mm256_setzero_si256();
    for i in (0..n).step_by(32) {
        // SAFETY: `i + 32 <= n <= len` of both slices; unaligned loads are allowed.
        let (va, vb) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(i).cast::<__m256i>()),
                _mm256_loadu_si256(b.as_ptr().add(i).cast::<__m256i>()),
            )
        };
        let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(va), _mm256_sign_epi8(vb, va));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
    }
    let s = _mm_add_epi32(
        _mm256_castsi256_si128(acc),
        _mm256_extracti128_si256::<1>(acc),
    );
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    let tail: i32 = a[n..]
        .iter()
        .zip(&b[n..])
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    _mm_cvtsi128_si32(s) + tail
}

#[inline(always)]
fn dot_codes_portable(a: &[i8], b: &[i8]) -> i32 {
    // Four independent i32 lanes of 32 products each; the compiler widens and vectorises.
    let mut acc = [0i32; 4];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    for (ca, cb) in ca.zip(cb) {
        for (lane, (la, lb)) in acc
            .iter_mut()
            .zip(ca.chunks_exact(8).zip(cb.chunks_exact(8)))
        {
            *lane += la
                .iter()
                .zip(lb)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum::<i32>();
        }
    }
    acc.iter().sum::<i32>() + tail
}

pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The `k` largest `(score, row)` pairs seen, kept as a small sorted buffer (k is small).
pub struct TopK {
    k: usize,
    items: Vec<(f32, u32)>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    /// The score a new item must beat to enter.
    #[inline]
    pub fn floor(&self) -> f32 {
        if self.items.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.items[self.items.len() - 1].0
        }
    }

    #[inline]
    pub fn push(&mut self, score: f32, row: u32) {
        if self.k == 0 || score <= self.floor() {
            return;
        }
        let at = self.items.partition_point(|(s, _)| *s >= score);
        self.items.insert(at, (score, row));
        self.items.truncate(self.k);
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(f32, u32)> {
        self.items
    }

    /// The best `k` of both.
    pub fn merge(mut self, other: TopK) -> TopK {
        for (score, row) in other.items {
            self.push(score, row);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random unit vectors (xorshift), no dependency needed.
    fn vectors(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.max(1);
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        };
        let mut out = Vec::with_capacity(n * EMBEDDING_DIM);
        for _ in 0..n {
            let v: Vec<f32> = (0..EMBEDDING_DIM).map(|_| next()).collect();
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            out.extend(v.iter().map(|a| a / norm));
        }
        out
    }

    const EMBEDDING_DIM: usize = 128;

    #[test]
    fn quantised_dot_products_track_the_exact_ones() {
        let v = vectors(200, 7);
        let rows: Vec<&[f32]> = v.chunks_exact(EMBEDDING_DIM).collect();
        let codes: Vec<Codes> = rows.iter().map(|r| Codes::quantise(r)).collect();
        for i in 0..rows.len() - 1 {
            let exact = dot_f32(rows[i], rows[i + 1]);
            let approx = dot_codes(&codes[i].codes, &codes[i + 1].codes) as f32
                * codes[i].scale
                * codes[i + 1].scale;
            assert!((exact - approx).abs() < 0.01, "{exact} vs {approx}");
        }
        assert_eq!(
            Codes::quantise(&[0.0; EMBEDDING_DIM]).codes,
            vec![0; EMBEDDING_DIM]
        );
    }

    #[test]
    fn the_accelerated_dot_product_equals_the_portable_one() {
        let v = vectors(50, 3);
        let codes: Vec<Codes> = v.chunks_exact(EMBEDDING_DIM).map(Codes::quantise).collect();
        let mut extreme = Codes::quantise(&v[..EMBEDDING_DIM]);
        extreme.codes = vec![-127; EMBEDDING_DIM];
        for a in codes.iter().chain([&extreme]) {
            for b in codes.iter().chain([&extreme]) {
                assert_eq!(
                    dot_codes(&a.codes, &b.codes),
                    dot_codes_portable(&a.codes, &b.codes)
                );
            }
        }
        assert_eq!(dot_codes(&extreme.codes, &extreme.codes), 128 * 127 * 127);
    }

    #[test]
    fn dot_products_of_any_length_up_to_the_maximum_count_every_value() {
        for dim in [1, 7, 31, 33, 100, 129, 512, 1000, MAX_DIMENSION] {
            let v = vectors(16, dim as u64);
            let (a, b) = (&v[..dim], &v[MAX_DIMENSION..MAX_DIMENSION + dim]);
            let slow: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!((dot_f32(a, b) - slow).abs() < 1e-4, "dim {dim}");
            let (ca, cb) = (Codes::quantise(a), Codes::quantise(b));
            let slow: i32 = ca
                .codes
                .iter()
                .zip(&cb.codes)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum();
            assert_eq!(dot_codes(&ca.codes, &cb.codes), slow, "dim {dim}");
            assert_eq!(dot_codes_portable(&ca.codes, &cb.codes), slow, "dim {dim}");
        }
        let extreme = vec![-127i8; MAX_DIMENSION];
        assert_eq!(dot_codes(&extreme, &extreme), 1024 * 127 * 127);
        let mut m = CodeMatrix::new(3);
        m.push(&[0.6, 0.0, 0.8]);
        m.push(&[0.0, 1.0, 0.0]);
        assert_eq!(m.row(1), &[0, 127, 0]);
        assert!(CodeMatrix::from_parts(3, m.all_codes().to_vec(), vec![1.0]).is_none());
        assert!(CodeMatrix::from_parts(0, Vec::new(), Vec::new()).is_none());
        assert!(!valid_dimension(MAX_DIMENSION + 1));
    }

    #[test]
    fn top_k_keeps_the_best_sorted() {
        let mut t = TopK::new(3);
        for (s, r) in [(0.1, 1), (0.9, 2), (0.5, 3), (0.7, 4), (0.2, 5)] {
            t.push(s, r);
        }
        assert_eq!(t.into_sorted(), vec![(0.9, 2), (0.7, 4), (0.5, 3)]);
        let mut a = TopK::new(2);
        a.push(0.5, 1);
        let mut b = TopK::new(2);
        b.push(0.7, 2);
        b.push(0.1, 3);
        assert_eq!(a.merge(b).into_sorted(), vec![(0.7, 2), (0.5, 1)]);
        let mut none = TopK::new(0);
        none.push(1.0, 1);
        assert!(none.into_sorted().is_empty());
    }
}

/// Rows of `dimension` int8 codes with their scales, appended in row order.
#[derive(Debug, Clone)]
pub struct CodeMatrix {
    dimension: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl CodeMatrix {
    /// An empty matrix of rows of `dimension` codes (1..=[`MAX_DIMENSION`]; the caller
    /// checks, see [`valid_dimension`]).
    pub fn new(dimension: usize) -> Self {
        CodeMatrix {
            dimension,
            codes: Vec::new(),
            scales: Vec::new(),
        }
    }

    /// Appends `v`, which has `dimension` values (the gallery drops other lengths).
    pub fn push(&mut self, v: &[f32]) -> u32 {
        debug_assert_eq!(v.len(), self.dimension);
        let scale = quantise_into(&v[..self.dimension.min(v.len())], &mut self.codes);
        self.codes
            .resize(self.scales.len() * self.dimension + self.dimension, 0);
        self.scales.push(scale);
        (self.scales.len() - 1) as u32
    }

    /// Appends codes made earlier (compaction, snapshots).
    pub fn push_codes(&mut self, codes: &[i8], scale: f32) {
        self.codes.extend_from_slice(codes);
        self.scales.push(scale);
    }

    pub fn from_parts(dimension: usize, codes: Vec<i8>, scales: Vec<f32>) -> Option<Self> {
        (valid_dimension(dimension) && codes.len() == scales.len() * dimension).then_some(
            CodeMatrix {
                dimension,
                codes,
                scales,
            },
        )
    }

    #[inline]
    pub fn row(&self, row: u32) -> &[i8] {
        let r = row as usize;
        &self.codes[r * self.dimension..(r + 1) * self.dimension]
    }

    /// Asks the CPU to start loading `row`'s codes and scale into the cache (a row about to
    /// be read out of order).
    #[inline]
    pub fn prefetch(&self, row: u32) {
        let start = row as usize * self.dimension;
        if let Some(codes) = self.codes.get(start..start + self.dimension) {
            prefetch(codes);
        }
        if let Some(scale) = self.scales.get(row as usize..row as usize + 1) {
            prefetch(scale);
        }
    }

    pub fn scale_of(&self, row: u32) -> f32 {
        self.scales[row as usize]
    }

    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.scales.shrink_to_fit();
    }

    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity() + self.scales.capacity() * 4
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    pub fn all_codes(&self) -> &[i8] {
        &self.codes
    }

    pub fn all_scales(&self) -> &[f32] {
        &self.scales
    }
}

/// Asks the CPU to start loading every cache line of `data` (a hint: nothing waits for it).
#[inline]
pub(crate) fn prefetch<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = data.as_ptr().cast::<i8>();
        let misalign = first as usize % 64;
        let lines = (misalign + std::mem::size_of_val(data)).div_ceil(64);
        for i in 0..lines {
            let line = first.wrapping_sub(misalign).wrapping_add(i * 64);
            #[allow(unsafe_code)]
            // SAFETY: a prefetch is a hint that never faults, whatever the address.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(line)
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Whether an index can hold embeddings of `dimension` values.
pub fn valid_dimension(dimension: usize) -> bool {
    (1..=MAX_DIMENSION).contains(&dimension)
}
