//! Resizing: the geometry of each fit ([`plan`]) and the new pixels ([`apply`]).
//!
//! Pixels are resized in linear light. Averaging sRGB-encoded values instead (what libvips,
//! sharp and browsers do by default) darkens fine high-contrast detail: one black and one white
//! pixel average to sRGB 128, which shows at 22 % of white's light rather than 50 %, so thin
//! text turns heavier and textures darker. Samples are decoded to 16-bit linear values through a
//! table, filtered with Lanczos3 (fast_image_resize, SIMD) with premultiplied alpha, so that
//! transparent pixels lend no colour to their neighbours, and encoded back to sRGB at the input's
//! bit depth.
//!
//! Large reductions first average whole blocks of k×k pixels while linearising (an exact box
//! filter in linear light), leaving Lanczos3 at least [`LANCZOS_MIN_REDUCTION`]× to do, as
//! libvips does; so no 16-bit copy of a large input is ever made.

use std::sync::LazyLock;

use fast_image_resize as fr;
use rayon::prelude::*;

use crate::error::{Error, LimitKind};
use crate::image::pixels::{Pixels, Samples};
use crate::image::{Frame, Image};
use crate::options::{Fit, Limits, Resize};

/// The part of the source that becomes the output, in source pixels (fractional for crops).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl Region {
    fn whole(width: u32, height: u32) -> Self {
        Region { left: 0.0, top: 0.0, width: f64::from(width), height: f64::from(height) }
    }
}

/// What a resize makes of one source size: the output size and the region of the source it shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    pub width: u32,
    pub height: u32,
    pub region: Region,
    /// The request asked for more than the source has and enlarging was not allowed.
    pub not_enlarged: bool,
}

impl Plan {
    /// True when the output would be the source itself.
    pub fn keeps(&self, width: u32, height: u32) -> bool {
        (self.width, self.height) == (width, height) && self.region == Region::whole(width, height)
    }

    /// The same output from a smaller decode of the source: `full` is the size the plan was made
    /// for, `decoded` the size of the pixels it will be applied to (a JPEG decoded shrunk).
    pub fn on_source(self, full: (u32, u32), decoded: (u32, u32)) -> Plan {
        let (sx, sy) = (f64::from(decoded.0) / f64::from(full.0), f64::from(decoded.1) / f64::from(full.1));
        let r = self.region;
        let region = Region { left: r.left * sx, top: r.top * sy, width: r.width * sx, height: r.height * sy };
        Plan { region, ..self }
    }

    /// The whole source at `scale` (for shrinking towards a byte budget).
    pub fn scaled(width: u32, height: u32, scale: f64) -> Plan {
        Plan { width: side(width, scale), height: side(height, scale), region: Region::whole(width, height), not_enlarged: false }
    }
}

/// The output size and source region for a `width`×`height` source (as displayed). The request
/// must have been validated ([`Resize::validate`]).
pub(crate) fn plan(width: u32, height: u32, request: &Resize) -> Plan {
    let (w, h) = (f64::from(width), f64::from(height));
    let scale_x = request.width.map(|t| f64::from(t) / w);
    let scale_y = request.height.map(|t| f64::from(t) / h);
    let capped = |s: f64| if request.enlarge { s } else { s.min(1.0) };
    let whole = Region::whole(width, height);
    match request.fit {
        Fit::Scale | Fit::Inside => {
            let wanted = scale_x.into_iter().chain(scale_y).fold(f64::INFINITY, f64::min);
            let s = capped(wanted);
            Plan { width: side(width, s), height: side(height, s), region: whole, not_enlarged: s < wanted }
        }
        Fit::Fill => {
            let (wanted_x, wanted_y) = (scale_x.unwrap_or(1.0), scale_y.unwrap_or(1.0));
            let (sx, sy) = (capped(wanted_x), capped(wanted_y));
            Plan { width: side(width, sx), height: side(height, sy), region: whole, not_enlarged: sx < wanted_x || sy < wanted_y }
        }
        Fit::Cover => {
            let (box_w, box_h) = (request.width.unwrap_or(width), request.height.unwrap_or(height));
            let wanted = f64::max(f64::from(box_w) / w, f64::from(box_h) / h);
            let s = capped(wanted);
            // Without enlarging, a box larger than the image keeps the image's size on that side.
            let (out_w, out_h) = (box_w.min(side(width, s)), box_h.min(side(height, s)));
            let (crop_w, crop_h) = ((f64::from(out_w) / s).min(w), (f64::from(out_h) / s).min(h));
            // Centred on whole output pixels: the same pixels as scaling the whole image and
            // cutting the box out of it, as libvips does.
            let offset = |length: u32, out: u32, crop: f64, full: f64| {
                let whole_pixels = (f64::from(side(length, s)) - f64::from(out)) / 2.0;
                (whole_pixels.floor() / s).min(full - crop)
            };
            let region =
                Region { left: offset(width, out_w, crop_w, w), top: offset(height, out_h, crop_h, h), width: crop_w, height: crop_h };
            Plan { width: out_w, height: out_h, region, not_enlarged: s < wanted }
        }
    }
}

/// Refuses outputs beyond the pixel and dimension limits (before any of their pixels exist).
pub(crate) fn check_limits(plan: &Plan, limits: &Limits) -> Result<(), Error> {
    let side = u64::from(plan.width.max(plan.height));
    if side > u64::from(limits.max_dimension) {
        return Err(Error::LimitExceeded { what: LimitKind::Dimension, value: side, limit: u64::from(limits.max_dimension) });
    }
    let pixels = u64::from(plan.width) * u64::from(plan.height);
    if pixels > limits.max_pixels {
        return Err(Error::LimitExceeded { what: LimitKind::Pixels, value: pixels, limit: limits.max_pixels });
    }
    if pixels > limits.max_output_pixels {
        return Err(Error::LimitExceeded { what: LimitKind::OutputPixels, value: pixels, limit: limits.max_output_pixels });
    }
    Ok(())
}

/// Every frame resized by `plan` (timing, loop count and profile kept).
pub(crate) fn apply(image: &Image, plan: &Plan) -> Result<Image, Error> {
    let frames = image
        .frames
        .iter()
        .map(|f| Ok(Frame { pixels: resize_pixels(&f.pixels, plan)?, delay_ms: f.delay_ms }))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Image {
        width: plan.width,
        height: plan.height,
        frames,
        loop_count: image.loop_count,
        icc: image.icc.clone(),
        orientation: image.orientation,
        notes: image.notes.clone(),
    })
}

/// Lanczos3 is left at least this much of the reduction after the box pre-shrink.
const LANCZOS_MIN_REDUCTION: f64 = 3.0;

fn side(length: u32, scale: f64) -> u32 {
    ((f64::from(length) * scale).round() as u32).max(1)
}

fn resize_pixels(pixels: &Pixels, plan: &Plan) -> Result<Pixels, Error> {
    let reduction = f64::min(plan.region.width / f64::from(plan.width), plan.region.height / f64::from(plan.height));
    let block = ((reduction / LANCZOS_MIN_REDUCTION).floor() as u32).max(1);
    // Lanczos3 reads 3 output pixels' worth of source either side: crops keep that much around them.
    let support = (3.0 * reduction.max(1.0)).ceil() as u32 + block;
    let mut linear = linearise(pixels, plan.region, block, support);
    let internal = |e: &dyn std::fmt::Display| Error::internal(format!("resize: {e}"));
    let source =
        fr::images::Image::from_slice_u8(linear.width, linear.height, bytemuck::cast_slice_mut(&mut linear.samples), fr::PixelType::U16x4)
            .map_err(|e| internal(&e))?;
    let mut resized = fr::images::Image::new(plan.width, plan.height, fr::PixelType::U16x4);
    let r = linear.region;
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
        .crop(r.left, r.top, r.width, r.height)
        .use_alpha(pixels.has_alpha());
    fr::Resizer::new().resize(&source, &mut resized, &options).map_err(|e| internal(&e))?;
    let resized: &[u16] = bytemuck::cast_slice(resized.buffer());
    let samples = match pixels.samples {
        Samples::Rgba8(_) => {
            Samples::Rgba8(from_linear(resized, |v| SRGB8_FROM_LINEAR[usize::from(v)], |a| ((u32::from(a) * 255 + 32895) >> 16) as u8))
        }
        Samples::Rgba16(_) => Samples::Rgba16(from_linear(resized, |v| SRGB16_FROM_LINEAR[usize::from(v)], |a| a)),
    };
    Ok(Pixels { width: plan.width, height: plan.height, samples })
}

/// 16-bit linear RGBA (not premultiplied) of the source's `region` and up to `margin` pixels around
/// it, averaged over `block`×`block` pixels, and where the region lies in it.
struct Linear {
    width: u32,
    height: u32,
    samples: Vec<u16>,
    region: Region,
}

fn linearise(pixels: &Pixels, region: Region, block: u32, margin: u32) -> Linear {
    let x0 = (region.left.floor() as u32).saturating_sub(margin);
    let y0 = (region.top.floor() as u32).saturating_sub(margin);
    let x1 = ((region.left + region.width).ceil() as u32).saturating_add(margin).min(pixels.width);
    let y1 = ((region.top + region.height).ceil() as u32).saturating_add(margin).min(pixels.height);
    let (width, height) = ((x1 - x0).div_ceil(block), (y1 - y0).div_ceil(block));
    let k = f64::from(block);
    let (left, top) = ((region.left - f64::from(x0)) / k, (region.top - f64::from(y0)) / k);
    // Within the reduced image even where rounding would put the far edge a hair outside it.
    let region = Region {
        left,
        top,
        width: (region.width / k).min(f64::from(width) - left),
        height: (region.height / k).min(f64::from(height) - top),
    };
    let stride = pixels.width as usize * 4;
    let bounds = Bounds { x0, x1, y0, y1, block, width, stride };
    let samples = match &pixels.samples {
        Samples::Rgba8(v) => bounds.average(v, |c| LINEAR_FROM_SRGB8[usize::from(c)], |a| u16::from(a) * 257),
        Samples::Rgba16(v) => bounds.average(v, |c| LINEAR_FROM_SRGB16[usize::from(c)], |a| a),
    };
    Linear { width, height, samples, region }
}

/// The source rectangle `x0..x1` × `y0..y1` (pixels; `stride` samples per source row), cut into
/// `block`-sized squares, `width` of them per row (the last row and column may be partial).
struct Bounds {
    x0: u32,
    x1: u32,
    y0: u32,
    y1: u32,
    block: u32,
    width: u32,
    stride: usize,
}

impl Bounds {
    fn average<T: Copy + Sync>(&self, source: &[T], linear: impl Fn(T) -> u16 + Sync, alpha: impl Fn(T) -> u16 + Sync) -> Vec<u16> {
        let row_len = self.width as usize * 4;
        let rows = (self.y1 - self.y0).div_ceil(self.block) as usize;
        let mut out = vec![0u16; row_len * rows];
        out.par_chunks_mut(row_len).enumerate().for_each(|(row, out)| {
            let sy0 = self.y0 + row as u32 * self.block;
            let sy1 = (sy0 + self.block).min(self.y1);
            if self.block == 1 {
                let start = sy0 as usize * self.stride + self.x0 as usize * 4;
                for (o, s) in out.chunks_exact_mut(4).zip(source[start..start + row_len].chunks_exact(4)) {
                    o.copy_from_slice(&[linear(s[0]), linear(s[1]), linear(s[2]), alpha(s[3])]);
                }
                return;
            }
            for (column, o) in out.chunks_exact_mut(4).enumerate() {
                let sx0 = self.x0 + column as u32 * self.block;
                let sx1 = (sx0 + self.block).min(self.x1);
                // Colour weighted by alpha (premultiplied sums), so transparent pixels lend none.
                let (mut sums, mut alpha_sum) = ([0u64; 3], 0u64);
                for y in sy0..sy1 {
                    let start = y as usize * self.stride;
                    for s in source[start + sx0 as usize * 4..start + sx1 as usize * 4].chunks_exact(4) {
                        let a = u64::from(alpha(s[3]));
                        for (sum, &c) in sums.iter_mut().zip(&s[..3]) {
                            *sum += u64::from(linear(c)) * a;
                        }
                        alpha_sum += a;
                    }
                }
                let count = u64::from((sx1 - sx0) * (sy1 - sy0));
                for (o, sum) in o.iter_mut().zip(sums) {
                    *o = (sum + alpha_sum / 2).checked_div(alpha_sum).unwrap_or(0) as u16;
                }
                o[3] = ((alpha_sum + count / 2) / count) as u16;
            }
        });
        out
    }
}

/// Linear 16-bit RGBA back to sRGB samples through `encode`, alpha through `alpha`.
fn from_linear<T: Copy + Send>(linear: &[u16], encode: impl Fn(u16) -> T + Sync, alpha: impl Fn(u16) -> T + Sync) -> Vec<T> {
    linear
        .par_chunks(4 * 1024)
        .flat_map_iter(|chunk| chunk.chunks_exact(4).flat_map(|p| [encode(p[0]), encode(p[1]), encode(p[2]), alpha(p[3])]))
        .collect()
}

/// The sRGB transfer function (IEC 61966-2-1), both ways, on 0..1.
fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
}

fn linear_to_srgb(v: f64) -> f64 {
    if v <= 0.0031308 { v * 12.92 } else { 1.055 * v.powf(1.0 / 2.4) - 0.055 }
}

fn table<T>(entries: usize, from_max: f64, to_max: f64, f: fn(f64) -> f64, cast: fn(f64) -> T) -> Vec<T> {
    (0..entries).map(|i| cast((f(i as f64 / from_max) * to_max).round())).collect()
}

static LINEAR_FROM_SRGB8: LazyLock<Vec<u16>> = LazyLock::new(|| table(256, 255.0, 65535.0, srgb_to_linear, |v| v as u16));
static LINEAR_FROM_SRGB16: LazyLock<Vec<u16>> = LazyLock::new(|| table(65536, 65535.0, 65535.0, srgb_to_linear, |v| v as u16));
static SRGB8_FROM_LINEAR: LazyLock<Vec<u8>> = LazyLock::new(|| table(65536, 65535.0, 255.0, linear_to_srgb, |v| v as u8));
static SRGB16_FROM_LINEAR: LazyLock<Vec<u16>> = LazyLock::new(|| table(65536, 65535.0, 65535.0, linear_to_srgb, |v| v as u16));

#[cfg(test)]
mod tests {
    use super::*;

    fn request(width: Option<u32>, height: Option<u32>, fit: Fit) -> Resize {
        Resize { width, height, fit, enlarge: false }
    }

    fn size(p: &Plan) -> (u32, u32) {
        (p.width, p.height)
    }

    #[test]
    fn scale_and_fit_keep_the_aspect_ratio() {
        assert_eq!(size(&plan(4000, 3000, &request(Some(1280), None, Fit::Scale))), (1280, 960));
        assert_eq!(size(&plan(4000, 3000, &request(None, Some(300), Fit::Scale))), (400, 300));
        assert_eq!(size(&plan(4000, 3000, &request(Some(1000), Some(1000), Fit::Inside))), (1000, 750));
        assert_eq!(size(&plan(3000, 4000, &request(Some(1000), Some(1000), Fit::Inside))), (750, 1000));
    }

    #[test]
    fn cover_fills_the_box_with_a_centred_crop() {
        let p = plan(4000, 3000, &request(Some(300), Some(300), Fit::Cover));
        assert_eq!(size(&p), (300, 300));
        assert_eq!(p.region, Region { left: 500.0, top: 0.0, width: 3000.0, height: 3000.0 });
    }

    #[test]
    fn nothing_is_enlarged_unless_asked() {
        let p = plan(400, 200, &request(Some(800), None, Fit::Scale));
        assert!(p.keeps(400, 200) && p.not_enlarged);
        // A cover box larger than the image on one side: that side stays, the other is cropped.
        let p = plan(400, 200, &request(Some(300), Some(300), Fit::Cover));
        assert_eq!((size(&p), p.region.left, p.not_enlarged), ((300, 200), 50.0, true));
        let p = plan(400, 200, &request(Some(800), Some(100), Fit::Fill));
        assert_eq!(size(&p), (400, 100));
        let p = plan(400, 200, &Resize { enlarge: true, ..request(Some(800), None, Fit::Scale) });
        assert_eq!((size(&p), p.not_enlarged), ((800, 400), false));
    }

    #[test]
    fn the_transfer_tables_invert_each_other() {
        for v in 0..=255u8 {
            assert_eq!(SRGB8_FROM_LINEAR[usize::from(LINEAR_FROM_SRGB8[usize::from(v)])], v);
        }
    }

    #[test]
    fn averaging_in_linear_light_keeps_the_light() {
        // Black and white columns averaged to grey: half the light is sRGB 188, not 128. The
        // first reduction is Lanczos3 alone, the second starts with the box filter. (Columns
        // next to the edges, where the kernel is cut off, are not checked.)
        for (side, scale) in [(48, 0.25), (60, 1.0 / 12.0)] {
            let stripes = (0..side * side).flat_map(|i| if i % 2 == 0 { [0, 0, 0, 255] } else { [255, 255, 255, 255] }).collect();
            let grey = resize_pixels(&Pixels::rgba8(side, side, stripes), &Plan::scaled(side, side, scale)).unwrap();
            let w = grey.width as usize;
            let inner = grey
                .to_rgba8()
                .chunks_exact(4)
                .enumerate()
                .filter(|(i, _)| (1..w - 1).contains(&(i % w)))
                .map(|(_, p)| p[0])
                .collect::<Vec<_>>();
            assert!(inner.iter().all(|v| (185..=190).contains(v)), "{side}: {inner:?}");
        }
    }
}
