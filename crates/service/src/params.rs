//! The numbers and names every use case shares, once: how many images, which search modes,
//! the documented defaults and ranges of thresholds.

/// Images per person on enrolment and per probe (the store keeps as many faces).
pub const MAX_IMAGES: usize = store::MAX_FACES_PER_PERSON;
/// Gallery images of a 1:1 compare.
pub const MAX_GALLERY_IMAGES: usize = 10;
/// Collections one person may be enrolled in at once.
pub const MAX_COLLECTIONS: usize = 100;

/// `max_results` of a search: at most this many, 10 when absent.
pub const MAX_RESULTS: u32 = 100;
pub const DEFAULT_MAX_RESULTS: u32 = 10;
/// `max_results` of `/detect` when absent (the legacy contract's default).
pub const DETECT_DEFAULT_MAX_RESULTS: u32 = 99;
/// `/detect` with a collection searches at most this many faces (the first, best detection
/// score first); the others are answered without matches. Each searched face costs an
/// embedding, 20-50 ms of one core (`visage bench vision`, "embed"), so 20 bound such a
/// request to about a second of CPU, where 99 faces took 5.8 s; the group photos of
/// `fixtures/faces` hold 3 to 6 faces.
pub const DETECT_MAX_SEARCHED_FACES: usize = 20;

/// The floor of `min_score` on every search but `/search`, which allows [`SEARCH_MIN_SCORE_FLOOR`].
pub const MIN_SCORE_FLOOR: f64 = 0.5;
pub const SEARCH_MIN_SCORE_FLOOR: f64 = 0.2;
/// The documented default of search thresholds where `min_score` is optional.
pub const DEFAULT_MIN_SCORE: f64 = 0.81;
/// `/detect`'s range for `min_score` (legacy contract).
pub const DETECT_MIN_SCORE_RANGE: (f64, f64) = (0.70, 0.95);

/// `compare_min_score`: range and default.
pub const COMPARE_MIN_SCORE_RANGE: (f64, f64) = (0.67, 0.95);
pub const DEFAULT_COMPARE_MIN_SCORE: f64 = 0.85;

/// The documented default of `liveness_min_score` where it is optional.
pub const DEFAULT_LIVENESS_MIN_SCORE: f64 = 0.6;
/// `/persons/search-live-face` without the current docs' required fields gets the legacy
/// defaults: the duplicate threshold `min_score` 0.8, `liveness_min_score` 0.65 (and
/// `search_mode` FAST, [`SearchMode::DEFAULT`]).
pub const LEGACY_LIVE_ENROL_MIN_SCORE: f64 = 0.8;
pub const LEGACY_LIVENESS_MIN_SCORE: f64 = 0.65;

/// The floor of `liveness_min_score` on the compare-and-liveness endpoints.
pub const COMPARE_LIVENESS_MIN_SCORE_FLOOR: f64 = 0.52;

/// `FAST` (the approximate graph on large galleries) or `ACCURATE` (every face compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Fast,
    Accurate,
}

impl SearchMode {
    /// The names clients send, in the order error messages list them.
    pub const NAMES: [&'static str; 2] = ["FAST", "ACCURATE"];
    /// Where a mode is optional.
    pub const DEFAULT: SearchMode = SearchMode::Fast;

    pub fn parse(name: &str) -> Option<SearchMode> {
        match name {
            "FAST" => Some(SearchMode::Fast),
            "ACCURATE" => Some(SearchMode::Accurate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Fast => "FAST",
            SearchMode::Accurate => "ACCURATE",
        }
    }

    pub(crate) fn engine(self) -> index::Mode {
        match self {
            SearchMode::Fast => index::Mode::Fast,
            SearchMode::Accurate => index::Mode::Exact,
        }
    }
}

/// A live score (the probability that the face is a live person, 0..=1).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct LiveScore(f32);

impl LiveScore {
    pub(crate) fn new(value: f32) -> Self {
        LiveScore(value)
    }

    /// Passes when strictly above the threshold.
    pub fn passes(self, min_score: f64) -> bool {
        f64::from(self.0) > min_score
    }

    /// As shown in answers: four decimals.
    pub fn rounded(self) -> f64 {
        vision::round_score(f64::from(self.0))
    }
}
