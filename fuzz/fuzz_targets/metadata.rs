//! EXIF and PNG chunk handling under each metadata policy: a made PNG or JPEG carries a fuzzed
//! EXIF block (with a GPS-like marker) and a text comment; under `safe` and `strip` neither marker
//! may leave the engine, and a lossless result shows the same upright pixels as the input (so the
//! orientation survives whatever the policy does with the EXIF).
#![no_main]

use std::sync::OnceLock;

use compressor_engine::{Format, MetadataPolicy, Mode, Options, OutputFormat};
use compressor_fuzz::{LIMITS, check_compress, images};

const GPS: &[u8] = b"GPSSECRET-0123";
const TEXT: &[u8] = b"TEXTSECRET-4567";

fn base_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| images::rgba_png(12, 6))
}

fn base_jpeg() -> &'static [u8] {
    static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
    JPEG.get_or_init(|| images::convert(base_png(), Format::Jpeg, false))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    compressor_fuzz::panic_policy();
    let Some((&control, exif)) = data.split_first() else { return };
    let exif = [exif, GPS].concat();
    let text = [b"Comment\0".as_slice(), TEXT].concat();
    let jpeg = control & 1 == 1;
    let input = if jpeg {
        let with_exif = images::jpeg_with_exif(base_jpeg(), &exif);
        // A COM segment with the comment, right after SOI.
        let len = (text.len() as u16 + 2).to_be_bytes();
        [&with_exif[..2], &[0xFF, 0xFE, len[0], len[1]][..], &text[..], &with_exif[2..]].concat()
    } else {
        images::png(12, 6, png::ColorType::Rgba, png::BitDepth::Eight, 1, &[(b"eXIf", &exif), (b"tEXt", &text)])
    };
    let metadata = match (control >> 1) & 3 {
        0 => MetadataPolicy::Strip,
        1 => MetadataPolicy::Keep,
        _ => MetadataPolicy::Safe,
    };
    let format = match (control >> 3) & 3 {
        0 | 1 => OutputFormat::Keep,
        2 => OutputFormat::To(Format::WebP),
        _ => OutputFormat::To(if jpeg { Format::Png } else { Format::Jpeg }),
    };
    let mode = if control & 0x20 != 0 && format != OutputFormat::To(Format::Jpeg) { Mode::Lossless } else { Mode::Lossy };
    let options = Options { mode, metadata, format, effort: 1, limits: LIMITS, ..Options::default() };
    let Some(result) = check_compress(&input, &options) else { return };
    if metadata != MetadataPolicy::Keep && result.changed {
        assert!(!contains(&result.data, GPS), "EXIF left the engine under {metadata:?}");
        assert!(!contains(&result.data, TEXT), "a text comment left the engine under {metadata:?}");
    }
});
