//! TIFF layouts the `tiff` crate does not read as they are, made byte by byte here from known
//! pixels: separate colour planes (PlanarConfiguration 2) in strips and in tiles that overhang the
//! image. Each converts to a PNG holding exactly the pixels built; 12-bit samples give a typed
//! error naming them; truncated and damaged copies give a typed error or an image, never a panic.

mod common;

use common::{check_truncated_and_damaged, decoded, unsupported, widen};
use compressor_engine::{Format, probe};

const SHORT: u16 = 3;
const LONG: u16 = 4;

/// A little-endian classic TIFF of one IFD: the strips, then the IFD of `tags` (with the strip
/// offsets and byte counts added), then the values that do not fit in their entries.
fn tiff(tags: &[(u16, u16, Vec<u32>)], strips: &[Vec<u8>]) -> Vec<u8> {
    tiff_of_chunks(tags, strips, (273, 279))
}

/// [`tiff`] of tiles (TileOffsets and TileByteCounts added).
fn tiled_tiff(tags: &[(u16, u16, Vec<u32>)], tiles: &[Vec<u8>]) -> Vec<u8> {
    tiff_of_chunks(tags, tiles, (324, 325))
}

fn tiff_of_chunks(tags: &[(u16, u16, Vec<u32>)], strips: &[Vec<u8>], (offsets_tag, counts_tag): (u16, u16)) -> Vec<u8> {
    let mut out = b"II*\0\0\0\0\0".to_vec();
    let mut offsets = Vec::new();
    for strip in strips {
        offsets.push(out.len() as u32);
        out.extend_from_slice(strip);
        if out.len() % 2 == 1 {
            out.push(0);
        }
    }
    let mut tags = tags.to_vec();
    tags.push((offsets_tag, LONG, offsets));
    tags.push((counts_tag, LONG, strips.iter().map(|s| s.len() as u32).collect()));
    tags.sort_by_key(|t| t.0);
    let ifd = out.len();
    out[4..8].copy_from_slice(&(ifd as u32).to_le_bytes());
    let values_at = ifd + 2 + 12 * tags.len() + 4;
    let mut values = Vec::new();
    out.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for (tag, kind, list) in &tags {
        let bytes: Vec<u8> =
            list.iter().flat_map(|&v| if *kind == SHORT { (v as u16).to_le_bytes().to_vec() } else { v.to_le_bytes().to_vec() }).collect();
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(list.len() as u32).to_le_bytes());
        if bytes.len() <= 4 {
            out.extend(bytes.iter().copied().chain(std::iter::repeat(0)).take(4));
        } else {
            out.extend_from_slice(&((values_at + values.len()) as u32).to_le_bytes());
            values.extend(bytes);
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend(values);
    out
}

/// The tags of an uncompressed image of `samples` samples of `bits` (RGB for 3 and 4, with
/// unassociated alpha for 4; grey for 1).
fn tiff_tags(width: u32, height: u32, bits: u32, samples: u32, rows_per_strip: u32, planar: bool) -> Vec<(u16, u16, Vec<u32>)> {
    let mut tags = vec![
        (256, LONG, vec![width]),
        (257, LONG, vec![height]),
        (258, SHORT, vec![bits; samples as usize]),
        (259, SHORT, vec![1]),
        (262, SHORT, vec![if samples >= 3 { 2 } else { 1 }]),
        (277, SHORT, vec![samples]),
        (278, LONG, vec![rows_per_strip]),
        (284, SHORT, vec![if planar { 2 } else { 1 }]),
    ];
    if samples == 4 {
        tags.push((338, SHORT, vec![2]));
    }
    tags
}

/// Sample `c` of pixel (x, y), 16 bits, not a multiple of 257 (so a PNG cannot store it in 8).
fn sample16(x: u32, y: u32, c: u32) -> u16 {
    ((x * 7919 + y * 104_729 + c * 15_485_863) % 65_521) as u16 | 1
}

/// Planes split into strips of `rows_per_strip` rows: every plane's strips, plane after plane.
fn planar_strips(width: u32, height: u32, samples: u32, rows_per_strip: u32, bytes: impl Fn(u32, u32, u32) -> Vec<u8>) -> Vec<Vec<u8>> {
    let mut strips = Vec::new();
    for c in 0..samples {
        for first in (0..height).step_by(rows_per_strip as usize) {
            let rows = first..(first + rows_per_strip).min(height);
            strips.push(rows.flat_map(|y| (0..width).flat_map(|x| bytes(x, y, c)).collect::<Vec<_>>()).collect());
        }
    }
    strips
}

fn planar_rgb8() -> (Vec<u8>, Vec<u16>) {
    let (w, h) = (5, 4);
    let sample = |x: u32, y: u32, c: u32| ((x * 40 + y * 13 + c * 70) % 256) as u8;
    let strips = planar_strips(w, h, 3, 3, |x, y, c| vec![sample(x, y, c)]);
    let expected =
        (0..h).flat_map(|y| (0..w).flat_map(move |x| [sample(x, y, 0), sample(x, y, 1), sample(x, y, 2), 255])).collect::<Vec<_>>();
    (tiff(&tiff_tags(w, h, 8, 3, 3, true), &strips), widen(&expected))
}

fn planar_rgba16() -> (Vec<u8>, Vec<u16>) {
    let (w, h) = (3, 5);
    let strips = planar_strips(w, h, 4, 2, |x, y, c| sample16(x, y, c).to_le_bytes().to_vec());
    let expected = (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..4).map(move |c| sample16(x, y, c)))).collect();
    (tiff(&tiff_tags(w, h, 16, 4, 2, true), &strips), expected)
}

/// Separate planes (8-bit RGB in strips of 3 rows, 16-bit RGBA with alpha in strips of 2) give
/// the pixels they were made from, as the same image interleaved does.
#[test]
fn planar_tiff_gives_its_pixels() {
    for (name, (input, expected)) in [("8-bit RGB", planar_rgb8()), ("16-bit RGBA", planar_rgba16())] {
        assert_eq!(probe(&input).unwrap().format, Format::Tiff, "{name}");
        let (_, _, pixels) = decoded(&input);
        assert_eq!(pixels, expected, "{name}");
    }
    let (w, h) = (5, 4);
    let sample = |x: u32, y: u32, c: u32| ((x * 40 + y * 13 + c * 70) % 256) as u8;
    let chunky: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| (0..3).map(move |c| sample(x, y, c)))).collect();
    let interleaved = tiff(&tiff_tags(w, h, 8, 3, h, false), &[chunky]);
    assert_eq!(decoded(&interleaved).2, planar_rgb8().1);
}

/// 20x20 16-bit RGB in separate planes of 16x16 tiles (whose right and bottom ones overhang the
/// image: tiff 0.11.3 overran its buffer on those), and its RGBA.
fn tiled_planar_rgb16() -> (Vec<u8>, Vec<u16>) {
    let (w, h, tile) = (20u32, 20u32, 16u32);
    let mut tiles = Vec::new();
    for c in 0..3 {
        for (tx, ty) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let (x0, y0) = (tx * tile, ty * tile);
            // Samples past the image's edges hold a value the image has nowhere.
            let at = |x: u32, y: u32| if x < w && y < h { sample16(x, y, c) } else { 0xabcd };
            tiles.push((0..tile).flat_map(|y| (0..tile).flat_map(move |x| at(x0 + x, y0 + y).to_le_bytes())).collect());
        }
    }
    let mut tags = tiff_tags(w, h, 16, 3, 0, true);
    tags.retain(|t| t.0 != 278);
    tags.extend([(322, LONG, vec![tile]), (323, LONG, vec![tile])]);
    let expected =
        (0..h).flat_map(|y| (0..w).flat_map(move |x| [sample16(x, y, 0), sample16(x, y, 1), sample16(x, y, 2), u16::MAX])).collect();
    (tiled_tiff(&tags, &tiles), expected)
}

#[test]
fn tiled_planar_tiff_gives_its_pixels() {
    let (input, expected) = tiled_planar_rgb16();
    let (w, h, pixels) = decoded(&input);
    assert_eq!((w, h), (20, 20));
    assert_eq!(pixels, expected);
}

/// 12-bit samples (grey, and RGB in planes) are refused by name, from the header.
#[test]
fn twelve_bit_tiff_is_refused_by_name() {
    let grey = tiff(&tiff_tags(4, 2, 12, 1, 2, false), &[vec![0x5a; 12]]);
    let rgb = tiff(&tiff_tags(2, 2, 12, 3, 2, true), &[vec![0xa5; 6], vec![0xa5; 6], vec![0xa5; 6]]);
    for input in [grey, rgb] {
        let detail = unsupported(&input);
        assert!(detail.contains("12-bit samples are not supported"), "{detail}");
    }
}

#[test]
fn truncated_and_damaged_planar_tiffs_give_typed_errors() {
    check_truncated_and_damaged("planar RGB8 TIFF", &planar_rgb8().0, None);
    check_truncated_and_damaged("planar RGBA16 TIFF", &planar_rgba16().0, None);
    check_truncated_and_damaged("tiled planar RGB16 TIFF", &tiled_planar_rgb16().0, None);
}

/// Features the crate has no decoder for are refused by name from the header (its own errors
/// spoke of a size mismatch or a short read): old-style JPEG, LZMA, bit-reversed bytes, signed
/// samples.
#[test]
fn unread_tiff_features_are_refused_by_name() {
    let grey = || tiff_tags(4, 2, 8, 1, 2, false);
    let with = |tag: u16, value: u32| {
        let mut tags: Vec<_> = grey().into_iter().filter(|t| t.0 != tag).collect();
        tags.push((tag, SHORT, vec![value]));
        tiff(&tags, &[vec![7; 8]])
    };
    for (input, named) in [
        (with(259, 6), "old-style JPEG compression (6)"),
        (with(259, 34925), "LZMA compression"),
        (with(266, 2), "FillOrder 2"),
        (with(339, 2), "signed integer samples"),
    ] {
        let detail = unsupported(&input);
        assert!(detail.contains(named), "{detail}");
    }
    // FillOrder 1 and unsigned samples, said explicitly, read as usual.
    assert_eq!(decoded(&with(266, 1)).2, widen(&[7, 7, 7, 255].repeat(8)));
    assert_eq!(decoded(&with(339, 1)).2, widen(&[7, 7, 7, 255].repeat(8)));
}
