//! The formats, recognised by content (magic bytes). Each codec reads its own header
//! (`codecs::probe`), and `codecs::check_header` holds what it declares to the limits before any
//! decoder allocates.

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

/// Why bytes that [`detect`] does not recognise are refused, naming BMP and TIFF when they look so.
pub(crate) fn describe_unknown(data: &[u8]) -> String {
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
