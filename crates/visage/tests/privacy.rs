//! The data directory is private by construction: created 0700, every file in it 0600
//! whatever the umask, and a JWT secret others can read is refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_person, mode, models_dir, person_body, visage, visage_fails, TestServer};

/// Every file under `dir` whose mode is not 0600, and every directory not 0700.
fn not_private(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let m = mode(&path);
        if path.is_dir() {
            if m != 0o700 {
                found.push((path.clone(), m));
            }
            found.extend(not_private(&path));
        } else if m != 0o600 {
            found.push((path, m));
        }
    }
    found
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn data_dir_is_private_under_umask_000() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let s = TestServer::start_under_umask(&dir, 0o000);
    let t = s.token("acme");
    create_person(&s, &t, person_body("Barack Obama", "obama.jpg"));
    assert_eq!(mode(&dir), 0o700, "the data directory");
    // While running: the database with its -wal and -shm, the lock, the secret.
    let running = files(&dir);
    assert!(running.iter().any(|f| f == "jwt-secret"), "{running:?}");
    if !common::on_postgres() {
        for f in ["visage.db", "visage.db-wal", "visage.db-shm", "visage.lock"] {
            assert!(running.iter().any(|r| r == f), "{f} in {running:?}");
        }
    }
    assert_eq!(not_private(&dir), vec![], "{running:?}");
    // After a clean stop: the index snapshot too.
    s.stop();
    if !common::on_postgres() {
        assert!(dir.join("index.snapshot").exists(), "{:?}", files(&dir));
    }
    assert_eq!(not_private(&dir), vec![], "{:?}", files(&dir));

    // `token create` on a new directory, under umask 000 too.
    let fresh = tmp.path().join("fresh").join("data");
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_visage"))
        .args(["token", "create", "--client", "acme", "--data-dir"])
        .arg(&fresh)
        .env_remove("VISAGE_JWT_SECRET")
        .output()
        .expect("run visage");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("jwt-secret")), 0o600);
}

#[test]
fn a_secret_others_can_read_stops_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let data = dir.to_str().expect("utf-8 path");
    visage(&["token", "create", "--data-dir", data, "--client", "acme"]);
    let secret = dir.join("jwt-secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).expect("chmod");

    let mut serve = Command::new(env!("CARGO_BIN_EXE_visage"));
    serve
        .args(["serve", "--port", "0", "--data-dir", data, "--models-dir"])
        .arg(models_dir())
        .env_remove("VISAGE_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if common::on_postgres() {
        serve.arg("--database").arg(common::new_database());
    }
    let mut child = serve.spawn().expect("spawn visage serve");
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("visage serve started with a secret others can read");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().expect("stderr reader");
    assert!(!status.success(), "visage serve succeeded: {stderr}");
    let path = secret.display().to_string();
    assert!(stderr.contains(&path), "names the file: {stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {path}")),
        "gives the fix: {stderr}"
    );
    // The token commands refuse it alike.
    let e = visage_fails(&["token", "create", "--data-dir", data, "--client", "acme"]);
    assert!(e.contains(&format!("chmod 600 {path}")), "{e}");

    // Fixed as told, the server starts.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let s = TestServer::start_in(&dir, &[]);
    assert_eq!(s.call("GET", "/health", None, None).0, 200);
}
