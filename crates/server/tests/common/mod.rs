//! Helpers for the HTTP tests: a real server on a loopback port, test images made in code, the
//! corpus location, and a Prometheus text parser.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

/// An RGB PNG (stored with fast deflate) of a gradient with noise: many colours, so lossy palette
/// quantization makes it much smaller, and the encoders have real work to do.
pub fn png(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 24) as u8
    };
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.push(((x * 200 / width.max(1)) as u8).wrapping_add(noise()));
            pixels.push(((y * 200 / height.max(1)) as u8).wrapping_add(noise()));
            pixels.push((((x + y) * 100 / (width + height).max(1)) as u8).wrapping_add(noise()));
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    out
}

/// A PNG header declaring `width` x `height` with a tiny IDAT: a decompression bomb by its header.
pub fn bomb_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32(kind, 0xFFFF_FFFF);
        crc = crc32(data, crc);
        out.extend_from_slice(&(!crc).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

fn crc32(data: &[u8], mut crc: u32) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    crc
}

/// Width and height of a PNG, decoding it fully (so a broken output fails the test).
pub fn decode_png(data: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(data));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).expect("PNG frame");
    (frame.width, frame.height)
}

/// The corpus from `COMPRESSOR_CORPUS`: unset skips (with a notice), set but missing fails.
pub fn corpus() -> Option<PathBuf> {
    match std::env::var_os("COMPRESSOR_CORPUS") {
        None => {
            eprintln!("COMPRESSOR_CORPUS is not set: skipping a corpus test");
            None
        }
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(dir.is_dir(), "COMPRESSOR_CORPUS={} is not a directory", dir.display());
            Some(dir)
        }
    }
}

/// Samples of a Prometheus text exposition: `name{labels}` (labels as written) → value.
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
