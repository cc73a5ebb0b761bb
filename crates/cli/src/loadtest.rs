//! `compressor loadtest`: its flags, turned into the load runner's [`Settings`], whose `Default`
//! holds the defaults shown here.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Args, ValueEnum};
use compressor_loadtest::{Route, Settings};

use crate::duration::Span;

static DEFAULTS: LazyLock<Settings> = LazyLock::new(Settings::default);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RouteArg {
    /// POST /v1/compress (raw body, or multipart field `file` with --multipart)
    V1,
    /// POST /compress-image as the old clients call it (multipart `image_files` + `strategy` field)
    Legacy,
}

impl From<Route> for RouteArg {
    fn from(route: Route) -> Self {
        match route {
            Route::V1 => RouteArg::V1,
            Route::Legacy => RouteArg::Legacy,
        }
    }
}

impl From<RouteArg> for Route {
    fn from(route: RouteArg) -> Self {
        match route {
            RouteArg::V1 => Route::V1,
            RouteArg::Legacy => Route::Legacy,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Base URL of the service under test (requests go nowhere else)
    #[arg(long, default_value_t = DEFAULTS.url.clone())]
    pub url: String,
    #[arg(long, value_enum, default_value_t = DEFAULTS.route.into())]
    pub route: RouteArg,
    /// Images to upload, used round-robin
    #[arg(long = "image", required = true)]
    pub images: Vec<PathBuf>,
    /// Closed model: this many clients, each sending its next request when the last one ends
    #[arg(long, conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open model: start this many requests per second, whatever the latency
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send requests (e.g. 30s, 2m); at most 10 minutes
    #[arg(long, default_value_t = Span(DEFAULTS.duration), value_parser = Span::positive)]
    pub duration: Span,
    /// Stop after this many requests even if the duration has not passed
    #[arg(long, default_value_t = DEFAULTS.max_requests)]
    pub max_requests: u64,
    /// v1: send multipart/form-data (field `file`) instead of the raw body
    #[arg(long)]
    pub multipart: bool,
    /// Query string added to every request, e.g. `mode=lossless` or `strategy=stdlib`
    #[arg(long, default_value_t = DEFAULTS.query.clone())]
    pub query: String,
    /// Bearer API key
    #[arg(long, env = "COMPRESSOR_API_KEY")]
    pub api_key: Option<String>,
    /// Per-request timeout
    #[arg(long, default_value_t = Span(DEFAULTS.timeout), value_parser = Span::positive)]
    pub timeout: Span,
    /// Write the full results as JSON
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw latency over time and the latency histogram (SVG)
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Threshold: fail when the share of requests that were not 2xx exceeds this (0-1)
    #[arg(long)]
    pub max_error_rate: Option<f64>,
    /// Threshold: fail when p95 latency exceeds this many milliseconds
    #[arg(long)]
    pub max_p95_ms: Option<f64>,
    /// Threshold: fail when p99 latency exceeds this many milliseconds
    #[arg(long)]
    pub max_p99_ms: Option<f64>,
    /// Threshold: fail when throughput is below this many requests per second
    #[arg(long)]
    pub min_rps: Option<f64>,
    /// Statuses that count as expected besides 2xx (e.g. 503 for an overload test); a 503
    /// counts only when it carries Retry-After
    #[arg(long, value_delimiter = ',')]
    pub allow_status: Vec<u16>,
}

impl From<LoadArgs> for Settings {
    fn from(args: LoadArgs) -> Self {
        Settings {
            url: args.url,
            route: args.route.into(),
            images: args.images,
            concurrency: args.concurrency,
            rate: args.rate,
            duration: args.duration.0,
            max_requests: args.max_requests,
            multipart: args.multipart,
            query: args.query,
            api_key: args.api_key,
            timeout: args.timeout.0,
            json: args.json,
            plot: args.plot,
            max_error_rate: args.max_error_rate,
            max_p95_ms: args.max_p95_ms,
            max_p99_ms: args.max_p99_ms,
            min_rps: args.min_rps,
            allow_status: args.allow_status,
        }
    }
}

/// Exit status 0 when every threshold passed, 1 when one was missed.
pub fn run(args: LoadArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (summary, _) = runtime.block_on(compressor_loadtest::run(&args.into()))?;
    eprintln!("{}", summary.text());
    Ok(if summary.passed { 0 } else { 1 })
}
