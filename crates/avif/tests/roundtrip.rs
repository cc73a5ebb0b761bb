//! Encode generated images with ravif, decode them with this crate, compare with the source.
//! A wrong matrix, range or bit-depth scaling shows up as a large error.

mod common;

use common::{assert_close, opaque_pattern, pattern};
use ravif::{AlphaColorMode, BitDepth, ColorModel, Encoder, Img, RGBA8};

fn encode(rgba: &[u8], w: u32, h: u32, depth: BitDepth, model: ColorModel) -> Vec<u8> {
    let px: Vec<RGBA8> = rgba.chunks_exact(4).map(|p| RGBA8::new(p[0], p[1], p[2], p[3])).collect();
    Encoder::new()
        .with_quality(95.0)
        .with_alpha_quality(95.0)
        .with_speed(8)
        .with_num_threads(Some(1))
        .with_bit_depth(depth)
        .with_internal_color_model(model)
        // Keep the colour of translucent pixels as given, so it can be compared.
        .with_alpha_color_mode(AlphaColorMode::UnassociatedDirty)
        .encode_rgba(Img::new(&px[..], w as usize, h as usize))
        .expect("ravif encodes")
        .avif_file
}

fn round_trip(what: &str, rgba: &[u8], w: u32, h: u32, depth: BitDepth, model: ColorModel, want_depth: u8) {
    let avif = encode(rgba, w, h, depth, model);
    assert_eq!(compressor_avif::dimensions(&avif), Ok((w, h)), "{what}: dimensions()");
    let d = compressor_avif::decode(&avif, u64::from(w * h)).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!((d.width, d.height), (w, h), "{what}: size");
    assert_eq!(d.rgba.len(), (w * h * 4) as usize, "{what}: buffer length");
    assert_eq!(d.bit_depth, want_depth, "{what}: bit depth");
    assert_eq!(d.icc, None, "{what}: no ICC profile was written");
    assert_close(what, &d.rgba, rgba, 3.0);
}

#[test]
fn gradient_with_alpha_8_bit() {
    round_trip("64x48 alpha 8-bit", &pattern(64, 48), 64, 48, BitDepth::Eight, ColorModel::YCbCr, 8);
}

#[test]
fn gradient_with_alpha_10_bit() {
    round_trip("64x48 alpha 10-bit", &pattern(64, 48), 64, 48, BitDepth::Ten, ColorModel::YCbCr, 10);
}

#[test]
fn opaque_odd_size_8_bit() {
    let img = opaque_pattern(37, 23);
    round_trip("37x23 opaque 8-bit", &img, 37, 23, BitDepth::Eight, ColorModel::YCbCr, 8);
}

#[test]
fn opaque_odd_size_10_bit() {
    let img = opaque_pattern(37, 23);
    round_trip("37x23 opaque 10-bit", &img, 37, 23, BitDepth::Ten, ColorModel::YCbCr, 10);
}

#[test]
fn rgb_colour_model_is_identity_matrix() {
    round_trip("33x17 alpha RGB (identity) 8-bit", &pattern(33, 17), 33, 17, BitDepth::Eight, ColorModel::RGB, 8);
    round_trip("33x17 alpha RGB (identity) 10-bit", &pattern(33, 17), 33, 17, BitDepth::Ten, ColorModel::RGB, 10);
}

#[test]
fn single_pixel_and_single_row() {
    let px = [200u8, 30, 90, 255];
    let avif = encode(&px, 1, 1, BitDepth::Eight, ColorModel::YCbCr);
    let d = compressor_avif::decode(&avif, 1).expect("1x1 decodes");
    assert_eq!((d.width, d.height), (1, 1));
    assert_close("1x1", &d.rgba, &px, 3.0);
    round_trip("97x1 opaque", &opaque_pattern(97, 2)[..97 * 4], 97, 1, BitDepth::Eight, ColorModel::YCbCr, 8);
}
