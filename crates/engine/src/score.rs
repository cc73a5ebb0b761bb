//! SSIMULACRA2 scores of lossy results against the decoded input (higher is better; 90 is
//! visually lossless, 70 high quality, 50 medium).
//!
//! The whole image is always scored. An estimate from four 384×384 tiles, used before, read on
//! average 9 points too high on the corpus's 33 PNGs of 1 MP or more (26 at worst): the metric
//! pools errors with a 4-norm, so the worst regions decide the score, and tiles miss them. The full
//! score costs about 0.1 µs of CPU per pixel, about as much as compressing the image, so callers
//! ask for it ([`crate::Options::score`]) rather than get it by default. It is computed in tiles
//! (`tiled`), so its memory is a few tiles and a quarter-size copy of both images.

mod tiled;

use std::borrow::Cow;

use crate::image::Image;
use crate::image::color;
use crate::image::pixels::Pixels;

/// The score of `distorted` against `reference`, or `None` where the metric is undefined
/// (images smaller than 8×8) or the two differ in size.
///
/// Images with transparency are scored composited over black and over white, keeping the worse:
/// an error hidden in one background shows in the other.
pub(crate) fn ssimulacra2(reference: &Pixels, distorted: &Pixels) -> Option<f64> {
    let (w, h) = (reference.width, reference.height);
    if (w, h) != (distorted.width, distorted.height) || w < 8 || h < 8 {
        return None;
    }
    score_rgba(&reference.to_rgba8(), &distorted.to_rgba8(), w, h)
}

/// The score of the first frames as a viewer shows them: each turned by its own EXIF orientation
/// and converted to sRGB through its own ICC profile. Stored values are not what anyone sees: an
/// output that dropped a wide-gamut profile, or its orientation, has the same stored values and
/// looks different.
pub(crate) fn displayed(reference: &Image, distorted: &Image) -> Option<f64> {
    fn shown(image: &Image) -> Option<Cow<'_, Pixels>> {
        // Upright sRGB is shown as stored: no copy (a full-size one per image is most of what a
        // score holds beside its tiles).
        if color::shown_as_stored(image.icc.as_deref()) && !(2..=8).contains(&image.orientation) {
            return Some(Cow::Borrowed(image.first()));
        }
        let first = Image { icc: image.icc.clone(), orientation: image.orientation, ..Image::still(image.first().clone()) };
        Some(Cow::Owned(color::to_srgb(first.apply_orientation()).ok()?.frames.swap_remove(0).pixels))
    }
    ssimulacra2(&*shown(reference)?, &*shown(distorted)?)
}

/// The score of two images of the same orientation stored in the same colours (`icc`, or sRGB).
pub(crate) fn in_profile(reference: &Pixels, distorted: &Pixels, icc: Option<&[u8]>) -> Option<f64> {
    if color::shown_as_stored(icc) {
        // No copies to convert: each would be a full-size image held beside the score's tiles.
        return ssimulacra2(reference, distorted);
    }
    let with = |pixels: &Pixels| Image { icc: icc.map(<[u8]>::to_vec), ..Image::still(pixels.clone()) };
    displayed(&with(reference), &with(distorted))
}

/// For searches over the quality setting on large images: a mosaic of small tiles from all over
/// the image, so that each step encodes and scores a fraction of it. Its score tracks the full
/// image's within a few points (12×12 tiles of 64 pixels on the 33 large corpus PNGs: mean
/// difference 3.2, at most 8.9, mostly higher), so a search ends with the full image checked.
/// `None` for images at or below [`PROXY_MIN_PIXELS`].
pub(crate) fn proxy(pixels: &Pixels) -> Option<Pixels> {
    let (w, h) = (pixels.width, pixels.height);
    if u64::from(w) * u64::from(h) <= PROXY_MIN_PIXELS {
        return None;
    }
    let rgba = pixels.to_rgba8();
    let (tw, th) = (PROXY_TILE.min(w / PROXY_GRID), PROXY_TILE.min(h / PROXY_GRID));
    let (pw, ph) = (tw * PROXY_GRID, th * PROXY_GRID);
    let mut out = vec![0u8; pw as usize * ph as usize * 4];
    for gy in 0..PROXY_GRID {
        for gx in 0..PROXY_GRID {
            // Each tile centred in its cell of a PROXY_GRID × PROXY_GRID grid over the image.
            let x = w / PROXY_GRID * gx + (w / PROXY_GRID - tw) / 2;
            let y = h / PROXY_GRID * gy + (h / PROXY_GRID - th) / 2;
            for row in 0..th {
                let src = ((y + row) as usize * w as usize + x as usize) * 4;
                let dst = ((gy * th + row) as usize * pw as usize + (gx * tw) as usize) * 4;
                out[dst..dst + tw as usize * 4].copy_from_slice(&rgba[src..src + tw as usize * 4]);
            }
        }
    }
    Some(Pixels::rgba8(pw, ph, out))
}

/// Above this many pixels searches run on the [`proxy`].
const PROXY_MIN_PIXELS: u64 = 1 << 20;
const PROXY_GRID: u32 = 12;
const PROXY_TILE: u32 = 64;

fn score_rgba(a: &[u8], b: &[u8], width: u32, height: u32) -> Option<f64> {
    let has_alpha = |v: &[u8]| v.chunks_exact(4).any(|p| p[3] != u8::MAX);
    let translucent = has_alpha(a) || has_alpha(b);
    let backgrounds: &[f32] = if translucent { &[0.0, 1.0] } else { &[0.0] };
    backgrounds
        .iter()
        .map(|&bg| tiled::ssimulacra2_rgba8(a, b, width as usize, height as usize, bg, translucent))
        .try_fold(f64::INFINITY, |worst, s| s.map(|s| worst.min(s)))
}
