//! PNG: lossless optimisation with oxipng (proven by pixel comparison) and lossy palette
//! quantization with libimagequant, written out through oxipng's reductions and deflate.

use std::io::Cursor;

use oxipng::{BitDepth, ColorType, Deflater, FilterStrategy, RGBA8, RawImage, StripChunks};

use crate::error::Error;
use crate::format::{Format, ImageInfo};
use crate::image::Image;
use crate::image::color::{self, Output, ProfileAction};
use crate::image::metadata::{
    PNG_COLOUR_CHUNKS, PNG_DISPLAY_CHUNKS, PNG_IMAGE_CHUNKS, exif_orientation, orientation_only_exif, png_chunks, write_png,
};
use crate::image::pixels::{Pixels, Samples};
use crate::options::{MetadataPolicy, Mode, Options, Quality};
use crate::result::Encoded;
use crate::score;

/// pngquant's own default, and the issue's.
pub const DEFAULT_QUALITY: Quality = Quality::new(65, 80);

/// Width and height from the IHDR chunk, which a valid PNG has first.
pub(crate) fn dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    if d.get(12..16) != Some(b"IHDR") {
        return Err(if d.len() < 16 { Error::truncated("PNG") } else { Error::corrupt("PNG does not start with an IHDR chunk") });
    }
    let be32 = |at: usize| d.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    Ok((be32(16).ok_or_else(|| Error::truncated("PNG"))?, be32(20).ok_or_else(|| Error::truncated("PNG"))?))
}

/// Deflate cannot expand data more than about 1032:1, so a PNG whose raw pixels would need more
/// than this many times its file size cannot be valid: refuse it before allocating.
const MAX_DEFLATE_RATIO: u64 = 1100;

pub(crate) fn compress(input: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    let icc = embedded_icc(input);
    let icc_carried = color::decide(icc.as_deref(), Format::Png, Output::SameFile, options) == ProfileAction::Carry;
    let prepared = apply_metadata_policy(input, options.metadata, icc_carried)?;
    let icc = icc.filter(|_| icc_carried);
    match options.mode {
        Mode::Lossless => lossless(input, &prepared, info, options),
        Mode::Lossy => lossy(input, &prepared, info, icc.as_deref(), options),
    }
}

/// The ICC profile of a PNG's `iCCP` chunk, if it has a readable one.
pub(crate) fn embedded_icc(data: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = png::Decoder::new(Cursor::new(data));
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.read_info().ok().and_then(|r| r.info().icc_profile.as_ref().map(|p| p.to_vec()))
}

fn lossless(input: &[u8], prepared: &[u8], info: &ImageInfo, options: &Options) -> Result<Encoded, Error> {
    options.cancel.check()?;
    let mut opts = lossless_preset(options);
    opts.strip = StripChunks::None; // the policy was applied by `apply_metadata_policy`
    // The input's pixels are needed only for the proof below; decode them while oxipng works.
    let (original, output) = rayon::join(
        || decode(input, options),
        || oxipng::optimize_from_memory(prepared, &opts).map_err(|e| Error::corrupt(format!("PNG: {e}"))),
    );
    let (original, output) = (original?, output?);
    options.cancel.check()?;
    // The guarantee of this mode: decode what we made and compare every pixel with the input.
    match decode(&output, options) {
        Ok(decoded) if decoded.same_pixels(&original) => {}
        _ => {
            return Ok(Encoded::unchanged(input, info, vec!["lossless result did not decode to identical pixels; input kept".into()]));
        }
    }
    Ok(Encoded {
        data: output,
        format: Format::Png,
        width: info.width,
        height: info.height,
        score: None,
        method: "png-lossless".into(),
        notes: vec![],
        candidates: Vec::new(),
        resized_from: None,
    })
}

/// `icc`: the profile the output carries, which both sides are scored in.
fn lossy(input: &[u8], prepared: &[u8], info: &ImageInfo, icc: Option<&[u8]>, options: &Options) -> Result<Encoded, Error> {
    let chunks = png_chunks(prepared)?;
    if chunks.iter().any(|c| &c.name == b"acTL") {
        let mut out = lossless(input, prepared, info, options)?;
        out.notes.push("animated PNG: quantization would drop frames, compressed losslessly instead".into());
        return Ok(out);
    }
    let original = decode(input, options)?;
    let quality = options.quality.unwrap_or(DEFAULT_QUALITY);
    let (palette, indices, achieved) = match quantize(&original, quality, options)? {
        Some(q) => q,
        None => {
            let mut out = lossless(input, prepared, info, options)?;
            out.notes.push(format!("quality {quality} not reachable with 256 colours; compressed losslessly instead"));
            return Ok(out);
        }
    };
    options.cancel.check()?;
    // Carry the (already policy-filtered) ancillary chunks over to the paletted image.
    let extra: Vec<([u8; 4], Vec<u8>)> = chunks
        .iter()
        .filter(|c| c.name[0].is_ascii_lowercase() && !PNG_IMAGE_CHUNKS.contains(&c.name) && &c.name != b"bKGD")
        .map(|c| (c.name, c.data.to_vec()))
        .collect();
    // Writing and scoring do not depend on each other: with two cores they run at once.
    let (data, score) = rayon::join(
        || write_paletted(info.width, info.height, &palette, &indices, &extra, None, options),
        || options.score.then(|| score::in_profile(&original, &palette_pixels(&palette, &indices, info), icc)).flatten(),
    );
    let data = data?;
    let mut notes = vec![];
    if let Some(achieved) = achieved {
        notes.push(format!("libimagequant quality {achieved}, {} colours", palette.len()));
    }
    Ok(Encoded {
        data,
        format: Format::Png,
        width: info.width,
        height: info.height,
        score,
        method: "png-quantized".into(),
        notes,
        candidates: vec![],
        resized_from: None,
    })
}

/// Writes palette + indices through oxipng's reductions and deflate.
fn write_paletted(
    width: u32,
    height: u32,
    palette: &[RGBA8],
    indices: &[u8],
    chunks: &[([u8; 4], Vec<u8>)],
    icc: Option<&[u8]>,
    options: &Options,
) -> Result<Vec<u8>, Error> {
    let mut raw = RawImage::new(width, height, ColorType::Indexed { palette: palette.to_vec() }, BitDepth::Eight, indices.to_vec())
        .map_err(|e| Error::internal(format!("oxipng raw image: {e}")))?;
    for (name, data) in chunks {
        raw.add_png_chunk(*name, data.clone());
    }
    if let Some(icc) = icc {
        raw.add_icc_profile(icc);
    }
    let mut opts = quantized_preset(options.effort);
    opts.max_decompressed_size = Some(max_raw_bytes(options));
    opts.strip = StripChunks::None;
    opts.optimize_alpha = true; // pixels are already lossy; let oxipng normalise invisible ones
    raw.create_optimized_png(&opts).map_err(|e| Error::internal(format!("oxipng: {e}")))
}

/// Encodes decoded pixels (from any format) as an optimised PNG, losslessly.
pub(crate) fn encode_lossless(image: &Image, options: &Options) -> Result<Vec<u8>, Error> {
    let pixels = image.first();
    let (bit_depth, data) = match &pixels.samples {
        Samples::Rgba8(v) => (BitDepth::Eight, v.clone()),
        Samples::Rgba16(v) => (BitDepth::Sixteen, v.iter().flat_map(|s| s.to_be_bytes()).collect()),
    };
    let mut raw = RawImage::new(pixels.width, pixels.height, ColorType::RGBA, bit_depth, data)
        .map_err(|e| Error::internal(format!("oxipng raw image: {e}")))?;
    // The colour policy has decided the profile the image holds.
    if let Some(icc) = &image.icc {
        raw.add_icc_profile(icc);
    }
    raw.create_optimized_png(&lossless_preset(options)).map_err(|e| Error::internal(format!("oxipng: {e}")))
}

/// Encodes decoded pixels as a quantized (paletted) PNG at libimagequant quality `0-quality`.
pub(crate) fn encode_quantized(image: &Image, quality: u8, options: &Options) -> Result<Vec<u8>, Error> {
    let pixels = image.first();
    let (palette, indices, _) =
        quantize(pixels, Quality::new(0, quality), options)?.ok_or_else(|| Error::internal("quantization failed at minimum quality 0"))?;
    write_paletted(pixels.width, pixels.height, &palette, &indices, &[], image.icc.as_deref(), options)
}

/// A quantized PNG written again with the next effort's writer (oxipng on the palette image:
/// lossless), when that is smaller and decodes to the same pixels. For the result of a quality
/// search: its steps are scored on pixels, which the writer does not change, so only the answer
/// pays for the slower write. On 21 `png_real` images quantized at quality 80 the effort 3 writer
/// (filters None and Bigrams, near-optimal deflate, palette sort) is 8.5 % smaller than effort 2's.
pub(crate) fn rewrite_harder(data: Vec<u8>, options: &Options) -> Result<Vec<u8>, Error> {
    options.cancel.check()?;
    let mut opts = quantized_preset(options.effort.saturating_add(1));
    opts.max_decompressed_size = Some(max_raw_bytes(options));
    opts.strip = StripChunks::None;
    let Ok(rewritten) = oxipng::optimize_from_memory(&data, &opts) else { return Ok(data) };
    if rewritten.len() >= data.len() {
        return Ok(data);
    }
    let same = matches!((decode(&data, options), decode(&rewritten, options)), (Ok(a), Ok(b)) if a.same_pixels(&b));
    Ok(if same { rewritten } else { data })
}

/// The default image of a PNG with its ICC profile and orientation, for conversions.
pub(crate) fn decode_image(data: &[u8], options: &Options) -> Result<Image, Error> {
    let chunks = png_chunks(data)?;
    if chunks.iter().any(|c| &c.name == b"acTL") && !options.first_frame {
        return Err(Error::needs("first_frame", "converting an animated PNG keeps only its first frame (its other frames would be lost)"));
    }
    let mut image = Image::still(decode(data, options)?);
    image.orientation = chunks.iter().find(|c| &c.name == b"eXIf").and_then(|c| exif_orientation(c.data)).unwrap_or(1);
    image.icc = embedded_icc(data);
    Ok(image)
}

/// Palette and indices, or `None` when the minimum quality cannot be met (pngquant's exit 99).
type Quantized = (Vec<RGBA8>, Vec<u8>, Option<u8>);

/// libimagequant's settings, stopping (with `Error::Aborted`) soon after `cancel` is set.
pub(crate) fn quantizer(cancel: &crate::Cancel) -> imagequant::Attributes {
    let mut attr = imagequant::new();
    let cancel = cancel.clone();
    attr.set_progress_callback(
        move |_| if cancel.is_cancelled() { imagequant::ControlFlow::Break } else { imagequant::ControlFlow::Continue },
    );
    attr
}

fn quantize(pixels: &Pixels, quality: Quality, options: &Options) -> Result<Option<Quantized>, Error> {
    let effort = options.effort;
    let rgba = pixels.to_rgba8();
    let bitmap: &[imagequant::RGBA] = bytemuck::cast_slice(&rgba);
    let mut attr = quantizer(&options.cancel);
    // pngquant's default speed is 4 (our default effort 2); more effort, slower and better.
    attr.set_speed(i32::from(6 - effort.min(5))).map_err(|e| Error::internal(format!("imagequant speed: {e}")))?;
    attr.set_quality(quality.min, quality.max).map_err(|e| Error::internal(format!("imagequant quality: {e}")))?;
    let mut image = attr
        .new_image_borrowed(bitmap, pixels.width as usize, pixels.height as usize, 0.0)
        .map_err(|e| Error::internal(format!("imagequant image: {e}")))?;
    let mut result = match attr.quantize(&mut image) {
        Ok(r) => r,
        Err(imagequant::Error::QualityTooLow) => return Ok(None),
        Err(imagequant::Error::Aborted) => return Err(Error::Cancelled),
        Err(e) => return Err(Error::internal(format!("imagequant: {e}"))),
    };
    result.set_dithering_level(1.0).map_err(|e| Error::internal(format!("imagequant dithering: {e}")))?;
    let (palette, indices) = result.remapped(&mut image).map_err(|e| Error::internal(format!("imagequant remap: {e}")))?;
    let palette = palette.into_iter().map(|c| RGBA8::new(c.r, c.g, c.b, c.a)).collect();
    Ok(Some((palette, indices, result.quantization_quality())))
}

fn palette_pixels(palette: &[RGBA8], indices: &[u8], info: &ImageInfo) -> Pixels {
    let data = indices.iter().flat_map(|&i| {
        let c = palette.get(usize::from(i)).copied().unwrap_or_default();
        [c.r, c.g, c.b, c.a]
    });
    Pixels::rgba8(info.width, info.height, data.collect())
}

/// oxipng's settings for a lossless re-encoding at `options.effort`: oxipng's own preset of the
/// same number (so effort 2 is `oxipng -o 2`), but for effort 1, which sits between oxipng's
/// presets 0 and 1: filters None and Bigrams, one libdeflate level-8 pass. On the corpus PNGs of
/// 1 MP or more that is 0.80 × the bytes of the old server's Go re-encode in 0.18 × its time
/// (`-o 1`: 0.77 × in 0.48 ×; `-o 0`: 0.83 × in 0.06 ×).
fn lossless_preset(options: &Options) -> oxipng::Options {
    let mut opts = match options.effort {
        1 => oxipng::Options {
            filters: [FilterStrategy::NONE, FilterStrategy::Bigrams].into_iter().collect(),
            deflater: Deflater::Libdeflater { compression: 8 },
            ..oxipng::Options::from_preset(2)
        },
        effort => oxipng::Options::from_preset(effort),
    };
    opts.max_decompressed_size = Some(max_raw_bytes(options));
    opts
}

/// oxipng's settings for writing a quantized (paletted) image at `effort`. The write was most of
/// the lossy CPU time: on the corpus's large screenshots, near-optimal deflate (libdeflate 10)
/// with a Bigrams filter trial cost five times a lazy level-8 pass for 8% fewer bytes, so the
/// default stops below it.
/// - 1: filter None, libdeflate 5.
/// - 2 (default): filter None, libdeflate 8.
/// - 3: oxipng preset 1 (filters None and Bigrams, near-optimal level 10): the default before.
/// - 4, 5, 6: oxipng presets 2, 4 and 6.
fn quantized_preset(effort: u8) -> oxipng::Options {
    let with = |filters: &[FilterStrategy], compression| oxipng::Options {
        filters: filters.iter().cloned().collect(),
        deflater: Deflater::Libdeflater { compression },
        // libimagequant already orders the palette (transparent entries first, then by
        // popularity); oxipng's own sort would only add a trial compression, a third of the write,
        // which under filter None gains nothing (0.02% on the large corpus PNGs).
        palette_reduction: false,
        ..oxipng::Options::from_preset(2)
    };
    match effort {
        1 => with(&[FilterStrategy::NONE], 5),
        2 => with(&[FilterStrategy::NONE], 8),
        3 => oxipng::Options::from_preset(1),
        4 => oxipng::Options::from_preset(2),
        5 => oxipng::Options::from_preset(4),
        _ => oxipng::Options::from_preset(6),
    }
}

fn max_raw_bytes(options: &Options) -> usize {
    // 8 bytes per pixel (16-bit RGBA) plus one filter byte per row, for the largest allowed image.
    usize::try_from(options.limits.max_pixels.saturating_mul(8).saturating_add(u64::from(options.limits.max_dimension)))
        .unwrap_or(usize::MAX)
}

/// Rewrites the chunk list so that only what the policy allows reaches the optimiser. Under
/// `strip` the chunks that say how to display the colours stay when the colour policy carries
/// the profile (`icc_carried`: a lossless output that cannot convert).
fn apply_metadata_policy(input: &[u8], policy: MetadataPolicy, icc_carried: bool) -> Result<Vec<u8>, Error> {
    let chunks = png_chunks(input)?;
    let orientation_exif;
    let mut kept: Vec<(&[u8; 4], &[u8])> = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let critical = chunk.name[0].is_ascii_uppercase();
        let keep = critical
            || PNG_IMAGE_CHUNKS.contains(&chunk.name)
            || match policy {
                MetadataPolicy::Keep => true,
                MetadataPolicy::Strip => icc_carried && PNG_COLOUR_CHUNKS.contains(&chunk.name),
                MetadataPolicy::Safe => PNG_DISPLAY_CHUNKS.contains(&chunk.name),
            };
        if keep {
            kept.push((&chunk.name, chunk.data));
        }
    }
    // Under `safe` and `strip`, an eXIf chunk is replaced by one that holds only the orientation:
    // the picture must not turn.
    if policy != MetadataPolicy::Keep
        && let Some(o) = chunks.iter().find(|c| &c.name == b"eXIf").and_then(|c| exif_orientation(c.data)).filter(|&o| o != 1)
    {
        orientation_exif = orientation_only_exif(o);
        let idat = kept.iter().position(|(n, _)| *n == b"IDAT").unwrap_or(kept.len());
        kept.insert(idat, (b"eXIf", &orientation_exif));
    }
    Ok(write_png(kept))
}

/// Decodes the default image to RGBA, 8- or 16-bit as stored.
pub(crate) fn decode(data: &[u8], options: &Options) -> Result<Pixels, Error> {
    let info = super::probe(data)?;
    super::check_header(&info, &options.limits)?;
    let raw_estimate = u64::from(info.width) * u64::from(info.height);
    if raw_estimate / 8 > (data.len() as u64).saturating_mul(MAX_DEFLATE_RATIO) {
        return Err(Error::corrupt(format!(
            "PNG declares {}x{} pixels, more than its {} bytes can hold",
            info.width,
            info.height,
            data.len()
        )));
    }
    let limits = png::Limits { bytes: max_raw_bytes(options) };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(data), limits);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let size = reader.output_buffer_size().ok_or_else(|| Error::corrupt("PNG output size overflows"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(png_error)?;
    buf.truncate(frame.buffer_size());
    let (width, height) = (frame.width, frame.height);
    let channels = frame.color_type.samples();
    let samples = match frame.bit_depth {
        png::BitDepth::Sixteen => {
            let wide: Vec<u16> = buf.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect();
            Samples::Rgba16(to_rgba(wide, channels, u16::MAX))
        }
        png::BitDepth::Eight => Samples::Rgba8(to_rgba(buf, channels, u8::MAX)),
        other => return Err(Error::internal(format!("PNG decoder left {other:?}-bit samples after expansion"))),
    };
    Ok(Pixels { width, height, samples })
}

fn to_rgba<T: Copy>(samples: Vec<T>, channels: usize, opaque: T) -> Vec<T> {
    match channels {
        4 => samples,
        3 => samples.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], opaque]).collect(),
        2 => samples.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        _ => samples.iter().flat_map(|&g| [g, g, g, opaque]).collect(),
    }
}

fn png_error(e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::LimitsExceeded => Error::corrupt("PNG needs more memory than the limits allow"),
        other => Error::corrupt(format!("PNG: {other}")),
    }
}
