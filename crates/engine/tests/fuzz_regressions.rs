//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found, each kept with the promise it
//! broke. The files in `tests/data/fuzz/` were made by the fuzzers or their seed generator.

use compressor_engine::{Error, Format, Limits, Mode, Options, OutputFormat, compress, decode_rgba16};

fn fuzz_input(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz").join(name)).unwrap()
}

fn lossless_to(format: Format) -> Options {
    Options { mode: Mode::Lossless, format: OutputFormat::To(format), ..Options::default() }
}

/// GIF pixels are 8-bit and either opaque or transparent. A palette PNG whose tRNS makes an entry
/// half transparent, asked for as lossless GIF, was an internal error ("lossless gif output did
/// not decode to the same pixels"): it is the format's limit, said as such.
#[test]
fn lossless_gif_of_partly_transparent_pixels_is_unsupported_not_internal() {
    let result = compress(&fuzz_input("indexed-partly-transparent.png"), &lossless_to(Format::Gif));
    assert!(matches!(result, Err(Error::UnsupportedFormat { .. })), "{result:?}");
}

#[test]
fn lossless_gif_of_sixteen_bit_samples_is_unsupported_not_internal() {
    let result = compress(&fuzz_input("rgba16.png"), &lossless_to(Format::Gif));
    assert!(matches!(result, Err(Error::UnsupportedFormat { .. })), "{result:?}");
}

/// 16-bit samples that 8 bits cannot hold, asked for as lossless WebP (or AVIF): the encoder took
/// them rounded to 8 bits and the check after it answered "internal error" (found by compress_png
/// in CI). Only PNG holds 16 bits; the others say so, and PNG still keeps every bit.
#[test]
fn lossless_webp_and_avif_of_sixteen_bit_samples_are_unsupported_not_internal() {
    let input = fuzz_input("rgba16.png");
    for format in [Format::WebP, Format::Avif] {
        match compress(&input, &lossless_to(format)) {
            Err(Error::UnsupportedFormat { detail }) => assert!(detail.contains("16-bit") && detail.contains("PNG"), "{detail}"),
            other => panic!("{format}: {other:?}"),
        }
    }
    let png = compress(&input, &lossless_to(Format::Png)).unwrap();
    assert_eq!(decode_rgba16(&png.data, &Limits::default()).unwrap(), decode_rgba16(&input, &Limits::default()).unwrap());
}

/// The same images still become lossless WebP with their very pixels, and lossy GIF.
#[test]
fn those_images_still_convert_where_the_format_can_hold_them() {
    let input = fuzz_input("indexed-partly-transparent.png");
    assert_eq!(compress(&input, &lossless_to(Format::WebP)).unwrap().format, Format::WebP);
    let gif = compress(&input, &Options { format: OutputFormat::To(Format::Gif), ..Options::default() }).unwrap();
    assert_eq!(gif.format, Format::Gif);
}

/// A PNG whose eXIf says "turn 90°" becoming a PNG again through `auto` (or a size search): the
/// candidate was encoded from the stored pixels and PNG's encoders write no orientation, so the
/// result showed the image turned; a lossless one did not look like its input. (Found by compress_png;
/// the input is its seed of the same shape.)
#[test]
fn a_png_candidate_of_an_oriented_png_is_turned_upright() {
    let input = fuzz_input("png-orientation-6.png");
    let limits = Limits::default();
    let upright = decode_rgba16(&input, &limits).unwrap();
    assert_eq!((upright[0].0, upright[0].1), (4, 10), "the input is 10x4 shown turned");

    let auto =
        Options { mode: Mode::Lossless, format: OutputFormat::Auto, auto_formats: vec![Format::Png], effort: 1, ..Options::default() };
    let result = compress(&input, &auto).unwrap();
    assert_eq!(result.format, Format::Png);
    assert_eq!(decode_rgba16(&result.data, &limits).unwrap(), upright);

    let search = Options { max_bytes: Some(input.len() as u64), effort: 1, ..Options::default() };
    if let Ok(result) = compress(&input, &search) {
        let shown = decode_rgba16(&result.data, &limits).unwrap();
        assert_eq!((shown[0].0, shown[0].1), (4, 10), "{}", result.method);
    }
}
