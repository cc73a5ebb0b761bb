//! How much memory one `compress` may hold at its peak, from the header alone, so that callers can
//! admit work into a memory budget before anything is decoded.
//!
//! The figures are bytes per decoded pixel for each path (decode, working copies and the encoder's
//! own state together), measured as the peak RSS of `compressor compress` less the process's
//! baseline at 1.5, 6 and 24 MP by `scripts/memory-table.py`, with about 15 % added. The script
//! prints the estimate beside the measurement; the estimate must stay above it.

use crate::codecs;
use crate::error::Error;
use crate::format::{Format, ImageInfo};
use crate::image::color;
use crate::options::{Limits, Mode, Options, Resize};
use crate::resize;

const MIB: u64 = 1 << 20;

/// Per job, whatever the image: codec tables, thread stacks, small buffers.
const FIXED_BYTES: u64 = 16 * MIB;

/// SSIMULACRA2 (`score`, and the final check of a target-quality search), computed in tiles: the
/// result decoded (4 B/px) and both images at half size in linear RGB, with a quarter size beside
/// them (7.5 B/px), about 15 % added. Before tiles it was 175 (measured 142-156 B/px).
const SCORE_BYTES_PER_PIXEL: u64 = 14;

/// The score's tiles, beside that: float planes of one window of at most 528×528 pixels (a 512
/// core and its margins) at a time, about 100 B per pixel of the window.
const SCORE_WINDOW_BYTES_PER_PIXEL: u64 = 150;
const SCORE_WINDOW_PIXELS: u64 = 528 * 528;

/// `auto`, beside its dearest candidate: the shared decode and the other candidates' results
/// (measured: `auto` on a 6 MP JPEG held 10 % more than its AVIF candidate alone).
const CANDIDATES_BYTES_PER_PIXEL: u64 = 10;

/// A resize: both images in 16-bit linear light.
const RESIZE_BYTES_PER_PIXEL: u64 = 8;

/// An input with a colour profile: its pixels converted to sRGB beside the decode, and both
/// images of a score converted to be compared as displayed (per 8-bit sample).
const COLOUR_BYTES_PER_PIXEL: u64 = 4;

/// Inputs whose own decoder holds another copy (libheif's planes, TIFF strips) before the RGBA
/// the engine works on; not in the measured paths.
const OTHER_DECODER_BYTES_PER_PIXEL: u64 = 12;

/// What one path costs per pixel. Quantized PNG drops above 2^24 pixels: libimagequant keeps a
/// whole-image copy only for images whose RGBA fits in 64 MiB and works row by row beyond.
#[derive(Clone, Copy)]
struct Cost {
    per_pixel: u64,
    /// Above this many pixels, this many bytes per pixel instead.
    above: Option<(u64, u64)>,
}

impl Cost {
    const fn linear(per_pixel: u64) -> Cost {
        Cost { per_pixel, above: None }
    }

    fn bytes(self, pixels: u64) -> u64 {
        match self.above {
            Some((threshold, per_pixel)) if pixels > threshold => per_pixel * pixels,
            _ => self.per_pixel * pixels,
        }
    }
}

/// Measured on a photo: 28-29 B/px at 1.5, 6 and 12 MP; 10.2-10.6 B/px at 24, 48 and 90 MP
/// (screenshots less).
const PNG_QUANTIZED: Cost = Cost { per_pixel: 32, above: Some((1 << 24, 12)) };

/// The cost of producing `format` (decoding included, for the measured inputs).
fn encode_cost(format: Format, mode: Mode) -> Cost {
    match (format, mode) {
        (Format::Png, Mode::Lossy) => PNG_QUANTIZED,
        (Format::Png, Mode::Lossless) => Cost::linear(32),
        (Format::Jpeg, _) => Cost::linear(17),
        (Format::WebP, Mode::Lossy) => Cost::linear(13),
        (Format::WebP, Mode::Lossless) => Cost::linear(30),
        (Format::Avif, _) => Cost::linear(46),
        (Format::Gif, Mode::Lossy) => Cost::linear(40),
        (Format::Gif, Mode::Lossless) => Cost::linear(26),
        // Formats only read: their output is one of the above, and `estimate` takes the dearest.
        _ => Cost::linear(46),
    }
}

/// The formats this request may encode to: all `auto` candidates, or the one asked for.
fn output_formats(info: &ImageInfo, options: &Options) -> Vec<Format> {
    crate::pipeline::requested_formats(info.format, options)
}

/// The estimate for an input whose header has passed the limits.
pub(crate) fn estimate(input: &[u8], info: &ImageInfo, options: &Options) -> u64 {
    let frames = u64::from(frame_count(input, info.format).clamp(1, options.limits.max_frames.max(1)));
    // Every frame is decoded onto a full canvas (and the GIF decoder refuses more than max_pixels in all).
    let source = (u64::from(info.width) * u64::from(info.height)).saturating_mul(frames);
    // 16-bit samples double the decoded copies; the encoders' working copies double only for a
    // 16-bit PNG, whose own encoders keep the depth (measured: a 12 MP 16-bit TIFF peaked 190 MiB
    // above its 8-bit twin when made lossy PNG, and 110 MiB below it when made lossless).
    let deep = u64::from(decodes_to_16_bit(input, info.format)) + 1;
    let deep_encode = if matches!(info.format, Format::Png | Format::Bmp) { deep } else { 1 };
    let output = match &options.resize {
        Some(request) => resized_pixels(info, request).saturating_mul(frames),
        None => source,
    };
    let decoder = match info.format {
        Format::Png | Format::Jpeg | Format::Gif | Format::WebP | Format::Avif => 0,
        _ => deep * OTHER_DECODER_BYTES_PER_PIXEL * source,
    };
    let resizing = if options.resize.is_some() { RESIZE_BYTES_PER_PIXEL * (source + output) + 4 * source } else { 0 };
    let formats = output_formats(info, options);
    let candidates = if formats.len() > 1 { CANDIDATES_BYTES_PER_PIXEL * output } else { 0 };
    let encoding = formats.into_iter().map(|f| encode_cost(f, options.mode).bytes(output)).max().unwrap_or(0) + candidates;
    // A score runs once the encoder is gone: of what the encode held, only the image it scores
    // against (RGBA of every output pixel) and the other candidates' results stay beside it.
    let scoring = if options.score || options.target_quality.is_some() { deep * (4 * output + score_bytes(output)) } else { 0 };
    // Only a profile that changes what is shown is converted (an sRGB one is shown as stored).
    let profiled = codecs::embedded_icc(input, info).ok().flatten().is_some_and(|icc| !color::shown_as_stored(Some(&icc)));
    let colour = if profiled { deep * COLOUR_BYTES_PER_PIXEL * (source + 2 * output) } else { 0 };
    FIXED_BYTES + 2 * input.len() as u64 + decoder + resizing + (deep_encode * encoding).max(scoring + deep_encode * candidates) + colour
}

/// What scoring an output of `pixels` holds: a few bytes per pixel of copies, and one tile's planes.
fn score_bytes(pixels: u64) -> u64 {
    SCORE_BYTES_PER_PIXEL * pixels + SCORE_WINDOW_BYTES_PER_PIXEL * pixels.min(SCORE_WINDOW_PIXELS)
}

/// The estimate for [`crate::variants`]: they are made one after another from one decode, so the
/// dearest variant's, plus the upright copy of the source they share.
pub(crate) fn estimate_variants(input: &[u8], info: &ImageInfo, widths: &[u32], enlarge: bool, options: &Options) -> u64 {
    let variant = |width: u32| estimate(input, info, &Options { resize: Some(Resize::variant(width, enlarge)), ..options.clone() });
    let upright_copy = 4 * u64::from(info.width) * u64::from(info.height);
    widths.iter().map(|&w| variant(w)).max().unwrap_or(0) + upright_copy
}

/// Refuses a resize whose output is over a limit whichever way round the header's sides turn out
/// to be, as `compress` would once it has decoded (and knows the orientation), so that callers
/// get the limit rather than an estimate too large for their budget.
pub(crate) fn check_resize_limits(info: &ImageInfo, request: &Resize, limits: &Limits) -> Result<(), Error> {
    let check = |width: u32, height: u32| resize::check_limits(&resize::plan(width, height, request), limits);
    match (check(info.width, info.height), check(info.height, info.width)) {
        (Err(refused), Err(_)) => Err(refused),
        _ => Ok(()),
    }
}

/// The pixels of a resize's output: the planner's own answer, for the header's sides either way
/// round (an orientation tag may turn them), so a one-sided enlargement counts both sides' growth.
fn resized_pixels(info: &ImageInfo, request: &Resize) -> u64 {
    let pixels = |width: u32, height: u32| {
        let plan = resize::plan(width, height, request);
        u64::from(plan.width) * u64::from(plan.height)
    };
    pixels(info.width, info.height).max(pixels(info.height, info.width))
}

/// Whether the image decodes to 16-bit samples, which double the bytes of every copy of it.
fn decodes_to_16_bit(input: &[u8], format: Format) -> bool {
    match format {
        Format::Png => input.get(24) == Some(&16),
        // A BI_PNG BMP is decoded as the PNG it holds.
        Format::Bmp => codecs::bmp::embedded_png(input).is_some_and(|png| png.get(24) == Some(&16)),
        Format::Tiff => codecs::tiff::is_deep(input),
        Format::Heic => codecs::heic::is_deep(input),
        _ => false,
    }
}

/// Frames of an animated GIF or WebP, counted from their block structure (bounded by the input's
/// length, nothing decoded); 1 for other formats or when the structure cannot be walked.
fn frame_count(input: &[u8], format: Format) -> u32 {
    match format {
        Format::Gif => gif_frames(input).unwrap_or(1),
        Format::WebP => webp_frames(input),
        _ => 1,
    }
}

fn gif_frames(d: &[u8]) -> Option<u32> {
    let flags = *d.get(10)?;
    let mut at = 13 + if flags & 0x80 != 0 { 3 << ((flags & 7) + 1) } else { 0 };
    let skip_sub_blocks = |mut at: usize| -> Option<usize> {
        loop {
            let len = usize::from(*d.get(at)?);
            at += 1 + len;
            if len == 0 {
                return Some(at);
            }
        }
    };
    let mut frames = 0u32;
    loop {
        match *d.get(at)? {
            0x21 => at = skip_sub_blocks(at + 2)?,
            0x2C => {
                frames += 1;
                let local = *d.get(at + 9)?;
                at += 10 + if local & 0x80 != 0 { 3 << ((local & 7) + 1) } else { 0 };
                at = skip_sub_blocks(at + 1)?;
            }
            _ => return Some(frames.max(1)),
        }
    }
}

fn webp_frames(d: &[u8]) -> u32 {
    let mut frames = 0u32;
    let mut at = 12;
    while let Some(header) = d.get(at..at + 8) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[..4] == b"ANMF" {
            frames += 1;
        }
        at = at.saturating_add(8).saturating_add(size).saturating_add(size & 1);
    }
    frames.max(1)
}
