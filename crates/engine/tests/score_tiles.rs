//! The engine scores in tiles (to bound its memory), and its score is the `ssimulacra2` crate's
//! whole-image `compute_frame_ssimulacra2`: checked on corpus photos, screenshots, graphics and
//! icons (some with transparency) against their own lossy encodings, and on crops of a 12 MP
//! photo at sizes that cut tiles anywhere: tiny, one row of tiles, not multiples of anything.

mod common;

use common::corpus;
use compressor_engine::{Format, Limits, Options, OutputFormat, Quality, compress, decode_displayed, ssimulacra2_rgba8};
use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};

/// Largest difference allowed from the whole-image score, in points (of 0 to 100). What remains
/// is float rounding: the crate's blur is a recursive filter whose rounding is carried along each
/// whole row and column, and a tile's starts afresh at its edge; in flat regions σ² is tiny beside
/// SSIM's constant, so the two roundings move a screenshot's score by a few hundredths. Measured
/// here: at most 0.073 with the tiles' 8-pixel margin; without a margin, up to 0.27.
const TOLERANCE: f64 = 0.1;

/// A displayed image: width, height, RGBA8.
type Shown = (u32, u32, Vec<u8>);

fn shown(data: &[u8]) -> Shown {
    decode_displayed(data, &Limits::default()).unwrap()
}

/// `input` and its encoding as `format` at `quality` (the input's own format when `None`), as displayed.
fn encoded_pair(input: &[u8], format: Option<Format>, quality: u8) -> (Shown, Shown) {
    let options = Options {
        format: format.map_or(OutputFormat::Keep, OutputFormat::To),
        quality: Some(Quality::new(0, quality)),
        ..Options::default()
    };
    let out = compress(input, &options).unwrap();
    (shown(input), shown(&out.data))
}

/// The score as the engine computed it before tiles: the crate on the whole image, composited
/// over black, and also over white when either image has transparency, the worse kept.
fn whole_image_score(reference: &[u8], distorted: &[u8], width: u32, height: u32) -> f64 {
    let translucent = |v: &[u8]| v.chunks_exact(4).any(|p| p[3] != 255);
    let backgrounds: &[f32] = if translucent(reference) || translucent(distorted) { &[0.0, 1.0] } else { &[0.0] };
    let rgb = |rgba: &[u8], background: f32| {
        let data = rgba
            .chunks_exact(4)
            .map(|p| {
                let alpha = f32::from(p[3]) / 255.0;
                let c = |v: u8| f32::from(v) / 255.0 * alpha + background * (1.0 - alpha);
                [c(p[0]), c(p[1]), c(p[2])]
            })
            .collect();
        Rgb::new(data, width as usize, height as usize, TransferCharacteristic::SRGB, ColorPrimaries::BT709).unwrap()
    };
    backgrounds.iter().map(|&bg| compute_frame_ssimulacra2(rgb(reference, bg), rgb(distorted, bg)).unwrap()).fold(f64::INFINITY, f64::min)
}

fn crop((width, _, rgba): &Shown, x: u32, y: u32, w: u32, h: u32) -> Shown {
    let rows = (y..y + h).flat_map(|row| {
        let at = (row * width + x) as usize * 4;
        rgba[at..at + w as usize * 4].iter().copied()
    });
    (w, h, rows.collect())
}

/// Both scores of one pair: their difference.
fn compare(name: &str, reference: &Shown, distorted: &Shown) -> f64 {
    let (w, h) = (reference.0, reference.1);
    assert_eq!((w, h), (distorted.0, distorted.1), "{name}");
    let tiled = ssimulacra2_rgba8(&reference.2, &distorted.2, w, h).unwrap();
    let whole = whole_image_score(&reference.2, &distorted.2, w, h);
    let difference = (tiled - whole).abs();
    eprintln!("{name} {w}x{h}: tiled {tiled:.6}, whole image {whole:.6}, difference {difference:.2e}");
    difference
}

#[test]
fn the_tiled_score_is_the_whole_image_score() {
    let Some(corpus) = corpus() else {
        eprintln!("COMPRESSOR_CORPUS is not set; skipping");
        return;
    };
    let read = |path: &str| std::fs::read(corpus.join(path)).unwrap();
    let cases: [(&str, Option<Format>, u8); 12] = [
        ("png_real/photo/imagecompression.info/gray8bit_leaves_iso_200.png", Some(Format::WebP), 40),
        ("photos_jpeg/exif-orientation__Landscape_5.jpg", None, 20),
        ("photos_jpeg/libjxl__flower_flower.png.im_q85_420_progr.jpg", Some(Format::WebP), 10),
        ("png_real/photo/libjxl-wesaturate__tmshre_riaphotographs_alpha.png", Some(Format::WebP), 30),
        ("png_real/screenshot/rich__features.png", None, 40),
        ("png_real/screenshot/image-png__lorem_ipsum_screenshot.png", Some(Format::Jpeg), 50),
        ("png_real/graphic/image-png__Fantasy_Digital_Painting.png", Some(Format::WebP), 30),
        ("png_real/graphic/image-png__Transparency.png", None, 30),
        ("png_real/graphic/libjxl__dots_ellipses.png", Some(Format::Jpeg), 40),
        ("png_real/icon_alpha/small-n-flat__48_key.png", None, 20),
        ("png_real/icon_alpha/small-n-flat__24_star.png", Some(Format::Jpeg), 30),
        ("other/webp/libwebp-test-data__bryce.webp", Some(Format::Jpeg), 30),
    ];
    let mut worst = 0f64;
    for (path, format, quality) in cases {
        let (reference, distorted) = encoded_pair(&read(path), format, quality);
        worst = worst.max(compare(path, &reference, &distorted));
    }

    // Crops of one photo and its JPEG at quality 30: tiles of every shape, and images of one tile.
    let (reference, distorted) = encoded_pair(&read("photos_jpeg/image-rs__examples_scaledown_test.jpg"), None, 30);
    assert_eq!((reference.0, reference.1), (4032, 3024));
    worst = worst.max(compare("the whole photo", &reference, &distorted));
    for (x, y, w, h) in [
        (2000, 1500, 8, 8),
        (100, 2000, 9, 13),
        (1234, 567, 700, 31),
        (0, 0, 4032, 8),
        (3000, 0, 8, 3024),
        (7, 901, 513, 511),
        (300, 3, 257, 255),
        (1000, 1000, 1024, 1024),
        (77, 55, 1025, 517),
        (2001, 333, 1030, 2051),
    ] {
        let name = format!("crop at {x},{y}");
        worst = worst.max(compare(&name, &crop(&reference, x, y, w, h), &crop(&distorted, x, y, w, h)));
    }
    eprintln!("largest difference from the whole-image score: {worst:.2e}");
    assert!(worst <= TOLERANCE, "the tiled score is {worst} from the whole image's (see above which)");
}

#[test]
fn images_below_8x8_have_no_score() {
    let pixel = [10, 20, 30, 255];
    let image = |w: u32, h: u32| pixel.repeat((w * h) as usize);
    assert_eq!(ssimulacra2_rgba8(&image(7, 100), &image(7, 100), 7, 100), None);
    assert_eq!(ssimulacra2_rgba8(&image(100, 7), &image(100, 7), 100, 7), None);
    assert_eq!(ssimulacra2_rgba8(&image(8, 8), &image(8, 8), 8, 8), Some(100.0));
}
