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

/// Model W: SFace followed by a fixed map to 512 values with orthonormal columns, written
/// here (so no other model is downloaded); it keeps SFace's cosines, so it finds the same
/// persons with the same scores, through embeddings four times as long.
fn descriptor_wide(dir: &Path) -> PathBuf {
    let model = dir.join("sface-512.onnx");
    let sha =
        vision::projected::write_projected(&models_dir().join(EMBEDDER_FILE), &model, 128, 512, 20)
            .expect("writes the model");
    let text = BUILT_IN
        .replacen("id = \"sface-2021dec\"", "id = \"sface-512\"", 1)
        .replacen(
            &format!("file = \"{EMBEDDER_FILE}\""),
            &format!("file = {:?}", model.to_string_lossy()),
            1,
        )
        .replacen(
            "sha256 = \"0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79\"",
            &format!("sha256 = \"{sha}\""),
            1,
        )
        .replacen("dimension = 128", "dimension = 512", 1);
    let path = dir.join("model-wide.toml");
    std::fs::write(&path, text).expect("write descriptor");
    path
}

/// The embedding of `image` as the server stores it (little-endian f32) under `descriptor`.
fn stored_embedding(descriptor: &Path, image: &str) -> Vec<u8> {
    let d = vision::EmbedderDescriptor::from_file(descriptor).expect("descriptor");
    let pipeline =
        vision::Pipeline::load_with_embedder(&models_dir(), vision::PipelineConfig::default(), &d)
            .expect("models");
    let bytes = common::stored_embedding_bytes(&pipeline, image);
    assert_eq!(bytes.len(), 512 * 4, "an embedding of 512 values");
    bytes
}

#[test]
fn a_gallery_of_a_512_value_model_enrols_searches_verifies_survives_restart_and_erases() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let wide = descriptor_wide(tmp.path());
    let wide_arg = path_str(&wide);

    // What SFace (128 values) finds, for comparison, in a store of its own.
    let a = TestServer::start_in(&tmp.path().join("sface"), &[]);
    let t = a.token("acme");
    create_person(&a, &t, person_body("Barack Obama", "obama.jpg"));
    create_person(&a, &t, person_body("Joe Biden", "biden.jpg"));
    let on_sface: Vec<_> = PROBES.iter().map(|p| search(&a, &t, p)).collect();
    a.stop();

    let s = TestServer::start_in(&dir, &["--embedder", &wide_arg]);
    let t = s.token("acme");
    let obama = common::id(&create_person(
        &s,
        &t,
        person_body("Barack Obama", "obama.jpg"),
    ));
    let biden = common::id(&create_person(
        &s,
        &t,
        person_body("Joe Biden", "biden.jpg"),
    ));
    let found: Vec<_> = PROBES.iter().map(|p| search(&s, &t, p)).collect();
    assert_eq!(found[0].0[0].0, obama, "{found:?}");
    assert_eq!(found[2].0[0].0, biden, "{found:?}");
    for ((probe, got), want) in PROBES.iter().zip(&found).zip(&on_sface) {
        assert_eq!(got.1, 2, "{probe}");
        assert_eq!(got.0.len(), want.0.len(), "{probe}: {got:?} vs {want:?}");
        for (g, w) in got.0.iter().zip(&want.0) {
            assert!((g.1 - w.1).abs() <= 2e-4, "{probe}: {got:?} vs {want:?}");
        }
    }
    let verify = |s: &TestServer, t: &str, image: &str| {
        let body = json!({"id": obama, "images": [fixture_b64(image)], "min_score": 0.81, "search_mode": "ACCURATE"});
        post_ok(s, t, "/verify", body)["data"]["match"]["id"].clone()
    };
    assert_eq!(verify(&s, &t, "obama2.jpg"), obama.as_str());
    assert_eq!(verify(&s, &t, "biden.jpg"), serde_json::Value::Null);
    s.stop();

    // After a restart (the index from its snapshot, or PostgreSQL), the same answers.
    let s = TestServer::start_in(&dir, &["--embedder", &wide_arg]);
    let t = s.token("acme");
    let again: Vec<_> = PROBES.iter().map(|p| search(&s, &t, p)).collect();
    assert_eq!(again, found);
    assert_eq!(verify(&s, &t, "obama2.jpg"), obama.as_str());

    // Erasure: on disk, neither the 512-value embedding nor the crop is left.
    let raw_scan = !common::on_postgres();
    let embedding = stored_embedding(&wide, "obama.jpg");
    let crop = crop_png("obama.jpg");
    let windows: Vec<&[u8]> = crop[64..].chunks_exact(64).step_by(8).collect();
    if raw_scan {
        assert!(
            !files_containing(&s.data_dir, &embedding).is_empty(),
            "the embedding is stored"
        );
    }
    let (status, _) = s.delete(&format!("{}/persons/{obama}", common::BASE), &t);
    assert_eq!(status, 200);
    if raw_scan {
        assert_eq!(
            files_containing(&s.data_dir, &embedding),
            Vec::<String>::new()
        );
        for w in &windows {
            assert_eq!(files_containing(&s.data_dir, w), Vec::<String>::new());
        }
    }
    let (matches, searched) = search(&s, &t, "obama2.jpg");
    assert!(matches.iter().all(|m| m.0 != obama));
    assert_eq!(searched, 1);
    s.stop();

    // SFace on the same store compares none of the 512-value faces.
    let a = TestServer::start_in(&dir, &[]);
    let t = a.token("acme");
    assert_eq!(search(&a, &t, "biden.jpg"), (vec![], 0));
}

/// Every client's persons, enrolled by SFace: `(client, [(name, image)])`.
const TENANTS: [(&str, &[(&str, &str)]); 3] = [
    (
        "acme",
        &[("Barack Obama", "obama.jpg"), ("Joe Biden", "biden.jpg")],
    ),
    ("beta", &[("Barack Obama", "obama.jpg")]),
    ("gamma", &[("Joe Biden", "biden.jpg")]),
];

/// `(person ids found, faces searched)` for every probe, per tenant.
fn tenant_searches(s: &TestServer, tokens: &[String]) -> Vec<Vec<(Vec<String>, u64)>> {
    tokens
        .iter()
        .map(|t| {
            PROBES
                .iter()
                .map(|p| {
                    let (found, searched) = search(s, t, p);
                    (found.into_iter().map(|m| m.0).collect(), searched)
                })
                .collect()
        })
        .collect()
}

/// A server started with a new model and `--reembed-from` the old one moves its clients
/// to the new model (512 values, four times SFace's) while the old one keeps serving those
/// not moved yet: searches give the same persons before, during and after the move, and an
/// enrolment during the move lands on whichever model its client is on. Afterwards the new
/// model alone serves every client, and the old one none. On PostgreSQL `visage reembed`
/// moves the clients beside the running node.
#[test]
fn clients_move_to_a_new_model_in_the_background_while_the_old_one_serves_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let wide = descriptor_wide(tmp.path());
    let wide_arg = path_str(&wide);

    let a = TestServer::start_in(&dir, &[]);
    let tokens: Vec<String> = TENANTS.iter().map(|(c, _)| a.token(c)).collect();
    for ((_, persons), t) in TENANTS.iter().zip(&tokens) {
        for (name, image) in *persons {
            create_person(&a, t, person_body(name, image));
        }
    }
    let before = tenant_searches(&a, &tokens);
    assert_eq!(before[0][2].1, 2, "{before:?}");
    let store_args = a.store_args();
    a.stop();

    let s = TestServer::start_in(&dir, &["--embedder", &wide_arg, "--reembed-from", "sface"]);
    // Searches while clients move (or before, or after: the answers must not differ).
    let during = tenant_searches(&s, &tokens);
    assert_eq!(during, before);
    let late = create_person(&s, &tokens[1], person_body("Joe Biden", "biden.jpg"));
    if common::on_postgres() {
        let report = reembed(&store_args, &wide);
        assert!(report.contains("clients 3 "), "{report}");
    } else {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !s
            .log_lines()
            .iter()
            .any(|l| l.contains("background re-embedding finished"))
        {
            assert!(std::time::Instant::now() < deadline, "{:?}", s.log_lines());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let finished: Vec<String> = s
            .log_lines()
            .into_iter()
            .filter(|l| l.contains("client moved to the running model"))
            .collect();
        assert_eq!(finished.len(), 3, "{finished:?}");
    }
    let mut after = tenant_searches(&s, &tokens);
    // beta now also holds the Biden enrolled during the move, found first by his photo.
    let (found, searched) = search(&s, &tokens[1], "biden.jpg");
    assert_eq!((found[0].0.clone(), searched), (common::id(&late), 2));
    after[1] = before[1].clone();
    assert_eq!(after, before);
    s.stop();

    // The new model alone serves every client now; the old one serves none.
    let s = TestServer::start_in(&dir, &["--embedder", &wide_arg]);
    let mut alone = tenant_searches(&s, &tokens);
    alone[1] = before[1].clone();
    assert_eq!(alone, before);
    s.stop();
    let a = TestServer::start_in(&dir, &[]);
    for t in &tokens {
        assert_eq!(search(&a, t, "obama2.jpg"), (vec![], 0));
    }
    // And it refuses to enrol into a client whose faces it does not embed.
    let (status, body) = a.post(
        &format!("{}/persons", common::BASE),
        &tokens[0],
        person_body("Barack Obama", "obama.jpg"),
    );
    assert_eq!(
        (status, body),
        (503, common::error_body("embedding_model_not_served"))
    );
}
