//! BMP input. image-rs's BMP decoder reads Windows and OS/2 1.x files: 1/2/4/8-bit palettes
//! (RLE4/RLE8 too), 16/24/32-bit (bit fields included), top-down and bottom-up. Read here, from
//! the headers alone: OS/2 2.x headers (16 to 64 bytes; handed to image-rs as the Windows header
//! they extend), OS/2 RLE24, and the JPEG or PNG stream of a BI_JPEG/BI_PNG file (decoded by the
//! engine's own decoders; its size must be the BMP's). OS/2 Huffman 1D is refused by name. An
//! embedded ICC profile (V5 headers) is not carried: the decoder does not expose it. Never written.

use std::io::Cursor;

use image::codecs::bmp::BmpDecoder;
use image::error::ImageError;
use image::{ColorType, ImageDecoder};

use crate::error::Error;
use crate::format::Format;
use crate::image::Image;
use crate::image::pixels::Pixels;
use crate::options::Options;

const FILE_HEADER: usize = 14;
/// BITMAPINFOHEADER, the Windows header every OS/2 2.x header begins like.
const INFO_HEADER: usize = 40;

/// The fields of the file and info headers that choose how a BMP is read.
struct Header {
    size: usize,
    width: i64,
    height: i64,
    bits: u16,
    compression: u32,
    data_offset: usize,
}

/// How a BMP is decoded, decided once from its header.
enum Route {
    /// image-rs reads it as it is.
    ImageRs,
    /// An OS/2 2.x header: image-rs reads the file with it rewritten as a BITMAPINFOHEADER.
    Os2v2,
    /// OS/2 2.x 24-bit run-length encoding, decoded here.
    Rle24,
    /// BI_JPEG or BI_PNG: the pixel data is a whole JPEG or PNG stream.
    Embedded(Format),
}

fn read_header(data: &[u8]) -> Result<Header, Error> {
    let short = || Error::corrupt("BMP: the file is shorter than its headers");
    let u16_at = |at: usize| data.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or_else(short);
    let u32_at = |at: usize| data.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(short);
    let size = u32_at(FILE_HEADER)? as usize;
    let data_offset = u32_at(10)? as usize;
    if size == 12 {
        // BITMAPCOREHEADER (OS/2 1.x): 16-bit sizes.
        return Ok(Header {
            size,
            width: i64::from(u16_at(18)?),
            height: i64::from(u16_at(20)?),
            bits: u16_at(24)?,
            compression: 0,
            data_offset,
        });
    }
    // Fields an OS/2 2.x header of fewer than 40 bytes leaves out are zero.
    let compression = if size >= 20 { u32_at(30)? } else { 0 };
    Ok(Header {
        size,
        width: i64::from(u32_at(18)? as i32),
        height: i64::from(u32_at(22)? as i32),
        bits: u16_at(28)?,
        compression,
        data_offset,
    })
}

fn route(header: &Header) -> Result<Route, Error> {
    const WINDOWS: [usize; 6] = [12, 40, 52, 56, 108, 124];
    let os2v2 = (16..=64).contains(&header.size) && !WINDOWS.contains(&header.size);
    match (os2v2, header.compression) {
        (false, 4) => Ok(Route::Embedded(Format::Jpeg)),
        (false, 5) => Ok(Route::Embedded(Format::Png)),
        (false, _) => Ok(Route::ImageRs),
        (true, 0..=2) => Ok(Route::Os2v2),
        (true, 3) => Err(Error::unsupported("BMP: OS/2 Huffman 1D compression is not supported")),
        (true, 4) if header.bits == 24 => Ok(Route::Rle24),
        (true, c) => Err(Error::unsupported(format!("BMP: OS/2 compression {c} with {} bits per pixel is not supported", header.bits))),
    }
}

/// Width and height from the file and info headers.
pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    let header = read_header(data)?;
    match route(&header)? {
        Route::ImageRs => {
            let decoder = BmpDecoder::new(Cursor::new(data)).map_err(bmp_error)?;
            Ok(decoder.dimensions())
        }
        _ => header_size(&header),
    }
}

/// The header's size, for the routes image-rs does not check.
fn header_size(header: &Header) -> Result<(u32, u32), Error> {
    let side = |v: i64| u32::try_from(v.unsigned_abs()).ok().filter(|&v| v > 0);
    match (side(header.width), side(header.height)) {
        (Some(w), Some(h)) if header.width > 0 => Ok((w, h)),
        _ => Err(Error::corrupt(format!("BMP: the header declares a {}x{} image", header.width, header.height))),
    }
}

/// The image as RGBA8 (or as its embedded PNG decodes).
pub(crate) fn decode(data: &[u8], options: &Options) -> Result<Image, Error> {
    let header = read_header(data)?;
    match route(&header)? {
        Route::ImageRs => decode_image_rs(data, options),
        Route::Os2v2 => decode_image_rs(&os2v2_as_windows(data, &header)?, options),
        Route::Rle24 => {
            let (width, height) = checked_size(&header, options)?;
            Ok(Image::still(rle24(data, &header, width, height)?))
        }
        Route::Embedded(format) => decode_embedded(data, &header, format, options),
    }
}

/// The header's size, held to the limits before anything is allocated.
fn checked_size(header: &Header, options: &Options) -> Result<(u32, u32), Error> {
    within_limits(header_size(header)?, options)
}

/// `size` when the limits allow an image of that size.
fn within_limits((width, height): (u32, u32), options: &Options) -> Result<(u32, u32), Error> {
    super::check_header(&crate::format::ImageInfo { format: Format::Bmp, width, height }, &options.limits)?;
    Ok((width, height))
}

fn decode_image_rs(data: &[u8], options: &Options) -> Result<Image, Error> {
    let mut decoder = BmpDecoder::new(Cursor::new(data)).map_err(bmp_error)?;
    let (width, height) = within_limits(decoder.dimensions(), options)?;
    let pixels = u64::from(width) * u64::from(height);
    let mut bmp_limits = image::Limits::default();
    bmp_limits.max_alloc = Some(pixels.saturating_mul(8).max(1 << 20));
    decoder.set_limits(bmp_limits).map_err(bmp_error)?;
    let color = decoder.color_type();
    let mut buf = vec![0u8; usize::try_from(decoder.total_bytes()).map_err(|_| Error::corrupt("BMP: too large"))?];
    decoder.read_image(&mut buf).map_err(bmp_error)?;
    let rgba = match color {
        ColorType::Rgba8 => buf,
        ColorType::Rgb8 => buf.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u8::MAX]).collect(),
        ColorType::L8 => buf.iter().flat_map(|&g| [g, g, g, u8::MAX]).collect(),
        other => return Err(Error::unsupported(format!("BMP: decoder colour type {other:?}"))),
    };
    Ok(Image::still(Pixels::rgba8(width, height, rgba)))
}

/// A copy of an OS/2 2.x file whose info header is the BITMAPINFOHEADER it begins like: the
/// first 40 bytes (those a shorter header leaves out zero), then the palette and pixels moved up
/// or down with the pixel offset. Its compressions 0-2 mean what Windows' do.
fn os2v2_as_windows(data: &[u8], header: &Header) -> Result<Vec<u8>, Error> {
    let short = || Error::corrupt("BMP: the file is shorter than its headers");
    let rest = data.get(FILE_HEADER + header.size..).ok_or_else(short)?;
    let data_offset = (header.data_offset + INFO_HEADER).checked_sub(header.size).filter(|&o| o >= FILE_HEADER + INFO_HEADER);
    let data_offset = data_offset.ok_or_else(|| Error::corrupt("BMP: the pixel data starts inside the headers"))?;
    let mut info = [0u8; INFO_HEADER];
    let kept = header.size.min(INFO_HEADER);
    info[..kept].copy_from_slice(&data[FILE_HEADER..FILE_HEADER + kept]);
    info[..4].copy_from_slice(&(INFO_HEADER as u32).to_le_bytes());
    let mut copy = Vec::with_capacity(FILE_HEADER + INFO_HEADER + rest.len());
    copy.extend_from_slice(&data[..FILE_HEADER]);
    copy.extend_from_slice(&info);
    copy.extend_from_slice(rest);
    let file_size = u32::try_from(copy.len()).map_err(|_| Error::corrupt("BMP: too large"))?;
    copy[2..6].copy_from_slice(&file_size.to_le_bytes());
    copy[10..14].copy_from_slice(&(data_offset as u32).to_le_bytes());
    Ok(copy)
}

/// OS/2 RLE24: RLE8's codes with 3-byte BGR pixels (absolute runs padded to 2 bytes). Pixels the
/// codes skip (end of line, delta, end of bitmap) are transparent, as image-rs leaves RLE8's.
/// Every code consumes input, so the loop ends with the data.
fn rle24(data: &[u8], header: &Header, width: u32, height: u32) -> Result<Pixels, Error> {
    if header.height < 0 {
        return Err(Error::corrupt("BMP: a run-length encoded image cannot be top-down"));
    }
    let truncated = || Error::corrupt("BMP: RLE24 data ends before its end-of-bitmap code");
    let mut src = data.get(header.data_offset..).ok_or_else(truncated)?;
    let (w, h) = (width as usize, height as usize);
    let mut rgba = vec![0u8; w * h * 4];
    let (mut x, mut y) = (0usize, 0usize); // y counts rows up from the bottom
    let mut put = |x: usize, y: usize, bgr: &[u8]| {
        if x < w && y < h {
            let at = ((h - 1 - y) * w + x) * 4;
            rgba[at..at + 4].copy_from_slice(&[bgr[2], bgr[1], bgr[0], u8::MAX]);
        }
    };
    loop {
        let (&[count, code], rest) = src.split_first_chunk::<2>().ok_or_else(truncated)?;
        src = rest;
        match (count, code) {
            (0, 0) => (x, y) = (0, y + 1),
            (0, 1) => break,
            (0, 2) => {
                let (&[dx, dy], rest) = src.split_first_chunk::<2>().ok_or_else(truncated)?;
                src = rest;
                (x, y) = (x + usize::from(dx), y + usize::from(dy));
            }
            (0, n) => {
                let n = usize::from(n);
                let bytes = (3 * n).next_multiple_of(2);
                let run = src.get(..bytes).ok_or_else(truncated)?;
                for (i, bgr) in run.chunks_exact(3).take(n.min(w.saturating_sub(x))).enumerate() {
                    put(x + i, y, bgr);
                }
                x += n;
                src = &src[bytes..];
            }
            (n, first) => {
                let (&[g, r], rest) = src.split_first_chunk::<2>().ok_or_else(truncated)?;
                src = rest;
                // Only what falls inside the row is drawn: runs past it are bounded by `w`.
                for i in 0..usize::from(n).min(w.saturating_sub(x)) {
                    put(x + i, y, &[first, g, r]);
                }
                x += usize::from(n);
            }
        }
        if y >= h {
            break;
        }
    }
    Ok(Pixels::rgba8(width, height, rgba))
}

/// The JPEG or PNG stream of a BI_JPEG/BI_PNG file, decoded by the engine's own decoder once its
/// header says it is the BMP's size (so the limits checked on the BMP hold for it).
fn decode_embedded(data: &[u8], header: &Header, format: Format, options: &Options) -> Result<Image, Error> {
    let (width, height) = checked_size(header, options)?;
    let name = if format == Format::Png { "PNG" } else { "JPEG" };
    let stream = data.get(header.data_offset..).filter(|s| !s.is_empty());
    let stream = stream.ok_or_else(|| Error::corrupt(format!("BMP: the {name} stream starts past the end of the file")))?;
    let inner = super::probe(stream).ok().filter(|i| i.format == format);
    let inner = inner.ok_or_else(|| Error::corrupt(format!("BMP: its pixel data is not a {name} stream")))?;
    if (inner.width, inner.height) != (width, height) {
        return Err(Error::corrupt(format!(
            "BMP: its {name} stream is {}x{}, the BMP header says {width}x{height}",
            inner.width, inner.height
        )));
    }
    match format {
        Format::Png => super::png::decode_image(stream, options),
        _ => super::jpeg::decode_image(stream, 1),
    }
}

/// The PNG stream of a BI_PNG file (for the memory estimate, which reads its bit depth).
pub(crate) fn embedded_png(data: &[u8]) -> Option<&[u8]> {
    let header = read_header(data).ok()?;
    match route(&header) {
        Ok(Route::Embedded(Format::Png)) => data.get(header.data_offset..),
        _ => None,
    }
}

fn bmp_error(e: ImageError) -> Error {
    match e {
        ImageError::Unsupported(e) => Error::unsupported(format!("BMP: {e}")),
        ImageError::Limits(_) => Error::corrupt("BMP: the image needs more memory than its size allows"),
        ImageError::Parameter(e) => Error::internal(format!("BMP: {e}")),
        e => Error::corrupt(format!("BMP: {e}")),
    }
}
