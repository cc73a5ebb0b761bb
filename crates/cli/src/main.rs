//! The `compressor` command: argument parsing only; the work is in the engine and server crates.

mod compress;
mod engine_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "compressor", version, about = "Image compression: PNG, JPEG; CLI, HTTP service and batch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compress image files
    Compress(compress::CompressArgs),
    /// Run the HTTP service
    Serve(compressor_server::ServeArgs),
    /// Benchmark the engine against peer tools on a corpus
    Bench(compressor_bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compress(args) => compress::run(args),
        Command::Serve(args) => compressor_server::serve(args).map(|()| 0),
        Command::Bench(args) => compressor_bench::run(args).map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("compressor: {e:#}");
            ExitCode::from(2)
        }
    }
}
