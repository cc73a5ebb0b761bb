//! TIFF input through the `tiff` crate: strips and tiles, samples interleaved or in separate planes
//! (PlanarConfiguration 2); LZW, Deflate, PackBits, JPEG and CCITT fax; 1-16-bit grey, grey+alpha,
//! RGB, RGBA, palette, CMYK(A), YCbCr without subsampling and 32-bit float RGB(A)/grey. Refused
//! by name: other sample depths (12-bit, 24-bit, ...), signed samples, old-style JPEG, LZMA and
//! FillOrder 2. The first page only (a note says when there are more); the `Orientation` tag and
//! the ICC profile are kept. Never written.

use std::borrow::Cow;
use std::io::Cursor;

use tiff::decoder::{Decoder, DecodingResult, Limits as TiffLimits};
use tiff::tags::{ExtraSamples, PhotometricInterpretation, PlanarConfiguration, SampleFormat, Tag};
use tiff::{ColorType, TiffError};

use crate::error::Error;
use crate::image::Image;
use crate::image::pixels::{Pixels, Samples};
use crate::options::Limits;

/// Width and height of the first page, from its IFD.
pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    check_named_features(data)?;
    let mut decoder = Decoder::new(Cursor::new(data)).map_err(tiff_error)?;
    decoder.dimensions().map_err(tiff_error)
}

/// Whether the first page's samples are deeper than 8 bits (it then decodes to RGBA16).
pub(crate) fn is_deep(data: &[u8]) -> bool {
    Decoder::new(Cursor::new(data)).and_then(|mut d| d.colortype()).is_ok_and(|color| color.bit_depth() > 8)
}

/// The first page as RGBA (8-bit, or 16-bit for deeper samples), with orientation and ICC.
pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    check_named_features(data)?;
    let mut decoder = Decoder::new(Cursor::new(data)).map_err(tiff_error)?;
    // The crate has no palette support: such a page is read as grey (its indices, by a copy of the
    // file whose PhotometricInterpretation says so) and the ColorMap applied here.
    let palette = decoder.find_tag_unsigned::<u16>(Tag::PhotometricInterpretation).map_err(tiff_error)?
        == Some(PhotometricInterpretation::RGBPalette.to_u16());
    let colormap = if palette { Some(decoder.get_tag_u16_vec(Tag::ColorMap).map_err(tiff_error)?) } else { None };
    let (width, height) = decoder.dimensions().map_err(tiff_error)?;
    let separate_planes =
        decoder.find_tag_unsigned::<u16>(Tag::PlanarConfiguration).map_err(tiff_error)? == Some(PlanarConfiguration::Planar.to_u16());
    let plane_rows = plane_rows(&mut decoder, (width, height), separate_planes)?;
    // One copy of the file carries every patch the crate needs.
    let mut patched = Cow::Borrowed(data);
    if palette {
        let grey = with_inline_value(&patched, Tag::PhotometricInterpretation, PhotometricInterpretation::BlackIsZero.to_u16().into());
        patched = Cow::Owned(grey.ok_or_else(|| Error::unsupported("TIFF: a palette image whose first IFD cannot be read as grey"))?);
    }
    if plane_rows != height {
        let taller = with_inline_value(&patched, Tag::ImageLength, plane_rows);
        patched =
            Cow::Owned(taller.ok_or_else(|| {
                Error::unsupported("TIFF: separate planes in tiles past the bottom edge, in an IFD that cannot be patched")
            })?);
    }
    if let Cow::Owned(copy) = &patched {
        decoder = Decoder::new(Cursor::new(&copy[..])).map_err(tiff_error)?;
    }
    // The pixel limit was checked on the page's dimensions (`plane_rows` adds a bounded few);
    // the crate's own buffer limit then bounds what one page may allocate (up to 8
    // samples of 8 bytes per pixel).
    let bound =
        (u64::from(width) * u64::from(plane_rows)).min(limits.max_pixels.saturating_mul(2)).saturating_mul(64).min(usize::MAX as u64)
            as usize;
    let mut tiff_limits = TiffLimits::default();
    tiff_limits.decoding_buffer_size = bound.max(1 << 20);
    tiff_limits.intermediate_buffer_size = bound.max(1 << 20);
    decoder = decoder.with_limits(tiff_limits);
    let color = decoder.colortype().map_err(tiff_error)?;
    let associated_alpha = decoder
        .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
        .map_err(tiff_error)?
        .is_some_and(|v| v.first() == Some(&ExtraSamples::AssociatedAlpha.to_u16()));
    let orientation = decoder.find_tag_unsigned::<u16>(Tag::Orientation).ok().flatten().filter(|o| (1..=8).contains(o)).unwrap_or(1);
    let icc = match decoder.find_tag(Tag::IccProfile) {
        Ok(Some(value)) => value.into_u8_vec().ok().filter(|v| !v.is_empty()),
        _ => None,
    };
    check_samples(&mut decoder, color)?;
    // `read_image_to_buffer` reads every plane of a planar page (`read_image` only the first).
    let mut result = DecodingResult::U8(Vec::new());
    let layout = decoder.read_image_to_buffer(&mut result).map_err(tiff_error)?;
    if result.as_buffer(0).as_bytes().len() < layout.complete_len {
        // The crate falls back to the first plane when all of them exceed its buffer limit.
        return Err(Error::corrupt("TIFF: its colour planes need more memory than the image's size allows"));
    }
    if separate_planes && color.num_samples() > 1 {
        result = interleave(result, color, width, height, plane_rows)?;
    }
    let pages = decoder.more_images();
    let samples = to_rgba(result, color, width, height, colormap.as_deref())?;
    let mut pixels = Pixels { width, height, samples };
    if associated_alpha {
        unpremultiply(&mut pixels);
    }
    let mut image = Image::still(pixels);
    image.orientation = orientation;
    image.icc = icc;
    if pages {
        image.notes.push("multi-page TIFF: only the first page was read".into());
    }
    Ok(image)
}

/// Refuses by name, from the first IFD and before the crate reads it, the compressions and bit
/// order it has no decoder for (its own errors for them name other things: a size mismatch, a
/// short read).
fn check_named_features(data: &[u8]) -> Result<(), Error> {
    let refused = match (inline_value(data, Tag::Compression), inline_value(data, Tag::FillOrder)) {
        (Some(6), _) => "old-style JPEG compression (6)",
        (Some(34925), _) => "LZMA compression",
        (_, Some(2)) => "FillOrder 2 (bits reversed in each byte)",
        _ => return Ok(()),
    };
    Err(Error::unsupported(format!("TIFF: {refused} is not supported")))
}

/// Refuses by name the samples `to_rgba` has no conversion for: signed integers, and depths the
/// crate does not unpack (it unpacks 1, 2 and 4 bits only for grey and palettes, and whole bytes
/// otherwise).
fn check_samples<R: std::io::Read + std::io::Seek>(decoder: &mut Decoder<R>, color: ColorType) -> Result<(), Error> {
    let formats = decoder.find_tag_unsigned_vec::<u16>(Tag::SampleFormat).map_err(tiff_error)?;
    if formats.is_some_and(|f| f.first() == Some(&SampleFormat::Int.to_u16())) {
        return Err(Error::unsupported("TIFF: signed integer samples are not supported"));
    }
    match color.bit_depth() {
        1 | 2 | 4 | 8 | 16 | 32 => Ok(()),
        bits => Err(Error::unsupported(format!("TIFF: {bits}-bit samples are not supported"))),
    }
}

/// Rows each plane is read with: the page's height, but for tiles in separate planes whose
/// bottom row overhangs the page. For those, tiff 0.11.3 sizes the bottom tiles of every plane
/// after the first as whole tiles (it places them by their index as if in the first plane) and
/// overruns its buffer; such a page is read as tall as its tiles (a copy of the file says so),
/// which they hold in full anyway, and `interleave` drops the rows past its height.
fn plane_rows<R: std::io::Read + std::io::Seek>(
    decoder: &mut Decoder<R>,
    (width, height): (u32, u32),
    separate_planes: bool,
) -> Result<u32, Error> {
    let samples = decoder.find_tag_unsigned::<u16>(Tag::SamplesPerPixel).map_err(tiff_error)?.unwrap_or(1);
    let tile_length = decoder.find_tag_unsigned::<u32>(Tag::TileLength).map_err(tiff_error)?;
    match tile_length {
        Some(tile) if separate_planes && samples > 1 && tile > 0 && height % tile != 0 => {
            // The rows added are held to the page's pixels or 256K pixels (a few MB), whichever
            // is more, so the memory estimate still covers them.
            let allowed = (u64::from(width) * u64::from(height)).max(1 << 18);
            let rows = height.div_ceil(tile).checked_mul(tile).filter(|&rows| u64::from(width) * u64::from(rows - height) <= allowed);
            rows.ok_or_else(|| Error::unsupported("TIFF: separate planes in tiles far taller than the image are not supported"))
        }
        _ => Ok(height),
    }
}

/// Separate planes (all of the first sample, then all of the second, ...; each `plane_rows`
/// tall) to the interleaved samples of the page's `height` rows that `to_rgba` reads. The planar
/// buffer is dropped before `to_rgba` allocates, so the peak is two copies, as for an interleaved
/// page.
fn interleave(result: DecodingResult, color: ColorType, width: u32, height: u32, plane_rows: u32) -> Result<DecodingResult, Error> {
    let samples = usize::from(color.num_samples());
    let pixels = width as usize * height as usize;
    let plane = width as usize * plane_rows as usize;
    fn gather<T: Copy>(planes: &[T], samples: usize, pixels: usize, plane: usize) -> Result<Vec<T>, Error> {
        if planes.len() < plane * samples {
            return Err(Error::corrupt("TIFF: image data is shorter than its dimensions"));
        }
        Ok((0..pixels).flat_map(|i| (0..samples).map(move |c| planes[c * plane + i])).collect())
    }
    if color.bit_depth() < 8 {
        // Rows of each plane are padded to whole bytes: not a layout `gather` reads.
        return Err(Error::unsupported(format!("TIFF: separate planes of {}-bit samples are not supported", color.bit_depth())));
    }
    Ok(match result {
        DecodingResult::U8(v) => DecodingResult::U8(gather(&v, samples, pixels, plane)?),
        DecodingResult::U16(v) => DecodingResult::U16(gather(&v, samples, pixels, plane)?),
        DecodingResult::F32(v) => DecodingResult::F32(gather(&v, samples, pixels, plane)?),
        // No other sample type has a conversion: `to_rgba` refuses it by its colour type.
        other => other,
    })
}

fn tiff_error(e: TiffError) -> Error {
    match e {
        TiffError::UnsupportedError(e) => Error::unsupported(format!("TIFF: {e}")),
        TiffError::LimitsExceeded => Error::corrupt("TIFF: a strip or tile needs more memory than the image's size allows"),
        TiffError::IntSizeError => Error::corrupt("TIFF: a size does not fit in memory"),
        TiffError::UsageError(e) => Error::internal(format!("TIFF: {e}")),
        e => Error::corrupt(format!("TIFF: {e}")),
    }
}

/// Samples of `n` bits per pixel row, rows padded to whole bytes, widened to 8 bits.
fn unpack_bits(data: &[u8], bits: u8, channels: usize, width: u32, height: u32) -> Result<Vec<u8>, Error> {
    let per_row = width as usize * channels;
    if bits == 8 {
        return Ok(data.to_vec());
    }
    let row_bytes = (per_row * usize::from(bits)).div_ceil(8);
    if data.len() < row_bytes * height as usize {
        return Err(Error::corrupt("TIFF: image data is shorter than its dimensions"));
    }
    let max = (1u16 << bits) - 1;
    let mut out = Vec::with_capacity(per_row * height as usize);
    for row in data.chunks_exact(row_bytes).take(height as usize) {
        for i in 0..per_row {
            let bit = i * usize::from(bits);
            let byte = row[bit / 8];
            let shift = 8 - usize::from(bits) - bit % 8;
            let v = (u16::from(byte) >> shift) & max;
            out.push((v * 255 / max) as u8);
        }
    }
    Ok(out)
}

/// Any supported colour type to RGBA, 8- or 16-bit.
/// (The crate itself inverts WhiteIsZero grey.) With `colormap`, grey samples are palette indices.
fn to_rgba(result: DecodingResult, color: ColorType, width: u32, height: u32, colormap: Option<&[u16]>) -> Result<Samples, Error> {
    let pixels = width as usize * height as usize;
    let short = || Error::corrupt("TIFF: image data is shorter than its dimensions");
    let unsupported = |c: ColorType| Error::unsupported(format!("TIFF: colour type {c:?} is not supported"));
    match (result, color) {
        (DecodingResult::U8(data), ColorType::Multiband { bit_depth: 8, num_samples: 2 }) if colormap.is_some() => {
            let map = colormap.unwrap_or(&[]);
            if map.len() < 3 * 256 {
                return Err(Error::corrupt("TIFF: the colour map is shorter than the bit depth needs"));
            }
            let data = data.get(..pixels * 2).ok_or_else(short)?;
            Ok(Samples::Rgba8(
                data.chunks_exact(2)
                    .flat_map(|p| {
                        let i = usize::from(p[0]);
                        [(map[i] >> 8) as u8, (map[256 + i] >> 8) as u8, (map[512 + i] >> 8) as u8, p[1]]
                    })
                    .collect(),
            ))
        }
        (DecodingResult::U8(data), ColorType::Palette(bits) | ColorType::Gray(bits)) if bits <= 8 && colormap.is_some() => {
            let map = colormap.unwrap_or(&[]);
            let entries = 1usize << bits;
            if map.len() < 3 * entries {
                return Err(Error::corrupt("TIFF: the colour map is shorter than the bit depth needs"));
            }
            let row_bytes = (width as usize * usize::from(bits)).div_ceil(8);
            if data.len() < row_bytes * height as usize {
                return Err(short());
            }
            let mut out = Vec::with_capacity(pixels * 4);
            let mask = (1u16 << bits) - 1;
            for row in data.chunks_exact(row_bytes).take(height as usize) {
                for x in 0..width as usize {
                    let bit = x * usize::from(bits);
                    let index = if bits == 8 {
                        usize::from(row[x])
                    } else {
                        usize::from((u16::from(row[bit / 8]) >> (8 - usize::from(bits) - bit % 8)) & mask)
                    };
                    for c in 0..3 {
                        out.push((map[c * entries + index] >> 8) as u8);
                    }
                    out.push(u8::MAX);
                }
            }
            Ok(Samples::Rgba8(out))
        }
        (DecodingResult::U8(data), ColorType::Gray(bits)) if bits <= 8 => {
            let grey = unpack_bits(&data, bits, 1, width, height)?;
            let grey = grey.get(..pixels).ok_or_else(short)?;
            Ok(Samples::Rgba8(grey.iter().flat_map(|&g| [g, g, g, u8::MAX]).collect()))
        }
        (DecodingResult::U8(data), ColorType::GrayA(8) | ColorType::Multiband { bit_depth: 8, num_samples: 2 }) => {
            let data = data.get(..pixels * 2).ok_or_else(short)?;
            Ok(Samples::Rgba8(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect()))
        }
        (DecodingResult::U8(data), ColorType::RGB(8)) | (DecodingResult::U8(data), ColorType::YCbCr(8)) => {
            let data = data.get(..pixels * 3).ok_or_else(short)?;
            let ycbcr = matches!(color, ColorType::YCbCr(_));
            Ok(Samples::Rgba8(
                data.chunks_exact(3).flat_map(|p| if ycbcr { ycbcr_to_rgb(p) } else { [p[0], p[1], p[2], u8::MAX] }).collect(),
            ))
        }
        (DecodingResult::U8(data), ColorType::RGBA(8)) => Ok(Samples::Rgba8(data.get(..pixels * 4).ok_or_else(short)?.to_vec())),
        (DecodingResult::U8(data), ColorType::CMYK(8)) | (DecodingResult::U8(data), ColorType::CMYKA(8)) => {
            let n = if matches!(color, ColorType::CMYK(_)) { 4 } else { 5 };
            let data = data.get(..pixels * n).ok_or_else(short)?;
            Ok(Samples::Rgba8(
                data.chunks_exact(n)
                    .flat_map(|p| {
                        let k = 255 - u16::from(p[3]);
                        let c = |v: u8| ((255 - u16::from(v)) * k / 255) as u8;
                        [c(p[0]), c(p[1]), c(p[2]), if n == 5 { p[4] } else { u8::MAX }]
                    })
                    .collect(),
            ))
        }
        (DecodingResult::U16(data), ColorType::Gray(16)) => {
            let data = data.get(..pixels).ok_or_else(short)?;
            Ok(Samples::Rgba16(data.iter().flat_map(|&g| [g, g, g, u16::MAX]).collect()))
        }
        (DecodingResult::U16(data), ColorType::GrayA(16) | ColorType::Multiband { bit_depth: 16, num_samples: 2 }) => {
            let data = data.get(..pixels * 2).ok_or_else(short)?;
            Ok(Samples::Rgba16(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect()))
        }
        (DecodingResult::U16(data), ColorType::RGB(16)) => {
            let data = data.get(..pixels * 3).ok_or_else(short)?;
            Ok(Samples::Rgba16(data.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u16::MAX]).collect()))
        }
        (DecodingResult::U16(data), ColorType::RGBA(16)) => Ok(Samples::Rgba16(data.get(..pixels * 4).ok_or_else(short)?.to_vec())),
        (DecodingResult::U16(data), ColorType::CMYK(16)) | (DecodingResult::U16(data), ColorType::CMYKA(16)) => {
            let n = if matches!(color, ColorType::CMYK(_)) { 4 } else { 5 };
            let data = data.get(..pixels * n).ok_or_else(short)?;
            Ok(Samples::Rgba16(
                data.chunks_exact(n)
                    .flat_map(|p| {
                        let k = 65535 - u32::from(p[3]);
                        let c = |v: u16| ((65535 - u32::from(v)) * k / 65535) as u16;
                        [c(p[0]), c(p[1]), c(p[2]), if n == 5 { p[4] } else { u16::MAX }]
                    })
                    .collect(),
            ))
        }
        (DecodingResult::F32(data), ColorType::RGB(32) | ColorType::RGBA(32) | ColorType::Gray(32)) => {
            let n = match color {
                ColorType::RGB(_) => 3,
                ColorType::RGBA(_) => 4,
                _ => 1,
            };
            let data = data.get(..pixels * n).ok_or_else(short)?;
            let q = |v: f32| (v.clamp(0.0, 1.0) * 65535.0 + 0.5) as u16;
            Ok(Samples::Rgba16(
                data.chunks_exact(n)
                    .flat_map(|p| match n {
                        3 => [q(p[0]), q(p[1]), q(p[2]), u16::MAX],
                        4 => [q(p[0]), q(p[1]), q(p[2]), q(p[3])],
                        _ => [q(p[0]), q(p[0]), q(p[0]), u16::MAX],
                    })
                    .collect(),
            ))
        }
        (_, color) => Err(unsupported(color)),
    }
}

/// JPEG-style (BT.601 full range) YCbCr to RGB.
fn ycbcr_to_rgb(p: &[u8]) -> [u8; 4] {
    let (y, cb, cr) = (f32::from(p[0]), f32::from(p[1]) - 128.0, f32::from(p[2]) - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [c(y + 1.402 * cr), c(y - 0.344_136 * cb - 0.714_136 * cr), c(y + 1.772 * cb), u8::MAX]
}

/// Associated (premultiplied) alpha to the straight alpha every encoder expects.
fn unpremultiply(pixels: &mut Pixels) {
    match &mut pixels.samples {
        Samples::Rgba8(v) => {
            for p in v.chunks_exact_mut(4) {
                let a = u32::from(p[3]);
                if a > 0 && a < 255 {
                    for c in &mut p[..3] {
                        *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
                    }
                }
            }
        }
        Samples::Rgba16(v) => {
            for p in v.chunks_exact_mut(4) {
                let a = u64::from(p[3]);
                if a > 0 && a < 65535 {
                    for c in &mut p[..3] {
                        *c = ((u64::from(*c) * 65535 + a / 2) / a).min(65535) as u16;
                    }
                }
            }
        }
    }
}

/// Where the first IFD of a classic (not Big) TIFF holds `tag` as a single SHORT or LONG in its
/// entry: the value's offset, whether it is a SHORT, and the byte order (little-endian).
fn inline_entry(data: &[u8], tag: Tag) -> Option<(usize, bool, bool)> {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    let le = match data.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at =
        |at: usize| data.get(at..at + 2).map(|b| if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) });
    let u32_at = |at: usize| {
        data.get(at..at + 4)
            .map(|b| if le { u32::from_le_bytes([b[0], b[1], b[2], b[3]]) } else { u32::from_be_bytes([b[0], b[1], b[2], b[3]]) })
    };
    let ifd = u32_at(4)? as usize;
    let entries = usize::from(u16_at(ifd)?);
    for i in 0..entries {
        let entry = ifd.checked_add(2 + 12 * i)?;
        if u16_at(entry)? == tag.to_u16() && u32_at(entry + 4)? == 1 {
            return match u16_at(entry + 2)? {
                SHORT => Some((entry + 8, true, le)),
                LONG => Some((entry + 8, false, le)),
                _ => None,
            };
        }
    }
    None
}

/// The value of `tag` where [`inline_entry`] finds it.
fn inline_value(data: &[u8], tag: Tag) -> Option<u32> {
    let (at, short, le) = inline_entry(data, tag)?;
    let b = data.get(at..at + 4)?;
    Some(match (short, le) {
        (true, true) => u16::from_le_bytes([b[0], b[1]]).into(),
        (true, false) => u16::from_be_bytes([b[0], b[1]]).into(),
        (false, true) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (false, false) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
    })
}

/// A copy of the file whose `tag` (where [`inline_entry`] finds it) reads `value`; `None` where
/// there is no such entry or the value does not fit.
fn with_inline_value(data: &[u8], tag: Tag, value: u32) -> Option<Vec<u8>> {
    let (at, short, le) = inline_entry(data, tag)?;
    let bytes = match (short, le) {
        (true, true) => u16::try_from(value).ok()?.to_le_bytes().to_vec(),
        (true, false) => u16::try_from(value).ok()?.to_be_bytes().to_vec(),
        (false, true) => value.to_le_bytes().to_vec(),
        (false, false) => value.to_be_bytes().to_vec(),
    };
    let mut copy = data.to_vec();
    copy.get_mut(at..at + bytes.len())?.copy_from_slice(&bytes);
    Some(copy)
}
