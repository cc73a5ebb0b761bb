//! Tiny images made here, for the committed seeds and the metadata target: PNGs written with the
//! `png` crate, the other formats converted from them by the engine. No corpus file is copied.

use compressor_engine::{Format, Mode, Options, OutputFormat, compress};

/// A PNG of `width`×`height` in `color` at `depth` bits, `frames` > 1 making an APNG, with the
/// extra `chunks` (name, data) written before the image data.
pub fn png(width: u32, height: u32, color: png::ColorType, depth: png::BitDepth, frames: u32, chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if color == png::ColorType::Indexed {
        encoder.set_palette((0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect::<Vec<u8>>());
        encoder.set_trns(vec![0u8, 128]);
    }
    if frames > 1 {
        encoder.set_animated(frames, 0).expect("animation");
        encoder.set_frame_delay(1, 10).expect("delay");
    }
    let mut writer = encoder.write_header().expect("header");
    for (name, data) in chunks {
        writer.write_chunk(png::chunk::ChunkType(**name), data).expect("chunk");
    }
    let samples = color.samples() * (depth as usize).div_ceil(8).max(1);
    let row = if (depth as usize) < 8 { (width as usize * depth as usize).div_ceil(8) } else { width as usize * samples };
    for frame in 0..frames {
        let data: Vec<u8> = (0..row * height as usize).map(|i| noise(i as u32 + frame * 7919)).collect();
        writer.write_image_data(&data).expect("image data");
    }
    writer.finish().expect("finish");
    out
}

/// An RGBA8 PNG with a gradient, some noise and a transparent corner.
pub fn rgba_png(width: u32, height: u32) -> Vec<u8> {
    png(width, height, png::ColorType::Rgba, png::BitDepth::Eight, 1, &[])
}

/// An animated GIF of `frames` frames of `width`×`height`, each with its own palette of `colours`.
pub fn gif_animation(width: u16, height: u16, frames: u16, colours: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &[]).expect("GIF header");
        encoder.set_repeat(gif::Repeat::Infinite).expect("loop");
        for f in 0..frames {
            let palette: Vec<u8> = (0..colours * 3).map(|i| noise(i as u32 + u32::from(f) * 31)).collect();
            let indices: Vec<u8> =
                (0..usize::from(width) * usize::from(height)).map(|i| (noise(i as u32 ^ u32::from(f)) as usize % colours) as u8).collect();
            let mut frame = gif::Frame::from_palette_pixels(width, height, indices, palette, (f == 1).then_some(0));
            frame.delay = 5 + f;
            encoder.write_frame(&frame).expect("GIF frame");
        }
    }
    out
}

/// `png` converted by the engine into `format` (lossless where the format can be).
pub fn convert(png: &[u8], format: Format, lossless: bool) -> Vec<u8> {
    let options = Options {
        mode: if lossless { Mode::Lossless } else { Mode::Lossy },
        format: OutputFormat::To(format),
        effort: 1,
        first_frame: format == Format::Jpeg,
        ..Options::default()
    };
    compress(png, &options).unwrap_or_else(|e| panic!("converting a made PNG to {format}: {e}")).data
}

/// A JPEG with an APP1 `Exif` segment holding `tiff` right after SOI.
pub fn jpeg_with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let payload = [b"Exif\0\0".as_slice(), tiff].concat();
    let len = (payload.len() + 2).min(0xFFFF) as u16;
    let payload = &payload[..usize::from(len) - 2];
    [&jpeg[..2], &[0xFF, 0xE1], &len.to_be_bytes()[..], payload, &jpeg[2..]].concat()
}

/// A TIFF-structured EXIF block (big- or little-endian) with `entries` (tag, type, count, value).
pub fn exif(big_endian: bool, entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = if big_endian { b"MM\0*".to_vec() } else { b"II*\0".to_vec() };
    out.extend_from_slice(&u32b(8));
    out.extend_from_slice(&u16b(entries.len() as u16));
    for &(tag, kind, count, value) in entries {
        out.extend_from_slice(&u16b(tag));
        out.extend_from_slice(&u16b(kind));
        out.extend_from_slice(&u32b(count));
        if kind == 3 && count == 1 {
            out.extend_from_slice(&u16b(value as u16));
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&u32b(value));
        }
    }
    out.extend_from_slice(&u32b(0));
    out
}

/// Deterministic bytes with structure (a gradient) and noise.
fn noise(i: u32) -> u8 {
    let hash = i.wrapping_mul(2_654_435_761).rotate_left(13);
    ((i % 251) as u8).wrapping_add((hash >> 28) as u8)
}
