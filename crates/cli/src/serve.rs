//! `compressor serve`: its flags (each with its `COMPRESSOR_*` variable), turned into the server's
//! [`ServeSettings`], whose `Default` holds the defaults shown here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;

use clap::ValueEnum;
use compressor_server::{LogFormat, RateLimit, ServeSettings};

use crate::duration::{Span, parse_rate};

static DEFAULTS: LazyLock<ServeSettings> = LazyLock::new(ServeSettings::default);

/// The default services as `--services` spells them (`images,video`).
static SERVICES: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<String> = Service::of(&DEFAULTS).iter().filter_map(|s| Some(s.to_possible_value()?.get_name().to_owned())).collect();
    names.join(",")
});

/// `compressor serve` flags. Every flag can also be set through the environment variable named
/// beside it; a flag given on the command line wins.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, env = "COMPRESSOR_LISTEN", default_value_t = DEFAULTS.listen)]
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
    #[arg(long, env = "COMPRESSOR_MAX_BODY_BYTES", default_value_t = DEFAULTS.max_body_bytes)]
    pub max_body_bytes: usize,
    /// Largest image in pixels, checked from the header before decoding
    #[arg(long, env = "COMPRESSOR_MAX_PIXELS", default_value_t = DEFAULTS.max_pixels)]
    pub max_pixels: u64,
    /// Largest output of a resize in pixels (an enlargement over it is refused before any work)
    #[arg(long, env = "COMPRESSOR_MAX_OUTPUT_PIXELS", default_value_t = DEFAULTS.max_output_pixels)]
    pub max_output_pixels: u64,
    /// Images compressed at once (default: number of CPUs)
    #[arg(long, env = "COMPRESSOR_WORKERS")]
    pub workers: Option<usize>,
    /// Memory for images being compressed, shared by all workers (`600M`, `2G` or bytes): a request
    /// waits until its estimated peak fits (503 after 5 s), and one that could never fit gets 413.
    /// Default: 3/4 of the memory limit (the cgroup's, else physical memory) less 256 MiB
    #[arg(long, env = "COMPRESSOR_MEMORY_BUDGET", value_parser = compressor_budget::parse_size)]
    pub memory_budget: Option<u64>,
    /// Compress requests allowed to wait for a worker; beyond WORKERS + QUEUE requests answer 503 at once
    #[arg(long, env = "COMPRESSOR_QUEUE", default_value_t = DEFAULTS.queue)]
    pub queue: usize,
    /// Longest time for a whole request, upload and queueing included (`90s`, `500ms`, `2m`); 504 after it
    #[arg(long, env = "COMPRESSOR_REQUEST_TIMEOUT", default_value_t = Span(DEFAULTS.request_timeout), value_parser = Span::positive)]
    pub request_timeout: Span,
    /// Token bucket per API key (or per client IP without keys), like `10/s` or `600/min`. Unset: no limit
    #[arg(long, env = "COMPRESSOR_RATE_LIMIT", value_parser = parse_rate)]
    pub rate_limit: Option<RateLimit>,
    /// Behind reverse proxies: the client address for per-IP rate limits is the N-th entry from the
    /// right of `X-Forwarded-For` (1 behind nginx or a Kubernetes ingress, 2 behind Google's HTTPS
    /// load balancer, which appends the client and its own address). 0: the connection's address
    #[arg(long, env = "COMPRESSOR_FORWARDED_FOR_DEPTH", default_value_t = DEFAULTS.forwarded_for_depth)]
    pub forwarded_for_depth: usize,
    /// After SIGTERM or Ctrl-C, keep serving this long with /readyz answering 503, so that a load
    /// balancer's health checks take the instance out before it stops accepting connections
    #[arg(long, env = "COMPRESSOR_SHUTDOWN_DELAY", default_value_t = Span(DEFAULTS.shutdown_delay), value_parser = Span::or_zero)]
    pub shutdown_delay: Span,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C (after the delay)
    #[arg(long, env = "COMPRESSOR_SHUTDOWN_GRACE", default_value_t = Span(DEFAULTS.shutdown_grace), value_parser = Span::positive)]
    pub shutdown_grace: Span,
    /// Serve no web page at `/` (for API-only deployments; COMPRESSOR_UI=false does the same)
    #[arg(long)]
    pub no_ui: bool,
    /// Whether to serve the web page at `/` (COMPRESSOR_UI=false: none)
    #[arg(long, env = "COMPRESSOR_UI", default_value_t = DEFAULTS.ui, action = clap::ArgAction::Set, hide = true)]
    pub ui: bool,
    /// Which services this instance runs: `images`, `video`, or both (the default). Separate
    /// instance groups can then be scaled for each, behind one load balancer
    #[arg(long, env = "COMPRESSOR_SERVICES", value_delimiter = ',', value_enum, default_value = SERVICES.as_str())]
    pub services: Vec<Service>,
    /// Largest video upload in bytes (default 500 MB); streamed to a temporary file, never held in memory
    #[arg(long, env = "COMPRESSOR_MAX_VIDEO_BYTES", default_value_t = DEFAULTS.max_video_bytes)]
    pub max_video_bytes: u64,
    /// Videos transcoded at once (each ffmpeg uses every CPU)
    #[arg(long, env = "COMPRESSOR_VIDEO_WORKERS", default_value_t = DEFAULTS.video_workers)]
    pub video_workers: usize,
    /// Video requests allowed to wait for a video worker; beyond that they answer 503 at once
    #[arg(long, env = "COMPRESSOR_VIDEO_QUEUE", default_value_t = DEFAULTS.video_queue)]
    pub video_queue: usize,
    /// Video uploads read at once (to temporary files, before they ask for a place in the queue,
    /// so a slow upload keeps no other video out); beyond that they answer 503 at once
    #[arg(long, env = "COMPRESSOR_VIDEO_UPLOADS", default_value_t = DEFAULTS.video_uploads)]
    pub video_uploads: usize,
    /// Longest time for a whole video request, upload and transcode included; 504 after it
    #[arg(long, env = "COMPRESSOR_VIDEO_TIMEOUT", default_value_t = Span(DEFAULTS.video_timeout), value_parser = Span::positive)]
    pub video_timeout: Span,
    /// Folder for uploaded videos and transcodes in progress (default: the system's temporary folder)
    #[arg(long, env = "COMPRESSOR_TEMP_DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Log format: `text` or `json` (the level comes from RUST_LOG, default `info`)
    #[arg(long, env = "COMPRESSOR_LOG_FORMAT", value_enum, default_value_t = DEFAULTS.log_format.into())]
    pub log_format: LogFormatArg,
}

/// One of the services `--services` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Images,
    Video,
}

impl Service {
    fn of(settings: &ServeSettings) -> Vec<Service> {
        [(settings.images, Service::Images), (settings.video, Service::Video)].into_iter().filter(|(on, _)| *on).map(|(_, s)| s).collect()
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormat> for LogFormatArg {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => LogFormatArg::Text,
            LogFormat::Json => LogFormatArg::Json,
        }
    }
}

impl From<ServeArgs> for ServeSettings {
    fn from(args: ServeArgs) -> Self {
        ServeSettings {
            listen: args.listen,
            // `--cors-origins ""` and `--api-keys ""` (the flags' defaults) name none.
            cors_origins: args.cors_origins.into_iter().filter(|o| !o.trim().is_empty()).collect(),
            api_keys: args.api_keys.into_iter().filter(|k| !k.trim().is_empty()).collect(),
            api_keys_file: args.api_keys_file,
            max_body_bytes: args.max_body_bytes,
            max_pixels: args.max_pixels,
            max_output_pixels: args.max_output_pixels,
            workers: args.workers,
            memory_budget: args.memory_budget,
            queue: args.queue,
            request_timeout: args.request_timeout.0,
            rate_limit: args.rate_limit,
            forwarded_for_depth: args.forwarded_for_depth,
            shutdown_delay: args.shutdown_delay.0,
            shutdown_grace: args.shutdown_grace.0,
            ui: args.ui && !args.no_ui,
            images: args.services.contains(&Service::Images),
            video: args.services.contains(&Service::Video),
            max_video_bytes: args.max_video_bytes,
            video_workers: args.video_workers,
            video_queue: args.video_queue,
            video_uploads: args.video_uploads,
            video_timeout: args.video_timeout.0,
            temp_dir: args.temp_dir,
            log_format: match args.log_format {
                LogFormatArg::Text => LogFormat::Text,
                LogFormatArg::Json => LogFormat::Json,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    /// No flags and no environment: exactly the library's defaults.
    #[test]
    fn no_flags_mean_the_library_defaults() {
        let settings = ServeSettings::from(Cli::try_parse_from(["serve"]).unwrap().serve);
        let defaults = ServeSettings::default();
        assert_eq!(format!("{settings:?}"), format!("{defaults:?}"));
    }
}
