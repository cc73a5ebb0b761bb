//! Inputs the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) found, each kept with the promise it
//! broke. The files in `tests/data/fuzz/` were made by the fuzzers or their seed generator.

use compressor_engine::{Error, Format, Mode, Options, OutputFormat, compress};

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

/// The same images still become lossless WebP with their very pixels, and lossy GIF.
#[test]
fn those_images_still_convert_where_the_format_can_hold_them() {
    let input = fuzz_input("indexed-partly-transparent.png");
    assert_eq!(compress(&input, &lossless_to(Format::WebP)).unwrap().format, Format::WebP);
    let gif = compress(&input, &Options { format: OutputFormat::To(Format::Gif), ..Options::default() }).unwrap();
    assert_eq!(gif.format, Format::Gif);
}
