//! Passive liveness on the upstream sample images through the real models.

mod common;

use std::sync::OnceLock;

use common::{config, models_dir, repo_path};
use vision::{largest, Pipeline};

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        Pipeline::load(&models_dir(), config())
            .unwrap_or_else(|e| panic!("models must be fetched before the tests: {e}"))
    })
}

/// The live score of the largest face of a fixture, and that face's width in pixels.
fn live_score(name: &str) -> (f32, f32) {
    let p = pipeline();
    let bytes = std::fs::read(repo_path("fixtures/liveness").join(name)).expect("fixture");
    let img = p.decode(&bytes).expect("decodes");
    let faces = p.detect(&img).expect("detects");
    let face = largest(&faces).unwrap_or_else(|| panic!("no face in {name}"));
    let liveness = p
        .liveness()
        .expect("liveness models installed (scripts/fetch-liveness.sh)");
    (liveness.score(&img, face).expect("scores"), face.bbox.width)
}

#[test]
fn attacks_fail_and_the_live_selfie_passes() {
    // Reference fused scores with YuNet boxes (../shared/models/liveness/PROVENANCE.md).
    for (name, reference, live) in [
        ("image_F1.jpg", 0.22, false),
        ("image_F2.jpg", 0.002, false),
        ("image_T1.jpg", 1.00, true),
    ] {
        let (score, width) = live_score(name);
        println!("{name}: live score {score:.4} (face {width:.0} px wide)");
        assert!(
            (score - reference).abs() <= 0.05,
            "{name}: {score} vs reference {reference}"
        );
        assert_eq!(score > 0.6, live, "{name}: {score}");
    }
}
