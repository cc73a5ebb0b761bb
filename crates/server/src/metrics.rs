//! Prometheus metrics. Each server owns its own recorder (no global recorder is installed), so
//! several servers can run in one process (tests) without sharing or fighting over counters.
//!
//! The names are used by an existing Grafana dashboard; do not rename them.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::AppState;

pub const REQUESTS_TOTAL: &str = "compressor_http_requests_total";
pub const REQUEST_DURATION: &str = "compressor_http_request_duration_seconds";
pub const BYTES_IN: &str = "compressor_bytes_in_total";
pub const BYTES_OUT: &str = "compressor_bytes_out_total";
pub const COMPRESSION_RATIO: &str = "compressor_compression_ratio";
pub const QUEUE_DEPTH: &str = "compressor_queue_depth";
pub const VIDEO_QUEUE_DEPTH: &str = "compressor_video_queue_depth";
pub const MEMORY_BUDGET: &str = "compressor_memory_budget_bytes";
pub const MEMORY_RESERVED: &str = "compressor_memory_reserved_bytes";
pub const IN_FLIGHT: &str = "compressor_in_flight";
pub const REJECTED_TOTAL: &str = "compressor_rejected_total";

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Why a request was refused, the `reason` label of `compressor_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Overloaded,
    RateLimited,
    Unauthorized,
    TooLarge,
    Timeout,
}

impl Rejection {
    const ALL: [Rejection; 5] =
        [Rejection::Overloaded, Rejection::RateLimited, Rejection::Unauthorized, Rejection::TooLarge, Rejection::Timeout];

    fn label(self) -> &'static str {
        match self {
            Rejection::Overloaded => "overloaded",
            Rejection::RateLimited => "rate_limited",
            Rejection::Unauthorized => "unauthorized",
            Rejection::TooLarge => "too_large",
            Rejection::Timeout => "timeout",
        }
    }

    /// The rejection a final response status stands for, if any.
    fn from_status(status: u16) -> Option<Rejection> {
        Some(match status {
            401 => Rejection::Unauthorized,
            413 => Rejection::TooLarge,
            429 => Rejection::RateLimited,
            503 => Rejection::Overloaded,
            504 => Rejection::Timeout,
            _ => return None,
        })
    }
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    queue_depth: Gauge,
    video_queue_depth: Gauge,
    in_flight: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        // Seconds: from fast health checks to multi-second lossy encodes of large images.
        let latency = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        // compressed / original: below 1 is smaller; 1 means unchanged.
        let ratio = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMPRESSION_RATIO.into()), &ratio))
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, text: &'static str| {
            recorder.describe_counter(name.into(), None, text.into());
        };
        describe(REQUESTS_TOTAL, "HTTP requests by route, method and status");
        describe(REQUEST_DURATION, "HTTP request latency in seconds by route");
        describe(BYTES_IN, "image and video bytes received by route");
        describe(BYTES_OUT, "image and video bytes sent by route");
        describe(COMPRESSION_RATIO, "compressed size / original size by output format");
        describe(QUEUE_DEPTH, "compress requests waiting for a worker");
        describe(VIDEO_QUEUE_DEPTH, "video requests waiting for a video worker");
        describe(MEMORY_BUDGET, "the memory budget for images being compressed, in bytes");
        describe(
            MEMORY_RESERVED,
            "bytes of the memory budget held by uploads being read and by compressions waiting for a worker or running",
        );
        describe(IN_FLIGHT, "HTTP requests being served");
        describe(REJECTED_TOTAL, "requests refused, by reason");
        let queue_depth = recorder.register_gauge(&Key::from_name(QUEUE_DEPTH), &METADATA);
        let video_queue_depth = recorder.register_gauge(&Key::from_name(VIDEO_QUEUE_DEPTH), &METADATA);
        let in_flight = recorder.register_gauge(&Key::from_name(IN_FLIGHT), &METADATA);
        let metrics = Metrics { inner: Arc::new(Inner { recorder, handle, queue_depth, video_queue_depth, in_flight }) };
        // Every reason is present from the start, so rates and alerts see zeros rather than gaps.
        for reason in Rejection::ALL {
            metrics.rejected(reason, 0);
        }
        metrics
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.inner.recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.inner.recorder.register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    pub fn queue_depth(&self) -> &Gauge {
        &self.inner.queue_depth
    }

    /// A gauge without labels (the memory budget's).
    pub fn gauge(&self, name: &'static str) -> Gauge {
        self.inner.recorder.register_gauge(&Key::from_name(name), &METADATA)
    }

    pub fn video_queue_depth(&self) -> &Gauge {
        &self.inner.video_queue_depth
    }

    pub fn rejected(&self, reason: Rejection, n: u64) {
        self.counter(REJECTED_TOTAL, vec![Label::new("reason", reason.label())]).increment(n);
    }

    pub fn bytes_in(&self, route: &'static str, n: usize) {
        self.counter(BYTES_IN, vec![Label::new("route", route)]).increment(n as u64);
    }

    pub fn bytes_out(&self, route: &'static str, n: usize) {
        self.counter(BYTES_OUT, vec![Label::new("route", route)]).increment(n as u64);
    }

    pub fn compression_ratio(&self, format: &str, ratio: f64) {
        self.histogram(COMPRESSION_RATIO, vec![Label::new("format", format.to_owned())]).record(ratio);
    }

    /// The Prometheus text exposition, with process CPU and memory appended.
    pub fn render(&self) -> String {
        self.inner.handle.run_upkeep();
        let mut text = self.inner.handle.render();
        append_process_metrics(&mut text);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counts every request by matched route (`unmatched` for 404s), method and final status, times
/// it, tracks in-flight requests and counts refusals by the reason their status stands for.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let metrics = &state.metrics;
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    metrics.inner.in_flight.increment(1.0);
    // Decremented by a guard: a request whose future is dropped (client gone) must not leak.
    struct InFlight(Gauge);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.decrement(1.0);
        }
    }
    let _guard = InFlight(metrics.inner.in_flight.clone());

    let response = next.run(request).await;

    let status = response.status().as_u16();
    metrics
        .counter(
            REQUESTS_TOTAL,
            vec![Label::new("route", route.clone()), Label::new("method", method), Label::new("status", status.to_string())],
        )
        .increment(1);
    metrics.histogram(REQUEST_DURATION, vec![Label::new("route", route.clone())]).record(started.elapsed().as_secs_f64());
    // The readiness probe answers 503 by design while draining; that is not a refused request.
    if route != "/readyz"
        && let Some(reason) = Rejection::from_status(status)
    {
        metrics.rejected(reason, 1);
    }
    response
}

/// `process_cpu_seconds_total` and `process_resident_memory_bytes` from `/proc/self` (Linux);
/// nothing elsewhere.
fn append_process_metrics(text: &mut String) {
    use std::fmt::Write;
    if let Some(cpu) = process_cpu_seconds() {
        let _ = write!(
            text,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
             # TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n\n"
        );
    }
    if let Some(rss) = process_resident_bytes() {
        let _ = write!(
            text,
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n\n"
        );
    }
}

fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime), counted from 1 over the whole line; `fields[0]` is field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

fn process_resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| resident_pages * page as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_process_metrics_and_histogram_buckets() {
        let metrics = Metrics::new();
        metrics.compression_ratio("png", 0.42);
        metrics.histogram(REQUEST_DURATION, vec![Label::new("route", "/x")]).record(0.2);
        let text = metrics.render();
        assert!(text.contains("compressor_compression_ratio_bucket{format=\"png\",le=\"0.5\"} 1"), "{text}");
        assert!(text.contains("compressor_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.25\"} 1"), "{text}");
        assert!(text.contains("compressor_rejected_total{reason=\"timeout\"} 0"), "{text}");
        if cfg!(target_os = "linux") {
            let rss = text.lines().find_map(|l| l.strip_prefix("process_resident_memory_bytes ")).expect("rss line");
            assert!(rss.parse::<u64>().unwrap() > 1 << 20);
            let cpu = text.lines().find_map(|l| l.strip_prefix("process_cpu_seconds_total ")).expect("cpu line");
            assert!(cpu.parse::<f64>().unwrap() >= 0.0);
        }
    }
}
