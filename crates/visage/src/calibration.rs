//! What a score threshold means on LFW: false-accept and true-accept rates on the View-2
//! pairs, and false-match rates over every cross-identity pair of the same images (millions
//! of pairs, enough to see rates near 1e-6, which 1,500 impostor pairs cannot show).

use rayon::prelude::*;
use vision::{Embedding, Score, ScoreMap};

/// Impostor cosines below this are only counted, not kept: thresholds of interest lie above.
const TAIL_FROM: f32 = 0.15;

/// SFace's score knots and its false-match rates there over every LFW cross-identity pair
/// (`visage eval lfw`, docs/scores.md): another model's knots put each score where that
/// model has the same rate, so a threshold keeps its meaning across models.
const RATE_ANCHORS: [(f32, f64); 5] = [
    (0.50, 1.2e-1),
    (0.60, 1.0e-2),
    (0.70, 1.3e-3),
    (0.75, 4.5e-5),
    (0.81, 1.1e-6),
];
/// Above 0.81 SFace's measured rates reach LFW's label-error floor (~1e-6) and stop telling
/// thresholds apart: these knots keep SFace's spacing, as shares of the way from the 0.81
/// cosine (0.53) to 1 (0.56, 0.65, 0.80).
const SPACED_ABOVE: [(f32, f32); 3] = [
    (0.85, 0.03 / 0.47),
    (0.90, 0.12 / 0.47),
    (0.95, 0.27 / 0.47),
];

/// Cosines of every pair of distinct images, split by whether the identities match.
pub struct AllPairs {
    genuine: Vec<f32>,
    /// Impostor cosines at or above [`TAIL_FROM`].
    impostor_tail: Vec<f32>,
    impostors: u64,
    /// Per image: its highest cosine with any image of another identity (what decides
    /// whether that image, used as a probe of someone not enrolled, falsely matches).
    best_impostor: Vec<f32>,
}

impl AllPairs {
    /// `items`: (identity, embedding) per image.
    pub fn compute(items: &[(&str, &Embedding)]) -> AllPairs {
        let per_row: Vec<(Vec<f32>, Vec<f32>, u64)> = (0..items.len())
            .into_par_iter()
            .map(|i| {
                let (id_i, e_i) = items[i];
                let mut genuine = Vec::new();
                let mut tail = Vec::new();
                let mut impostors = 0;
                for &(id_j, e_j) in &items[i + 1..] {
                    let c = e_i.cosine(e_j);
                    if id_i == id_j {
                        genuine.push(c);
                    } else {
                        impostors += 1;
                        if c >= TAIL_FROM {
                            tail.push(c);
                        }
                    }
                }
                (genuine, tail, impostors)
            })
            .collect();
        let best_impostor = items
            .par_iter()
            .map(|&(id_i, e_i)| {
                items
                    .iter()
                    .filter(|(id_j, _)| *id_j != id_i)
                    .map(|(_, e_j)| e_i.cosine(e_j))
                    .fold(f32::NEG_INFINITY, f32::max)
            })
            .collect();
        let mut all = AllPairs {
            genuine: Vec::new(),
            impostor_tail: Vec::new(),
            impostors: 0,
            best_impostor,
        };
        for (g, t, n) in per_row {
            all.genuine.extend(g);
            all.impostor_tail.extend(t);
            all.impostors += n;
        }
        all
    }

    pub fn impostor_pairs(&self) -> u64 {
        self.impostors
    }

    pub fn genuine_pairs(&self) -> usize {
        self.genuine.len()
    }

    /// Share of impostor pairs with cosine >= `cosine` (exact for `cosine` >= 0.15).
    pub fn false_match_rate(&self, cosine: f32) -> f64 {
        let above = self.impostor_tail.iter().filter(|&&c| c >= cosine).count();
        above as f64 / self.impostors.max(1) as f64
    }

    /// Share of images that, searched against all the images of other identities (a
    /// gallery of about as many faces as there are images), match one at `cosine` or above.
    pub fn open_set_false_match_rate(&self, cosine: f32) -> f64 {
        share_at_least(&self.best_impostor, cosine)
    }

    pub fn true_match_rate(&self, cosine: f32) -> f64 {
        share_at_least(&self.genuine, cosine)
    }

    /// The lowest cosine (to 4 decimals) at which a share `rate` of impostor pairs match,
    /// `rate` taken to the nearest whole pair (the anchors have two digits: SFace's 1.1e-6
    /// is 8 of 7,255,541 pairs, not 7); [`TAIL_FROM`] when even that is above `rate`.
    pub fn cosine_at_false_match_rate(&self, rate: f64) -> f32 {
        let allowed = (rate * self.impostors as f64).round() as usize;
        let mut tail = self.impostor_tail.clone();
        tail.sort_by(|a, b| b.total_cmp(a));
        match tail.get(allowed) {
            // Just above the first impostor cosine that would be one too many.
            Some(&c) => ((c * 1e4).floor() + 1.0) / 1e4,
            None => TAIL_FROM,
        }
    }

    /// The highest cosine at which at least a share `rate` of genuine pairs match.
    pub fn cosine_at_true_match_rate(&self, rate: f64) -> f32 {
        let mut genuine = self.genuine.clone();
        genuine.sort_by(|a, b| b.total_cmp(a));
        let needed = (rate * genuine.len() as f64).ceil() as usize;
        genuine
            .get(needed.saturating_sub(1))
            .copied()
            .unwrap_or(f32::NEG_INFINITY)
    }

    /// Score knots for the model these pairs were embedded by (see [`RATE_ANCHORS`]).
    pub fn proposed_knots(&self) -> Vec<(f32, f32)> {
        let mut knots = vec![(-1.0f32, 0.0f32)];
        let mut last = -1.0f32;
        for (score, rate) in RATE_ANCHORS {
            last = self.cosine_at_false_match_rate(rate).max(last + 0.005);
            knots.push((last, score));
        }
        let base = last;
        for (score, share) in SPACED_ABOVE {
            last = (base + share * (1.0 - base)).max(last + 0.001);
            knots.push((last.min(0.999), score));
        }
        knots.push((1.0, 1.0));
        knots
    }
}

/// Knots as the `calibration` field of a descriptor.
pub fn knots_toml(knots: &[(f32, f32)]) -> String {
    let rows: Vec<String> = knots
        .iter()
        .map(|(c, s)| format!("    [{c:.4}, {s:.2}],"))
        .collect();
    format!("calibration = [\n{}\n]", rows.join("\n"))
}

pub fn share_at_least(values: &[f32], threshold: f32) -> f64 {
    values.iter().filter(|&&v| v >= threshold).count() as f64 / values.len().max(1) as f64
}

/// Chance that a probe of someone not enrolled matches at least one of `gallery` faces, when
/// each comparison falsely matches with probability `fmr` (independence assumed).
pub fn false_positive_identification_rate(fmr: f64, gallery: f64) -> f64 {
    1.0 - (1.0 - fmr).powf(gallery)
}

/// The operating points that compare models (docs/embedders.md), over all pairs: the share
/// of genuine pairs matched where 1e-3 and 1e-6 of impostor pairs match, and the share of
/// impostor pairs matched where 95% of genuine pairs do.
pub fn print_operating_points(all: &AllPairs) {
    for rate in [1e-3, 1e-6] {
        let c = all.cosine_at_false_match_rate(rate);
        println!(
            "all_pairs tar_at_far_{rate:.0e} {:.4} (cosine {c:.4})",
            all.true_match_rate(c)
        );
    }
    let c = all.cosine_at_true_match_rate(0.95);
    println!(
        "all_pairs far_at_tar_0.95 {:.2e} (cosine {c:.4})",
        all.false_match_rate(c)
    );
}

/// The score table of `docs/scores.md` on the model's map `scores`: one row per score
/// threshold.
pub fn print_score_table(genuine: &[f32], impostor: &[f32], all: &AllPairs, scores: &ScoreMap) {
    println!(
        "score_table pairs: {} genuine / {} impostor; all pairs: {} genuine / {} impostor",
        genuine.len(),
        impostor.len(),
        all.genuine_pairs(),
        all.impostor_pairs()
    );
    println!("score\tcosine\tFAR_pairs\tTAR_pairs\tFMR_all\tTMR_all\tFPIR_1e3\tFPIR_1e5\tFPIR_1e6");
    for s in [0.5, 0.6, 0.7, 0.75, 0.81, 0.85, 0.9, 0.95] {
        let Some(score) = Score::new(s) else { continue };
        let c = scores.cosine(score);
        let fmr = all.false_match_rate(c);
        println!(
            "{s:.2}\t{c:.4}\t{:.4}%\t{:.2}%\t{:.2e}\t{:.2}%\t{:.2}%\t{:.1}%\t{:.1}%",
            share_at_least(impostor, c) * 100.0,
            share_at_least(genuine, c) * 100.0,
            fmr,
            all.true_match_rate(c) * 100.0,
            false_positive_identification_rate(fmr, 1e3) * 100.0,
            false_positive_identification_rate(fmr, 1e5) * 100.0,
            false_positive_identification_rate(fmr, 1e6) * 100.0,
        );
    }
    println!(
        "cosine_tail cosine\tFMR_all\tTMR_all\tTAR_pairs\tFPIR_measured (gallery {} images)",
        all.best_impostor.len().saturating_sub(1)
    );
    for i in 0..=20 {
        let c = 0.30 + 0.02 * i as f32;
        println!(
            "cosine_tail {c:.2}\t{:.2e}\t{:.2}%\t{:.2}%\t{:.2}%",
            all.false_match_rate(c),
            all.true_match_rate(c) * 100.0,
            share_at_least(genuine, c) * 100.0,
            all.open_set_false_match_rate(c) * 100.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Embedding {
        let mut v = vec![0.0; vision::EMBEDDING_DIM];
        v[..values.len()].copy_from_slice(values);
        Embedding::from_slice(&v).expect("non-zero")
    }

    #[test]
    fn pairs_are_split_by_identity_and_rates_counted() {
        let (a, b, c) = (unit(&[1.0, 0.0]), unit(&[1.0, 0.1]), unit(&[0.0, 1.0]));
        let items = [("x", &a), ("x", &b), ("y", &c)];
        let all = AllPairs::compute(&items);
        assert_eq!(all.genuine_pairs(), 1);
        assert_eq!(all.impostor_pairs(), 2);
        assert!(all.true_match_rate(0.99) == 1.0);
        // x-b vs y has cosine ~0.0995, x-a vs y exactly 0: both below any threshold >= 0.15.
        assert_eq!(all.false_match_rate(0.2), 0.0);
        let fpir = false_positive_identification_rate(1e-6, 1e6);
        assert!((fpir - 0.632).abs() < 1e-3, "{fpir}");
    }

    #[test]
    fn the_cosine_at_a_true_match_rate_keeps_that_share_of_genuine_pairs() {
        // Genuine cosines 0.9, 0.8, ..., 0.0 (ten identities of two images each).
        let embeddings: Vec<(Embedding, Embedding)> = (0..10)
            .map(|i| {
                let c = 0.9 - 0.1 * i as f32;
                let axis = |k: usize, v: &[f32]| {
                    let mut e = vec![0.0; vision::EMBEDDING_DIM];
                    e[2 * k] = v[0];
                    e[2 * k + 1] = v[1];
                    Embedding::from_slice(&e).expect("non-zero")
                };
                (axis(i, &[1.0, 0.0]), axis(i, &[c, (1.0 - c * c).sqrt()]))
            })
            .collect();
        let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        let items: Vec<(&str, &Embedding)> = embeddings
            .iter()
            .zip(&names)
            .flat_map(|((a, b), n)| [(n.as_str(), a), (n.as_str(), b)])
            .collect();
        let all = AllPairs::compute(&items);
        assert_eq!(all.genuine_pairs(), 10);
        assert!((all.cosine_at_true_match_rate(0.5) - 0.5).abs() < 1e-4);
        assert!((all.cosine_at_true_match_rate(0.95) - 0.0).abs() < 1e-4);
        assert!(all.true_match_rate(all.cosine_at_true_match_rate(0.3)) >= 0.3);
    }

    #[test]
    fn proposed_knots_put_each_score_at_the_anchored_false_match_rate() {
        // 2,000 identities of one image each on a spread of directions: ~2M impostor pairs.
        let embeddings: Vec<Embedding> = (0..2000)
            .map(|i| {
                let v: Vec<f32> = (0..vision::EMBEDDING_DIM)
                    .map(|d| ((i * 7919 + d * 104_729) as f32 * 0.618).sin())
                    .collect();
                Embedding::from_slice(&v).expect("non-zero")
            })
            .collect();
        let names: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
        let items: Vec<(&str, &Embedding)> =
            names.iter().map(String::as_str).zip(&embeddings).collect();
        let all = AllPairs::compute(&items);
        let knots = all.proposed_knots();
        let map = ScoreMap::new(knots.clone()).expect("valid knots");
        for (score, rate) in RATE_ANCHORS {
            let c = map.cosine(Score::new(f64::from(score)).expect("score"));
            if c > TAIL_FROM {
                let half_a_pair = 0.5 / all.impostor_pairs() as f64;
                assert!(
                    all.false_match_rate(c) <= rate + half_a_pair,
                    "{score}: {c}"
                );
            }
        }
        assert!(knots_toml(&knots).starts_with("calibration = [\n    [-1.0000, 0.00],"));
    }
}
