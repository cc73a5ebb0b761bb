//! `compressor batch`: runs the batch library on a tokio runtime and reports.

use compressor_batch::{BatchArgs, VideoSettings};

use crate::engine_args::EngineArgs;

/// Exit status: 0 nothing failed, 1 some keys failed, 130 interrupted (Ctrl-C).
pub fn run(args: BatchArgs, engine: &EngineArgs) -> anyhow::Result<i32> {
    let json = args.json;
    // Videos as `compress` does them; `--format mp4|webm` sends GIFs to video too.
    let video = VideoSettings { options: crate::video::choices(engine).options()?, gifs: engine.video_format().is_some() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(compressor_batch::run(args, engine.options()?, video))?;
    eprintln!("{}", report.summary());
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if report.interrupted {
        130
    } else if report.failed > 0 {
        1
    } else {
        0
    })
}
