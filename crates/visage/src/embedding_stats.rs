//! Statistics of a set of labelled embeddings (real: `visage eval lfw-embeddings`; or
//! synthetic), to judge how face-like a generator is, and the fit the `lfw-fit` generator
//! draws from.
//!
//! The participation ratio of a covariance, (sum of eigenvalues)^2 / sum of squared
//! eigenvalues, is its effective dimension: 128 when every direction carries the same
//! variance, k when k directions carry it all.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use store::EMBEDDING_DIM;

use crate::synthetic_faces::{Fit, Rng};

const D: usize = EMBEDDING_DIM;

/// Embeddings with an identity number per row.
pub struct Labelled {
    pub rows: Vec<f32>,
    pub identity: Vec<u32>,
}

impl Labelled {
    /// FILE (raw little-endian f32 rows) and FILE.labels (`identity detected` per line).
    pub fn read(path: &Path) -> anyhow::Result<Labelled> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.len() % (4 * D) != 0 {
            bail!("{} is not a whole number of {D}-d f32 rows", path.display());
        }
        let rows: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let labels_path = path.with_extension("labels");
        let labels = std::fs::read_to_string(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?;
        let identity: Vec<u32> = labels
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .parse()
                    .with_context(|| format!("bad label line {l:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        if identity.len() * D != rows.len() {
            bail!("{} labels for {} rows", identity.len(), rows.len() / D);
        }
        Ok(Labelled { rows, identity })
    }

    /// `per_identity` consecutive rows per identity (the synthetic galleries' layout).
    pub fn consecutive(rows: Vec<f32>, per_identity: usize) -> Labelled {
        let n = rows.len() / D;
        let identity = (0..n).map(|i| (i / per_identity.max(1)) as u32).collect();
        Labelled { rows, identity }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.rows[i * D..(i + 1) * D]
    }

    fn groups(&self) -> BTreeMap<u32, Vec<usize>> {
        let mut g: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, id) in self.identity.iter().enumerate() {
            g.entry(*id).or_default().push(i);
        }
        g
    }

    /// A gallery (with each row's identity) and held-out queries: the last face of every
    /// identity with at least two is a query (so its identity is still in the gallery).
    pub fn split(&self) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
        let (mut base, mut identity, mut queries) = (Vec::new(), Vec::new(), Vec::new());
        for (id, faces) in self.groups() {
            for (k, &i) in faces.iter().enumerate() {
                if faces.len() >= 2 && k + 1 == faces.len() {
                    queries.extend_from_slice(self.row(i));
                } else {
                    base.extend_from_slice(self.row(i));
                    identity.push(id);
                }
            }
        }
        (base, identity, queries)
    }
}

type Matrix = Vec<[f64; D]>;

fn zeros() -> Matrix {
    vec![[0.0; D]; D]
}

fn add_outer(m: &mut Matrix, x: &[f64], weight: f64) {
    for (i, row) in m.iter_mut().enumerate() {
        let xi = x[i] * weight;
        row.iter_mut().zip(x).for_each(|(r, xj)| *r += xi * xj);
    }
}

/// Eigenvalues (descending) and eigenvectors (as rows) of a symmetric matrix, by cyclic
/// Jacobi rotations.
fn eigen(m: &Matrix) -> (Vec<f64>, Matrix) {
    let mut a = m.clone();
    let mut v = zeros();
    (0..D).for_each(|i| v[i][i] = 1.0);
    for _sweep in 0..60 {
        let off: f64 = (0..D)
            .flat_map(|i| (0..D).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..D {
            for q in p + 1..D {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (low, high) = a.split_at_mut(q);
                for (apk, aqk) in low[p].iter_mut().zip(high[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..D).collect();
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = order
        .iter()
        .map(|&i| std::array::from_fn(|k| v[k][i]))
        .collect();
    (values, vectors)
}

fn participation_ratio(values: &[f64]) -> f64 {
    let sum: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let sq: f64 = values.iter().map(|v| v.max(0.0).powi(2)).sum();
    sum * sum / sq.max(1e-300)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// What `describe` measures.
pub struct Description {
    pub faces: usize,
    pub identities: usize,
    /// Norm of the mean of all faces (0 for directions spread evenly round the sphere).
    pub mean_norm: f64,
    /// Participation ratios: all faces, identity means (identities with >= 2 faces), the
    /// between-identity covariance (the means' minus the noise they still carry), and the
    /// within-identity covariance.
    pub pr_all: f64,
    pub pr_means: f64,
    pub pr_between: f64,
    pub pr_within: f64,
    /// Share of the means' variance on their top 10 eigenvectors.
    pub means_top10: f64,
    pub same: Vec<f32>,
    pub cross: Vec<f32>,
    pub fit: Fit,
}

pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

fn quantiles(mut v: Vec<f32>, qs: &[f64]) -> Vec<f32> {
    v.sort_by(f32::total_cmp);
    qs.iter()
        .map(|q| {
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
            v.get(rank - 1).copied().unwrap_or(f32::NAN)
        })
        .collect()
}

pub fn describe(set: &Labelled) -> Description {
    let n = set.identity.len();
    let groups = set.groups();
    let as_f64 = |r: &[f32]| -> Vec<f64> { r.iter().map(|x| f64::from(*x)).collect() };
    let mut mean = [0f64; D];
    for i in 0..n {
        mean.iter_mut()
            .zip(set.row(i))
            .for_each(|(m, x)| *m += f64::from(*x) / n as f64);
    }
    let mut all = zeros();
    for i in 0..n {
        let x: Vec<f64> = as_f64(set.row(i))
            .iter()
            .zip(&mean)
            .map(|(x, m)| x - m)
            .collect();
        add_outer(&mut all, &x, 1.0 / n as f64);
    }
    // Within: residuals about each identity's mean; means of identities with >= 2 faces.
    let (mut within, mut dof) = (zeros(), 0usize);
    let mut means: Vec<(Vec<f64>, usize)> = Vec::new();
    let mut residuals: Vec<(f64, usize)> = Vec::new();
    for faces in groups.values().filter(|f| f.len() >= 2) {
        let k = faces.len();
        let mut m = vec![0f64; D];
        for &i in faces {
            m.iter_mut()
                .zip(set.row(i))
                .for_each(|(a, x)| *a += f64::from(*x) / k as f64);
        }
        for &i in faces {
            let r: Vec<f64> = as_f64(set.row(i))
                .iter()
                .zip(&m)
                .map(|(x, m)| x - m)
                .collect();
            residuals.push((r.iter().map(|x| x * x).sum(), k));
            add_outer(&mut within, &r, 1.0);
        }
        dof += k - 1;
        means.push((m, k));
    }
    within
        .iter_mut()
        .for_each(|r| r.iter_mut().for_each(|x| *x /= dof.max(1) as f64));
    let count = means.len().max(1) as f64;
    let mut grand = vec![0f64; D];
    for (m, _) in &means {
        grand.iter_mut().zip(m).for_each(|(g, x)| *g += x / count);
    }
    let mut of_means = zeros();
    let mut inverse_k = 0.0;
    for (m, k) in &means {
        let x: Vec<f64> = m.iter().zip(&grand).map(|(a, g)| a - g).collect();
        add_outer(&mut of_means, &x, 1.0 / count);
        inverse_k += 1.0 / *k as f64 / count;
    }
    // A mean of k faces still carries within / k of noise.
    let between: Matrix = of_means
        .iter()
        .zip(&within)
        .map(|(m, w)| std::array::from_fn(|j| m[j] - inverse_k * w[j]))
        .collect();
    let (all_values, _) = eigen(&all);
    let (mean_values, _) = eigen(&of_means);
    let (between_values, axes) = eigen(&between);
    let (within_values, _) = eigen(&within);
    let total: f64 = mean_values.iter().map(|v| v.max(0.0)).sum();
    let top10: f64 = mean_values.iter().take(10).map(|v| v.max(0.0)).sum();

    let trace_within: f64 = (0..D).map(|i| within[i][i]).sum();
    let strengths: Vec<f32> = residuals
        .iter()
        .map(|(r2, k)| {
            let expected = trace_within * (*k as f64 - 1.0) / *k as f64;
            (r2 / expected.max(1e-300)).sqrt() as f32
        })
        .collect();
    let strength_q: Vec<f64> = (0..=20).map(|i| f64::from(i) / 20.0).collect();
    let strength: Vec<f64> = quantiles(strengths, &strength_q)
        .into_iter()
        .map(f64::from)
        .collect();
    let fit = Fit {
        axes: axes
            .iter()
            .zip(&between_values)
            .map(|(v, b)| {
                let w: f64 = (0..D)
                    .map(|i| v[i] * (0..D).map(|j| within[i][j] * v[j]).sum::<f64>())
                    .sum();
                let m: f64 = v.iter().zip(&mean).map(|(a, b)| a * b).sum();
                [b.max(0.0), w, m]
            })
            .collect(),
        strength,
    };

    // Same-identity pairs (at most the first 30 faces of an identity), and random pairs of
    // faces of different identities.
    let mut same = Vec::new();
    for faces in groups.values() {
        let f = &faces[..faces.len().min(30)];
        for (a, &i) in f.iter().enumerate() {
            for &j in &f[a + 1..] {
                same.push(dot(set.row(i), set.row(j)));
            }
        }
    }
    let mut rng = Rng(0xC0FF_EE11);
    let mut cross = Vec::new();
    while cross.len() < 200_000 && groups.len() > 1 {
        let i = (rng.uniform() * n as f64) as usize % n;
        let j = (rng.uniform() * n as f64) as usize % n;
        if set.identity[i] != set.identity[j] {
            cross.push(dot(set.row(i), set.row(j)));
        }
    }
    Description {
        faces: n,
        identities: groups.len(),
        mean_norm: mean.iter().map(|x| x * x).sum::<f64>().sqrt(),
        pr_all: participation_ratio(&all_values),
        pr_means: participation_ratio(&mean_values),
        pr_between: participation_ratio(&between_values),
        pr_within: participation_ratio(&within_values),
        means_top10: top10 / total.max(1e-300),
        same,
        cross,
        fit,
    }
}

impl Description {
    pub fn header() -> String {
        let q = |name: &str| {
            QUANTILES
                .iter()
                .map(|p| format!("{name}_q{:02}", (p * 100.0).round()))
                .collect::<Vec<_>>()
                .join("\t")
        };
        format!(
            "set\tfaces\tidentities\tmean_norm\tpr_all\tpr_means\tpr_between\tpr_within\tmeans_top10\t{}\t{}\tcross_q999",
            q("same"),
            q("cross")
        )
    }

    pub fn line(&self, name: &str) -> String {
        let q = |v: &[f32], qs: &[f64]| {
            quantiles(v.to_vec(), qs)
                .iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join("\t")
        };
        format!(
            "{name}\t{}\t{}\t{:.3}\t{:.1}\t{:.1}\t{:.1}\t{:.1}\t{:.3}\t{}\t{}\t{}",
            self.faces,
            self.identities,
            self.mean_norm,
            self.pr_all,
            self.pr_means,
            self.pr_between,
            self.pr_within,
            self.means_top10,
            q(&self.same, &QUANTILES),
            q(&self.cross, &QUANTILES),
            q(&self.cross, &[0.999]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_eigenvalues_of_a_known_matrix() {
        // Q diag(d) Q^T for a rotation Q in the plane of axes 0 and 1.
        let mut m = zeros();
        (0..D).for_each(|i| m[i][i] = 1.0 / (i + 1) as f64);
        let (c, s) = (0.6, 0.8);
        let (a, b) = (m[0][0], m[1][1]);
        m[0][0] = c * c * a + s * s * b;
        m[1][1] = s * s * a + c * c * b;
        m[0][1] = c * s * (a - b);
        m[1][0] = m[0][1];
        let (values, vectors) = eigen(&m);
        for (i, v) in values.iter().enumerate() {
            assert!((v - 1.0 / (i + 1) as f64).abs() < 1e-9, "{i} {v}");
        }
        assert!((vectors[0][0].abs() - c).abs() < 1e-9 && (vectors[0][1].abs() - s).abs() < 1e-9);
        let flat: Vec<f64> = vec![1.0; 4];
        assert!((participation_ratio(&flat) - 4.0).abs() < 1e-12);
    }
}
