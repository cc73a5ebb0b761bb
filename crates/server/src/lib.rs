//! The HTTP service around the engine (`compressor serve`).
//!
//! [`serve`] is the blocking entry point of the command line. Tests and embedders use [`App`]:
//! `App::new(config)` builds the router and its state, [`App::run`] serves it on a listener until a
//! shutdown future completes, then drains.
//!
//! Invariant: handlers never run codecs on the async threads; the engine runs in the bounded
//! [`pool`] on blocking threads.

mod config;
mod error;
mod guard;
mod linger;
mod metrics;
mod openapi;
mod pool;
mod routes;
mod slow;

use std::future::Future;
use std::io::IsTerminal;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use config::{Config, DEFAULT_LISTEN, LogFormat, RateLimit, ServeSettings, VideoConfig};
pub use error::{ApiError, ErrorBody};

/// What every handler and middleware shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    config: Config,
    pool: pool::Pool,
    /// The video service's own pool (one ffmpeg already uses every CPU), when it runs.
    video_pool: Option<pool::Pool>,
    metrics: metrics::Metrics,
    limiter: Option<guard::RateLimiter>,
    /// Set when shutdown starts: readiness answers 503 from then on.
    draining: AtomicBool,
}

impl Shared {
    /// True when the instance's main service would refuse new work: the image pool, or the video
    /// pool on a video-only instance. Long transcodes filling the video pool do not take an
    /// instance that also serves images out of its load balancer.
    fn saturated(&self) -> bool {
        match &self.video_pool {
            Some(video) if !self.config.images => video.saturated(),
            _ => self.pool.saturated(),
        }
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The image pool's memory budget (its size is a gauge; what is reserved is read when scraped),
/// with room beyond it for small images, so they are answered while large ones hold all of it.
fn memory(config: &Config, metrics: &metrics::Metrics) -> pool::Memory {
    metrics.gauge(metrics::MEMORY_BUDGET).set(config.memory_budget as f64);
    let budget = compressor_budget::MemoryBudget::with_room_for_small_work(config.memory_budget);
    pool::Memory { budget, wait: pool::MEMORY_WAIT }
}

/// The service, ready to be served.
pub struct App {
    router: Router,
    state: AppState,
}

impl App {
    pub fn new(config: Config) -> App {
        App::build(config, None)
    }

    /// The service with extra routes behind the same layers (tests use it to check what the
    /// layers do with, for example, a handler that panics).
    #[doc(hidden)]
    pub fn with_extra_routes(config: Config, extra: Router) -> App {
        App::build(config, Some(extra.with_state(())))
    }

    fn build(config: Config, extra: Option<Router<AppState>>) -> App {
        let metrics = metrics::Metrics::new();
        let state = AppState(Arc::new(Shared {
            pool: pool::Pool::new(config.workers, config.queue, metrics.queue_depth().clone(), Some(memory(&config, &metrics))),
            // Video memory is ffmpeg's, bounded per child by its RLIMIT_AS, not by this budget;
            // video uploads go to disk, bounded by their count.
            video_pool: config
                .video
                .as_ref()
                .map(|v| pool::Pool::new(v.workers, v.queue, metrics.video_queue_depth().clone(), None).limiting_uploads(v.uploads)),
            limiter: config.rate_limit.map(guard::RateLimiter::new),
            metrics,
            draining: AtomicBool::new(false),
            config,
        }));
        let router = routes::router(state.clone(), extra);
        App { router, state }
    }

    /// The router with all layers, for driving the service without a socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` until `shutdown` completes; then readiness turns 503, requests are
    /// still served for the configured delay (while load balancers notice), then no new
    /// connections are accepted and in-flight requests get up to the grace period to finish.
    /// Returns `Ok(())` after a graceful (or grace-expired) stop.
    pub async fn run(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let state = self.state.clone();
        let (delay, grace) = (state.config.shutdown_delay, state.config.shutdown_grace);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            state.draining.store(true, Ordering::SeqCst);
            if !delay.is_zero() {
                tracing::info!("shutting down: not ready, still serving for {delay:?}");
                tokio::time::sleep(delay).await;
            }
            tracing::info!("shutting down: no new connections; draining in-flight requests (grace {grace:?})");
            let _ = started_tx.send(());
        };
        let server = serve_connections(listener, self.router, self.state.config.largest_body(), signal);
        let grace_expired = async move {
            if started_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result,
            () = grace_expired => {
                tracing::warn!("shutdown grace of {grace:?} expired; unfinished requests are abandoned");
                Ok(())
            }
        }
    }
}

/// Accepts connections until `signal`, then lets every open connection finish its request and
/// waits for them all. Our own loop rather than `axum::serve` for two reasons: a header read
/// timeout ([`slow::HEADER_READ_TIMEOUT`]), so clients that trickle their headers are cut off, and
/// request bodies that are drained when refused ([`linger`]; at most `linger_bytes`), so the
/// refusal reaches the client.
async fn serve_connections(
    listener: TcpListener,
    router: Router,
    linger_bytes: u64,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    // Each connection holds a `done` receiver; the sender sees them all gone when they finish.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    tokio::pin!(signal);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().layer(axum::Extension(ConnectInfo(remote))).map_request(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                linger::Lingering::new(request, linger_bytes).map(axum::body::Body::new)
            },
        );
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(slow::HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

/// `compressor serve`: logs, binds, serves until SIGTERM or Ctrl-C, drains, returns.
pub fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    init_logging(settings.log_format);
    let config = Config::from_settings(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let listener = TcpListener::bind(settings.listen).await.with_context(|| format!("listening on {}", settings.listen))?;
        tracing::info!(
            address = %listener.local_addr()?,
            workers = config.workers,
            queue = config.queue,
            max_body_bytes = config.max_body_bytes,
            api_keys = config.api_keys.len(),
            rate_limit = ?config.rate_limit,
            images = config.images,
            video_workers = config.video.as_ref().map(|v| v.workers),
            max_video_bytes = config.video.as_ref().map(|v| v.max_body_bytes),
            "compressor listening"
        );
        App::new(config).run(listener, shutdown_signal()).await.context("serving")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    // Work abandoned after the grace period may still hold blocking threads; do not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A log sink that goes away (a closed pipe) must not take requests with it: by default the
    // subscriber reports its write errors with eprintln!, which panics on that same broken stderr
    // inside the request's task, and every connection was closed without an answer.
    // Colour codes only for a person at a terminal: a log file, a pipe or journald would keep the
    // escape sequences as text. NO_COLOR (no-color.org) turns them off on a terminal too.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour).log_internal_errors(false);
    // `try_init` fails only if a subscriber is already set (embedding); that one is kept.
    let _ = if format == LogFormat::Json { builder.json().try_init() } else { builder.try_init() };
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
