//! `compressor batch`: runs the batch library on a tokio runtime and reports.

use compressor_batch::BatchArgs;
use compressor_engine::Options;

/// Exit status: 0 nothing failed, 1 some keys failed, 130 interrupted (Ctrl-C).
pub fn run(args: BatchArgs, options: Options) -> anyhow::Result<i32> {
    let json = args.json;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(compressor_batch::run(args, options))?;
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
