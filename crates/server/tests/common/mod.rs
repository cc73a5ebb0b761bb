//! Helpers for the HTTP tests: a real server on a loopback port and a Prometheus text parser,
//! with the workspace's shared ones (test images made in code, the corpus location).
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

pub use compressor_test_support::{bomb_png, corpus, corpus_file, decode_png, free_port, noisy_png as png, test_video};

use compressor_server::{App, Config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running on 127.0.0.1 with a random port, stopped by [`Server::shutdown`] (or on drop,
/// when the test's runtime ends).
pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
    pub router: axum::Router,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(config: Config) -> Server {
        Server::start_app(App::new(config)).await
    }

    pub async fn start_app(app: App) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app.router();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run(listener, async move {
            let _ = stopped.await;
        }));
        Server { addr, base: format!("http://{addr}"), router, stop: Some(stop), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts the graceful shutdown; the returned handle resolves to what `App::run` returned.
    pub fn shutdown(&mut self) -> JoinHandle<std::io::Result<()>> {
        let _ = self.stop.take().expect("shutdown once").send(());
        self.task.take().unwrap()
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// Test defaults: small pools and limits that the tests override where they matter.
pub fn config() -> Config {
    Config { workers: 2, queue: 8, ..Config::default() }
}

/// Samples of a Prometheus text exposition: `name{labels}` (labels as written) → value.
/// The value of a response header; a missing (or non-text) one fails the test.
pub fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap()
}

pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad metrics line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

/// Polls `check` every 5 ms until it is true; fails after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The status text of `/readyz` (`ready`, `saturated`, `draining`).
pub async fn readiness(client: &reqwest::Client, server: &Server) -> String {
    let body: serde_json::Value = client.get(server.url("/readyz")).send().await.unwrap().json().await.unwrap();
    body["status"].as_str().unwrap().to_owned()
}

/// The names in a folder (a test's temporary folder must end up empty).
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}
