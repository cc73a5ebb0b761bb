//! Video compression for compressor: MP4/MOV/WebM re-encoded, animated GIFs turned into video,
//! through Debian's `ffmpeg` and `ffprobe` as subprocesses. The image engine stays pure; this
//! crate does the I/O and process work, and keeps hostile-input decoding out of our process.
//!
//! Every call probes first (`ffprobe` JSON, short timeout) and refuses over-limit inputs before
//! transcoding; children get a wall-clock deadline, CPU-time and address-space limits, local
//! files only (`-protocol_whitelist file`, `-nostdin`), and are killed with their process group
//! on timeout, error or panic. Scratch files live in a temporary folder removed on every path;
//! the output is a temporary file the caller persists (renamed into place) or streams.
//!
//! `Options::target_quality` (a SSIMULACRA2 score, 0-100) searches the CRF instead of mapping a
//! quality to it, on samples rather than whole encodes (like `ab-av1 crf-search`): a video longer
//! than 10 s gives 4 segments of 1.5 s spread across it, cut once into lossless FFV1; a shorter one
//! (and nearly every GIF) is sampled whole. Each step encodes the samples at one CRF with exactly
//! the final encode's settings, decodes the same 8-24 frames of them (about 4 MP in all, an odd
//! stride so the codec's alternating better and worse frames weigh alike) to rgb24 at the output's
//! size, and scores them one at a time against the source's with the image engine's SSIMULACRA2;
//! the step's score is their mean. The search starts at the codec's default CRF (x264 23, VP9 32)
//! and interpolates towards the crossing, at most 6 steps, keeping the highest CRF (x264 0-51, VP9
//! 0-63) that reaches the target, or the best-scoring one with a note when none does. The report's
//! `score` is that mean at the chosen CRF and `method` names it (`h264-crf27`); the steps tried are
//! in its first note. All steps and the final encode share the one `timeout`, and `cancel` stops
//! the search between frames and inside each child. Re-measured on frames spread over the whole
//! final output, test clips (H.264 and VP9) and corpus GIFs scored from 0.2 below to 2.6 above
//! the reported score.

mod error;
mod ffmpeg;
mod probe;
mod search;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::{ChildLog, Error, LimitKind, is_no_space};
pub use ffmpeg::Cancel;
use ffmpeg::{Bounds, Budget};
pub use probe::{Limits, Probe};

/// The container and codecs written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoFormat {
    /// H.264 (libx264), yuv420p, AAC audio, `+faststart`: plays everywhere.
    #[default]
    Mp4,
    /// VP9 (libvpx-vp9, constant quality), Opus audio.
    WebM,
    /// The input's container (MP4 for MOV, and for GIF input).
    Keep,
}

impl std::str::FromStr for VideoFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "mp4" => Ok(VideoFormat::Mp4),
            "webm" => Ok(VideoFormat::WebM),
            "keep" => Ok(VideoFormat::Keep),
            _ => Err(Error::InvalidOptions { detail: format!("video format {s:?} is not mp4, webm or keep") }),
        }
    }
}

impl VideoFormat {
    pub fn extension(self) -> &'static str {
        match self {
            VideoFormat::Mp4 | VideoFormat::Keep => "mp4",
            VideoFormat::WebM => "webm",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            VideoFormat::Mp4 | VideoFormat::Keep => "video/mp4",
            VideoFormat::WebM => "video/webm",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub format: VideoFormat,
    /// 0-100 (higher is better), mapped to each codec's CRF; `None`: x264 CRF 23 (ffmpeg's
    /// default), VP9 CRF 32. Ignored when `target_quality` is set (as in the image engine).
    pub quality: Option<u8>,
    /// A SSIMULACRA2 score (0-100; 90 is visually lossless, 70 high quality, 50 medium): the
    /// highest CRF whose mean score on samples of the video reaches it is searched for (see the
    /// crate documentation), and the video encoded at it. Wins over `quality`.
    pub target_quality: Option<f64>,
    /// False drops the audio.
    pub audio: bool,
    pub limits: Limits,
    /// Wall-clock limit of the transcode, shared by a target-quality search and the final encode
    /// (the probe gets at most 30 s of its own).
    pub timeout: Duration,
    /// Address-space limit of each child.
    pub memory_bytes: u64,
    /// Where scratch and output files go (default: the system's temporary folder).
    pub temp_dir: Option<PathBuf>,
    /// Stops the work early when set (the child is killed, the scratch files removed).
    pub cancel: Cancel,
}

impl Options {
    /// The default wall-clock limit of a transcode (the service's `--video-timeout` too).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
    /// The default address-space limit of each child.
    pub const DEFAULT_MEMORY_BYTES: u64 = 4 << 30;

    /// Refuses settings no encode can honour, before any file is read (the service checks a
    /// request with it before taking the upload).
    pub fn validate(&self) -> Result<(), Error> {
        if self.quality.is_some_and(|q| q > 100) {
            return Err(Error::InvalidOptions { detail: "quality is 0-100".into() });
        }
        if let Some(target) = self.target_quality
            && !(0.0..=100.0).contains(&target)
        {
            return Err(Error::InvalidOptions { detail: format!("target quality {target} is not a score in 0-100") });
        }
        Ok(())
    }
}

/// What a caller chooses for one video, in the spellings every surface shares (`format`: `mp4`,
/// `webm` or `keep` in any case, by [`VideoFormat`]'s `FromStr`; `quality` and `target_quality`
/// 0-100; `audio`). The command line, batch and the service build their [`Options`] from it with
/// [`Choices::options`], so a choice left out means the same, and is checked the same, everywhere;
/// the rest of the options (limits, timeout, temporary folder) are the deployment's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choices {
    /// `None`: [`VideoFormat::Keep`].
    pub format: Option<VideoFormat>,
    pub quality: Option<u8>,
    pub target_quality: Option<f64>,
    /// `None`: kept.
    pub audio: Option<bool>,
}

impl Choices {
    /// The options for these choices, with the default limits, timeout and memory, checked
    /// ([`Options::validate`]).
    pub fn options(&self) -> Result<Options, Error> {
        let options = Options {
            format: self.format.unwrap_or(VideoFormat::Keep),
            quality: self.quality,
            target_quality: self.target_quality,
            audio: self.audio.unwrap_or(true),
            ..Options::default()
        };
        options.validate()?;
        Ok(options)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: VideoFormat::Mp4,
            quality: None,
            target_quality: None,
            audio: true,
            limits: Limits::DEFAULT,
            timeout: Options::DEFAULT_TIMEOUT,
            memory_bytes: Options::DEFAULT_MEMORY_BYTES,
            temp_dir: None,
            cancel: Cancel::default(),
        }
    }
}

/// What a compression did, for the CLI's JSON, the service's headers and the batch manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub format: VideoFormat,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    /// As displayed (rotation applied), even for H.264's 4:2:0.
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
    pub input_size: u64,
    pub output_size: u64,
    /// False when the input is returned as it was (nothing smaller in the same container).
    pub changed: bool,
    /// The codec and CRF, e.g. `h264-crf27`; `unchanged` when the input is kept.
    pub method: String,
    /// With `target_quality`: the mean SSIMULACRA2 reached, measured during the search on the
    /// sampled frames of the sample segments encoded at the chosen CRF with the final encode's
    /// settings (not re-measured on the final output; the whole video when it is short). `None`
    /// without a target, and when the input is kept unchanged.
    pub score: Option<f64>,
    pub notes: Vec<String>,
    pub ms: u64,
    /// The input as probed.
    pub source: Probe,
}

/// The result: the report, and the new file unless the input is to be kept as it is.
pub struct Compressed {
    pub report: Report,
    /// A temporary file holding the output; `None` when `report.changed` is false.
    pub output: Option<tempfile::NamedTempFile>,
}

/// File name extensions (lower case) of the containers this crate reads, for listings that pick
/// files by name (batch's default `--include`); files themselves are judged by content.
pub const EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "webm", "mkv"];

/// The media types those containers are labelled with (MP4, M4V, MOV, WebM, Matroska), for
/// pickers that filter files by type (the web page's).
pub const MEDIA_TYPES: &[&str] = &["video/mp4", "video/x-m4v", "video/quicktime", "video/webm", "video/x-matroska"];

/// True when the first bytes of a file look like a video container this crate reads: ISO BMFF
/// (MP4, MOV, 3GP) with a video brand, or EBML (WebM, Matroska). AVIF and HEIF also start with
/// `ftyp`; their brands are images and are left to the image engine.
pub fn looks_like_video(head: &[u8]) -> bool {
    if head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return true;
    }
    // Images in the same container are the engine's to recognise (its brands: one list).
    head.len() >= 12 && &head[4..8] == b"ftyp" && !compressor_engine::is_heif_image(head)
}

/// Probes `input` (a local file) under the options' limits.
pub fn probe(input: &Path, options: &Options) -> Result<Probe, Error> {
    probe_in(input, options)
}

fn probe_in(input: &Path, options: &Options) -> Result<Probe, Error> {
    let size = std::fs::metadata(input)?.len();
    if size > options.limits.max_input_bytes {
        return Err(Error::LimitExceeded { what: LimitKind::InputBytes, value: size as f64, limit: options.limits.max_input_bytes as f64 });
    }
    let bounds = Bounds {
        timeout: options.timeout.min(Duration::from_secs(30)),
        memory_bytes: options.memory_bytes,
        cancel: options.cancel.clone(),
    };
    let probed = probe::probe(input, &bounds)?;
    probed.check(&options.limits)?;
    Ok(probed)
}

/// Compresses the video (or animated GIF) at `input`.
pub fn compress(input: &Path, options: &Options) -> Result<Compressed, Error> {
    let started = Instant::now();
    options.validate()?;
    let scratch = scratch_dir(options)?;
    let probed = probe_in(input, options)?;
    let format = match options.format {
        VideoFormat::Keep if probed.is_webm() => VideoFormat::WebM,
        VideoFormat::Keep => VideoFormat::Mp4,
        f => f,
    };
    let mut notes = Vec::new();
    if options.format == VideoFormat::Keep && !(probed.is_mp4() || probed.is_webm()) {
        notes.push(format!("{} cannot be written here; keep gives MP4", probed.container));
    }
    let audio = options.audio && probed.audio_codec.is_some();
    let output = tempfile::Builder::new()
        .prefix(".compressor-video-")
        .suffix(&format!(".{}", format.extension()))
        .tempfile_in(scratch.path().parent().unwrap_or(scratch.path()))?;
    let budget = Budget::new(options.timeout, options.memory_bytes, options.cancel.clone());
    let (crf, mut score) = match options.target_quality {
        Some(target) => {
            let searched = search::search(input, scratch.path(), format, &probed, target, &budget)?;
            notes.extend(searched.notes);
            if options.quality.is_some() {
                notes.push("quality ignored: the target quality chose the CRF".into());
            }
            (searched.crf, Some(searched.score))
        }
        None => (crf(format, options.quality), None),
    };
    let (encode, method) = ffmpeg::Command::encode(input, output.path(), format, crf, audio, probed.is_gif());
    budget.run(encode)?;
    let (input_size, output_size) = (std::fs::metadata(input)?.len(), output.as_file().metadata()?.len());
    let same_container = (format == VideoFormat::Mp4 && probed.is_mp4()) || (format == VideoFormat::WebM && probed.is_webm());
    let changed = !(same_container && output_size >= input_size);
    if !changed {
        notes.push(format!("the {method} output ({output_size} bytes) was not smaller than the input; input kept"));
        score = None;
    }
    if !options.audio && probed.audio_codec.is_some() {
        notes.push("audio dropped, as asked".into());
    }
    let (width, height) = even_for(format, probed.display_size());
    let report = Report {
        format,
        video_codec: if changed { codec_of(format).into() } else { probed.video_codec.clone() },
        audio_codec: if changed { audio.then(|| audio_codec_of(format).to_owned()) } else { probed.audio_codec.clone() },
        width,
        height,
        duration_seconds: probed.duration_seconds,
        input_size,
        output_size: if changed { output_size } else { input_size },
        changed,
        method: if changed { method } else { "unchanged".into() },
        score,
        notes,
        ms: started.elapsed().as_millis() as u64,
        source: probed,
    };
    Ok(Compressed { report, output: changed.then_some(output) })
}

fn scratch_dir(options: &Options) -> Result<tempfile::TempDir, Error> {
    let parent = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    Ok(tempfile::Builder::new().prefix(".compressor-video-").tempdir_in(parent)?)
}

/// x264 and VP9 CRFs for a 0-100 quality: 100 → 0 (best), 0 → the codec's worst.
fn crf(format: VideoFormat, quality: Option<u8>) -> u32 {
    match (format, quality) {
        (VideoFormat::WebM, None) => 32,
        (VideoFormat::WebM, Some(q)) => ((100 - u32::from(q)) * 63 + 50) / 100,
        (_, None) => 23,
        (_, Some(q)) => ((100 - u32::from(q)) * 51 + 50) / 100,
    }
}

fn codec_of(format: VideoFormat) -> &'static str {
    if format == VideoFormat::WebM { "vp9" } else { "h264" }
}

fn audio_codec_of(format: VideoFormat) -> &'static str {
    if format == VideoFormat::WebM { "opus" } else { "aac" }
}

/// H.264 in 4:2:0 needs even sides: odd ones are rounded down (one pixel row or column).
fn even_for(format: VideoFormat, (w, h): (u32, u32)) -> (u32, u32) {
    if format == VideoFormat::WebM { (w, h) } else { ((w & !1).max(2), (h & !1).max(2)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_are_told_from_images_by_their_first_bytes() {
        assert!(looks_like_video(b"\0\0\0\x20ftypisom\0\0\x02\0"));
        assert!(looks_like_video(b"\0\0\0\x14ftypqt  \0\0\0\0"));
        assert!(looks_like_video(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F]));
        assert!(!looks_like_video(b"\0\0\0\x1cftypavif\0\0\0\0"));
        assert!(!looks_like_video(b"\0\0\0\x18ftypheic\0\0\0\0"));
        // HEVC image brands the engine reads as HEIC went to ffmpeg before.
        for brand in [b"hevc", b"hevx", b"heim", b"heis"] {
            assert!(!looks_like_video(&[b"\0\0\0\x10ftyp".as_slice(), brand, b"\0\0\0\0"].concat()), "{brand:?}");
        }
        assert!(!looks_like_video(b"\0\0\0\x18ftypmif2\0\0\0\0heicmif2"));
        assert!(!looks_like_video(b"GIF89a"));
        assert!(!looks_like_video(b"ftyp"));
    }

    #[test]
    fn quality_maps_to_each_codecs_crf() {
        assert_eq!(crf(VideoFormat::Mp4, None), 23);
        assert_eq!(crf(VideoFormat::Mp4, Some(100)), 0);
        assert_eq!(crf(VideoFormat::Mp4, Some(0)), 51);
        assert_eq!(crf(VideoFormat::Mp4, Some(55)), 23);
        assert_eq!(crf(VideoFormat::WebM, Some(0)), 63);
        assert_eq!(crf(VideoFormat::WebM, None), 32);
        assert_eq!(even_for(VideoFormat::Mp4, (641, 361)), (640, 360));
        assert_eq!(even_for(VideoFormat::Mp4, (1, 1)), (2, 2));
        assert_eq!(even_for(VideoFormat::WebM, (641, 361)), (641, 361));
        assert!("mkv".parse::<VideoFormat>().is_err());
    }

    #[test]
    fn choices_left_out_mean_keep_with_audio_and_are_checked() {
        let options = Choices::default().options().unwrap();
        assert_eq!(options, Options { format: VideoFormat::Keep, cancel: options.cancel.clone(), ..Options::default() });
        let format = Some("WebM".parse().unwrap());
        let options = Choices { format, quality: Some(70), target_quality: None, audio: Some(false) }.options().unwrap();
        assert_eq!((options.format, options.quality, options.audio), (VideoFormat::WebM, Some(70), false));
        assert!(matches!(Choices { quality: Some(101), ..Choices::default() }.options(), Err(Error::InvalidOptions { .. })));
        assert!(matches!(Choices { target_quality: Some(-1.0), ..Choices::default() }.options(), Err(Error::InvalidOptions { .. })));
    }
}
