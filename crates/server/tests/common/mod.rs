//! The real service behind the router, in-process, for the HTTP-layer tests: one per test
//! binary (the models load once).

#![allow(dead_code)]

use std::sync::Arc;

pub const BASE: &str = "/v2/face-recognition";
pub const BODY_LIMIT: usize = 1 << 20;

pub struct App {
    pub rt: tokio::runtime::Runtime,
    pub app: server::AppState,
    /// A token of the client the app was opened for.
    pub token: String,
    pub dir: tempfile::TempDir,
}

fn models_dir() -> std::path::PathBuf {
    std::env::var_os("VISAGE_MODELS_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// A fixture image as base64.
pub fn fixture_image(name: &str) -> String {
    use base64::Engine;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/faces")
        .join(name);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).expect("fixture"))
}

/// The service on a fresh data directory with the real models, and a token for `client`.
pub fn open_app(client: &str, limits: server::RequestLimits) -> App {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = service::StoreConfig {
        data_dir: dir.path().to_owned(),
        database: None,
    };
    let config = service::Config::new(store, models_dir());
    let svc = rt.block_on(service::open(config)).expect("service opens");
    let app = server::AppState::new(Arc::new(svc), "Signed by visage", limits);
    let token = token_for(&dir, client);
    App {
        rt,
        app,
        token,
        dir,
    }
}

/// A token for `client`, signed with the app's secret.
pub fn token_for(dir: &tempfile::TempDir, client: &str) -> String {
    let secret = service::tokens::Secret::load_or_create(dir.path()).expect("secret");
    let client = service::ClientId::parse(client).expect("client id");
    let now = chrono::Utc::now().timestamp();
    service::tokens::issue(&secret, &client, now, 3600)
        .expect("token")
        .0
}
