//! What the fuzz targets share: the panic policy, the engine's invariants, and the small image
//! makers behind the seeds (`make-seeds`) and the metadata target.
//!
//! Every target checks invariants, not only "no panic"; a broken invariant panics, and libFuzzer
//! keeps the input as a crash.

pub mod images;
pub mod server;

use std::sync::Once;

use compressor_engine::{Error, Format, Limits, MetadataPolicy, Mode, Options, OutputFormat, Quality, Resize, decode_rgba16, probe};

/// Limits small enough that one input stays fast (and its memory bounded).
pub const LIMITS: Limits =
    Limits { max_pixels: 4_000_000, max_dimension: 16_384, max_input_bytes: 1 << 20, max_frames: 16, max_output_pixels: 4_000_000 };

/// libFuzzer's hook aborts on every panic, even one that is caught. mozjpeg reports corrupt input
/// by unwinding (the engine catches it: that is its documented way), so those are let through;
/// any other panic, caught or not, is a finding and aborts.
pub fn panic_policy() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_some_and(|l| l.file().contains("mozjpeg")) {
                return;
            }
            default(info);
            std::process::abort();
        }));
    });
}

/// The options that the first bytes of a fuzz input choose: mode, output format, quality,
/// metadata policy, effort 1, sometimes a resize, first frame, a score.
pub fn options_from(control: [u8; 3]) -> Options {
    let [a, b, c] = control;
    let format = match (a >> 1) & 0x0F {
        0..=5 => OutputFormat::Keep,
        6 => OutputFormat::Auto,
        7 | 8 => OutputFormat::To(Format::Png),
        9 | 10 => OutputFormat::To(Format::WebP),
        11 => OutputFormat::To(Format::Jpeg),
        12 | 13 => OutputFormat::To(Format::Gif),
        _ => OutputFormat::To(Format::Avif),
    };
    let metadata = match (a >> 5) & 3 {
        0 => MetadataPolicy::Strip,
        1 => MetadataPolicy::Keep,
        _ => MetadataPolicy::Safe,
    };
    let quality = (b <= 200).then(|| {
        let max = b % 101;
        Quality::new(max.saturating_sub(c % 32), max)
    });
    let resize = (c >= 0xF0).then(|| Resize { width: Some(u32::from(b % 64) + 1), height: None, ..Resize::default() });
    Options {
        mode: if a & 1 == 1 { Mode::Lossless } else { Mode::Lossy },
        quality,
        metadata,
        effort: 1,
        limits: LIMITS,
        score: a & 0x80 != 0 && c & 1 == 1,
        format,
        auto_formats: if format == OutputFormat::Auto { vec![Format::Png, Format::WebP, Format::Gif] } else { Vec::new() },
        first_frame: c & 2 == 2,
        resize,
        ..Options::default()
    }
}

/// Compresses `data` with options from its first three bytes (the rest is the image) and checks
/// the engine's promises about the answer.
pub fn compress_and_check(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let options = options_from([data[0], data[1], data[2]]);
    check_compress(&data[3..], &options);
}

/// Compresses `input` with `options`: a typed error that is not the engine's fault, or a result
/// that keeps every promise: never larger in the same format, the format asked for, decodable,
/// the size it reports, and (lossless) the input's very pixels.
pub fn check_compress(input: &[u8], options: &Options) -> Option<compressor_engine::Compressed> {
    let result = match compressor_engine::compress(input, options) {
        Ok(result) => result,
        Err(Error::Internal { detail }) => panic!("internal error on fuzz input: {detail}"),
        Err(_) => return None,
    };
    let info = probe(input).expect("an input that compressed probes");
    assert_eq!(result.input_size, input.len());
    assert_eq!(result.output_size, result.data.len());
    if result.format == info.format && result.resized_from.is_none() {
        assert!(
            result.data.len() <= input.len(),
            "{} output of {} bytes for {} input bytes",
            result.method,
            result.data.len(),
            input.len()
        );
    }
    if !result.changed {
        assert_eq!(result.data, input, "unchanged result with different bytes");
        return Some(result);
    }
    match options.format {
        OutputFormat::Keep => assert_eq!(result.format, info.format, "format keep changed the format"),
        OutputFormat::To(format) => assert_eq!(result.format, format, "asked for {format}"),
        OutputFormat::Auto => {}
    }
    let out = probe(&result.data).unwrap_or_else(|e| panic!("{} output does not probe: {e}", result.method));
    assert_eq!(out.format, result.format);
    let decoded = decode_rgba16(&result.data, &LIMITS).unwrap_or_else(|e| panic!("{} output does not decode: {e}", result.method));
    // The report's size is the stored one (before the EXIF orientation, which a kept format keeps).
    assert_eq!((out.width, out.height), (result.width, result.height), "{} output's size", result.method);
    if options.mode == Mode::Lossless && result.resized_from.is_none() {
        let source = decode_rgba16(input, &LIMITS).expect("an input that compressed decodes");
        let frames = if decoded.len() == source.len() { source.len() } else { 1 };
        assert!(decoded.len() == source.len() || options.first_frame || !is_animated_format(result.format), "frames lost");
        // As displayed (both turned upright): every policy keeps the picture as it is shown.
        for (i, (a, b)) in source.iter().zip(&decoded).take(frames).enumerate() {
            assert!(a == b, "lossless {} output: frame {i} differs from the input's", result.method);
        }
    }
    Some(result)
}

fn is_animated_format(format: Format) -> bool {
    matches!(format, Format::Gif | Format::WebP | Format::Png)
}
