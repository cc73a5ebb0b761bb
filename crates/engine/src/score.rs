//! SSIMULACRA2 scores of lossy results against the decoded input (higher is better; 90 is
//! visually lossless, 70 high quality, 50 medium).
//!
//! The `ssimulacra2` crate costs about 1.5 s per megapixel on two cores, more than the encoders,
//! so images above [`FULL_SCORE_PIXELS`] are scored on four tiles spread over the image (one per
//! quadrant) and the mean is reported: an estimate at a fixed cost.

use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};

use crate::pixels::Pixels;

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
    let (a, b) = (reference.to_rgba8(), distorted.to_rgba8());
    if u64::from(w) * u64::from(h) <= FULL_SCORE_PIXELS {
        return score_rgba(&a, &b, w, h);
    }
    let tiles = tiles(w, h);
    let scores: Option<Vec<f64>> =
        tiles.iter().map(|&(x, y, tw, th)| score_rgba(&crop(&a, w, x, y, tw, th), &crop(&b, w, x, y, tw, th), tw, th)).collect();
    let scores = scores?;
    Some(scores.iter().sum::<f64>() / scores.len() as f64)
}

/// For images scored by tiles: the tiles stitched into one small image, so that searches can
/// encode and score just what the final score will look at. `None` for small images.
pub(crate) fn proxy(pixels: &Pixels) -> Option<Pixels> {
    let (w, h) = (pixels.width, pixels.height);
    if u64::from(w) * u64::from(h) <= FULL_SCORE_PIXELS {
        return None;
    }
    let rgba = pixels.to_rgba8();
    let tiles = tiles(w, h);
    let (tw, th) = (tiles[0].2, tiles[0].3);
    let columns = if w >= 2 * TILE { 2 } else { 1 };
    let rows = tiles.len() as u32 / columns;
    let (pw, ph) = (tw * columns, th * rows);
    let mut out = vec![0u8; (pw * ph * 4) as usize];
    for (i, &(x, y, _, _)) in tiles.iter().enumerate() {
        let tile = crop(&rgba, w, x, y, tw, th);
        let (ox, oy) = ((i as u32 % columns) * tw, (i as u32 / columns) * th);
        for row in 0..th {
            let dst = (((oy + row) * pw + ox) * 4) as usize;
            let src = (row * tw * 4) as usize;
            out[dst..dst + (tw * 4) as usize].copy_from_slice(&tile[src..src + (tw * 4) as usize]);
        }
    }
    Some(Pixels::rgba8(pw, ph, out))
}

/// Above this many pixels the score is estimated from tiles.
const FULL_SCORE_PIXELS: u64 = 1 << 20;
const TILE: u32 = 384;

/// Up to four TILE×TILE regions, each centred in one quadrant (fewer for narrow images).
fn tiles(w: u32, h: u32) -> Vec<(u32, u32, u32, u32)> {
    let (tw, th) = (TILE.min(w), TILE.min(h));
    let (nx, ny) = (if w >= 2 * TILE { 2 } else { 1 }, if h >= 2 * TILE { 2 } else { 1 });
    let mut out = Vec::with_capacity(4);
    for iy in 0..ny {
        for ix in 0..nx {
            let cx = w / nx * ix + w / nx / 2;
            let cy = h / ny * iy + h / ny / 2;
            out.push((cx.saturating_sub(tw / 2).min(w - tw), cy.saturating_sub(th / 2).min(h - th), tw, th));
        }
    }
    out
}

fn crop(rgba: &[u8], width: u32, x: u32, y: u32, tw: u32, th: u32) -> Vec<u8> {
    let (width, x, tw) = (width as usize * 4, x as usize * 4, tw as usize * 4);
    (y as usize..(y + th) as usize).flat_map(|row| &rgba[row * width + x..row * width + x + tw]).copied().collect()
}

fn score_rgba(a: &[u8], b: &[u8], width: u32, height: u32) -> Option<f64> {
    let has_alpha = |v: &[u8]| v.chunks_exact(4).any(|p| p[3] != u8::MAX);
    let backgrounds: &[f32] = if has_alpha(a) || has_alpha(b) { &[0.0, 1.0] } else { &[0.0] };
    backgrounds
        .iter()
        .map(|&bg| {
            let a = to_rgb(a, width, height, bg)?;
            let b = to_rgb(b, width, height, bg)?;
            compute_frame_ssimulacra2(a, b).ok()
        })
        .try_fold(f64::INFINITY, |worst, s| s.map(|s| worst.min(s)))
}

fn to_rgb(rgba: &[u8], width: u32, height: u32, background: f32) -> Option<Rgb> {
    let data = rgba
        .chunks_exact(4)
        .map(|p| {
            let alpha = f32::from(p[3]) / 255.0;
            let c = |v: u8| f32::from(v) / 255.0 * alpha + background * (1.0 - alpha);
            [c(p[0]), c(p[1]), c(p[2])]
        })
        .collect();
    Rgb::new(data, width as usize, height as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).ok()
}
