//! The API's 0..1 match score, and its one fixed map from SFace (2021dec) cosine.
//!
//! The map is piecewise linear and strictly increasing, so every score threshold is exactly
//! one cosine threshold. Its knots were placed from LFW (`pairs-dev.txt`, folds 1-5, and every
//! cross-identity pair of its 3,811 images); `visage eval lfw` prints the resulting table of
//! score threshold -> false-accept and true-accept rates (`docs/scores.md`). Changing the
//! embedding model means re-running that evaluation and changing these knots.

/// `(cosine, score)` knots, both strictly increasing. Anchors, from `visage eval lfw`:
/// 0.70 at cosine 0.36, above every one of the 1,500 View-2 impostor pairs (false-match rate
/// over all 7.3M cross-identity pairs 1.3e-3, true-accept rate 98.6%); 0.81 (the search
/// default) at 0.53, where ~0.5% of images of people not enrolled match anyone in a gallery
/// of 3,810 faces (per-pair rate ~1.2e-6, true-accept 90%); 0.85 (the compare default) at
/// 0.56, above the per-pair rate 1.1e-6 (true-accept 85%).
const KNOTS: [(f32, f32); 10] = [
    (-1.0, 0.0),
    (0.20, 0.50),
    (0.30, 0.60),
    (0.36, 0.70),
    (0.44, 0.75),
    (0.53, 0.81),
    (0.56, 0.85),
    (0.65, 0.90),
    (0.80, 0.95),
    (1.0, 1.0),
];

/// A match score in `0.0..=1.0` (1 = the same image).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Score(f32);

/// The score map's model version, reported beside calibrated numbers.
pub const SCORE_MAP_MODEL: &str = "sface-2021dec";

impl Score {
    /// `None` unless `value` is within `0..=1`.
    pub fn new(value: f64) -> Option<Score> {
        (0.0..=1.0).contains(&value).then_some(Score(value as f32))
    }

    /// On SFace's map (the default embedder's); a server maps with its embedder's
    /// [`ScoreMap`].
    pub fn from_cosine(cosine: f32) -> Score {
        Score(interpolate(&KNOTS, cosine, |k| k.0, |k| k.1))
    }

    /// The lowest cosine whose score is at least this one, on SFace's map.
    pub fn to_cosine(self) -> f32 {
        interpolate(&KNOTS, self.0, |k| k.1, |k| k.0)
    }

    pub fn value(self) -> f32 {
        self.0
    }

    /// Rounded to 4 decimals, as shown in responses.
    pub fn rounded(self) -> f64 {
        round_score(f64::from(self.0))
    }
}

/// Every score the API shows (match, live, detection confidence) has 4 decimals.
pub fn round_score(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

/// One embedding model's monotone map from cosine to score: `(cosine, score)` knots, both
/// strictly increasing, from `(-1, 0)` to `(1, 1)` (a model's descriptor carries them).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreMap {
    knots: Vec<(f32, f32)>,
}

impl ScoreMap {
    /// `None` unless the knots are strictly increasing in both coordinates and run from
    /// `(-1, 0)` to `(1, 1)`.
    pub fn new(knots: Vec<(f32, f32)>) -> Option<ScoreMap> {
        let increasing = knots.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let ends = knots.first() == Some(&(-1.0, 0.0)) && knots.last() == Some(&(1.0, 1.0));
        (increasing && ends).then_some(ScoreMap { knots })
    }

    /// SFace 2021dec's map.
    pub fn sface() -> ScoreMap {
        ScoreMap {
            knots: KNOTS.to_vec(),
        }
    }

    pub fn knots(&self) -> &[(f32, f32)] {
        &self.knots
    }

    pub fn score(&self, cosine: f32) -> Score {
        Score(interpolate(&self.knots, cosine, |k| k.0, |k| k.1))
    }

    /// The lowest cosine whose score is at least `score`.
    pub fn cosine(&self, score: Score) -> f32 {
        interpolate(&self.knots, score.0, |k| k.1, |k| k.0)
    }
}

/// Linear interpolation through `knots`, from the coordinate `from` to the coordinate `to`;
/// clamped at both ends.
fn interpolate(
    knots: &[(f32, f32)],
    x: f32,
    from: fn(&(f32, f32)) -> f32,
    to: fn(&(f32, f32)) -> f32,
) -> f32 {
    let (Some(first), Some(last)) = (knots.first(), knots.last()) else {
        return 0.0;
    };
    if x.is_nan() {
        return to(first);
    }
    if x <= from(first) {
        return to(first);
    }
    for pair in knots.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if x <= from(b) {
            let t = (x - from(a)) / (from(b) - from(a));
            return to(a) + t * (to(b) - to(a));
        }
    }
    to(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knots_are_strictly_increasing() {
        for w in KNOTS.windows(2) {
            assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1, "{w:?}");
        }
        assert_eq!(KNOTS[0], (-1.0, 0.0));
        assert_eq!(KNOTS[KNOTS.len() - 1], (1.0, 1.0));
    }

    #[test]
    fn map_is_monotone_clamped_and_invertible() {
        let mut last = -1.0;
        for i in -120..=120 {
            let c = i as f32 / 100.0;
            let s = Score::from_cosine(c).value();
            assert!((0.0..=1.0).contains(&s));
            assert!(s >= last, "not monotone at {c}");
            last = s;
            if (-1.0..=1.0).contains(&c) {
                let back = Score::from_cosine(c).to_cosine();
                assert!((back - c).abs() < 1e-5, "{c} -> {s} -> {back}");
            }
        }
        assert_eq!(Score::from_cosine(f32::NAN).value(), 0.0);
    }

    #[test]
    fn a_score_map_refuses_knots_that_are_not_increasing_or_do_not_span() {
        assert!(ScoreMap::new(KNOTS.to_vec()).is_some());
        assert!(ScoreMap::new(vec![(-1.0, 0.0), (0.5, 0.5), (0.4, 0.6), (1.0, 1.0)]).is_none());
        assert!(ScoreMap::new(vec![(-1.0, 0.0), (0.5, 0.5)]).is_none());
        let steep = ScoreMap::new(vec![(-1.0, 0.0), (0.3, 0.81), (1.0, 1.0)]).expect("valid");
        assert!((steep.score(0.3).value() - 0.81).abs() < 1e-6);
        assert!((steep.cosine(Score(0.81)) - 0.3).abs() < 1e-6);
    }

    #[test]
    fn scores_outside_the_unit_interval_are_refused() {
        assert!(Score::new(-0.01).is_none());
        assert!(Score::new(1.01).is_none());
        assert!(Score::new(f64::NAN).is_none());
        assert_eq!(Score::new(0.81).map(|s| s.rounded()), Some(0.81));
    }
}
