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
