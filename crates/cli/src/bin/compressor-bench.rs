//! `compressor-bench`: the benchmark on its own (`compressor bench` runs the same code).

use clap::Parser;

#[path = "../bench.rs"]
mod bench;

#[derive(Debug, Parser)]
#[command(name = "compressor-bench", version, about = "Benchmark the compressor engine against peer tools")]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> std::process::ExitCode {
    match compressor_bench::run(Cli::parse().args.into()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compressor-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
