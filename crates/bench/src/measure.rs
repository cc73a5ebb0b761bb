//! Quality measurement, the same code for every tool: decode input and output to RGBA8 and
//! compute SSIMULACRA2 of the whole image, as the engine's own score does (so the numbers are
//! comparable). Also the medians of repeated runs.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, anyhow, bail};

/// Decoded pixels, RGBA 8 bits per sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// The container format of some bytes, from their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    WebP,
    Avif,
}

pub fn kind(data: &[u8]) -> Option<Kind> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Png)
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some(Kind::WebP)
    } else if data.len() >= 12 && &data[4..8] == b"ftyp" && (&data[8..12] == b"avif" || &data[8..12] == b"avis") {
        Some(Kind::Avif)
    } else {
        None
    }
}

/// Decodes any supported output to RGBA8. AVIF goes through `avifdec` (when it is installed)
/// into a temporary PNG.
pub fn decode(data: &[u8], avifdec: Option<&Path>) -> anyhow::Result<Rgba> {
    match kind(data) {
        Some(Kind::Png) => decode_png(data),
        Some(Kind::Jpeg) => decode_jpeg(data),
        Some(Kind::WebP) => decode_webp(data),
        Some(Kind::Avif) => {
            let avifdec = avifdec.ok_or_else(|| anyhow!("no AVIF decoder (avifdec) installed"))?;
            let dir = tempfile::tempdir()?;
            let (input, output) = (dir.path().join("in.avif"), dir.path().join("out.png"));
            std::fs::write(&input, data)?;
            // Pixels as stored: the ICC profile is ignored (no tool's output is colour-managed here),
            // which also avoids libpng refusing some profiles when avifdec writes the PNG.
            let status = Command::new(avifdec)
                .args(["--ignore-icc", "--depth", "8"])
                .arg(&input)
                .arg(&output)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                bail!("avifdec failed ({status})");
            }
            decode_png(&std::fs::read(&output)?)
        }
        None => bail!("unknown image format"),
    }
}

/// PNG to RGBA8; 16-bit samples are scaled down with rounding like the engine does.
pub fn decode_png(data: &[u8]) -> anyhow::Result<Rgba> {
    let mut decoder = png::Decoder::new(Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().context("PNG header")?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG size overflows")?];
    let frame = reader.next_frame(&mut buf).context("PNG data")?;
    buf.truncate(frame.buffer_size());
    let channels = frame.color_type.samples();
    let samples: Vec<u8> = match frame.bit_depth {
        png::BitDepth::Sixteen => {
            buf.chunks_exact(2).map(|b| ((u32::from(u16::from_be_bytes([b[0], b[1]])) * 255 + 32895) >> 16) as u8).collect()
        }
        png::BitDepth::Eight => buf,
        other => bail!("PNG decoder left {other:?}-bit samples"),
    };
    let data = match channels {
        4 => samples,
        3 => samples.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        2 => samples.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        _ => samples.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    };
    Ok(Rgba { width: frame.width, height: frame.height, data })
}

/// JPEG to RGBA8 with libjpeg (mozjpeg). CMYK is not converted (score n/a).
pub fn decode_jpeg(data: &[u8]) -> anyhow::Result<Rgba> {
    let result = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Rgba> {
        let d = mozjpeg::Decompress::new_mem(data)?;
        let mut s = d.rgba()?;
        let (width, height) = (s.width() as u32, s.height() as u32);
        let pixels: Vec<[u8; 4]> = s.read_scanlines()?;
        s.finish()?;
        Ok(Rgba { width, height, data: pixels.into_iter().flatten().collect() })
    }));
    match result {
        Ok(r) => r.context("JPEG"),
        Err(_) => bail!("JPEG decoder failed (libjpeg error)"),
    }
}

pub fn decode_webp(data: &[u8]) -> anyhow::Result<Rgba> {
    let (mut w, mut h) = (0, 0);
    // SAFETY: libwebp reads `data` within its length and returns a buffer it allocated, or null.
    let buf = unsafe { libwebp_sys::WebPDecodeRGBA(data.as_ptr(), data.len(), &mut w, &mut h) };
    if buf.is_null() {
        bail!("libwebp could not decode the image");
    }
    // SAFETY: libwebp returned w*h*4 bytes at `buf`; copied, then freed with its own allocator.
    let rgba = unsafe { std::slice::from_raw_parts(buf, w as usize * h as usize * 4).to_vec() };
    unsafe { libwebp_sys::WebPFree(buf.cast()) };
    Ok(Rgba { width: w as u32, height: h as u32, data: rgba })
}

/// The EXIF orientation (1-8) of a JPEG or PNG, 1 when there is none.
pub fn orientation(data: &[u8]) -> u32 {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(data))
        .ok()
        .and_then(|e| e.get_field(exif::Tag::Orientation, exif::In::PRIMARY).and_then(|f| f.value.get_uint(0)))
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

/// The pixels as displayed under EXIF `orientation`, turned by the engine's own code.
pub fn orient(img: &Rgba, orientation: u32) -> Rgba {
    let orientation = u16::try_from(orientation).unwrap_or(1);
    match compressor_engine::orient_rgba8(&img.data, img.width, img.height, orientation) {
        Some((data, width, height)) => Rgba { width, height, data },
        None => img.clone(),
    }
}

/// SSIMULACRA2 of `distorted` against `reference`, by the engine's own scorer, so every tool is
/// judged by the same code; `None` when sizes differ or are below 8×8.
pub fn ssimulacra2(reference: &Rgba, distorted: &Rgba) -> Option<f64> {
    if (reference.width, reference.height) != (distorted.width, distorted.height) {
        return None;
    }
    compressor_engine::ssimulacra2_rgba8(&reference.data, &distorted.data, reference.width, reference.height)
}

/// The median (mean of the middle two for even counts); `None` for no samples.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Geometric mean of positive values; `None` for none.
pub fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_geomean() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert!((geomean(&[1.0, 4.0]).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(geomean(&[1.0, 0.0]), None);
    }

    #[test]
    fn orientation_6_rotates_clockwise() {
        // 2×1: red, green. Orientation 6 (rotate 90° CW to display) gives 1×2: red on top.
        let img = Rgba { width: 2, height: 1, data: vec![255, 0, 0, 255, 0, 255, 0, 255] };
        let o = orient(&img, 6);
        assert_eq!((o.width, o.height), (1, 2));
        assert_eq!(&o.data[0..4], &[255, 0, 0, 255]);
        let o = orient(&img, 3);
        assert_eq!(&o.data[0..4], &[0, 255, 0, 255]);
    }
}
