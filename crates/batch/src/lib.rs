//! `compressor batch`: compress every image and video under a folder or object-store prefix into
//! another, in parallel, resumably (a manifest of finished keys) and sharded across machines.
//!
//! Data flow: a streaming listing of SRC → include/exclude and shard filters → skip decision
//! from the manifest → up to 2×jobs reads/writes in flight, `jobs` compressions at once on
//! blocking threads, each first waiting for its estimated peak memory in the shared budget →
//! atomic writes under DST → one manifest record per key.
//!
//! Videos (told by their first bytes; GIFs too with `--format mp4|webm`) leave that flow once
//! recognised: at most `jobs` are staged at once (downloaded to a file in a scratch folder when
//! SRC is an object store), at most `video_jobs` are transcoded at once by `compressor-video`
//! (each holding one of the `jobs` CPU permits too), and results are uploaded from their files.

mod location;
mod manifest;
mod progress;
mod report;

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use compressor_budget::{MemoryBudget, Refusal};
use compressor_engine::Options;
use compressor_video::{Cancel, VideoFormat};
use futures::{StreamExt, TryStreamExt};
use globset::{Glob, GlobSet, GlobSetBuilder};
use object_store::{ObjectMeta, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

pub use location::{Location, Requests, sanitise};
#[doc(hidden)]
pub use manifest::read_manifest;
pub use manifest::{Record, Status, VideoRecord};
pub use report::Report;

use manifest::{History, Manifest};

/// Which keys are compressed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Skip keys recorded as done, and keys whose output already exists.
    #[default]
    Never,
    /// Skip keys recorded as done from an unchanged source; replace other outputs.
    Changed,
    /// Compress and write everything again.
    Always,
}

/// What a run does (the command line's `compressor batch` flags fill it); [`Settings::default`]
/// holds the defaults those flags show.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Source: a folder, s3://bucket/prefix or gs://bucket/prefix.
    pub src: String,
    /// Destination: a folder, s3://bucket/prefix or gs://bucket/prefix.
    pub dst: String,
    /// Globs of keys to include, on the path relative to SRC (empty: image and video extensions).
    pub include: Vec<String>,
    /// Globs of keys to exclude.
    pub exclude: Vec<String>,
    /// Images compressed at once; `None`: the number of CPUs.
    pub jobs: Option<usize>,
    /// Bytes of the memory budget the jobs share; `None`: from the cgroup's limit or physical memory.
    pub memory_budget: Option<u64>,
    /// Videos transcoded at once (each also takes one of the `jobs` slots).
    pub video_jobs: u64,
    /// Folder for the videos' temporary files; `None`: the system's temporary folder.
    pub temp_dir: Option<PathBuf>,
    /// Video outputs larger than this are uploaded in parts streamed from their file.
    pub multipart_bytes: u64,
    /// Only keys whose stable hash mod N == I, as (I, N); `None`: from the scheduler's environment
    /// (JOB_COMPLETION_INDEX/COMPLETIONS or BATCH_TASK_INDEX/BATCH_TASK_COUNT), else all.
    pub shard: Option<(u64, u64)>,
    /// Where progress is recorded (a local path or s3:// / gs:// folder); `None`:
    /// DST/.compressor/manifest-<I>-of-<N>.jsonl.
    pub manifest: Option<String>,
    /// List what would be done, with total bytes, and change nothing.
    pub dry_run: bool,
    pub overwrite: Overwrite,
    /// The final report goes out as JSON (no per-key lines on standard error).
    pub json: bool,
    /// Retries of each object-store request that failed with a 5xx, a 429, a reset connection or
    /// a timeout (with exponential backoff); then the key fails and is recorded as failed.
    pub retries: usize,
    /// Longest an object-store request may take, from connecting to the end of its body, before
    /// it is cut (and retried): a stalled transfer cannot hold the run.
    pub request_timeout: std::time::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            src: String::new(),
            dst: String::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            jobs: None,
            memory_budget: None,
            video_jobs: 1,
            temp_dir: None,
            multipart_bytes: 16 << 20,
            shard: None,
            manifest: None,
            dry_run: false,
            overwrite: Overwrite::Never,
            json: false,
            retries: Requests::default().retries,
            request_timeout: Requests::default().timeout,
        }
    }
}

impl Settings {
    /// How requests to object stores are retried and bounded.
    pub fn requests(&self) -> Requests {
        Requests { retries: self.retries, timeout: self.request_timeout }
    }
}

/// `I/N` with 0 <= I < N: a shard, as `--shard` and the schedulers' variables give it.
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("{s:?} is not I/N"))?;
    let (i, n): (u64, u64) =
        (i.parse().map_err(|_| format!("{i:?} is not a number"))?, n.parse().map_err(|_| format!("{n:?} is not a number"))?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

/// The shard from the flag, else from the scheduler's environment, else the whole set.
fn shard(args: &Settings) -> anyhow::Result<(u64, u64)> {
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

/// The keys taken without `--include`: every extension of a format the engine reads (its format
/// table) or of a video the video crate reads, in lower and upper case.
fn default_include() -> String {
    let extensions = compressor_engine::Format::ALL.iter().flat_map(|f| f.extensions()).chain(compressor_video::EXTENSIONS);
    let cases: Vec<String> = extensions.flat_map(|e| [e.to_string(), e.to_ascii_uppercase()]).collect();
    format!("*.{{{}}}", cases.join(","))
}

/// How videos (and, with `--format mp4|webm`, GIFs) are compressed.
#[derive(Debug, Clone, Default)]
pub struct VideoSettings {
    /// Format (`Keep` unless asked), quality, limits, timeout; `temp_dir` and `cancel` are the run's.
    pub options: compressor_video::Options,
    /// `--format mp4|webm` was asked for: GIFs go to video too (other images stay images).
    pub gifs: bool,
}

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

/// Video outputs over `--multipart-bytes` are uploaded in parts of this size (S3 wants at least
/// 5 MiB but for the last), two in flight.
const PART_BYTES: usize = 8 << 20;

/// Shared state of one run.
struct Run {
    src: Location,
    dst: Location,
    options: Options,
    video: VideoSettings,
    args: Settings,
    history: History,
    /// Output key → the input written there (this run's, and the manifest's finished ones), so
    /// that two inputs naming one output (`a.png` and `a.PNG` with `--format webp`) never
    /// overwrite each other.
    claimed: std::sync::Mutex<HashMap<String, String>>,
    manifest: Mutex<Manifest>,
    /// Images compressed at once (`jobs`, default the CPUs).
    jobs: usize,
    /// Compressions at once: images, and video transcodes (one permit each).
    cpu: Semaphore,
    /// Images also wait here for their estimated peak memory.
    memory: MemoryBudget,
    /// Video transcodes at once (`--video-jobs`).
    transcodes: Semaphore,
    /// Videos staged at once (downloading, waiting, transcoding or uploading): `jobs`.
    staged: Arc<Semaphore>,
    /// The videos' tasks, which run beside the image pipeline so a run of videos does not hold
    /// up the images listed after them.
    videos: std::sync::Mutex<JoinSet<()>>,
    /// Set by Ctrl-C (or a run ending early): running ffmpeg children are killed.
    cancel: Cancel,
    /// This run's folder for video files (none in dry runs), removed with the run.
    scratch: Option<tempfile::TempDir>,
    report: std::sync::Mutex<Report>,
    progress: progress::Progress,
}

/// A key's result, for its record.
struct Outcome {
    status: Status,
    output_key: String,
    output_size: u64,
    method: String,
    video: Option<VideoRecord>,
}

/// Runs a batch; the returned report says what happened (the caller picks the exit status).
pub async fn run(args: Settings, options: Options, video: VideoSettings) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (index, count) = shard(&args)?;
    let filter = KeyFilter { include: globs(&args.include, Some(&default_include()))?, exclude: globs(&args.exclude, None)?, index, count };
    let (src, dst) = locations(&args)?;
    let opened = open_manifest(&args, &dst, index, count).await?;
    let scratch = match args.dry_run {
        true => None,
        false => Some(scratch_dir(&args.temp_dir.clone().unwrap_or_else(std::env::temp_dir))?),
    };
    let run = Arc::new(Run::new(args, src, dst.location, options, video, opened, scratch));
    // Stops the work in flight when the run ends by an error or a panic.
    let _cancel_on_drop = compressor_engine::CancelOnDrop(run.cancel.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = stop_on_ctrl_c(stop.clone(), run.cancel.clone());
    // A listing that fails (after its retries) ends the run, but the keys in flight finish first.
    let result = run.clone().compress_listing(&filter, &stop).await;
    run.drain_videos().await;
    watcher.abort();
    run.finish(result, started, stop.load(Ordering::SeqCst)).await
}

/// The destination, and whether it is a dry run's folder that does not exist (then the run
/// creates nothing, not even the folder, and has no manifest).
struct Destination {
    location: Location,
    missing: bool,
}

/// SRC, and DST (created unless this is a dry run).
fn locations(args: &Settings) -> anyhow::Result<(Location, Destination)> {
    let requests = args.requests();
    let src = Location::parse(&args.src, false, requests)?;
    let missing = args.dry_run && !args.dst.contains("://") && !std::path::Path::new(&args.dst).exists();
    let location = if missing { src.clone() } else { Location::parse(&args.dst, !args.dry_run, requests)? };
    Ok((src, Destination { location, missing }))
}

/// Where progress is recorded and what earlier runs recorded there: `manifest` (a local path or
/// an object-store folder), else DST/.compressor/manifest-<I>-of-<N>. A dry run only reads a
/// local one.
async fn open_manifest(args: &Settings, dst: &Destination, index: u64, count: u64) -> anyhow::Result<(Manifest, History)> {
    let name = format!("manifest-{index}-of-{count}");
    Ok(match (&args.manifest, &dst.location.local_root) {
        _ if dst.missing => (Manifest::Disabled, History::default()),
        (None, Some(root)) if args.dry_run => {
            (Manifest::Disabled, Manifest::read_only(&root.join(".compressor").join(format!("{name}.jsonl"))))
        }
        (Some(m), _) if m.contains("://") => {
            let folder = Location::parse(m, false, args.requests())?;
            Manifest::open_remote(folder.store, folder.prefix).await?
        }
        (Some(m), _) => Manifest::open_local(std::path::Path::new(m)).await?,
        (None, Some(root)) => Manifest::open_local(&root.join(".compressor").join(format!("{name}.jsonl"))).await?,
        (None, None) => Manifest::open_remote(dst.location.store.clone(), dst.location.child(&format!(".compressor/{name}"))).await?,
    })
}

/// On Ctrl-C: `stop` is set (no more keys are taken) and the work in flight is cancelled.
fn stop_on_ctrl_c(stop: Arc<AtomicBool>, cancel: Cancel) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::SeqCst);
            cancel.cancel();
        }
    })
}

/// Which listed keys this run takes: included, not excluded, and in this shard.
struct KeyFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    index: u64,
    count: u64,
}

impl KeyFilter {
    fn takes(&self, relative: &str) -> bool {
        let included =
            self.include.as_ref().is_none_or(|g| g.is_match(relative)) && !self.exclude.as_ref().is_some_and(|g| g.is_match(relative));
        included && stable_hash(relative) % self.count == self.index
    }
}

/// This run's folder for video files, `.compressor-batch-<pid namespace>-<pid>-XXXXXX` in
/// `parent`. Folders that runs of this PID namespace left when killed with -9 (their process is
/// gone) are removed first; those of live runs, and of other namespaces, are left alone.
fn scratch_dir(parent: &Path) -> anyhow::Result<tempfile::TempDir> {
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|link| link.to_str().and_then(|l| l.strip_prefix("pid:[")?.strip_suffix(']').map(str::to_owned)))
        .unwrap_or_else(|| "0".into());
    let ours = format!(".compressor-batch-{namespace}-");
    if namespace != "0"
        && let Ok(entries) = std::fs::read_dir(parent)
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&ours)).and_then(|rest| rest.split_once('-')).map(|(pid, _)| pid)
            else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{ours}{}-", std::process::id()))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))
}

/// Two inputs whose outputs have one name: the second is not written.
#[derive(Debug)]
struct OutputConflict {
    output: String,
    other: String,
}

impl std::fmt::Display for OutputConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is already the output of {}; not overwritten (rename one, or use another --format)", self.output, self.other)
    }
}

impl std::error::Error for OutputConflict {}

/// The stable code of an error for the manifest: the engine's or the video crate's, else `io`.
fn error_code(e: &anyhow::Error) -> &'static str {
    if e.downcast_ref::<OutputConflict>().is_some() {
        return "output_conflict";
    }
    if e.downcast_ref::<Refusal>().is_some() {
        return "over_memory_budget";
    }
    if let Some(e) = e.downcast_ref::<compressor_engine::Error>() {
        e.code()
    } else if let Some(e) = e.downcast_ref::<compressor_video::Error>() {
        e.code()
    } else if e.downcast_ref::<tokio::task::JoinError>().is_some() {
        "internal"
    } else {
        "io"
    }
}

/// ffmpeg's messages name the file it read: the key's, not a temporary file's.
fn name_the_key(e: compressor_video::Error, input: &Path, relative: &str) -> compressor_video::Error {
    use compressor_video::Error::{Corrupt, Failed, Unsupported};
    let rename = |detail: String| detail.replace(&*input.to_string_lossy(), relative);
    match e {
        Corrupt { detail, log } => Corrupt { detail: rename(detail), log },
        Unsupported { detail } => Unsupported { detail: rename(detail) },
        Failed { detail, log } => Failed { detail: rename(detail), log },
        other => other,
    }
}

fn is_cancelled(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<compressor_video::Error>(), Some(compressor_video::Error::Cancelled))
        || matches!(e.downcast_ref::<compressor_engine::Error>(), Some(compressor_engine::Error::Cancelled))
}

impl Run {
    /// The run's shared state. Ctrl-C (through `cancel`) stops the work in flight too: images at
    /// their next stage, videos at once.
    fn new(
        args: Settings,
        src: Location,
        dst: Location,
        mut options: Options,
        mut video: VideoSettings,
        (manifest, history): (Manifest, History),
        scratch: Option<tempfile::TempDir>,
    ) -> Run {
        let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
        let cancel = Cancel::default();
        options.cancel = cancel.clone();
        video.options.cancel = cancel.clone();
        video.options.temp_dir = scratch.as_ref().map(|d| d.path().to_owned());
        let claimed = history
            .last
            .values()
            .filter(|r| matches!(r.status, Status::Done | Status::Unchanged | Status::Existing))
            .filter_map(|r| Some((r.output_key.clone()?, r.key.clone())))
            .collect();
        Run {
            src,
            dst,
            options,
            video,
            history,
            claimed: std::sync::Mutex::new(claimed),
            manifest: Mutex::new(manifest),
            jobs,
            cpu: Semaphore::new(jobs),
            memory: MemoryBudget::new(args.memory_budget.unwrap_or_else(compressor_budget::default_budget)),
            transcodes: Semaphore::new(args.video_jobs.clamp(1, jobs as u64) as usize),
            staged: Arc::new(Semaphore::new(jobs)),
            videos: std::sync::Mutex::new(JoinSet::new()),
            cancel,
            scratch,
            report: std::sync::Mutex::new(Report::default()),
            progress: progress::Progress::new(args.json),
            args,
        }
    }

    /// Streams SRC's listing through `filter` (keys that are not safe to write fail here) and
    /// processes up to 2×jobs keys at once, until the listing ends or fails or `stop` is set. The
    /// keys in flight are finished (and recorded) either way; a listing error is returned after.
    async fn compress_listing(self: Arc<Self>, filter: &KeyFilter, stop: &AtomicBool) -> anyhow::Result<()> {
        let listing_error = std::sync::Mutex::new(None);
        let listing = self.src.store.list(Some(&self.src.prefix)).scan((), |(), listed| {
            futures::future::ready(match listed {
                Ok(meta) => Some(meta),
                Err(e) => {
                    *listing_error.lock().unwrap() = Some(e);
                    None
                }
            })
        });
        let work = listing
            .filter_map(|meta| futures::future::ready(self.take(filter, meta)))
            .take_while(|_| futures::future::ready(!stop.load(Ordering::SeqCst)));
        work.for_each_concurrent(self.jobs * 2, |(relative, meta)| {
            let run = self.clone();
            async move { run.process(relative, meta).await }
        })
        .await;
        match listing_error.into_inner().unwrap() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The listed object's key relative to SRC, when this run takes it.
    fn take(&self, filter: &KeyFilter, meta: ObjectMeta) -> Option<(String, ObjectMeta)> {
        let relative = self.src.relative(&meta.location)?;
        // Our own bookkeeping (a manifest stored inside SRC) is never an input.
        if relative.starts_with(".compressor/") {
            return None;
        }
        let Some(relative) = sanitise(&relative) else {
            self.report.lock().unwrap().fail(&relative, meta.size, "unsafe key (.., absolute or empty segment)".into());
            return None;
        };
        filter.takes(&relative).then_some((relative, meta))
    }

    /// Records the end of the run (the manifest flushed, progress closed) and returns its report.
    async fn finish(&self, result: anyhow::Result<()>, started: Instant, interrupted: bool) -> anyhow::Result<Report> {
        let flushed = self.manifest.lock().await.flush().await;
        self.progress.finish();
        flushed.context("the run's last manifest records were not saved (a rerun finds their outputs and skips them)")?;
        result.context("listing the source")?;
        let mut report = std::mem::take(&mut *self.report.lock().unwrap());
        report.finish(started.elapsed(), interrupted, self.args.dry_run);
        Ok(report)
    }

    fn source_version(meta: &ObjectMeta) -> String {
        meta.e_tag.clone().unwrap_or_else(|| meta.last_modified.to_rfc3339())
    }

    async fn process(self: &Arc<Self>, relative: String, meta: ObjectMeta) {
        self.report.lock().unwrap().seen += 1;
        let version = Self::source_version(&meta);
        match self.skip_reason(&relative, &meta, &version).await {
            Ok(Some(reason)) => {
                self.report.lock().unwrap().skip(meta.size);
                self.progress.update(&self.report.lock().unwrap(), &format!("skip {relative} ({reason})"));
                return;
            }
            Ok(None) => {}
            Err(e) => return self.record(relative, meta, version, Err(e)).await,
        }
        if self.args.dry_run {
            let mut report = self.report.lock().unwrap();
            report.planned(meta.size);
            if !self.args.json {
                eprintln!("would compress {relative} ({} bytes)", meta.size);
            }
            return;
        }
        let outcome = match self.read_unless_video(&meta).await {
            Ok(Some(input)) => self.compress_image(&relative, input).await,
            Ok(None) => {
                let staged = self.staged.clone().acquire_owned().await.expect("the semaphore is never closed");
                let run = self.clone();
                self.videos.lock().unwrap().spawn(async move {
                    let outcome = run.compress_video(&relative, &meta).await;
                    drop(staged); // its files are gone
                    run.record(relative, meta, version, outcome).await;
                });
                return;
            }
            Err(e) => Err(e),
        };
        self.record(relative, meta, version, outcome).await;
    }

    /// Writes the key's record and counts it; a video cancelled by Ctrl-C is not recorded (the
    /// next run does it).
    async fn record(&self, relative: String, meta: ObjectMeta, version: String, outcome: anyhow::Result<Outcome>) {
        let mut record = Record::new(&relative, meta.size, &version, Status::Failed);
        match outcome {
            Ok(outcome) => {
                let mut report = self.report.lock().unwrap();
                report.done(outcome.status == Status::Unchanged, meta.size, outcome.output_size);
                report.videos += u64::from(outcome.video.is_some());
                record.status = outcome.status;
                record.output_key = Some(outcome.output_key);
                record.output_size = Some(outcome.output_size);
                record.method = Some(outcome.method);
                record.video = outcome.video;
            }
            Err(e) if is_cancelled(&e) => {
                self.progress.update(&self.report.lock().unwrap(), &format!("cancelled {relative}"));
                return;
            }
            Err(e) => {
                // Batch is driven by command-line flags: an option the engine asks for is spelled as one.
                let message = match e.downcast_ref::<compressor_engine::Error>() {
                    Some(engine) => engine.message(compressor_engine::Surface::Cli),
                    None => format!("{e:#}"),
                };
                self.report.lock().unwrap().fail(&relative, meta.size, message.clone());
                record.error = Some(message);
                record.error_code = Some(error_code(&e).to_owned());
            }
        }
        if let Err(e) = self.manifest.lock().await.record(&record).await {
            self.report.lock().unwrap().fail(&relative, 0, format!("manifest: {e:#}"));
        }
        self.progress.update(&self.report.lock().unwrap(), &relative);
    }

    /// Waits for the video tasks (after the listing's work is done, so no more are started).
    async fn drain_videos(&self) {
        let mut tasks = std::mem::take(&mut *self.videos.lock().unwrap());
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                self.report.lock().unwrap().fail("(a video task)", 0, e.to_string());
            }
        }
    }

    /// Why this key needs no work, if it needs none; an error when DST cannot say whether its
    /// output exists (the store failed even after its retries).
    async fn skip_reason(&self, relative: &str, meta: &ObjectMeta, version: &str) -> anyhow::Result<Option<&'static str>> {
        if self.args.overwrite == Overwrite::Always {
            return Ok(None);
        }
        if let Some(last) = self.history.last.get(relative) {
            let same_source = last.source_size == meta.size && last.source_version == version;
            match last.status {
                Status::Done | Status::Unchanged | Status::Existing if same_source => return Ok(Some("recorded as done")),
                // Keys that failed on their content are retried once, then left alone until
                // their source changes; `io` failures (storage, network) are always retried.
                Status::Failed if same_source && self.history.failures.get(relative).copied().unwrap_or(0) >= 2 => {
                    return Ok(Some("failed twice"));
                }
                _ => {}
            }
        }
        if self.args.overwrite == Overwrite::Never && !self.args.dry_run {
            // An output without a record: written by a run killed before it could record it.
            let output = self.dst.child(relative);
            match self.dst.store.head(&output).await {
                Ok(_) => {
                    let record =
                        Record { output_key: Some(relative.to_owned()), ..Record::new(relative, meta.size, version, Status::Existing) };
                    let _ = self.manifest.lock().await.record(&record).await;
                    return Ok(Some("output exists"));
                }
                Err(object_store::Error::NotFound { .. }) => {}
                // Not known to be absent: neither written over nor skipped (a rerun asks again).
                Err(e) => return Err(anyhow::Error::from(e).context("checking for an existing output")),
            }
        }
        Ok(None)
    }

    /// Videos by their first bytes; GIFs too when `--format mp4|webm` asked for video.
    fn is_video(&self, head: &[u8]) -> bool {
        compressor_video::looks_like_video(head) || (self.video.gifs && head.starts_with(b"GIF8"))
    }

    /// The whole input when it is an image; `None` when its first bytes say video (the video's
    /// task reads it again, to a file). One GET either way for images.
    async fn read_unless_video(&self, meta: &ObjectMeta) -> anyhow::Result<Option<Vec<u8>>> {
        const HEAD: usize = 16;
        let within_limit = |size: u64| {
            let limit = self.options.limits.max_input_bytes;
            match size > limit {
                true => Err(compressor_engine::Error::LimitExceeded { what: compressor_engine::LimitKind::InputBytes, value: size, limit }),
                false => Ok(()),
            }
        };
        if let Some(path) = self.src.local_path(&meta.location) {
            let mut head = Vec::with_capacity(HEAD);
            std::fs::File::open(&path).and_then(|f| f.take(HEAD as u64).read_to_end(&mut head)).context("reading")?;
            if self.is_video(&head) {
                return Ok(None);
            }
            within_limit(meta.size)?;
            let input = self.src.store.get(&meta.location).await.context("reading")?.bytes().await.context("reading")?;
            return Ok(Some(input.into()));
        }
        let mut stream = self.src.store.get(&meta.location).await.context("reading")?.into_stream();
        let mut input = Vec::new();
        let mut sniffed = false;
        while let Some(chunk) = stream.try_next().await.context("reading")? {
            input.extend_from_slice(&chunk);
            if !sniffed && input.len() >= HEAD {
                sniffed = true;
                if self.is_video(&input) {
                    return Ok(None);
                }
                within_limit(meta.size)?;
                input.reserve((meta.size as usize).saturating_sub(input.len()));
            }
        }
        if !sniffed && self.is_video(&input) {
            return Ok(None);
        }
        within_limit(input.len() as u64)?;
        Ok(Some(input))
    }

    /// Compresses (on a blocking thread, at most `jobs` at once) and writes one image.
    async fn compress_image(&self, relative: &str, input: Vec<u8>) -> anyhow::Result<Outcome> {
        let options = self.options.clone();
        let needed = compressor_engine::estimate_peak_bytes(&input, &options)?;
        // Memory first, then a CPU: an image waiting for room holds no CPU permit.
        // Waiting without a limit, the only refusal is an image larger than the whole budget.
        let _memory = self.memory.reserve(needed, None).await.context("compressing it (see --memory-budget)")?;
        let permit = self.cpu.acquire().await?;
        let result =
            tokio::task::spawn_blocking(move || compressor_engine::compress(&input, &options)).await.context("compression task")?;
        drop(permit);
        let result = result?;
        let output_relative = output_key(relative, result.format);
        self.claim(&output_relative, relative)?;
        // A single PUT: the object appears whole or not at all (local: temp file + rename).
        let output = self.dst.child(&output_relative);
        let size = result.data.len() as u64;
        self.dst.remove_staging_leftovers(&output_relative);
        self.dst.store.put(&output, PutPayload::from(result.data)).await.context("writing")?;
        Ok(Outcome {
            status: if result.changed { Status::Done } else { Status::Unchanged },
            output_key: output_relative,
            output_size: size,
            method: result.method,
            video: None,
        })
    }

    /// Stages one video on local disk (objects are downloaded; local files are read in place),
    /// transcodes it (at most `video_jobs` at once, each holding a CPU permit) and writes the
    /// result from its file. Every temporary file is removed when this returns or unwinds.
    async fn compress_video(&self, relative: &str, meta: &ObjectMeta) -> anyhow::Result<Outcome> {
        let options = self.video.options.clone();
        // Refused before any download (the probe would refuse it too, after one).
        let limit = options.limits.max_input_bytes;
        if meta.size > limit {
            let what = compressor_video::LimitKind::InputBytes;
            return Err(compressor_video::Error::LimitExceeded { what, value: meta.size as f64, limit: limit as f64 }.into());
        }
        let (input, _staged) = match self.src.local_path(&meta.location) {
            Some(path) => (path, None),
            None => {
                let file = self.download(relative, meta).await?;
                (file.path().to_owned(), Some(file))
            }
        };
        let compressed = {
            let _transcode = self.transcodes.acquire().await?;
            let _cpu = self.cpu.acquire().await?;
            if self.cancel.is_cancelled() {
                return Err(compressor_video::Error::Cancelled.into());
            }
            let path = input.clone();
            let result = tokio::task::spawn_blocking(move || compressor_video::compress(&path, &options)).await.context("video task")?;
            result.map_err(|e| name_the_key(e, &input, relative))?
        };
        let report = &compressed.report;
        let (output_key, from) = match &compressed.output {
            Some(file) => (video_output_key(relative, report.format), file.path()),
            // Nothing smaller in its own container: copied as it is, under its own name.
            None => (relative.to_owned(), input.as_path()),
        };
        self.claim(&output_key, relative)?;
        let output_size = self.upload(&output_key, from).await?;
        Ok(Outcome {
            status: if report.changed { Status::Done } else { Status::Unchanged },
            output_key,
            output_size,
            method: report.method.clone(),
            video: Some(VideoRecord::new(report)),
        })
    }

    /// Takes `output` for `input`, or refuses when another input already writes there.
    fn claim(&self, output: &str, input: &str) -> Result<(), OutputConflict> {
        let mut claimed = self.claimed.lock().unwrap();
        match claimed.get(output) {
            Some(other) if other != input => Err(OutputConflict { output: output.to_owned(), other: other.clone() }),
            _ => {
                claimed.insert(output.to_owned(), input.to_owned());
                Ok(())
            }
        }
    }

    /// Copies an object into a temporary file in the scratch folder (removed when dropped).
    async fn download(&self, relative: &str, meta: &ObjectMeta) -> anyhow::Result<tempfile::NamedTempFile> {
        let scratch = self.scratch.as_ref().context("no temporary folder in a dry run")?;
        let ext = relative
            .rsplit_once('.')
            .map(|(_, ext)| ext)
            .filter(|ext| ext.len() <= 5 && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or("bin");
        let temp = tempfile::Builder::new()
            .prefix("input-")
            .suffix(&format!(".{ext}"))
            .tempfile_in(scratch.path())
            .context("creating a temporary file")?;
        let mut file = tokio::fs::File::from_std(temp.reopen().context("opening a temporary file")?);
        let mut stream = self.src.store.get(&meta.location).await.context("reading")?.into_stream();
        while let Some(chunk) = stream.try_next().await.context("reading")? {
            if self.cancel.is_cancelled() {
                return Err(compressor_video::Error::Cancelled.into());
            }
            file.write_all(&chunk).await.context("writing a temporary file")?;
        }
        file.flush().await.context("writing a temporary file")?;
        Ok(temp)
    }

    /// Writes the file at `from` to `key` under DST, whole or not at all: one PUT when small,
    /// else a multipart upload streamed from the file (a local DST stages and renames either
    /// way). Returns the size written.
    async fn upload(&self, key: &str, from: &Path) -> anyhow::Result<u64> {
        let output = self.dst.child(key);
        self.dst.remove_staging_leftovers(key);
        let size = tokio::fs::metadata(from).await.context("reading the output")?.len();
        if size <= self.args.multipart_bytes {
            let data = tokio::fs::read(from).await.context("reading the output")?;
            self.dst.store.put(&output, PutPayload::from(data)).await.context("writing")?;
            return Ok(size);
        }
        let upload = self.dst.store.put_multipart(&output).await.context("writing")?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let copied = async {
            let mut file = tokio::fs::File::open(from).await?;
            let mut buffer = vec![0; 1 << 20];
            loop {
                let n = file.read(&mut buffer).await?;
                if n == 0 {
                    return anyhow::Ok(());
                }
                writer.wait_for_capacity(2).await?;
                writer.write(&buffer[..n]);
            }
        }
        .await;
        match copied {
            Ok(()) => {
                writer.finish().await.context("writing")?;
                Ok(size)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e.context("writing"))
            }
        }
    }
}

/// The output key: the input key, with the extension changed when the format changed (the
/// engine's one naming rule).
pub fn output_key(relative: &str, format: compressor_engine::Format) -> String {
    format.output_name(relative)
}

/// A video's output key: `.mp4` (`.m4v` kept) or `.webm`, by the same rule.
pub fn video_output_key(relative: &str, format: VideoFormat) -> String {
    compressor_engine::with_output_extension(relative, format.extension(), |ext| match format {
        VideoFormat::WebM => ext.eq_ignore_ascii_case("webm"),
        _ => ext.eq_ignore_ascii_case("mp4") || ext.eq_ignore_ascii_case("m4v"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_named_after_their_format() {
        assert_eq!(output_key("a/b.PNG", compressor_engine::Format::Png), "a/b.PNG");
        assert_eq!(output_key("a/b.jpeg", compressor_engine::Format::Jpeg), "a/b.jpeg");
        assert_eq!(output_key("a/b.png", compressor_engine::Format::WebP), "a/b.webp");
        assert_eq!(video_output_key("v/clip.MOV", VideoFormat::Mp4), "v/clip.mp4");
        assert_eq!(video_output_key("v/clip.m4v", VideoFormat::Mp4), "v/clip.m4v");
        assert_eq!(video_output_key("v/clip.MP4", VideoFormat::Mp4), "v/clip.MP4");
        assert_eq!(video_output_key("v/anim.gif", VideoFormat::WebM), "v/anim.webm");
        assert_eq!(video_output_key("v/.hidden", VideoFormat::Mp4), "v/.hidden.mp4");
    }
}
