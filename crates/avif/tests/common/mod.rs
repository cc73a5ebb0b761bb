//! Helpers shared by the integration tests: the test pattern, error measures, the corpus folder.
#![allow(dead_code)]

use std::path::PathBuf;

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

/// Mean absolute difference per channel (R, G, B, A).
pub fn mae(a: &[u8], b: &[u8]) -> [f64; 4] {
    assert_eq!(a.len(), b.len(), "buffers differ in size");
    let mut sum = [0u64; 4];
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..4 {
            sum[c] += u64::from(pa[c].abs_diff(pb[c]));
        }
    }
    let n = (a.len() / 4).max(1) as f64;
    sum.map(|s| s as f64 / n)
}

/// Asserts every channel's mean absolute error is below `limit`, with a readable message.
pub fn assert_close(what: &str, got: &[u8], want: &[u8], limit: f64) {
    let e = mae(got, want);
    eprintln!("{what}: mean abs error R {:.3} G {:.3} B {:.3} A {:.3}", e[0], e[1], e[2], e[3]);
    assert!(e.iter().all(|&v| v < limit), "{what}: mean absolute error {e:?} not below {limit}");
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

/// The shared corpus, from `COMPRESSOR_CORPUS`. Unset: `None` and a notice (the test is skipped).
/// Set but missing: a failure, so CI cannot silently skip it.
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

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
