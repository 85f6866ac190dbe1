//! The day-2 commands over real servers and stores: `token list` and `audit` beside a running
//! server, `client erase` (no bytes left), `enroll` of a photo archive (a faceless folder
//! reported, a second run creating nothing), and backup/restore (taken while the server
//! writes, same search results, erasures replayed).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use base64::Engine;
use common::{
    collection, create_person, files_containing, fixture_b64, id, mode, person_body, person_total,
    repo_path, visage, visage_fails, TestServer, BASE,
};
use serde_json::{json, Value};

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// `visage ARGS` run on this server's store (`--data-dir DIR [--database URL]` appended).
fn on_store(s: &TestServer, args: &[&str]) -> Vec<Value> {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(s.store_args());
    json_lines(&visage(&all.iter().map(String::as_str).collect::<Vec<_>>()).stdout)
}

fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("json");
    claims["jti"].as_str().expect("jti").to_owned()
}

#[test]
fn token_list_and_audit_read_a_running_servers_store() {
    let s = TestServer::start();
    let t = s.token("acme");
    let other = s.token("globex");
    let renewed = s.renew(&t);
    s.revoke(&[jti(&other).as_str()]);
    let person = create_person(&s, &t, person_body("Barack Obama", "obama.jpg"));
    let pid = id(&person);
    assert_eq!(s.delete(&format!("{BASE}/persons/{pid}"), &t).0, 200);

    let tokens = on_store(&s, &["token", "list"]);
    let find = |j: &str| {
        tokens
            .iter()
            .find(|l| l["jti"] == j)
            .unwrap_or_else(|| panic!("{j} in {tokens:?}"))
            .clone()
    };
    let first = find(&jti(&t));
    assert_eq!(
        (first["client"].clone(), first["state"].clone()),
        (json!("acme"), json!("valid"))
    );
    assert_eq!(first["parent"], Value::Null);
    let child = find(&jti(&renewed));
    assert_eq!(child["parent"], json!(jti(&t)));
    assert_eq!(child["state"], "valid");
    assert_eq!(find(&jti(&other))["state"], "revoked");
    let text = serde_json::to_string(&tokens).expect("json");
    assert!(
        !text.contains(&t) && !text.contains(&renewed),
        "never a token itself"
    );
    let acme = on_store(&s, &["token", "list", "--client", "acme"]);
    assert_eq!(acme.len(), 2, "{acme:?}");

    let audit = on_store(&s, &["audit", "--client", "acme"]);
    let actions: Vec<&str> = audit.iter().filter_map(|l| l["action"].as_str()).collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "token.renew",
            "person.create",
            "person.erase"
        ],
        "{audit:?}"
    );
    assert_eq!(audit[3]["object"], json!(pid));
    assert!(audit
        .iter()
        .all(|l| l["client"] == "acme" && l["at"].is_string()));
    let all = serde_json::to_string(&on_store(&s, &["audit"])).expect("json");
    assert!(!all.contains("Obama"), "no names in the audit log: {all}");
    assert!(all.contains("token.revoke"), "{all}");
    let erasures = on_store(&s, &["audit", "--action", "person.erase"]);
    assert_eq!(erasures.len(), 1);
    let everything = on_store(&s, &["audit"]).len();
    assert_eq!(on_store(&s, &["audit", "--since", "1h"]).len(), everything);
    assert!(on_store(&s, &["audit", "--since", "2999-01-01"]).is_empty());

    // The server went on serving (and writing) throughout.
    create_person(&s, &t, person_body("Joe Biden", "biden.jpg"));
    assert_eq!(person_total(&s, &t), 1);

    let mut bad = vec![
        "audit".to_owned(),
        "--action".to_owned(),
        "person.delete".to_owned(),
    ];
    bad.extend(s.store_args());
    let e = visage_fails(&bad.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("unknown --action"), "{e}");
    let mut bad = vec![
        "audit".to_owned(),
        "--since".to_owned(),
        "yesterday".to_owned(),
    ];
    bad.extend(s.store_args());
    let e = visage_fails(&bad.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("bad --since"), "{e}");
    if !common::on_postgres() {
        let e = visage_fails(&["token", "list", "--data-dir", "/nonexistent/visage"]);
        assert!(e.contains("no visage store"), "{e}");
    }
}

/// 48-byte windows of a thumbnail's entropy-coded data (its JPEG tables are shared by every
/// thumbnail).
fn thumbnail_windows(person: &Value) -> Vec<Vec<u8>> {
    let thumbnail = base64::engine::general_purpose::STANDARD
        .decode(
            person["thumbnails"][0]["thumbnail"]
                .as_str()
                .expect("thumbnail"),
        )
        .expect("base64");
    let start = thumbnail
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("start of scan")
        + 16;
    thumbnail[start..]
        .chunks(48)
        .filter(|c| c.len() == 48)
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn client_erase_leaves_no_bytes_of_the_clients_thumbnails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let s = TestServer::start_in(&dir, &[]);
    let (a, b) = (s.token("acme"), s.token("globex"));
    let staff = id(&collection(&s, &a, "staff"));
    let body = json!({"name": "Barack Obama", "collections": [staff], "images": [fixture_b64("obama.jpg")]});
    let gone = create_person(&s, &a, body);
    create_person(&s, &a, person_body("Tom Hanks", "Tom_Hanks_54745.png"));
    let kept = create_person(&s, &b, person_body("Joe Biden", "biden.jpg"));
    let store_args = s.store_args();
    let erase = |extra: &[&str]| {
        let mut args = vec!["client", "erase", "acme"];
        args.extend(store_args.iter().map(String::as_str));
        args.extend(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let e = visage_fails(&erase(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--yes"), "{e}");

    let sqlite = !common::on_postgres();
    let mut needles = Vec::new();
    let mut running = Some(s);
    if sqlite {
        // A window may straddle two database pages: most must be found before, none after.
        let windows = thumbnail_windows(&gone);
        needles = windows
            .iter()
            .filter(|w| !files_containing(&dir, w).is_empty())
            .cloned()
            .collect();
        assert!(needles.len() * 2 > windows.len(), "the thumbnail is stored");
        let e = visage_fails(
            &erase(&["--yes"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            e.contains("stop it first"),
            "a running server keeps faces in memory: {e}"
        );
        running.take().expect("running").stop();
    }
    let out = visage(
        &erase(&["--yes"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 persons, 1 collections"), "{said}");
    for needle in &needles {
        let hits = files_containing(&dir, needle);
        assert!(hits.is_empty(), "erased thumbnail bytes still in {hits:?}");
    }
    let s = match running {
        Some(s) => s,
        None => {
            assert!(
                !dir.join("index.snapshot").exists(),
                "the index snapshot is erased"
            );
            TestServer::start_in(&dir, &[])
        }
    };
    assert_eq!(person_total(&s, &a), 0);
    assert_eq!(s.get(&format!("{BASE}/persons/{}", id(&gone)), &a).0, 404);
    assert_eq!(s.get(&format!("{BASE}/collections/{staff}"), &a).0, 404);
    assert_eq!(person_total(&s, &b), 1);
    assert_eq!(s.get(&format!("{BASE}/persons/{}", id(&kept)), &b).0, 200);
    let audit = on_store(
        &s,
        &["audit", "--client", "acme", "--action", "client.erase"],
    );
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        on_store(
            &s,
            &["audit", "--client", "acme", "--action", "person.erase"]
        )
        .len(),
        2
    );
}

fn enroll(s: &TestServer, token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("enroll")
        .args(args)
        .args(["--url", &s.url])
        .env("VISAGE_TOKEN", token)
        .output()
        .expect("run visage enroll")
}

fn copy_fixture(name: &str, to: &Path) {
    std::fs::copy(repo_path("fixtures/faces").join(name), to).expect("copy fixture");
}

fn blank_png(to: &Path) {
    image::RgbImage::from_pixel(300, 300, image::Rgb([200, 180, 160]))
        .save(to)
        .expect("png");
}

#[test]
fn enroll_reports_a_faceless_folder_and_a_second_run_creates_nothing() {
    let s = TestServer::start();
    let t = s.token("acme");
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = tmp.path().join("archive");
    for person in ["Barack Obama", "Joe Biden", "Nobody"] {
        std::fs::create_dir_all(archive.join(person)).expect("mkdir");
    }
    copy_fixture("obama.jpg", &archive.join("Barack Obama/1.jpg"));
    copy_fixture("obama2.jpg", &archive.join("Barack Obama/2.jpg"));
    copy_fixture("biden.jpg", &archive.join("Joe Biden/biden.jpg"));
    std::fs::write(archive.join("Joe Biden/notes.txt"), "not an image").expect("write");
    blank_png(&archive.join("Nobody/blank.png"));
    std::fs::write(archive.join("README.txt"), "ignored").expect("write");
    let report = tmp.path().join("report.jsonl");
    let run = || {
        let dir = archive.to_str().expect("utf-8");
        let out = enroll(
            &s,
            &t,
            &[
                dir,
                "--report",
                report.to_str().expect("utf-8"),
                "--jobs",
                "2",
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "a failed person fails the run: {stderr}"
        );
        assert!(stderr.contains("1 of 3 persons failed"), "{stderr}");
        let mut lines = json_lines(&std::fs::read(&report).expect("report"));
        lines.sort_by(|a, b| a["person"].as_str().cmp(&b["person"].as_str()));
        lines
    };

    let first = run();
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(
        (first[0]["person"].clone(), first[0]["status"].clone()),
        (json!("Barack Obama"), json!("enrolled"))
    );
    assert_eq!(first[0]["files"], json!(["1.jpg", "2.jpg"]));
    assert_eq!(first[1]["status"], "enrolled");
    assert_eq!(first[1]["files"], json!(["biden.jpg"]));
    assert_eq!(
        (first[2]["status"].clone(), first[2]["error"].clone()),
        (json!("failed"), json!("no_face_detected"))
    );
    assert_eq!(person_total(&s, &t), 2);
    let obama = first[0]["id"].as_str().expect("id");
    let (status, got) = s.get(&format!("{BASE}/persons/{obama}"), &t);
    assert_eq!(
        (status, got["data"]["name"].clone()),
        (200, json!("Barack Obama"))
    );
    assert_eq!(got["data"]["thumbnails"].as_array().map(Vec::len), Some(2));
    let journal = archive.join(".visage-enroll.jsonl");
    assert_eq!(mode(&journal), 0o600);
    assert_eq!(mode(&report), 0o600);

    let second = run();
    let statuses: Vec<&str> = second.iter().filter_map(|l| l["status"].as_str()).collect();
    assert_eq!(statuses, ["skipped", "skipped", "failed"], "{second:?}");
    assert_eq!(second[0]["id"], first[0]["id"]);
    assert_eq!(person_total(&s, &t), 2, "the second run created nothing");

    // A manifest, four images of one person: the three largest faces are enrolled.
    let faces = tmp.path().join("faces");
    std::fs::create_dir_all(&faces).expect("mkdir");
    for f in [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "obama_partial_face.jpg",
    ] {
        copy_fixture(f, &faces.join(f));
    }
    let manifest = faces.join("manifest.csv");
    std::fs::write(
        &manifest,
        "name,file,gender,date_of_birth,notes\n\
         \"Obama, Barack\",obama.jpg,M,1961-08-04,\"44th, president\"\n\
         \"Obama, Barack\",obama2.jpg\n\"Obama, Barack\",obama3.jpg\n\
         \"Obama, Barack\",obama_partial_face.jpg\n",
    )
    .expect("manifest");
    let staff = id(&collection(&s, &t, "staff"));
    let report2 = tmp.path().join("manifest-report.jsonl");
    let out = enroll(
        &s,
        &t,
        &[
            "--manifest",
            manifest.to_str().expect("utf-8"),
            "--collection",
            &staff,
            "--report",
            report2.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&std::fs::read(&report2).expect("report"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["status"], "enrolled");
    assert_eq!(
        lines[0]["files"].as_array().map(Vec::len),
        Some(3),
        "{lines:?}"
    );
    assert!(
        lines[0]["note"]
            .as_str()
            .is_some_and(|n| n.contains("4 images")),
        "{lines:?}"
    );
    let (_, got) = s.get(
        &format!("{BASE}/persons/{}", lines[0]["id"].as_str().expect("id")),
        &t,
    );
    assert_eq!(got["data"]["gender"], "M");
    assert_eq!(
        got["data"]["date_of_birth"].as_str().map(|d| &d[..10]),
        Some("1961-08-04")
    );
    assert_eq!(got["data"]["notes"], "44th, president");

    // Bad input: a clear error and a non-zero exit, nothing enrolled.
    let dir = archive.to_str().expect("utf-8");
    let out = enroll(&s, "not-a-token", &[dir]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the token"));
    let out = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["enroll", dir, "--url", "http://127.0.0.1:9", "--token", &t])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be reached"));
    let out = enroll(&s, &t, &["/nonexistent/archive"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a folder"));
    assert_eq!(person_total(&s, &t), 3);
}

fn search(s: &TestServer, t: &str, image: &str) -> Vec<(String, f64)> {
    let body = json!({"images": [fixture_b64(image)], "min_score": 0.2, "search_mode": "ACCURATE", "max_results": 10});
    let (status, got) = s.post(&format!("{BASE}/search"), t, body);
    assert_eq!(status, 200, "{got}");
    got["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().expect("id").to_owned(),
                m["score"].as_f64().expect("score"),
            )
        })
        .collect()
}

fn restore(args: &[&Path]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_visage"));
    c.arg("restore")
        .arg("--from")
        .arg(args[0])
        .arg("--data-dir")
        .arg(args[1]);
    if let Some(live) = args.get(2) {
        c.arg("--replay-erasures-from").arg(live);
    }
    c.output().expect("run visage restore")
}

#[test]
fn a_backup_taken_while_the_server_writes_restores_the_same_search_results() {
    crate::sqlite_only!();
    let s = TestServer::start();
    let t = s.token("acme");
    for (name, image) in [
        ("Barack Obama", "obama.jpg"),
        ("Joe Biden", "biden.jpg"),
        ("Tom Hanks", "Tom_Hanks_54745.png"),
    ] {
        create_person(&s, &t, person_body(name, image));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("visage.backup");
    let stop = AtomicBool::new(false);
    let writes = AtomicU32::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let n = writes.fetch_add(1, Ordering::Relaxed);
                let (status, b) = s.post(
                    &format!("{BASE}/collections"),
                    &t,
                    json!({"name": format!("c{n}")}),
                );
                assert_eq!(status, 200, "{b}");
            }
        });
        while writes.load(Ordering::Relaxed) < 3 {
            std::thread::yield_now();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_visage"))
            .args(["backup", "--data-dir"])
            .arg(&s.data_dir)
            .arg("--out")
            .arg(&backup)
            .output()
            .expect("run visage backup");
        stop.store(true, Ordering::Relaxed);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    assert_eq!(mode(&backup), 0o600);
    let e = visage_fails(&[
        "backup",
        "--data-dir",
        s.data_dir.to_str().expect("utf-8"),
        "--out",
        backup.to_str().expect("utf-8"),
    ]);
    assert!(e.contains("exists"), "never overwritten: {e}");

    let restored = tmp.path().join("restored");
    let out = restore(&[&backup, &restored]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probes = ["obama2.jpg", "biden.jpg", "t1.jpg"];
    let live: Vec<_> = probes.iter().map(|p| search(&s, &t, p)).collect();
    assert!(!live[0].is_empty(), "the probe finds someone");
    let copy = TestServer::start_in(&restored, &[]);
    let again: Vec<_> = probes.iter().map(|p| search(&copy, &t, p)).collect();
    assert_eq!(live, again, "the same results from the restored store");
    assert_eq!(person_total(&copy, &t), 3);

    // Refused: a non-empty directory, a damaged backup.
    let out = restore(&[&backup, &restored]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let mut bytes = std::fs::read(&backup).expect("read");
    let last = bytes.len() - 100;
    bytes[last] ^= 0x55;
    let damaged = tmp.path().join("damaged.backup");
    std::fs::write(&damaged, bytes).expect("write");
    let elsewhere = tmp.path().join("elsewhere");
    let out = restore(&[&damaged, &elsewhere]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !elsewhere.join("visage.db").exists(),
        "nothing written from a damaged backup"
    );
}

#[test]
fn replaying_erasures_removes_a_person_erased_after_the_backup() {
    crate::sqlite_only!();
    let s = TestServer::start();
    let t = s.token("acme");
    let erased = id(&create_person(
        &s,
        &t,
        person_body("Barack Obama", "obama.jpg"),
    ));
    let kept = id(&create_person(
        &s,
        &t,
        person_body("Joe Biden", "biden.jpg"),
    ));
    let tmp = tempfile::tempdir().expect("tempdir");
    let backup = tmp.path().join("b");
    visage(&[
        "backup",
        "--data-dir",
        s.data_dir.to_str().expect("utf-8"),
        "--out",
        backup.to_str().expect("utf-8"),
    ]);
    assert_eq!(s.delete(&format!("{BASE}/persons/{erased}"), &t).0, 200);

    // Plain: the backup brings the erased person back (the caveat the docs spell out).
    let plain = tmp.path().join("plain");
    assert!(restore(&[&backup, &plain]).status.success());
    let copy = TestServer::start_in(&plain, &[]);
    assert_eq!(copy.get(&format!("{BASE}/persons/{erased}"), &t).0, 200);
    copy.stop();

    // Replayed from the live directory, its server still running.
    let replayed = tmp.path().join("replayed");
    let out = restore(&[&backup, &replayed, &s.data_dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("replayed 1 erasures"), "{stderr}");
    let copy = TestServer::start_in(&replayed, &[]);
    assert_eq!(copy.get(&format!("{BASE}/persons/{erased}"), &t).0, 404);
    assert_eq!(copy.get(&format!("{BASE}/persons/{kept}"), &t).0, 200);
    assert!(search(&copy, &t, "obama2.jpg")
        .iter()
        .all(|(p, _)| p != &erased));

    // A directory of another store is refused.
    let other = TestServer::start();
    other.token("acme");
    let out = restore(&[&backup, &tmp.path().join("x"), &other.data_dir]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the store the backup was taken from")
    );
}

/// While a long reader (a backup) holds an old snapshot, erasures commit but their bytes
/// cannot leave the write-ahead log yet: the API answers them as done, search stops finding
/// the person at once, and the bytes go once the reader ends.
#[test]
fn erasures_during_a_long_backup_read_answer_as_done_and_leave_search_at_once() {
    crate::sqlite_only!();
    let s = TestServer::start();
    let t = s.token("backup-window");
    let c = collection(&s, &t, "Staff");
    let with = |name: &str, image: &str| {
        let mut body = person_body(name, image);
        body["collections"] = json!([id(&c)]);
        create_person(&s, &t, body)
    };
    let obama = with("Barack Obama", "obama.jpg");
    let windows = thumbnail_windows(&obama);
    let erased = id(&obama);
    let detached = id(&with("Joe Biden", "biden.jpg"));
    let replaced = id(&with("Tom Hanks", "Tom_Hanks_54745.png"));

    // The backup's read: one transaction on its own connection, as `visage backup` holds.
    let reader = rusqlite::Connection::open(s.data_dir.join("visage.db")).expect("open");
    reader.execute_batch("BEGIN").expect("begin");
    let n: i64 = reader
        .query_row("SELECT count(*) FROM faces", [], |r| r.get(0))
        .expect("read");
    assert_eq!(n, 3);

    let (status, body) = s.delete(&format!("{BASE}/persons/{erased}"), &t);
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.delete(
        &format!("{BASE}/persons/{detached}?collection={}", id(&c)),
        &t,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["deleted"], true, "{body}");
    let (status, body) = s.put(
        &format!("{BASE}/persons/{replaced}"),
        &t,
        json!({"images": [fixture_b64("obama2.jpg")]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["_id"], replaced.as_str(), "{body}");

    for gone in [&erased, &detached] {
        assert_eq!(s.get(&format!("{BASE}/persons/{gone}"), &t).0, 404);
    }
    let found = search(&s, &t, "obama3.jpg");
    assert!(
        found.iter().all(|(person, _)| person != &erased),
        "an erased person is still searched: {found:?}"
    );
    assert!(
        found.iter().any(|(person, _)| person == &replaced),
        "the replaced faces are searched: {found:?}"
    );
    assert!(search(&s, &t, "biden.jpg")
        .iter()
        .all(|(person, _)| person != &detached));

    reader.execute_batch("COMMIT").expect("commit");
    drop(reader);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left: Vec<String> = windows
            .iter()
            .flat_map(|w| files_containing(&s.data_dir, w))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "erased bytes still in {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
