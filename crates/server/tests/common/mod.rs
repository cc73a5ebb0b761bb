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

/// What a client that sends its whole body whatever the server answers meanwhile (as hyper's and
/// so reqwest's do) saw: the answer read as it arrived, and the first failed write of the body.
pub struct Sent {
    /// The whole answer (head and `Content-Length` body), or why reading it failed.
    pub answer: std::io::Result<String>,
    /// A write the server's side refused (a reset connection), if any: such a client reports it
    /// rather than the answer.
    pub write_error: Option<std::io::Error>,
}

impl Sent {
    /// The answer's status, or a failure naming what the client saw instead.
    pub fn status(&self) -> u16 {
        match (&self.answer, &self.write_error) {
            (Ok(answer), None) => {
                answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"))
            }
            (answer, write) => panic!("the client did not get a clean answer: read {answer:?}, write error {write:?}"),
        }
    }

    pub fn answer(&self) -> &str {
        self.answer.as_deref().expect("an answer")
    }
}

/// POSTs to `path` a head declaring `length` bytes and then a body of zeros sent `chunk` bytes at
/// a time, on one task, while another reads the answer. Waits for both (the sending at most 30 s).
pub async fn post_sending_everything(addr: SocketAddr, path: &str, length: usize, chunk: usize) -> Sent {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n");
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let zeros = vec![0u8; chunk];
        let mut sent = 0;
        while sent < length {
            let n = chunk.min(length - sent);
            writer.write_all(&zeros[..n]).await?;
            sent += n;
        }
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    });
    let answer = async {
        let mut data = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
                if data.len() >= end + 4 + length {
                    return Ok(String::from_utf8_lossy(&data).into_owned());
                }
            }
            match reader.read(&mut buf).await? {
                0 => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("closed after {data:?}"))),
                n => data.extend_from_slice(&buf[..n]),
            }
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), answer).await.expect("an answer within 30 s");
    let write_error = tokio::time::timeout(Duration::from_secs(30), sending).await.expect("the body sent within 30 s").unwrap().err();
    Sent { answer, write_error }
}
