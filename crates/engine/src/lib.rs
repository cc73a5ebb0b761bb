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
//! `options`, `format`, `error`, `parallel`.

mod codecs;
mod error;
mod format;
mod image;
mod options;
mod parallel;
mod pipeline;
mod result;
mod score;

use std::panic::{AssertUnwindSafe, catch_unwind};

pub use codecs::probe;
pub use error::{Error, LimitKind};
pub use format::{Format, ImageInfo, detect};
pub use options::{Limits, MetadataPolicy, Mode, Options, OutputFormat, Quality};
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

/// RGBA8 pixels of `width`×`height` as displayed under EXIF `orientation` (values outside 2-8
/// leave them as they are), turned exactly as the engine turns images upright: the pixels and
/// their new width and height. `None` when the buffer does not match the size.
pub fn orient_rgba8(data: &[u8], width: u32, height: u32, orientation: u16) -> Option<(Vec<u8>, u32, u32)> {
    if data.len() != width as usize * height as usize * 4 {
        return None;
    }
    let mut image = image::Image::still(image::pixels::Pixels::rgba8(width, height, data.to_vec()));
    image.orientation = orientation;
    let upright = image.apply_orientation().frames.swap_remove(0).pixels;
    let (width, height) = (upright.width, upright.height);
    Some((upright.into_rgba8(), width, height))
}

/// Compresses one image held in memory.
pub fn compress(input: &[u8], options: &Options) -> Result<Compressed, Error> {
    options.validate()?;
    let limit = options.limits.max_input_bytes;
    if input.len() as u64 > limit {
        return Err(Error::LimitExceeded { what: LimitKind::InputBytes, value: input.len() as u64, limit });
    }
    let info = probe(input)?;
    codecs::check_header(&info, input.len(), &options.limits)?;

    let run = || {
        catch_unwind(AssertUnwindSafe(|| pipeline::run(input, &info, options))).unwrap_or_else(|panic| {
            let detail = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            Err(Error::internal(format!("codec panicked: {}", detail.unwrap_or_default())))
        })
    };
    let pixels = u64::from(info.width) * u64::from(info.height);
    let encoded = if pixels < parallel::PARALLEL_MIN_PIXELS { parallel::on_one_thread(run) } else { run() }?;

    // Never larger: in the same format, a result that does not shrink is not worth a change.
    let encoded = if encoded.format == info.format && encoded.data.len() >= input.len() && encoded.data != input {
        let mut notes = encoded.notes;
        notes.push(format!("{} output ({} bytes) was not smaller than the input; input kept", encoded.method, encoded.data.len()));
        Encoded { candidates: encoded.candidates, ..Encoded::unchanged(input, &info, notes) }
    } else {
        encoded
    };
    let changed = encoded.data != input;
    Ok(Compressed {
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
        data: encoded.data,
    })
}
