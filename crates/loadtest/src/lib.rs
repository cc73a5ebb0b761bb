//! `compressor loadtest`: uploads real images to a running compressor service and reports
//! throughput, latency percentiles (HDR histogram), status codes, bytes and compression ratios,
//! with thresholds that make the exit status non-zero when missed.
//!
//! Safety: it sends requests only to the `--url` it is given, and every run is bounded by both
//! `--duration` and `--max-requests`.

mod plot;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// POST /v1/compress (raw body, or multipart field `file` with --multipart)
    V1,
    /// POST /compress-image as the old clients call it (multipart `image_files` + `strategy` field)
    Legacy,
}

/// What a run does (the command line's `compressor loadtest` flags fill it); [`Settings::default`]
/// holds the defaults those flags show.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of the service under test (requests go nowhere else).
    pub url: String,
    pub route: Route,
    /// Images to upload, used round-robin.
    pub images: Vec<PathBuf>,
    /// Closed model: this many clients, each sending its next request when the last one ends.
    pub concurrency: Option<usize>,
    /// Open model: start this many requests per second, whatever the latency.
    pub rate: Option<f64>,
    /// How long to send requests; at most 10 minutes.
    pub duration: Duration,
    /// Stop after this many requests even if the duration has not passed.
    pub max_requests: u64,
    /// v1: send multipart/form-data (field `file`) instead of the raw body.
    pub multipart: bool,
    /// Query string added to every request.
    pub query: String,
    /// Bearer API key.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Write the full results here as JSON.
    pub json: Option<PathBuf>,
    /// Draw latency over time and the latency histogram here (SVG).
    pub plot: Option<PathBuf>,
    /// Thresholds: the share of requests that were not 2xx (0-1), p95 and p99 latency in
    /// milliseconds (at most), throughput in requests per second (at least).
    pub max_error_rate: Option<f64>,
    pub max_p95_ms: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub min_rps: Option<f64>,
    /// Statuses that count as expected besides 2xx; a 503 counts only with Retry-After.
    pub allow_status: Vec<u16>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            url: "http://127.0.0.1:8080".into(),
            route: Route::V1,
            images: Vec::new(),
            concurrency: None,
            rate: None,
            duration: Duration::from_secs(10),
            max_requests: 100_000,
            multipart: false,
            query: String::new(),
            api_key: None,
            timeout: Duration::from_secs(60),
            json: None,
            plot: None,
            max_error_rate: None,
            max_p95_ms: None,
            max_p99_ms: None,
            min_rps: None,
            allow_status: Vec::new(),
        }
    }
}

/// One request as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Start time since the run began, seconds.
    pub at: f64,
    pub latency_ms: f64,
    /// HTTP status, or 0 when the request failed without one (connection error, timeout).
    pub status: u16,
    pub retry_after: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// compressed/original, from the response headers.
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub url: String,
    pub route: Route,
    pub requests: u64,
    pub duration_s: f64,
    pub throughput_rps: f64,
    pub latency_ms: BTreeMap<String, f64>,
    pub status_counts: BTreeMap<String, u64>,
    /// Requests that were neither 2xx nor an allowed status (a 503 is allowed only with Retry-After).
    pub errors: u64,
    pub error_rate: f64,
    pub rejected_with_retry_after: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub mean_compression_ratio: Option<f64>,
    pub thresholds: Vec<ThresholdResult>,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdResult {
    pub name: String,
    pub limit: f64,
    pub actual: f64,
    pub passed: bool,
}

/// A prepared upload.
struct Upload {
    name: String,
    data: Arc<Vec<u8>>,
}

/// Runs the load and returns the summary (the caller decides the exit status from `passed`).
pub async fn run(args: &Settings) -> anyhow::Result<(Summary, Vec<Sample>)> {
    if args.duration > Duration::from_secs(600) {
        bail!("--duration is limited to 10 minutes");
    }
    let base = args.url.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--url must be http:// or https://");
    }
    let uploads: Vec<Upload> = args
        .images
        .iter()
        .map(|p| {
            let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let name = p.file_name().map_or("image".into(), |n| n.to_string_lossy().into_owned());
            Ok(Upload { name, data: Arc::new(data) })
        })
        .collect::<anyhow::Result<_>>()?;
    let uploads = Arc::new(uploads);
    // No redirects: requests go to the given address and nowhere else.
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .pool_max_idle_per_host(1024)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let path = match args.route {
        Route::V1 => "/v1/compress",
        Route::Legacy => "/compress-image",
    };
    let url = if args.query.is_empty() { format!("{base}{path}") } else { format!("{base}{path}?{}", args.query.trim_start_matches('?')) };
    let samples = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + args.duration;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let next = {
        let sent = sent.clone();
        let max = args.max_requests;
        move || {
            let n = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (n < max && Instant::now() < deadline).then_some(n)
        }
    };
    let one = {
        let (client, url, uploads, samples, args) = (client.clone(), url.clone(), uploads.clone(), samples.clone(), args.clone());
        move |n: u64| {
            let (client, url, uploads, samples, args) = (client.clone(), url.clone(), uploads.clone(), samples.clone(), args.clone());
            async move {
                let upload = &uploads[(n as usize) % uploads.len()];
                let sample = request(&client, &url, &args, upload, started).await;
                samples.lock().unwrap().push(sample);
            }
        }
    };
    match (args.concurrency, args.rate) {
        (_, Some(rate)) => {
            // Open model: one request every 1/rate seconds, each on its own task.
            let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
            let mut tasks = tokio::task::JoinSet::new();
            while let Some(n) = next() {
                interval.tick().await;
                tasks.spawn(one(n));
                while tasks.len() > 10_000 {
                    tasks.join_next().await;
                }
            }
            while tasks.join_next().await.is_some() {}
        }
        (concurrency, None) => {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..concurrency.unwrap_or(1).max(1) {
                let (next, one) = (next.clone(), one.clone());
                tasks.spawn(async move {
                    while let Some(n) = next() {
                        one(n).await;
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let elapsed = started.elapsed();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let summary = summarise(args, &samples, elapsed)?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&serde_json::json!({ "summary": summary, "samples": samples }))?)?;
    }
    if let Some(path) = &args.plot {
        plot::draw(path, &samples, &summary)?;
    }
    Ok((summary, samples))
}

async fn request(client: &reqwest::Client, url: &str, args: &Settings, upload: &Upload, started: Instant) -> Sample {
    let at = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut builder = client.post(url);
    if let Some(key) = &args.api_key {
        builder = builder.bearer_auth(key);
    }
    let bytes_sent = upload.data.len() as u64;
    builder = match (args.route, args.multipart) {
        (Route::Legacy, _) => {
            // Exactly as the old k6 script: the file in `image_files`, plus a `strategy` field the server ignores.
            let part = reqwest::multipart::Part::bytes(upload.data.to_vec()).file_name(upload.name.clone()).mime_str("image/png").unwrap();
            builder.multipart(reqwest::multipart::Form::new().part("image_files", part).text("strategy", "bimg"))
        }
        (Route::V1, true) => {
            let part = reqwest::multipart::Part::bytes(upload.data.to_vec()).file_name(upload.name.clone());
            builder.multipart(reqwest::multipart::Form::new().part("file", part))
        }
        (Route::V1, false) => builder.header("content-type", "application/octet-stream").body(upload.data.to_vec()),
    };
    match builder.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.map(|b| b.len() as u64).unwrap_or(0);
            Sample {
                at,
                latency_ms: t.elapsed().as_secs_f64() * 1000.0,
                status,
                retry_after: headers.contains_key("retry-after"),
                bytes_sent,
                bytes_received: body,
                ratio: compression_ratio(&headers),
            }
        }
        Err(_) => Sample {
            at,
            latency_ms: t.elapsed().as_secs_f64() * 1000.0,
            status: 0,
            retry_after: false,
            bytes_sent,
            bytes_received: 0,
            ratio: None,
        },
    }
}

/// compressed/original from `X-Compression-Ratio` (v1) or the legacy metadata's `size_difference`
/// (original/compressed).
fn compression_ratio(headers: &reqwest::header::HeaderMap) -> Option<f64> {
    if let Some(r) = headers.get("x-compression-ratio").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) {
        return Some(r);
    }
    let meta: serde_json::Value = serde_json::from_str(headers.get("x-compression-metadata")?.to_str().ok()?).ok()?;
    let difference = meta["data"]["size_difference"].as_f64()?;
    (difference > 0.0).then(|| 1.0 / difference)
}

fn summarise(args: &Settings, samples: &[Sample], elapsed: Duration) -> anyhow::Result<Summary> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?; // microseconds
    let mut status_counts = BTreeMap::new();
    let (mut errors, mut retry_after) = (0, 0);
    for s in samples {
        histogram.saturating_record((s.latency_ms * 1000.0).max(1.0) as u64);
        *status_counts.entry(if s.status == 0 { "error".to_owned() } else { s.status.to_string() }).or_insert(0) += 1;
        let allowed = (200..300).contains(&s.status) || (args.allow_status.contains(&s.status) && (s.status != 503 || s.retry_after));
        if !allowed {
            errors += 1;
        }
        if s.status == 503 && s.retry_after {
            retry_after += 1;
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let mut latency = BTreeMap::new();
    if !samples.is_empty() {
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)] {
            latency.insert(name.to_owned(), ms(q));
        }
        latency.insert("max".to_owned(), histogram.max() as f64 / 1000.0);
        latency.insert("mean".to_owned(), histogram.mean() / 1000.0);
    }
    let requests = samples.len() as u64;
    let duration_s = elapsed.as_secs_f64();
    let throughput = if duration_s > 0.0 { requests as f64 / duration_s } else { 0.0 };
    let error_rate = if requests > 0 { errors as f64 / requests as f64 } else { 1.0 };
    let ratios: Vec<f64> = samples.iter().filter_map(|s| s.ratio).collect();
    let mut thresholds = Vec::new();
    let mut check = |name: &str, limit: Option<f64>, actual: f64, at_most: bool| {
        if let Some(limit) = limit {
            let passed = if at_most { actual <= limit } else { actual >= limit };
            thresholds.push(ThresholdResult { name: name.into(), limit, actual, passed });
        }
    };
    check("error_rate", args.max_error_rate, error_rate, true);
    check("p95_ms", args.max_p95_ms, latency.get("p95").copied().unwrap_or(f64::INFINITY), true);
    check("p99_ms", args.max_p99_ms, latency.get("p99").copied().unwrap_or(f64::INFINITY), true);
    check("throughput_rps", args.min_rps, throughput, false);
    let passed = requests > 0 && thresholds.iter().all(|t| t.passed);
    Ok(Summary {
        url: args.url.clone(),
        route: args.route,
        requests,
        duration_s,
        throughput_rps: throughput,
        latency_ms: latency,
        status_counts,
        errors,
        error_rate,
        rejected_with_retry_after: retry_after,
        bytes_sent: samples.iter().map(|s| s.bytes_sent).sum(),
        bytes_received: samples.iter().map(|s| s.bytes_received).sum(),
        mean_compression_ratio: (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64),
        thresholds,
        passed,
    })
}

impl Summary {
    /// The human report for standard error.
    pub fn text(&self) -> String {
        let l = |k: &str| self.latency_ms.get(k).copied().unwrap_or(f64::NAN);
        let mut s = format!(
            "{} requests in {:.1} s to {} ({:?}): {:.2} req/s\nlatency ms: p50 {:.1}  p90 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}\nstatus: {:?}  errors: {} ({:.2}%)  503+Retry-After: {}\nbytes sent {} received {}{}",
            self.requests,
            self.duration_s,
            self.url,
            self.route,
            self.throughput_rps,
            l("p50"),
            l("p90"),
            l("p95"),
            l("p99"),
            l("max"),
            self.status_counts,
            self.errors,
            self.error_rate * 100.0,
            self.rejected_with_retry_after,
            self.bytes_sent,
            self.bytes_received,
            self.mean_compression_ratio.map_or(String::new(), |r| format!("  mean compression ratio {r:.3}")),
        );
        for t in &self.thresholds {
            s += &format!("\nthreshold {}: {:.3} vs limit {:.3}: {}", t.name, t.actual, t.limit, if t.passed { "ok" } else { "FAILED" });
        }
        s
    }
}
