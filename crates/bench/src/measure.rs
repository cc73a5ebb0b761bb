//! Quality measurement, the same code for every tool: decode input and output to RGBA8 and
//! compute SSIMULACRA2 of the whole image, as the engine's own score does (so the numbers are
//! comparable). Also the medians of repeated runs.

use std::io::Cursor;
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
    /// GIF, still or animated (the video categories take the animated ones).
    Gif,
    /// A video container (MP4, MOV, WebM, Matroska), as `compressor_video` recognises one.
    Video,
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
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(Kind::Gif)
    } else if compressor_video::looks_like_video(data) {
        Some(Kind::Video)
    } else {
        None
    }
}

/// Any still output (or input) as a viewer shows it, in RGBA8: decoded by the engine's decoders,
/// turned by its EXIF orientation and converted to sRGB through its ICC profile. Every tool's
/// output is judged so, against its input judged so: a tool that drops a wide-gamut profile or an
/// orientation scores what it looks like.
pub fn decode(data: &[u8]) -> anyhow::Result<Rgba> {
    if matches!(kind(data), Some(Kind::Video)) {
        bail!("not a still image (videos are scored by the video module)");
    }
    let (width, height, data) = compressor_engine::decode_displayed(data, &compressor_engine::Limits::default())?;
    Ok(Rgba { width, height, data })
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

/// The EXIF orientation (1-8) of a JPEG or PNG, 1 when there is none.
pub fn orientation(data: &[u8]) -> u32 {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(data))
        .ok()
        .and_then(|e| e.get_field(exif::Tag::Orientation, exif::In::PRIMARY).and_then(|f| f.value.get_uint(0)))
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

/// SSIMULACRA2 of `distorted` against `reference`, by the engine's own scorer, so every tool is
/// judged by the same code; `None` when sizes differ or are below 8×8.
pub fn ssimulacra2(reference: &Rgba, distorted: &Rgba) -> Option<f64> {
    if (reference.width, reference.height) != (distorted.width, distorted.height) {
        return None;
    }
    compressor_engine::ssimulacra2_rgba8(&reference.data, &distorted.data, reference.width, reference.height)
}

/// High-quality reference downscales of one input, made by libvips in floating point, to score
/// resized outputs against: turned upright (`autorot`), converted to linear light (scRGB),
/// premultiplied, resized with Lanczos3 and no integer box pre-shrink (`--gap 0`), centre-cropped
/// for covers, then back to 8-bit sRGB. No tool's own pipeline is used (ours never runs here).
/// Made once per geometry and kept for the input's other methods.
pub struct ResizeReferences<'a> {
    vips: Option<&'a Path>,
    input: &'a Path,
    made: Vec<(Geometry, Result<Rgba, String>)>,
}

/// Output width and height, cover, uniform scale.
type Geometry = (u32, u32, bool, bool);

impl<'a> ResizeReferences<'a> {
    pub fn new(vips: Option<&'a Path>, input: &'a Path) -> Self {
        ResizeReferences { vips, input, made: Vec::new() }
    }

    /// SSIMULACRA2 of a resized `output` against the reference of its size. `target` is the box
    /// asked for; `uniform`: one scale factor for both axes (the output's height then follows
    /// from its width), else each axis scaled exactly onto the output.
    pub fn score(
        &mut self,
        output: &[u8],
        target: (u32, Option<u32>),
        cover: bool,
        uniform: bool,
        note: &mut Option<String>,
    ) -> Option<f64> {
        let decoded = match decode(output) {
            Ok(d) => d,
            Err(e) => {
                note.get_or_insert_with(|| format!("score n/a: {e:#}"));
                return None;
            }
        };
        let key = (decoded.width, decoded.height, cover, uniform);
        if !self.made.iter().any(|(k, _)| *k == key) {
            let made = self.make(decoded.width, decoded.height, target, cover, uniform).map_err(|e| format!("{e:#}"));
            self.made.push((key, made));
        }
        match &self.made.iter().find(|(k, _)| *k == key).expect("made above").1 {
            Ok(reference) => {
                let score = ssimulacra2(reference, &decoded);
                if score.is_none() {
                    note.get_or_insert_with(|| format!("score n/a: reference {}x{}", reference.width, reference.height));
                }
                score
            }
            Err(e) => {
                note.get_or_insert_with(|| format!("score n/a: reference: {e}"));
                None
            }
        }
    }

    fn make(&self, width: u32, height: u32, target: (u32, Option<u32>), cover: bool, uniform: bool) -> anyhow::Result<Rgba> {
        let vips = self.vips.ok_or_else(|| anyhow!("vips not installed (libvips-tools)"))?;
        let dir = tempfile::tempdir()?;
        let at = |name: &str| dir.path().join(name).into_os_string();
        let run = |args: &[&std::ffi::OsStr]| -> anyhow::Result<String> {
            let out = Command::new(vips).args(args).output().context("running vips")?;
            if !out.status.success() {
                bail!("vips {:?}: {}", args.first(), String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let os = |s: &str| std::ffi::OsString::from(s);
        run(&[&os("autorot"), self.input.as_os_str(), &at("upright.v")])?;
        let vipsheader = vips.with_file_name("vipsheader");
        let field = |file: &str, name: &str| -> anyhow::Result<f64> {
            let out = Command::new(&vipsheader).args(["-f", name]).arg(at(file)).output().context("running vipsheader")?;
            String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().with_context(|| format!("vipsheader -f {name}"))
        };
        let size = |file: &str| -> anyhow::Result<(f64, f64)> { Ok((field(file, "width")?, field(file, "height")?)) };
        let (w, h) = size("upright.v")?;
        run(&[&os("colourspace"), &at("upright.v"), &at("linear.v"), &os("scrgb")])?;
        // premultiply takes the last band as alpha, so only images with one (grey+A, RGB+A).
        let alpha = matches!(field("linear.v", "bands")? as u32, 2 | 4);
        if alpha {
            run(&[&os("premultiply"), &at("linear.v"), &at("premultiplied.v")])?;
        } else {
            run(&[&os("copy"), &at("linear.v"), &at("premultiplied.v")])?;
        }
        let (tw, th) = (f64::from(target.0), target.1.map(f64::from));
        let (hscale, vscale) = match (cover, th) {
            (true, Some(th)) => {
                let s = (tw / w).max(th / h);
                (s, s)
            }
            _ if uniform => (tw / w, tw / w),
            _ => (f64::from(width) / w, f64::from(height) / h),
        };
        let (hs, vs) = (format!("{hscale}"), format!("{vscale}"));
        run(&[
            &os("resize"),
            &at("premultiplied.v"),
            &at("resized.v"),
            &os(&hs),
            &os("--vscale"),
            &os(&vs),
            &os("--kernel"),
            &os("lanczos3"),
            &os("--gap"),
            &os("0"),
        ])?;
        let (rw, rh) = size("resized.v")?;
        let (left, top) = (((rw - f64::from(width)) / 2.0).floor().max(0.0), ((rh - f64::from(height)) / 2.0).floor().max(0.0));
        if rw < f64::from(width) || rh < f64::from(height) {
            bail!("reference {rw}x{rh} is smaller than the output {width}x{height}");
        }
        let (l, t, cw, ch) = (format!("{left}"), format!("{top}"), width.to_string(), height.to_string());
        run(&[&os("extract_area"), &at("resized.v"), &at("cropped.v"), &os(&l), &os(&t), &os(&cw), &os(&ch)])?;
        if alpha {
            run(&[&os("unpremultiply"), &at("cropped.v"), &at("straight.v")])?;
        } else {
            run(&[&os("copy"), &at("cropped.v"), &at("straight.v")])?;
        }
        run(&[&os("colourspace"), &at("straight.v"), &at("reference.png"), &os("srgb")])?;
        decode_png(&std::fs::read(dir.path().join("reference.png"))?)
    }
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
}
