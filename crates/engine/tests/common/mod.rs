//! Helpers of the engine's integration tests: the workspace's shared ones (the corpus, generated
//! images, decoders independent of the engine) and the JPEG metadata readers only these use.
#![allow(dead_code, unused_imports)]

pub use compressor_test_support::{corpus, encode_png, files, files_recursive, jpeg_samples, png_rgba16, synthetic_rgba};

/// The payload of every JPEG APPn/COM segment before the first scan: (marker, payload).
pub fn jpeg_segments(d: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 2;
    while pos + 4 <= d.len() && d[pos] == 0xFF {
        let marker = d[pos + 1];
        if marker == 0xDA {
            break;
        }
        let len = usize::from(u16::from_be_bytes([d[pos + 2], d[pos + 3]]));
        if matches!(marker, 0xE0..=0xEF | 0xFE) {
            out.push((marker, d[pos + 4..pos + 2 + len].to_vec()));
        }
        pos += 2 + len;
    }
    out
}

/// The EXIF orientation in a JPEG's APP1 segment, if any (parsed here independently of the engine).
pub fn jpeg_orientation(d: &[u8]) -> Option<u16> {
    let exif = jpeg_segments(d).into_iter().find(|(m, p)| *m == 0xE1 && p.starts_with(b"Exif\0\0"))?.1;
    let tiff = &exif[6..];
    let be = tiff.starts_with(b"MM");
    let r16 = |at: usize| if be { u16::from_be_bytes([tiff[at], tiff[at + 1]]) } else { u16::from_le_bytes([tiff[at], tiff[at + 1]]) };
    let r32 = |at: usize| {
        let b = [tiff[at], tiff[at + 1], tiff[at + 2], tiff[at + 3]];
        if be { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let ifd = r32(4) as usize;
    (0..usize::from(r16(ifd))).map(|i| ifd + 2 + i * 12).find(|&e| r16(e) == 0x0112).map(|e| r16(e + 8))
}

/// The ICC profile bytes of a JPEG (APP2 ICC_PROFILE segments concatenated in order).
pub fn jpeg_icc(d: &[u8]) -> Vec<u8> {
    jpeg_segments(d)
        .into_iter()
        .filter(|(m, p)| *m == 0xE2 && p.starts_with(b"ICC_PROFILE\0"))
        .flat_map(|(_, p)| p[14..].to_vec())
        .collect()
}

// ---- TIFF and BMP variants (tiff_variants.rs, bmp_variants.rs) ------------------------------

/// Lossless PNG output at the lowest effort: the conversion the variants are checked through.
pub fn lossless_png() -> compressor_engine::Options {
    use compressor_engine::{Format, Mode, Options, OutputFormat};
    Options { mode: Mode::Lossless, format: OutputFormat::To(Format::Png), effort: 1, score: false, ..Options::default() }
}

/// The lossless PNG of `input` as RGBA16 (8-bit samples widened by 257), with its size.
pub fn decoded(input: &[u8]) -> (u32, u32, Vec<u16>) {
    let out = compressor_engine::compress(input, &lossless_png()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.format, compressor_engine::Format::Png);
    png_rgba16(&out.data)
}

/// 8-bit samples as the 16-bit ones a PNG decoder widens them to.
pub fn widen(rgba8: &[u8]) -> Vec<u16> {
    rgba8.iter().map(|&v| u16::from(v) * 257).collect()
}

/// The detail of the unsupported-format error `input` must give.
pub fn unsupported(input: &[u8]) -> String {
    match compressor_engine::compress(input, &lossless_png()) {
        Err(compressor_engine::Error::UnsupportedFormat { detail }) => detail,
        other => panic!("expected an unsupported-format error, got {:?}", other.map(|o| o.format)),
    }
}

/// Prefixes of `input` and copies with one of its first 200 bytes overwritten give a typed error
/// or an image, never a panic (caught as an internal error) or a hang. A prefix that cuts into the
/// pixels is an error, not a partial image; where the pixels are a JPEG or PNG stream starting at
/// `stream`, a cut into it fares as the same cut of the bare stream does (libjpeg makes an image
/// of a truncated JPEG, and a PNG needs no IEND).
pub fn check_truncated_and_damaged(name: &str, input: &[u8], stream: Option<usize>) {
    use compressor_engine::{Error, Limits, Options, compress};
    // A damaged size byte may declare millions of pixels: refused from the header, not decoded.
    let options = Options { limits: Limits { max_pixels: 1 << 20, ..Limits::default() }, ..lossless_png() };
    let typed = |what: String, variant: &[u8]| match compress(variant, &options) {
        Err(Error::Internal { detail }) => panic!("{name} {what}: internal error {detail}"),
        result => result.is_ok(),
    };
    for cut in (0..input.len()).step_by((input.len() / 150).max(1)) {
        let bare = stream.filter(|&at| cut > at).is_some_and(|at| typed(format!("bare stream cut at {cut}"), &input[at..cut]));
        assert_eq!(typed(format!("cut at {cut}"), &input[..cut]), bare, "{name}: cut at {cut}");
    }
    let mut images = 0;
    for at in 0..input.len().min(200) {
        for value in [0x00, 0xff, 0x80] {
            let mut copy = input.to_vec();
            copy[at] = value;
            images += usize::from(typed(format!("byte {at} set to {value:#x}"), &copy));
        }
    }
    eprintln!("{name}: {images} of {} damaged copies decoded", 3 * input.len().min(200));
}
