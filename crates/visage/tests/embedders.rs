//! Embedding models as versioned parts, through real processes: a server refuses a
//! descriptor its model does not match; a search never compares faces another model
//! embedded; `visage reembed` moves a gallery to another model from the kept crops, after
//! which it searches as well as before; erasure then leaves no byte of the crop, the
//! embedding or the thumbnail.

mod common;

use std::path::{Path, PathBuf};

use common::{create_person, files_containing, fixture_b64, models_dir, person_body, post_ok};
use common::{visage, visage_fails, TestServer};
use serde_json::json;
use vision::models::EMBEDDER_FILE;

const BUILT_IN: &str = include_str!("../../vision/embedders/sface-2021dec.toml");

/// Model B: SFace under a second descriptor with another id (`edits` change it further).
fn descriptor_b(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let model = models_dir().join(EMBEDDER_FILE);
    let mut text = BUILT_IN
        .replacen("id = \"sface-2021dec\"", "id = \"sface-copy-b\"", 1)
        .replacen(
            &format!("file = \"{EMBEDDER_FILE}\""),
            &format!("file = {:?}", model.to_string_lossy()),
            1,
        );
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join("model-b.toml");
    std::fs::write(&path, text).expect("write descriptor");
    path
}

/// `(person id, score)` of every match, and the faces searched.
fn search(s: &TestServer, t: &str, image: &str) -> (Vec<(String, f64)>, u64) {
    let body = json!({"images": [fixture_b64(image)], "min_score": 0.2, "search_mode": "ACCURATE"});
    let reply = post_ok(s, t, "/search", body);
    let matches = reply["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            let id = m["id"].as_str().expect("id").to_owned();
            (id, m["score"].as_f64().expect("score"))
        })
        .collect();
    (
        matches,
        reply["faces_searched"].as_u64().expect("faces_searched"),
    )
}

fn reembed(s_args: &[String], to: &Path) -> String {
    let mut args = vec!["reembed".to_owned(), "--to".to_owned(), path_str(to)];
    args.extend(["--models-dir".to_owned(), path_str(&models_dir())]);
    args.extend(s_args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    String::from_utf8_lossy(&visage(&args).stdout).into_owned()
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}

const PROBES: [&str; 3] = ["obama2.jpg", "obama3.jpg", "biden.jpg"];

#[test]
fn a_gallery_reembedded_to_another_model_searches_as_well_and_models_never_mix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let b = descriptor_b(tmp.path(), &[]);
    let b_arg = path_str(&b);

    // Enrolled with model A (SFace, built in).
    let a = TestServer::start_in(&dir, &[]);
    let t = a.token("acme");
    let obama = create_person(&a, &t, person_body("Barack Obama", "obama.jpg"));
    let biden = create_person(&a, &t, person_body("Joe Biden", "biden.jpg"));
    let ids = [common::id(&obama), common::id(&biden)];
    let before: Vec<_> = PROBES.iter().map(|p| search(&a, &t, p)).collect();
    assert_eq!(before[0].0[0].0, ids[0], "{before:?}");
    assert_eq!(before[0].1, 2);
    let store_args = a.store_args();
    a.stop();

    // Model B does not see model A's faces: nothing compared, nothing found.
    let on_b = TestServer::start_in(&dir, &["--embedder", &b_arg]);
    let t = on_b.token("acme");
    for probe in PROBES {
        assert_eq!(search(&on_b, &t, probe), (vec![], 0), "{probe}");
    }
    on_b.stop();

    let report = reembed(&store_args, &b);
    assert!(
        report.contains("reembed to sface-copy-b: faces 2 "),
        "{report}"
    );

    // Now model B finds the same persons with the same scores; model A finds nobody.
    let on_b = TestServer::start_in(&dir, &["--embedder", &b_arg]);
    let t = on_b.token("acme");
    for (probe, want) in PROBES.iter().zip(&before) {
        let got = search(&on_b, &t, probe);
        assert_eq!(got.1, want.1, "{probe}");
        let got_ids: Vec<&String> = got.0.iter().map(|m| &m.0).collect();
        let want_ids: Vec<&String> = want.0.iter().map(|m| &m.0).collect();
        assert_eq!(got_ids, want_ids, "{probe}");
        for (g, w) in got.0.iter().zip(&want.0) {
            assert!((g.1 - w.1).abs() <= 2e-4, "{probe}: {got:?} vs {want:?}");
        }
    }
    // A second run finds nothing left to move.
    on_b.stop();
    let again = reembed(&store_args, &b);
    assert!(again.contains("faces 0 "), "{again}");
    let a = TestServer::start_in(&dir, &[]);
    let t = a.token("acme");
    assert_eq!(search(&a, &t, "obama2.jpg"), (vec![], 0));
}

#[test]
fn a_descriptor_that_does_not_match_its_model_stops_the_server_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = path_str(&tmp.path().join("data"));
    let models = path_str(&models_dir());
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("sha256 = \"0ba9fbfa", "sha256 = \"1ba9fbfa")],
            "its descriptor declares 1ba9fbfa",
        ),
        (
            &[("dimension = 128", "dimension = 512")],
            "gives 128 values per face, but its descriptor declares dimension 512",
        ),
        (
            &[("input_size = 112", "input_size = 8")],
            "input_size must be 32-512 pixels",
        ),
    ];
    for (i, (edits, want)) in cases.into_iter().enumerate() {
        let case_dir = tmp.path().join(i.to_string());
        std::fs::create_dir(&case_dir).expect("mkdir");
        let descriptor = descriptor_b(&case_dir, edits);
        let args = [
            "serve",
            "--data-dir",
            &data,
            "--models-dir",
            &models,
            "--port",
            "0",
            "--embedder",
            &path_str(&descriptor),
        ];
        let stderr = visage_fails(&args);
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
}

/// The crop's bytes as the server keeps them, from the same pipeline.
fn crop_png(image: &str) -> Vec<u8> {
    let pipeline =
        vision::Pipeline::load(&models_dir(), vision::PipelineConfig::default()).expect("models");
    let bytes = std::fs::read(common::repo_path("fixtures/faces").join(image)).expect("fixture");
    let img = pipeline.decode(&bytes).expect("decodes");
    let face = pipeline.largest_face(&img).expect("runs").expect("a face");
    face.crop_png
}

#[test]
fn erasure_after_reembedding_leaves_no_crop_embedding_or_thumbnail_on_disk() {
    crate::sqlite_only!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let b = descriptor_b(tmp.path(), &[]);
    let a = TestServer::start_in(&dir, &[]);
    let t = a.token("acme");
    let obama = create_person(&a, &t, person_body("Barack Obama", "obama.jpg"));
    create_person(&a, &t, person_body("Joe Biden", "biden.jpg"));
    let store_args = a.store_args();
    a.stop();
    reembed(&store_args, &b);

    let s = TestServer::start_in(&dir, &["--embedder", &path_str(&b)]);
    let t = s.token("acme");
    let (matches, _) = search(&s, &t, "obama2.jpg");
    assert_eq!(matches[0].0, common::id(&obama));
    let crop = crop_png("obama.jpg");
    // Windows past the PNG header, which every crop shares.
    let windows: Vec<&[u8]> = crop[64..].chunks_exact(64).step_by(8).collect();
    let seen = windows
        .iter()
        .filter(|w| !files_containing(&s.data_dir, w).is_empty())
        .count();
    assert!(
        seen * 2 >= windows.len(),
        "the crop is kept: {seen} of {}",
        windows.len()
    );
    let (status, _) = s.delete(
        &format!("{}/persons/{}", common::BASE, common::id(&obama)),
        &t,
    );
    assert_eq!(status, 200);
    for w in &windows {
        assert_eq!(files_containing(&s.data_dir, w), Vec::<String>::new());
    }
    let (matches, searched) = search(&s, &t, "obama2.jpg");
    assert!(matches.iter().all(|m| m.0 != common::id(&obama)));
    assert_eq!(searched, 1);
}
