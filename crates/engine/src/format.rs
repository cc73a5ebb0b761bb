//! Format detection by content (magic bytes) and header probing: dimensions are read here, from
//! a few header bytes, so limits are enforced before any decoder allocates pixel buffers.

use crate::{Error, LimitKind, Limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
    Avif,
}

impl Format {
    pub fn mime_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Gif => "image/gif",
            Format::WebP => "image/webp",
            Format::Avif => "image/avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Gif => "gif",
            Format::WebP => "webp",
            Format::Avif => "avif",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Gif => "gif",
            Format::WebP => "webp",
            Format::Avif => "avif",
        })
    }
}

/// The format the bytes are in, judged by their signature only.
pub fn detect(data: &[u8]) -> Option<Format> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some(Format::WebP)
    } else if data.len() >= 12 && &data[4..8] == b"ftyp" && matches!(&data[8..12], b"avif" | b"avis") {
        Some(Format::Avif)
    } else {
        None
    }
}

/// What the header says, before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImageInfo {
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// Detects the format and reads the dimensions from the header.
pub fn probe(data: &[u8]) -> Result<ImageInfo, Error> {
    let format = detect(data).ok_or_else(|| Error::unsupported(describe_unknown(data)))?;
    let (width, height) = match format {
        Format::Png => png_dimensions(data)?,
        Format::Jpeg => crate::jpeg::read_header(data).map(|h| (h.width, h.height))?,
        Format::Gif => gif_dimensions(data)?,
        Format::WebP => webp_dimensions(data)?,
        Format::Avif => crate::avif::dimensions(data)?,
    };
    Ok(ImageInfo { format, width, height })
}

/// Refuses inputs whose size or declared dimensions exceed the limits, or that declare no pixels.
pub(crate) fn check_header(info: &ImageInfo, input_len: usize, limits: &Limits) -> Result<(), Error> {
    let over = |what, value: u64, limit: u64| if value > limit { Err(Error::LimitExceeded { what, value, limit }) } else { Ok(()) };
    over(LimitKind::InputBytes, input_len as u64, limits.max_input_bytes)?;
    over(LimitKind::Dimension, u64::from(info.width.max(info.height)), u64::from(limits.max_dimension))?;
    over(LimitKind::Pixels, u64::from(info.width) * u64::from(info.height), limits.max_pixels)?;
    if info.width == 0 || info.height == 0 {
        return Err(Error::corrupt(format!("{} header declares a {}x{} image", info.format, info.width, info.height)));
    }
    Ok(())
}

fn describe_unknown(data: &[u8]) -> String {
    if data.is_empty() {
        return "empty input".into();
    }
    let head: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let known = if data.starts_with(b"BM") {
        " (looks like BMP)"
    } else if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        " (looks like TIFF)"
    } else {
        ""
    };
    format!("not PNG, JPEG, GIF, WebP or AVIF; starts with {}{known}", head.join(" "))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn truncated(what: &str) -> Error {
    Error::corrupt(format!("{what} header is truncated"))
}

fn png_dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    if d.get(12..16) != Some(b"IHDR") {
        return Err(if d.len() < 16 { truncated("PNG") } else { Error::corrupt("PNG does not start with an IHDR chunk") });
    }
    let w = be32(d, 16).ok_or_else(|| truncated("PNG"))?;
    let h = be32(d, 20).ok_or_else(|| truncated("PNG"))?;
    Ok((w, h))
}

fn gif_dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    let b = d.get(6..10).ok_or_else(|| truncated("GIF"))?;
    Ok((u32::from(u16::from_le_bytes([b[0], b[1]])), u32::from(u16::from_le_bytes([b[2], b[3]]))))
}

fn webp_dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    let le24 = |at: usize| d.get(at..at + 3).map(|b| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16);
    match d.get(12..16).ok_or_else(|| truncated("WebP"))? {
        b"VP8X" => Ok((le24(24).ok_or_else(|| truncated("WebP"))? + 1, le24(27).ok_or_else(|| truncated("WebP"))? + 1)),
        b"VP8L" => {
            let b = d.get(21..25).ok_or_else(|| truncated("WebP"))?;
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8 " => {
            let b = d.get(26..30).ok_or_else(|| truncated("WebP"))?;
            Ok((u32::from(u16::from_le_bytes([b[0], b[1]]) & 0x3FFF), u32::from(u16::from_le_bytes([b[2], b[3]]) & 0x3FFF)))
        }
        other => Err(Error::corrupt(format!("WebP starts with unknown chunk {:?}", String::from_utf8_lossy(other)))),
    }
}
