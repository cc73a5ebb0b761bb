//! Decoded AV1 planes to 8-bit RGBA: range expansion, chroma upsampling, the YUV→RGB matrix,
//! alpha, un-premultiplication and the `irot`/`imir` transformations.

use crate::AvifError;
use crate::av1::{Frame, Layout, Plane};
use crate::container::Transform;

/// How Y, U and V become R, G and B (ITU-T H.273 matrix coefficients).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Matrix {
    /// MC 0: the planes hold G, B and R.
    Identity,
    /// MC 8.
    YCgCo,
    /// Non-constant-luminance Y'CbCr with these luma weights of red and blue.
    YCbCr { kr: f32, kb: f32 },
}

/// CIE xy chromaticities of red, green, blue and white for H.273 colour primaries.
fn primaries_xy(code: u16) -> Option<[(f32, f32); 4]> {
    const D65: (f32, f32) = (0.3127, 0.3290);
    const C: (f32, f32) = (0.310, 0.316);
    Some(match code {
        1 | 2 => [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06), D65], // BT.709 (also for "unspecified")
        4 => [(0.67, 0.33), (0.21, 0.71), (0.14, 0.08), C],       // BT.470 M
        5 => [(0.64, 0.33), (0.29, 0.60), (0.15, 0.06), D65],     // BT.470 BG
        6 | 7 => [(0.630, 0.340), (0.310, 0.595), (0.155, 0.070), D65], // SMPTE 170M / 240M
        8 => [(0.681, 0.319), (0.243, 0.692), (0.145, 0.049), C], // generic film
        9 => [(0.708, 0.292), (0.170, 0.797), (0.131, 0.046), D65], // BT.2020
        11 => [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.314, 0.351)], // DCI-P3
        12 => [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060), D65], // Display P3
        22 => [(0.630, 0.340), (0.295, 0.605), (0.155, 0.077), D65], // EBU 3213
        _ => return None,
    })
}

/// Luma weights derived from colour primaries (H.273 equations for chromaticity-derived NCL).
fn weights_from_primaries(code: u16) -> Option<(f32, f32)> {
    let [(xr, yr), (xg, yg), (xb, yb), (xw, yw)] = primaries_xy(code)?;
    let (zr, zg, zb, zw) = (1.0 - xr - yr, 1.0 - xg - yg, 1.0 - xb - yb, 1.0 - xw - yw);
    let denom = yw * (xr * (yg * zb - yb * zg) + xg * (yb * zr - yr * zb) + xb * (yr * zg - yg * zr));
    let kr = yr * (xw * (yg * zb - yb * zg) + yw * (xb * zg - xg * zb) + zw * (xg * yb - xb * yg)) / denom;
    let kb = yb * (xw * (yr * zg - yg * zr) + yw * (xg * zr - xr * zg) + zw * (xr * yg - xg * yr)) / denom;
    Some((kr, kb))
}

/// The conversion for H.273 matrix coefficients `mc` (with colour primaries `primaries`, needed
/// only for MC 12). Unspecified (2) is taken as BT.601, as libavif does.
pub(crate) fn matrix(mc: u16, primaries: u16) -> Result<Matrix, AvifError> {
    let ycbcr = |kr, kb| Ok(Matrix::YCbCr { kr, kb });
    match mc {
        0 => Ok(Matrix::Identity),
        1 => ycbcr(0.2126, 0.0722),
        2 | 5 | 6 => ycbcr(0.299, 0.114),
        4 => ycbcr(0.30, 0.11),
        7 => ycbcr(0.212, 0.087),
        8 => Ok(Matrix::YCgCo),
        9 => ycbcr(0.2627, 0.0593),
        12 => match weights_from_primaries(primaries) {
            Some((kr, kb)) => ycbcr(kr, kb),
            None => Err(AvifError::Unsupported(format!("chromaticity-derived matrix with colour primaries {primaries}"))),
        },
        10 | 13 => Err(AvifError::Unsupported(format!("constant-luminance matrix coefficients ({mc})"))),
        11 => Err(AvifError::Unsupported("SMPTE ST 2085 (Y'D'zD'x) matrix coefficients".into())),
        14 => Err(AvifError::Unsupported("ICtCp matrix coefficients".into())),
        other => Err(AvifError::Unsupported(format!("matrix coefficients {other}"))),
    }
}

/// Sample value → normalised value, for every possible sample of a bit depth.
fn luma_table(bit_depth: u8, full_range: bool) -> Vec<f32> {
    let max = (1u32 << bit_depth) - 1;
    let scale = 1u32 << (bit_depth - 8);
    (0..=max).map(|v| if full_range { v as f32 / max as f32 } else { (v as f32 - (16 * scale) as f32) / (219 * scale) as f32 }).collect()
}

fn chroma_table(bit_depth: u8, full_range: bool) -> Vec<f32> {
    let max = (1u32 << bit_depth) - 1;
    let scale = 1u32 << (bit_depth - 8);
    let mid = (1u32 << (bit_depth - 1)) as f32;
    (0..=max).map(|v| if full_range { (v as f32 - mid) / max as f32 } else { (v as f32 - mid) / (224 * scale) as f32 }).collect()
}

#[inline]
fn lookup(table: &[f32], v: u16) -> f32 {
    table[usize::from(v).min(table.len() - 1)]
}

#[inline]
fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// For each output coordinate, the two chroma samples around it and the weight of the first:
/// chroma sited between luma samples ("centre" siting), interpolated bilinearly (3/4 and 1/4).
fn chroma_taps(len: usize, shift: u32, chroma_len: usize) -> Vec<(usize, usize, f32)> {
    (0..len)
        .map(|i| {
            if shift == 0 {
                return (i.min(chroma_len - 1), i.min(chroma_len - 1), 1.0);
            }
            let c = (i >> 1).min(chroma_len - 1);
            let other = if i & 1 == 0 { c.saturating_sub(1) } else { (c + 1).min(chroma_len - 1) };
            (c, other, 0.75)
        })
        .collect()
}

/// 8-bit straight alpha from the luma plane of the alpha image (its own range and depth).
pub(crate) fn alpha_plane(frame: &Frame) -> Result<Vec<u8>, AvifError> {
    let y = frame.plane(0).ok_or_else(|| AvifError::Corrupt("alpha image has no samples".into()))?;
    let table = luma_table(frame.bit_depth, frame.full_range);
    let mut out = vec![0u8; y.width * y.height];
    let mut row = vec![0f32; y.width];
    for (r, o) in out.chunks_exact_mut(y.width).enumerate() {
        y.map_row(r, &mut row, |v| lookup(&table, v));
        o.iter_mut().zip(&row).for_each(|(o, &v)| *o = to_u8(v));
    }
    Ok(out)
}

/// Fills `out` with chroma row values at full width: the rows `cy0` and `cy1` of `plane` (weights
/// `wy` and `1 - wy`), each interpolated horizontally by `taps`. `scratch` holds one chroma row.
fn upsample_row(
    plane: &Plane<'_>,
    table: &[f32],
    taps: &[(usize, usize, f32)],
    (cy0, cy1, wy): (usize, usize, f32),
    scratch: &mut [f32],
    below: &mut [f32],
    out: &mut [f32],
) {
    let horizontal = |row: usize, scratch: &mut [f32], out: &mut [f32]| {
        plane.map_row(row, scratch, |v| lookup(table, v));
        for (o, &(c0, c1, wx)) in out.iter_mut().zip(taps) {
            *o = wx * scratch[c0] + (1.0 - wx) * scratch[c1];
        }
    };
    horizontal(cy0, scratch, out);
    if wy < 1.0 {
        horizontal(cy1, scratch, below);
        for (o, &b) in out.iter_mut().zip(below.iter()) {
            *o = wy * *o + (1.0 - wy) * b;
        }
    }
}

/// Converts the colour frame (and optional 8-bit alpha of the same size) to RGBA.
pub(crate) fn to_rgba(frame: &Frame, matrix: Matrix, alpha: Option<&[u8]>, premultiplied: bool) -> Result<Vec<u8>, AvifError> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let len = w.checked_mul(h).and_then(|n| n.checked_mul(4)).ok_or(AvifError::TooLarge { width: frame.width, height: frame.height })?;
    if alpha.is_some_and(|a| a.len() != w * h) {
        return Err(AvifError::Corrupt("alpha plane size differs from the colour image".into()));
    }
    let y_plane = frame.plane(0).ok_or_else(|| AvifError::Corrupt("colour image has no samples".into()))?;
    let luma = luma_table(frame.bit_depth, frame.full_range);

    let chroma: Option<(Plane<'_>, Plane<'_>)> = match frame.layout {
        Layout::Monochrome => None,
        _ => Some((
            frame.plane(1).ok_or_else(|| AvifError::Corrupt("missing U plane".into()))?,
            frame.plane(2).ok_or_else(|| AvifError::Corrupt("missing V plane".into()))?,
        )),
    };
    let matrix = match (&chroma, matrix) {
        // Grey: zero chroma through any Y'CbCr matrix gives R = G = B = Y.
        (None, _) => Matrix::YCbCr { kr: 0.299, kb: 0.114 },
        (Some(_), Matrix::Identity) if frame.layout != Layout::I444 => {
            return Err(AvifError::Corrupt("identity (RGB) matrix with subsampled chroma".into()));
        }
        (Some(_), m) => m,
    };
    // Identity stores G, B, R in full-size planes, each with the luma range.
    let chroma_tab = if matrix == Matrix::Identity { luma.clone() } else { chroma_table(frame.bit_depth, frame.full_range) };
    let (sx, sy) = frame.layout.shifts();
    let (cw, ch) = chroma.as_ref().map_or((1, 1), |(u, _)| (u.width, u.height));
    let x_taps = chroma_taps(w, sx, cw);
    let y_taps = chroma_taps(h, sy, ch);

    let mut rgba = vec![0u8; len];
    let (mut y_row, mut u_row, mut v_row, mut below) = (vec![0f32; w], vec![0f32; w], vec![0f32; w], vec![0f32; w]);
    let mut scratch = vec![0f32; cw];
    for (y, (out, taps)) in rgba.chunks_exact_mut(w * 4).zip(&y_taps).enumerate() {
        y_plane.map_row(y, &mut y_row, |v| lookup(&luma, v));
        if let Some((u_plane, v_plane)) = &chroma {
            upsample_row(u_plane, &chroma_tab, &x_taps, *taps, &mut scratch, &mut below, &mut u_row);
            upsample_row(v_plane, &chroma_tab, &x_taps, *taps, &mut scratch, &mut below, &mut v_row);
        }
        let alpha_row = alpha.map(|a| &a[y * w..(y + 1) * w]);
        for (x, px) in out.chunks_exact_mut(4).enumerate() {
            let (yv, u, v) = (y_row[x], u_row[x], v_row[x]);
            let (mut r, mut g, mut b) = match matrix {
                Matrix::Identity => (v, yv, u),
                Matrix::YCgCo => {
                    let t = yv - u;
                    (t + v, yv + u, t - v)
                }
                Matrix::YCbCr { kr, kb } => {
                    let r = yv + 2.0 * (1.0 - kr) * v;
                    let b = yv + 2.0 * (1.0 - kb) * u;
                    (r, (yv - kr * r - kb * b) / (1.0 - kr - kb), b)
                }
            };
            let a = alpha_row.map_or(255, |row| row[x]);
            if premultiplied && a < 255 {
                // Un-premultiply; fully transparent pixels keep colour 0.
                let k = if a == 0 { 0.0 } else { 255.0 / f32::from(a) };
                (r, g, b) = (r * k, g * k, b * k);
            }
            px.copy_from_slice(&[to_u8(r), to_u8(g), to_u8(b), a]);
        }
    }
    Ok(rgba)
}

/// Applies the transformations in order; returns the new width and height.
pub(crate) fn transform(rgba: &mut Vec<u8>, mut w: usize, mut h: usize, transforms: &[Transform]) -> (usize, usize) {
    for t in transforms {
        match *t {
            Transform::Rotate(0) => {}
            Transform::Rotate(2) => {
                // Half a turn: reverse the pixel order.
                let n = w * h;
                for i in 0..n / 2 {
                    for c in 0..4 {
                        rgba.swap(i * 4 + c, (n - 1 - i) * 4 + c);
                    }
                }
            }
            Transform::Rotate(n) => {
                // A quarter turn anti-clockwise (n = 1) or clockwise (n = 3).
                let mut out = vec![0u8; rgba.len()];
                let (ow, oh) = (h, w);
                for yo in 0..oh {
                    for xo in 0..ow {
                        let (xi, yi) = if n == 1 { (w - 1 - yo, xo) } else { (yo, h - 1 - xo) };
                        out[(yo * ow + xo) * 4..][..4].copy_from_slice(&rgba[(yi * w + xi) * 4..][..4]);
                    }
                }
                *rgba = out;
                (w, h) = (ow, oh);
            }
            Transform::MirrorLeftRight => {
                for row in rgba.chunks_exact_mut(w * 4) {
                    for x in 0..w / 2 {
                        for c in 0..4 {
                            row.swap(x * 4 + c, (w - 1 - x) * 4 + c);
                        }
                    }
                }
            }
            Transform::MirrorTopBottom => {
                let stride = w * 4;
                for y in 0..h / 2 {
                    let (top, bottom) = rgba.split_at_mut((h - 1 - y) * stride);
                    top[y * stride..][..stride].swap_with_slice(&mut bottom[..stride]);
                }
            }
        }
    }
    (w, h)
}
