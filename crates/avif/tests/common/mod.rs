//! Helpers shared by the integration tests: the test pattern, error measures, the corpus folder.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use compressor_test_support::{assert_close, corpus, mae};

/// The RGBA test pattern (smooth gradients, alpha 255 → 64 left to right). The fixtures in
/// `tests/data` were encoded from exactly this pattern (see `tests/data/make-fixtures.sh`).
pub fn pattern(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            out.extend_from_slice(&[
                (x * 255 / (w - 1)) as u8,
                (y * 255 / (h - 1)) as u8,
                (255 - (x + y) * 255 / (w + h - 2)) as u8,
                (255 - x * 191 / (w - 1)) as u8,
            ]);
        }
    }
    out
}

/// The pattern with alpha forced to 255.
pub fn opaque_pattern(w: u32, h: u32) -> Vec<u8> {
    let mut p = pattern(w, h);
    p.chunks_exact_mut(4).for_each(|px| px[3] = 255);
    p
}

/// BT.601 luma of each pixel as an opaque grey RGBA image (what a monochrome encode keeps).
pub fn grey_601(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| {
            let y = (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])).round() as u8;
            [y, y, y, 255]
        })
        .collect()
}

/// Rotates an RGBA image a quarter turn anti-clockwise.
pub fn rotate_ccw(rgba: &[u8], w: u32, h: u32) -> (Vec<u8>, u32, u32) {
    let (w, h) = (w as usize, h as usize);
    let mut out = vec![0; rgba.len()];
    // Output pixel (x, y), in an h-wide image, shows input pixel (w-1-y, x).
    for y in 0..w {
        for x in 0..h {
            let src = ((x * w) + (w - 1 - y)) * 4;
            out[(y * h + x) * 4..][..4].copy_from_slice(&rgba[src..src + 4]);
        }
    }
    (out, h as u32, w as u32)
}

/// Mirrors top and bottom.
pub fn flip_top_bottom(rgba: &[u8], w: u32, h: u32) -> Vec<u8> {
    let row = w as usize * 4;
    (0..h as usize).rev().flat_map(|y| rgba[y * row..(y + 1) * row].to_vec()).collect()
}

/// Mirrors left and right.
pub fn flip_left_right(rgba: &[u8], w: u32) -> Vec<u8> {
    rgba.chunks_exact(w as usize * 4).flat_map(|row| row.chunks_exact(4).rev().flatten().copied().collect::<Vec<u8>>()).collect()
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
