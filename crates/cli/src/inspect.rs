//! `compressor inspect`: what the header says and what compressing would cost in memory, without
//! decoding: the format, size, and the estimate a memory budget admits the image by.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::engine_args::EngineArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image files
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// One JSON object per file on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(serde::Serialize)]
struct Inspection {
    file: String,
    format: String,
    width: u32,
    height: u32,
    memory_estimate_bytes: u64,
}

/// Exit status 0 when every file was read, 1 when one could not be.
pub fn run(args: InspectArgs) -> anyhow::Result<i32> {
    let options = args.engine.options()?;
    let mut status = 0;
    for path in &args.inputs {
        let inspected = std::fs::read(path).with_context(|| format!("reading {}", path.display())).and_then(|data| {
            let info = compressor_engine::probe(&data)?;
            let memory_estimate_bytes = compressor_engine::estimate_peak_bytes(&data, &options)?;
            let format = info.format.to_string();
            Ok(Inspection { file: path.display().to_string(), format, width: info.width, height: info.height, memory_estimate_bytes })
        });
        match inspected {
            Ok(i) if args.json => println!("{}", serde_json::to_string(&i)?),
            Ok(i) => println!(
                "{}: {} {}x{}, compressing holds at most {:.1} MiB",
                i.file,
                i.format,
                i.width,
                i.height,
                i.memory_estimate_bytes as f64 / 1048576.0
            ),
            Err(e) => {
                eprintln!("{}: {}", path.display(), crate::compress::describe(&e));
                status = 1;
            }
        }
    }
    Ok(status)
}
