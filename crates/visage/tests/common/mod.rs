//! A real `visage serve` process on a loopback port, with typed HTTP calls.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

pub const BASE: &str = "/v2/face-recognition";

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
    _tmp: Option<tempfile::TempDir>,
    child: Child,
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .arg("--models-dir")
            .arg(models)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("VISAGE_JWT_SECRET")
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
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        TestServer {
            data_dir: data_dir.to_owned(),
            _tmp: None,
            child,
            url,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    pub fn token(&self, client: &str) -> String {
        token(&self.data_dir, client, "1d")
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

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_signal(pid: i32, signal: &str) {
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
