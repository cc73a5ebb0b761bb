//! What a caller can ask of the engine. Each choice's spellings are listed once here ([`Named`]);
//! the option registry (`option_defs.rs`) parses every option from them, so the CLI, the HTTP API
//! and batch accept exactly the same spellings.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::format::Format;

/// A choice spelled by words: every accepted spelling (aliases too) and what it means. The first
/// spelling of a value is how it is shown.
pub trait Named: Copy + PartialEq + 'static {
    const NAMES: &'static [(&'static str, Self)];
    /// What the choice is called in messages.
    const WHAT: &'static str;

    /// The value spelled `text` (any case).
    fn named(text: &str) -> Result<Self, Error> {
        Self::NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
            Error::InvalidOptions { detail: format!("{} {text:?} is not {}", Self::WHAT, crate::option_defs::one_of(&names)) }
        })
    }

    /// The value's first spelling.
    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, v)| *v == self).map(|(n, _)| *n).expect("every value is named")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Change pixels where it pays (palette quantization, DCT re-quantization).
    #[default]
    Lossy,
    /// Keep every pixel; proven by decoding the result and comparing.
    Lossless,
}

/// What happens to metadata (EXIF, XMP, ICC profiles, text chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataPolicy {
    /// Drop everything that does not change the pixels' meaning.
    Strip,
    /// Keep the ICC profile (unless it only says sRGB, which every viewer assumes), colour chunks and the
    /// orientation; drop EXIF (GPS!), XMP and text.
    #[default]
    Safe,
    /// Keep everything the format can carry.
    Keep,
}

/// A quality range in the style of pngquant: `80` or `65-80` (0-100).
///
/// For lossy PNG the encoder aims at `max` and gives up (falling back to lossless) below `min`.
/// Encoders with a single quality knob (JPEG) use `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Quality {
    pub min: u8,
    pub max: u8,
}

impl Quality {
    pub const fn new(min: u8, max: u8) -> Self {
        Quality { min, max }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max { write!(f, "{}", self.max) } else { write!(f, "{}-{}", self.min, self.max) }
    }
}

impl FromStr for Quality {
    type Err = Error;

    /// `N` or `MIN-MAX`, each 0-100 in plain digits: no sign, space or leading zero (the HTTP
    /// document's pattern, `option_defs::QUALITY_PATTERN`, says the same).
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidOptions {
            detail: format!("quality {s:?} is not N or MIN-MAX with 0 <= MIN <= MAX <= 100 (plain digits, no leading zeros)"),
        };
        let percent = |p: &str| {
            let plain = !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
            plain.then(|| p.parse::<u8>().ok()).flatten().filter(|v| *v <= 100).ok_or_else(invalid)
        };
        let (min, max) = match s.split_once('-') {
            Some((min, max)) => (percent(min)?, percent(max)?),
            // A single number is a target; like pngquant, accept anything down to 0 rather than fail.
            None => (0, percent(s)?),
        };
        if min > max {
            return Err(invalid());
        }
        Ok(Quality { min, max })
    }
}

impl Named for Mode {
    const NAMES: &'static [(&'static str, Self)] = &[("lossy", Mode::Lossy), ("lossless", Mode::Lossless)];
    const WHAT: &'static str = "mode";
}

impl Named for MetadataPolicy {
    const NAMES: &'static [(&'static str, Self)] =
        &[("strip", MetadataPolicy::Strip), ("safe", MetadataPolicy::Safe), ("keep", MetadataPolicy::Keep)];
    const WHAT: &'static str = "metadata";
}

impl FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Mode::named(s)
    }
}

impl FromStr for MetadataPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        MetadataPolicy::named(s)
    }
}

/// The format of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The input's own format.
    #[default]
    Keep,
    /// Try several formats (see [`Options::auto_formats`]) and keep the smallest that meets the quality target.
    Auto,
    To(Format),
}

impl Named for OutputFormat {
    /// Every writable format by its name (`Format`'s `Display`), `jpg` too; a test holds this to
    /// `Format::writable`.
    const NAMES: &'static [(&'static str, Self)] = &[
        ("keep", OutputFormat::Keep),
        ("auto", OutputFormat::Auto),
        ("png", OutputFormat::To(Format::Png)),
        ("jpeg", OutputFormat::To(Format::Jpeg)),
        ("jpg", OutputFormat::To(Format::Jpeg)),
        ("webp", OutputFormat::To(Format::WebP)),
        ("avif", OutputFormat::To(Format::Avif)),
        ("gif", OutputFormat::To(Format::Gif)),
    ];
    const WHAT: &'static str = "format";
}

impl FromStr for OutputFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        OutputFormat::named(s)
    }
}

/// How an image is fitted to the size asked for; see [`Resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// One side given; the other follows the aspect ratio.
    Scale,
    /// Inside the box, aspect ratio kept (one side may be smaller). Spelled `fit`.
    #[default]
    #[serde(rename = "fit")]
    Inside,
    /// Fills the box exactly, aspect ratio kept, the overflow cropped equally from both sides
    /// (a centred crop, to the nearest whole output pixel).
    Cover,
    /// Stretched to the box exactly, aspect ratio not kept.
    Fill,
}

impl Named for Fit {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("scale", Fit::Scale),
        ("fit", Fit::Inside),
        ("inside", Fit::Inside),
        ("contain", Fit::Inside),
        ("cover", Fit::Cover),
        ("fill", Fit::Fill),
    ];
    const WHAT: &'static str = "fit";
}

impl FromStr for Fit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Fit::named(s)
    }
}

impl fmt::Display for Fit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A new size for the image, applied after the EXIF orientation (so `width` is the width as
/// displayed). Images are resized with Lanczos3 in linear light, with premultiplied alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Resize {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    /// Allow the result to be larger than the input; without it no side is ever enlarged.
    pub enlarge: bool,
}

impl Resize {
    /// The resize of one of [`crate::variants`]: `width` wide, the height following.
    pub(crate) fn variant(width: u32, enlarge: bool) -> Resize {
        Resize { width: Some(width), height: None, fit: Fit::Scale, enlarge }
    }

    /// The box's sides as the fit needs them: an error when a side it needs is missing.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |detail: String| Err(Error::InvalidOptions { detail });
        if self.width == Some(0) || self.height == Some(0) {
            return invalid("width and height must be at least 1".into());
        }
        match (self.fit, self.width, self.height) {
            (_, None, None) => invalid("fit and enlarge need a width or a height".into()),
            (Fit::Scale, Some(_), Some(_)) => {
                invalid("fit scale takes one side (the other follows the aspect ratio); use fit, cover or fill for a box".into())
            }
            (Fit::Cover | Fit::Fill, w, h) if w.is_none() || h.is_none() => {
                invalid(format!("fit {} needs both width and height", self.fit))
            }
            _ => Ok(()),
        }
    }
}

/// Checked against the header before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub max_pixels: u64,
    pub max_dimension: u32,
    pub max_input_bytes: u64,
    pub max_frames: u32,
    /// The most pixels a resize may make (the output of one without a resize is the input's,
    /// held by `max_pixels`). Checked from the header before any work, so an enlargement that
    /// would take minutes to encode and score is refused at once.
    pub max_output_pixels: u64,
}

impl Limits {
    /// 50 megapixels: more than an 8K screen (33 MP) or most cameras give; a 9000×9000
    /// enlargement (81 MP) is refused.
    pub const DEFAULT_MAX_OUTPUT_PIXELS: u64 = 50_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_dimension: 65_535,
            max_input_bytes: 256 * 1024 * 1024,
            max_frames: 10_000,
            max_output_pixels: Limits::DEFAULT_MAX_OUTPUT_PIXELS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Options {
    pub mode: Mode,
    /// `None` means the format's default (PNG `65-80`, JPEG `80`).
    pub quality: Option<Quality>,
    pub metadata: MetadataPolicy,
    /// 1 (fastest) to 6 (smallest). Maps onto oxipng presets and libimagequant speed.
    pub effort: u8,
    pub limits: Limits,
    /// Compute the SSIMULACRA2 score of lossy results. Off by default: the score of the whole
    /// image costs more CPU than compressing it (about 0.35 µs per pixel on two cores).
    /// Target-quality searches score their candidates whatever this says.
    pub score: bool,
    pub format: OutputFormat,
    /// Candidates for [`OutputFormat::Auto`]; empty means WebP, AVIF and the input's format.
    pub auto_formats: Vec<Format>,
    /// Smallest output whose SSIMULACRA2 is at least this (searches the quality setting).
    pub target_quality: Option<f64>,
    /// Best-quality output no larger than this many bytes.
    pub max_bytes: Option<u64>,
    /// Colour that transparent pixels are flattened onto for formats without alpha (JPEG).
    pub background: [u8; 3],
    /// Allow animated input into a still-only format by keeping the first frame.
    pub first_frame: bool,
    /// A new size for the image.
    pub resize: Option<Resize>,
    /// With `max_bytes`: when even the lowest quality does not fit, shrink the image by steps until it does.
    pub allow_downscale: bool,
    /// Set by the caller to stop the work at the next stage boundary.
    #[serde(skip)]
    pub cancel: crate::Cancel,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Lossy,
            quality: None,
            metadata: MetadataPolicy::Safe,
            effort: 2,
            limits: Limits::default(),
            score: false,
            format: OutputFormat::Keep,
            auto_formats: Vec::new(),
            target_quality: None,
            max_bytes: None,
            background: [255, 255, 255],
            first_frame: false,
            resize: None,
            allow_downscale: false,
            cancel: crate::Cancel::default(),
        }
    }
}

impl Options {
    /// Checks that the options can be met, without an image: callers validate a request before
    /// reading its body; [`crate::compress`] validates again.
    pub fn validate(&self) -> Result<(), Error> {
        // Ranges are the registry's (`option_defs.rs`), for options built in code too.
        Options::check_range("effort", f64::from(self.effort))?;
        if let Some(target) = self.target_quality {
            Options::check_range("target_quality", target)?;
        }
        if let Some(max_bytes) = self.max_bytes {
            Options::check_range("max_bytes", max_bytes as f64)?;
        }
        if let Some(q) = self.quality
            && (q.min > q.max || q.max > 100)
        {
            return Err(Error::InvalidOptions { detail: format!("quality {q} is not a range within 0-100") });
        }
        // A side beyond the surfaces' range is left to the output limits (`LimitExceeded`, from
        // the plan, before any pixel exists).
        if let Some(resize) = &self.resize {
            resize.validate()?;
        }
        if self.allow_downscale && self.max_bytes.is_none() {
            return Err(Error::InvalidOptions { detail: "allow_downscale needs max_bytes (the size to shrink towards)".into() });
        }
        if self.mode == Mode::Lossless && self.target_quality.is_some() {
            return Err(Error::InvalidOptions { detail: "target_quality needs lossy mode (lossless output is exact)".into() });
        }
        Ok(())
    }
}
