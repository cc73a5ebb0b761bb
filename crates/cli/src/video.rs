//! `compressor compress` on videos, and on animated GIFs with `--format mp4|webm`: through
//! `compressor-video` (ffmpeg), written like image outputs (temporary file renamed into place).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use compressor_video::{Choices, Report, VideoFormat};
use serde::Serialize;

use crate::compress::{CompressArgs, ErrorReport, human_bytes};
use crate::engine_args::EngineArgs;

/// One line of `--json` output for a video.
#[derive(Debug, Serialize)]
struct VideoFileReport<'a> {
    input: String,
    output: Option<String>,
    #[serde(flatten)]
    result: Option<&'a Report>,
    error: Option<ErrorReport>,
}

/// True when this input goes to the video path: a video container, or `--format mp4|webm`. An
/// unreadable file is left to the image path, which reports it like any other.
pub fn handles(input: &Path, args: &CompressArgs) -> bool {
    if args.engine.video_format().is_some() {
        return true;
    }
    if input.as_os_str() == "-" {
        return false; // standard input is read whole by the image path
    }
    let mut head = [0u8; 16];
    std::fs::File::open(input).and_then(|mut f| f.read(&mut head)).is_ok_and(|n| compressor_video::looks_like_video(&head[..n]))
}

/// Compresses one video; prints its report; returns whether it succeeded.
pub fn compress_one(input: &Path, args: &CompressArgs) -> anyhow::Result<bool> {
    let name = input.display().to_string();
    let outcome = run(input, args);
    match &outcome {
        Ok((report, output)) => {
            let saved = (1.0 - report.output_size as f64 / report.input_size.max(1) as f64) * 100.0;
            let mut line = format!(
                "{name}: {} -> {} ({saved:.1}% saved) {}, {}x{}, {:.1} s of video, {} ms",
                human_bytes(report.input_size as usize),
                human_bytes(report.output_size as usize),
                report.method,
                report.width,
                report.height,
                report.duration_seconds,
                report.ms
            );
            if let Some(score) = report.score {
                line += &format!(", SSIMULACRA2 {score:.1}");
            }
            if let Some(path) = output {
                line += &format!(" -> {}", path.display());
            }
            for note in &report.notes {
                line += &format!("\n  note: {note}");
            }
            eprintln!("{line}");
        }
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            // The child that failed, and the end of what it printed.
            if let Some(log) = e.downcast_ref::<compressor_video::Error>().and_then(compressor_video::Error::log) {
                eprintln!("  ran: {log}");
            }
        }
    }
    if args.json {
        let line = match &outcome {
            Ok((report, output)) => {
                VideoFileReport { input: name, output: output.as_ref().map(|p| p.display().to_string()), result: Some(report), error: None }
            }
            Err(e) => VideoFileReport { input: name, output: None, result: None, error: Some(error_report(e)) },
        };
        println!("{}", serde_json::to_string(&line)?);
    }
    Ok(outcome.is_ok())
}

/// The video choices of the command line's flags, for `compress` and `batch` alike: `--format
/// mp4|webm` (else each video's own container), `-q`'s upper end as the quality, and
/// `--target-quality`.
pub fn choices(engine: &EngineArgs) -> Choices {
    Choices {
        format: engine.video_format(),
        quality: engine.quality().map(|q| q.max),
        target_quality: engine.target_quality(),
        audio: None,
    }
}

fn error_report(e: &anyhow::Error) -> ErrorReport {
    match e.downcast_ref::<compressor_video::Error>() {
        Some(video) => ErrorReport::new(video.code(), video.to_string()),
        None => crate::compress::error_report(e),
    }
}

fn run(input: &Path, args: &CompressArgs) -> anyhow::Result<(Report, Option<PathBuf>)> {
    if input.as_os_str() == "-" {
        bail!("videos are read from files, not standard input");
    }
    let options = choices(&args.engine).options()?;
    let compressed = compressor_video::compress(input, &options)?;
    let report = compressed.report;
    let destination = destination(input, args, report.format)?;
    match (compressed.output, &destination) {
        (None, _) if args.in_place => Ok((report, Some(input.to_path_buf()))),
        (None, Some(path)) => {
            let mut staged = crate::compress::staged_file(path)?;
            std::io::copy(&mut std::fs::File::open(input)?, &mut staged)?;
            staged.persist(path).with_context(|| format!("writing {}", path.display()))?;
            Ok((report, destination))
        }
        (None, None) => {
            std::io::copy(&mut std::fs::File::open(input)?, &mut std::io::stdout().lock())?;
            Ok((report, None))
        }
        (Some(file), Some(path)) => {
            // The output is in the temporary folder, maybe on another file system: copied into
            // a staged file beside the target, then renamed over it.
            let mut staged = crate::compress::staged_file(path)?;
            std::io::copy(&mut std::fs::File::open(file.path())?, &mut staged)?;
            staged.as_file().sync_all()?;
            staged.persist(path).with_context(|| format!("writing {}", path.display()))?;
            Ok((report, destination))
        }
        (Some(file), None) => {
            std::io::copy(&mut std::fs::File::open(file.path())?, &mut std::io::stdout().lock())?;
            Ok((report, None))
        }
    }
}

/// Where the output goes (`None`: standard output), named as image outputs are.
fn destination(input: &Path, args: &CompressArgs, format: VideoFormat) -> anyhow::Result<Option<PathBuf>> {
    let ext = format.extension();
    if let Some(output) = &args.output {
        return Ok((output.as_os_str() != "-").then(|| output.clone()));
    }
    if args.in_place {
        let same = input.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if !same {
            bail!("--in-place cannot change the container (the file name would lie); use --out-dir");
        }
        return Ok(Some(input.to_path_buf()));
    }
    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    Ok(Some(match &args.out_dir {
        Some(dir) => dir.join(format!("{stem}.{ext}")),
        None => input.with_file_name(format!("{stem}.min.{ext}")),
    }))
}
