//! GIF: decoding (composited frames, timing, loop count) and encoding with optimised frame
//! rectangles: each frame stores only the area that changed, with unchanged pixels transparent so
//! LZW compresses them to almost nothing, and one global palette when all frames fit in it.

use std::collections::HashMap;
use std::io::Cursor;

use gif::{DisposalMethod, Repeat};

use crate::error::{Error, LimitKind};
use crate::image::pixels::Pixels;
use crate::image::{Frame, Image, changed_bounds};
use crate::options::Limits;

/// Decodes every frame onto a full canvas, applying each frame's disposal.
/// Width and height of the logical screen, from the header.
pub(crate) fn dimensions(d: &[u8]) -> Result<(u32, u32), Error> {
    let b = d.get(6..10).ok_or_else(|| Error::truncated("GIF"))?;
    Ok((u32::from(u16::from_le_bytes([b[0], b[1]])), u32::from(u16::from_le_bytes([b[2], b[3]]))))
}

pub(crate) fn decode(data: &[u8], limits: &Limits) -> Result<Image, Error> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    let max_frame_bytes = limits.max_pixels.min(u64::from(u16::MAX) * u64::from(u16::MAX));
    opts.set_memory_limit(gif::MemoryLimit::Bytes(std::num::NonZeroU64::new(max_frame_bytes.max(1)).unwrap()));
    let mut dec = opts.read_info(Cursor::new(data)).map_err(gif_error)?;
    let (w, h) = (usize::from(dec.width()), usize::from(dec.height()));
    if w == 0 || h == 0 {
        return Err(Error::corrupt(format!("GIF declares a {w}x{h} canvas")));
    }
    let global = dec.global_palette().map(<[u8]>::to_vec);
    let loop_count = match dec.repeat() {
        Repeat::Infinite => 0,
        Repeat::Finite(n) => u32::from(n) + 1,
    };
    let mut canvas = vec![0u8; w * h * 4];
    let mut frames: Vec<Frame> = Vec::new();
    let mut buffer = Vec::new();
    while let Some(info) = dec.next_frame_info().map_err(gif_error)? {
        let (fw, fh) = (usize::from(info.width), usize::from(info.height));
        let (left, top) = (usize::from(info.left), usize::from(info.top));
        let (transparent, dispose, delay) = (info.transparent, info.dispose, info.delay);
        let palette = info.palette.clone().or_else(|| global.clone()).ok_or_else(|| Error::corrupt("GIF frame has no colour table"))?;
        // A frame rectangle may claim far more than the canvas (a known decompression bomb).
        let frame_pixels = (fw * fh) as u64;
        if frame_pixels > limits.max_pixels {
            return Err(Error::LimitExceeded { what: LimitKind::Pixels, value: frame_pixels, limit: limits.max_pixels });
        }
        // Every decoded frame costs a full canvas: bound frames × canvas by the pixel limit.
        let total = (frames.len() as u64 + 1) * (w * h) as u64;
        if total > limits.max_pixels {
            return Err(Error::LimitExceeded { what: LimitKind::Pixels, value: total, limit: limits.max_pixels });
        }
        if frames.len() as u64 >= u64::from(limits.max_frames) {
            return Err(Error::LimitExceeded {
                what: LimitKind::Frames,
                value: frames.len() as u64 + 1,
                limit: u64::from(limits.max_frames),
            });
        }
        buffer.resize(fw * fh, 0);
        dec.read_into_buffer(&mut buffer).map_err(gif_error)?;
        let saved = (dispose == DisposalMethod::Previous).then(|| canvas.clone());
        for y in 0..fh.min(h.saturating_sub(top)) {
            for x in 0..fw.min(w.saturating_sub(left)) {
                let index = buffer[y * fw + x];
                if Some(index) == transparent {
                    continue;
                }
                let c = usize::from(index) * 3;
                let Some(rgb) = palette.get(c..c + 3) else { continue }; // out-of-palette index: leave the pixel
                let at = ((top + y) * w + left + x) * 4;
                canvas[at..at + 4].copy_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
        frames.push(Frame { pixels: Pixels::rgba8(w as u32, h as u32, canvas.clone()), delay_ms: u32::from(delay) * 10 });
        match dispose {
            DisposalMethod::Background => {
                for y in top..(top + fh).min(h) {
                    for x in left..(left + fw).min(w) {
                        canvas[(y * w + x) * 4..(y * w + x) * 4 + 4].fill(0);
                    }
                }
            }
            DisposalMethod::Previous => canvas = saved.unwrap_or(canvas),
            _ => {}
        }
    }
    if frames.is_empty() {
        return Err(Error::corrupt("GIF has no frames"));
    }
    let mut image = Image::still(frames[0].pixels.clone());
    image.frames = frames;
    image.loop_count = loop_count;
    Ok(image)
}

fn gif_error(e: gif::DecodingError) -> Error {
    Error::corrupt(format!("GIF: {e}"))
}

/// An RGBA colour with transparency collapsed: every alpha below 128 is the one transparent colour.
fn key(p: &[u8]) -> [u8; 4] {
    if p[3] < 128 { [0, 0, 0, 0] } else { [p[0], p[1], p[2], 255] }
}

/// One frame as it will be written: a rectangle of colours, `None` meaning "leave the pixel".
struct Patch {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
    pixels: Vec<Option<[u8; 4]>>,
    /// The exact canvas colours of the rectangle, for frames that cannot spare a transparent entry.
    exact: Vec<[u8; 4]>,
    delay_ms: u32,
    /// Clear this frame's rectangle before the next frame (needed when pixels turn transparent).
    clear_after: bool,
}

impl Patch {
    /// Grows the rectangle to the whole canvas, the new pixels left as they are.
    fn expand_to_canvas(&mut self, w: usize, h: usize, shown_before: &[[u8; 4]]) {
        let mut pixels = vec![None; w * h];
        let mut exact = shown_before.to_vec();
        for y in 0..self.height {
            for x in 0..self.width {
                pixels[(self.top + y) * w + self.left + x] = self.pixels[y * self.width + x];
                exact[(self.top + y) * w + self.left + x] = self.exact[y * self.width + x];
            }
        }
        (self.left, self.top, self.width, self.height, self.pixels, self.exact) = (0, 0, w, h, pixels, exact);
    }
}

/// The image as a GIF that decodes to exactly its pixels, or why GIF cannot hold them: a GIF
/// pixel is 8-bit, and opaque or transparent (transparent ones decode as `[0, 0, 0, 0]`).
pub(crate) fn encode_lossless(image: &Image) -> Result<Vec<u8>, Error> {
    let representable = image.frames.iter().all(|f| {
        let rgba = f.pixels.to_rgba8();
        rgba.chunks_exact(4).all(|p| p[3] == u8::MAX || p == [0, 0, 0, 0])
            && f.pixels.same_pixels(&Pixels::rgba8(f.pixels.width, f.pixels.height, rgba.into_owned()))
    });
    if !representable {
        return Err(Error::unsupported(
            "GIF holds only 8-bit opaque or fully transparent pixels: this image has partly transparent ones, colours under transparent ones or 16-bit samples, so GIF cannot hold it losslessly",
        ));
    }
    encode_exact(image)?.ok_or_else(|| Error::unsupported("a frame has more than 255 colours: GIF cannot hold it losslessly"))
}

/// Encodes frames exactly (no colour changes). Fails with `None` when a frame needs more than
/// 256 colours, in which case the caller quantizes first.
pub(crate) fn encode_exact(image: &Image) -> Result<Option<Vec<u8>>, Error> {
    let (w, h) = (image.width as usize, image.height as usize);
    if w > usize::from(u16::MAX) || h > usize::from(u16::MAX) {
        return Err(Error::unsupported("GIF canvases are at most 65535 pixels wide and high"));
    }
    let canvases: Vec<Vec<[u8; 4]>> = image.frames.iter().map(|f| f.pixels.to_rgba8().chunks_exact(4).map(key).collect()).collect();
    let mut patches: Vec<Patch> = Vec::with_capacity(canvases.len());
    // What a viewer shows before each frame is drawn.
    let mut shown = vec![[0u8; 4]; w * h];
    // What was shown before the previous frame was drawn (to fill a patch grown to the canvas).
    let mut shown_before_previous = shown.clone();
    for (i, canvas) in canvases.iter().enumerate() {
        // A pixel that must become transparent can only be produced by clearing: clear the
        // previous frame's rectangle, or when that is not enough, the whole canvas.
        let needs_clear = |shown: &[[u8; 4]]| canvas.iter().zip(shown).any(|(c, s)| c[3] == 0 && s[3] != 0);
        if i > 0 && needs_clear(&shown) {
            let prev = patches.last_mut().unwrap();
            prev.clear_after = true;
            let mut cleared = shown.clone();
            for y in prev.top..prev.top + prev.height {
                cleared[y * w + prev.left..y * w + prev.left + prev.width].fill([0; 4]);
            }
            if needs_clear(&cleared) {
                prev.expand_to_canvas(w, h, &shown_before_previous);
                cleared.fill([0; 4]);
            }
            shown = cleared;
        }
        let (left, top, right, bottom) = changed_bounds(canvas, &shown, w, h).unwrap_or((0, 0, 1, 1));
        let mut pixels = Vec::with_capacity((right - left) * (bottom - top));
        let mut exact = Vec::with_capacity((right - left) * (bottom - top));
        for y in top..bottom {
            for x in left..right {
                let (c, s) = (canvas[y * w + x], shown[y * w + x]);
                pixels.push(if c == s { None } else { Some(c) });
                exact.push(c);
            }
        }
        let (width, height, delay_ms) = (right - left, bottom - top, image.frames[i].delay_ms);
        patches.push(Patch { left, top, width, height, pixels, exact, delay_ms, clear_after: false });
        shown_before_previous = std::mem::replace(&mut shown, canvas.clone());
    }
    write(image, &patches, w, h)
}

fn write(image: &Image, patches: &[Patch], w: usize, h: usize) -> Result<Option<Vec<u8>>, Error> {
    // One global palette when every colour of every frame fits (plus the transparent entry).
    let global = palette_of(patches.iter().flat_map(|p| p.pixels.iter().flatten()), 255);
    let to_palette = |colours: &[[u8; 4]]| -> Vec<u8> {
        let mut p: Vec<u8> = colours.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
        p.extend_from_slice(&[0, 0, 0]); // the transparent entry comes last
        p
    };
    let global_palette = global.as_ref().map_or_else(Vec::new, |(colours, _)| to_palette(colours));
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w as u16, h as u16, &global_palette).map_err(encode_error)?;
        match image.loop_count {
            0 if image.is_animated() => enc.set_repeat(Repeat::Infinite).map_err(encode_error)?,
            0 | 1 => {}
            n => enc.set_repeat(Repeat::Finite((n - 1).min(u32::from(u16::MAX)) as u16)).map_err(encode_error)?,
        }
        for patch in patches {
            let (indices, transparent, local) = if let Some((colours, index)) = &global {
                let transparent = colours.len() as u8;
                (patch.pixels.iter().map(|p| p.map_or(transparent, |c| index[&c])).collect(), Some(transparent), None)
            } else if let Some((colours, index)) = palette_of(patch.pixels.iter().flatten(), 255) {
                // Unchanged pixels as a transparent entry after the frame's own colours.
                let transparent = colours.len() as u8;
                (patch.pixels.iter().map(|p| p.map_or(transparent, |c| index[&c])).collect(), Some(transparent), Some(to_palette(&colours)))
            } else if let Some((colours, index)) = palette_of(patch.exact.iter(), 256) {
                // A frame using all 256 colours has no entry to spare: store its exact colours.
                let transparent = index.get(&[0, 0, 0, 0]).copied();
                let palette: Vec<u8> = colours.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
                (patch.exact.iter().map(|c| index[c]).collect(), transparent, Some(palette))
            } else {
                return Ok(None); // more than 256 colours in one frame: not exact in GIF
            };
            let mut frame = gif::Frame {
                left: patch.left as u16,
                top: patch.top as u16,
                width: patch.width as u16,
                height: patch.height as u16,
                delay: ((patch.delay_ms + 5) / 10).min(u32::from(u16::MAX)) as u16,
                dispose: if patch.clear_after { DisposalMethod::Background } else { DisposalMethod::Keep },
                transparent,
                buffer: std::borrow::Cow::Owned(indices),
                ..gif::Frame::default()
            };
            frame.palette = local;
            enc.write_frame(&frame).map_err(encode_error)?;
        }
    }
    Ok(Some(out))
}

/// Distinct colours in order of appearance, and each colour's index among them.
type Palette = (Vec<[u8; 4]>, HashMap<[u8; 4], u8>);

/// The distinct colours (at most `max`) in order of appearance, with their indices.
fn palette_of<'a>(colours: impl Iterator<Item = &'a [u8; 4]>, max: usize) -> Option<Palette> {
    let mut list = Vec::new();
    let mut index = HashMap::new();
    for c in colours {
        if !index.contains_key(c) {
            if list.len() >= max {
                return None;
            }
            index.insert(*c, list.len() as u8);
            list.push(*c);
        }
    }
    Some((list, index))
}

fn encode_error(e: gif::EncodingError) -> Error {
    Error::internal(format!("GIF encoder: {e}"))
}

/// Quantizes all frames to one shared palette of at most 255 colours (one entry stays free for
/// transparency) with libimagequant at quality `0-quality`. Animations are dithered lightly:
/// dither noise differs from frame to frame and would defeat the unchanged-pixel optimisation.
pub(crate) fn quantize(image: &Image, quality: u8, options: &crate::Options) -> Result<Image, Error> {
    let internal = |e: imagequant::Error| match e {
        imagequant::Error::Aborted => Error::Cancelled,
        e => Error::internal(format!("imagequant: {e}")),
    };
    let effort = options.effort;
    let mut attr = super::png::quantizer(&options.cancel);
    attr.set_max_colors(255).map_err(internal)?;
    attr.set_quality(0, quality).map_err(internal)?;
    attr.set_speed(i32::from(6 - effort.min(5))).map_err(internal)?;
    let bitmaps: Vec<Vec<imagequant::RGBA>> = image
        .frames
        .iter()
        .map(|f| {
            f.pixels
                .to_rgba8()
                .chunks_exact(4)
                .map(|p| if p[3] < 128 { imagequant::RGBA::new(0, 0, 0, 0) } else { imagequant::RGBA::new(p[0], p[1], p[2], 255) })
                .collect()
        })
        .collect();
    let (w, h) = (image.width as usize, image.height as usize);
    let mut histogram = imagequant::Histogram::new(&attr);
    let mut images = Vec::with_capacity(bitmaps.len());
    for bitmap in &bitmaps {
        let mut img = attr.new_image_borrowed(bitmap, w, h, 0.0).map_err(internal)?;
        histogram.add_image(&attr, &mut img).map_err(internal)?;
        images.push(img);
    }
    let mut result = histogram.quantize(&attr).map_err(internal)?;
    result.set_dithering_level(if image.is_animated() { 0.5 } else { 1.0 }).map_err(internal)?;
    let mut out = image.clone();
    for (frame, img) in out.frames.iter_mut().zip(images.iter_mut()) {
        let (palette, indices) = result.remapped(img).map_err(internal)?;
        let rgba = indices.iter().flat_map(|&i| {
            let c = palette[usize::from(i)];
            [c.r, c.g, c.b, c.a]
        });
        frame.pixels = Pixels::rgba8(image.width, image.height, rgba.collect());
    }
    Ok(out)
}
