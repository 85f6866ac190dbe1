//! What a 200 promises: erasure leaves no bytes behind, acknowledged writes survive
//! `kill -9`, and a restart finds everything.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{files_containing, fixture_b64, person_body, TestServer, BASE};
use serde_json::{json, Value};

/// The embedding the server stores for `image`, computed by the same pipeline, as bytes.
fn embedding_bytes(image: &str) -> Vec<u8> {
    let pipeline = vision::Pipeline::load(&common::models_dir(), vision::PipelineConfig::default())
        .expect("models");
    common::stored_embedding_bytes(&pipeline, image)
}

#[test]
fn deleting_a_person_erases_its_bytes_from_every_file() {
    // On PostgreSQL the bytes are the database server's files: see the store's tests and
    // docs/postgres.md (VACUUM).
    crate::sqlite_only!();
    let s = TestServer::start();
    let t = s.token("acme");
    let (status, created) = s.post(
        &format!("{BASE}/persons"),
        &t,
        person_body("Barack Obama", "obama.jpg"),
    );
    assert_eq!(status, 200, "{created}");
    let pid = created["data"]["_id"].as_str().expect("_id").to_owned();
    let thumbnail = base64::engine::general_purpose::STANDARD
        .decode(
            created["data"]["thumbnails"][0]["thumbnail"]
                .as_str()
                .expect("thumbnail"),
        )
        .expect("base64");
    let embedding = embedding_bytes("obama.jpg");
    let keeper = s.post(
        &format!("{BASE}/persons"),
        &t,
        person_body("Joe Biden", "biden.jpg"),
    );
    assert_eq!(keeper.0, 200);

    // Windows of the entropy-coded data only: the JPEG header (tables) is the same in every
    // thumbnail, including the one of the person who stays.
    let scan_start = thumbnail
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("start of scan")
        + 16;
    let windows: Vec<&[u8]> = thumbnail[scan_start..]
        .chunks(48)
        .filter(|c| c.len() == 48)
        .collect();
    assert!(
        !files_containing(&s.data_dir, &embedding).is_empty(),
        "the embedding is stored before the delete (else this test proves nothing)"
    );
    // A window may straddle two database pages (and so not be contiguous on disk); most
    // must be found before the delete, and none after.
    let stored: Vec<&[u8]> = windows
        .iter()
        .copied()
        .filter(|w| !files_containing(&s.data_dir, w).is_empty())
        .collect();
    assert!(
        stored.len() * 2 > windows.len(),
        "{} of {} windows found",
        stored.len(),
        windows.len()
    );
    let needles: Vec<&[u8]> = std::iter::once(&embedding[..]).chain(stored).collect();

    let (status, _) = s.delete(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(status, 200);
    for needle in needles {
        let hits = files_containing(&s.data_dir, needle);
        assert!(hits.is_empty(), "erased bytes still in {hits:?}");
    }
    assert_eq!(s.get(&format!("{BASE}/persons/{pid}"), &t).0, 404);
    let (_, list) = s.get(&format!("{BASE}/persons"), &t);
    assert_eq!(list["pagination"]["total"], 1);
}

#[test]
fn a_restart_finds_everything() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let s = TestServer::start_in(&dir, &[]);
    let t = s.token("acme");
    let (_, c) = s.post(&format!("{BASE}/collections"), &t, json!({"name": "staff"}));
    let cid = c["data"]["_id"].as_str().expect("_id").to_owned();
    let (status, p) = s.post(
        &format!("{BASE}/persons"),
        &t,
        json!({"name": "Barack Obama", "images": [fixture_b64("obama.jpg")], "collections": [cid]}),
    );
    assert_eq!(status, 200);
    let pid = p["data"]["_id"].as_str().expect("_id").to_owned();
    let before = s.get(&format!("{BASE}/persons/{pid}"), &t).1["data"].clone();
    s.stop();

    let s = TestServer::start_in(&dir, &[]);
    let (status, after) = s.get(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(
        (status, &after["data"]),
        (200, &before),
        "same token, same person"
    );
    let (status, c) = s.get(&format!("{BASE}/collections/{cid}"), &t);
    assert_eq!((status, &c["data"]["name"]), (200, &json!("staff")));
}

#[derive(Default)]
struct Acknowledged {
    created: Vec<String>,
    deleted: HashSet<String>,
    /// The delete sent last and not answered: the kill may have cut its reply after it
    /// committed, so that person may be gone without an acknowledgement.
    unanswered_delete: Option<String>,
}

fn all_persons(s: &TestServer, t: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let (status, b) = s.get(&format!("{BASE}/persons?limit=100&page={page}"), t);
        assert_eq!(status, 200);
        let items = b["data"].as_array().expect("array").clone();
        if items.is_empty() {
            break;
        }
        out.extend(items);
    }
    out
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut expected_alive: HashSet<String> = HashSet::new();
    for round in 0..2u64 {
        let s = Arc::new(TestServer::start_in(&dir, &[]));
        let t = s.token("acme");
        let acked = Arc::new(Mutex::new(Acknowledged::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (s, t, acked, stop) = (s.clone(), t.clone(), acked.clone(), stop.clone());
            let body = person_body("Joe Biden", "biden.jpg").to_string();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let victim = if i.is_multiple_of(3) {
                        acked
                            .lock()
                            .expect("lock")
                            .created
                            .get((i as usize) / 3)
                            .cloned()
                    } else {
                        None
                    };
                    acked.lock().expect("lock").unanswered_delete = victim.clone();
                    let result = match &victim {
                        Some(id) => s.try_call("DELETE", &format!("{BASE}/persons/{id}"), &t, None),
                        None => {
                            s.try_call("POST", &format!("{BASE}/persons"), &t, Some(body.clone()))
                        }
                    };
                    let Some((200, reply)) = result else { break };
                    let mut a = acked.lock().expect("lock");
                    a.unanswered_delete = None;
                    match victim {
                        Some(id) => {
                            a.deleted.insert(id);
                        }
                        None => a
                            .created
                            .push(reply["data"]["_id"].as_str().expect("_id").to_owned()),
                    }
                }
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(2500 + 700 * round));
        let pid = s.pid();
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().expect("writer");
        let acked = std::mem::take(&mut *acked.lock().expect("lock"));
        assert!(
            acked.created.len() >= 3,
            "the stream did some work ({})",
            acked.created.len()
        );
        for id in &acked.created {
            expected_alive.insert(id.clone());
        }
        for id in &acked.deleted {
            expected_alive.remove(id);
        }
        drop(s);

        let s = TestServer::start_in(&dir, &[]);
        let found = all_persons(&s, &t);
        let ids: HashSet<String> = found
            .iter()
            .map(|p| p["_id"].as_str().expect("_id").to_owned())
            .collect();
        let missing: Vec<_> = expected_alive
            .difference(&ids)
            .filter(|id| acked.unanswered_delete.as_ref() != Some(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged creates lost: {missing:?}"
        );
        let resurrected: Vec<_> = acked.deleted.intersection(&ids).collect();
        assert!(
            resurrected.is_empty(),
            "round {round}: acknowledged deletes undone: {resurrected:?}"
        );
        // The request in flight at the kill may have committed without its reply.
        let unacknowledged: Vec<_> = ids.difference(&expected_alive).collect();
        assert!(
            unacknowledged.len() <= 1,
            "round {round}: unexplained persons {unacknowledged:?}"
        );
        for p in &found {
            assert_eq!(
                p["thumbnails"].as_array().map(Vec::len),
                Some(1),
                "no half-created person: {}",
                p["_id"]
            );
        }
        expected_alive = ids;
        s.stop();
    }
}

/// Search answers (who, with what score, over how many faces) for a few probes, in both modes.
fn search_answers(s: &TestServer, t: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for probe in ["obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png"] {
        for mode in ["FAST", "ACCURATE"] {
            let body = json!({"images": [fixture_b64(probe)], "min_score": 0.2, "search_mode": mode, "max_results": 5});
            let (status, b) = s.post(&format!("{BASE}/search"), t, body);
            assert_eq!(status, 200, "{probe} {mode}: {b}");
            let who: Vec<(Value, Value)> = b["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|m| (m["id"].clone(), m["score"].clone()))
                .collect();
            out.push(
                json!({"probe": probe, "mode": mode, "found": who, "faces": b["faces_searched"]}),
            );
        }
    }
    out
}

#[test]
fn search_results_are_identical_after_a_clean_restart_and_after_a_crash() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let snapshot = dir.join("index.snapshot");
    // A tiny graph threshold, so that FAST answers from the graph (and the graph is saved).
    let flags = ["--graph-min-faces", "2"];
    let s = TestServer::start_in(&dir, &flags);
    let t = s.token("acme");
    for (name, image) in [
        ("Barack Obama", "obama.jpg"),
        ("Joe Biden", "biden.jpg"),
        ("Eileen Collins", "astronaut.png"),
        ("Tom Hanks", "Tom_Hanks_54745.png"),
        ("Someone", "32bit.png"),
    ] {
        let (status, b) = s.post(&format!("{BASE}/persons"), &t, person_body(name, image));
        assert_eq!(status, 200, "{name}: {b}");
    }
    let before = search_answers(&s, &t);
    // obama2 finds the same person first in both modes (pairs serialise as [id, score]).
    assert!(before[0]["found"][0][0].is_string());
    assert_eq!(before[0]["found"][0][0], before[1]["found"][0][0]);
    assert_eq!(before[0]["faces"], 5);
    // The embedded store's index is saved at a clean stop; PostgreSQL nodes keep nothing.
    let embedded = !common::on_postgres();
    assert!(!snapshot.exists(), "no snapshot while serving");
    s.stop();
    assert_eq!(snapshot.exists(), embedded, "a clean stop saves the index");

    let s = TestServer::start_in(&dir, &flags);
    assert!(!snapshot.exists(), "the snapshot is erased once loaded");
    assert_eq!(search_answers(&s, &t), before, "after a clean restart");
    s.kill9();
    assert!(!snapshot.exists(), "a crash leaves no snapshot");

    let s = TestServer::start_in(&dir, &flags);
    assert_eq!(search_answers(&s, &t), before, "rebuilt from the store");
}

/// `visage ARGS...`, however it ends.
fn run_visage(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .output()
        .expect("run visage")
}

#[test]
fn a_data_directory_serves_one_process_at_a_time() {
    crate::sqlite_only!();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let s = TestServer::start_in(&data, &[]);
    let rows = data.with_extension("f32");
    std::fs::write(&rows, 1.0f32.to_le_bytes().repeat(128)).expect("rows");
    let import = || {
        run_visage(&[
            "import".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--client".as_ref(),
            "acme".as_ref(),
            "--embeddings".as_ref(),
            rows.as_os_str(),
        ])
    };
    // A bulk import under the running server would leave its search index behind the store.
    let out = import();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop it first"), "{err}");
    // So would a second server.
    let models = common::models_dir();
    let out = run_visage(&[
        "serve".as_ref(),
        "--port".as_ref(),
        "0".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--models-dir".as_ref(),
        models.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    let t = s.token("acme");
    let (_, list) = s.get(&format!("{BASE}/persons"), &t);
    assert_eq!(list["pagination"]["total"], 0, "nothing was imported");
    s.stop();
    // Once the server is gone, the import runs.
    let out = import();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = TestServer::start_in(&data, &[]);
    let (_, list) = s.get(&format!("{BASE}/persons"), &t);
    assert_eq!(list["pagination"]["total"], 1);
}
