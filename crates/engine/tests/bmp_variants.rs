//! BMP layouts image-rs's decoder does not read, made byte by byte here from known pixels: OS/2
//! 2.x headers (64, 24 and 16 bytes), OS/2 RLE24, and JPEG/PNG streams inside a BMP (BI_JPEG,
//! BI_PNG). Each converts to a PNG holding exactly the pixels built (for BI_JPEG, those the engine
//! decodes the bare JPEG to); OS/2 Huffman 1D gives a typed error naming it; truncated and damaged
//! copies give a typed error or an image, never a panic.

mod common;

use common::{check_truncated_and_damaged, decoded, encode_png, lossless_png, synthetic_rgba, unsupported, widen};
use compressor_engine::{Error, Format, Options, OutputFormat, compress, estimate_peak_bytes, probe};

/// A BMP: the file header, `info` (an info header, its size field first), the palette and the
/// pixel data, which starts right after the palette.
fn bmp(info: &[u8], palette: &[u8], pixels: &[u8]) -> Vec<u8> {
    let offset = 14 + info.len() + palette.len();
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&((offset + pixels.len()) as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
    out.extend_from_slice(info);
    out.extend_from_slice(palette);
    out.extend_from_slice(pixels);
    out
}

/// An info header of `size` bytes: BITMAPINFOHEADER's fields, then zeros (for an OS/2 2.x
/// header of up to 64 bytes, the first `size` bytes of it).
fn info_header(size: usize, width: i32, height: i32, bits: u16, compression: u32, image_size: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&(size as u32).to_le_bytes());
    h.extend_from_slice(&width.to_le_bytes());
    h.extend_from_slice(&height.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&bits.to_le_bytes());
    h.extend_from_slice(&compression.to_le_bytes());
    h.extend_from_slice(&image_size.to_le_bytes());
    h.resize(64.max(size), 0);
    h.truncate(size);
    h
}

/// Palette entry `i` as RGB.
fn colour(i: usize) -> [u8; 3] {
    [i as u8, 255 - i as u8, (i * 3) as u8]
}

/// An 8-bit palette image under an OS/2 2.x header of `size` bytes (bottom-up rows padded to 4
/// bytes, 256 BGRx palette entries), and its RGBA.
fn os2v2_pal8(size: usize) -> (Vec<u8>, Vec<u16>) {
    let (w, h) = (5usize, 3usize);
    let index = |x: usize, y: usize| (x * 7 + y * 31) % 256;
    let palette: Vec<u8> = (0..256)
        .flat_map(|i| {
            let [r, g, b] = colour(i);
            [b, g, r, 0]
        })
        .collect();
    let rows: Vec<u8> = (0..h).rev().flat_map(|y| (0..8).map(move |x| if x < w { index(x, y) as u8 } else { 0 })).collect();
    let expected: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                let [r, g, b] = colour(index(x, y));
                [r, g, b, 255]
            })
        })
        .collect();
    (bmp(&info_header(size, w as i32, h as i32, 8, 0, 0), &palette, &rows), widen(&expected))
}

/// OS/2 2.x headers of 64 bytes (the full one), 16 (the shortest) and 24 give the pixels built,
/// for a palette image and, under the 64-byte header, a 24-bit one.
#[test]
fn os2_v2_bmp_gives_its_pixels() {
    for size in [64, 16, 24] {
        let (input, expected) = os2v2_pal8(size);
        assert_eq!(probe(&input).unwrap().format, Format::Bmp);
        assert_eq!(decoded(&input).2, expected, "{size}-byte header");
    }
    let (w, h) = (3usize, 2usize);
    let rgb = |x: usize, y: usize| [(x * 80) as u8, (y * 120) as u8, (x * 30 + y * 50) as u8];
    let rows: Vec<u8> = (0..h)
        .rev()
        .flat_map(|y| {
            let mut row: Vec<u8> = (0..w)
                .flat_map(|x| {
                    let [r, g, b] = rgb(x, y);
                    [b, g, r]
                })
                .collect();
            row.resize(12, 0);
            row
        })
        .collect();
    let input = bmp(&info_header(64, w as i32, h as i32, 24, 0, 0), &[], &rows);
    let expected: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                let [r, g, b] = rgb(x, y);
                [r, g, b, 255]
            })
        })
        .collect();
    assert_eq!(decoded(&input).2, widen(&expected));
}

/// A 4x3 OS/2 RLE24 image using every code, and its RGBA (pixels the codes skip are transparent).
fn rle24() -> (Vec<u8>, Vec<u16>) {
    const A: [u8; 3] = [10, 20, 30];
    const B: [u8; 3] = [40, 50, 60];
    const C: [u8; 3] = [70, 80, 90];
    const D: [u8; 3] = [100, 110, 120];
    const E: [u8; 3] = [130, 140, 150];
    const F: [u8; 3] = [160, 170, 180];
    let bgr = |p: [u8; 3]| [p[2], p[1], p[0]];
    let mut codes = Vec::new();
    // Bottom row: a run of 2 A, an absolute run B C D (D falls past the row's end), end of line.
    codes.extend([2].iter().chain(&bgr(A)));
    codes.extend([0, 3].iter().chain(&bgr(B)).chain(&bgr(C)).chain(&bgr(D)).chain(&[0]));
    codes.extend([0, 0]);
    // Middle row: a delta one pixel right, one E, end of line.
    codes.extend([0, 2, 1, 0]);
    codes.extend([1].iter().chain(&bgr(E)));
    codes.extend([0, 0]);
    // Top row: a run of 4 F, end of bitmap.
    codes.extend([4].iter().chain(&bgr(F)));
    codes.extend([0, 1]);
    let px = |p: [u8; 3]| [p[0], p[1], p[2], 255];
    let none = [0; 4];
    let rows = [[px(F), px(F), px(F), px(F)], [none, px(E), none, none], [px(A), px(A), px(B), px(C)]];
    let expected: Vec<u8> = rows.iter().flatten().flatten().copied().collect();
    (bmp(&info_header(64, 4, 3, 24, 4, codes.len() as u32), &[], &codes), widen(&expected))
}

#[test]
fn os2_rle24_bmp_gives_its_pixels() {
    let (input, expected) = rle24();
    assert_eq!(decoded(&input).2, expected);
}

/// OS/2 Huffman 1D (compression 3 under an OS/2 2.x header) is refused by name, from the header.
#[test]
fn os2_huffman_bmp_is_refused_by_name() {
    let input = bmp(&info_header(64, 8, 2, 1, 3, 4), &[0, 0, 0, 0, 255, 255, 255, 0], &[0; 4]);
    assert!(matches!(probe(&input), Err(Error::UnsupportedFormat { .. })));
    let detail = unsupported(&input);
    assert!(detail.contains("Huffman 1D"), "{detail}");
}

/// A BI_PNG BMP (a PNG stream as its pixel data) and its RGBA.
fn bmp_png() -> (Vec<u8>, Vec<u16>) {
    let (w, h) = (13, 7);
    let rgba = synthetic_rgba(w, h, true);
    let png = encode_png(w, h, &rgba, &[]);
    (bmp(&info_header(40, w as i32, h as i32, 0, 5, png.len() as u32), &[], &png), widen(&rgba))
}

/// A BI_JPEG BMP, and the RGBA the engine decodes its JPEG stream to on its own.
fn bmp_jpeg() -> (Vec<u8>, Vec<u16>) {
    let (w, h) = (16, 9);
    let png = encode_png(w, h, &synthetic_rgba(w, h, false), &[]);
    let jpeg = compress(&png, &Options { format: OutputFormat::To(Format::Jpeg), ..Options::default() }).unwrap().data;
    let expected = decoded(&jpeg).2;
    (bmp(&info_header(40, w as i32, h as i32, 0, 4, jpeg.len() as u32), &[], &jpeg), expected)
}

/// The stream inside a BI_PNG or BI_JPEG BMP decodes to its own pixels; a stream whose size is not
/// the BMP's, or that is not the format the header names, is refused as corrupt.
#[test]
fn png_and_jpeg_inside_bmp_give_their_pixels() {
    for (name, (input, expected)) in [("BI_PNG", bmp_png()), ("BI_JPEG", bmp_jpeg())] {
        assert_eq!(probe(&input).unwrap().format, Format::Bmp, "{name}");
        assert_eq!(decoded(&input).2, expected, "{name}");
        assert!(estimate_peak_bytes(&input, &lossless_png()).is_ok(), "{name}");
        let mut wider = input.clone();
        wider[18] += 1;
        match compress(&wider, &lossless_png()) {
            Err(Error::Corrupt { detail }) => assert!(detail.contains("the BMP header says"), "{name}: {detail}"),
            other => panic!("{name}: expected a size mismatch, got {:?}", other.map(|o| o.format)),
        }
        let mut other_format = input.clone();
        other_format[30] = if name == "BI_PNG" { 4 } else { 5 };
        assert!(matches!(compress(&other_format, &lossless_png()), Err(Error::Corrupt { .. })), "{name}");
    }
}

#[test]
fn truncated_and_damaged_bmps_give_typed_errors() {
    check_truncated_and_damaged("OS/2 2.x BMP", &os2v2_pal8(64).0, None);
    check_truncated_and_damaged("short OS/2 2.x BMP", &os2v2_pal8(16).0, None);
    check_truncated_and_damaged("RLE24 BMP", &rle24().0, None);
    // The JPEG and PNG streams start after the 54 bytes of the file and info headers.
    check_truncated_and_damaged("BI_PNG BMP", &bmp_png().0, Some(54));
    check_truncated_and_damaged("BI_JPEG BMP", &bmp_jpeg().0, Some(54));
}
