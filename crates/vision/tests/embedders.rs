//! Embedder descriptors against the real SFace model: a descriptor is refused at load unless
//! its model's sha256 and output dimension match; SFace under a second descriptor embeds
//! exactly as the built-in one.

mod common;

use std::path::{Path, PathBuf};

use common::{config, models_dir, repo_path};
use vision::models::EMBEDDER_FILE;
use vision::{EmbedderDescriptor, Error, Pipeline};

const BUILT_IN: &str = include_str!("../embedders/sface-2021dec.toml");

/// A descriptor file in `dir`: the built-in one with `edits` applied, its `file` pointing at
/// the fetched SFace model.
fn descriptor(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let model = models_dir().join(EMBEDDER_FILE);
    let mut text = BUILT_IN.replacen(
        &format!("file = \"{EMBEDDER_FILE}\""),
        &format!("file = {:?}", model.to_string_lossy()),
        1,
    );
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join("embedder.toml");
    std::fs::write(&path, text).expect("write descriptor");
    path
}

fn load(path: &Path) -> vision::Result<Pipeline> {
    let d = EmbedderDescriptor::from_file(path)?;
    Pipeline::load_with_embedder(&models_dir(), config(), &d)
}

fn embedding(p: &Pipeline, name: &str) -> vision::Embedding {
    let bytes = std::fs::read(repo_path("fixtures/faces").join(name)).expect("fixture");
    let img = p.decode(&bytes).expect("decodes");
    p.largest_face(&img)
        .expect("runs")
        .expect("a face")
        .embedding
}

#[test]
fn a_descriptor_whose_sha256_does_not_match_its_model_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = descriptor(
        dir.path(),
        &[("sha256 = \"0ba9fbfa", "sha256 = \"1ba9fbfa")],
    );
    let err = load(&path).err().expect("refused");
    assert!(
        matches!(err, Error::DescriptorHashMismatch { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("sface-2021dec")
            && message.contains("0ba9fbfa01b5270c")
            && message.contains("its descriptor declares 1ba9fbfa"),
        "{message}"
    );
}

#[test]
fn a_descriptor_whose_dimension_does_not_match_its_model_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = descriptor(dir.path(), &[("dimension = 128", "dimension = 512")]);
    let err = load(&path).err().expect("refused");
    assert_eq!(
        err.to_string(),
        "embedder sface-2021dec gives 128 values per face, but its descriptor declares dimension 512"
    );
}

#[test]
fn a_descriptor_whose_model_file_is_absent_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = models_dir().join(EMBEDDER_FILE);
    let path = descriptor(
        dir.path(),
        &[(&*model.to_string_lossy(), "/nonexistent/model.onnx")],
    );
    let err = load(&path).err().expect("refused");
    assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
}

#[test]
fn sface_under_a_second_descriptor_embeds_exactly_as_the_built_in_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = descriptor(
        dir.path(),
        &[("id = \"sface-2021dec\"", "id = \"sface-copy\"")],
    );
    let copy = load(&path).expect("loads");
    let built_in = Pipeline::load(&models_dir(), config()).expect("loads");
    assert_eq!(copy.embedder().id, "sface-copy");
    assert_eq!(built_in.embedder().id, "sface-2021dec");
    for name in ["obama.jpg", "biden.jpg"] {
        let (a, b) = (embedding(&copy, name), embedding(&built_in, name));
        assert_eq!(a.dimension(), 128);
        assert!((a.cosine(&b) - 1.0).abs() < 1e-6, "{name}");
    }
}

#[test]
fn sface_projected_to_512_values_embeds_512_values_with_sfaces_cosines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wide = dir.path().join("sface-512.onnx");
    let sha =
        vision::projected::write_projected(&models_dir().join(EMBEDDER_FILE), &wide, 128, 512, 20)
            .expect("writes the model");
    let path = descriptor(
        dir.path(),
        &[
            ("id = \"sface-2021dec\"", "id = \"sface-512\""),
            (
                "sha256 = \"0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79\"",
                &format!("sha256 = \"{sha}\""),
            ),
            ("dimension = 128", "dimension = 512"),
        ],
    );
    let text = std::fs::read_to_string(&path).expect("descriptor").replace(
        &format!("{:?}", models_dir().join(EMBEDDER_FILE).to_string_lossy()),
        &format!("{:?}", wide.to_string_lossy()),
    );
    std::fs::write(&path, text).expect("descriptor");
    let wide = load(&path).expect("loads");
    let built_in = Pipeline::load(&models_dir(), config()).expect("loads");
    let names = ["obama.jpg", "obama2.jpg", "biden.jpg"];
    let w: Vec<_> = names.iter().map(|n| embedding(&wide, n)).collect();
    let n: Vec<_> = names.iter().map(|n| embedding(&built_in, n)).collect();
    assert!(w.iter().all(|e| e.dimension() == 512));
    for i in 0..names.len() {
        for j in 0..names.len() {
            let (a, b) = (w[i].cosine(&w[j]), n[i].cosine(&n[j]));
            assert!(
                (a - b).abs() < 1e-4,
                "{} {}: {a} vs {b}",
                names[i],
                names[j]
            );
        }
    }
    // Declared with SFace's 128 values, it is refused.
    let text = std::fs::read_to_string(&path).expect("descriptor");
    std::fs::write(&path, text.replace("dimension = 512", "dimension = 128")).expect("write");
    let err = load(&path).err().expect("refused");
    assert!(err.to_string().contains("512"), "{err}");
}

#[test]
fn the_descriptor_scaling_and_colour_order_reach_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = descriptor(
        dir.path(),
        &[("colour_order = \"rgb\"", "colour_order = \"bgr\"")],
    );
    let bgr = load(&path).expect("loads");
    let built_in = Pipeline::load(&models_dir(), config()).expect("loads");
    let (a, b) = (
        embedding(&bgr, "obama.jpg"),
        embedding(&built_in, "obama.jpg"),
    );
    let cosine = a.cosine(&b);
    assert!(cosine < 0.999, "swapped planes changed nothing: {cosine}");
    // The same person still, through a model that is fairly robust to colour.
    assert!(cosine > 0.5, "{cosine}");
}
