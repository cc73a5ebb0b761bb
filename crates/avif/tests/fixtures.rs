//! Small AVIFs made with libavif's avifenc from the test pattern (see data/make-fixtures.sh): they
//! cover what ravif cannot write (4:2:0, 4:2:2, 12-bit, monochrome, limited range, BT.709 and
//! BT.2020 matrices, YCgCo, premultiplied alpha, irot/imir, grids).

mod common;

use common::{assert_close, fixture, flip_left_right, flip_top_bottom, grey_601, opaque_pattern, pattern, rotate_ccw};
use compressor_avif::{AvifError, decode, dimensions};

const W: u32 = 45;
const H: u32 = 27;

fn decode_fixture(name: &str, want_depth: u8) -> compressor_avif::Decoded {
    let data = fixture(name);
    let d = decode(&data, 1 << 20).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(dimensions(&data), Ok((d.width, d.height)), "{name}: dimensions() agrees with decode()");
    assert_eq!(d.bit_depth, want_depth, "{name}: bit depth");
    assert_eq!(d.rgba.len(), (d.width * d.height * 4) as usize);
    d
}

#[test]
fn yuv420_8_bit_bt709_limited_range_with_alpha() {
    let d = decode_fixture("yuv420_8bit_bt709_limited_alpha.avif", 8);
    assert_close("4:2:0 BT.709 limited + alpha", &d.rgba, &pattern(W, H), 3.0);
}

#[test]
fn yuv422_10_bit_bt2020_full_range() {
    let d = decode_fixture("yuv422_10bit_bt2020_full.avif", 10);
    assert_close("4:2:2 10-bit BT.2020", &d.rgba, &opaque_pattern(W, H), 3.0);
}

#[test]
fn yuv444_12_bit_bt601_limited_range_with_alpha() {
    let d = decode_fixture("yuv444_12bit_bt601_limited_alpha.avif", 12);
    assert_close("4:4:4 12-bit BT.601 limited + alpha", &d.rgba, &pattern(W, H), 3.0);
}

#[test]
fn monochrome_8_bit_full_and_10_bit_limited() {
    let want = grey_601(&pattern(W, H));
    let d = decode_fixture("yuv400_8bit_full.avif", 8);
    assert!(d.rgba.chunks_exact(4).all(|p| p[0] == p[1] && p[1] == p[2]), "monochrome decodes to grey");
    assert_close("4:0:0 8-bit full", &d.rgba, &want, 3.0);
    let d = decode_fixture("yuv400_10bit_limited.avif", 10);
    assert_close("4:0:0 10-bit limited", &d.rgba, &want, 3.0);
}

#[test]
fn ycgco_and_identity_matrices() {
    let d = decode_fixture("ycgco_444.avif", 8);
    assert_close("YCgCo", &d.rgba, &opaque_pattern(W, H), 3.0);
    let d = decode_fixture("identity_444.avif", 8);
    assert_close("identity", &d.rgba, &opaque_pattern(W, H), 3.0);
}

#[test]
fn premultiplied_alpha_is_returned_straight() {
    let d = decode_fixture("premultiplied_alpha.avif", 8);
    // Alpha is at least 64 here, so un-premultiplying amplifies coding error at most fourfold.
    assert_close("premultiplied", &d.rgba, &pattern(W, H), 4.0);
}

#[test]
fn rotation_and_mirroring_are_applied() {
    let src = opaque_pattern(W, H);

    let d = decode_fixture("irot1_imir0.avif", 8);
    let (rot, rw, rh) = rotate_ccw(&src, W, H);
    assert_eq!((d.width, d.height), (rw, rh), "a quarter turn swaps width and height");
    assert_close("irot 1 then imir 0", &d.rgba, &flip_top_bottom(&rot, rw, rh), 3.0);

    let d = decode_fixture("irot3.avif", 8);
    let (r1, w1, h1) = rotate_ccw(&src, W, H);
    let (r2, w2, h2) = rotate_ccw(&r1, w1, h1);
    let (r3, w3, h3) = rotate_ccw(&r2, w2, h2);
    assert_eq!((d.width, d.height), (w3, h3));
    assert_close("irot 3", &d.rgba, &r3, 3.0);

    let d = decode_fixture("imir1.avif", 8);
    assert_eq!((d.width, d.height), (W, H));
    assert_close("imir 1", &d.rgba, &flip_left_right(&src, W), 3.0);
}

/// A 2x2 grid of 64x64 tiles (avifenc -g 2x2, quality 20-40) is assembled into the 128x128 source.
#[test]
fn grid_images_are_assembled() {
    let data = fixture("grid_2x2.avif");
    assert_eq!(dimensions(&data), Ok((128, 128)));
    let d = decode_fixture("grid_2x2.avif", 8);
    assert_close("2x2 grid", &d.rgba, &opaque_pattern(128, 128), 6.0);
}

/// The pixel limit holds the grid's output size, before any tile is decoded.
#[test]
fn grid_output_size_is_held_to_the_pixel_limit() {
    let data = fixture("grid_2x2.avif");
    assert_eq!(decode(&data, 128 * 128 - 1), Err(AvifError::TooLarge { width: 128, height: 128 }));
}
