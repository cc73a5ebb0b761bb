//! Self-contained behaviour of the engine on images made here (no corpus needed).

mod common;

use common::{encode_png, png_rgba16, synthetic_rgba};
use compressor_engine::{Error, Format, LimitKind, Limits, MetadataPolicy, Mode, Options, Quality, compress, detect, probe};

fn chunk_names(png: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 8;
    while pos + 8 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        names.push(String::from_utf8_lossy(&png[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    names
}

/// EXIF (TIFF, little-endian) with orientation 6 and a GPS IFD pointer: what a phone writes.
fn exif_with_gps() -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // orientation = 6
    t.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]); // GPS IFD at 38
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&[0; 18]); // a (blank) GPS IFD
    t
}

#[test]
fn detection_uses_content_not_names() {
    let png = encode_png(2, 2, &[0; 16], &[]);
    assert_eq!(detect(&png), Some(Format::Png));
    assert_eq!(detect(b"\xFF\xD8\xFF\xE0"), Some(Format::Jpeg));
    assert_eq!(detect(b"GIF89a...."), Some(Format::Gif));
    assert_eq!(detect(b"BM\0\0\0\0"), Some(Format::Bmp), "read, not written");
    assert_eq!(detect(b"%PDF-1.7\n"), None);
    assert!(matches!(compress(b"hello, world", &Options::default()), Err(Error::UnsupportedFormat { .. })));
    assert!(matches!(compress(b"", &Options::default()), Err(Error::UnsupportedFormat { .. })));
}

#[test]
fn lossless_png_is_pixel_identical_and_smaller() {
    let rgba = synthetic_rgba(96, 64, true);
    let input = encode_png(96, 64, &rgba, &[]);
    let out = compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
    assert!(out.changed && out.output_size < input.len(), "{} -> {}", input.len(), out.output_size);
    assert_eq!(png_rgba16(&out.data), png_rgba16(&input));
    assert_eq!((out.width, out.height, out.format), (96, 64, Format::Png));
    assert_eq!(out.quality_score, None);
}

#[test]
fn never_larger_returns_the_input_unchanged() {
    let input = encode_png(64, 64, &synthetic_rgba(64, 64, false), &[]);
    let once = compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
    let twice = compress(&once.data, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
    assert!(!twice.changed);
    assert_eq!(twice.data, once.data);
    assert_eq!(twice.output_size, twice.input_size);
}

#[test]
fn lossy_png_quantizes_and_reports_a_score() {
    let input = encode_png(128, 128, &synthetic_rgba(128, 128, true), &[]);
    let out = compress(&input, &Options { score: true, ..Options::default() }).unwrap();
    assert_eq!(out.method, "png-quantized");
    assert!(out.output_size * 2 < input.len(), "{} -> {}", input.len(), out.output_size);
    let score = out.quality_score.expect("score");
    // Unasked, no score is computed: the same pixels come back without one.
    let unscored = compress(&input, &Options::default()).unwrap();
    assert_eq!((unscored.data, unscored.quality_score), (out.data, None));
    assert!((30.0..=100.0).contains(&score), "score {score}");
}

#[test]
fn unreachable_minimum_quality_falls_back_to_lossless_and_says_so() {
    let input = encode_png(128, 128, &synthetic_rgba(128, 128, true), &[]);
    let out = compress(&input, &Options { quality: Some(Quality::new(99, 100)), ..Options::default() }).unwrap();
    assert_eq!(out.method, "png-lossless");
    assert!(out.notes.iter().any(|n| n.contains("not reachable")), "{:?}", out.notes);
    assert_eq!(png_rgba16(&out.data), png_rgba16(&input));
}

#[test]
fn png_metadata_policies() {
    let rgba = synthetic_rgba(32, 32, false);
    let iccp = [b"icc\0\0".as_slice(), &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]].concat();
    let chunks = [
        (*b"tEXt", b"Comment\0secret".to_vec()),
        (*b"eXIf", exif_with_gps()),
        (*b"gAMA", 45455u32.to_be_bytes().to_vec()),
        (*b"iCCP", iccp),
    ];
    let input = encode_png(32, 32, &rgba, &chunks);
    let run = |metadata| compress(&input, &Options { mode: Mode::Lossless, metadata, ..Options::default() }).unwrap();

    let safe = run(MetadataPolicy::Safe);
    let names = chunk_names(&safe.data);
    assert!(!names.contains(&"tEXt".to_string()), "{names:?}");
    assert!(names.contains(&"gAMA".to_string()) && names.contains(&"eXIf".to_string()), "{names:?}");
    // The eXIf kept under `safe` holds the orientation only: no GPS pointer.
    let exif_pos = safe.data.windows(4).position(|w| w == b"eXIf").unwrap();
    let len = u32::from_be_bytes(safe.data[exif_pos - 4..exif_pos].try_into().unwrap()) as usize;
    let exif = &safe.data[exif_pos + 4..exif_pos + 4 + len];
    assert_eq!(exif.len(), 26);
    assert_eq!(&exif[10..12], &[0x01, 0x12]);
    assert_eq!(&exif[18..20], &[0, 6], "orientation value");

    // `strip` keeps the orientation alone (the picture must not turn) and drops the rest; the
    // iCCP here is no readable profile, so nothing can be converted or needs carrying.
    let stripped = run(MetadataPolicy::Strip).data;
    let strip = chunk_names(&stripped);
    assert_eq!(strip, ["IHDR", "eXIf", "IDAT", "IEND"], "strip left {strip:?}");
    let exif_pos = stripped.windows(4).position(|w| w == b"eXIf").unwrap();
    assert_eq!(&stripped[exif_pos - 4..exif_pos], &26u32.to_be_bytes(), "the orientation-only block");

    let keep = chunk_names(&run(MetadataPolicy::Keep).data);
    assert!(keep.contains(&"tEXt".to_string()) && keep.contains(&"eXIf".to_string()), "{keep:?}");
}

#[test]
fn sixteen_bit_pngs_stay_sixteen_bit_when_lossless() {
    let (w, h) = (40u32, 30u32);
    let mut samples = Vec::new();
    for i in 0..(w * h) {
        for c in 0..3u32 {
            samples.extend_from_slice(&((i * 37 + c * 1000) as u16 | 1).to_be_bytes()); // odd low bytes: truly 16-bit
        }
    }
    let mut input = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut input, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Sixteen);
        enc.write_header().unwrap().write_image_data(&samples).unwrap();
    }
    let out = compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
    assert_eq!(png_rgba16(&out.data), png_rgba16(&input));
    assert_eq!(out.data[24], 16, "bit depth in IHDR");
}

#[test]
fn limits_are_checked_from_the_header_before_decoding() {
    // A 20000x20000 header followed by nothing: refused without allocating 1.6 GB.
    let mut bomb = encode_png(1, 1, &[0; 4], &[]);
    bomb[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    match compress(&bomb, &Options::default()) {
        Err(Error::LimitExceeded { what: LimitKind::Pixels, value: 400_000_000, limit: 100_000_000 }) => {}
        other => panic!("{other:?}"),
    }
    let small = encode_png(64, 64, &synthetic_rgba(64, 64, false), &[]);
    let limits = Limits { max_input_bytes: 100, ..Limits::default() };
    assert!(matches!(
        compress(&small, &Options { limits, ..Options::default() }),
        Err(Error::LimitExceeded { what: LimitKind::InputBytes, .. })
    ));
    let limits = Limits { max_dimension: 63, ..Limits::default() };
    assert!(matches!(
        compress(&small, &Options { limits, ..Options::default() }),
        Err(Error::LimitExceeded { what: LimitKind::Dimension, .. })
    ));
    assert_eq!(probe(&bomb).unwrap().width, 20_000);
}

#[test]
fn a_png_claiming_more_pixels_than_its_bytes_can_hold_is_corrupt() {
    let mut bomb = encode_png(1, 1, &[0; 4], &[]);
    bomb[16..20].copy_from_slice(&9_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&9_000u32.to_be_bytes());
    // CRC is now wrong too; either way the answer is a typed error, fast.
    assert!(matches!(compress(&bomb, &Options::default()), Err(Error::Corrupt { .. })));
}

#[test]
fn truncated_files_are_corrupt_not_panics() {
    let input = encode_png(64, 64, &synthetic_rgba(64, 64, false), &[]);
    for cut in [9, 20, 40, input.len() / 2, input.len() - 5] {
        match compress(&input[..cut], &Options::default()) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let jpeg = jpeg_from_pixels(64, 64);
    for cut in [3, 10, 100, jpeg.len() / 2] {
        match compress(&jpeg[..cut], &Options { mode: Mode::Lossless, ..Options::default() }) {
            Err(Error::Corrupt { .. }) | Ok(_) => {}
            other => panic!("JPEG cut at {cut}: {other:?}"),
        }
    }
}

fn jpeg_from_pixels(w: usize, h: usize) -> Vec<u8> {
    let rgb: Vec<u8> = synthetic_rgba(w as u32, h as u32, false).chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w, h);
    c.set_quality(95.0);
    let mut c = c.start_compress(Vec::new()).unwrap();
    c.write_scanlines(&rgb).unwrap();
    c.finish().unwrap()
}

#[test]
fn jpeg_lossless_keeps_pixels_and_lossy_shrinks_with_a_score() {
    let input = jpeg_from_pixels(256, 192);
    let lossless = compress(&input, &Options { mode: Mode::Lossless, ..Options::default() }).unwrap();
    assert_eq!(common::jpeg_samples(&lossless.data), common::jpeg_samples(&input));
    let lossy = compress(&input, &Options { quality: Some(Quality::new(0, 60)), score: true, ..Options::default() }).unwrap();
    assert!(lossy.output_size < lossless.output_size, "{} vs {}", lossy.output_size, lossless.output_size);
    assert_eq!(lossy.method, "jpeg-q60");
    assert!(lossy.quality_score.is_some_and(|s| s > 20.0), "{:?}", lossy.quality_score);
}

#[test]
fn options_parse_like_pngquant() {
    assert_eq!("65-80".parse::<Quality>().unwrap(), Quality::new(65, 80));
    assert_eq!("80".parse::<Quality>().unwrap(), Quality::new(0, 80));
    for bad in ["80-65", "101", "-", "a-b", "", "080", " 80", "+5"] {
        assert!(bad.parse::<Quality>().is_err(), "{bad}");
    }
    assert_eq!("LOSSLESS".parse::<Mode>().unwrap(), Mode::Lossless);
    assert!("fast".parse::<Mode>().is_err());
    assert_eq!("strip".parse::<MetadataPolicy>().unwrap(), MetadataPolicy::Strip);
    let bad_effort = Options { effort: 9, ..Options::default() };
    assert!(matches!(compress(&[], &bad_effort), Err(Error::InvalidOptions { .. })));
}

#[test]
fn cancelled_work_stops_at_the_next_stage() {
    let image = compressor_test_support::noisy_png(1500, 1500, 3);
    // Cancelled before it starts: nothing is decoded.
    let cancel = compressor_engine::Cancel::default();
    cancel.cancel();
    assert_eq!(compress(&image, &Options { cancel, ..Options::default() }).unwrap_err(), Error::Cancelled);
    assert_eq!(Error::Cancelled.code(), "cancelled");

    // Cancelled mid-search, from another thread: the call returns soon after, for each kind of
    // work (a target-quality search, quantization, a conversion to WebP).
    for options in [
        Options { target_quality: Some(90.0), ..Options::default() },
        Options { effort: 6, ..Options::default() },
        Options { format: compressor_engine::OutputFormat::To(Format::WebP), target_quality: Some(95.0), ..Options::default() },
    ] {
        let whole = std::time::Instant::now();
        compress(&image, &options).unwrap();
        let whole = whole.elapsed();
        let cancel = compressor_engine::Cancel::default();
        let started = std::time::Instant::now();
        let result = std::thread::scope(|s| {
            let canceller = cancel.clone();
            s.spawn(move || {
                std::thread::sleep(whole / 10);
                canceller.cancel();
            });
            compress(&image, &Options { cancel: cancel.clone(), ..options.clone() })
        });
        let took = started.elapsed();
        assert_eq!(result.unwrap_err(), Error::Cancelled, "{options:?}");
        assert!(took < whole / 2, "{options:?}: returned {took:?} after starting; the whole work takes {whole:?}");
    }
}
