//! Engine options as command-line flags, shared by every subcommand that compresses.

use clap::{ArgGroup, Args};
use compressor_engine::{Fit, Limits, MetadataPolicy, Mode, Options, OutputFormat, Quality, Resize};

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("resize_side").args(["width", "height"]).multiple(true)))]
pub struct EngineArgs {
    /// lossy (palette quantization, JPEG re-encoding) or lossless (pixel-identical, verified)
    #[arg(short, long, default_value = "lossy", value_parser = parse::<Mode>)]
    pub mode: Mode,
    /// Quality 0-100, as N or MIN-MAX (PNG default 65-80, JPEG default 80)
    #[arg(short, long, value_parser = parse::<Quality>)]
    pub quality: Option<Quality>,
    /// What to do with metadata: strip, safe (keep ICC profile and orientation), keep
    #[arg(long, default_value = "safe", value_parser = parse::<MetadataPolicy>)]
    pub metadata: MetadataPolicy,
    /// 1 (fastest) to 6 (smallest)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=6))]
    pub effort: u8,
    /// Refuse images with more pixels than this (checked from the header, before decoding)
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    pub max_pixels: u64,
    /// Output format: keep, png, jpeg, webp, avif, gif, or auto (smallest of WebP, AVIF and the input's format);
    /// for videos and animated GIFs (compress only) mp4 or webm. Default keep (webp for --widths). HEIC, TIFF and
    /// BMP are read, not written: keep makes TIFF/BMP PNG and HEIC the smallest of JPEG, WebP and AVIF
    #[arg(short, long, value_parser = parse_format)]
    pub format: Option<FormatChoice>,
    /// Smallest output whose SSIMULACRA2 score is at least this (e.g. 80; 90 is visually lossless);
    /// for videos the highest CRF whose sampled frames score at least this on average
    #[arg(long, value_parser = parse_score)]
    pub target_quality: Option<f64>,
    /// Best-quality output no larger than this many bytes
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// With --max-bytes: when even the lowest quality does not fit, shrink the image by steps until it does
    #[arg(long, requires = "max_bytes")]
    pub allow_downscale: bool,
    /// Resize to this width in pixels (as displayed, after the EXIF orientation)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub width: Option<u32>,
    /// Resize to this height in pixels
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub height: Option<u32>,
    /// How --width and --height apply: scale (one side given, the other follows), fit (inside the
    /// box, the default), cover (fill the box, centred crop), fill (stretch)
    #[arg(long, requires = "resize_side", value_parser = parse::<Fit>)]
    pub fit: Option<Fit>,
    /// Allow resizing beyond the image's own size (by default no side is enlarged)
    #[arg(long)]
    pub enlarge: bool,
    /// Colour that transparency is flattened onto for JPEG output, as RRGGBB
    #[arg(long, default_value = "ffffff", value_parser = parse_colour)]
    pub background: [u8; 3],
    /// Allow animated input into still-only formats by keeping the first frame
    #[arg(long)]
    pub first_frame: bool,
    /// Compute the SSIMULACRA2 score of lossy results (costs more CPU than the compression itself;
    /// --target-quality always reports the score it reached)
    #[arg(long)]
    pub score: bool,
}

impl EngineArgs {
    /// The image format asked for, if one was.
    pub fn image_format(&self) -> Option<OutputFormat> {
        match self.format {
            Some(FormatChoice::Image(f)) => Some(f),
            _ => None,
        }
    }

    /// The video container asked for (`--format mp4|webm`), if one was.
    pub fn video_format(&self) -> Option<compressor_video::VideoFormat> {
        match self.format {
            Some(FormatChoice::Video(f)) => Some(f),
            _ => None,
        }
    }

    pub fn options(&self) -> Options {
        Options {
            mode: self.mode,
            quality: self.quality,
            metadata: self.metadata,
            effort: self.effort,
            limits: Limits { max_pixels: self.max_pixels, ..Limits::default() },
            format: self.image_format().unwrap_or_default(),
            target_quality: self.target_quality,
            max_bytes: self.max_bytes,
            background: self.background,
            first_frame: self.first_frame,
            score: self.score,
            allow_downscale: self.allow_downscale,
            resize: (self.width.is_some() || self.height.is_some()).then(|| Resize {
                width: self.width,
                height: self.height,
                fit: self.fit.unwrap_or_default(),
                enlarge: self.enlarge,
            }),
            ..Options::default()
        }
    }
}

/// Uses the engine's own parsers so the CLI, HTTP API and batch accept the same spellings.
/// `--format`: an image format for the engine, or a video container for `compressor-video`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatChoice {
    Image(OutputFormat),
    Video(compressor_video::VideoFormat),
}

fn parse_format(s: &str) -> Result<FormatChoice, String> {
    match s.to_ascii_lowercase().as_str() {
        "mp4" => Ok(FormatChoice::Video(compressor_video::VideoFormat::Mp4)),
        "webm" => Ok(FormatChoice::Video(compressor_video::VideoFormat::WebM)),
        _ => parse::<OutputFormat>(s).map(FormatChoice::Image).map_err(|e| format!("{e} (or mp4, webm for video)")),
    }
}

fn parse<T: std::str::FromStr<Err = compressor_engine::Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: compressor_engine::Error| e.to_string())
}

fn parse_score(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|v| (0.0..=100.0).contains(v)).ok_or_else(|| format!("{s:?} is not a score between 0 and 100"))
}

fn parse_colour(s: &str) -> Result<[u8; 3], String> {
    let hex = s.trim_start_matches('#');
    let channel = |i: usize| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
    match (hex.len(), channel(0), channel(2), channel(4)) {
        (6, Some(r), Some(g), Some(b)) => Ok([r, g, b]),
        _ => Err(format!("{s:?} is not a colour like ffffff")),
    }
}
