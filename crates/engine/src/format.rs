//! The formats, recognised by content (magic bytes). Each codec reads its own header
//! (`codecs::probe`), and `codecs::check_header` holds what it declares to the limits before any
//! decoder allocates. TIFF, BMP and HEIC/HEIF are read but not written ([`Format::writable`]).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
    Avif,
    /// Input only.
    Tiff,
    /// Input only.
    Bmp,
    /// HEIC/HEIF (HEVC-coded HEIF images); input only.
    Heic,
}

impl Format {
    /// Every format the engine reads.
    pub const ALL: [Format; 8] =
        [Format::Png, Format::Jpeg, Format::Gif, Format::WebP, Format::Avif, Format::Tiff, Format::Bmp, Format::Heic];

    /// The media types a file of this format is labelled with, the first the one an output gets
    /// ([`Format::mime_type`]); HEIC images are as often labelled `image/heif`.
    pub fn media_types(self) -> &'static [&'static str] {
        match self {
            Format::Png => &["image/png"],
            Format::Jpeg => &["image/jpeg"],
            Format::Gif => &["image/gif"],
            Format::WebP => &["image/webp"],
            Format::Avif => &["image/avif"],
            Format::Tiff => &["image/tiff"],
            Format::Bmp => &["image/bmp"],
            Format::Heic => &["image/heic", "image/heif"],
        }
    }

    /// Whether the engine can write this format (TIFF, BMP and HEIC are read only).
    pub fn writable(self) -> bool {
        !matches!(self, Format::Tiff | Format::Bmp | Format::Heic)
    }

    /// Whether the engine writes animations in this format (GIF, WebP). The other writable
    /// formats are still-only here: an animation goes into them only as its first frame.
    pub fn writes_animation(self) -> bool {
        matches!(self, Format::Gif | Format::WebP)
    }

    /// Whether the engine writes this format only lossily (JPEG; AVIF, whose lossless mode
    /// this engine does not use), so it cannot hold a lossless result.
    pub fn lossy_only(self) -> bool {
        matches!(self, Format::Jpeg | Format::Avif)
    }

    /// Every file name extension (lower case) that says this format, the one outputs get first.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Png => &["png"],
            Format::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Format::Gif => &["gif"],
            Format::WebP => &["webp"],
            Format::Avif => &["avif"],
            Format::Tiff => &["tif", "tiff"],
            Format::Bmp => &["bmp"],
            Format::Heic => &["heic", "heif", "hif"],
        }
    }

    /// The name people know the format by, for messages and pages.
    pub fn title(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Gif => "GIF",
            Format::WebP => "WebP",
            Format::Avif => "AVIF",
            Format::Tiff => "TIFF",
            Format::Bmp => "BMP",
            Format::Heic => "HEIC",
        }
    }

    /// The media type of an output in this format.
    pub fn mime_type(self) -> &'static str {
        self.media_types()[0]
    }

    /// The extension an output in this format gets.
    pub fn extension(self) -> &'static str {
        self.extensions()[0]
    }

    /// Whether a file name extension (any case) says this format.
    pub fn is_named_by(self, extension: &str) -> bool {
        self.extensions().iter().any(|e| e.eq_ignore_ascii_case(extension))
    }

    /// The name an output in this format gets, from its input's `name` (a file name, path or
    /// object key): the rule every surface names outputs by, so that a name never says another
    /// format than the bytes hold. See [`with_output_extension`].
    pub fn output_name(self, name: &str) -> String {
        with_output_extension(name, self.extension(), |extension| self.is_named_by(extension))
    }
}

/// `name` unchanged when `names_it` accepts its extension, else with `extension` in place of its
/// own (or added, when it has none; a leading dot starts no extension).
pub fn with_output_extension(name: &str, extension: &str, names_it: impl Fn(&str) -> bool) -> String {
    let (stem, own) = name
        .rsplit_once('.')
        .filter(|(stem, own)| !stem.is_empty() && !stem.ends_with(['/', '\\']) && !own.contains(['/', '\\']))
        .unwrap_or((name, ""));
    if !own.is_empty() && names_it(own) { name.to_owned() } else { format!("{stem}.{extension}") }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Gif => "gif",
            Format::WebP => "webp",
            Format::Avif => "avif",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::Heic => "heic",
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
    } else if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") || data.starts_with(b"II+\0") || data.starts_with(b"MM\0+") {
        Some(Format::Tiff)
    } else if data.starts_with(b"BM") {
        Some(Format::Bmp)
    } else if data.len() >= 12 && &data[4..8] == b"ftyp" {
        heif_brand(data)
    } else {
        None
    }
}

/// AVIF or HEIC from an ISO BMFF `ftyp` box: the major brand first (`avif`/`avis` are AVIF,
/// `heic`/`heix`/`hevc`/`hevx`/`heim`/`heis` HEIC), then for the structural brands
/// (`mif1`, `msf1`, `mif2`) the compatible brands: any AV1 brand makes it AVIF, an HEVC one HEIC.
fn heif_brand(data: &[u8]) -> Option<Format> {
    const HEVC: [&[u8]; 6] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"];
    let major = &data[8..12];
    if matches!(major, b"avif" | b"avis") {
        return Some(Format::Avif);
    }
    if HEVC.contains(&major) {
        return Some(Format::Heic);
    }
    if !matches!(major, b"mif1" | b"msf1" | b"mif2") {
        return None;
    }
    let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let compatible = data.get(16..size.min(data.len())).unwrap_or(&[]);
    let brands: Vec<&[u8]> = compatible.chunks_exact(4).collect();
    if brands.iter().any(|b| matches!(*b, b"avif" | b"avis")) {
        Some(Format::Avif)
    } else if brands.iter().any(|b| HEVC.contains(b)) {
        Some(Format::Heic)
    } else {
        None
    }
}

/// Whether `data` starts as a HEIF still image (an image brand the engine reads, or a HEIF
/// image structure `mif1`/`mif2`/`msf1` of any codec), as opposed to an ISO BMFF video (MP4,
/// MOV). The one place that tells them apart, for the video crate too.
pub fn is_heif_image(data: &[u8]) -> bool {
    data.len() >= 12 && &data[4..8] == b"ftyp" && (heif_brand(data).is_some() || matches!(&data[8..12], b"mif1" | b"mif2" | b"msf1"))
}

/// What the header says, before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImageInfo {
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// Why bytes that [`detect`] does not recognise are refused.
pub(crate) fn describe_unknown(data: &[u8]) -> String {
    if data.is_empty() {
        return "empty input".into();
    }
    let head: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let known = if data.len() >= 12 && &data[4..8] == b"ftyp" { " (an ISO BMFF file of another kind)" } else { "" };
    format!("not PNG, JPEG, GIF, WebP, AVIF, TIFF, BMP or HEIC; starts with {}{known}", head.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_say_the_format_of_their_bytes() {
        assert_eq!(Format::Png.output_name("a/b.PNG"), "a/b.PNG");
        assert_eq!(Format::Jpeg.output_name("a/b.jpeg"), "a/b.jpeg");
        assert_eq!(Format::WebP.output_name("a/b.png"), "a/b.webp");
        assert_eq!(Format::Png.output_name("scan.tif"), "scan.png");
        assert_eq!(Format::Avif.output_name("IMG_0001.HEIC"), "IMG_0001.avif");
        assert_eq!(Format::Png.output_name("v/.hidden"), "v/.hidden.png");
        assert_eq!(Format::Png.output_name("dir.d/noext"), "dir.d/noext.png");
        assert_eq!(Format::Jpeg.output_name("photo"), "photo.jpg");
    }
}
