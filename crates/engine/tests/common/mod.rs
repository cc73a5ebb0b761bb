//! Helpers shared by the engine's integration tests: the corpus location and independent decoders
//! (the tests decode with the `png` and `mozjpeg` crates directly, not through the engine).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The developer corpus, from `COMPRESSOR_CORPUS`. Unset: `None` and a notice (the test is
/// skipped). Set but missing: a failure, so CI cannot silently skip it.
pub fn corpus() -> Option<PathBuf> {
    match std::env::var_os("COMPRESSOR_CORPUS") {
        None => {
            eprintln!("COMPRESSOR_CORPUS is not set: skipping a corpus test");
            None
        }
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(dir.is_dir(), "COMPRESSOR_CORPUS={} is not a directory", dir.display());
            Some(dir)
        }
    }
}

/// Files directly in `dir` (not recursive) with one of the extensions, sorted.
pub fn files(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| extensions.iter().any(|e| x.eq_ignore_ascii_case(e))))
        .collect();
    out.sort();
    out
}

/// All files under `dir`, recursively, sorted.
pub fn files_recursive(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out.sort();
    out
}

/// PNG pixels as RGBA with 16-bit samples (8-bit scaled by 257), so any two decodings compare.
pub fn png_rgba16(data: &[u8]) -> (u32, u32, Vec<u16>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).expect("PNG frame");
    buf.truncate(frame.buffer_size());
    let samples: Vec<u16> = match frame.bit_depth {
        png::BitDepth::Sixteen => buf.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect(),
        _ => buf.iter().map(|&b| u16::from(b) * 257).collect(),
    };
    let rgba = match frame.color_type.samples() {
        4 => samples,
        3 => samples.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u16::MAX]).collect(),
        2 => samples.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        _ => samples.iter().flat_map(|&g| [g, g, g, u16::MAX]).collect(),
    };
    (frame.width, frame.height, rgba)
}

/// JPEG samples as libjpeg decodes them (RGB, gray or CMYK), without block smoothing.
pub fn jpeg_samples(data: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut d = mozjpeg::Decompress::new_mem(data).expect("JPEG header");
    d.do_block_smoothing(false);
    let (w, h) = d.size();
    let samples = match d.image().expect("JPEG start") {
        mozjpeg::decompress::Format::RGB(mut s) => s.read_scanlines::<u8>().unwrap(),
        mozjpeg::decompress::Format::Gray(mut s) => s.read_scanlines::<u8>().unwrap(),
        mozjpeg::decompress::Format::CMYK(mut s) => s.read_scanlines::<u8>().unwrap(),
    };
    (w, h, samples)
}

/// Encodes RGBA8 pixels as a plain PNG (fast deflate, no optimisation) for self-made inputs.
pub fn encode_png(width: u32, height: u32, rgba: &[u8], chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap();
        for (name, data) in chunks {
            writer.write_chunk(png::chunk::ChunkType(*name), data).unwrap();
        }
        writer.write_image_data(rgba).unwrap();
    }
    out
}

/// A photo-like test image: smooth gradients plus deterministic noise, with an optional alpha ramp.
pub fn synthetic_rgba(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let mut out = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height {
        for x in 0..width {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed % 24) as u8;
            let r = ((x * 255 / width.max(1)) as u8).saturating_add(noise);
            let g = ((y * 255 / height.max(1)) as u8).saturating_add(noise / 2);
            let b = (((x + y) * 127 / (width + height).max(1)) as u8).saturating_add(noise);
            let a = if alpha { (x * 255 / width.max(1)) as u8 } else { 255 };
            out.extend_from_slice(&[r, g, b, a]);
        }
    }
    out
}

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
