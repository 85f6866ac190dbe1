//! A real `visage serve` process on a loopback port, with typed HTTP calls.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

pub const BASE: &str = "/v2/face-recognition";

/// `VISAGE_TEST_BACKEND=postgres` runs every server of the HTTP suite on PostgreSQL (a fresh
/// database per data directory, on the server of `VISAGE_TEST_DATABASE_URL`) instead of the
/// embedded SQLite store.
pub fn on_postgres() -> bool {
    std::env::var("VISAGE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The admin URL of the test PostgreSQL server; a clear failure when it is not set.
pub fn postgres_admin_url() -> String {
    match std::env::var("VISAGE_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!(
            "VISAGE_TEST_DATABASE_URL is not set: start PostgreSQL with `scripts/postgres.sh \
             start /tmp/visage-pg 55432` and set it to the URL printed (docs/postgres.md)"
        ),
    }
}

/// A new, empty database on the test server; its URL.
pub fn new_database() -> String {
    let admin = postgres_admin_url();
    let mut id = [0u8; 8];
    getrandom_fill(&mut id);
    let name = format!(
        "visage_http_{}",
        id.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    sql(&admin, &format!("CREATE DATABASE {name}"));
    with_dbname(&admin, &name)
}

/// Runs one SQL statement on the database at `url`; the rows' cells as text (`None` for NULL).
pub fn sql(url: &str, statement: &str) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
        tokio::spawn(conn);
        let messages = client.simple_query(statement).await.expect(statement);
        messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

fn getrandom_fill(buf: &mut [u8]) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = (t as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// `url` with its database name replaced.
pub fn with_dbname(url: &str, name: &str) -> String {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let query_at = rest.find('?').unwrap_or(rest.len());
            let (main, query) = rest.split_at(query_at);
            let authority = main.split('/').next().unwrap_or(main);
            return format!("{scheme}{authority}/{name}{query}");
        }
    }
    format!("{url} dbname={name}")
}

/// On PostgreSQL, the database of a data directory: made on first use and remembered beside
/// it, so that a restart on the same directory finds the same persons.
fn database_of(data_dir: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let remembered = data_dir.with_extension("pg-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return Some(url);
    }
    let url = new_database();
    std::fs::write(&remembered, &url).expect("remember the test database");
    Some(url)
}

/// Ends a test that checks something only the embedded store has (its files, its snapshot).
#[macro_export]
macro_rules! sqlite_only {
    () => {
        if common::on_postgres() {
            eprintln!("checks the embedded SQLite store's files: run in the SQLite pass");
            return;
        }
    };
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("VISAGE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("models"))
}

/// The embedding `pipeline` computes for the largest face of fixture `image`, as the server
/// stores it (little-endian f32).
pub fn stored_embedding_bytes(pipeline: &vision::Pipeline, image: &str) -> Vec<u8> {
    let bytes = std::fs::read(repo_path("fixtures/faces").join(image)).expect("fixture");
    let img = pipeline.decode(&bytes).expect("decodes");
    let face = pipeline.largest_face(&img).expect("runs").expect("a face");
    face.embedding
        .as_slice()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

pub fn fixture_b64(name: &str) -> String {
    let bytes = std::fs::read(repo_path("fixtures/faces").join(name)).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn visage(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .output()
        .expect("run visage");
    assert!(
        out.status.success(),
        "visage {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `visage ARGS`, which must fail; its stderr.
pub fn visage_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .env_remove("VISAGE_JWT_SECRET")
        .output()
        .expect("run visage");
    assert!(
        !out.status.success(),
        "visage {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn token(data_dir: &Path, client: &str, ttl: &str) -> String {
    let out = visage(&[
        "token",
        "create",
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--client",
        client,
        "--ttl",
        ttl,
    ]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(
        text.lines().count(),
        1,
        "token create prints one line: {text:?}"
    );
    text.trim().to_owned()
}

pub struct TestServer {
    pub data_dir: PathBuf,
    /// The PostgreSQL database, when the server runs on one.
    pub database: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub url: String,
    http: reqwest::blocking::Client,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Self::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts on `data_dir` (kept by the caller, so a restart sees the same store).
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> TestServer {
        Self::start_with_models(data_dir, &models_dir(), extra)
    }

    /// Starts with the models of `models` (e.g. a directory without the optional ones).
    pub fn start_with_models(data_dir: &Path, models: &Path, extra: &[&str]) -> TestServer {
        Self::spawn(database_of(data_dir), data_dir, models, extra)
    }

    /// One of several nodes sharing the PostgreSQL database `url` (and `data_dir`, which
    /// then only holds the JWT secret they all sign with).
    pub fn start_node(data_dir: &Path, url: &str) -> TestServer {
        Self::start_node_with(data_dir, url, &[])
    }

    pub fn start_node_with(data_dir: &Path, url: &str, extra: &[&str]) -> TestServer {
        Self::spawn(Some(url.to_owned()), data_dir, &models_dir(), extra)
    }

    /// Starts on `data_dir` with the process umask set to `umask` (through `sh`).
    pub fn start_under_umask(data_dir: &Path, umask: u32) -> TestServer {
        Self::spawn_with_umask(
            database_of(data_dir),
            data_dir,
            &models_dir(),
            &[],
            Some(umask),
        )
    }

    fn spawn(
        database: Option<String>,
        data_dir: &Path,
        models: &Path,
        extra: &[&str],
    ) -> TestServer {
        Self::spawn_with_umask(database, data_dir, models, extra, None)
    }

    fn spawn_with_umask(
        database: Option<String>,
        data_dir: &Path,
        models: &Path,
        extra: &[&str],
        umask: Option<u32>,
    ) -> TestServer {
        let mut command = match umask {
            None => Command::new(env!("CARGO_BIN_EXE_visage")),
            Some(mask) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("umask {mask:03o} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_visage"));
                sh
            }
        };
        command.args(["serve", "--port", "0"]);
        if let Some(url) = &database {
            command.arg("--database").arg(url);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--models-dir")
            .arg(models)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("VISAGE_JWT_SECRET")
            .env_remove("VISAGE_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn visage serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(pos) = line.find("listening on ") {
                        break line[pos + "listening on ".len()..].trim().to_owned();
                    }
                }
                _ => panic!("visage serve exited before listening"),
            }
        };
        // Keep draining the log so the server never blocks on a full pipe; keep the lines
        // for tests that read the log.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        TestServer {
            data_dir: data_dir.to_owned(),
            database,
            _tmp: None,
            child,
            log,
            url,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    /// A token recorded in this server's store (PostgreSQL included).
    pub fn token(&self, client: &str) -> String {
        let mut args = vec!["token".to_owned(), "create".to_owned()];
        args.extend(self.store_args());
        args.extend(["--client", client, "--ttl", "1d"].map(str::to_owned));
        let out = visage(&args.iter().map(String::as_str).collect::<Vec<_>>());
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    /// `visage token revoke ARGS` on this server's store (a jti or token, or `--client NAME`).
    pub fn revoke(&self, args: &[&str]) {
        let mut all = vec!["token".to_owned(), "revoke".to_owned()];
        all.extend(self.store_args());
        all.extend(args.iter().map(|a| (*a).to_owned()));
        visage(&all.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// A token renewed from `token` through `/v2/auth/session`.
    pub fn renew(&self, token: &str) -> String {
        let (status, b) = self.call("GET", "/v2/auth/session?expiresIn=1", Some(token), None);
        assert_eq!(status, 200, "renewal: {b}");
        b["accessToken"].as_str().expect("accessToken").to_owned()
    }

    /// `--data-dir DIR [--database URL]`: the store this server uses, for other commands.
    pub fn store_args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_owned(),
            self.data_dir.to_str().expect("utf-8 path").to_owned(),
        ];
        if let Some(url) = &self.database {
            args.extend(["--database".to_owned(), url.clone()]);
        }
        args
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (status, _, body) = self.call_raw(method, path, token, body.map(|b| b.to_string()));
        (status, body)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> reqwest::blocking::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        req
    }

    pub fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self
            .request(method, path, token, body)
            .send()
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    /// Like `call`, but `None` when the connection fails (the server was killed).
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> Option<(u16, Value)> {
        let resp = self.request(method, path, Some(token), body).send().ok()?;
        let status = resp.status().as_u16();
        let value = resp.json().unwrap_or(Value::Null);
        Some((status, value))
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(token), Some(&body))
    }

    pub fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(token), Some(&body))
    }

    pub fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("DELETE", path, Some(token), None)
    }

    /// A POST whose `Content-Length` announces `size` bytes of which only a few are sent;
    /// returns the status and JSON body of the reply.
    pub fn post_declared_size(&self, path: &str, token: &str, size: usize) -> (u16, Value) {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n{{\"name\":"
        );
        stream.write_all(head.as_bytes()).expect("write");
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        (
            status,
            serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id() as i32;
        send_signal(pid, "TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "graceful shutdown failed: {status:?}");
    }

    /// SIGTERM, then the exit status if the process ends within `limit`.
    pub fn terminate_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        send_signal(self.child.id() as i32, "TERM");
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The server's log lines so far (stderr, at the level the test started it with).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// `host:port` of the listener, for raw TCP.
    pub fn socket_addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Files under `dir` holding `needle` (a raw scan of every byte).
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

pub fn send_signal(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person-create body with one fixture image.
pub fn person_body(name: &str, image: &str) -> Value {
    serde_json::json!({"name": name, "images": [fixture_b64(image)]})
}

/// A POST under [`BASE`]: the status and the reply.
pub fn post_status(s: &TestServer, t: &str, path: &str, body: Value) -> (u16, Value) {
    s.post(&format!("{BASE}{path}"), t, body)
}

/// A POST under [`BASE`] that must answer 200; the whole reply.
pub fn post_ok(s: &TestServer, t: &str, path: &str, body: Value) -> Value {
    let (status, b) = post_status(s, t, path, body);
    assert_eq!(status, 200, "{path}: {b}");
    b
}

/// The `data` of a POST under [`BASE`] that must answer 200.
pub fn post_data(s: &TestServer, t: &str, path: &str, body: Value) -> Value {
    post_ok(s, t, path, body)["data"].clone()
}

/// A new collection of the token's client.
pub fn collection(s: &TestServer, t: &str, name: &str) -> Value {
    post_data(s, t, "/collections", serde_json::json!({"name": name}))
}

/// A new person of the token's client.
pub fn create_person(s: &TestServer, t: &str, body: Value) -> Value {
    post_data(s, t, "/persons", body)
}

/// How many persons the token's client has.
pub fn person_total(s: &TestServer, t: &str) -> u64 {
    let (status, b) = s.get(&format!("{BASE}/persons"), t);
    assert_eq!(status, 200, "{b}");
    b["pagination"]["total"].as_u64().expect("total")
}

/// The `_id` of a stored object.
pub fn id(v: &Value) -> String {
    v["_id"].as_str().expect("_id").to_owned()
}

/// A Verifik `{"message", "code": "ERROR"}` body.
pub fn error_body(message: &str) -> Value {
    serde_json::json!({"message": message, "code": "ERROR"})
}

/// A Joi validation body (409).
pub fn validation_body(message: &str) -> Value {
    serde_json::json!({"message": message, "code": "MissingParameter"})
}
