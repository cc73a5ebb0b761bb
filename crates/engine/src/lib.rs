//! The compressor engine: bytes in, bytes and a report out.
//!
//! ```no_run
//! let input = std::fs::read("photo.png").unwrap();
//! let result = compressor_engine::compress(&input, &compressor_engine::Options::default()).unwrap();
//! println!("{} -> {} bytes", result.input_size, result.output_size);
//! ```
//!
//! Invariants: no file or network I/O, no async, no global state; limits are checked from the
//! header before any pixel buffer exists; a result is never larger than its input in the same
//! format; `Mode::Lossless` results are decoded and compared pixel by pixel before they are
//! returned; panics inside codecs are caught and returned as [`Error::Internal`].
//!
//! Layers, each using only the ones below it: this file (the public surface and [`compress`]) →
//! `pipeline` (what to produce: same format, conversion, `auto`, searches) → `codecs` (one module
//! per format behind one dispatch) → `score`, `image` (decoded images, pixels, metadata), `result`,
//! `options` (and `presets`, named options that several callers share), `format`, `error`,
//! `parallel`; `resize` sits beside `codecs`, used by the pipeline.

mod cancel;
mod codecs;
mod error;
mod format;
mod image;
mod memory;
mod option_defs;
mod options;
mod parallel;
mod pipeline;
pub mod presets;
mod resize;
mod result;
mod score;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use cancel::{Cancel, CancelOnDrop};
pub use codecs::probe;
pub use error::{Error, LimitKind};
pub use format::{Format, ImageInfo, detect, is_heif_image, with_output_extension};
pub use option_defs::{
    COLOUR_PATTERN, Http, MAX_BYTES_LIMIT, MAX_SIDE, OPTIONS, OptionDef, QUALITY_PATTERN, Surface, Value as OptionValue, ValueKind, option,
};
pub use options::{Fit, Limits, MetadataPolicy, Mode, Named, Options, OutputFormat, Quality, Resize};
pub use result::{CandidateReport, Compressed};

use result::Encoded;

/// Default quality range for lossy PNG (pngquant-style MIN-MAX).
pub const DEFAULT_PNG_QUALITY: Quality = codecs::png::DEFAULT_QUALITY;
/// Default quality for lossy JPEG.
pub const DEFAULT_JPEG_QUALITY: u8 = codecs::jpeg::DEFAULT_QUALITY;
/// Default quality for lossy WebP.
pub const DEFAULT_WEBP_QUALITY: u8 = codecs::webp::DEFAULT_QUALITY;
/// Default quality for AVIF.
pub const DEFAULT_AVIF_QUALITY: u8 = codecs::avif::DEFAULT_QUALITY;

/// SSIMULACRA2 of `distorted` against `reference`, both RGBA8 of `width`×`height`, computed
/// exactly as the engine scores its own results (the whole image; transparency composited over
/// black and over white, the worse kept). `None` when the buffers do not match the size or the
/// image is below 8×8.
pub fn ssimulacra2_rgba8(reference: &[u8], distorted: &[u8], width: u32, height: u32) -> Option<f64> {
    let expected = width as usize * height as usize * 4;
    if reference.len() != expected || distorted.len() != expected {
        return None;
    }
    let reference = image::pixels::Pixels::rgba8(width, height, reference.to_vec());
    let distorted = image::pixels::Pixels::rgba8(width, height, distorted.to_vec());
    score::ssimulacra2(&reference, &distorted)
}

/// The first frame of `input` as a viewer shows it, in RGBA8: decoded, turned by its EXIF
/// orientation and converted to sRGB through its ICC profile (16-bit samples rounded to 8). What
/// the engine's own scores compare; for tools that judge other programs' outputs the same way.
pub fn decode_displayed(input: &[u8], limits: &Limits) -> Result<(u32, u32, Vec<u8>), Error> {
    let options = Options { limits: *limits, first_frame: true, ..Options::default() };
    let info = check_input(input, &options)?;
    let mut shown =
        guarded(&info, || image::color::to_srgb(codecs::decode(input, &info, &options)?.into_first_frame().apply_orientation()))?;
    let pixels = shown.frames.swap_remove(0).pixels;
    Ok((pixels.width, pixels.height, pixels.into_rgba8()))
}

/// Every frame of `input` as the engine decodes it (an APNG: its default image, as the engine
/// reads APNGs), turned upright: each frame's width, height and RGBA samples widened to 16 bits
/// (8-bit samples × 257, exactly). For tests and fuzz targets that check a lossless result against
/// its input with the engine's own decoders; not a stable API.
#[doc(hidden)]
pub fn decode_rgba16(input: &[u8], limits: &Limits) -> Result<Vec<(u32, u32, Vec<u16>)>, Error> {
    let options = Options { limits: *limits, first_frame: true, ..Options::default() };
    let info = check_input(input, &options)?;
    let image = guarded(&info, || codecs::decode(input, &info, &options))?.apply_orientation();
    let widen = |pixels: image::pixels::Pixels| match pixels.samples {
        image::pixels::Samples::Rgba8(v) => v.into_iter().map(|s| u16::from(s) * 257).collect(),
        image::pixels::Samples::Rgba16(v) => v,
    };
    Ok(image.frames.into_iter().map(|f| (f.pixels.width, f.pixels.height, widen(f.pixels))).collect())
}

/// Compresses one image held in memory.
pub fn compress(input: &[u8], options: &Options) -> Result<Compressed, Error> {
    options.validate()?;
    let info = check_input(input, options)?;
    let encoded = guarded(&info, || pipeline::run(input, &info, options))?;
    Ok(report(input, &info, encoded))
}

/// The most memory [`compress`] (or [`variants`]) may hold for `input` with `options`, in bytes,
/// from the header alone: what a caller sharing a memory budget among workers admits work by.
/// Fails as `compress` would on unreadable headers, limits and options.
pub fn estimate_peak_bytes(input: &[u8], options: &Options) -> Result<u64, Error> {
    options.validate()?;
    let info = check_input(input, options)?;
    if let Some(request) = &options.resize {
        memory::check_resize_limits(&info, request, &options.limits)?;
    }
    Ok(memory::estimate(input, &info, options))
}

/// [`estimate_peak_bytes`] for [`variants`] with these widths.
pub fn estimate_variants_peak_bytes(input: &[u8], widths: &[u32], enlarge: bool, options: &Options) -> Result<u64, Error> {
    options.validate()?;
    let info = check_input(input, options)?;
    for &width in widths {
        memory::check_resize_limits(&info, &Resize::variant(width, enlarge), &options.limits)?;
    }
    Ok(memory::estimate_variants(input, &info, widths, enlarge, options))
}

/// One output per width for responsive images (`srcset`): the input decoded once and resized
/// from its full size for each width, each result encoded as `options` ask (`format: Auto`
/// chooses per width). Widths come back sorted and without repeats, each with its result, or
/// `None` when it is beyond the image's own width and `enlarge` is off. `options.resize` must
/// be unset: the widths are the resize.
pub fn variants(input: &[u8], widths: &[u32], enlarge: bool, options: &Options) -> Result<Vec<(u32, Option<Compressed>)>, Error> {
    options.validate()?;
    if options.resize.is_some() {
        return Err(Error::InvalidOptions { detail: "variants take widths; do not also ask for a resize".into() });
    }
    let mut widths = widths.to_vec();
    widths.sort_unstable();
    widths.dedup();
    if widths.is_empty() || widths.len() > MAX_VARIANTS {
        return Err(Error::InvalidOptions { detail: format!("variants need 1 to {MAX_VARIANTS} widths, not {}", widths.len()) });
    }
    let info = check_input(input, options)?;
    let encoded = guarded(&info, || pipeline::variants(input, &info, &widths, enlarge, options))?;
    Ok(widths.into_iter().zip(encoded).map(|(w, e)| (w, e.map(|e| report(input, &info, e)))).collect())
}

/// Most widths one [`variants`] call makes.
pub const MAX_VARIANTS: usize = 16;

/// The file name of one variant: `photo-640w.webp` for stem `photo`.
pub fn variant_file_name(stem: &str, variant: &Compressed) -> String {
    format!("{stem}-{}w.{}", variant.width, variant.format.extension())
}

/// A `srcset` attribute value from (file name, width) pairs: `a-320w.webp 320w, a-640w.webp 640w`.
pub fn srcset<'a>(files: impl IntoIterator<Item = (&'a str, u32)>) -> String {
    files.into_iter().map(|(name, width)| format!("{name} {width}w")).collect::<Vec<_>>().join(", ")
}

/// The input's format and size from its header, within the limits: its length first (before
/// its header is read), then what the header declares.
fn check_input(input: &[u8], options: &Options) -> Result<ImageInfo, Error> {
    let limit = options.limits.max_input_bytes;
    if input.len() as u64 > limit {
        return Err(Error::LimitExceeded { what: LimitKind::InputBytes, value: input.len() as u64, limit });
    }
    let info = probe(input)?;
    codecs::check_header(&info, &options.limits)?;
    Ok(info)
}

/// Runs `job` with codec panics caught, on one thread for small images.
fn guarded<T: Send>(info: &ImageInfo, job: impl FnOnce() -> Result<T, Error> + Send) -> Result<T, Error> {
    let run = || {
        catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
            let detail = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            Err(Error::internal(format!("codec panicked: {}", detail.unwrap_or_default())))
        })
    };
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels < parallel::PARALLEL_MIN_PIXELS { parallel::on_one_thread(run) } else { run() }
}

/// The report of one result, after the never-larger rule. The rule compares like with like: an
/// output in the input's format and at its size that is not smaller is replaced by the input. A
/// resized output has no such twin (the input is not an answer to a resize), so it is kept, with
/// a note when it is larger.
fn report(input: &[u8], info: &ImageInfo, encoded: Encoded) -> Compressed {
    let larger = encoded.format == info.format && encoded.data.len() >= input.len() && encoded.data != input;
    let encoded = match encoded.resized_from {
        None if larger => {
            let mut notes = encoded.notes;
            notes.push(format!("{} output ({} bytes) was not smaller than the input; input kept", encoded.method, encoded.data.len()));
            Encoded { candidates: encoded.candidates, ..Encoded::unchanged(input, info, notes) }
        }
        Some(_) if encoded.data.len() >= input.len() => {
            let mut encoded = encoded;
            encoded.notes.push(format!("the resized output ({} bytes) is not smaller than the input", encoded.data.len()));
            encoded
        }
        _ => encoded,
    };
    let changed = encoded.data != input;
    Compressed {
        format: encoded.format,
        width: encoded.width,
        height: encoded.height,
        input_size: input.len(),
        output_size: encoded.data.len(),
        changed,
        quality_score: if changed { encoded.score } else { None },
        method: if changed { encoded.method } else { "unchanged".into() },
        notes: encoded.notes,
        candidates: encoded.candidates,
        resized_from: encoded.resized_from,
        data: encoded.data,
    }
}
