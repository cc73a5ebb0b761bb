//! The memory estimate callers admit work by: from the header, failing as `compress` would, and
//! above what the engine really holds (the measured table is `scripts/memory-table.py`).

use compressor_engine::{
    Error, Fit, Format, LimitKind, Mode, Options, OutputFormat, Resize, estimate_peak_bytes, estimate_variants_peak_bytes,
};
use compressor_test_support::{bomb_png, noisy_png};

fn estimate(data: &[u8], options: &Options) -> u64 {
    estimate_peak_bytes(data, options).unwrap()
}

#[test]
fn the_estimate_follows_pixels_path_and_score() {
    let small = noisy_png(256, 256, 1);
    let large = noisy_png(1024, 1024, 1);
    let lossy = Options::default();
    assert!(estimate(&large, &lossy) > estimate(&small, &lossy) + 16 * (1024 * 1024 - 256 * 256), "per-pixel cost");
    let scored = Options { score: true, ..Options::default() };
    let score_cost = estimate(&large, &scored) - estimate(&large, &lossy);
    assert!(score_cost > 8 * 1024 * 1024, "a score holds the result decoded and its tiles: {score_cost}");
    assert!(score_cost < 100 * 1024 * 1024, "a score works in tiles, not on whole-image float planes: {score_cost}");
    let avif = Options { format: OutputFormat::To(Format::Avif), ..Options::default() };
    let lossless = Options { mode: Mode::Lossless, ..Options::default() };
    assert!(estimate(&large, &avif) > estimate(&large, &lossless), "rav1e holds more than oxipng");
    let auto = Options { format: OutputFormat::Auto, ..Options::default() };
    assert!(estimate(&large, &auto) >= estimate(&large, &avif), "auto may try AVIF");

    // The real peak of this compress is well below the estimate (the process's peak RSS grows by
    // less than the estimate; measured here rather than trusted).
    let before = peak_rss();
    compressor_engine::compress(&large, &avif).unwrap();
    let grown = peak_rss().saturating_sub(before);
    assert!(grown < estimate(&large, &avif), "grew {grown} B, estimate {}", estimate(&large, &avif));
}

#[test]
fn header_limits_and_bad_input_fail_as_compress_does() {
    let bomb = bomb_png(60_000, 60_000);
    let options = Options::default();
    assert!(matches!(estimate_peak_bytes(&bomb, &options), Err(Error::LimitExceeded { .. })));
    assert!(
        matches!(estimate_peak_bytes(b"not an image", &options), Err(Error::UnsupportedFormat { .. })),
        "{:?}",
        estimate_peak_bytes(b"not an image", &options)
    );
    let bad_effort = Options { effort: 9, ..Options::default() };
    assert!(matches!(estimate_peak_bytes(&noisy_png(8, 8, 1), &bad_effort), Err(Error::InvalidOptions { .. })));
}

#[test]
fn every_frame_of_an_animation_counts() {
    let frames = |n: usize| {
        let mut out = Vec::new();
        let mut encoder = gif::Encoder::new(&mut out, 512, 512, &[0, 0, 0, 255, 255, 255]).unwrap();
        for i in 0..n {
            let pixels: Vec<u8> = (0..512 * 512).map(|p| ((p + i) % 2) as u8).collect();
            encoder.write_frame(&gif::Frame { width: 512, height: 512, buffer: pixels.into(), ..Default::default() }).unwrap();
        }
        drop(encoder);
        out
    };
    let (one, ten) = (frames(1), frames(10));
    let options = Options::default();
    assert!(
        estimate(&ten, &options) > 9 * (estimate(&one, &options) - 16 * 1024 * 1024),
        "{} vs {}",
        estimate(&ten, &options),
        estimate(&one, &options)
    );
}

/// This process's peak resident memory so far, in bytes.
#[test]
fn an_enlargement_counts_the_output_it_makes_and_variants_their_largest() {
    // A 10x10 image enlarged to 3000 px wide is 3000x3000: both sides grow, not only the given one.
    let tiny = noisy_png(10, 10, 1);
    let wide = |width: u32| Resize { width: Some(width), height: None, fit: Fit::Scale, enlarge: true };
    let enlarged = estimate(&tiny, &Options { resize: Some(wide(3000)), ..Options::default() });
    assert!(enlarged > 8 * 3000 * 3000, "at least the resize's 16-bit copy of 9 MP: {enlarged}");
    let kept = estimate(&tiny, &Options { resize: Some(Resize { enlarge: false, ..wide(3000) }), ..Options::default() });
    assert!(kept < enlarged / 10, "without enlarge the output stays 10x10: {kept}");
    // Variants: the dearest one (they are made one after another), whatever the order of widths.
    let variants = estimate_variants_peak_bytes(&tiny, &[3000, 20], true, &Options::default()).unwrap();
    assert!(variants >= enlarged, "{variants} < {enlarged}");
    assert!(estimate_variants_peak_bytes(&tiny, &[20, 40], true, &Options::default()).unwrap() < enlarged / 10);
    // An output over the pixel limit is refused as such, by the estimate too (not as too dear).
    let over_limit = |e: &Error| matches!(e, Error::LimitExceeded { what: LimitKind::Pixels, .. });
    let refused = compressor_engine::variants(&tiny, &[600, 65_000], true, &Options::default()).unwrap_err();
    assert!(over_limit(&refused), "{refused:?}");
    let refused = estimate_variants_peak_bytes(&tiny, &[600, 65_000], true, &Options::default()).unwrap_err();
    assert!(over_limit(&refused), "{refused:?}");
    let refused = estimate_peak_bytes(&tiny, &Options { resize: Some(wide(65_000)), ..Options::default() }).unwrap_err();
    assert!(over_limit(&refused), "{refused:?}");
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A 16-bit image decodes to RGBA16: every copy of it is twice the bytes (before, a 12 MP 16-bit
/// TIFF's peak RSS was 632 MiB against an estimate of 566 MiB).
#[test]
fn sixteen_bit_samples_count_twice() {
    use tiff::encoder::{TiffEncoder, colortype};
    let (width, height) = (512u32, 512u32);
    let samples = (width * height * 3) as usize;
    let tiff = |deep: bool| {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut encoder = TiffEncoder::new(&mut out).unwrap();
        if deep {
            encoder.write_image::<colortype::RGB16>(width, height, &vec![40_000u16; samples]).unwrap();
        } else {
            encoder.write_image::<colortype::RGB8>(width, height, &vec![160u8; samples]).unwrap();
        }
        out.into_inner()
    };
    let options = Options::default();
    let (shallow, deep) = (estimate(&tiff(false), &options), estimate(&tiff(true), &options));
    assert!(deep > shallow + 12 * u64::from(width * height), "16-bit {deep} B, 8-bit {shallow} B");
}
