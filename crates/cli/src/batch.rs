//! `compressor batch`: its flags (turned into the batch library's [`Settings`], whose `Default`
//! holds the defaults shown here); runs the library on a tokio runtime and reports.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Args, ValueEnum};
use compressor_batch::{Overwrite, Settings, VideoSettings};

use crate::duration::Span;
use crate::engine_args::EngineArgs;

static DEFAULTS: LazyLock<Settings> = LazyLock::new(Settings::default);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverwriteArg {
    /// Skip keys recorded as done, and keys whose output already exists
    Never,
    /// Skip keys recorded as done from an unchanged source; replace other outputs
    Changed,
    /// Compress and write everything again
    Always,
}

impl From<Overwrite> for OverwriteArg {
    fn from(overwrite: Overwrite) -> Self {
        match overwrite {
            Overwrite::Never => OverwriteArg::Never,
            Overwrite::Changed => OverwriteArg::Changed,
            Overwrite::Always => OverwriteArg::Always,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Source: a folder, s3://bucket/prefix or gs://bucket/prefix
    pub src: String,
    /// Destination: a folder, s3://bucket/prefix or gs://bucket/prefix
    pub dst: String,
    /// Keys to include (glob on the path relative to SRC; repeatable). Default: image and video
    /// extensions
    #[arg(long)]
    pub include: Vec<String>,
    /// Keys to exclude (glob; repeatable)
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Images compressed at once; default: CPUs
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Memory for images being compressed, shared by the jobs (`600M`, `2G` or bytes): an image
    /// waits until its estimated peak fits; one that never could fails with over_memory_budget.
    /// Default: 3/4 of the memory limit (the cgroup's, else physical memory) less 256 MiB
    #[arg(long, env = "COMPRESSOR_MEMORY_BUDGET", value_parser = compressor_budget::parse_size)]
    pub memory_budget: Option<u64>,
    /// Videos transcoded at once (ffmpeg runs several threads; each transcode also takes one of
    /// the --jobs slots). At most --jobs videos are staged (downloaded or waiting) at once
    #[arg(long, default_value_t = DEFAULTS.video_jobs, value_parser = clap::value_parser!(u64).range(1..))]
    pub video_jobs: u64,
    /// Folder for the videos' temporary files: objects downloaded for ffmpeg and its outputs
    /// (default: the system's temporary folder). Emptied on every exit but a kill -9, whose
    /// leftovers the next run removes
    #[arg(long)]
    pub temp_dir: Option<PathBuf>,
    /// Video outputs larger than this are uploaded in parts streamed from their file; smaller
    /// ones in one PUT
    #[arg(long, hide = true, default_value_t = DEFAULTS.multipart_bytes)]
    pub multipart_bytes: u64,
    /// Process only keys whose stable hash mod N == I. Defaults from JOB_COMPLETION_INDEX/COMPLETIONS
    /// (Kubernetes Indexed Job) or BATCH_TASK_INDEX/BATCH_TASK_COUNT (GCP Batch)
    #[arg(long, value_parser = compressor_batch::parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Where progress is recorded: a local path or s3:// / gs:// folder.
    /// Default: DST/.compressor/manifest-<I>-of-<N>.jsonl
    #[arg(long)]
    pub manifest: Option<String>,
    /// List what would be done, with total bytes, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = DEFAULTS.overwrite.into())]
    pub overwrite: OverwriteArg,
    /// Final report as JSON on standard output
    #[arg(long)]
    pub json: bool,
    /// Retries of each S3/GCS request that failed with a 5xx (such as 503 SlowDown), a 429, a
    /// reset connection or a timeout, with exponential backoff (100 ms doubling up to 15 s,
    /// jittered; none begun after 3 minutes). A key whose request still fails is recorded as
    /// failed (exit status 1) and the next run retries it
    #[arg(long, default_value_t = DEFAULTS.retries)]
    pub retries: usize,
    /// Longest one S3/GCS request may take, from connecting to the end of its body, before it is
    /// cut and retried, so a stalled transfer cannot hold the run (raise it for large videos on
    /// slow links)
    #[arg(long, default_value_t = Span(DEFAULTS.request_timeout), value_parser = Span::positive)]
    pub request_timeout: Span,
}

impl From<BatchArgs> for Settings {
    fn from(args: BatchArgs) -> Self {
        Settings {
            src: args.src,
            dst: args.dst,
            include: args.include,
            exclude: args.exclude,
            jobs: args.jobs,
            memory_budget: args.memory_budget,
            video_jobs: args.video_jobs,
            temp_dir: args.temp_dir,
            multipart_bytes: args.multipart_bytes,
            shard: args.shard,
            manifest: args.manifest,
            dry_run: args.dry_run,
            overwrite: match args.overwrite {
                OverwriteArg::Never => Overwrite::Never,
                OverwriteArg::Changed => Overwrite::Changed,
                OverwriteArg::Always => Overwrite::Always,
            },
            json: args.json,
            retries: args.retries,
            request_timeout: args.request_timeout.0,
        }
    }
}

/// Exit status: 0 nothing failed, 1 some keys failed, 130 interrupted (Ctrl-C).
pub fn run(args: BatchArgs, engine: &EngineArgs) -> anyhow::Result<i32> {
    let json = args.json;
    // Videos as `compress` does them; `--format mp4|webm` sends GIFs to video too.
    let video = VideoSettings { options: crate::video::choices(engine).options()?, gifs: engine.video_format().is_some() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(compressor_batch::run(args.into(), engine.options()?, video))?;
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
