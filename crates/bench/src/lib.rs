//! `compressor bench`: our engine against the real peer tools (pngquant, oxipng, optipng, the old
//! Go server's re-encode, jpegtran, cjpeg, cwebp, avifenc) on a corpus, interleaved so that
//! machine noise hits both alike.
//!
//! Every measurement is of a child process reaped with `wait4`: peers as themselves, our engine
//! as this same program re-invoked with a hidden `--engine-worker` flag (it reads the file,
//! compresses, writes the result). So start-up, file I/O, CPU time and peak memory are counted
//! the same way for everyone. Quality is SSIMULACRA2 computed here for every tool alike
//! ([`measure`]); the report gives per-category totals, geometric means of our/peer ratios and
//! the issue's goals as MET or MISSED ([`report`]), and an SVG plot ([`plot`]).
//!
//! The video categories (named with `--categories`, not run by default) compress animated GIFs
//! and generated clips through `compressor_video` in the same worker, against ffmpeg's default
//! H.264, SVT-AV1 and gifsicle; they are scored on sampled frames ([`video`]).

pub mod measure;
pub mod peers;
pub mod plot;
pub mod rd;
pub mod report;
pub mod video;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use compressor_engine::{Fit, Format, MetadataPolicy, Mode, Options, OutputFormat, Quality, Resize};
use serde::{Deserialize, Serialize};

use crate::measure::{Kind, Rgba};
use crate::peers::{Io, Peer};
use crate::report::{Record, Report, Status};

/// What is compared: one row group in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    LosslessPng,
    LossyPng,
    JpegLossless,
    JpegLossy,
    #[serde(rename = "webp")]
    WebP,
    Avif,
    /// What `POST /compress-image?strategy=pngquant` runs: lossy PNG at 60-80, no score.
    ServiceLossy,
    /// The same with the score computed, as `POST /v1/compress?score=true` does: its cost.
    ServiceLossyScored,
    /// What `POST /compress-image?strategy=stdlib` runs: the lossless route.
    ServiceLossless,
    /// Large images to 1280 px wide, as WebP q 80.
    #[serde(rename = "resize-1280")]
    Resize1280,
    /// Large images to a 300×300 centred cover, as WebP q 80.
    #[serde(rename = "resize-cover-300")]
    ResizeCover300,
    /// Animated GIFs to MP4 (H.264) at our default quality.
    GifMp4,
    /// Videos re-encoded as MP4 (H.264) at our default quality.
    VideoMp4,
    /// Videos to WebM (VP9) at our default quality.
    #[serde(rename = "video-webm")]
    VideoWebM,
    /// Rate–distortion sweeps ([`peers::LADDER`]) to lossy PNG, JPEG, WebP and AVIF, against sharp
    /// and the command-line encoders of each format, with BD-rates ([`rd`]).
    RdPng,
    RdJpeg,
    #[serde(rename = "rd-webp")]
    RdWebP,
    RdAvif,
}

impl Category {
    pub const ALL: [Category; 18] = [
        Category::LosslessPng,
        Category::LossyPng,
        Category::JpegLossless,
        Category::JpegLossy,
        Category::WebP,
        Category::Avif,
        Category::ServiceLossy,
        Category::ServiceLossyScored,
        Category::ServiceLossless,
        Category::Resize1280,
        Category::ResizeCover300,
        Category::GifMp4,
        Category::VideoMp4,
        Category::VideoWebM,
        Category::RdPng,
        Category::RdJpeg,
        Category::RdWebP,
        Category::RdAvif,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::LosslessPng => "Lossless PNG",
            Category::LossyPng => "Lossy PNG",
            Category::JpegLossless => "JPEG lossless",
            Category::JpegLossy => "JPEG lossy",
            Category::WebP => "WebP (from PNG and JPEG)",
            Category::Avif => "AVIF (from PNG and JPEG)",
            Category::ServiceLossy => "Service: lossy PNG 60-80 (legacy route)",
            Category::ServiceLossyScored => "Service: lossy PNG 60-80 with its score",
            Category::ServiceLossless => "Service: lossless PNG (legacy stdlib route)",
            Category::Resize1280 => "Resize: to 1280 px wide, WebP q 80 (images wider than 1280)",
            Category::ResizeCover300 => "Resize: 300×300 centred cover, WebP q 80 (images wider than 1280)",
            Category::GifMp4 => "Video: animated GIF to MP4 (H.264, our default quality)",
            Category::VideoMp4 => "Video: MP4 re-encode (H.264, our default quality)",
            Category::VideoWebM => "Video: WebM (VP9, our default quality) against SVT-AV1",
            Category::RdPng => "Rate–distortion: lossy PNG (from PNG)",
            Category::RdJpeg => "Rate–distortion: JPEG (from PNG and JPEG, images without transparency)",
            Category::RdWebP => "Rate–distortion: WebP (from PNG and JPEG)",
            Category::RdAvif => "Rate–distortion: AVIF (from PNG and JPEG)",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Category::LosslessPng => "lossless-png",
            Category::LossyPng => "lossy-png",
            Category::JpegLossless => "jpeg-lossless",
            Category::JpegLossy => "jpeg-lossy",
            Category::WebP => "webp",
            Category::Avif => "avif",
            Category::ServiceLossy => "service-lossy",
            Category::ServiceLossyScored => "service-lossy-scored",
            Category::ServiceLossless => "service-lossless",
            Category::Resize1280 => "resize-1280",
            Category::ResizeCover300 => "resize-cover-300",
            Category::GifMp4 => "gif-mp4",
            Category::VideoMp4 => "video-mp4",
            Category::VideoWebM => "video-webm",
            Category::RdPng => "rd-png",
            Category::RdJpeg => "rd-jpeg",
            Category::RdWebP => "rd-webp",
            Category::RdAvif => "rd-avif",
        }
    }

    /// The rate–distortion categories: a quality sweep per tool; run only when named.
    pub fn is_rd(self) -> bool {
        matches!(self, Category::RdPng | Category::RdJpeg | Category::RdWebP | Category::RdAvif)
    }

    /// The format a rate–distortion category writes.
    pub fn rd_format(self) -> Option<Format> {
        match self {
            Category::RdPng => Some(Format::Png),
            Category::RdJpeg => Some(Format::Jpeg),
            Category::RdWebP => Some(Format::WebP),
            Category::RdAvif => Some(Format::Avif),
            _ => None,
        }
    }

    /// What `bench/sharp/encode.js` calls the category's format.
    pub fn sharp_format(self) -> Option<&'static str> {
        match self {
            Category::RdPng => Some("png-palette"),
            Category::RdJpeg => Some("jpeg"),
            Category::RdWebP => Some("webp"),
            Category::RdAvif => Some("avif"),
            _ => None,
        }
    }

    /// Our settings at one point of a rate–distortion category: `quality=0-N` (PNG never gives
    /// up), our defaults (no quality), or a target SSIMULACRA2. Metadata is stripped (a profile
    /// converted into the pixels first), as every peer of these categories writes none: the
    /// curves compare encoders, not what metadata each keeps.
    pub fn rd_options(self, point: RdSetting) -> Option<Options> {
        let format = self.rd_format()?;
        let base = Options {
            score: false,
            mode: Mode::Lossy,
            metadata: MetadataPolicy::Strip,
            format: OutputFormat::To(format),
            ..Options::default()
        };
        Some(match point {
            RdSetting::Quality(q) => Options { quality: Some(Quality::new(0, q)), ..base },
            RdSetting::Default => base,
            RdSetting::Target(t) => Options { target_quality: Some(t), ..base },
        })
    }

    /// What `{to}` in a peer's arguments stands for: the format a rate–distortion category
    /// writes, or `original` when the input already is in it.
    fn convert_to(self, input: Kind) -> &'static str {
        match (self, input) {
            (Category::RdPng, Kind::Png)
            | (Category::RdJpeg, Kind::Jpeg)
            | (Category::RdWebP, Kind::WebP)
            | (Category::RdAvif, Kind::Avif) => "original",
            (Category::RdPng, _) => "png",
            (Category::RdJpeg, _) => "jpeg",
            (Category::RdWebP, _) => "webp",
            (Category::RdAvif, _) => "avif",
            _ => "original",
        }
    }

    /// The categories that time exactly what the HTTP service runs.
    pub fn is_service(self) -> bool {
        matches!(self, Category::ServiceLossy | Category::ServiceLossyScored | Category::ServiceLossless)
    }

    fn from_id(id: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.id() == id)
    }

    /// Lossy categories get a SSIMULACRA2 score for every output.
    pub fn is_lossy(self) -> bool {
        !matches!(self, Category::LosslessPng | Category::JpegLossless | Category::ServiceLossless)
    }

    /// The harness scores every output of lossy categories; the scored service category makes the
    /// same pixels as the unscored one and is there for its CPU time only.
    fn scored_by_harness(self) -> bool {
        self.is_lossy() && self != Category::ServiceLossyScored
    }

    /// The categories of videos and animated GIFs, compressed by `compressor_video` and scored
    /// on sampled frames; they run only when named with `--categories`.
    pub fn is_video(self) -> bool {
        matches!(self, Category::GifMp4 | Category::VideoMp4 | Category::VideoWebM)
    }

    /// The container our video categories write.
    pub fn video_format(self) -> Option<compressor_video::VideoFormat> {
        match self {
            Category::GifMp4 | Category::VideoMp4 => Some(compressor_video::VideoFormat::Mp4),
            Category::VideoWebM => Some(compressor_video::VideoFormat::WebM),
            _ => None,
        }
    }

    /// Categories where ours is also run at the quality that matches the first peer's score.
    pub fn matches_score(self) -> bool {
        matches!(self, Category::VideoMp4 | Category::VideoWebM)
    }

    pub fn is_resize(self) -> bool {
        matches!(self, Category::Resize1280 | Category::ResizeCover300)
    }

    /// The box a resize category fits into, and whether it covers it.
    fn resize_box(self) -> Option<(u32, Option<u32>, bool)> {
        match self {
            Category::Resize1280 => Some((1280, None, false)),
            Category::ResizeCover300 => Some((300, Some(300), true)),
            _ => None,
        }
    }

    /// The extension peers must give their output file (tools that pick the format from it).
    fn output_extension(self) -> &'static str {
        match self {
            _ if self.is_resize() => "webp",
            Category::GifMp4 => "gif",
            Category::VideoMp4 => "mp4",
            Category::VideoWebM => "webm",
            _ => "out",
        }
    }

    /// Which inputs the category applies to; resizing is measured on images wider (as displayed)
    /// than 1280 px, where it is what a user asks for.
    fn applies_to_image(self, input: Kind, upright_width: Option<u32>) -> bool {
        self.applies_to(input) && (!self.is_resize() || upright_width.is_some_and(|w| w > 1280))
    }

    /// Which kinds of input the category applies to.
    fn applies_to(self, input: Kind) -> bool {
        match self {
            Category::LosslessPng | Category::LossyPng => input == Kind::Png,
            Category::ServiceLossy | Category::ServiceLossyScored | Category::ServiceLossless => input == Kind::Png,
            Category::JpegLossless | Category::JpegLossy => input == Kind::Jpeg,
            Category::WebP | Category::Avif => matches!(input, Kind::Png | Kind::Jpeg),
            Category::Resize1280 | Category::ResizeCover300 => matches!(input, Kind::Png | Kind::Jpeg),
            Category::GifMp4 => input == Kind::Gif,
            Category::VideoMp4 | Category::VideoWebM => input == Kind::Video,
            Category::RdPng => input == Kind::Png,
            Category::RdJpeg | Category::RdWebP | Category::RdAvif => matches!(input, Kind::Png | Kind::Jpeg),
        }
    }

    /// Our engine's settings for this category (scores are computed by the harness instead, but
    /// for the scored service category, which measures what the engine's own score costs).
    /// The video categories use [`Category::video_options`] instead.
    pub fn engine_options(self) -> Options {
        let base = Options { score: false, ..Options::default() };
        match self {
            Category::ServiceLossy => compressor_engine::presets::legacy(Mode::Lossy),
            Category::ServiceLossyScored => Options { score: true, ..compressor_engine::presets::legacy(Mode::Lossy) },
            Category::ServiceLossless => compressor_engine::presets::legacy(Mode::Lossless),
            Category::LosslessPng | Category::JpegLossless => Options { mode: Mode::Lossless, ..base },
            Category::LossyPng => Options { mode: Mode::Lossy, ..base },
            Category::JpegLossy => Options { mode: Mode::Lossy, quality: Some(Quality::new(0, 80)), ..base },
            Category::WebP => Options { format: OutputFormat::To(Format::WebP), quality: Some(Quality::new(0, 80)), ..base },
            Category::Avif => Options { format: OutputFormat::To(Format::Avif), ..base },
            Category::Resize1280 | Category::ResizeCover300 => {
                let (width, height, cover) = self.resize_box().expect("a resize category");
                let fit = if cover { Fit::Cover } else { Fit::Scale };
                Options {
                    format: OutputFormat::To(Format::WebP),
                    quality: Some(Quality::new(0, 80)),
                    metadata: MetadataPolicy::Strip,
                    resize: Some(Resize { width: Some(width), height, fit, enlarge: false }),
                    ..base
                }
            }
            Category::GifMp4 | Category::VideoMp4 | Category::VideoWebM => base,
            Category::RdPng | Category::RdJpeg | Category::RdWebP | Category::RdAvif => {
                self.rd_options(RdSetting::Default).expect("a rate-distortion category")
            }
        }
    }

    /// `compressor_video`'s settings for a video category: its defaults (audio kept), at
    /// `quality` when one is given. Scratch files go to `temp_dir`.
    pub fn video_options(self, quality: Option<u8>, temp_dir: Option<PathBuf>) -> Option<compressor_video::Options> {
        let format = self.video_format()?;
        Some(compressor_video::Options { format, quality, temp_dir, ..compressor_video::Options::default() })
    }

    /// How our method is named in the report.
    pub fn ours_label(self) -> &'static str {
        match self {
            Category::LosslessPng => "ours (lossless, effort 2)",
            Category::LossyPng => "ours (lossy, q 65-80)",
            Category::JpegLossless => "ours (lossless)",
            Category::JpegLossy => "ours (lossy, q 80)",
            Category::WebP => "ours (WebP q 80)",
            Category::Avif => "ours (AVIF default q)",
            Category::ServiceLossy => "ours (legacy route: lossy, q 60-80, no score)",
            Category::ServiceLossyScored => "ours (lossy, q 60-80, score computed)",
            Category::ServiceLossless => "ours (legacy route: lossless, effort 1)",
            Category::Resize1280 => "ours (--width 1280 --format webp -q 80 --metadata strip)",
            Category::ResizeCover300 => "ours (--width 300 --height 300 --fit cover --format webp -q 80 --metadata strip)",
            Category::GifMp4 | Category::VideoMp4 => {
                "ours (--format mp4, default quality: libx264 CRF 23 preset medium, yuv420p, even sides, vfr, +faststart)"
            }
            Category::VideoWebM => "ours (--format webm, default quality: libvpx-vp9 CRF 32 -b:v 0, good, cpu-used 2, row-mt)",
            Category::RdPng => "ours (--format png --quality 0-N --metadata strip)",
            Category::RdJpeg => "ours (--format jpeg --quality N --metadata strip)",
            Category::RdWebP => "ours (--format webp --quality N --metadata strip)",
            Category::RdAvif => "ours (--format avif --quality N --metadata strip)",
        }
    }
}

/// One setting of ours in a rate–distortion category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RdSetting {
    /// A step of the ladder: `quality=N` (`0-N` for PNG).
    Quality(u8),
    /// Our defaults for the format.
    Default,
    /// `target_quality`: the smallest output whose SSIMULACRA2 reaches it.
    Target(f64),
}

impl RdSetting {
    /// How the worker is told (`rd-png@80`, `rd-png@default`, `rd-png@t84.25`).
    fn spec(self) -> String {
        match self {
            RdSetting::Quality(q) => q.to_string(),
            RdSetting::Default => "default".into(),
            RdSetting::Target(t) => format!("t{t}"),
        }
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "default" => RdSetting::Default,
            _ => match text.strip_prefix('t') {
                Some(t) => RdSetting::Target(t.parse().context("target after @t")?),
                None => RdSetting::Quality(text.parse().context("quality after @")?),
            },
        })
    }
}

/// The method name of our engine in records.
pub const OURS: &str = "ours";

/// The suffix of a tool's method name at its default setting in the rate–distortion categories
/// (`ours-default`, `sharp-default`); its ladder points are named by the tool alone.
pub const DEFAULT_SUFFIX: &str = "-default";

/// Ours again, at the quality whose score matches the category's first peer (video categories).
pub const OURS_MATCHED: &str = "ours-matched";

/// The animated GIF as it is: what converting it is compared with (no work, no time).
pub const INPUT_GIF: &str = "input-gif";

/// What a run does (the command line's `compressor bench` flags fill it); [`Settings::default`]
/// holds the defaults those flags show.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Corpus folders, walked recursively; PNG and JPEG files are benchmarked, and animated GIFs
    /// and videos by the video categories (repeatable)
    pub corpus: Vec<PathBuf>,
    /// Peers to run, comma-separated ids (default: all); ours always runs.
    /// Ids: oxipng-o2, oxipng-o4, optipng-o2, go-png, pngquant-65-80-s4, pngquant-60-80, jpegtran, cjpeg-q80, cwebp-q80, avifenc,
    /// vipsthumbnail-1280, vipsthumbnail-cover-300, gifsicle-o3, ffmpeg-x264-crf23, ffmpeg-svtav1;
    /// in the rd-* categories: sharp, pngquant, cjpeg, cwebp, avifenc, caesiumclt, rimage
    pub tools: Vec<String>,
    /// Categories to run, comma-separated (default: all but the video ones): lossless-png, lossy-png, jpeg-lossless,
    /// jpeg-lossy, webp, avif, service-lossy, service-lossy-scored, service-lossless, resize-1280, resize-cover-300;
    /// and, only when named, gif-mp4, video-mp4, video-webm (the last two on clips generated with ffmpeg),
    /// and the rate–distortion sweeps rd-png, rd-jpeg, rd-webp, rd-avif (BD-rates against sharp and the other peers)
    pub categories: Vec<String>,
    /// Timed runs per (image, method); the median is reported. Default 3 (1 with --quick)
    pub runs: Option<usize>,
    /// Write the full results (every record, summaries, goals) as JSON here
    pub json: Option<PathBuf>,
    /// Write the Markdown report here (default: standard output)
    pub markdown: Option<PathBuf>,
    /// Write the SVG plot (bytes saved against time, per method and category) here
    pub plot: Option<PathBuf>,
    /// A few small images per corpus folder and one run: a smoke test
    pub quick: bool,
    /// Run nothing: render --markdown/--plot from the JSON of an earlier run
    pub from_json: Option<PathBuf>,
    /// The Go-style re-encoder (default: bench/go-png/go-png if it exists, else go-png on PATH)
    pub go_png: Option<PathBuf>,
    /// Look for peers here instead of $PATH (a PATH-style list)
    pub search_path: Option<OsString>,
    /// Program that runs our engine as `PROG --engine-worker CATEGORY IN OUT` (default: this program)
    pub engine_exe: Option<PathBuf>,
    /// Internal: compress IN to OUT with our settings for CATEGORY and exit
    pub engine_worker: Option<Vec<PathBuf>>,
    /// Internal: start measured children on request (see `peers::Spawner`)
    pub spawner: bool,
    /// sharp's job script, run by node once for the whole run (default: bench/sharp/encode.js,
    /// installed by scripts/install-bench-tools.sh)
    pub sharp: Option<PathBuf>,
    /// Write one SVG per rate–distortion category (bytes relative to the input against
    /// SSIMULACRA2, one line per tool) into this folder, as rd-png.svg, rd-jpeg.svg, …
    pub rd_plots: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            corpus: vec![PathBuf::from("../shared/corpus/png_real"), PathBuf::from("../shared/corpus/photos_jpeg")],
            tools: Vec::new(),
            categories: Vec::new(),
            runs: None,
            json: None,
            markdown: None,
            plot: None,
            quick: false,
            from_json: None,
            go_png: None,
            search_path: None,
            engine_exe: None,
            engine_worker: None,
            spawner: false,
            sharp: None,
            rd_plots: None,
        }
    }
}

/// Runs the benchmark (or, with the hidden `--engine-worker`, one engine call).
pub fn run(args: Settings) -> anyhow::Result<()> {
    if let Some(w) = &args.engine_worker {
        return engine_worker(&w[0], &w[1], &w[2]);
    }
    if args.spawner {
        return peers::serve_spawner();
    }
    let report = match &args.from_json {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?)
            .with_context(|| format!("parse {}", path.display()))?,
        None => bench(&args)?,
    };
    let markdown = report::markdown(&report);
    match &args.markdown {
        Some(path) => std::fs::write(path, &markdown).with_context(|| format!("write {}", path.display()))?,
        None => print!("{markdown}"),
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n").with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::svg(&report, path)?;
    }
    if let Some(dir) = &args.rd_plots {
        plot::rd_svgs(&report, dir)?;
    }
    Ok(())
}

/// The engine worker: one compression, output written to `out`. A video category may carry a
/// quality (`video-mp4@57`); the video worker prints the method it used on standard error.
fn engine_worker(category: &Path, input: &Path, out: &Path) -> anyhow::Result<()> {
    let spec = category.to_str().context("unknown category")?;
    let (id, quality) = match spec.split_once('@') {
        Some((id, q)) => (id, Some(q)),
        None => (spec, None),
    };
    let category = Category::from_id(id).context("unknown category")?;
    if category.is_rd() {
        let setting = spec.split_once('@').map_or(Ok(RdSetting::Default), |(_, s)| RdSetting::parse(s))?;
        let options = category.rd_options(setting).context("a rate-distortion category")?;
        let data = std::fs::read(input).with_context(|| format!("read {}", input.display()))?;
        let result = compressor_engine::compress(&data, &options)?;
        std::fs::write(out, &result.data).with_context(|| format!("write {}", out.display()))?;
        return Ok(());
    }
    let quality = quality.map(|q| q.parse::<u8>().context("quality after @")).transpose()?;
    if let Some(options) = category.video_options(quality, out.parent().map(Path::to_path_buf)) {
        let done = compressor_video::compress(input, &options)?;
        match done.output {
            Some(file) => {
                file.persist(out).with_context(|| format!("write {}", out.display()))?;
            }
            None => {
                std::fs::copy(input, out).with_context(|| format!("write {}", out.display()))?;
            }
        }
        eprintln!("method={}", done.report.method);
        return Ok(());
    }
    let data = std::fs::read(input).with_context(|| format!("read {}", input.display()))?;
    let result = compressor_engine::compress(&data, &category.engine_options())?;
    std::fs::write(out, &result.data).with_context(|| format!("write {}", out.display()))?;
    Ok(())
}

/// How our engine is started in a child process.
struct EngineCommand {
    program: PathBuf,
    prefix: Vec<OsString>,
}

impl EngineCommand {
    fn new(args: &Settings) -> anyhow::Result<Self> {
        if let Some(p) = &args.engine_exe {
            return Ok(EngineCommand { program: p.clone(), prefix: vec![] });
        }
        // `compressor bench …` re-invokes `compressor bench --engine-worker …`; a standalone
        // `compressor-bench …` re-invokes itself without the subcommand.
        let program = std::env::current_exe().context("cannot find this program to run the engine worker")?;
        let prefix = if std::env::args().nth(1).as_deref() == Some("bench") { vec!["bench".into()] } else { vec![] };
        Ok(EngineCommand { program, prefix })
    }
}

/// One input image found in the corpus.
struct Input {
    path: PathBuf,
    /// Path relative to the corpus folder's parent, for reports.
    name: String,
    kind: Kind,
    bytes: u64,
    /// GIFs and videos (with the video categories): the frames' times and the size.
    video: Option<video::Timeline>,
}

impl Input {
    /// At least two frames and 16×16 pixels: what the GIF category takes.
    fn is_animated(&self) -> bool {
        self.video.as_ref().is_some_and(|t| t.frames() >= 2 && t.width.min(t.height) >= 16)
    }

    /// Whether `category` runs on this input.
    fn applies(&self, category: Category, upright_width: Option<u32>) -> bool {
        match category {
            Category::GifMp4 => self.kind == Kind::Gif && self.is_animated(),
            _ if category.is_video() => category.applies_to(self.kind) && self.video.is_some(),
            _ => category.applies_to_image(self.kind, upright_width),
        }
    }
}

/// The PNG and JPEG files of the corpus folders, and with `ffprobe` (the video categories) its
/// GIFs and videos.
fn collect_inputs(args: &Settings, ffprobe: Option<&Path>) -> anyhow::Result<Vec<Input>> {
    let mut all = Vec::new();
    for root in &args.corpus {
        if !root.is_dir() {
            bail!("corpus folder {} does not exist", root.display());
        }
        let mut found = Vec::new();
        walk(root, &mut |path| {
            let mut head = [0u8; 16];
            let n = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
            let kind = measure::kind(&head[..n]);
            let wanted = match kind {
                Some(Kind::Png | Kind::Jpeg) => true,
                Some(Kind::Gif | Kind::Video) => ffprobe.is_some(),
                _ => false,
            };
            if let (Some(kind), true) = (kind, wanted) {
                let bytes = path.metadata().map(|m| m.len()).unwrap_or(0);
                let base = root.file_name().map(PathBuf::from).unwrap_or_default();
                let name = base.join(path.strip_prefix(root).unwrap_or(path)).display().to_string();
                let video = match (kind, ffprobe) {
                    (Kind::Gif | Kind::Video, Some(ffprobe)) => {
                        video::timeline(ffprobe, path).map_err(|e| eprintln!("bench: {name}: not benchmarked as a video: {e:#}")).ok()
                    }
                    _ => None,
                };
                found.push(Input { path: path.to_path_buf(), name, kind, bytes, video });
            }
        })?;
        found.sort_by(|a, b| a.name.cmp(&b.name));
        if args.quick {
            // The smallest few of each kind keeps a smoke run well under a minute (GIFs: of the
            // animated ones).
            found.retain(|i| i.kind != Kind::Gif || i.is_animated());
            found.sort_by_key(|i| i.bytes);
            let mut seen: Vec<(Kind, usize)> = Vec::new();
            found.retain(|i| {
                let n = match seen.iter_mut().find(|(k, _)| *k == i.kind) {
                    Some((_, n)) => n,
                    None => {
                        seen.push((i.kind, 0));
                        &mut seen.last_mut().expect("pushed").1
                    }
                };
                *n += 1;
                *n <= 3
            });
        }
        all.extend(found);
    }
    Ok(all)
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, f)?;
        } else if path.is_file() {
            f(&path);
        }
    }
    Ok(())
}

/// A peer found on this machine.
struct Available {
    peer: Peer,
    program: PathBuf,
}

/// A peer that will not be run, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub id: String,
    pub category: Category,
    pub command: String,
    pub reason: String,
}

/// Runs everything and gathers the records; used by [`run`] and the tests: the categories and
/// tools asked for, the peers found, the inputs (with generated clips for the video categories),
/// then every input through every category that applies to it.
pub fn bench(args: &Settings) -> anyhow::Result<Report> {
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let categories = categories(args)?;
    let search_path = args.search_path.clone().or_else(|| std::env::var_os("PATH")).unwrap_or_default();
    let (available, skipped) = find_peers(args, &categories, &search_path);
    let vips = peers::find("vips", &search_path);
    let djpeg = peers::find("djpeg", &search_path);
    let video_tools = if categories.iter().any(|c| c.is_video()) { Some(video::Tools::find(&search_path)?) } else { None };
    let engine = EngineCommand::new(args)?;
    // Started while this process is still small: children forked from it report their own peak RSS.
    let mut spawner = peers::Spawner::start(&engine.program, &engine.prefix)?;
    let mut inputs = collect_inputs(args, video_tools.as_ref().map(|t| t.ffprobe.as_path()))?;
    let work = tempfile::tempdir()?;
    let clips = match &video_tools {
        Some(tools) if categories.iter().any(|c| matches!(c, Category::VideoMp4 | Category::VideoWebM)) => {
            generated_clips(args, tools, work.path(), &mut inputs)?
        }
        _ => Vec::new(),
    };
    if inputs.is_empty() {
        bail!("no PNG or JPEG files (nor, for the video categories, GIFs or videos) in {:?}", args.corpus);
    }

    let mut skipped = skipped;
    let sharp = start_sharp(args, &categories, &search_path, &mut skipped);
    let mut records = Vec::new();
    let mut runner = Runner { engine: &engine, spawner: &mut spawner, djpeg: djpeg.as_deref(), runs, work: work.path(), sharp };
    for (n, input) in inputs.iter().enumerate() {
        if matches!(input.kind, Kind::Gif | Kind::Video) {
            let applicable: Vec<Category> = categories.iter().copied().filter(|&c| input.applies(c, None)).collect();
            if let (false, Some(tools)) = (applicable.is_empty(), &video_tools) {
                eprintln!("bench: [{}/{}] {} ({} bytes)", n + 1, inputs.len(), input.name, input.bytes);
                bench_video(input, &applicable, &available, &mut runner, tools, &mut records)?;
            }
            continue;
        }
        eprintln!("bench: [{}/{}] {} ({} bytes)", n + 1, inputs.len(), input.name, input.bytes);
        bench_image(input, &categories, &available, vips.as_deref(), &mut runner, &mut records)?;
    }
    let sharp_versions = runner.sharp.as_ref().map(|s| s.versions.clone());
    let tools = available.iter().map(|a| (a.peer.clone(), a.program.clone())).collect();
    let mut report = report::build(runs, args, tools, skipped, records, clips);
    if let Some(versions) = sharp_versions {
        report.sharp = Some(versions);
    }
    Ok(report)
}

/// sharp's node process, when a rate–distortion category runs and sharp is not left out by
/// `--tools`; when it cannot start, sharp is listed as skipped in each of those categories.
fn start_sharp(args: &Settings, categories: &[Category], search_path: &OsString, skipped: &mut Vec<Skipped>) -> Option<peers::Sharp> {
    let rd: Vec<Category> = categories.iter().copied().filter(|c| c.is_rd()).collect();
    if rd.is_empty() || (!args.tools.is_empty() && !args.tools.iter().any(|t| t == peers::SHARP)) {
        return None;
    }
    let script = args.sharp.clone().unwrap_or_else(|| PathBuf::from("bench/sharp/encode.js"));
    let started = match peers::find("node", search_path) {
        None => Err("node not found".to_string()),
        Some(_) if !script.is_file() => Err(format!("{} not found", script.display())),
        Some(node) => peers::Sharp::start(&node, &script).map_err(|e| format!("{e:#} (install it with scripts/install-bench-tools.sh)")),
    };
    match started {
        Ok(sharp) => Some(sharp),
        Err(reason) => {
            for category in rd {
                skipped.push(Skipped {
                    id: peers::SHARP.into(),
                    category,
                    command: format!("node {} (one process for the whole run)", script.display()),
                    reason: reason.clone(),
                });
            }
            None
        }
    }
}

/// The categories asked for (every image category by default), and a check of the tool names.
fn categories(args: &Settings) -> anyhow::Result<Vec<Category>> {
    let mut known: Vec<&str> = peers::all().iter().chain(peers::rd_peers().iter()).map(|p| p.id).collect();
    known.push(peers::SHARP);
    if let Some(bad) = args.tools.iter().find(|t| !known.contains(&t.as_str())) {
        bail!("unknown tool {bad:?}; known: {}", known.join(", "));
    }
    if args.categories.is_empty() {
        return Ok(Category::ALL.into_iter().filter(|c| !c.is_video() && !c.is_rd()).collect());
    }
    args.categories.iter().map(|c| Category::from_id(c).with_context(|| format!("unknown category {c:?}"))).collect()
}

/// The peers of those categories (and tools, when named) found on `search_path`, and those that
/// will not run, with why.
fn find_peers(args: &Settings, categories: &[Category], search_path: &std::ffi::OsString) -> (Vec<Available>, Vec<Skipped>) {
    let go_png = args.go_png.clone().or_else(|| Some(PathBuf::from("bench/go-png/go-png")).filter(|p| p.is_file()));
    let mut available = Vec::new();
    let mut skipped = Vec::new();
    for peer in peers::all().into_iter().chain(peers::rd_peers()) {
        if !categories.contains(&peer.category) || (!args.tools.is_empty() && !args.tools.iter().any(|t| t == peer.id)) {
            continue;
        }
        let found = match (peer.id, &go_png) {
            ("go-png", Some(p)) => peers::find(&p.to_string_lossy(), search_path),
            _ => peers::find(peer.program, search_path),
        };
        let djpeg_missing = peer.needs_ppm && peers::find("djpeg", search_path).is_none();
        let unsupported = found.as_ref().filter(|_| peers::needs_trial(&peer)).and_then(|program| trial_encode(&peer, program).err());
        if let Some(reason) = unsupported {
            skipped.push(Skipped { id: peer.id.into(), category: peer.category, command: peer.command_line(), reason });
            continue;
        }
        match found {
            Some(program) if !djpeg_missing => available.push(Available { peer, program }),
            _ => {
                let what = if djpeg_missing && found.is_some() { "djpeg" } else { peer.program };
                let hint = match peer.id {
                    "go-png" => " (build it with scripts/install-bench-tools.sh)",
                    peers::CAESIUMCLT | peers::RIMAGE => " (install it with scripts/install-bench-tools.sh --rust-peers)",
                    _ => "",
                };
                skipped.push(Skipped {
                    id: peer.id.into(),
                    category: peer.category,
                    command: peer.command_line(),
                    reason: format!("{what} not found{hint}"),
                });
            }
        }
    }
    (available, skipped)
}

/// The clips the video categories run on, made here from the corpus's first large photo (the
/// corpus has no videos) and added to `inputs`.
fn generated_clips(
    args: &Settings,
    tools: &video::Tools,
    work: &Path,
    inputs: &mut Vec<Input>,
) -> anyhow::Result<Vec<report::GeneratedClip>> {
    let photo = clip_photo(args);
    let mut clips = Vec::new();
    for clip in video::make_clips(&tools.ffmpeg, &work.join("clips"), photo.as_deref(), args.quick)? {
        let name = format!("generated/{}", clip.name);
        let bytes = clip.path.metadata()?.len();
        let timeline = video::timeline(&tools.ffprobe, &clip.path)?;
        eprintln!("bench: made {name} ({bytes} bytes): {}", clip.description);
        inputs.push(Input { path: clip.path, name: name.clone(), kind: Kind::Video, bytes, video: Some(timeline) });
        clips.push(report::GeneratedClip { name, description: clip.description });
    }
    Ok(clips)
}

/// One image through every category that applies to it: ours and each peer run, each output
/// scored against the input (or, for resizes, against a reference of its own geometry).
fn bench_image(
    input: &Input,
    categories: &[Category],
    available: &[Available],
    vips: Option<&Path>,
    runner: &mut Runner,
    records: &mut Vec<Record>,
) -> anyhow::Result<()> {
    let data = std::fs::read(&input.path)?;
    let info = compressor_engine::probe(&data).ok();
    let pixels = info.as_ref().map(|i| u64::from(i.width) * u64::from(i.height));
    let upright_width = info.as_ref().map(|i| if (5..=8).contains(&measure::orientation(&data)) { i.height } else { i.width });
    let mut reference: Option<Option<Rgba>> = None;
    let mut resize_references = measure::ResizeReferences::new(vips, &input.path);
    for &category in categories.iter().filter(|&&c| input.applies(c, upright_width)) {
        let peers: Vec<&Available> = available.iter().filter(|a| a.peer.category == category).collect();
        if category.is_rd() {
            let reference = reference.get_or_insert_with(|| measure::decode(&data).ok());
            let Some(reference) = reference.as_ref() else {
                eprintln!("bench: {}: cannot decode, left out of {}", input.name, category.id());
                continue;
            };
            if category == Category::RdJpeg && reference.data.chunks_exact(4).any(|p| p[3] < 255) {
                // JPEG holds no transparency: every tool flattens it its own way and the score
                // (against the transparent input) measures the flattening, not the encoder.
                eprintln!("bench: {}: has transparency, left out of {}", input.name, category.id());
                continue;
            }
            let start = records.len();
            bench_rd(category, input, reference, &peers, runner, records)?;
            for record in &mut records[start..] {
                record.pixels = pixels;
            }
            continue;
        }
        for (mut record, output) in run_category(category, input, &peers, runner)? {
            record.pixels = pixels;
            if let (Some((width, height, cover)), Some(output)) = (category.resize_box(), &output) {
                // Each tool against a reference of its own geometry: vipsthumbnail scales both
                // axes by one factor, ours maps the image exactly onto the output's pixels.
                let uniform = cover || record.method != OURS;
                record.score = resize_references.score(output, (width, height), cover, uniform, &mut record.note);
            } else if category.scored_by_harness()
                && let Some(output) = output
            {
                let reference = reference.get_or_insert_with(|| measure::decode(&data).ok());
                record.score = reference.as_ref().and_then(|r| score(r, &output, &mut record.note));
            }
            records.push(record);
        }
    }
    Ok(())
}

/// The photo the generated clips pan over: the first JPEG (by path) of the corpus folders at
/// least 3000 pixels wide and without an EXIF rotation.
fn clip_photo(args: &Settings) -> Option<PathBuf> {
    let mut jpegs = Vec::new();
    for root in &args.corpus {
        walk(root, &mut |path| {
            let mut head = [0u8; 4];
            let n = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
            if measure::kind(&head[..n]) == Some(Kind::Jpeg) {
                jpegs.push(path.to_path_buf());
            }
        })
        .ok()?;
    }
    jpegs.into_iter().find(|path| {
        let Ok(data) = std::fs::read(path) else { return false };
        compressor_engine::probe(&data).is_ok_and(|info| info.width >= 3000) && measure::orientation(&data) == 1
    })
}

/// The video categories on one GIF or video: ours and the peers interleaved as for images, each
/// output scored on sampled frames; the GIF itself as a method of its own; and, where the score
/// is to be matched, ours again at the quality that reaches the first peer's score.
fn bench_video(
    input: &Input,
    categories: &[Category],
    available: &[Available],
    r: &mut Runner,
    tools: &video::Tools,
    records: &mut Vec<Record>,
) -> anyhow::Result<()> {
    let timeline = input.video.as_ref().context("a video input without its timeline")?;
    let pixels = Some(u64::from(timeline.width) * u64::from(timeline.height));
    let mut reference: Option<Result<video::Reference, String>> = None;
    for &category in categories {
        let peers: Vec<&Available> = available.iter().filter(|a| a.peer.category == category).collect();
        let outs = run_category(category, input, &peers, r)?;
        let mut target: Option<(String, f64)> = None;
        let mut ours: Option<Record> = None;
        for (mut record, output) in outs {
            record.pixels = pixels;
            record.duration_s = Some(timeline.duration);
            if let Some(output) = output {
                score_video(&mut record, &output, input, tools, &mut reference, r.work);
            }
            if record.method == OURS {
                ours = Some(record.clone());
            } else if target.is_none()
                && let Some(score) = record.score
            {
                target = Some((record.method.clone(), score));
            }
            records.push(record);
        }
        if category == Category::GifMp4 {
            records.push(Record {
                image: input.name.clone(),
                input_bytes: input.bytes,
                category,
                method: INPUT_GIF.into(),
                status: Status::Ok,
                bytes: Some(input.bytes),
                wall_s: None,
                cpu_s: None,
                maxrss_kib: None,
                samples: 0,
                score: Some(100.0),
                note: None,
                pixels,
                duration_s: Some(timeline.duration),
                score_min: Some(100.0),
                setting: None,
                quality: None,
            });
        }
        if category.matches_score()
            && let Some((peer, target)) = target
        {
            let matched = match_score(category, input, (&peer, target), ours.as_ref(), tools, &mut reference, r)?;
            records.push(matched);
        }
    }
    Ok(())
}

/// Scores one output of `input` on sampled frames (the source's frames decoded once).
fn score_video(
    record: &mut Record,
    output: &[u8],
    input: &Input,
    tools: &video::Tools,
    reference: &mut Option<Result<video::Reference, String>>,
    work: &Path,
) {
    let path = work.join("scored.video");
    if let Err(e) = std::fs::write(&path, output) {
        record.note.get_or_insert_with(|| format!("score n/a: {e}"));
        return;
    }
    let reference =
        reference.get_or_insert_with(|| video::Reference::new(tools, &input.path, video::SAMPLES).map_err(|e| format!("{e:#}")));
    match reference {
        Ok(reference) => match reference.score(&path) {
            Ok(s) => {
                record.score = Some(s.mean);
                record.score_min = Some(s.min);
            }
            Err(e) => {
                record.note.get_or_insert_with(|| format!("score n/a: {e:#}"));
            }
        },
        Err(e) => {
            record.note.get_or_insert_with(|| format!("score n/a: the source: {e}"));
        }
    }
    std::fs::remove_file(&path).ok();
}

/// Qualities tried by the matched-score search, at most.
pub(crate) const MATCH_STEPS: usize = 5;

/// Ours at the lowest quality (of a bisection over 20-100, [`MATCH_STEPS`] encodes, plus our
/// default run) whose mean SSIMULACRA2 reaches `target`, the peer's: the bytes "at equal score".
/// Each encode is one measured run of the worker; the chosen one's costs are reported.
fn match_score(
    category: Category,
    input: &Input,
    (peer, target): (&str, f64),
    ours: Option<&Record>,
    tools: &video::Tools,
    reference: &mut Option<Result<video::Reference, String>>,
    r: &mut Runner,
) -> anyhow::Result<Record> {
    // (bytes, record) of the smallest output reaching the target so far.
    let mut best: Option<Record> = ours.filter(|o| o.score.is_some_and(|s| s >= target) && o.bytes.is_some()).cloned().map(|mut o| {
        o.setting = Some(format!("default ({})", o.setting.as_deref().unwrap_or("?")));
        o
    });
    let (mut lo, mut hi) = (20u8, 100u8);
    let mut tried = Vec::new();
    let mut evaluate = |q: u8, r: &mut Runner| -> anyhow::Result<Record> {
        let outcome = run_ours_at(category, Some(q), input, r)?;
        let setting = outcome.info.clone();
        let (mut record, output) = summarise(category, input, OURS_MATCHED, vec![outcome]);
        record.duration_s = input.video.as_ref().map(|t| t.duration);
        record.pixels = input.video.as_ref().map(|t| u64::from(t.width) * u64::from(t.height));
        record.setting = Some(format!("quality {q} ({})", setting.as_deref().unwrap_or("?")));
        if let Some(output) = output {
            score_video(&mut record, &output, input, tools, reference, r.work);
        }
        tried.push(format!("q {q}: {}", record.score.map_or("n/a".into(), |s| format!("{s:.2}"))));
        Ok(record)
    };
    let consider = |record: Record, best: &mut Option<Record>| {
        let reached = record.score.is_some_and(|s| s >= target);
        if reached && best.as_ref().is_none_or(|b| record.bytes < b.bytes) {
            *best = Some(record);
        }
        reached
    };
    for _ in 0..MATCH_STEPS {
        if hi - lo <= 1 {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        let record = evaluate(mid, r)?;
        if consider(record, &mut best) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    if best.is_none() {
        let record = evaluate(100, r)?;
        consider(record, &mut best);
    }
    let how = format!("target {peer}'s {target:.2}; tried {}", tried.join(", "));
    Ok(match best {
        Some(mut record) => {
            record.method = OURS_MATCHED.into();
            record.note = Some(how);
            record
        }
        None => Record {
            image: input.name.clone(),
            input_bytes: input.bytes,
            category,
            method: OURS_MATCHED.into(),
            status: Status::Failed,
            bytes: None,
            wall_s: None,
            cpu_s: None,
            maxrss_kib: None,
            samples: 0,
            score: None,
            note: Some(format!("no quality reached the score: {how}")),
            pixels: input.video.as_ref().map(|t| u64::from(t.width) * u64::from(t.height)),
            duration_s: input.video.as_ref().map(|t| t.duration),
            score_min: None,
            setting: None,
            quality: None,
        },
    })
}

/// SSIMULACRA2 of an output against its input, both as displayed (oriented, colour-managed):
/// the same rule for every tool.
fn score(reference: &Rgba, output: &[u8], note: &mut Option<String>) -> Option<f64> {
    let decoded = match measure::decode(output) {
        Ok(d) => d,
        Err(e) => {
            note.get_or_insert_with(|| format!("score n/a: {e:#}"));
            return None;
        }
    };
    let score = measure::ssimulacra2(reference, &decoded);
    if score.is_none() {
        note.get_or_insert_with(|| "score n/a: output size differs from the input's".into());
    }
    score
}

/// One timed execution's outcome.
struct Outcome {
    usage: peers::Usage,
    /// Output bytes; `None` when the tool failed.
    output: Option<Vec<u8>>,
    kept_input: bool,
    error: Option<String>,
    /// What the video worker said it ran (`h264-crf23`).
    info: Option<String>,
}

/// What every timed execution needs.
struct Runner<'a> {
    engine: &'a EngineCommand,
    spawner: &'a mut peers::Spawner,
    djpeg: Option<&'a Path>,
    runs: usize,
    /// Scratch folder for outputs.
    work: &'a Path,
    /// sharp's process, for the rate–distortion categories.
    sharp: Option<peers::Sharp>,
}

/// Runs ours and each peer `runs` times, interleaved: ours, peer 1, ours, peer 2, … per run.
/// Returns one record per method with the output bytes (for scoring).
fn run_category(category: Category, input: &Input, peers: &[&Available], r: &mut Runner) -> anyhow::Result<Vec<(Record, Option<Vec<u8>>)>> {
    let ppm = r.work.join("input.pnm");
    if let Some(djpeg) = r.djpeg.filter(|_| peers.iter().any(|p| p.peer.needs_ppm)) {
        // cjpeg reads no JPEG: decode once, untimed (the decode is not cjpeg's work).
        let status = std::process::Command::new(djpeg)
            .args(["-pnm", "-outfile"])
            .arg(&ppm)
            .arg(&input.path)
            .stderr(std::process::Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            std::fs::remove_file(&ppm).ok();
        }
    }
    let mut ours: Vec<Outcome> = Vec::new();
    let mut theirs: Vec<Vec<Outcome>> = peers.iter().map(|_| Vec::new()).collect();
    for _ in 0..r.runs {
        if peers.is_empty() {
            ours.push(run_ours(category, input, r)?);
        }
        for (i, p) in peers.iter().enumerate() {
            ours.push(run_ours(category, input, r)?);
            theirs[i].push(run_peer(p, input, r, &ppm)?);
        }
    }
    let mut out = vec![summarise(category, input, OURS, ours)];
    for (p, outcomes) in peers.iter().zip(theirs) {
        out.push(summarise(category, input, p.peer.id, outcomes));
    }
    std::fs::remove_file(&ppm).ok();
    Ok(out)
}

fn run_ours(category: Category, input: &Input, r: &mut Runner) -> anyhow::Result<Outcome> {
    run_ours_at(category, None, input, r)
}

/// Our worker, at `quality` for a video category.
fn run_ours_at(category: Category, quality: Option<u8>, input: &Input, r: &mut Runner) -> anyhow::Result<Outcome> {
    let spec = match quality {
        Some(q) => format!("{}@{q}", category.id()),
        None => category.id().into(),
    };
    run_ours_spec(spec, input, r)
}

/// Our worker on `spec` (`CATEGORY` or `CATEGORY@SETTING`).
fn run_ours_spec(spec: String, input: &Input, r: &mut Runner) -> anyhow::Result<Outcome> {
    let out = r.work.join("ours.out");
    std::fs::remove_file(&out).ok();
    let mut args = r.engine.prefix.clone();
    args.extend(["--engine-worker".into(), spec.into(), input.path.clone().into(), out.clone().into_os_string()]);
    let finished = r.spawner.run(&r.engine.program, &args, None, None)?;
    let output = std::fs::read(&out).ok().filter(|d| finished.status.success() && !d.is_empty());
    let error = output.is_none().then(|| format!("engine worker failed ({}): {}", finished.status, finished.stderr));
    let info = finished.stderr.lines().find_map(|l| l.strip_prefix("method=")).map(str::to_owned);
    std::fs::remove_file(&out).ok();
    Ok(Outcome { usage: finished.usage, output, kept_input: false, error, info })
}

fn run_peer(available: &Available, input: &Input, r: &mut Runner, ppm: &Path) -> anyhow::Result<Outcome> {
    run_peer_at(available, None, input, r, ppm)
}

/// A peer, at `quality` for a rate–distortion peer (`{q}` and `{avif-q}` in its arguments).
fn run_peer_at(available: &Available, quality: Option<u8>, input: &Input, r: &mut Runner, ppm: &Path) -> anyhow::Result<Outcome> {
    let peer = &available.peer;
    let out = match peer.io {
        // A fresh folder per run: the one file in it afterwards is the output.
        Io::Folder => r.work.join(format!("{}.d", peer.id)),
        Io::Files | Io::Pipes => r.work.join(format!("{}.{}", peer.id, peer.category.output_extension())),
    };
    remove_output(&out);
    if peer.io == Io::Folder {
        std::fs::create_dir(&out).with_context(|| format!("create {}", out.display()))?;
    }
    let source = if peer.needs_ppm { ppm.to_path_buf() } else { input.path.clone() };
    if !source.exists() {
        let error = Some("djpeg could not decode the input to PPM".into());
        return Ok(Outcome { usage: peers::Usage::default(), output: None, kept_input: false, error, info: None });
    }
    let args = peer_args(peer, &source, &out, quality, input.kind);
    let (stdin, stdout) = match peer.io {
        Io::Files | Io::Folder => (None, None),
        Io::Pipes => (Some(source.as_path()), Some(out.as_path())),
    };
    let finished = r.spawner.run(&available.program, &args, stdin, stdout)?;
    let code = finished.status.code();
    let kept = code.is_some_and(|c| peer.keeps_input_on.contains(&c));
    let written = match peer.io {
        Io::Folder => single_output(&out),
        Io::Files | Io::Pipes => Ok(std::fs::read(&out).ok()),
    };
    let (output, error) = match (finished.status.success(), kept, written) {
        (true, _, Ok(Some(d))) if !d.is_empty() => (Some(d), None),
        (_, true, _) => (Some(std::fs::read(&input.path)?), None),
        (true, _, Err(why)) => (None, Some(format!("{} exited {}, but {why}: {}", peer.program, finished.status, finished.stderr))),
        (ok, _, _) => (
            None,
            Some(format!(
                "{} exited {} (output {}): {}",
                peer.program,
                finished.status,
                if ok { "missing" } else { "n/a" },
                finished.stderr
            )),
        ),
    };
    remove_output(&out);
    Ok(Outcome { usage: finished.usage, output, kept_input: kept, error, info: None })
}

/// A peer's arguments with `{in}`, `{out}`, `{to}`, `{q}` and `{avif-q}` filled in.
fn peer_args(peer: &Peer, source: &Path, out: &Path, quality: Option<u8>, input: Kind) -> Vec<OsString> {
    peer.args
        .iter()
        .map(|a| match *a {
            "{in}" => source.as_os_str().to_owned(),
            "{out}" => out.as_os_str().to_owned(),
            "{to}" => peer.category.convert_to(input).into(),
            other if other.contains("{q}") || other.contains("{avif-q}") => {
                let q = quality.unwrap_or(100);
                other.replace("{q}", &q.to_string()).replace("{avif-q}", &peers::avif_quantizer(q).to_string()).into()
            }
            // vipsthumbnail takes save options after the path: `{out}[Q=80,strip]`.
            other if other.starts_with("{out}") => {
                let mut path = out.as_os_str().to_owned();
                path.push(&other["{out}".len()..]);
                path
            }
            other => other.into(),
        })
        .collect()
}

/// Runs a folder peer once, unmeasured, on a 16×16 PNG at quality 75: `Err(why)` when it fails
/// or writes no single file (a build lacking the codec), so that it is listed as skipped
/// rather than failing on every image.
fn trial_encode(peer: &Peer, program: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let input = dir.path().join("trial.png");
    let pixels: Vec<u8> = (0..16u32 * 16).flat_map(|i| [(i * 7) as u8, (i / 16 * 15) as u8, 128]).collect();
    let mut data = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut data, 16, 16);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
    }
    std::fs::write(&input, data).map_err(|e| e.to_string())?;
    let out = dir.path().join("out");
    std::fs::create_dir(&out).map_err(|e| e.to_string())?;
    let done = std::process::Command::new(program)
        .args(peer_args(peer, &input, &out, Some(75), Kind::Png))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{} did not start: {e}", program.display()))?;
    let said = String::from_utf8_lossy(&done.stderr);
    let said = said.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    match (done.status.success(), single_output(&out)) {
        (true, Ok(Some(d))) if !d.is_empty() => Ok(()),
        (true, Err(why)) => Err(format!("a trial encode of a 16×16 PNG: {why}")),
        (true, _) => Err(format!("a trial encode of a 16×16 PNG wrote nothing (this build may lack the codec) {said}").trim_end().into()),
        (false, _) => Err(format!("a trial encode of a 16×16 PNG failed ({}): {said}", done.status)),
    }
}

/// The output a tool wrote into the otherwise empty `folder` under a name of its own: `None`
/// when it wrote nothing, an error when it wrote more than one file (which one is the output is
/// then a guess) or a folder.
fn single_output(folder: &Path) -> Result<Option<Vec<u8>>, String> {
    let entries: Vec<PathBuf> = match std::fs::read_dir(folder) {
        Ok(dir) => dir.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => return Err(format!("its output folder is unreadable: {e}")),
    };
    match entries.as_slice() {
        [] => Ok(None),
        [file] if file.is_file() => std::fs::read(file).map(Some).map_err(|e| format!("{} is unreadable: {e}", file.display())),
        [other] => Err(format!("it wrote {} instead of a file", other.display())),
        _ => {
            let mut names: Vec<String> = entries.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
            names.sort();
            Err(format!("it wrote {} files ({}) where one was expected", names.len(), names.join(", ")))
        }
    }
}

/// Removes a peer's output file or output folder.
fn remove_output(path: &Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).ok();
    } else {
        std::fs::remove_file(path).ok();
    }
}

fn summarise(category: Category, input: &Input, method: &str, outcomes: Vec<Outcome>) -> (Record, Option<Vec<u8>>) {
    let ok: Vec<&Outcome> = outcomes.iter().filter(|o| o.output.is_some()).collect();
    let failed = ok.is_empty();
    let output = outcomes.iter().find_map(|o| o.output.clone());
    let pick = |f: fn(&peers::Usage) -> f64| measure::median(&ok.iter().map(|o| f(&o.usage)).collect::<Vec<_>>());
    let record = Record {
        image: input.name.clone(),
        input_bytes: input.bytes,
        category,
        method: method.into(),
        status: if failed {
            Status::Failed
        } else if ok.iter().any(|o| o.kept_input) {
            Status::KeptInput
        } else {
            Status::Ok
        },
        bytes: output.as_ref().map(|d| d.len() as u64),
        wall_s: pick(|u| u.wall_s),
        cpu_s: pick(|u| u.cpu_s),
        maxrss_kib: ok.iter().map(|o| o.usage.maxrss_kib).max(),
        samples: ok.len(),
        score: None,
        note: outcomes.iter().find_map(|o| o.error.clone()),
        pixels: None,
        duration_s: None,
        score_min: None,
        setting: outcomes.iter().find_map(|o| o.info.clone()),
        quality: None,
    };
    (record, output)
}

/// One tool at one setting of a rate–distortion category.
#[derive(Clone, Copy)]
enum RdTool<'a> {
    Ours(RdSetting),
    Peer(&'a Available, u8),
    Sharp(u8),
}

impl RdTool<'_> {
    fn method(&self) -> &str {
        match self {
            RdTool::Ours(_) => OURS,
            RdTool::Peer(a, _) => a.peer.id,
            RdTool::Sharp(_) => peers::SHARP,
        }
    }
}

/// One rate–distortion category on one image: every tool at every step of [`peers::LADDER`]
/// (the runs of a step interleaved across tools, as elsewhere), each tool at its default
/// setting (`…-default`, taken from the ladder when it is a step of it), and ours with
/// `target_quality` at the score of sharp's default (else the first peer's): `ours-matched`.
/// Every output is scored against the input as displayed, by the one scorer.
fn bench_rd(
    category: Category,
    input: &Input,
    reference: &Rgba,
    peers: &[&Available],
    r: &mut Runner,
    records: &mut Vec<Record>,
) -> anyhow::Result<()> {
    let ppm = r.work.join("input.ppm");
    if peers.iter().any(|p| p.peer.needs_ppm) {
        // cjpeg reads neither PNG nor every JPEG: it gets the displayed pixels (over black where
        // transparent, as a JPEG encoder flattens), written untimed.
        write_ppm(reference, &ppm)?;
    }
    let sharp = r.sharp.is_some() && category.sharp_format().is_some();
    let measure = |tools: &[RdTool], r: &mut Runner| -> anyhow::Result<Vec<Record>> {
        let mut outcomes: Vec<Vec<Outcome>> = tools.iter().map(|_| Vec::new()).collect();
        for _ in 0..r.runs {
            for (i, tool) in tools.iter().enumerate() {
                outcomes[i].push(run_rd_tool(category, *tool, input, r, &ppm)?);
            }
        }
        let mut out = Vec::new();
        for (tool, outcomes) in tools.iter().zip(outcomes) {
            let (mut record, output) = summarise(category, input, tool.method(), outcomes);
            if let Some(output) = output {
                record.score = score(reference, &output, &mut record.note);
            }
            out.push(record);
        }
        Ok(out)
    };
    let mut ladder: Vec<Record> = Vec::new();
    for q in peers::LADDER {
        let mut tools = vec![RdTool::Ours(RdSetting::Quality(q))];
        tools.extend(peers.iter().map(|p| RdTool::Peer(p, q)));
        if sharp {
            tools.push(RdTool::Sharp(q));
        }
        for mut record in measure(&tools, r)? {
            record.quality = Some(q);
            ladder.push(record);
        }
    }
    // Default points: ours always runs (our default is no quality at all); a peer's is its
    // ladder point when its default is a step.
    let mut defaults: Vec<Record> = Vec::new();
    let mut to_run: Vec<(RdTool, Option<u8>)> = vec![(RdTool::Ours(RdSetting::Default), None)];
    let mut peer_tools: Vec<RdTool> = peers.iter().map(|p| RdTool::Peer(p, 0)).collect();
    if sharp {
        peer_tools.push(RdTool::Sharp(0));
    }
    for tool in peer_tools {
        let Some(q) = peers::default_quality(tool.method(), category) else { continue };
        match ladder.iter().find(|l| l.method == tool.method() && l.quality == Some(q)) {
            Some(l) => defaults.push(Record { quality: None, ..l.clone() }),
            None => to_run.push((
                match tool {
                    RdTool::Peer(p, _) => RdTool::Peer(p, q),
                    _ => RdTool::Sharp(q),
                },
                Some(q),
            )),
        }
    }
    let tools: Vec<RdTool> = to_run.iter().map(|(t, _)| *t).collect();
    defaults.extend(measure(&tools, r)?);
    for d in &mut defaults {
        d.setting = Some(match d.method.as_str() {
            OURS => "our defaults for the format".into(),
            m => format!("quality {}", peers::default_quality(m, category).unwrap_or(0)),
        });
        d.method = format!("{}{DEFAULT_SUFFIX}", d.method);
    }
    // The score ours is pointed at: sharp's default's, else the first peer's.
    let target = defaults
        .iter()
        .filter(|d| d.method != format!("{OURS}{DEFAULT_SUFFIX}"))
        .min_by_key(|d| d.method != format!("{}{DEFAULT_SUFFIX}", peers::SHARP))
        .and_then(|d| Some((d.method.trim_end_matches(DEFAULT_SUFFIX).to_string(), d.score?)));
    // A target outside 0-100 (a score far below zero) is not one `target_quality` takes.
    if let Some((peer, t)) = target.filter(|(_, t)| (0.0..=100.0).contains(t)) {
        // Rounded down to 0.01 so the worker's text round-trips to at most the peer's score.
        let t = (t * 100.0).floor() / 100.0;
        let mut matched = measure(&[RdTool::Ours(RdSetting::Target(t))], r)?.remove(0);
        matched.method = OURS_MATCHED.into();
        matched.setting = Some(format!("target_quality {t:.2} ({peer}'s default score)"));
        records.push(matched);
    }
    records.extend(ladder);
    records.extend(defaults);
    std::fs::remove_file(&ppm).ok();
    Ok(())
}

fn run_rd_tool(category: Category, tool: RdTool, input: &Input, r: &mut Runner, ppm: &Path) -> anyhow::Result<Outcome> {
    match tool {
        RdTool::Ours(setting) => run_ours_spec(format!("{}@{}", category.id(), setting.spec()), input, r),
        RdTool::Peer(p, q) => run_peer_at(p, Some(q), input, r, ppm),
        RdTool::Sharp(q) => {
            let out = r.work.join("sharp.out");
            std::fs::remove_file(&out).ok();
            let sharp = r.sharp.as_mut().context("sharp is not running")?;
            let job = peers::SharpJob {
                input: &input.path,
                output: &out,
                format: category.sharp_format().context("not a sharp format")?,
                quality: q,
                orient: true,
            };
            let (usage, output, error) = match sharp.encode(&job)? {
                Ok(usage) => match std::fs::read(&out).ok().filter(|d| !d.is_empty()) {
                    Some(d) => (usage, Some(d), None),
                    None => (usage, None, Some("sharp wrote no output".to_string())),
                },
                Err(e) => (peers::Usage::default(), None, Some(format!("sharp: {e}"))),
            };
            std::fs::remove_file(&out).ok();
            Ok(Outcome { usage, output, kept_input: false, error, info: None })
        }
    }
}

/// Binary PPM of `image`, composited over black where transparent.
fn write_ppm(image: &Rgba, path: &Path) -> anyhow::Result<()> {
    let mut data = format!("P6\n{} {}\n255\n", image.width, image.height).into_bytes();
    data.extend(image.data.chunks_exact(4).flat_map(|p| {
        let a = u32::from(p[3]);
        [0, 1, 2].map(|c| ((u32::from(p[c]) * a + 127) / 255) as u8)
    }));
    std::fs::write(path, data).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tools that name their own output (caesiumclt, rimage) write into an empty folder: the
    /// one file there is the output, nothing is "no output", and anything else is refused
    /// rather than guessed.
    #[test]
    fn a_folder_output_is_its_single_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("caesiumclt.d");
        std::fs::create_dir(&out).unwrap();
        assert_eq!(single_output(&out), Ok(None));
        std::fs::write(out.join("photo.jpg"), b"abc").unwrap();
        assert_eq!(single_output(&out), Ok(Some(b"abc".to_vec())));
        std::fs::write(out.join("photo.webp"), b"de").unwrap();
        let err = single_output(&out).unwrap_err();
        assert!(err.contains("2 files (photo.jpg, photo.webp)"), "{err}");
        remove_output(&out);
        assert!(!out.exists());
        std::fs::create_dir_all(out.join("nested")).unwrap();
        assert!(single_output(&out).unwrap_err().contains("instead of a file"));
        assert!(single_output(&dir.path().join("missing")).unwrap_err().contains("unreadable"));
    }

    #[test]
    fn to_is_original_only_for_an_input_already_in_the_format() {
        assert_eq!(Category::RdPng.convert_to(Kind::Png), "original");
        assert_eq!(Category::RdJpeg.convert_to(Kind::Jpeg), "original");
        assert_eq!(Category::RdJpeg.convert_to(Kind::Png), "jpeg");
        assert_eq!(Category::RdWebP.convert_to(Kind::Jpeg), "webp");
        assert_eq!(Category::RdAvif.convert_to(Kind::Png), "avif");
    }

    #[test]
    fn every_folder_peer_has_a_default_and_is_tried_first() {
        let peers: Vec<Peer> = peers::rd_peers().into_iter().filter(|p| p.io == Io::Folder).collect();
        assert_eq!(peers.len(), 7, "caesiumclt in 3 formats, rimage in 4");
        for peer in &peers {
            assert!(peers::default_quality(peer.id, peer.category).is_some(), "{} {:?}", peer.id, peer.category);
            assert!(peers::needs_trial(peer));
            let args = peer_args(peer, Path::new("in.png"), Path::new("out.d"), Some(42), Kind::Png);
            assert!(args.contains(&"in.png".into()) && args.contains(&"out.d".into()), "{args:?}");
            assert!(args.iter().any(|a| a.to_string_lossy().contains("42")), "{args:?}");
        }
        let caesium = peers.iter().find(|p| p.id == peers::CAESIUMCLT && p.category == Category::RdJpeg).unwrap();
        let args = peer_args(caesium, Path::new("in.png"), Path::new("out.d"), Some(42), Kind::Png);
        assert!(args.windows(2).any(|w| w[0] == "--format" && w[1] == "jpeg"), "{args:?}");
        let args = peer_args(caesium, Path::new("in.jpg"), Path::new("out.d"), Some(42), Kind::Jpeg);
        assert!(args.windows(2).any(|w| w[0] == "--format" && w[1] == "original"), "{args:?}");
    }

    /// A program that exits 0 but writes nothing (rimage asked for a codec it was built
    /// without) is refused by the trial; one that writes a file passes.
    #[test]
    fn the_trial_encode_tells_a_missing_codec() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let peer = peers::rd_peers().into_iter().find(|p| p.id == peers::RIMAGE && p.category == Category::RdAvif).unwrap();
        let fake = dir.path().join("rimage");
        let write = |body: &str| {
            std::fs::write(&fake, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        write("echo 'Encoder \"avif\" not found' >&2");
        let err = trial_encode(&peer, &fake).unwrap_err();
        assert!(err.contains("wrote nothing") && err.contains("not found"), "{err}");
        write("exit 2");
        assert!(trial_encode(&peer, &fake).unwrap_err().contains("failed"));
        // `-d DIR` then the input, as rimage is called.
        write(r#"for a in "$@"; do [ "$prev" = -d ] && out="$a"; prev="$a"; done; cp "$prev" "$out/x.avif""#);
        assert_eq!(trial_encode(&peer, &fake), Ok(()));
    }
}
