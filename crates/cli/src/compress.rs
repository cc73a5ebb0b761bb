//! `compressor compress`: files (or stdin) in, files (or stdout) out, one report per file.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use compressor_engine::{Compressed, Format, compress};
use serde::Serialize;

use crate::engine_args::EngineArgs;

#[derive(Debug, Args)]
pub struct CompressArgs {
    /// Image files; `-` reads standard input
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input only); `-` writes standard output. Default: <name>.min.<ext> beside the input
    #[arg(short, long, conflicts_with_all = ["out_dir", "in_place"])]
    pub output: Option<PathBuf>,
    /// Write outputs into this directory, keeping file names
    #[arg(short = 'd', long, conflicts_with = "in_place")]
    pub out_dir: Option<PathBuf>,
    /// Replace each input (atomically) when the result is smaller
    #[arg(long)]
    pub in_place: bool,
    /// One JSON object per file on standard output
    #[arg(long)]
    pub json: bool,
    /// Responsive variants: one output per width (NAME-<W>w.<ext>, WebP unless --format says
    /// otherwise), decoded once; prints a ready srcset attribute. Widths beyond the image's own
    /// are skipped unless --enlarge
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with_all = ["output", "in_place", "width", "height", "fit"])]
    pub widths: Vec<u32>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// One line of `--json` output.
#[derive(Debug, Serialize)]
struct FileReport<'a> {
    input: String,
    output: Option<String>,
    ms: u128,
    #[serde(flatten)]
    result: Option<&'a Compressed>,
    ratio: Option<f64>,
    error: Option<ErrorReport>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorReport {
    code: &'static str,
    message: String,
}

impl ErrorReport {
    pub(crate) fn new(code: &'static str, message: String) -> Self {
        ErrorReport { code, message }
    }
}

/// Runs the command; returns the process exit code (0 all done, 1 some failed).
pub fn run(args: CompressArgs) -> anyhow::Result<i32> {
    if args.output.is_some() && args.inputs.len() > 1 {
        bail!("--output takes exactly one input; use --out-dir for several");
    }
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && args.json {
        bail!("--json and --output - both write standard output; choose one");
    }
    if args.inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("standard input (-) can be read only once");
    }
    if args.in_place
        && (args.engine.video_format().is_some() || args.engine.image_format().is_some_and(|f| f != compressor_engine::OutputFormat::Keep))
    {
        bail!("--in-place cannot change the format (the file name would lie); use --out-dir");
    }
    if args.in_place && args.inputs.iter().any(|p| p.as_os_str() == "-") {
        bail!("--in-place cannot replace standard input");
    }
    if !args.widths.is_empty() {
        return crate::variants::run(&args);
    }
    let options = args.engine.options()?;
    if args.in_place && options.mode == compressor_engine::Mode::Lossy {
        eprintln!("note: --in-place replaces each input by a lossy re-encoding where that is smaller (--mode lossless keeps every pixel)");
    }
    let mut failed = 0;
    for input in &args.inputs {
        if crate::video::handles(input, &args) {
            failed += usize::from(!crate::video::compress_one(input, &args)?);
            continue;
        }
        let started = Instant::now();
        let outcome = compress_one(input, &args, &options);
        let ms = started.elapsed().as_millis();
        let name = input.display().to_string();
        match &outcome {
            Ok((result, output)) => eprintln!("{}", human_line(&name, result, output.as_deref(), Some(ms))),
            Err(e) => {
                failed += 1;
                eprintln!("{name}: error: {}", describe(e));
            }
        }
        if args.json {
            let report = match &outcome {
                Ok((result, output)) => FileReport {
                    input: name,
                    output: output.as_ref().map(|p| p.display().to_string()),
                    ms,
                    result: Some(result),
                    ratio: Some(result.ratio()),
                    error: None,
                },
                Err(e) => FileReport { input: name, output: None, ms, result: None, ratio: None, error: Some(error_report(e)) },
            };
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

pub(crate) fn error_report(e: &anyhow::Error) -> ErrorReport {
    let code = e.downcast_ref::<compressor_engine::Error>().map_or("io", compressor_engine::Error::code);
    ErrorReport { code, message: describe(e) }
}

/// An error as a command-line user reads it: an option the engine asks for is spelled as a flag.
pub(crate) fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<compressor_engine::Error>() {
        Some(engine) => engine.message(compressor_engine::Surface::Cli),
        None => format!("{e:#}"),
    }
}

/// The bytes of an input file, or of standard input for `-`.
pub(crate) fn read_input(input: &Path) -> anyhow::Result<Vec<u8>> {
    if input.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf).context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(input).with_context(|| format!("reading {}", input.display()))
    }
}

/// Compresses one input and writes its output; returns the result and where it went.
fn compress_one(input: &Path, args: &CompressArgs, options: &compressor_engine::Options) -> anyhow::Result<(Compressed, Option<PathBuf>)> {
    let data = read_input(input)?;
    let mut result = compress(&data, options)?;
    let destination = output_path(input, args, &result, compressor_engine::detect(&data))?;
    if args.in_place
        && let Some(path) = destination.as_deref().filter(|p| *p != input)
    {
        // Never over another file: that would destroy what the person did not name.
        if path.exists() {
            bail!(
                "{} already exists; --in-place writes a {} output beside its input only under a free name (use --out-dir)",
                path.display(),
                result.format
            );
        }
        result.notes.push(format!("{} is kept: its {} output is written beside it", input.display(), result.format));
    }
    match &destination {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&result.data)?;
            out.flush()?;
        }
        // In place and unchanged: leave the original file (and its timestamps) alone.
        Some(path) if args.in_place && !result.changed => return Ok((result, Some(path.clone()))),
        Some(path) => write_atomically(path, &result.data)?,
    }
    Ok((result, destination))
}

/// Where the output goes; `None` means standard output. Every name ends in the extension of the
/// output's format (the engine's `Format::output_name`), so `--in-place` replaces an input only
/// with the same format: a TIFF's PNG output goes beside it (`scan.tif` stays, `scan.png` is new).
fn output_path(input: &Path, args: &CompressArgs, result: &Compressed, input_format: Option<Format>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(output) = &args.output {
        return Ok((output.as_os_str() != "-").then(|| output.clone()));
    }
    let file_name = input.file_name().unwrap_or_default().to_string_lossy().into_owned();
    if args.in_place {
        if input_format == Some(result.format) {
            return Ok(Some(input.to_path_buf()));
        }
        return Ok(Some(input.with_file_name(result.format.output_name(&file_name))));
    }
    let from_stdin = input.as_os_str() == "-";
    if from_stdin && args.out_dir.is_none() {
        return Ok(None);
    }
    let stem = if from_stdin { "stdin".into() } else { input.file_stem().unwrap_or_default().to_string_lossy().into_owned() };
    Ok(Some(match &args.out_dir {
        Some(dir) => {
            let name = if from_stdin { "stdin" } else { &file_name };
            dir.join(result.format.output_name(name))
        }
        None => input.with_file_name(format!("{stem}.min.{}", result.format.extension())),
    }))
}

/// Writes to a temporary file beside the target and renames it over the target, so a crash or a
/// full disk never leaves a truncated file under the final name.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut tmp = staged_file(path)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A temporary file beside `path`, with the mode `path` will have, to be persisted over it.
pub(crate) fn staged_file(path: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // A replaced file keeps its mode; a new one gets what the umask gives (tempfile's own
    // default, 0600, would hide outputs from the web server that serves them).
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o666);
    tempfile::Builder::new()
        .prefix(".compressor-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// One result for people; `ms` is left out where one run made several results.
pub(crate) fn human_line(name: &str, r: &Compressed, output: Option<&Path>, ms: Option<u128>) -> String {
    let saved = (1.0 - r.ratio()) * 100.0;
    let mut line = format!("{name}: {} -> {} ({saved:.1}% saved) {}", human_bytes(r.input_size), human_bytes(r.output_size), r.method);
    if let Some(score) = r.quality_score {
        line += &format!(", SSIMULACRA2 {score:.1}");
    }
    if let Some(ms) = ms {
        line += &format!(", {ms} ms");
    }
    if let Some(output) = output {
        line += &format!(" -> {}", output.display());
    }
    for c in &r.candidates {
        let score = c.quality_score.map_or("n/a".into(), |s| format!("{s:.1}"));
        line += &format!("\n  candidate {}: {} (score {score}, {})", c.format, human_bytes(c.size), c.method);
    }
    for note in &r.notes {
        line += &format!("\n  note: {note}");
    }
    line
}

pub fn human_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.2} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / f64::from(1 << 10)),
        n => format!("{n} B"),
    }
}
