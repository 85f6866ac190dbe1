//! Two visage processes on one PostgreSQL database (needs `VISAGE_TEST_DATABASE_URL`): what
//! one node commits, the other answers from on its very next request, and a thousand mixed
//! operations spread over both leave the database exactly as acknowledged.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use common::{fixture_b64, new_database, TestServer, BASE};
use serde_json::json;

fn search_ids(s: &TestServer, t: &str, image: &str, mode: &str) -> Vec<String> {
    let body = json!({"images": [fixture_b64(image)], "min_score": 0.7, "search_mode": mode});
    let (status, b) = s.post(&format!("{BASE}/search"), t, body);
    assert_eq!(status, 200, "{b}");
    b["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn a_write_on_one_node_is_seen_by_the_other_on_the_next_request() {
    let url = new_database();
    let tmp = tempfile::tempdir().expect("tempdir");
    let one = TestServer::start_node(tmp.path(), &url);
    let two = TestServer::start_node(tmp.path(), &url);
    let t = one.token("acme");

    let (status, p) = one.post(
        &format!("{BASE}/persons"),
        &t,
        common::person_body("Barack Obama", "obama.jpg"),
    );
    assert_eq!(status, 200, "{p}");
    let pid = p["data"]["_id"].as_str().expect("_id").to_owned();
    for mode in ["FAST", "ACCURATE"] {
        assert_eq!(
            search_ids(&two, &t, "obama2.jpg", mode),
            std::slice::from_ref(&pid),
            "{mode}"
        );
    }

    let (status, _) = two.delete(&format!("{BASE}/persons/{pid}"), &t);
    assert_eq!(status, 200);
    for mode in ["FAST", "ACCURATE"] {
        assert!(
            search_ids(&one, &t, "obama2.jpg", mode).is_empty(),
            "{mode}"
        );
    }
    assert_eq!(one.get(&format!("{BASE}/persons/{pid}"), &t).0, 404);
}

/// A number spelt in letters (names may not contain digits): 0 -> "a", 27 -> "bb".
fn letters(mut n: usize) -> String {
    let mut out = String::new();
    loop {
        out.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            return out;
        }
    }
}

/// What the clients were told, per person: the collections it is in (absent = erased).
type Acknowledged = Mutex<HashMap<String, BTreeSet<String>>>;

#[test]
fn a_thousand_mixed_operations_over_two_nodes_leave_the_database_as_acknowledged() {
    let url = new_database();
    let tmp = tempfile::tempdir().expect("tempdir");
    let nodes = [
        TestServer::start_node(tmp.path(), &url),
        TestServer::start_node(tmp.path(), &url),
    ];
    let t = nodes[0].token("acme");
    let collections: Vec<String> = (0..3)
        .map(|i| {
            let (status, c) = nodes[i % 2].post(
                &format!("{BASE}/collections"),
                &t,
                json!({"name": format!("c{i}")}),
            );
            assert_eq!(status, 200, "{c}");
            c["data"]["_id"].as_str().expect("_id").to_owned()
        })
        .collect();
    let images = [
        "obama.jpg",
        "biden.jpg",
        "astronaut.png",
        "Tom_Hanks_54745.png",
    ];
    let encoded: Vec<String> = images.iter().map(|i| fixture_b64(i)).collect();
    let acknowledged: Acknowledged = Mutex::new(HashMap::new());
    let workers = 4;
    let per_worker = 250;
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (nodes, t, collections, encoded, acknowledged) =
                (&nodes, &t, &collections, &encoded, &acknowledged);
            scope.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
                let mut next = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as usize
                };
                for op in 0..per_worker {
                    let node = &nodes[next() % 2];
                    let pick = acknowledged
                        .lock()
                        .expect("lock")
                        .keys()
                        .nth(next() % 64)
                        .cloned();
                    match (next() % 10, pick) {
                        (0..=1, Some(pid)) => {
                            let (status, b) = node.delete(&format!("{BASE}/persons/{pid}"), t);
                            match status {
                                200 => {
                                    acknowledged.lock().expect("lock").remove(&pid);
                                }
                                // Another worker erased it first.
                                404 => {}
                                _ => panic!("delete: {status} {b}"),
                            }
                        }
                        (2, Some(pid)) => {
                            let c = &collections[next() % collections.len()];
                            let (status, b) =
                                node.delete(&format!("{BASE}/persons/{pid}?collection={c}"), t);
                            match status {
                                200 => {
                                    let mut ack = acknowledged.lock().expect("lock");
                                    if b["data"]["deleted"] == json!(true) {
                                        ack.remove(&pid);
                                    } else {
                                        let now: BTreeSet<String> = b["data"]["collections"]
                                            .as_array()
                                            .expect("collections")
                                            .iter()
                                            .map(|c| c.as_str().expect("id").to_owned())
                                            .collect();
                                        ack.insert(pid, now);
                                    }
                                }
                                // Not in that collection, or erased meanwhile.
                                404 => {}
                                _ => panic!("detach: {status} {b}"),
                            }
                        }
                        _ => {
                            let mut mine: BTreeSet<String> = BTreeSet::new();
                            for c in collections {
                                if next() % 2 == 0 {
                                    mine.insert(c.clone());
                                }
                            }
                            if mine.is_empty() {
                                mine.insert(collections[0].clone());
                            }
                            let body = json!({
                                "name": format!("Worker {} Person {}", letters(w), letters(op)),
                                "images": [encoded[next() % encoded.len()]],
                                "collections": mine.iter().collect::<Vec<_>>(),
                            });
                            let (status, b) = node.post(&format!("{BASE}/persons"), t, body);
                            assert_eq!(status, 200, "create: {b}");
                            let pid = b["data"]["_id"].as_str().expect("_id").to_owned();
                            acknowledged.lock().expect("lock").insert(pid, mine);
                        }
                    }
                }
            });
        }
    });
    let acknowledged = acknowledged.into_inner().expect("lock");
    assert!(
        acknowledged.len() > 100,
        "{} persons left",
        acknowledged.len()
    );

    // Through the API of each node: exactly the acknowledged persons, with their collections.
    for node in &nodes {
        let mut seen: HashMap<String, BTreeSet<String>> = HashMap::new();
        for page in 1.. {
            let (status, b) = node.get(
                &format!("{BASE}/persons?limit=100&page={page}&populates[]=collections"),
                &t,
            );
            assert_eq!(status, 200, "{b}");
            let items = b["data"].as_array().expect("data").clone();
            if items.is_empty() {
                break;
            }
            for p in items {
                let cols = p["collections"]
                    .as_array()
                    .expect("collections")
                    .iter()
                    .map(|c| c["_id"].as_str().or(c.as_str()).expect("id").to_owned())
                    .collect();
                seen.insert(p["_id"].as_str().expect("_id").to_owned(), cols);
            }
        }
        assert_eq!(seen, acknowledged);
    }

    // In the database: no orphan faces or thumbnails, every person has a face, memberships
    // only of live persons and live collections.
    let counts: Vec<i64> = [
        "SELECT count(*) FROM faces f LEFT JOIN persons p ON p.pk = f.person_pk WHERE p.pk IS NULL",
        "SELECT count(*) FROM thumbnails t LEFT JOIN faces f ON f.pk = t.face_pk WHERE f.pk IS NULL",
        "SELECT count(*) FROM persons p WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_pk = p.pk)",
        "SELECT count(*) FROM persons p WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.person_pk = p.pk)",
        "SELECT count(*) FROM persons",
        "SELECT count(*) FROM memberships",
    ]
    .iter()
    .map(|q| {
        let rows = common::sql(&url, q);
        rows[0][0].as_deref().expect("count").parse().expect("number")
    })
    .collect();
    let memberships: usize = acknowledged.values().map(BTreeSet::len).sum();
    assert_eq!(
        counts,
        [
            0,
            0,
            0,
            0,
            acknowledged.len() as i64,
            memberships as i64
        ],
        "orphan faces, orphan thumbnails, persons without faces, persons without collections, persons, memberships"
    );
}

/// A PostgreSQL cluster of this test's own (so that stopping it disturbs no other test),
/// from `scripts/postgres.sh`; stopped and removed when dropped.
struct OwnCluster {
    dir: std::path::PathBuf,
    port: u16,
}

impl OwnCluster {
    fn start() -> (OwnCluster, String) {
        // Directly under /tmp: the cluster runs as another user, who must reach it.
        let dir = std::path::PathBuf::from(format!("/tmp/visage-outage-{}", std::process::id()));
        // A port the kernel has just handed out and taken back is free now, but another
        // process may take it before the cluster binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let cluster = OwnCluster {
                dir: dir.clone(),
                port,
            };
            match cluster.try_up() {
                Ok(url) => return (cluster, url),
                Err(e) => {
                    last_error = e;
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        panic!("no cluster started: {last_error}");
    }

    fn run_script(args: &[&str]) -> std::process::Output {
        std::process::Command::new(common::repo_path("scripts/postgres.sh"))
            .args(args)
            .output()
            .expect("scripts/postgres.sh")
    }

    fn script(&self, args: &[&str]) -> std::process::Output {
        let out = Self::run_script(args);
        assert!(
            out.status.success(),
            "postgres.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn try_up(&self) -> Result<String, String> {
        let port = self.port.to_string();
        let out = Self::run_script(&["start", self.dir.to_str().expect("utf-8"), &port]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let text = String::from_utf8(out.stdout).expect("utf-8");
        Ok(text.lines().last().expect("url").to_owned())
    }

    fn up(&self) -> String {
        self.try_up()
            .unwrap_or_else(|e| panic!("postgres.sh start on port {}: {e}", self.port))
    }

    fn down(&self) {
        self.script(&["stop", self.dir.to_str().expect("utf-8")]);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Self::run_script(&["stop", self.dir.to_str().unwrap_or("")]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_database_outage_gives_503s_and_the_node_recovers_by_itself() {
    let (cluster, url) = OwnCluster::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = TestServer::start_node(tmp.path(), &url);
    let t = node.token("acme");
    let (status, p) = node.post(
        &format!("{BASE}/persons"),
        &t,
        common::person_body("Barack Obama", "obama.jpg"),
    );
    assert_eq!(status, 200, "{p}");
    let pid = p["data"]["_id"].as_str().expect("_id").to_owned();

    cluster.down();
    let started = std::time::Instant::now();
    let (status, headers, body) =
        node.call_raw("GET", &format!("{BASE}/persons/{pid}"), Some(&t), None);
    assert_eq!(
        (status, body.clone()),
        (503, json!({"code": "ERROR", "message": "server_busy"}))
    );
    assert!(headers.contains_key("retry-after"));
    let search =
        json!({"images": [fixture_b64("obama2.jpg")], "min_score": 0.7, "search_mode": "FAST"});
    assert_eq!(
        node.post(&format!("{BASE}/search"), &t, search.clone()).0,
        503
    );
    let (status, _) = node.post(
        &format!("{BASE}/persons"),
        &t,
        common::person_body("Joe Biden", "biden.jpg"),
    );
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "failing took {:?}",
        started.elapsed()
    );
    // The node is up and says it cannot serve: a load balancer takes it out meanwhile.
    assert_eq!(node.call("GET", "/health", None, None).0, 503);

    cluster.up();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = node.get(&format!("{BASE}/persons/{pid}"), &t);
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recovered: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(node.call("GET", "/health", None, None).0, 200);
    assert_eq!(node.call("GET", "/health", None, None).0, 200);
    let (status, b) = node.post(&format!("{BASE}/search"), &t, search);
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["data"][0]["id"], json!(pid));
}

#[test]
fn an_erasure_is_followed_by_a_vacuum_of_the_face_tables() {
    let url = new_database();
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = TestServer::start_node_with(tmp.path(), &url, &["--vacuum-secs", "1"]);
    let t = node.token("acme");
    let last_vacuum = || -> Option<String> {
        common::sql(
            &url,
            "SELECT last_vacuum::text FROM pg_stat_user_tables WHERE relname = 'faces'",
        )[0][0]
            .clone()
    };
    let (status, p) = node.post(
        &format!("{BASE}/persons"),
        &t,
        common::person_body("Barack Obama", "obama.jpg"),
    );
    assert_eq!(status, 200, "{p}");
    // No erasure yet: nothing to vacuum.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(last_vacuum(), None);
    let pid = p["data"]["_id"].as_str().expect("_id");
    assert_eq!(node.delete(&format!("{BASE}/persons/{pid}"), &t).0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while last_vacuum().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no VACUUM after the erasure"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
