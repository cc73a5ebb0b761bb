//! JPEG behaviour on the corpus photos: lossless transcoding keeps every pixel, metadata policy.

mod common;

use common::{corpus, files, jpeg_icc, jpeg_orientation, jpeg_samples};
use compressor_engine::{Error, Format, MetadataPolicy, Mode, Options, compress, decode_displayed};

#[test]
fn lossless_jpeg_keeps_pixels_orientation_and_icc() {
    let Some(corpus) = corpus() else { return };
    let photos = files(&corpus.join("photos_jpeg"), &["jpg", "jpeg"]);
    assert!(photos.len() > 50, "expected the JPEG photos, found {}", photos.len());
    let (mut changed, mut with_orientation, mut with_icc, mut dropped) = (0, 0, 0, 0);
    for path in &photos {
        let input = std::fs::read(path).unwrap();
        let result = match compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }) {
            Ok(r) => r,
            // 12-bit and other exotic files libjpeg cannot read are refused, not mangled.
            Err(Error::Corrupt { .. } | Error::UnsupportedFormat { .. }) => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        assert_eq!(result.format, Format::Jpeg);
        assert!(result.output_size <= input.len(), "{}: grew", path.display());
        assert_eq!(jpeg_samples(&result.data), jpeg_samples(&input), "{}: pixels changed", path.display());
        changed += usize::from(result.changed);
        // `safe` keeps the orientation and the ICC profile.
        let orientation = jpeg_orientation(&input).filter(|&o| o != 1);
        if orientation.is_some() {
            with_orientation += 1;
            assert_eq!(jpeg_orientation(&result.data), orientation, "{}: orientation lost", path.display());
        }
        if !jpeg_icc(&input).is_empty() {
            with_icc += 1;
            if jpeg_icc(&result.data).is_empty() {
                dropped += 1;
                assert_shown_alike(&input, &result.data, &path.display().to_string());
            } else {
                assert_eq!(jpeg_icc(&result.data), jpeg_icc(&input), "{}: ICC profile changed", path.display());
            }
        }
    }
    assert!(changed * 2 > photos.len(), "only {changed} of {} photos got smaller", photos.len());
    assert!(with_orientation >= 10 && with_icc >= 3, "corpus lacks orientation ({with_orientation}) or ICC ({with_icc}) cases");
    // Both kinds are there: sRGB profiles dropped, the others (Adobe RGB, P3, …) carried.
    assert!(dropped > 0 && dropped < with_icc, "{dropped} of {with_icc} profiles dropped");
}

/// `safe` drops a profile only when it describes sRGB: a viewer then shows the output as it shows
/// the input (each as displayed: oriented, through its own profile), within 8-bit rounding.
fn assert_shown_alike(input: &[u8], output: &[u8], what: &str) {
    let limits = compressor_engine::Limits::default();
    let (shown_in, shown_out) = (decode_displayed(input, &limits).unwrap(), decode_displayed(output, &limits).unwrap());
    assert_eq!((shown_in.0, shown_in.1), (shown_out.0, shown_out.1), "{what}");
    let worst = shown_in.2.iter().zip(&shown_out.2).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(worst <= 1, "{what}: a profile was dropped that changes the colours (by up to {worst})");
}

#[test]
fn safe_metadata_drops_exif_and_xmp_but_strip_drops_everything() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("photos_jpeg/libavif__dog_exif_extended_xmp_icc.jpg")).unwrap();
    let has = |d: &[u8], prefix: &[u8]| common::jpeg_segments(d).iter().any(|(_, p)| p.starts_with(prefix));
    assert!(has(&input, b"http://ns.adobe.com/xap/1.0/\0") && has(&input, b"Exif\0\0"), "test image lost its metadata");

    let safe = compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
    assert!(!has(&safe.data, b"http://ns.adobe.com/xap/1.0/\0"), "XMP survived safe");
    let exif = common::jpeg_segments(&safe.data).into_iter().find(|(_, p)| p.starts_with(b"Exif\0\0"));
    assert!(exif.is_none_or(|(_, p)| p.len() < 64), "full EXIF survived safe");
    if jpeg_icc(&safe.data).is_empty() {
        assert_shown_alike(&input, &safe.data, "safe");
    }

    // `strip` keeps only what the picture needs to look the same: an orientation-only EXIF block
    // (26 bytes after its prefix) and, in lossless mode, a profile it cannot convert the pixels out of.
    let minimal_exif = |d: &[u8]| common::jpeg_segments(d).iter().all(|(_, p)| !p.starts_with(b"Exif\0\0") || p.len() == 6 + 26);
    for mode in [Mode::Lossless, Mode::Lossy] {
        let strip = compress(&input, &Options { mode, metadata: MetadataPolicy::Strip, ..Options::default() }).unwrap();
        assert!(!has(&strip.data, b"http://ns.adobe.com/xap/1.0/\0") && minimal_exif(&strip.data), "{mode:?}");
        let icc = jpeg_icc(&strip.data);
        match mode {
            Mode::Lossy => assert!(icc.is_empty(), "a lossy strip converts to sRGB and drops the profile"),
            Mode::Lossless => assert!(icc.is_empty() || icc == jpeg_icc(&input), "a lossless strip keeps the profile or drops an sRGB one"),
        }
    }

    let keep = compress(&input, &Options { mode: Mode::Lossless, metadata: MetadataPolicy::Keep, ..Options::default() }).unwrap();
    assert!(has(&keep.data, b"http://ns.adobe.com/xap/1.0/\0") && has(&keep.data, b"Exif\0\0"));
    assert_eq!(jpeg_icc(&keep.data), jpeg_icc(&input), "keep carries every profile, sRGB ones too");
}

#[test]
fn lossy_jpeg_photos_are_smaller_with_a_score() {
    let Some(corpus) = corpus() else { return };
    let photos: Vec<_> = files(&corpus.join("photos_jpeg"), &["jpg"])
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains("flower"))
        .collect();
    assert!(!photos.is_empty());
    for path in &photos {
        let input = std::fs::read(path).unwrap();
        let result = compress(&input, &Options { score: true, ..Options::default() }).unwrap();
        assert!(result.output_size < input.len(), "{}", path.display());
        if result.method.starts_with("jpeg-q") {
            // Quality 80 from q85 sources: visibly close to the source.
            let score = result.quality_score.expect("lossy JPEG carries a score");
            assert!(score > 60.0, "{}: SSIMULACRA2 {score:.1}", path.display());
        }
    }
}

#[test]
fn lossy_mode_keeps_a_smaller_lossless_rewrite_as_small_as_lossless_mode_makes_it() {
    let Some(corpus) = corpus() else { return };
    // Sources already below quality 80: the lossless rewrite beats re-encoding at the default.
    // The lossy path then runs the same scan search as lossless mode, so it is never larger.
    let mut kept_lossless = 0;
    for name in
        ["exif-orientation__Landscape_2.jpg", "exif-orientation__Portrait_1.jpg", "libjxl__jpeg_reconstruction_bicycles_restarts.jpg"]
    {
        let input = std::fs::read(corpus.join("photos_jpeg").join(name)).unwrap();
        let lossless = compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
        let lossy = compress(&input, &Options::default()).unwrap();
        assert!(lossy.output_size <= lossless.output_size, "{name}: {} > {}", lossy.output_size, lossless.output_size);
        if lossy.method == "jpeg-lossless" {
            kept_lossless += 1;
            assert_eq!(jpeg_samples(&lossy.data), jpeg_samples(&input), "{name}: pixels changed");
        }
    }
    assert!(kept_lossless >= 2, "expected low-quality sources to stay lossless, got {kept_lossless}");
}
