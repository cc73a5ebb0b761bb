//! WebP, AVIF and GIF, conversions, `auto`, target quality and maximum size, on corpus images.

mod common;

use std::path::{Path, PathBuf};

use common::{corpus, encode_png, files, png_rgba16, synthetic_rgba};
use compressor_engine::{Compressed, Error, Format, Mode, Options, OutputFormat, Surface, compress, probe};

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn to(format: Format) -> Options {
    Options { format: OutputFormat::To(format), ..Options::default() }
}

/// GIF frames as stored (count, delays in 1/100 s) and the loop setting, read with the `gif` crate.
fn gif_timing(data: &[u8]) -> (Vec<u16>, gif::Repeat) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::Indexed);
    let mut dec = opts.read_info(data).expect("GIF header");
    let mut delays = Vec::new();
    while let Some(frame) = dec.read_next_frame().expect("GIF frame") {
        delays.push(frame.delay);
    }
    (delays, dec.repeat())
}

/// Animated WebP frame durations (ms) and loop count, read from the RIFF chunks directly.
fn webp_timing(data: &[u8]) -> (Vec<u32>, u16) {
    let (mut durations, mut loops) = (Vec::new(), 1);
    let mut pos = 12;
    while pos + 8 <= data.len() {
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &data[pos + 8..pos + 8 + len];
        match &data[pos..pos + 4] {
            b"ANIM" => loops = u16::from_le_bytes([body[4], body[5]]),
            b"ANMF" => durations.push(u32::from(body[12]) | u32::from(body[13]) << 8 | u32::from(body[14]) << 16),
            _ => {}
        }
        pos += 8 + len + (len & 1);
    }
    (durations, loops)
}

fn animated_gifs(corpus: &Path) -> Vec<PathBuf> {
    files(&corpus.join("other/gif"), &["gif"]).into_iter().filter(|p| gif_timing(&read(p)).0.len() > 1).collect()
}

#[test]
fn animated_gifs_keep_frames_timing_and_loops_in_both_modes() {
    let Some(corpus) = corpus() else { return };
    let gifs = animated_gifs(&corpus);
    assert!(gifs.len() >= 5, "expected animated GIFs, found {}", gifs.len());
    for path in &gifs {
        let input = read(path);
        let (delays, repeat) = gif_timing(&input);
        for mode in [Mode::Lossless, Mode::Lossy] {
            let out = compress(&input, &Options { mode, score: false, ..Options::default() })
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(out.format, Format::Gif);
            assert!(out.output_size <= input.len());
            let (out_delays, out_repeat) = gif_timing(&out.data);
            assert_eq!(out_delays, delays, "{} ({mode:?}): frame timing changed", path.display());
            assert_eq!(out_repeat, repeat, "{} ({mode:?}): loop count changed", path.display());
        }
    }
}

#[test]
fn animated_gif_to_webp_keeps_frames_timing_and_loops() {
    let Some(corpus) = corpus() else { return };
    for path in animated_gifs(&corpus).iter().take(6) {
        let input = read(path);
        let (delays, repeat) = gif_timing(&input);
        let out = compress(&input, &Options { score: false, ..to(Format::WebP) }).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(out.format, Format::WebP);
        let (durations, loops) = webp_timing(&out.data);
        assert_eq!(durations, delays.iter().map(|&d| u32::from(d) * 10).collect::<Vec<_>>(), "{}", path.display());
        let expected_loops = match repeat {
            gif::Repeat::Infinite => 0,
            gif::Repeat::Finite(n) => n + 1,
        };
        assert_eq!(loops, expected_loops, "{}", path.display());
        // And back: WebP animation to GIF keeps the same timing.
        let back = compress(&out.data, &Options { score: false, ..to(Format::Gif) }).unwrap();
        assert_eq!(gif_timing(&back.data), (delays, repeat), "{}: WebP -> GIF", path.display());
    }
}

#[test]
fn animated_webp_round_trips_with_its_frames() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("other/webp/pillow__iss634.webp"));
    let (durations, loops) = webp_timing(&input);
    assert!(durations.len() > 1);
    for mode in [Mode::Lossless, Mode::Lossy] {
        let out = compress(&input, &Options { mode, score: false, ..Options::default() }).unwrap();
        let data = if out.changed { out.data } else { input.clone() };
        assert_eq!(webp_timing(&data), (durations.clone(), loops), "{mode:?}");
    }
}

#[test]
fn animated_input_into_a_still_format_needs_first_frame() {
    let Some(corpus) = corpus() else { return };
    let input = read(&animated_gifs(&corpus)[0]);
    for format in [Format::Png, Format::Jpeg, Format::Avif] {
        match compress(&input, &to(format)) {
            // The engine names the option; each surface spells it as its users set it.
            Err(e @ Error::NeedsOption { option: "first_frame", .. }) => {
                assert!(e.message(Surface::Cli).ends_with("; pass --first-frame to allow it"), "{}", e.message(Surface::Cli));
                assert!(e.message(Surface::Http).ends_with("; add first_frame=true to allow it"), "{}", e.message(Surface::Http));
            }
            other => panic!("{format}: {other:?}"),
        }
    }
    let out = compress(&input, &Options { first_frame: true, ..to(Format::Png) }).unwrap();
    assert_eq!(probe(&out.data).unwrap().format, Format::Png);
}

#[test]
fn every_webp_and_gif_in_the_corpus_compresses_or_fails_cleanly() {
    let Some(corpus) = corpus() else { return };
    let mut ok = 0;
    for path in files(&corpus.join("other/webp"), &["webp"]).into_iter().chain(files(&corpus.join("other/gif"), &["gif"])) {
        let input = read(&path);
        match compress(&input, &Options { score: false, ..Options::default() }) {
            Ok(out) => {
                assert!(out.output_size <= input.len(), "{}", path.display());
                assert_eq!(probe(&out.data).unwrap().format, probe(&input).unwrap().format);
                ok += 1;
            }
            Err(Error::Internal { detail }) => panic!("{}: {detail}", path.display()),
            Err(_) => {}
        }
    }
    assert!(ok > 100, "only {ok} files compressed");
}

#[test]
fn lossless_webp_is_pixel_exact_and_conversions_decode() {
    // A PNG with alpha, converted to lossless WebP and back to PNG: every pixel survives.
    let rgba = synthetic_rgba(97, 61, true);
    let input = encode_png(97, 61, &rgba, &[]);
    let lossless = Options { mode: Mode::Lossless, ..Options::default() };
    let webp = compress(&input, &Options { format: OutputFormat::To(Format::WebP), ..lossless.clone() }).unwrap();
    assert_eq!(webp.format, Format::WebP);
    let png = compress(&webp.data, &Options { format: OutputFormat::To(Format::Png), ..lossless.clone() }).unwrap();
    assert_eq!(png_rgba16(&png.data), png_rgba16(&input));
    let gif = compress(&input, &Options { format: OutputFormat::To(Format::Gif), ..Options::default() }).unwrap();
    assert_eq!(gif.format, Format::Gif);
    let avif = compress(&input, &to(Format::Avif)).unwrap();
    assert!(avif.data[4..12] == *b"ftypavif", "AVIF signature");
    assert!(matches!(
        compress(&input, &Options { format: OutputFormat::To(Format::Jpeg), ..lossless }),
        Err(Error::UnsupportedFormat { .. })
    ));
}

#[test]
fn alpha_into_jpeg_is_flattened_onto_the_background() {
    // Left column fully transparent: it must come out as the background colour.
    let rgba = synthetic_rgba(64, 64, true);
    let input = encode_png(64, 64, &rgba, &[]);
    let out = compress(&input, &Options { background: [255, 0, 0], quality: Some("95".parse().unwrap()), ..to(Format::Jpeg) }).unwrap();
    let (w, _, rgb) = common::jpeg_samples(&out.data);
    assert_eq!(w, 64);
    let left = &rgb[0..3];
    assert!(left[0] > 200 && left[1] < 60 && left[2] < 60, "transparent pixel became {left:?}, not red");
}

#[test]
fn conversion_applies_the_exif_orientation_to_the_pixels() {
    let Some(corpus) = corpus() else { return };
    for n in 5..=8 {
        let input = read(&corpus.join(format!("photos_jpeg/exif-orientation__Portrait_{n}.jpg")));
        let stored = probe(&input).unwrap();
        let out = compress(&input, &to(Format::Png)).unwrap();
        let (w, h, _) = png_rgba16(&out.data);
        assert_eq!((w, h), (stored.height, stored.width), "orientation {n} must swap width and height");
    }
    let input = read(&corpus.join("photos_jpeg/exif-orientation__Portrait_3.jpg"));
    let stored = probe(&input).unwrap();
    let out = compress(&input, &to(Format::WebP)).unwrap();
    assert_eq!((out.width, out.height), (stored.width, stored.height));
}

fn photos(corpus: &Path) -> Vec<PathBuf> {
    ["libjxl__flower_flower.png.im_q85_420_progr.jpg", "exif-orientation__Landscape_2.jpg", "image-rs__tests_images_jpg_progressive_3.jpg"]
        .iter()
        .map(|f| corpus.join("photos_jpeg").join(f))
        .collect()
}

fn quality_of(result: &Compressed) -> u8 {
    result.method.rsplit("-q").next().and_then(|q| q.parse().ok()).unwrap_or_else(|| panic!("no quality in {}", result.method))
}

#[test]
fn target_quality_reaches_the_score_with_fewer_bytes_than_a_fixed_setting() {
    let Some(corpus) = corpus() else { return };
    let target = 80.0;
    let mut searched_count = 0;
    for path in photos(&corpus) {
        let input = read(&path);
        for format in [Format::Jpeg, Format::WebP] {
            let searched = compress(&input, &Options { target_quality: Some(target), ..to(format) }).unwrap();
            if !searched.changed {
                continue; // the input itself was smaller than any encode meeting the target
            }
            searched_count += 1;
            let score = searched.quality_score.expect("searched result carries its score");
            assert!(score >= target, "{} {format}: score {score:.1} below {target}", path.display());
            // A fixed high setting that also meets the target must not be smaller.
            let fixed = compress(&input, &Options { quality: Some("92".parse().unwrap()), ..to(format) }).unwrap();
            if fixed.quality_score.is_some_and(|s| s >= target) {
                assert!(
                    searched.output_size <= fixed.output_size,
                    "{} {format}: searched {} bytes (score {score:.1}, {}) vs fixed q92 {} bytes (score {:.1})",
                    path.display(),
                    searched.output_size,
                    searched.method,
                    fixed.output_size,
                    fixed.quality_score.unwrap()
                );
            }
        }
    }
    assert!(searched_count >= 3, "only {searched_count} searches produced an output");
}

/// A PNG found by a target-quality search is written with the next effort's writer: the same
/// pixels as a plain encode at the quality the search found, in fewer bytes.
#[test]
fn a_searched_png_is_written_smaller_than_a_plain_encode_at_its_quality() {
    let Some(corpus) = corpus() else { return };
    let mut smaller = 0;
    for name in
        ["photo/cid22_512/CID22-512_validation_1025469.png", "graphic/cid22_512/training_Boxplot.png", "screenshot/rich__logging.png"]
    {
        let input = read(&corpus.join("png_real").join(name));
        let options = Options { metadata: compressor_engine::MetadataPolicy::Strip, ..to(Format::Png) };
        let searched = compress(&input, &Options { target_quality: Some(80.0), ..options.clone() }).unwrap();
        if !searched.changed {
            continue;
        }
        let q = quality_of(&searched);
        let plain = compress(&input, &Options { quality: Some(format!("0-{q}").parse().unwrap()), ..options.clone() }).unwrap();
        assert_eq!(png_rgba16(&searched.data), png_rgba16(&plain.data), "{name}: the rewrite must keep every pixel");
        assert!(searched.output_size <= plain.output_size, "{name}: searched {} > plain {}", searched.output_size, plain.output_size);
        smaller += usize::from(searched.output_size < plain.output_size);
    }
    assert!(smaller >= 2, "only {smaller} of 3 searched PNGs were written smaller than the plain encode");
}

/// The search ends with an answer for every format and target, low, high or out of reach: the
/// score it reports meets the target, or a note says the target was not reached.
#[test]
fn target_quality_search_answers_every_format_and_target() {
    let Some(corpus) = corpus() else { return };
    let icon = read(&corpus.join("png_real/icon_alpha/small-n-flat__96_cloud-up.png"));
    let photo = read(&corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg"));
    for (name, input, formats) in [
        ("icon", &icon, &[Format::WebP, Format::Avif, Format::Png][..]),
        ("photo", &photo, &[Format::Jpeg, Format::WebP, Format::Avif][..]),
    ] {
        for &format in formats {
            for target in [30.0, 60.0, 75.0, 88.0, 99.5] {
                let out = compress(input, &Options { target_quality: Some(target), ..to(format) })
                    .unwrap_or_else(|e| panic!("{name} {format} target {target}: {e}"));
                let reached = out.quality_score.is_some_and(|s| s >= target);
                let said = out.notes.iter().any(|n| n.contains("not reached") || n.contains("input kept"));
                assert!(reached || said, "{name} {format} target {target}: score {:?}, notes {:?}", out.quality_score, out.notes);
            }
        }
    }
}

#[test]
fn max_bytes_fits_every_format_with_the_best_quality_tried() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg"));
    let budget = input.len() as u64 / 6;
    for format in [Format::Jpeg, Format::WebP, Format::Avif, Format::Png, Format::Gif] {
        let options = Options { max_bytes: Some(budget), score: false, ..to(format) };
        let out = match compress(&input, &options) {
            Ok(out) => out,
            Err(Error::CannotFit { smallest, .. }) => {
                assert!(smallest > budget, "{format}: CannotFit but smallest {smallest} fits {budget}");
                continue;
            }
            Err(e) => panic!("{format}: {e}"),
        };
        assert!(out.output_size as u64 <= budget, "{format}: {} > {budget}", out.output_size);
        // The next quality step up (the search resolves to within 1) no longer fits.
        let q = quality_of(&out);
        if q < 100 {
            let above =
                compress(&input, &Options { quality: Some(format!("{}", q + 1).parse().unwrap()), score: false, ..to(format) }).unwrap();
            assert!(above.output_size as u64 > budget, "{format}: q{} also fits ({} <= {budget})", q + 1, above.output_size);
        }
    }
    match compress(&input, &Options { max_bytes: Some(200), ..to(Format::Jpeg) }) {
        Err(Error::CannotFit { max_bytes: 200, smallest }) => assert!(smallest > 200),
        other => panic!("{other:?}"),
    }
}

#[test]
fn avif_input_decodes_and_converts_and_avif_output_scores() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("other/avif/libavif__io_kodim03_yuv420_8bpc.avif"));
    let info = probe(&input).unwrap();
    let png = compress(&input, &Options { mode: Mode::Lossless, ..to(Format::Png) }).unwrap();
    let (w, h, _) = png_rgba16(&png.data);
    assert_eq!((w, h), (info.width, info.height));
    // AVIF output is decoded again to score it, so a target quality works for AVIF too.
    let photo = read(&corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg"));
    let avif = compress(&photo, &Options { target_quality: Some(75.0), ..to(Format::Avif) }).unwrap();
    assert_eq!(avif.format, Format::Avif);
    assert!(avif.quality_score.is_some_and(|s| s >= 75.0), "{:?}", avif.quality_score);
    for path in files(&corpus.join("other/avif"), &["avif"]) {
        match compress(&read(&path), &Options { score: false, ..to(Format::WebP) }) {
            Ok(out) => assert_eq!(out.format, Format::WebP),
            Err(Error::UnsupportedFormat { .. } | Error::Corrupt { .. }) => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

#[test]
fn auto_picks_the_smallest_candidate_and_reports_them_all() {
    let Some(corpus) = corpus() else { return };
    let input = read(&corpus.join("photos_jpeg/libjxl__flower_flower.png.im_q85_420_progr.jpg"));
    let out = compress(
        &input,
        &Options { format: OutputFormat::Auto, auto_formats: vec![Format::WebP, Format::Jpeg], score: true, ..Options::default() },
    )
    .unwrap();
    assert_eq!(out.candidates.len(), 2, "{:?}", out.candidates);
    let smallest = out.candidates.iter().map(|c| c.size).min().unwrap();
    assert_eq!(out.output_size, smallest);
    assert!(out.candidates.iter().all(|c| c.quality_score.is_some()));
}
