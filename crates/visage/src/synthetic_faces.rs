//! Synthetic face embeddings for `visage bench index`, from one of two generators:
//!
//! - `isotropic`: identities are random unit centres, each face its centre plus isotropic
//!   Gaussian noise whose strength varies per face (same-identity cosines ~0.4-0.9). Every
//!   direction of the 128 carries as much identity variance as every other.
//! - `lfw-fit`: identity centres and within-identity noise follow the covariance measured on
//!   SFace embeddings of LFW (`stats/lfw-sface-fit.txt`, written by
//!   `visage bench index --lfw-embeddings FILE --write-fit`): along each eigenvector of the
//!   between-identity covariance, the centres have its eigenvalue as variance and the
//!   population mean's coordinate as mean, and the noise has the within-identity variance
//!   measured along that eigenvector (its off-diagonal part is dropped), scaled per face by
//!   a strength drawn from the measured distribution. The eigenvectors are a random rotation
//!   (the embedding's own axes mean nothing to a search).

use anyhow::{bail, Context};
use clap::ValueEnum;
use store::EMBEDDING_DIM;

/// The fit committed with the code: statistics of the whole set, no one's embedding.
const LFW_FIT: &str = include_str!("../stats/lfw-sface-fit.txt");

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Generator {
    Isotropic,
    LfwFit,
}

/// Deterministic generator: xorshift64* with Box-Muller normals.
pub struct Rng(pub u64);

impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    fn unit(&mut self, centre: Option<&[f32]>, sigma: f32) -> Vec<f32> {
        let mut v: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|i| centre.map_or(0.0, |c| c[i]) + sigma * self.normal())
            .collect();
        normalise(&mut v);
        v
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// The measured statistics the `lfw-fit` generator draws from.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Per eigenvector of the between-identity covariance (largest first): its eigenvalue,
    /// the within-identity variance along it, and the population mean's coordinate on it.
    pub axes: Vec<[f64; 3]>,
    /// Quantiles (evenly spaced, 0 to 1) of a face's noise strength: its squared distance to
    /// its identity's mean over the expected one, square-rooted.
    pub strength: Vec<f64>,
}

impl Fit {
    pub fn committed() -> anyhow::Result<Fit> {
        Fit::parse(LFW_FIT).context("stats/lfw-sface-fit.txt")
    }

    /// `axis b w m` lines and one `strength q0 q1 ...` line; `#` starts a comment.
    pub fn parse(text: &str) -> anyhow::Result<Fit> {
        let (mut axes, mut strength) = (Vec::new(), Vec::new());
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let key = words.next();
            let numbers: Vec<f64> = words
                .map(str::parse)
                .collect::<Result<_, _>>()
                .with_context(|| format!("bad number in {line:?}"))?;
            match (key, &numbers[..]) {
                (Some("axis"), &[b, w, m]) => axes.push([b.max(0.0), w.max(0.0), m]),
                (Some("strength"), _) if numbers.len() >= 2 => strength = numbers,
                _ => bail!("unexpected line {line:?}"),
            }
        }
        if axes.len() != EMBEDDING_DIM || strength.is_empty() {
            bail!(
                "a fit has {EMBEDDING_DIM} axes and a strength line (found {} axes)",
                axes.len()
            );
        }
        Ok(Fit { axes, strength })
    }

    pub fn to_text(&self, header: &str) -> String {
        let mut out: String = header.lines().map(|l| format!("# {l}\n")).collect();
        for [b, w, m] in &self.axes {
            out.push_str(&format!("axis {b:.6e} {w:.6e} {m:.6e}\n"));
        }
        out.push_str("strength");
        for s in &self.strength {
            out.push_str(&format!(" {s:.4}"));
        }
        out.push('\n');
        out
    }

    /// A face's noise strength, by inverse transform sampling of the measured quantiles.
    fn draw_strength(&self, rng: &mut Rng) -> f32 {
        let last = self.strength.len() - 1;
        let at = rng.uniform() * last as f64;
        let i = (at.floor() as usize).min(last.saturating_sub(1));
        let t = at - i as f64;
        let hi = self
            .strength
            .get(i + 1)
            .copied()
            .unwrap_or(self.strength[i]);
        (self.strength[i] * (1.0 - t) + hi * t) as f32
    }
}

/// A random rotation (Gram-Schmidt on Gaussian rows): row `j` is the direction of axis `j`.
fn rotation(rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(EMBEDDING_DIM);
    while rows.len() < EMBEDDING_DIM {
        let mut v: Vec<f32> = (0..EMBEDDING_DIM).map(|_| rng.normal()).collect();
        for r in &rows {
            let d: f32 = v.iter().zip(r).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(r).for_each(|(a, b)| *a -= d * b);
        }
        if v.iter().map(|x| x * x).sum::<f32>() > 1e-6 {
            normalise(&mut v);
            rows.push(v);
        }
    }
    rows
}

/// Draws identities and faces: `centre()` then any number of `face(&centre)`.
enum Source {
    Isotropic,
    Fit { fit: Fit, basis: Vec<Vec<f32>> },
}

impl Source {
    fn new(generator: Generator, fit: Option<&Fit>, rng: &mut Rng) -> anyhow::Result<Source> {
        Ok(match generator {
            Generator::Isotropic => Source::Isotropic,
            Generator::LfwFit => Source::Fit {
                fit: match fit {
                    Some(f) => f.clone(),
                    None => Fit::committed()?,
                },
                basis: rotation(rng),
            },
        })
    }

    /// Coordinates on the axes (isotropic: on the embedding's own).
    fn centre(&self, rng: &mut Rng) -> Vec<f32> {
        match self {
            Source::Isotropic => rng.unit(None, 1.0),
            Source::Fit { fit, .. } => fit
                .axes
                .iter()
                .map(|[b, _, m]| (*m + b.sqrt() * f64::from(rng.normal())) as f32)
                .collect(),
        }
    }

    fn face(&self, centre: &[f32], rng: &mut Rng) -> Vec<f32> {
        match self {
            // Noise per face: sigma in 0.03..0.10 gives same-identity cosines of ~0.4-0.9.
            Source::Isotropic => {
                let sigma = 0.03 + 0.07 * rng.uniform() as f32;
                rng.unit(Some(centre), sigma)
            }
            Source::Fit { fit, basis } => {
                let s = fit.draw_strength(rng);
                let mut out = vec![0f32; EMBEDDING_DIM];
                for ((c, [_, w, _]), axis) in centre.iter().zip(&fit.axes).zip(basis) {
                    let x = c + s * w.sqrt() as f32 * rng.normal();
                    out.iter_mut().zip(axis).for_each(|(o, a)| *o += x * a);
                }
                normalise(&mut out);
                out
            }
        }
    }
}

/// `n` gallery faces (`per_identity` consecutive rows per identity) and `queries` fresh faces
/// of random identities among them, as flat rows.
pub fn dataset(
    generator: Generator,
    fit: Option<&Fit>,
    n: usize,
    queries: usize,
    per_identity: usize,
) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
    let mut rng = Rng(0x5EED_F00D ^ n as u64);
    let source = Source::new(generator, fit, &mut rng)?;
    let per = per_identity.max(1);
    let identities = n.div_ceil(per);
    let centres: Vec<Vec<f32>> = (0..identities).map(|_| source.centre(&mut rng)).collect();
    let mut base = Vec::with_capacity(n * EMBEDDING_DIM);
    for i in 0..n {
        base.extend(source.face(&centres[i / per], &mut rng));
    }
    let mut q = Vec::with_capacity(queries * EMBEDDING_DIM);
    for _ in 0..queries {
        let who = (rng.uniform() * identities as f64) as usize % identities.max(1);
        q.extend(source.face(&centres[who], &mut rng));
    }
    Ok((base, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_survives_its_own_text() {
        let fit = Fit {
            axes: (0..EMBEDDING_DIM)
                .map(|i| [1.0 / (i + 1) as f64, 0.002, 0.01 * i as f64])
                .collect(),
            strength: vec![0.5, 0.9, 1.0, 1.1, 2.0],
        };
        let back = Fit::parse(&fit.to_text("a\nb")).expect("parses");
        assert_eq!(back.axes.len(), EMBEDDING_DIM);
        assert_eq!(back.strength, fit.strength);
        for (a, b) in back.axes.iter().zip(&fit.axes) {
            for k in 0..3 {
                assert!(
                    (a[k] - b[k]).abs() <= 1e-6 * b[k].abs().max(1e-9),
                    "{a:?} {b:?}"
                );
            }
        }
        assert!(Fit::parse("axis 1 2 3\n").is_err());
        assert!(Fit::parse("axis x 2 3\n").is_err());
    }

    #[test]
    fn the_committed_fit_parses() {
        Fit::committed().expect("the committed fit parses");
    }

    #[test]
    fn generated_faces_are_unit_and_faces_of_one_identity_are_closer() {
        for generator in [Generator::Isotropic, Generator::LfwFit] {
            let (base, _) = dataset(generator, None, 400, 0, 4).expect("generates");
            let rows: Vec<&[f32]> = base.chunks_exact(EMBEDDING_DIM).collect();
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
            for r in &rows {
                assert!((dot(r, r) - 1.0).abs() < 1e-4);
            }
            let same: f32 = (0..100).map(|i| dot(rows[4 * i], rows[4 * i + 1])).sum();
            let other: f32 = (0..99).map(|i| dot(rows[4 * i], rows[4 * i + 4])).sum();
            assert!(same / 100.0 > other / 99.0 + 0.2, "{generator:?}");
        }
    }
}
