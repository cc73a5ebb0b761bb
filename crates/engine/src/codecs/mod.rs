//! Every format behind one dispatch: each codec module reads its header (`dimensions`), decodes
//! to an [`Image`], encodes one, and (PNG, JPEG) optimises its own format in place; this module is
//! the one place that chooses between them by [`Format`]. Codecs use the layers below (`image`,
//! `score`, `result`, `options`, `format`, `error`), never the pipeline above.

pub(crate) mod avif;
pub(crate) mod bmp;
pub(crate) mod gif;
pub(crate) mod heic;
pub(crate) mod jpeg;
pub(crate) mod png;
pub(crate) mod tiff;
pub(crate) mod webp;

use crate::error::{Error, LimitKind};
use crate::format::{Format, ImageInfo, describe_unknown, detect};
use crate::image::Image;
use crate::image::color;
use crate::options::{Limits, Mode, Options};
use crate::result::{Candidate, Encoded};
use crate::score;

/// Refuses inputs whose declared dimensions exceed the limits, or that declare no pixels. (The
/// input's length is held to its limit once, before its header is read: the crate's `check_input`.)
pub(crate) fn check_header(info: &ImageInfo, limits: &Limits) -> Result<(), Error> {
    let over = |what, value: u64, limit: u64| if value > limit { Err(Error::LimitExceeded { what, value, limit }) } else { Ok(()) };
    over(LimitKind::Dimension, u64::from(info.width.max(info.height)), u64::from(limits.max_dimension))?;
    over(LimitKind::Pixels, u64::from(info.width) * u64::from(info.height), limits.max_pixels)?;
    if info.width == 0 || info.height == 0 {
        return Err(Error::corrupt(format!("{} header declares a {}x{} image", info.format, info.width, info.height)));
    }
    Ok(())
}

/// Detects the format and reads the dimensions from the header, without decoding.
pub fn probe(data: &[u8]) -> Result<ImageInfo, Error> {
    let format = detect(data).ok_or_else(|| Error::unsupported(describe_unknown(data)))?;
    let (width, height) = match format {
        Format::Png => png::dimensions(data)?,
        Format::Jpeg => jpeg::dimensions(data)?,
        Format::Gif => gif::dimensions(data)?,
        Format::WebP => webp::dimensions(data)?,
        Format::Avif => avif::dimensions(data)?,
        Format::Tiff => tiff::dimensions(data)?,
        Format::Bmp => bmp::dimensions(data)?,
        Format::Heic => heic::dimensions(data)?,
    };
    Ok(ImageInfo { format, width, height })
}

pub(crate) fn decode(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Image, Error> {
    decode_shrunk(input, info, options, 1)
}

/// [`decode`] at up to 1/`shrink` of the size (1, 2, 4 or 8) where the format can do that for
/// less work (JPEG's scaled inverse DCT); other formats decode at full size.
pub(crate) fn decode_shrunk(input: &[u8], info: &ImageInfo, options: &Options, shrink: u32) -> Result<Image, Error> {
    options.cancel.check()?;
    match info.format {
        Format::Png => png::decode_image(input, options),
        Format::Jpeg => jpeg::decode_image(input, shrink),
        Format::Gif => gif::decode(input, &options.limits),
        Format::WebP => webp::decode(input, &options.limits),
        Format::Avif => avif::decode(input, &options.limits),
        Format::Tiff => tiff::decode(input, &options.limits),
        Format::Bmp => bmp::decode(input, options),
        Format::Heic => heic::decode(input, &options.limits),
    }
}

/// The ICC profile of a PNG, JPEG or WebP, read without decoding pixels; `None` for other
/// formats (their decoders find it as they go).
pub(crate) fn embedded_icc(input: &[u8], info: &ImageInfo) -> Result<Option<Vec<u8>>, Error> {
    match info.format {
        Format::Png => Ok(png::embedded_icc(input)),
        Format::Jpeg => jpeg::embedded_icc(input),
        Format::WebP => Ok(webp::embedded_icc(input)),
        _ => Ok(None),
    }
}

/// Decodes bytes this engine just produced (for scores and verification).
pub(crate) fn decode_output(data: &[u8], format: Format, options: &Options) -> Result<Image, Error> {
    let info = probe(data)?;
    let mut image = decode(data, &info, &Options { first_frame: true, ..options.clone() })?;
    if format == Format::Png || format == Format::Jpeg {
        image.orientation = 1; // compare pixels as stored
    }
    Ok(image)
}

/// True when `data` decodes to exactly `image`'s frames, every pixel of each. (Timing is kept to
/// each format's precision: GIF counts hundredths of a second.)
pub(crate) fn decodes_to(data: &[u8], format: Format, image: &Image, options: &Options) -> bool {
    let Ok(decoded) = decode_output(data, format, options) else { return false };
    decoded.frames.len() == image.frames.len() && decoded.frames.iter().zip(&image.frames).all(|(d, f)| d.pixels.same_pixels(&f.pixels))
}

/// One encoding of the image in one format, with what it cost in quality.
pub(crate) fn encode(image: &Image, format: Format, quality: u8, lossless: bool, options: &Options) -> Result<Vec<u8>, Error> {
    // Every candidate and every search step comes through here: the stage boundary to stop at.
    options.cancel.check()?;
    match (format, lossless) {
        (Format::Tiff | Format::Bmp | Format::Heic, _) => Err(Error::unsupported(format!("{format} output is not supported (input only)"))),
        (Format::Png, true) => png::encode_lossless(image, options),
        (Format::Png, false) => png::encode_quantized(image, quality, options),
        (Format::Jpeg, true) => Err(Error::unsupported("JPEG cannot store decoded pixels losslessly; use lossy mode or another format")),
        (Format::Jpeg, false) => jpeg::encode_image(image, quality),
        (Format::WebP, _) => webp::encode(image, &webp::Settings { lossless, quality, effort: options.effort }),
        (Format::Avif, _) => avif::encode(image, quality, options.effort, if lossless { Mode::Lossless } else { Mode::Lossy }),
        (Format::Gif, true) => gif::encode_lossless(image),
        (Format::Gif, false) => gif::encode_exact(&gif::quantize(image, quality, options)?)?
            .ok_or_else(|| Error::internal("quantized GIF frames still exceed 255 colours")),
    }
}

/// The answer of a target-quality search, made final: what only the answer needs to pay for.
pub(crate) fn finish_search(format: Format, data: Vec<u8>, options: &Options) -> Result<Vec<u8>, Error> {
    match format {
        Format::Png => png::rewrite_harder(data, options),
        _ => Ok(data),
    }
}

pub(crate) fn default_quality(format: Format, options: &Options) -> u8 {
    options.quality.map(|q| q.max).unwrap_or(match format {
        Format::Png => png::DEFAULT_QUALITY.max,
        Format::Jpeg => jpeg::DEFAULT_QUALITY,
        Format::WebP => webp::DEFAULT_QUALITY,
        Format::Avif => avif::DEFAULT_QUALITY,
        Format::Gif | Format::Tiff | Format::Bmp => png::DEFAULT_QUALITY.max,
        Format::Heic => jpeg::DEFAULT_QUALITY,
    })
}

/// SSIMULACRA2 of `data` against `reference`, on the first frame, both as a viewer shows them
/// (orientation applied, colours converted to sRGB through each one's own profile): an output
/// that lost a profile or an orientation scores what it looks like.
pub(crate) fn score_of(reference: &Image, data: &[u8], options: &Options) -> Option<f64> {
    let info = probe(data).ok()?;
    let decoded = decode(data, &info, &Options { first_frame: true, ..options.clone() }).ok()?;
    score::displayed(reference, &decoded)
}

/// The image in `format` at the options' settings, with no search: exact in lossless mode, else
/// at the format's quality (scored when asked).
pub(crate) fn encode_plain(image: &Image, format: Format, options: &Options) -> Result<Candidate, Error> {
    if options.mode == Mode::Lossless {
        let data = encode(image, format, 100, true, options)?;
        return Ok(Candidate::of(format, image, data, None, None, vec![]));
    }
    let quality = default_quality(format, options);
    let data = encode(image, format, quality, false, options)?;
    let score = options.score.then(|| score_of(image, &data, options)).flatten();
    Ok(Candidate::of(format, image, data, Some(quality), score, vec![]))
}

/// The format's own optimiser: lossless re-encodings are verified, lossy ones scored.
pub(crate) fn optimise(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    options.cancel.check()?;
    match info.format {
        Format::Png => png::compress(input, info, options),
        Format::Jpeg => jpeg::compress(input, info, options),
        Format::Gif | Format::WebP => {
            let (source, colour_note) = color::for_output(decode(input, info, options)?, info.format, options)?;
            let mut candidate = encode_plain(&source, info.format, options)?;
            candidate.notes.extend(colour_note);
            options.cancel.check()?;
            // Palette quantization can lose to the exact re-encoding on already-paletted GIFs.
            if info.format == Format::Gif && !candidate.lossless {
                let exact = encode_plain(&source, info.format, &Options { mode: Mode::Lossless, ..options.clone() });
                if let Ok(exact) = exact
                    && exact.data.len() <= candidate.data.len()
                {
                    candidate = exact;
                }
            }
            // Lossless re-encodings must decode to the same frames, timing and loop count.
            if candidate.lossless && decode_output(&candidate.data, info.format, options).ok().as_ref() != Some(&source) {
                return Ok(Encoded::unchanged(input, info, vec!["re-encoded frames did not match the input exactly; input kept".into()]));
            }
            Ok(candidate.into_encoded())
        }
        // AVIF is lossy only: re-encode at the quality asked for; lossless mode keeps the input.
        Format::Avif if options.mode == Mode::Lossless => {
            Ok(Encoded::unchanged(input, info, vec!["AVIF cannot be re-encoded losslessly by this build; input kept".into()]))
        }
        Format::Avif => {
            let (source, colour_note) = color::for_output(decode(input, info, options)?, info.format, options)?;
            let mut candidate = encode_plain(&source, info.format, options)?;
            candidate.notes.extend(colour_note);
            Ok(candidate.into_encoded())
        }
        // Input-only formats are converted by the pipeline, never optimised in place.
        Format::Tiff | Format::Bmp | Format::Heic => Err(Error::internal(format!("{} cannot be written", info.format))),
    }
}
