//! Settings of the service: [`ServeSettings`], what it is told (the command line's flags and
//! their `COMPRESSOR_*` variables fill it), and the checked [`Config`] the rest of the crate reads.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// Where `compressor serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";

/// What `compressor serve` is told (its flags, each with its `COMPRESSOR_*` variable, are the
/// command line's), before [`Config::from_settings`] checks it. [`ServeSettings::default`] holds
/// every default the flags show.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    /// Origins allowed to call the API from a browser (`*` allows any); empty entries are ignored.
    pub cors_origins: Vec<String>,
    /// API keys; empty entries are ignored. With any key, compress routes need one.
    pub api_keys: Vec<String>,
    /// A file with one API key per line (blank lines and `#` comments ignored).
    pub api_keys_file: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub max_pixels: u64,
    /// The most pixels a resize may make (a request over it is refused before any work).
    pub max_output_pixels: u64,
    /// Images compressed at once; `None`: the number of CPUs.
    pub workers: Option<usize>,
    /// Bytes of the memory budget; `None`: from the cgroup's limit or physical memory.
    pub memory_budget: Option<u64>,
    pub queue: usize,
    pub request_timeout: Duration,
    pub rate_limit: Option<RateLimit>,
    pub forwarded_for_depth: usize,
    pub shutdown_delay: Duration,
    pub shutdown_grace: Duration,
    /// Serve the web page at `/`.
    pub ui: bool,
    /// Run the image service.
    pub images: bool,
    /// Run the video service.
    pub video: bool,
    pub max_video_bytes: u64,
    pub video_workers: usize,
    pub video_queue: usize,
    /// Video uploads read at once (each to a temporary file of at most `max_video_bytes`).
    pub video_uploads: usize,
    pub video_timeout: Duration,
    pub temp_dir: Option<PathBuf>,
    pub log_format: LogFormat,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: DEFAULT_LISTEN.parse().expect("a socket address"),
            cors_origins: Vec::new(),
            api_keys: Vec::new(),
            api_keys_file: None,
            max_body_bytes: 50 * 1024 * 1024,
            max_pixels: compressor_engine::Limits::default().max_pixels,
            max_output_pixels: compressor_engine::Limits::DEFAULT_MAX_OUTPUT_PIXELS,
            workers: None,
            memory_budget: None,
            queue: 32,
            request_timeout: Duration::from_secs(60),
            rate_limit: None,
            forwarded_for_depth: 0,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(25),
            ui: true,
            images: true,
            video: true,
            max_video_bytes: compressor_video::Limits::DEFAULT.max_input_bytes,
            video_workers: 1,
            video_queue: 2,
            video_uploads: 8,
            video_timeout: compressor_video::Options::DEFAULT_TIMEOUT,
            temp_dir: None,
            log_format: LogFormat::Text,
        }
    }
}

/// How the service writes its logs (the level comes from `RUST_LOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
    pub max_output_pixels: u64,
    pub workers: usize,
    pub queue: usize,
    /// Bytes of the memory budget (see [`ServeSettings::memory_budget`]).
    pub memory_budget: u64,
    pub request_timeout: Duration,
    pub rate_limit: Option<RateLimit>,
    /// Behind reverse proxies: the client address for per-IP rate limits is the N-th entry from
    /// the right of `X-Forwarded-For`; 0: the connection's address.
    pub forwarded_for_depth: usize,
    /// After the shutdown signal, how long to keep serving with `/readyz` answering 503.
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
    /// Uploads read at once, before they ask for a place in the pool: a slow upload holds no
    /// place, and at most `uploads` × `max_body_bytes` of disk is held by uploads in progress.
    pub uploads: usize,
    pub timeout: Duration,
    pub temp_dir: Option<PathBuf>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig::from_settings(&ServeSettings::default())
    }
}

impl VideoConfig {
    fn from_settings(settings: &ServeSettings) -> VideoConfig {
        VideoConfig {
            max_body_bytes: settings.max_video_bytes,
            workers: settings.video_workers,
            queue: settings.video_queue,
            uploads: settings.video_uploads,
            timeout: settings.video_timeout,
            temp_dir: settings.temp_dir.clone(),
        }
    }
}

/// The defaults of [`ServeSettings`], checked.
impl Default for Config {
    fn default() -> Self {
        Config::from_settings(&ServeSettings::default()).expect("the default settings are valid")
    }
}

impl Config {
    /// The engine's limits for a request: the operator's, with the body limit as the input's.
    pub fn limits(&self) -> compressor_engine::Limits {
        compressor_engine::Limits {
            max_pixels: self.max_pixels,
            max_input_bytes: self.max_body_bytes as u64,
            max_output_pixels: self.max_output_pixels,
            ..compressor_engine::Limits::default()
        }
    }

    /// The largest request body any route of this server accepts (also the most of a refused one
    /// it reads and throws away, so that the refusal reaches the client).
    pub fn largest_body(&self) -> u64 {
        let video = self.video.as_ref().map_or(0, |v| v.max_body_bytes);
        (self.max_body_bytes as u64).max(video)
    }

    /// Checks the settings and reads the keys file.
    pub fn from_settings(settings: &ServeSettings) -> anyhow::Result<Config> {
        let mut api_keys: HashSet<String> =
            settings.api_keys.iter().map(|k| k.trim()).filter(|k| !k.is_empty()).map(str::to_owned).collect();
        if let Some(path) = &settings.api_keys_file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading API keys file {}", path.display()))?;
            api_keys.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned));
            if api_keys.is_empty() {
                bail!("API keys file {} holds no keys", path.display());
            }
        }
        let cors_origins: Vec<String> =
            settings.cors_origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        for origin in &cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!("CORS origin {origin:?} is not `*` or an origin like https://example.com");
            }
        }
        let workers = settings.workers.unwrap_or_else(default_workers);
        if workers == 0 {
            bail!("workers must be at least 1");
        }
        if settings.max_body_bytes == 0 || settings.max_video_bytes == 0 {
            bail!("max body bytes must be at least 1");
        }
        if !settings.images && !settings.video {
            bail!("--services needs `images`, `video` or both");
        }
        let video = settings.video.then(|| VideoConfig::from_settings(settings));
        if video.as_ref().is_some_and(|v| v.workers == 0) {
            bail!("video workers must be at least 1");
        }
        if video.as_ref().is_some_and(|v| v.uploads == 0) {
            bail!("video uploads must be at least 1");
        }
        if let Some(dir) = video.as_ref().and_then(|v| v.temp_dir.as_ref())
            && !dir.is_dir()
        {
            bail!("temporary folder {} does not exist", dir.display());
        }
        Ok(Config {
            cors_origins,
            api_keys,
            max_body_bytes: settings.max_body_bytes,
            max_pixels: settings.max_pixels,
            max_output_pixels: settings.max_output_pixels,
            workers,
            queue: settings.queue,
            memory_budget: settings.memory_budget.unwrap_or_else(compressor_budget::default_budget),
            request_timeout: settings.request_timeout,
            rate_limit: settings.rate_limit,
            forwarded_for_depth: settings.forwarded_for_depth,
            shutdown_delay: settings.shutdown_delay,
            shutdown_grace: settings.shutdown_grace,
            ui: settings.ui,
            images: settings.images,
            video,
        })
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
