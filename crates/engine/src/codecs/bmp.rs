//! BMP input through image-rs's BMP decoder: 1/4/8-bit palettes (RLE4/RLE8 too), 16/24/32-bit
//! (bit fields included), top-down and bottom-up, OS/2 headers. An embedded ICC profile (V5
//! headers) is not carried: the decoder does not expose it. Never written.

use std::io::Cursor;

use image::codecs::bmp::BmpDecoder;
use image::error::ImageError;
use image::{ColorType, ImageDecoder};

use crate::error::Error;
use crate::image::Image;
use crate::image::pixels::Pixels;
use crate::options::Limits;

/// Width and height from the file and info headers.
pub(crate) fn dimensions(data: &[u8]) -> Result<(u32, u32), Error> {
    let decoder = BmpDecoder::new(Cursor::new(data)).map_err(bmp_error)?;
    Ok(decoder.dimensions())
}

/// The image as RGBA8.
pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    let mut decoder = BmpDecoder::new(Cursor::new(data)).map_err(bmp_error)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::LimitExceeded { what: crate::LimitKind::Pixels, value: pixels, limit: limits.max_pixels });
    }
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

fn bmp_error(e: ImageError) -> Error {
    match e {
        ImageError::Unsupported(e) => Error::unsupported(format!("BMP: {e}")),
        ImageError::Limits(_) => Error::corrupt("BMP: the image needs more memory than its size allows"),
        ImageError::Parameter(e) => Error::internal(format!("BMP: {e}")),
        e => Error::corrupt(format!("BMP: {e}")),
    }
}
