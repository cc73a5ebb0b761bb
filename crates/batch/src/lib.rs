//! `compressor batch`: compress every image under a folder or object-store prefix into another,
//! in parallel, resumably (a manifest of finished keys) and sharded across machines.
//!
//! Data flow: a streaming listing of SRC → include/exclude and shard filters → skip decision
//! from the manifest → up to 2×jobs reads/writes in flight, `jobs` compressions at once on
//! blocking threads → atomic writes under DST → one manifest record per key.

mod location;
mod manifest;
mod progress;
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use compressor_engine::Options;
use futures::{StreamExt, TryStreamExt};
use globset::{Glob, GlobSet, GlobSetBuilder};
use object_store::{ObjectMeta, PutPayload};
use tokio::sync::{Mutex, Semaphore};

pub use location::{Location, sanitise};
pub use manifest::{Record, Status};
pub use report::Report;

use manifest::{History, Manifest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Overwrite {
    /// Skip keys recorded as done, and keys whose output already exists
    Never,
    /// Skip keys recorded as done from an unchanged source; replace other outputs
    Changed,
    /// Compress and write everything again
    Always,
}

#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Source: a folder, s3://bucket/prefix or gs://bucket/prefix
    pub src: String,
    /// Destination: a folder, s3://bucket/prefix or gs://bucket/prefix
    pub dst: String,
    /// Keys to include (glob on the path relative to SRC; repeatable). Default: image extensions
    #[arg(long)]
    pub include: Vec<String>,
    /// Keys to exclude (glob; repeatable)
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Images compressed at once (decoded-image memory is bounded by this); default: CPUs
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Process only keys whose stable hash mod N == I. Defaults from JOB_COMPLETION_INDEX/COMPLETIONS
    /// (Kubernetes Indexed Job) or BATCH_TASK_INDEX/BATCH_TASK_COUNT (GCP Batch)
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Where progress is recorded: a local path or s3:// / gs:// folder.
    /// Default: DST/.compressor/manifest-<I>-of-<N>.jsonl
    #[arg(long)]
    pub manifest: Option<String>,
    /// List what would be done, with total bytes, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value = "never")]
    pub overwrite: Overwrite,
    /// Final report as JSON on standard output
    #[arg(long)]
    pub json: bool,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?} is not I/N"))?;
    let (i, n): (u64, u64) =
        (i.parse().map_err(|_| format!("{i:?} is not a number"))?, n.parse().map_err(|_| format!("{n:?} is not a number"))?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// The shard from the flag, else from the scheduler's environment, else the whole set.
fn shard(args: &BatchArgs) -> anyhow::Result<(u64, u64)> {
    if let Some(s) = args.shard {
        return Ok(s);
    }
    for (index, count) in [("JOB_COMPLETION_INDEX", "COMPLETIONS"), ("BATCH_TASK_INDEX", "BATCH_TASK_COUNT")] {
        if let (Ok(i), Ok(n)) = (std::env::var(index), std::env::var(count)) {
            return parse_shard(&format!("{i}/{n}")).map_err(|e| anyhow::anyhow!("{index}/{count}: {e}"));
        }
    }
    Ok((0, 1))
}

/// FNV-1a: a stable hash (the same on every machine and version) for sharding.
pub fn stable_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

const IMAGE_EXTENSIONS: &str = "*.{png,PNG,jpg,JPG,jpeg,JPEG,jpe,gif,GIF,webp,WEBP,avif,AVIF}";

fn globs(patterns: &[String], default: Option<&str>) -> anyhow::Result<Option<GlobSet>> {
    let patterns: Vec<&str> =
        if patterns.is_empty() { default.into_iter().collect() } else { patterns.iter().map(String::as_str).collect() };
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        // `*.png` should match in every folder, as users expect from file globs.
        let p = if p.contains('/') { p.to_owned() } else { format!("**/{p}") };
        set.add(Glob::new(&p).with_context(|| format!("bad glob {p:?}"))?);
    }
    Ok(Some(set.build()?))
}

/// Shared state of one run.
struct Run {
    src: Location,
    dst: Location,
    options: Options,
    args: BatchArgs,
    history: History,
    manifest: Mutex<Manifest>,
    cpu: Semaphore,
    report: std::sync::Mutex<Report>,
    progress: progress::Progress,
}

/// Runs a batch; the returned report says what happened (the caller picks the exit status).
pub async fn run(args: BatchArgs, options: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (index, count) = shard(&args)?;
    let src = Location::parse(&args.src, false)?;
    // A dry run creates nothing, not even the destination folder.
    let dst_missing = args.dry_run && !args.dst.contains("://") && !std::path::Path::new(&args.dst).exists();
    let dst = if dst_missing { src.clone() } else { Location::parse(&args.dst, !args.dry_run)? };
    let include = globs(&args.include, Some(IMAGE_EXTENSIONS))?;
    let exclude = globs(&args.exclude, None)?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let manifest_name = format!("manifest-{index}-of-{count}");
    let (manifest, history) = match (&args.manifest, &dst.local_root) {
        _ if dst_missing => (Manifest::Disabled, History::default()),
        (None, Some(root)) if args.dry_run => {
            (Manifest::Disabled, Manifest::read_only(&root.join(".compressor").join(format!("{manifest_name}.jsonl"))))
        }
        (Some(m), _) if m.contains("://") => {
            let folder = Location::parse(m, false)?;
            Manifest::open_remote(folder.store, folder.prefix).await?
        }
        (Some(m), _) => Manifest::open_local(std::path::Path::new(m)).await?,
        (None, Some(root)) => Manifest::open_local(&root.join(".compressor").join(format!("{manifest_name}.jsonl"))).await?,
        (None, None) => Manifest::open_remote(dst.store.clone(), dst.child(&format!(".compressor/{manifest_name}"))).await?,
    };
    let run = Arc::new(Run {
        src,
        dst,
        options,
        history,
        manifest: Mutex::new(manifest),
        cpu: Semaphore::new(jobs),
        report: std::sync::Mutex::new(Report::default()),
        progress: progress::Progress::new(args.json),
        args: args.clone(),
    });

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        })
    };

    let listing = run.src.store.list(Some(&run.src.prefix)).map_err(anyhow::Error::from);
    let work = listing
        .try_filter_map(|meta| {
            let run = run.clone();
            let keep = (|| {
                let relative = run.src.relative(&meta.location)?;
                // Our own bookkeeping (a manifest stored inside SRC) is never an input.
                if relative.starts_with(".compressor/") {
                    return None;
                }
                let relative = match sanitise(&relative) {
                    Some(r) => r,
                    None => {
                        run.report.lock().unwrap().fail(&relative, meta.size, "unsafe key (.., absolute or empty segment)".into());
                        return None;
                    }
                };
                let included =
                    include.as_ref().is_none_or(|g| g.is_match(&relative)) && !exclude.as_ref().is_some_and(|g| g.is_match(&relative));
                (included && stable_hash(&relative) % count == index).then_some((relative, meta))
            })();
            async move { Ok(keep) }
        })
        .take_while(|_| futures::future::ready(!stop.load(Ordering::SeqCst)));

    let result = work
        .try_for_each_concurrent(jobs * 2, |(relative, meta)| {
            let run = run.clone();
            async move {
                run.process(relative, meta).await;
                Ok(())
            }
        })
        .await;
    watcher.abort();
    run.manifest.lock().await.flush().await?;
    run.progress.finish();
    result.context("listing the source")?;
    let mut report = std::mem::take(&mut *run.report.lock().unwrap());
    report.finish(started.elapsed(), stop.load(Ordering::SeqCst), args.dry_run);
    Ok(report)
}

impl Run {
    fn source_version(meta: &ObjectMeta) -> String {
        meta.e_tag.clone().unwrap_or_else(|| meta.last_modified.to_rfc3339())
    }

    async fn process(&self, relative: String, meta: ObjectMeta) {
        self.report.lock().unwrap().seen += 1;
        let version = Self::source_version(&meta);
        if let Some(reason) = self.skip_reason(&relative, &meta, &version).await {
            self.report.lock().unwrap().skip(meta.size);
            self.progress.update(&self.report.lock().unwrap(), &format!("skip {relative} ({reason})"));
            return;
        }
        if self.args.dry_run {
            let mut report = self.report.lock().unwrap();
            report.planned(meta.size);
            if !self.args.json {
                eprintln!("would compress {relative} ({} bytes)", meta.size);
            }
            return;
        }
        let record = match self.compress_one(&relative, &meta).await {
            Ok((status, output_key, output_size)) => {
                let mut report = self.report.lock().unwrap();
                report.done(status == Status::Unchanged, meta.size, output_size);
                Record {
                    key: relative.clone(),
                    source_size: meta.size,
                    source_version: version,
                    status,
                    output_key: Some(output_key),
                    output_size: Some(output_size),
                    error: None,
                    at: Record::now(),
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                self.report.lock().unwrap().fail(&relative, meta.size, message.clone());
                Record {
                    key: relative.clone(),
                    source_size: meta.size,
                    source_version: version,
                    status: Status::Failed,
                    output_key: None,
                    output_size: None,
                    error: Some(message),
                    at: Record::now(),
                }
            }
        };
        if let Err(e) = self.manifest.lock().await.record(&record).await {
            self.report.lock().unwrap().fail(&relative, 0, format!("manifest: {e:#}"));
        }
        self.progress.update(&self.report.lock().unwrap(), &relative);
    }

    /// Why this key needs no work, if it needs none.
    async fn skip_reason(&self, relative: &str, meta: &ObjectMeta, version: &str) -> Option<&'static str> {
        if self.args.overwrite == Overwrite::Always {
            return None;
        }
        if let Some(last) = self.history.last.get(relative) {
            let same_source = last.source_size == meta.size && last.source_version == version;
            match last.status {
                Status::Done | Status::Unchanged | Status::Existing if same_source => return Some("recorded as done"),
                // Failed keys are retried once, then left alone until their source changes.
                Status::Failed if same_source && self.history.failures.get(relative).copied().unwrap_or(0) >= 2 => {
                    return Some("failed twice");
                }
                _ => {}
            }
        }
        if self.args.overwrite == Overwrite::Never && !self.args.dry_run {
            // An output without a record: written by a run killed before it could record it.
            let output = self.dst.child(relative);
            if self.dst.store.head(&output).await.is_ok() {
                let record = Record {
                    key: relative.to_owned(),
                    source_size: meta.size,
                    source_version: version.to_owned(),
                    status: Status::Existing,
                    output_key: Some(relative.to_owned()),
                    output_size: None,
                    error: None,
                    at: Record::now(),
                };
                let _ = self.manifest.lock().await.record(&record).await;
                return Some("output exists");
            }
        }
        None
    }

    /// Reads, compresses (on a blocking thread, at most `jobs` at once) and writes one key.
    async fn compress_one(&self, relative: &str, meta: &ObjectMeta) -> anyhow::Result<(Status, String, u64)> {
        if meta.size > self.options.limits.max_input_bytes {
            bail!("{} bytes exceeds max_input_bytes {}", meta.size, self.options.limits.max_input_bytes);
        }
        let input = self.src.store.get(&meta.location).await.context("reading")?.bytes().await.context("reading")?;
        let permit = self.cpu.acquire().await?;
        let options = self.options.clone();
        let result =
            tokio::task::spawn_blocking(move || compressor_engine::compress(&input, &options)).await.context("compression task")?;
        drop(permit);
        let result = result?;
        let output_relative = output_key(relative, result.format);
        // A single PUT: the object appears whole or not at all (local: temp file + rename).
        let output = self.dst.child(&output_relative);
        let size = result.data.len() as u64;
        self.dst.remove_staging_leftovers(&output_relative);
        self.dst.store.put(&output, PutPayload::from(result.data)).await.context("writing")?;
        Ok((if result.changed { Status::Done } else { Status::Unchanged }, output_relative, size))
    }
}

/// The output key: the input key, with the extension changed when the format changed.
pub fn output_key(relative: &str, format: compressor_engine::Format) -> String {
    let (stem, ext) = relative.rsplit_once('.').filter(|(stem, _)| !stem.ends_with('/') && !stem.is_empty()).unwrap_or((relative, ""));
    let same = match format {
        compressor_engine::Format::Jpeg => matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "jpe"),
        other => ext.eq_ignore_ascii_case(other.extension()),
    };
    if same { relative.to_owned() } else { format!("{stem}.{}", format.extension()) }
}
