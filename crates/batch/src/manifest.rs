//! Progress records, one JSON line per finished key, so a killed run can resume.
//!
//! On a local disk the manifest is one append-only file, flushed after every record: a `kill -9`
//! loses at most the images in flight. Object stores cannot append, so there the manifest is a
//! folder of segment objects written every few seconds (a kill loses at most those seconds of
//! records; their images are redone and their outputs rewritten whole, never duplicated).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Compressed and written.
    Done,
    /// Nothing smaller was found; the input was copied as it is.
    Unchanged,
    Failed,
    /// An output was already there (from a run whose record was lost, or from elsewhere).
    Existing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub source_size: u64,
    /// ETag, or the modification time where the store has no ETag.
    pub source_version: String,
    pub status: Status,
    pub output_key: Option<String>,
    pub output_size: Option<u64>,
    pub error: Option<String>,
    /// Unix seconds.
    pub at: u64,
    /// Which path produced the output (e.g. `png-quantized`, `h264-crf23`, `unchanged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The error's stable code (`corrupt_image`, `corrupt_video`, `limit_exceeded`, `io`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Present on the records of videos (and of GIFs turned into video) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoRecord>,
}

/// What a video's record says beyond an image's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRecord {
    /// The output's container: `mp4` or `webm`.
    pub format: String,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    /// As displayed.
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
    /// The input's container, as ffprobe names it.
    pub source_container: String,
    /// With `--target-quality`: the SSIMULACRA2 reached on the search's samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Time spent in ffprobe and ffmpeg.
    pub ms: u64,
}

impl VideoRecord {
    pub fn new(report: &compressor_video::Report) -> Self {
        VideoRecord {
            format: report.format.extension().to_owned(),
            video_codec: report.video_codec.clone(),
            audio_codec: report.audio_codec.clone(),
            width: report.width,
            height: report.height,
            duration_seconds: report.duration_seconds,
            source_container: report.source.container.clone(),
            score: report.score,
            ms: report.ms,
        }
    }
}

impl Record {
    /// A record of `key` from this source, stamped now, with `status` and nothing else filled in.
    pub fn new(key: &str, source_size: u64, source_version: &str, status: Status) -> Record {
        Record {
            key: key.to_owned(),
            source_size,
            source_version: source_version.to_owned(),
            status,
            output_key: None,
            output_size: None,
            error: None,
            at: Record::now(),
            method: None,
            error_code: None,
            video: None,
        }
    }

    pub fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// What earlier runs recorded, per key: the last record and how many times the key failed on
/// its content.
#[derive(Debug, Default)]
pub struct History {
    pub last: HashMap<String, Record>,
    /// Failures other than `io` ones: a store that answered 503, a reset connection or a full disk
    /// says nothing about the key, so those never stop a rerun from retrying it.
    pub failures: HashMap<String, u32>,
}

impl History {
    /// Reads the lines of a manifest file or segment. Bytes that are not UTF-8 (a line cut inside
    /// a character by a kill) spoil only their own line, never the records around it.
    pub(crate) fn read(&mut self, bytes: &[u8]) {
        String::from_utf8_lossy(bytes).lines().for_each(|l| self.add(l));
    }

    fn add(&mut self, line: &str) {
        // A line cut short by a kill is ignored: its key is simply redone.
        let Ok(record) = serde_json::from_str::<Record>(line) else { return };
        if record.status == Status::Failed && record.error_code.as_deref() != Some("io") {
            *self.failures.entry(record.key.clone()).or_default() += 1;
        }
        self.last.insert(record.key.clone(), record);
    }
}

/// The last record of each key in manifest bytes, read exactly as a resumed run reads them. For
/// tests and fuzz targets; not a stable API.
pub fn read_manifest(bytes: &[u8]) -> HashMap<String, Record> {
    let mut history = History::default();
    history.read(bytes);
    history.last
}

pub enum Manifest {
    /// Dry runs read history but record nothing.
    Disabled,
    Local {
        file: std::fs::File,
    },
    Remote {
        store: Arc<dyn ObjectStore>,
        folder: Path,
        pending: Vec<u8>,
        run: String,
        segment: u64,
        flushed: Instant,
    },
}

const REMOTE_FLUSH_EVERY: Duration = Duration::from_secs(3);

impl Manifest {
    /// Reads what earlier runs recorded without opening anything for writing.
    pub fn read_only(path: &std::path::Path) -> History {
        let mut history = History::default();
        if let Ok(bytes) = std::fs::read(path) {
            history.read(&bytes);
        }
        history
    }

    /// Opens (creating) the manifest and reads what earlier runs recorded.
    pub async fn open_local(path: &std::path::Path) -> anyhow::Result<(Self, History)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut history = History::default();
        let bytes = std::fs::read(path).unwrap_or_default();
        history.read(&bytes);
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        // A kill can leave the last line without its newline: end it, or the first record of this
        // run would be glued to it and lost too.
        if bytes.last().is_some_and(|&b| b != b'\n') {
            file.write_all(b"\n").context("writing the manifest")?;
        }
        Ok((Manifest::Local { file }, history))
    }

    pub async fn open_remote(store: Arc<dyn ObjectStore>, folder: Path) -> anyhow::Result<(Self, History)> {
        let mut history = History::default();
        let mut segments: Vec<Path> =
            store.list(Some(&folder)).map_ok(|m| m.location).try_collect().await.context("listing the manifest")?;
        segments.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        for segment in segments {
            let bytes = store.get(&segment).await?.bytes().await?;
            history.read(&bytes);
        }
        let run = format!("{:016x}", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
        Ok((Manifest::Remote { store, folder, pending: Vec::new(), run, segment: 0, flushed: Instant::now() }, history))
    }

    pub async fn record(&mut self, record: &Record) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        match self {
            Manifest::Disabled => {}
            Manifest::Local { file } => {
                // One write per line: a kill leaves at worst one partial last line.
                file.write_all(&line).context("writing the manifest")?;
                file.flush()?;
            }
            Manifest::Remote { pending, flushed, .. } => {
                pending.extend_from_slice(&line);
                if flushed.elapsed() >= REMOTE_FLUSH_EVERY
                    && let Err(e) = self.flush().await
                {
                    // The records stay pending and go with the next segment (or the run's last).
                    eprintln!("compressor: {e:#}; its records are kept for the next one");
                }
            }
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            Manifest::Disabled => {}
            Manifest::Local { file } => file.sync_data().context("syncing the manifest")?,
            Manifest::Remote { store, folder, pending, run, segment, flushed } => {
                *flushed = Instant::now();
                if !pending.is_empty() {
                    let path = folder.child(format!("{run}-{segment:06}.jsonl"));
                    // Kept until written: a failed segment write (after its retries) loses no record.
                    store.put(&path, PutPayload::from(pending.clone())).await.context("writing a manifest segment")?;
                    pending.clear();
                    *segment += 1;
                }
            }
        }
        Ok(())
    }
}
