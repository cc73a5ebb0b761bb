//! Settings of the service: command-line flags (each with its `COMPRESSOR_*` environment variable)
//! and the checked [`Config`] the rest of the crate reads.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// Where `compressor serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// `compressor serve` flags. Every flag can also be set through the environment variable named
/// beside it; a flag given on the command line wins.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, env = "COMPRESSOR_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Origins allowed to call the API from a browser (comma list; `*` allows any). Empty: no CORS headers
    #[arg(long, env = "COMPRESSOR_CORS_ORIGINS", value_delimiter = ',', default_value = "")]
    pub cors_origins: Vec<String>,
    /// API keys (comma list). When any key is configured, compress routes need one
    #[arg(long, env = "COMPRESSOR_API_KEYS", value_delimiter = ',', default_value = "", hide_env_values = true)]
    pub api_keys: Vec<String>,
    /// File with one API key per line (blank lines and lines starting with `#` are ignored)
    #[arg(long, env = "COMPRESSOR_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Largest request body in bytes (default 50 MiB)
    #[arg(long, env = "COMPRESSOR_MAX_BODY_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest image in pixels, checked from the header before decoding
    #[arg(long, env = "COMPRESSOR_MAX_PIXELS", default_value_t = compressor_engine::Limits::default().max_pixels)]
    pub max_pixels: u64,
    /// Images compressed at once (default: number of CPUs)
    #[arg(long, env = "COMPRESSOR_WORKERS")]
    pub workers: Option<usize>,
    /// Memory for images being compressed, shared by all workers (`600M`, `2G` or bytes): a request
    /// waits until its estimated peak fits (503 after 5 s), and one that could never fit gets 413.
    /// Default: 3/4 of the memory limit (the cgroup's, else physical memory) less 256 MiB
    #[arg(long, env = "COMPRESSOR_MEMORY_BUDGET", value_parser = compressor_budget::parse_size)]
    pub memory_budget: Option<u64>,
    /// Compress requests allowed to wait for a worker; beyond WORKERS + QUEUE requests answer 503 at once
    #[arg(long, env = "COMPRESSOR_QUEUE", default_value_t = 32)]
    pub queue: usize,
    /// Longest time for a whole request, upload and queueing included (`90s`, `500ms`, `2m`); 504 after it
    #[arg(long, env = "COMPRESSOR_REQUEST_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Token bucket per API key (or per client IP without keys), like `10/s` or `600/min`. Unset: no limit
    #[arg(long, env = "COMPRESSOR_RATE_LIMIT", value_parser = parse_rate)]
    pub rate_limit: Option<RateLimit>,
    /// Behind reverse proxies: the client address for per-IP rate limits is the N-th entry from the
    /// right of `X-Forwarded-For` (1 behind nginx or a Kubernetes ingress, 2 behind Google's HTTPS
    /// load balancer, which appends the client and its own address). 0: the connection's address
    #[arg(long, env = "COMPRESSOR_FORWARDED_FOR_DEPTH", default_value_t = 0)]
    pub forwarded_for_depth: usize,
    /// After SIGTERM or Ctrl-C, keep serving this long with /readyz answering 503, so that a load
    /// balancer's health checks take the instance out before it stops accepting connections
    #[arg(long, env = "COMPRESSOR_SHUTDOWN_DELAY", default_value = "0s", value_parser = parse_delay)]
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C (after the delay)
    #[arg(long, env = "COMPRESSOR_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Serve no web page at `/` (for API-only deployments; COMPRESSOR_UI=false does the same)
    #[arg(long)]
    pub no_ui: bool,
    /// Whether to serve the web page at `/` (COMPRESSOR_UI=false: none)
    #[arg(long, env = "COMPRESSOR_UI", default_value_t = true, action = clap::ArgAction::Set, hide = true)]
    pub ui: bool,
    /// Which services this instance runs: `images`, `video`, or both (the default). Separate
    /// instance groups can then be scaled for each, behind one load balancer
    #[arg(long, env = "COMPRESSOR_SERVICES", value_delimiter = ',', default_value = "images,video", value_parser = ["images", "video"])]
    pub services: Vec<String>,
    /// Largest video upload in bytes; streamed to a temporary file, never held in memory
    #[arg(long, env = "COMPRESSOR_MAX_VIDEO_BYTES", default_value_t = compressor_video::Limits::DEFAULT.max_input_bytes)]
    pub max_video_bytes: u64,
    /// Videos transcoded at once (each ffmpeg uses every CPU)
    #[arg(long, env = "COMPRESSOR_VIDEO_WORKERS", default_value_t = 1)]
    pub video_workers: usize,
    /// Video requests allowed to wait for a video worker; beyond that they answer 503 at once
    #[arg(long, env = "COMPRESSOR_VIDEO_QUEUE", default_value_t = 2)]
    pub video_queue: usize,
    /// Longest time for a whole video request, upload and transcode included; 504 after it
    #[arg(long, env = "COMPRESSOR_VIDEO_TIMEOUT", default_value = VIDEO_TIMEOUT.as_str(), value_parser = parse_duration)]
    pub video_timeout: Duration,
    /// Folder for uploaded videos and transcodes in progress (default: the system's temporary folder)
    #[arg(long, env = "COMPRESSOR_TEMP_DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Log format: `text` or `json` (the level comes from RUST_LOG, default `info`)
    #[arg(long, env = "COMPRESSOR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// `--video-timeout`'s default, the video crate's ([`compressor_video::Options::DEFAULT_TIMEOUT`]),
/// as [`parse_duration`] reads it.
static VIDEO_TIMEOUT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| duration_text(compressor_video::Options::DEFAULT_TIMEOUT));

/// `10m`, `90s`, `1500ms`: the shortest exact way [`parse_duration`] reads.
fn duration_text(d: Duration) -> String {
    match (d.as_millis(), d.as_secs()) {
        (ms, _) if ms % 1000 != 0 => format!("{ms}ms"),
        (_, s) if s % 3600 == 0 => format!("{}h", s / 3600),
        (_, s) if s % 60 == 0 => format!("{}m", s / 60),
        (_, s) => format!("{s}s"),
    }
}

/// `count` requests per `per`, as a token bucket holding at most `count` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

/// The checked settings the service runs with. Tests build it directly (see [`Config::default`]).
#[derive(Debug, Clone)]
pub struct Config {
    pub cors_origins: Vec<String>,
    pub api_keys: HashSet<String>,
    pub max_body_bytes: usize,
    pub max_pixels: u64,
    pub workers: usize,
    pub queue: usize,
    /// Bytes of the memory budget (see [`ServeArgs::memory_budget`]).
    pub memory_budget: u64,
    pub request_timeout: Duration,
    pub rate_limit: Option<RateLimit>,
    /// See [`ServeArgs::forwarded_for_depth`].
    pub forwarded_for_depth: usize,
    /// See [`ServeArgs::shutdown_delay`].
    pub shutdown_delay: Duration,
    pub shutdown_grace: Duration,
    /// Serve the web page at `/`.
    pub ui: bool,
    pub images: bool,
    pub video: Option<VideoConfig>,
}

/// The video service's own limits (see the `--video-*` flags).
#[derive(Debug, Clone)]
pub struct VideoConfig {
    pub max_body_bytes: u64,
    pub workers: usize,
    pub queue: usize,
    pub timeout: Duration,
    pub temp_dir: Option<PathBuf>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            max_body_bytes: compressor_video::Limits::DEFAULT.max_input_bytes,
            workers: 1,
            queue: 2,
            timeout: compressor_video::Options::DEFAULT_TIMEOUT,
            temp_dir: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cors_origins: Vec::new(),
            api_keys: HashSet::new(),
            max_body_bytes: 50 * 1024 * 1024,
            max_pixels: compressor_engine::Limits::default().max_pixels,
            workers: default_workers(),
            queue: 32,
            memory_budget: compressor_budget::default_budget(),
            request_timeout: Duration::from_secs(60),
            rate_limit: None,
            forwarded_for_depth: 0,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(25),
            ui: true,
            images: true,
            video: Some(VideoConfig::default()),
        }
    }
}

impl Config {
    /// Checks the flags and reads the keys file.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Config> {
        let mut api_keys: HashSet<String> = args.api_keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()).map(str::to_owned).collect();
        if let Some(path) = &args.api_keys_file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading API keys file {}", path.display()))?;
            api_keys.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
            if api_keys.is_empty() {
                bail!("API keys file {} holds no keys", path.display());
            }
        }
        let cors_origins: Vec<String> = args.cors_origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        for origin in &cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!("CORS origin {origin:?} is not `*` or an origin like https://example.com");
            }
        }
        let workers = args.workers.unwrap_or_else(default_workers);
        if workers == 0 {
            bail!("workers must be at least 1");
        }
        if args.max_body_bytes == 0 || args.max_video_bytes == 0 {
            bail!("max body bytes must be at least 1");
        }
        if args.services.is_empty() {
            bail!("--services needs `images`, `video` or both");
        }
        let video = args.services.iter().any(|s| s == "video").then(|| VideoConfig {
            max_body_bytes: args.max_video_bytes,
            workers: args.video_workers,
            queue: args.video_queue,
            timeout: args.video_timeout,
            temp_dir: args.temp_dir.clone(),
        });
        if video.as_ref().is_some_and(|v| v.workers == 0) {
            bail!("video workers must be at least 1");
        }
        if let Some(dir) = video.as_ref().and_then(|v| v.temp_dir.as_ref())
            && !dir.is_dir()
        {
            bail!("temporary folder {} does not exist", dir.display());
        }
        Ok(Config {
            cors_origins,
            api_keys,
            max_body_bytes: args.max_body_bytes,
            max_pixels: args.max_pixels,
            workers,
            queue: args.queue,
            memory_budget: args.memory_budget.unwrap_or_else(compressor_budget::default_budget),
            request_timeout: args.request_timeout,
            rate_limit: args.rate_limit,
            forwarded_for_depth: args.forwarded_for_depth,
            shutdown_delay: args.shutdown_delay,
            shutdown_grace: args.shutdown_grace,
            ui: args.ui && !args.no_ui,
            images: args.services.iter().any(|s| s == "images"),
            video,
        })
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `250ms`, `30s`, `5m` / `5min`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" | "hour" | "hours" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration as [`parse_duration`] reads it, or zero (`0`, `0s`, `0ms`): for delays that may be off.
pub fn parse_delay(s: &str) -> Result<Duration, String> {
    if ["0", "0s", "0ms", "0m", "0h"].contains(&s.trim()) { Ok(Duration::ZERO) } else { parse_duration(s) }
}

/// `10/s`, `600/min`, `1000/h`, or with a count of units, `5/10s`.
pub fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let (count, per) = s.split_once('/').ok_or_else(|| format!("rate limit {s:?} is not like 10/s or 600/min"))?;
    let count: u32 =
        count.trim().parse().ok().filter(|c| *c > 0).ok_or_else(|| format!("rate limit {s:?}: count must be a positive integer"))?;
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) { parse_duration(per)? } else { parse_duration(&format!("1{per}"))? };
    Ok(RateLimit { count, per })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_delay("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_delay("0"), Ok(Duration::ZERO));
        assert_eq!(parse_delay("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_delay("0parsecs").is_err() && parse_delay("-1s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10/s"), Ok(RateLimit { count: 10, per: Duration::from_secs(1) }));
        assert_eq!(parse_rate("600/min"), Ok(RateLimit { count: 600, per: Duration::from_secs(60) }));
        assert_eq!(parse_rate("5/10s"), Ok(RateLimit { count: 5, per: Duration::from_secs(10) }));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("ten/s").is_err());
        assert!(parse_rate("10").is_err());
    }

    #[test]
    fn video_flag_defaults_are_the_video_crates() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let args = <Cli as clap::Parser>::parse_from(["serve"]).serve;
        let video = Config::from_args(&args).unwrap().video.unwrap();
        let defaults = (compressor_video::Limits::DEFAULT.max_input_bytes, compressor_video::Options::DEFAULT_TIMEOUT);
        assert_eq!((video.max_body_bytes, video.timeout), defaults);
        let config = VideoConfig::default();
        assert_eq!((config.max_body_bytes, config.timeout), defaults);
        assert_eq!(parse_duration(&VIDEO_TIMEOUT), Ok(compressor_video::Options::DEFAULT_TIMEOUT));
        for (d, text) in [(Duration::from_secs(90), "90s"), (Duration::from_millis(1500), "1500ms"), (Duration::from_secs(7200), "2h")] {
            assert_eq!(duration_text(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }
}
