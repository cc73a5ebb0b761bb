//! The `compressor` command: argument parsing only; the work is in the engine and server crates.

mod batch;
mod bench;
mod compress;
mod duration;
mod engine_args;
mod healthcheck;
mod inspect;
mod loadtest;
mod serve;
mod variants;
mod video;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "compressor",
    version,
    about = "Image compression for PNG, JPEG, GIF, WebP and AVIF (HEIC, TIFF and BMP read too): CLI, HTTP service, batch, benchmark and load testing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compress image files
    Compress(compress::CompressArgs),
    /// Read image headers: format, size, and the memory compressing them would hold (nothing is decoded)
    Inspect(inspect::InspectArgs),
    /// Run the HTTP service
    Serve(serve::ServeArgs),
    /// Compress every image and video under a folder or s3:// / gs:// prefix into another (parallel, resumable, sharded)
    Batch {
        #[command(flatten)]
        batch: batch::BatchArgs,
        #[command(flatten)]
        engine: engine_args::EngineArgs,
    },
    /// Send real uploads to a running service and report latency percentiles and status codes
    Loadtest(loadtest::LoadArgs),
    /// Benchmark the engine against peer tools on a corpus
    Bench(bench::BenchArgs),
    /// Ask a running service whether it is ready (GET /readyz): exit 0 if so, 1 if not (for container health checks)
    Healthcheck(healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compress(args) => compress::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Serve(args) => compressor_server::serve(args.into()).map(|()| 0),
        Command::Batch { batch, engine } => batch::run(batch, &engine),
        Command::Loadtest(args) => loadtest::run(args),
        Command::Bench(args) => compressor_bench::run(args.into()).map(|()| 0),
        Command::Healthcheck(args) => healthcheck::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("compressor: {e:#}");
            ExitCode::from(2)
        }
    }
}
