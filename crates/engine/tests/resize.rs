//! Resizing through the public API: sizes for every fit, EXIF orientation, no upscaling unless
//! asked, limits, premultiplied alpha, linear light, 16-bit, animation, lossless verification,
//! shrinking to a byte budget and responsive variants.

mod common;

use std::path::Path;

use common::{corpus, encode_png, png_rgba16};
use compressor_engine::{
    Error, Fit, Format, LimitKind, Mode, Options, OutputFormat, Resize, compress, srcset, variant_file_name, variants,
};
use compressor_test_support::{assert_close, noisy_png};

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resize(width: Option<u32>, height: Option<u32>, fit: Fit) -> Resize {
    Resize { width, height, fit, enlarge: false }
}

/// Lossless PNG output of the resized pixels, so tests can read them exactly.
fn to_png(resize: Resize) -> Options {
    Options { mode: Mode::Lossless, format: OutputFormat::To(Format::Png), resize: Some(resize), score: false, ..Options::default() }
}

/// RGBA8 of a PNG (the engine writes 8-bit PNGs for 8-bit input).
fn rgba8(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let (w, h, samples) = png_rgba16(png);
    (w, h, samples.iter().map(|&s| (s >> 8) as u8).collect())
}

#[test]
fn every_fit_gives_the_documented_size_on_landscape_and_portrait() {
    // (input size, resize, expected output size)
    let cases = [
        ((600, 400), resize(Some(300), None, Fit::Scale), (300, 200)),
        ((600, 400), resize(None, Some(100), Fit::Scale), (150, 100)),
        ((400, 600), resize(Some(100), None, Fit::Scale), (100, 150)),
        ((600, 400), resize(Some(200), Some(200), Fit::Inside), (200, 133)),
        ((400, 600), resize(Some(200), Some(200), Fit::Inside), (133, 200)),
        ((600, 400), resize(Some(200), Some(200), Fit::Cover), (200, 200)),
        ((400, 600), resize(Some(300), Some(100), Fit::Cover), (300, 100)),
        ((600, 400), resize(Some(120), Some(300), Fit::Fill), (120, 300)),
        ((600, 400), resize(Some(150), None, Fit::Inside), (150, 100)),
    ];
    for ((w, h), request, expected) in cases {
        let input = noisy_png(w, h, 7);
        let out = compress(&input, &to_png(request)).unwrap_or_else(|e| panic!("{w}x{h} {request:?}: {e}"));
        assert_eq!((out.width, out.height), expected, "{w}x{h} {request:?}");
        let (pw, ph, _) = png_rgba16(&out.data);
        assert_eq!((pw, ph), expected, "the file's own size, {w}x{h} {request:?}");
        assert_eq!(out.resized_from, Some((w, h)));
        assert!(out.notes.iter().any(|n| n.starts_with(&format!("resized {w}x{h} to"))), "{:?}", out.notes);
    }
}

#[test]
fn options_that_cannot_be_met_are_refused() {
    let input = noisy_png(64, 64, 1);
    for request in [
        resize(None, None, Fit::Inside),
        resize(Some(10), Some(10), Fit::Scale),
        resize(Some(10), None, Fit::Cover),
        resize(None, Some(10), Fit::Fill),
        resize(Some(0), None, Fit::Scale),
    ] {
        let err = compress(&input, &to_png(request)).unwrap_err();
        assert!(matches!(err, Error::InvalidOptions { .. }), "{request:?}: {err}");
    }
    let downscale_alone = Options { allow_downscale: true, ..Options::default() };
    assert!(matches!(compress(&input, &downscale_alone), Err(Error::InvalidOptions { .. })));
}

#[test]
fn exif_orientations_are_applied_before_resizing() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("photos_jpeg");
    // The same photo stored in all eight orientations; upright it is 1200x1800.
    let upright = |n: u32| {
        let input = read(&dir.join(format!("exif-orientation__Portrait_{n}.jpg")));
        let out = compress(&input, &to_png(resize(Some(200), None, Fit::Scale))).unwrap();
        assert_eq!((out.width, out.height), (200, 300), "orientation {n}");
        assert_eq!(out.resized_from, Some((1200, 1800)), "orientation {n}");
        rgba8(&out.data).2
    };
    let reference = upright(1);
    for n in 2..=8 {
        // Only JPEG's rounding differs between the stored orientations.
        assert_close(&format!("orientation {n} vs 1"), &upright(n), &reference, 2.5);
    }
    // Cover into a landscape box crops the upright portrait, never the stored landscape pixels.
    let input = read(&dir.join("exif-orientation__Portrait_6.jpg"));
    let out = compress(&input, &to_png(resize(Some(300), Some(100), Fit::Cover))).unwrap();
    assert_eq!((out.width, out.height), (300, 100));
}

#[test]
fn nothing_is_enlarged_unless_asked_and_enlarging_respects_the_pixel_limit() {
    let input = noisy_png(100, 50, 3);
    let out = compress(&input, &to_png(resize(Some(400), None, Fit::Scale))).unwrap();
    assert_eq!((out.width, out.height), (100, 50));
    assert_eq!(out.resized_from, None);
    assert!(out.notes.iter().any(|n| n.contains("not enlarged")), "{:?}", out.notes);

    // Cover with a box larger than the image on one side only: that side is kept, the other cropped.
    let out = compress(&input, &to_png(resize(Some(40), Some(80), Fit::Cover))).unwrap();
    assert_eq!((out.width, out.height), (40, 50));

    let enlarge = Resize { enlarge: true, ..resize(Some(400), None, Fit::Scale) };
    let out = compress(&input, &to_png(enlarge)).unwrap();
    assert_eq!((out.width, out.height), (400, 200));

    // 2,000,000 x 1,000,000 would need terabytes: refused from the plan, before any allocation.
    let huge = Resize { enlarge: true, ..resize(Some(2_000_000), None, Fit::Scale) };
    match compress(&input, &to_png(huge)) {
        Err(Error::LimitExceeded { what, .. }) => assert!(matches!(what, LimitKind::Dimension | LimitKind::Pixels), "{what:?}"),
        other => panic!("expected a limit error, got {other:?}"),
    }
    let small_limit = Options {
        limits: compressor_engine::Limits { max_pixels: 50_000, ..Default::default() },
        ..to_png(Resize { enlarge: true, ..resize(Some(400), None, Fit::Scale) })
    };
    assert!(matches!(compress(&input, &small_limit), Err(Error::LimitExceeded { what: LimitKind::Pixels, .. })));

    // A 9000×9000 enlargement (81 MP) is over the default output limit (50 MP): refused by the
    // estimate callers check before any work, and by compress, as that limit.
    let fill = Options {
        mode: Mode::Lossy,
        target_quality: Some(80.0),
        ..to_png(Resize { enlarge: true, ..resize(Some(9000), Some(9000), Fit::Fill) })
    };
    let over_output = |r: Result<_, Error>| {
        matches!(r, Err(Error::LimitExceeded { what: LimitKind::OutputPixels, value: 81_000_000, limit: 50_000_000 }))
    };
    assert!(over_output(compressor_engine::estimate_peak_bytes(&input, &fill).map(|_| ())));
    assert!(over_output(compress(&input, &fill).map(|_| ())));
    let raised = Options { limits: compressor_engine::Limits { max_output_pixels: 81_000_000, ..Default::default() }, ..fill };
    assert!(compressor_engine::estimate_peak_bytes(&input, &raised).is_ok());
}

#[test]
fn cover_crops_the_centre() {
    // Three vertical bands, red | green | blue, each 100 wide: a 100x100 cover keeps the green.
    let (w, h) = (300u32, 100u32);
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| match (i % w) / 100 {
            0 => [255, 0, 0, 255],
            1 => [0, 255, 0, 255],
            _ => [0, 0, 255, 255],
        })
        .collect();
    let out = compress(&encode_png(w, h, &rgba, &[]), &to_png(resize(Some(50), Some(50), Fit::Cover))).unwrap();
    let (ow, oh, pixels) = rgba8(&out.data);
    assert_eq!((ow, oh), (50, 50));
    assert!(out.notes.iter().any(|n| n.contains("centred crop of 100x100")), "{:?}", out.notes);
    // The crop is filtered as part of the whole image, so Lanczos3 (3 output pixels of support)
    // carries a trace of the neighbours into the outer columns; everything inside is green.
    for (i, p) in pixels.chunks_exact(4).enumerate() {
        let x = i as u32 % ow;
        if (3..ow - 3).contains(&x) {
            assert!(p[1] >= 250 && p[0] <= 5 && p[2] <= 5, "pixel {x},{}: {p:?}", i as u32 / ow);
        }
    }
}

#[test]
fn transparent_edges_get_no_dark_fringe() {
    // A white disc on transparent black: resizing with straight alpha would mix the invisible
    // black into the edge pixels and draw a grey ring. In premultiplied alpha it cannot.
    let (w, h) = (301u32, 301u32);
    let rgba: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = ((i % w) as f64 - 150.0, (i / w) as f64 - 150.0);
            if x * x + y * y < 100.0 * 100.0 { [255, 255, 255, 255] } else { [0, 0, 0, 0] }
        })
        .collect();
    let out = compress(&encode_png(w, h, &rgba, &[]), &to_png(resize(Some(37), None, Fit::Scale))).unwrap();
    let (_, _, pixels) = rgba8(&out.data);
    let edge: Vec<&[u8]> = pixels.chunks_exact(4).filter(|p| p[3] >= 16 && p[3] <= 240).collect();
    assert!(edge.len() >= 20, "the disc's edge should be partly transparent: {} pixels", edge.len());
    for p in edge {
        assert!(p[0] >= 245 && p[1] >= 245 && p[2] >= 245, "edge pixel darkened: {p:?}");
    }
}

#[test]
fn resizing_averages_in_linear_light() {
    // Alternate black and white columns: halved, each pixel is half the light of white, which
    // is sRGB 188. Averaging the sRGB numbers would give 128, visibly darker than the original.
    let (w, h) = (64u32, 8u32);
    let rgba: Vec<u8> = (0..w * h).flat_map(|i| if i % 2 == 0 { [0, 0, 0, 255] } else { [255, 255, 255, 255] }).collect();
    for factor in [2, 3, 4, 8] {
        let out_width = w / factor;
        let out = compress(&encode_png(w, h, &rgba, &[]), &to_png(resize(Some(out_width), None, Fit::Scale))).unwrap();
        assert!(out.notes.iter().any(|n| n.contains("linear light")), "{:?}", out.notes);
        let (_, _, pixels) = rgba8(&out.data);
        // The image's edges are extended by clamping, which this pattern shows; the inside is flat.
        for (i, p) in pixels.chunks_exact(4).enumerate() {
            let x = i as u32 % out_width;
            if (3..out_width - 3).contains(&x) {
                assert!((185..=191).contains(&p[0]), "1/{factor}, pixel {x}: {p:?}");
            }
        }
    }
}

#[test]
fn sixteen_bit_input_stays_sixteen_bit() {
    let (w, h) = (120u32, 80u32);
    let samples: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let v = ((i % w) * 500 + (i / w) * 37) as u16 | 1;
            [v.to_be_bytes(), (v / 3).to_be_bytes(), (65535 - v).to_be_bytes()].concat()
        })
        .collect();
    let mut input16 = Vec::new();
    let mut enc = png::Encoder::new(&mut input16, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Sixteen);
    enc.write_header().unwrap().write_image_data(&samples).unwrap();
    let out = compress(&input16, &to_png(resize(Some(60), None, Fit::Scale))).unwrap();
    assert_eq!(out.data[24], 16, "bit depth in IHDR");
    let (ow, oh, pixels) = png_rgba16(&out.data);
    assert_eq!((ow, oh), (60, 40));
    // Precision beyond 8 bits survived: low bytes are not all equal to the high bytes.
    assert!(pixels.iter().any(|&s| (s >> 8) as u8 != s as u8), "samples look like widened 8-bit");
}

#[test]
fn lossless_resize_stores_exactly_the_resized_pixels() {
    let input = noisy_png(240, 160, 11);
    let request = resize(Some(100), None, Fit::Scale);
    let png = compress(&input, &to_png(request)).unwrap();
    let webp = compress(&input, &Options { format: OutputFormat::To(Format::WebP), ..to_png(request) }).unwrap();
    assert_eq!(webp.method, "webp-lossless");
    assert!(webp.notes.iter().any(|n| n.contains("resized")), "{:?}", webp.notes);
    // Both lossless encodings hold the same resized pixels, so decoding the WebP back to PNG
    // (lossless, no resize) must give exactly the PNG's pixels.
    let back =
        compress(&webp.data, &Options { mode: Mode::Lossless, format: OutputFormat::To(Format::Png), ..Options::default() }).unwrap();
    assert_eq!(png_rgba16(&back.data), png_rgba16(&png.data));
}

#[test]
fn animated_gifs_resize_every_frame_and_keep_their_timing() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("other/gif/image-gif__anim-gr.gif"));
    let frames = |data: &[u8]| {
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut d = opts.read_info(data).unwrap();
        let size = (d.width(), d.height());
        let mut delays = Vec::new();
        while let Some(f) = d.read_next_frame().unwrap() {
            delays.push(f.delay);
        }
        (size, delays)
    };
    let ((w, h), delays) = frames(&input);
    assert!(delays.len() > 1);
    let out =
        compress(&input, &Options { resize: Some(resize(Some(u32::from(w) / 2), None, Fit::Scale)), score: false, ..Options::default() })
            .unwrap();
    assert_eq!(out.format, Format::Gif);
    let ((ow, oh), out_delays) = frames(&out.data);
    assert_eq!((u32::from(ow), u32::from(oh)), (out.width, out.height));
    assert_eq!(u32::from(ow), u32::from(w) / 2);
    assert_eq!(u32::from(oh), (u32::from(h) as f64 / 2.0).round() as u32);
    assert_eq!(out_delays, delays, "frame count and delays kept");
}

#[test]
fn allow_downscale_shrinks_until_max_bytes_fits() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg"));
    let budget = 6_000;
    let strict = Options { max_bytes: Some(budget), score: false, ..Options::default() };
    assert!(matches!(compress(&input, &strict), Err(Error::CannotFit { .. })), "the budget must be out of reach at full size");
    let out = compress(&input, &Options { allow_downscale: true, ..strict }).unwrap();
    assert!(out.output_size as u64 <= budget, "{} bytes", out.output_size);
    let (w, h) = out.resized_from.expect("downscaled");
    assert!(out.width < w && out.height < h, "{}x{} from {w}x{h}", out.width, out.height);
    // Aspect ratio kept to within a pixel.
    let expected_h = f64::from(out.width) * f64::from(h) / f64::from(w);
    assert!((f64::from(out.height) - expected_h).abs() <= 1.0, "{}x{}", out.width, out.height);
    assert!(out.notes.iter().any(|n| n.contains(&format!("{}x{}", out.width, out.height))), "{:?}", out.notes);
    let (jw, jh, _) = compressor_test_support::jpeg_samples(&out.data);
    assert_eq!((jw as u32, jh as u32), (out.width, out.height));
}

#[test]
fn variants_decode_once_and_give_one_file_per_width() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("photos_jpeg/exif-orientation__Portrait_1.jpg")); // 1200x1800
    let options = Options { format: OutputFormat::To(Format::WebP), score: false, ..Options::default() };
    let results = variants(&input, &[1600, 320, 640, 320, 1200], false, &options).unwrap();
    let widths: Vec<u32> = results.iter().map(|(w, _)| *w).collect();
    assert_eq!(widths, [320, 640, 1200, 1600], "sorted and deduplicated");
    assert!(results[3].1.is_none(), "1600 is wider than the image: skipped without enlarge");
    let made: Vec<_> = results.iter().filter_map(|(_, c)| c.as_ref()).collect();
    let sizes: Vec<_> = made.iter().map(|c| (c.width, c.height, c.format)).collect();
    assert_eq!(sizes, [(320, 480, Format::WebP), (640, 960, Format::WebP), (1200, 1800, Format::WebP)]);
    assert!(made.windows(2).all(|p| p[0].output_size < p[1].output_size), "wider is larger");
    let names: Vec<String> = made.iter().map(|c| variant_file_name("portrait", c)).collect();
    assert_eq!(names, ["portrait-320w.webp", "portrait-640w.webp", "portrait-1200w.webp"]);
    let set = srcset(names.iter().map(String::as_str).zip([320, 640, 1200]));
    assert_eq!(set, "portrait-320w.webp 320w, portrait-640w.webp 640w, portrait-1200w.webp 1200w");

    let too_many: Vec<u32> = (1..=40).map(|i| i * 10).collect();
    assert!(matches!(variants(&input, &too_many, false, &options), Err(Error::InvalidOptions { .. })));
}

#[test]
fn large_jpeg_reductions_decode_shrunk_and_match_the_full_decode() {
    let Some(corpus) = corpus() else { return };
    let jpeg = read(&corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg")); // 1800x1200
    // The same pixels as a PNG: resized from a full decode, since only JPEG decodes shrunk.
    let png = compress(&jpeg, &Options { mode: Mode::Lossless, format: OutputFormat::To(Format::Png), score: false, ..Options::default() })
        .unwrap();
    let request = resize(Some(200), None, Fit::Scale);
    let from_jpeg = compress(&jpeg, &to_png(request)).unwrap();
    let from_png = compress(&png.data, &to_png(request)).unwrap();
    assert!(from_jpeg.notes.iter().any(|n| n.contains("decoded at 1/4 scale")), "{:?}", from_jpeg.notes);
    assert!(!from_png.notes.iter().any(|n| n.contains("decoded at")), "{:?}", from_png.notes);
    assert_eq!((from_jpeg.width, from_jpeg.height), (from_png.width, from_png.height));
    assert_close("shrunk JPEG decode vs full decode", &rgba8(&from_jpeg.data).2, &rgba8(&from_png.data).2, 2.0);
}

#[test]
fn variants_of_a_large_jpeg_share_one_shrunk_decode() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg")); // 1800x1200
    let options = Options { format: OutputFormat::To(Format::Png), mode: Mode::Lossless, score: false, ..Options::default() };
    let results = variants(&input, &[200, 400], false, &options).unwrap();
    let made: Vec<&compressor_engine::Compressed> = results.iter().filter_map(|(_, c)| c.as_ref()).collect();
    assert_eq!(made.iter().map(|c| (c.width, c.height)).collect::<Vec<_>>(), [(200, 133), (400, 267)]);
    // The widest (400 of 1800) allows a 1/2 decode, and Lanczos3 still does the rest.
    for c in &made {
        assert!(c.notes.iter().any(|n| n.contains("decoded at 1/2 scale")), "{:?}", c.notes);
        assert_eq!(compressor_test_support::decode_png(&c.data), (c.width, c.height));
    }
    // The same width made alone (decoded at 1/2 too) has the same pixels.
    let alone = compress(&input, &Options { resize: Some(resize(Some(400), None, Fit::Scale)), ..options }).unwrap();
    assert_eq!(png_rgba16(&alone.data), png_rgba16(&made[1].data));
}
