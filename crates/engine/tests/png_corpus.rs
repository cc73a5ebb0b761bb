//! PNG behaviour on the real corpus: PngSuite conformance and lossy quality on real images.

mod common;

use std::path::Path;

use common::{corpus, files, png_rgba16};
use compressor_engine::{Error, Format, Mode, Options, compress};

fn lossless() -> Options {
    Options { mode: Mode::Lossless, ..Options::default() }
}

/// Compresses losslessly and checks, with an independent decoder, that the pixels are unchanged.
fn assert_lossless_round_trip(path: &Path) {
    let input = std::fs::read(path).unwrap();
    let result = compress(&input, &lossless()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(result.format, Format::Png, "{}", path.display());
    assert!(result.output_size <= result.input_size, "{}: grew from {} to {}", path.display(), result.input_size, result.output_size);
    assert_eq!(png_rgba16(&result.data), png_rgba16(&input), "{}: pixels changed", path.display());
}

#[test]
fn every_valid_pngsuite_file_round_trips_pixel_identically() {
    let Some(corpus) = corpus() else { return };
    let valid: Vec<_> = files(&corpus.join("pngsuite"), &["png"])
        .into_iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('x'))
        .collect();
    assert!(valid.len() > 150, "expected the PngSuite, found {} files", valid.len());
    for path in &valid {
        assert_lossless_round_trip(path);
    }
}

#[test]
fn every_corrupt_pngsuite_file_is_refused_with_a_typed_error() {
    let Some(corpus) = corpus() else { return };
    let corrupt: Vec<_> = files(&corpus.join("pngsuite"), &["png"])
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('x'))
        .collect();
    assert!(corrupt.len() >= 10, "expected PngSuite's x* files, found {}", corrupt.len());
    for path in &corrupt {
        let input = std::fs::read(path).unwrap();
        for mode in [Mode::Lossless, Mode::Lossy] {
            match compress(&input, &Options { mode, ..Options::default() }) {
                Err(Error::Corrupt { .. } | Error::UnsupportedFormat { .. }) => {}
                other => panic!("{} ({mode:?}): expected Corrupt or UnsupportedFormat, got {other:?}", path.display()),
            }
        }
    }
}

/// libpng's and oxipng's extra test files: valid ones round-trip exactly, invalid ones give a
/// typed error (never an internal one).
#[test]
fn extra_png_test_files_round_trip_or_fail_cleanly() {
    let Some(corpus) = corpus() else { return };
    let mut ok = 0;
    for dir in ["extra/libpng-testpngs", "extra/oxipng", "extra/image-png"] {
        for path in files(&corpus.join("pngsuite").join(dir), &["png"]) {
            let input = std::fs::read(&path).unwrap();
            match compress(&input, &lossless()) {
                Ok(result) => {
                    assert_eq!(png_rgba16(&result.data), png_rgba16(&input), "{}: pixels changed", path.display());
                    ok += 1;
                }
                Err(Error::Internal { detail }) => panic!("{}: internal error {detail}", path.display()),
                Err(_) => {}
            }
        }
    }
    assert!(ok > 300, "only {ok} extra files compressed");
}

/// The floor for lossy results at the default quality 65-80. libimagequant's quality 65 is
/// roughly where banding becomes visible; on this corpus that lands at SSIMULACRA2 ~45 and
/// above for photos (dithering costs SSIMULACRA2 points that the eye does not see), so 30 catches a
/// broken quantizer or remap (those score below 10) without flagging honest palette artefacts.
const LOSSY_SCORE_FLOOR: f64 = 30.0;

fn lossy_real_pngs(folder: &str) {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("png_real").join(folder);
    let mut paths = files(&dir, &["png"]);
    for sub in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        paths.extend(files(&sub, &["png"]));
    }
    assert!(!paths.is_empty(), "no PNGs in {}", dir.display());
    let mut shrunk = 0;
    for path in &paths {
        let input = std::fs::read(path).unwrap();
        let result = compress(&input, &Options { score: true, ..Options::default() }).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (w, h, _) = png_rgba16(&result.data); // decodes
        assert_eq!((w, h), (result.width, result.height), "{}", path.display());
        assert!(result.output_size <= input.len(), "{}: output larger than input", path.display());
        if result.method == "png-quantized" {
            shrunk += 1;
            assert!(result.output_size < input.len());
            if w >= 8 && h >= 8 {
                let score = result.quality_score.unwrap_or_else(|| panic!("{}: lossy result without a score", path.display()));
                assert!(score >= LOSSY_SCORE_FLOOR, "{}: SSIMULACRA2 {score:.1} below {LOSSY_SCORE_FLOOR}", path.display());
            }
        }
    }
    assert!(shrunk * 2 >= paths.len(), "{folder}: only {shrunk} of {} files were quantized", paths.len());
}

#[test]
fn lossy_png_photos_are_smaller_and_scored() {
    lossy_real_pngs("photo");
}

#[test]
fn lossy_png_screenshots_are_smaller_and_scored() {
    lossy_real_pngs("screenshot");
}

#[test]
fn lossy_png_icons_with_alpha_are_smaller_and_scored() {
    lossy_real_pngs("icon_alpha");
}

#[test]
fn lossy_png_graphics_are_smaller_and_scored() {
    lossy_real_pngs("graphic");
}

#[test]
fn deep_colour_pngs_round_trip_losslessly_keeping_16_bits() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("png_real/deep_color");
    let mut paths = files(&dir, &["png"]);
    for sub in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        paths.extend(files(&sub, &["png"]));
    }
    for path in &paths {
        assert_lossless_round_trip(path);
    }
}
