//! What a viewer sees does not change: colour profiles are carried or converted, never dropped
//! alone; orientation survives every policy; the score compares images as displayed. Inputs are
//! made here: an sRGB picture converted into a wide-gamut profile (moxcms) and embedded.

mod common;

use std::borrow::Cow;

use common::{corpus, jpeg_icc, jpeg_orientation, jpeg_segments, synthetic_rgba};
use compressor_engine::{Format, Limits, MetadataPolicy, Mode, Options, OutputFormat, compress, decode_displayed, ssimulacra2_rgba8};
use moxcms::{ColorProfile, Layout, TransformOptions};

const W: u32 = 96;
const H: u32 = 64;

/// The sRGB picture every input shows.
fn srgb_picture() -> Vec<u8> {
    synthetic_rgba(W, H, false)
}

/// `rgba` (sRGB) converted into `profile`'s space.
fn into_profile(rgba: &[u8], profile: &ColorProfile) -> Vec<u8> {
    let transform =
        ColorProfile::new_srgb().create_transform_8bit(Layout::Rgba, profile, Layout::Rgba, TransformOptions::default()).unwrap();
    let mut out = vec![0; rgba.len()];
    transform.transform(rgba, &mut out).unwrap();
    out
}

/// A PNG of the picture stored in `profile`'s space, with the profile embedded.
fn png_in(profile: &ColorProfile) -> Vec<u8> {
    let mut info = png::Info::with_size(W, H);
    info.color_type = png::ColorType::Rgba;
    info.bit_depth = png::BitDepth::Eight;
    info.icc_profile = Some(Cow::Owned(profile.encode().unwrap()));
    let mut out = Vec::new();
    {
        let mut writer = png::Encoder::with_info(&mut out, info).unwrap().write_header().unwrap();
        writer.write_image_data(&into_profile(&srgb_picture(), profile)).unwrap();
    }
    out
}

fn displayed(data: &[u8]) -> (u32, u32, Vec<u8>) {
    decode_displayed(data, &Limits::default()).unwrap()
}

/// Mean of each colour channel's signed difference (b − a), over opaque pixels.
fn mean_shift(a: &[u8], b: &[u8]) -> [f64; 3] {
    let mut sum = [0f64; 3];
    for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..3 {
            sum[c] += f64::from(q[c]) - f64::from(p[c]);
        }
    }
    sum.map(|s| s / (a.len() / 4) as f64)
}

fn options(format: OutputFormat, metadata: MetadataPolicy, mode: Mode) -> Options {
    Options { format, metadata, mode, score: mode == Mode::Lossy, ..Options::default() }
}

/// Every output of a ProPhoto PNG, in every format and policy, shows the picture's colours: no
/// systematic shift of any channel (dropping the profile alone shifts them by many levels).
#[test]
fn every_output_of_a_wide_gamut_png_shows_its_colours() {
    let input = png_in(&ColorProfile::new_pro_photo_rgb());
    let (_, _, truth) = displayed(&input);
    let picture = srgb_picture();
    assert!(mean_shift(&picture, &truth).iter().all(|s| s.abs() < 1.0), "the input itself does not show the picture");
    // What a profile dropped without converting looks like: the check below can see it.
    let stored = into_profile(&picture, &ColorProfile::new_pro_photo_rgb());
    assert!(mean_shift(&truth, &stored).iter().any(|s| s.abs() > 5.0), "{:?}", mean_shift(&truth, &stored));
    for format in [Format::Png, Format::Jpeg, Format::WebP, Format::Avif, Format::Gif] {
        for metadata in [MetadataPolicy::Safe, MetadataPolicy::Strip] {
            for mode in [Mode::Lossy, Mode::Lossless] {
                // JPEG and AVIF are lossy only here, and a photo has more colours than a GIF holds.
                if mode == Mode::Lossless && matches!(format, Format::Jpeg | Format::Avif | Format::Gif) {
                    continue;
                }
                let result = compress(&input, &options(OutputFormat::To(format), metadata, mode))
                    .unwrap_or_else(|e| panic!("{format} {metadata:?} {mode:?}: {e}"));
                let (w, h, shown) = displayed(&result.data);
                assert_eq!((w, h), (W, H));
                let shift = mean_shift(&truth, &shown);
                let what = format!("{format} {metadata:?} {mode:?} ({}; notes {:?})", result.method, result.notes);
                assert!(shift.iter().all(|s| s.abs() < 2.0), "{what}: colours shifted by {shift:?}");
                if let Some(score) = result.quality_score {
                    assert!(score > 60.0, "{what}: scored {score}");
                }
            }
        }
    }
}

/// `strip` converts to sRGB and leaves no profile (lossy), and says so; lossless keeps the
/// profile it cannot convert, and says that.
#[test]
fn strip_converts_to_srgb_in_lossy_mode_and_keeps_the_profile_in_lossless_mode() {
    let input = png_in(&ColorProfile::new_display_p3());
    let lossy = compress(&input, &options(OutputFormat::Keep, MetadataPolicy::Strip, Mode::Lossy)).unwrap();
    assert_eq!(lossy.format, Format::Png);
    assert!(!contains(&lossy.data, b"iCCP"), "{:?}", lossy.notes);
    assert!(lossy.notes.iter().any(|n| n.contains("converted") && n.contains("sRGB")), "{:?}", lossy.notes);
    let lossless = compress(&input, &options(OutputFormat::Keep, MetadataPolicy::Strip, Mode::Lossless)).unwrap();
    assert!(contains(&lossless.data, b"iCCP"), "the profile of a lossless output under strip");
    let jpeg = compress(&input, &options(OutputFormat::To(Format::Jpeg), MetadataPolicy::Strip, Mode::Lossy)).unwrap();
    assert!(jpeg_icc(&jpeg.data).is_empty());
    let jpeg = compress(&input, &options(OutputFormat::To(Format::Jpeg), MetadataPolicy::Safe, Mode::Lossy)).unwrap();
    // The input's own profile bytes (an encoded profile's header holds the time it was made).
    let embedded = png::Decoder::new(std::io::Cursor::new(&input)).read_info().unwrap().info().icc_profile.clone().unwrap().into_owned();
    assert_eq!(jpeg_icc(&jpeg.data), embedded, "safe carries the profile as it is");
}

/// The score sees a dropped profile: the same stored pixels scored as displayed fall far below
/// the output that kept (or converted) its colours.
#[test]
fn the_score_sees_a_profile_dropped_without_converting() {
    let input = png_in(&ColorProfile::new_pro_photo_rgb());
    let (_, _, truth) = displayed(&input);
    let right = compress(&input, &options(OutputFormat::To(Format::WebP), MetadataPolicy::Strip, Mode::Lossy)).unwrap();
    let (_, _, right_shown) = displayed(&right.data);
    // The same stored values without the profile, as a converter that drops it would write them.
    let dropped = into_profile(&srgb_picture(), &ColorProfile::new_pro_photo_rgb());
    let right_score = ssimulacra2_rgba8(&truth, &right_shown, W, H).unwrap();
    let dropped_score = ssimulacra2_rgba8(&truth, &dropped, W, H).unwrap();
    assert!(right_score > dropped_score + 20.0, "right {right_score:.1}, profile dropped {dropped_score:.1}");
    // The engine's own report agrees with the score of what is displayed, within a few points.
    let reported = right.quality_score.expect("a lossy result scored when asked");
    assert!((reported - right_score).abs() < 3.0, "reported {reported:.1}, displayed {right_score:.1}");
}

/// Orientation survives `strip`: a camera JPEG optimised in place keeps its EXIF orientation (and
/// only that), converted to PNG its pixels are turned.
#[test]
fn strip_keeps_the_picture_upright() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("photos_jpeg/exif-orientation__Landscape_5.jpg")).unwrap();
    let (w, h, shown) = displayed(&input);
    assert_eq!((w, h), (1800, 1200), "the corpus file is a landscape as displayed");
    for (format, mode) in
        [(OutputFormat::Keep, Mode::Lossless), (OutputFormat::Keep, Mode::Lossy), (OutputFormat::To(Format::Png), Mode::Lossy)]
    {
        let result = compress(&input, &Options { format, mode, metadata: MetadataPolicy::Strip, ..Options::default() }).unwrap();
        let (ow, oh, out) = displayed(&result.data);
        assert_eq!((ow, oh), (w, h), "{format:?} {mode:?}: displayed {ow}x{oh}");
        let shift = mean_shift(&shown, &out);
        assert!(shift.iter().all(|s| s.abs() < 2.0), "{format:?} {mode:?}: {shift:?}");
        if result.format == Format::Jpeg {
            assert_eq!(jpeg_orientation(&result.data), Some(5));
            let exif: Vec<_> = jpeg_segments(&result.data).into_iter().filter(|(m, p)| *m == 0xE1 && p.starts_with(b"Exif")).collect();
            assert!(exif.len() == 1 && exif[0].1.len() == 6 + 26, "only a minimal orientation block is kept: {exif:?}");
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
