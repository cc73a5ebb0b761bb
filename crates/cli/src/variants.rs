//! `compressor compress --widths`: responsive variants of each input, and their `srcset`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use compressor_engine::{Compressed, Format, Options, OutputFormat, srcset, variant_file_name, variants};
use serde::Serialize;

use crate::compress::{CompressArgs, ErrorReport, describe, error_report, human_line, read_input, write_atomically};

/// One line of `--json` output: every variant of one input.
#[derive(Debug, Serialize)]
struct InputReport {
    input: String,
    ms: u128,
    srcset: Option<String>,
    variants: Vec<VariantReport>,
    /// Widths beyond the image's own (without --enlarge).
    skipped: Vec<u32>,
    error: Option<ErrorReport>,
}

#[derive(Debug, Serialize)]
struct VariantReport {
    output: String,
    #[serde(flatten)]
    result: Compressed,
}

pub fn run(args: &CompressArgs) -> anyhow::Result<i32> {
    let (options, enlarge) = args.engine.variant_options()?;
    let options = Options { format: args.engine.image_format().unwrap_or(OutputFormat::To(Format::WebP)), ..options };
    let mut failed = 0;
    for input in &args.inputs {
        let started = Instant::now();
        let name = input.display().to_string();
        let outcome = variants_of(input, args, &options, enlarge);
        let ms = started.elapsed().as_millis();
        let report = match outcome {
            Ok((written, skipped)) => {
                for v in &written {
                    eprintln!("{}", human_line(&name, &v.result, Some(Path::new(&v.output)), None));
                }
                eprintln!("{name}: {} variants from one decode in {ms} ms", written.len());
                if !skipped.is_empty() {
                    eprintln!("{name}: skipped widths {skipped:?}: wider than the image (pass --enlarge to upscale)");
                }
                let set = srcset(written.iter().map(|v| (file_name(&v.output), v.result.width)));
                if !args.json {
                    println!("srcset=\"{set}\"");
                }
                InputReport { input: name, ms, srcset: Some(set), variants: written, skipped, error: None }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{name}: error: {}", describe(&e));
                InputReport { input: name, ms, srcset: None, variants: vec![], skipped: vec![], error: Some(error_report(&e)) }
            }
        };
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

fn file_name(path: &str) -> &str {
    Path::new(path).file_name().and_then(|n| n.to_str()).unwrap_or(path)
}

/// Writes every variant of one input beside it (or into --out-dir); returns them and the widths skipped.
fn variants_of(input: &Path, args: &CompressArgs, options: &Options, enlarge: bool) -> anyhow::Result<(Vec<VariantReport>, Vec<u32>)> {
    let data = read_input(input)?;
    let from_stdin = input.as_os_str() == "-";
    let stem = if from_stdin { "stdin".into() } else { input.file_stem().unwrap_or_default().to_string_lossy().into_owned() };
    let dir: PathBuf = match &args.out_dir {
        Some(dir) => dir.clone(),
        None if from_stdin => PathBuf::from("."),
        None => input.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for (width, result) in variants(&data, &args.widths, enlarge, options)? {
        let Some(result) = result else {
            skipped.push(width);
            continue;
        };
        let path = dir.join(variant_file_name(&stem, &result));
        write_atomically(&path, &result.data).with_context(|| format!("writing the {width}w variant"))?;
        written.push(VariantReport { output: path.display().to_string(), result });
    }
    Ok((written, skipped))
}
