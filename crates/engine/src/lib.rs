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

mod avif;
mod error;
mod format;
mod gif;
mod image;
mod jpeg;
mod metadata;
mod options;
mod pipeline;
mod pixels;
mod png;
mod score;
mod webp;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};

pub use error::{Error, LimitKind};
pub use format::{Format, ImageInfo, detect, probe};
pub use options::{Limits, MetadataPolicy, Mode, Options, OutputFormat, Quality};

/// Default quality range for lossy PNG (pngquant-style MIN-MAX).
pub const DEFAULT_PNG_QUALITY: Quality = png::DEFAULT_QUALITY;
/// Default quality for lossy JPEG.
pub const DEFAULT_JPEG_QUALITY: u8 = jpeg::DEFAULT_QUALITY;
/// Default quality for lossy WebP.
pub const DEFAULT_WEBP_QUALITY: u8 = pipeline::DEFAULT_WEBP_QUALITY;
/// Default quality for AVIF.
pub const DEFAULT_AVIF_QUALITY: u8 = pipeline::DEFAULT_AVIF_QUALITY;

/// SSIMULACRA2 of `distorted` against `reference`, both RGBA8 of `width`×`height`, computed
/// exactly as the engine scores its own results (the whole image; transparency composited over
/// black and over white, the worse kept). `None` when the buffers do not match the size or the
/// image is below 8×8.
pub fn ssimulacra2_rgba8(reference: &[u8], distorted: &[u8], width: u32, height: u32) -> Option<f64> {
    let expected = width as usize * height as usize * 4;
    if reference.len() != expected || distorted.len() != expected {
        return None;
    }
    let reference = pixels::Pixels::rgba8(width, height, reference.to_vec());
    let distorted = pixels::Pixels::rgba8(width, height, distorted.to_vec());
    score::ssimulacra2(&reference, &distorted)
}

/// RGBA8 pixels of `width`×`height` as displayed under EXIF `orientation` (values outside 2-8
/// leave them as they are), turned exactly as the engine turns images upright: the pixels and
/// their new width and height. `None` when the buffer does not match the size.
pub fn orient_rgba8(data: &[u8], width: u32, height: u32, orientation: u16) -> Option<(Vec<u8>, u32, u32)> {
    if data.len() != width as usize * height as usize * 4 {
        return None;
    }
    let mut image = image::Image::still(pixels::Pixels::rgba8(width, height, data.to_vec()));
    image.orientation = orientation;
    let upright = image.apply_orientation().frames.swap_remove(0).pixels;
    let (width, height) = (upright.width, upright.height);
    Some((upright.into_rgba8(), width, height))
}

/// The result of [`compress`]: the bytes and what happened to them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Compressed {
    #[serde(skip)]
    pub data: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub input_size: usize,
    pub output_size: usize,
    /// False when the input is returned as it was (nothing smaller was found).
    pub changed: bool,
    /// SSIMULACRA2 of the output against the decoded input, for lossy results.
    pub quality_score: Option<f64>,
    /// Which path produced the output, for example `png-quantized` or `jpeg-lossless`.
    pub method: String,
    /// Fallbacks and decisions worth telling a user about.
    pub notes: Vec<String>,
    /// Every format tried by `format=auto` (or a search), smallest first.
    pub candidates: Vec<CandidateReport>,
}

/// One output tried by `auto`: its format, size and score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CandidateReport {
    pub format: Format,
    pub size: usize,
    pub quality_score: Option<f64>,
    pub method: String,
}

impl Compressed {
    /// Output size over input size (below 1 means smaller).
    pub fn ratio(&self) -> f64 {
        if self.input_size == 0 { 1.0 } else { self.output_size as f64 / self.input_size as f64 }
    }
}

/// What a format module returns; [`compress`] adds sizes and the never-larger rule.
#[derive(Debug)]
pub(crate) struct Encoded {
    data: Vec<u8>,
    format: Format,
    width: u32,
    height: u32,
    score: Option<f64>,
    method: String,
    notes: Vec<String>,
    candidates: Vec<CandidateReport>,
}

/// One encoding tried by the pipeline.
#[derive(Debug)]
pub(crate) struct Candidate {
    format: Format,
    width: u32,
    height: u32,
    data: Vec<u8>,
    score: Option<f64>,
    method: String,
    /// Exact pixels (no quality setting was involved).
    lossless: bool,
    notes: Vec<String>,
}

impl Candidate {
    fn report(&self) -> CandidateReport {
        CandidateReport { format: self.format, size: self.data.len(), quality_score: self.score, method: self.method.clone() }
    }

    fn into_encoded(self) -> Encoded {
        Encoded {
            data: self.data,
            format: self.format,
            width: self.width,
            height: self.height,
            score: self.score,
            method: self.method,
            notes: self.notes,
            candidates: Vec::new(),
        }
    }
}

impl Encoded {
    /// The input itself, with the reasons it was kept.
    fn unchanged(input: &[u8], info: &ImageInfo, notes: Vec<String>) -> Self {
        Encoded {
            data: input.to_vec(),
            format: info.format,
            width: info.width,
            height: info.height,
            score: None,
            method: "unchanged".into(),
            notes,
            candidates: Vec::new(),
        }
    }
}

/// Below this many pixels the codecs' internal parallelism (rayon, in oxipng, libimagequant and
/// rav1e) costs more than it saves: waking the global thread pool and its idle spinning doubled
/// the CPU time of a 48×48 icon, while a 512×512 image still finishes sooner with both cores.
const PARALLEL_MIN_PIXELS: u64 = 256 * 1024;

/// Runs `job` in a one-thread rayon pool, so the codecs' parallel loops run in sequence and the
/// global pool is never started for it. Idle pools are kept for the next small image: one pool per
/// concurrent job, whichever thread calls. (A new pool per image would also spread a long batch's
/// allocations over ever more malloc arenas, and peak memory would grow with the image count.)
fn on_one_thread<T: Send>(job: impl FnOnce() -> T + Send) -> T {
    static IDLE_POOLS: Mutex<Vec<rayon::ThreadPool>> = Mutex::new(Vec::new());
    let idle = || IDLE_POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    let pool = idle().pop().or_else(|| rayon::ThreadPoolBuilder::new().num_threads(1).build().ok());
    let Some(pool) = pool else { return job() };
    let result = pool.install(job);
    idle().push(pool);
    result
}

/// Compresses one image held in memory.
pub fn compress(input: &[u8], options: &Options) -> Result<Compressed, Error> {
    options.validate()?;
    let limit = options.limits.max_input_bytes;
    if input.len() as u64 > limit {
        return Err(Error::LimitExceeded { what: LimitKind::InputBytes, value: input.len() as u64, limit });
    }
    let info = probe(input)?;
    format::check_header(&info, input.len(), &options.limits)?;

    let run = || {
        catch_unwind(AssertUnwindSafe(|| pipeline::run(input, &info, options))).unwrap_or_else(|panic| {
            let detail = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            Err(Error::internal(format!("codec panicked: {}", detail.unwrap_or_default())))
        })
    };
    let pixels = u64::from(info.width) * u64::from(info.height);
    let encoded = if pixels < PARALLEL_MIN_PIXELS { on_one_thread(run) } else { run() }?;

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
