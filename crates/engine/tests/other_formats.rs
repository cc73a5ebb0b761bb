//! TIFF, BMP and HEIC/HEIF input, on the corpus's real files: each converts (TIFF/BMP to PNG,
//! HEIC to JPEG/WebP/AVIF under `keep`), its pixels match an independent decoder (Pillow for
//! TIFF/BMP through `test-support/scripts/pillow_decode.py`, libheif's `heif-convert` for HEIC),
//! orientation is applied, ICC carried, the limits refuse from the header, and malformed files
//! give typed errors.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{corpus, files, png_rgba16};
use compressor_engine::{Error, Format, LimitKind, Limits, MetadataPolicy, Mode, Options, OutputFormat, compress, probe};

/// 16-bit samples to 8 bits, rounding as the engine does.
fn to8(samples: &[u16]) -> Vec<u8> {
    samples.iter().map(|&s| ((u32::from(s) * 255 + 32895) >> 16) as u8).collect()
}

/// RGBA8 of a PNG (any bit depth) and its size.
fn png_rgba8(data: &[u8]) -> (u32, u32, Vec<u8>) {
    let (w, h, samples) = png_rgba16(data);
    (w, h, to8(&samples))
}

/// Largest per-sample difference and the mean absolute difference, over RGB of opaque-ish
/// pixels and alpha everywhere (colour under full transparency is not an image's content).
fn differences(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let (mut max, mut sum, mut n) = (0u8, 0u64, 0u64);
    for (p, q) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        let channels = if p[3] == 0 && q[3] == 0 { 3..4 } else { 0..4 };
        for c in channels {
            let d = p[c].abs_diff(q[c]);
            max = max.max(d);
            sum += u64::from(d);
            n += 1;
        }
    }
    (max, sum as f64 / n.max(1) as f64)
}

fn lossless_png() -> Options {
    Options { mode: Mode::Lossless, format: OutputFormat::To(Format::Png), effort: 1, score: false, ..Options::default() }
}

/// Pillow's decodings of `paths` into `dir`: file name → Pillow's mode (absent where Pillow fails).
fn pillow(paths: &[PathBuf], dir: &Path) -> HashMap<String, String> {
    let script = compressor_test_support::repo_root().join("crates/test-support/scripts/pillow_decode.py");
    let output = Command::new("python3").arg(script).arg(dir).args(paths).output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && !stdout.is_empty(),
        "Pillow helper failed (pip install pillow): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let (name, mode) = (cols.next()?, cols.next()?);
            (mode != "ERROR").then(|| (name.to_owned(), mode.to_owned()))
        })
        .collect()
}

/// Corpus TIFFs the engine cannot read, each with the reason (a typed error is still required);
/// every other file must convert and match Pillow.
const TIFF_GAPS: &[(&str, &str)] = &[
    ("pillow__lab-green.tif", "CIE L*a*b*: no Lab to RGB conversion"),
    ("pillow__lab-red.tif", "CIE L*a*b*: no Lab to RGB conversion"),
    ("pillow__hopper_lzma.tif", "LZMA compression: not in the tiff crate"),
    ("pillow__hopper_unknown_pixel_mode.tif", "a sample layout no decoder here reads (Pillow neither)"),
    ("pillow__old-style-jpeg-compression-no-samplesperpixel.tif", "old-style JPEG (compression 6): not in the tiff crate"),
    ("pillow__10ct_32bit_128.tiff", "32-bit float grey without a PhotometricInterpretation the crate accepts"),
    ("pillow__8bit.s.tif", "signed 8-bit samples: not converted"),
    ("pillow__16bit.s.tif", "signed 16-bit samples: not converted"),
    ("pillow__compression.tif", "CCITT modified Huffman (compression 2): not in the tiff crate"),
    ("pillow__g4-fillorder-test.tif", "FillOrder 2 (bit-reversed bytes): not in the tiff crate"),
    ("pillow__multipage_single_frame_loop.tiff", "its IFD list loops back on itself: the crate refuses it (a typed error)"),
];

/// Files that decode but whose pixels are known to differ from Pillow's, with the reason; they
/// are not compared.
const DIFFERENT: &[(&str, &str)] = &[
    ("bmpsuite__q_pal4rletrns.bmp", "RLE with delta skips: image-rs differs from Pillow and ffmpeg (which agree) on 416 defined pixels"),
    ("bmpsuite__q_pal8rletrns.bmp", "RLE with delta skips: as q_pal4rletrns"),
];

/// Corpus BMPs image-rs's decoder refuses (all from bmpsuite's "questionable" set), with the reason.
const BMP_GAPS: &[(&str, &str)] = &[
    ("bmpsuite__q_pal8oversizepal.bmp", "a palette of 300 entries for 8 bits"),
    ("bmpsuite__q_rgba32abf.bmp", "compression 6 (ALPHABITFIELDS)"),
];

/// Compares each corpus file's lossless PNG with Pillow's decoding: exact for 8-bit modes,
/// within 1 (Pillow truncates 16-bit samples to 8 bits, the engine rounds) for 16-bit ones,
/// and by mean difference for JPEG-compressed, CMYK and premultiplied files, whose conversions
/// to RGB differ between implementations.
fn matches_pillow(folder: &str, extensions: &[&str], gaps: &[(&str, &str)]) {
    let Some(corpus) = corpus() else { return };
    let paths = files(&corpus.join(folder), extensions);
    assert!(!paths.is_empty(), "no files in {folder}");
    let dir = tempfile::tempdir().unwrap();
    let modes = pillow(&paths, dir.path());
    let (mut compared, mut failures) = (0, Vec::new());
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(path).unwrap();
        let result = compress(&input, &lossless_png());
        let gap = gaps.iter().find(|(g, _)| *g == name);
        let out = match (result, gap) {
            (Ok(out), _) => out,
            (Err(Error::Internal { detail }), _) => panic!("{name}: internal error {detail}"),
            (Err(e), Some((_, why))) => {
                eprintln!("{name}: known gap ({why}): {e}");
                continue;
            }
            (Err(e), None) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        assert_eq!(out.format, Format::Png, "{name}");
        let (w, h, ours) = png_rgba8(&out.data);
        assert_eq!((w, h), (out.width, out.height), "{name}");
        if let Some((_, why)) = DIFFERENT.iter().find(|(d, _)| *d == name) {
            eprintln!("{name}: {w}x{h}, not compared: {why}");
            continue;
        }
        let Some(mode) = modes.get(&name) else {
            eprintln!("{name}: {w}x{h}, Pillow cannot decode it; not compared");
            continue;
        };
        let (pw, ph, mut theirs) = png_rgba8(&std::fs::read(dir.path().join(format!("{name}.png"))).unwrap());
        if name.ends_with(".bmp") && !mode.contains('A') {
            // Pillow ignores BMP alpha bit fields (it reads those files as RGB): alpha is not compared.
            theirs.chunks_exact_mut(4).zip(ours.chunks_exact(4)).for_each(|(t, o)| t[3] = o[3]);
        }
        assert_eq!((w, h), (pw, ph), "{name}: size (orientation) differs from Pillow's");
        let lower = name.to_lowercase();
        // RLE "delta" skips leave pixels the file does not define: transparent here, index 0 in
        // Pillow. Only the defined (opaque) pixels are compared.
        let theirs = if lower.contains("rletrns") {
            theirs
                .chunks_exact(4)
                .zip(ours.chunks_exact(4))
                .flat_map(|(t, o)| if o[3] == 0 { [0, 0, 0, 0] } else { [t[0], t[1], t[2], t[3]] })
                .collect()
        } else {
            theirs
        };
        let (max, mean) = differences(&ours, &theirs);
        // Where a conversion has a free choice the decoders differ: JPEG's IDCT and upsampling, the
        // CMYK and YCbCr formulas, palette+alpha. By at most 1 of 255 where one rounds and the
        // other truncates: 16-bit samples, 5/6-bit BMP channels, premultiplied alpha.
        let approximate =
            lower.contains("jpeg") || lower.contains("jpg") || matches!(mode.as_str(), "CMYK" | "YCbCr" | "PA") || name.contains("RGBa");
        let rounding = matches!(mode.as_str(), "I;16" | "I;16B" | "I" | "F" | "RGBA" | "LA")
            || lower.contains("16")
            || lower.contains("565")
            || lower.contains("r5_");
        eprintln!("{name}: {mode} {w}x{h} max {max} mean {mean:.4}");
        let fits = if approximate {
            mean < 2.0
        } else if rounding {
            max <= 1
        } else {
            max == 0
        };
        if !fits {
            failures.push(format!("{name} ({mode}): max difference {max}, mean {mean:.4} from Pillow"));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "files that failed or differ from Pillow:\n{}", failures.join("\n"));
    assert!(compared * 2 > paths.len(), "only {compared} of {} compared with Pillow", paths.len());
}

#[test]
fn tiff_corpus_matches_pillow() {
    matches_pillow("other/tiff", &["tif", "tiff"], TIFF_GAPS);
}

#[test]
fn bmp_corpus_matches_pillow() {
    matches_pillow("other/bmp", &["bmp"], BMP_GAPS);
}

/// Under `keep`, a TIFF or BMP becomes PNG, and the report says why.
#[test]
fn tiff_and_bmp_are_kept_as_png() {
    let Some(corpus) = corpus() else { return };
    for file in ["other/tiff/pillow__hopper_lzw.tif", "other/bmp/wuffs__hibiscus.primitive.bmp"] {
        let input = std::fs::read(corpus.join(file)).unwrap();
        for mode in [Mode::Lossless, Mode::Lossy] {
            let out = compress(&input, &Options { mode, ..Options::default() }).unwrap();
            assert_eq!(out.format, Format::Png, "{file} {mode:?}");
            assert!(out.notes.iter().any(|n| n.contains("is not written: converted to png")), "{file}: {:?}", out.notes);
            png_rgba8(&out.data);
        }
    }
}

/// `auto` on a TIFF picks among WebP, AVIF and PNG (the input itself is no candidate).
#[test]
fn auto_on_tiff_never_returns_tiff() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("other/tiff/pillow__hopper.tif")).unwrap();
    let out = compress(&input, &Options { format: OutputFormat::Auto, ..Options::default() }).unwrap();
    assert!(matches!(out.format, Format::WebP | Format::Avif | Format::Png), "{:?}", out.format);
    assert!(out.changed);
}

/// A multi-page TIFF gives its first page, with a note.
#[test]
fn multi_page_tiff_gives_the_first_page_with_a_note() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("other/tiff/pillow__multipage-mmap.tiff")).unwrap();
    let out = compress(&input, &lossless_png()).unwrap();
    assert!(out.notes.iter().any(|n| n.contains("first page")), "{:?}", out.notes);
}

/// The TIFF ICC profile reaches the PNG (iCCP) byte for byte under `keep`; it says sRGB, so
/// `safe` drops it.
#[test]
fn tiff_icc_profile_is_carried() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("other/tiff/pillow__hopper.iccprofile.tif")).unwrap();
    assert_eq!(png_icc(&compress(&input, &lossless_png()).unwrap().data), None, "an sRGB profile under safe");
    let out = compress(&input, &Options { metadata: MetadataPolicy::Keep, ..lossless_png() }).unwrap();
    let icc = png_icc(&out.data).expect("iCCP in the PNG");
    assert!(icc.len() > 100);
    assert!(find(&input, &icc), "the PNG's profile is not the TIFF's");
}

fn png_icc(data: &[u8]) -> Option<Vec<u8>> {
    let decoder = png::Decoder::new(std::io::Cursor::new(data));
    let reader = decoder.read_info().unwrap();
    reader.info().icc_profile.as_ref().map(|p| p.to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The header's size is held to `max_pixels` before decoding, for every new format.
#[test]
fn limits_refuse_tiff_bmp_and_heic_from_the_header() {
    let Some(corpus) = corpus() else { return };
    for file in ["other/tiff/pillow__hopper.tif", "other/bmp/wuffs__hibiscus.primitive.bmp", "heic/libheif__with-alpha-512x512.heic"] {
        let input = std::fs::read(corpus.join(file)).unwrap();
        let info = probe(&input).unwrap();
        let limit = u64::from(info.width) * u64::from(info.height) - 1;
        let options = Options { limits: Limits { max_pixels: limit, ..Limits::default() }, ..Options::default() };
        match compress(&input, &options) {
            Err(Error::LimitExceeded { what: LimitKind::Pixels, value, .. }) => assert_eq!(value, limit + 1, "{file}"),
            other => panic!("{file}: expected max_pixels refusal, got {other:?}"),
        }
    }
}

/// Every malformed TIFF/BMP (and ICO/ICNS, which the engine does not read) gives a typed error
/// (or, for damage a decoder tolerates, a valid PNG), never a panic or an internal error.
#[test]
fn malformed_other_formats_give_typed_errors() {
    let Some(corpus) = corpus() else { return };
    let paths = files(&corpus.join("bad/other_formats"), &["tif", "tiff", "bmp", "ico", "icns"]);
    assert!(paths.len() >= 30, "{}", paths.len());
    let (mut errors, mut decoded) = (0, 0);
    for path in &paths {
        let input = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let options = Options { limits: Limits { max_pixels: 50_000_000, ..Limits::default() }, ..lossless_png() };
        match compress(&input, &options) {
            Ok(out) => {
                png_rgba8(&out.data);
                decoded += 1;
                eprintln!("{name}: decoded {}x{}", out.width, out.height);
            }
            Err(Error::Internal { detail }) => panic!("{name}: internal error {detail}"),
            Err(e) => {
                errors += 1;
                eprintln!("{name}: {} {e}", e.code());
            }
        }
    }
    assert!(errors > decoded, "{errors} errors, {decoded} decoded");
}

// ---- HEIC/HEIF ---------------------------------------------------------------------------

/// libheif's own converter, the reference for HEIC pixels: RGBA8 and size.
fn heif_convert(path: &Path, dir: &Path) -> (u32, u32, Vec<u8>) {
    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    let out = dir.join(format!("{stem}.png"));
    let status = Command::new("heif-convert").arg(path).arg(&out).output().expect("heif-convert (apt install libheif-examples)");
    assert!(status.status.success(), "heif-convert {}: {}", path.display(), String::from_utf8_lossy(&status.stderr));
    // A file of several top-level images is written as NAME-1.png, NAME-2.png, … (the first is
    // the primary in the corpus's files).
    let first = dir.join(format!("{stem}-1.png"));
    png_rgba8(&std::fs::read(if out.exists() { out } else { first }).unwrap())
}

/// HEIC files of the corpus libheif 1.15 cannot decode, with the reason.
const HEIC_GAPS: &[(&str, &str)] = &[(
    "CrabbyAvif__yuv420_image_with_yuv400_gainmap.heic",
    "libheif 1.15 refuses its tmap item ('Metadata not correctly assigned to image'); 1.18+ decodes it",
)];

fn heic_files() -> Vec<PathBuf> {
    let Some(corpus) = corpus() else { return vec![] };
    files(&corpus.join("heic"), &["heic", "heif", "avif"])
}

/// Each HEIC/HEIF decodes to the pixels heif-convert produces (same library, so within 1 of
/// 255 per sample: 10/12-bit images are scaled to 8 bits by both), at its displayed size; the
/// AVIF grids of the folder (decoded by compressor-avif) within a mean difference of 1.5.
#[test]
fn heic_corpus_matches_heif_convert() {
    let paths = heic_files();
    if paths.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(path).unwrap();
        let result = compress(&input, &lossless_png());
        if let Some((_, why)) = HEIC_GAPS.iter().find(|(g, _)| *g == name) {
            match result {
                Err(Error::Internal { detail }) => panic!("{name}: internal error {detail}"),
                Err(e) => eprintln!("{name}: known gap ({why}): {e}"),
                Ok(_) => panic!("{name}: listed as a gap but decodes now; remove it from HEIC_GAPS"),
            }
            continue;
        }
        let detected = probe(&input).unwrap().format;
        let out = result.unwrap_or_else(|e| panic!("{name} ({detected}): {e}"));
        let (w, h, ours) = png_rgba8(&out.data);
        let (rw, rh, theirs) = heif_convert(path, dir.path());
        assert_eq!((w, h), (rw, rh), "{name}: size differs from heif-convert's");
        let (max, mean) = differences(&ours, &theirs);
        eprintln!("{name} ({detected}): {w}x{h} max {max} mean {mean:.4}");
        if detected == Format::Heic {
            // The same library: the same pixels, but for rounding 10/12-bit samples to 8 bits.
            assert!(max <= 1, "{name}: max difference {max} (mean {mean}) from heif-convert");
        } else {
            // AVIF (grids): compressor-avif's own YUV conversion (bilinear chroma) against libheif's.
            assert!(mean < 1.5, "{name}: mean difference {mean} from heif-convert");
        }
        compared += 1;
    }
    assert!(compared >= 10, "{compared}");
}

/// Under `keep`, a HEIC becomes the smallest of JPEG, WebP and AVIF, and the report says so.
#[test]
fn heic_kept_becomes_jpeg_webp_or_avif() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("heic/libheif-rs__test.heic")).unwrap();
    assert_eq!(probe(&input).unwrap().format, Format::Heic);
    let out = compress(&input, &Options::default()).unwrap();
    assert!(matches!(out.format, Format::Jpeg | Format::WebP | Format::Avif), "{:?}", out.format);
    assert!(out.notes.iter().any(|n| n.contains("heic is not written")), "{:?}", out.notes);
    let formats: Vec<Format> = out.candidates.iter().map(|c| c.format).collect();
    assert_eq!(formats.len(), 3, "{formats:?}");
    let smallest = out.candidates.iter().map(|c| c.size).min().unwrap();
    assert_eq!(out.output_size, smallest);
    assert_eq!((out.width, out.height), (1652, 1791));
}

/// A phone photo stored rotated (irot 270, EXIF orientation 6) comes out upright, once.
#[test]
fn heic_rotation_is_applied_once() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("heic/pillow_heif__arrow.heic")).unwrap();
    assert_eq!(probe(&input).unwrap(), compressor_engine::ImageInfo { format: Format::Heic, width: 3024, height: 4032 });
    let out = compress(&input, &Options { format: OutputFormat::To(Format::Jpeg), ..Options::default() }).unwrap();
    assert_eq!((out.width, out.height), (3024, 4032));
    // The JPEG carries no orientation that would turn it again.
    assert_ne!(common::jpeg_orientation(&out.data).unwrap_or(1), 6);
}

/// ICC profiles (here an sRGB one, on a 512x512 image with alpha) reach the PNG and the JPEG
/// under `keep`.
#[test]
fn heic_icc_and_alpha_are_carried() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("heic/libheif__with-alpha-512x512.heic")).unwrap();
    let keep = Options { metadata: MetadataPolicy::Keep, ..Options::default() };
    let out = compress(&input, &Options { metadata: MetadataPolicy::Keep, ..lossless_png() }).unwrap();
    let icc = png_icc(&out.data).expect("iCCP");
    assert!(find(&input, &icc), "profile differs from the file's");
    let (_, _, rgba) = png_rgba8(&out.data);
    assert!(rgba.chunks_exact(4).any(|p| p[3] == 0) && rgba.chunks_exact(4).any(|p| p[3] == 255));
    let jpeg = compress(&input, &Options { format: OutputFormat::To(Format::Jpeg), ..keep }).unwrap();
    let app2: Vec<u8> =
        common::jpeg_segments(&jpeg.data).into_iter().filter(|(m, _)| *m == 0xE2).flat_map(|(_, p)| p[14..].to_vec()).collect();
    assert_eq!(app2, icc);
}

/// A 10-bit HEIC keeps its depth in a 16-bit PNG.
#[test]
fn ten_bit_heic_is_kept_as_16_bit_png() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("heic/pillow_heif__RGBA_10__128x128.heif")).unwrap();
    let out = compress(&input, &lossless_png()).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(&out.data));
    let reader = decoder.read_info().unwrap();
    assert_eq!(reader.info().bit_depth, png::BitDepth::Sixteen);
}

/// A HEIC made here by libheif's encoder from known pixels decodes close to them.
#[test]
fn generated_heic_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (96, 64);
    let rgba = common::synthetic_rgba(w, h, false);
    std::fs::write(dir.path().join("in.png"), common::encode_png(w, h, &rgba, &[])).unwrap();
    let heic = dir.path().join("out.heic");
    let status = Command::new("heif-enc")
        .args(["-q", "90", "-o"])
        .arg(&heic)
        .arg(dir.path().join("in.png"))
        .output()
        .expect("heif-enc (apt install libheif-examples)");
    assert!(status.status.success(), "heif-enc: {}", String::from_utf8_lossy(&status.stderr));
    let input = std::fs::read(&heic).unwrap();
    assert_eq!(probe(&input).unwrap().format, Format::Heic);
    let out = compress(&input, &lossless_png()).unwrap();
    let (ow, oh, ours) = png_rgba8(&out.data);
    assert_eq!((ow, oh), (w, h));
    let (_, mean) = differences(&ours, &rgba);
    assert!(mean < 6.0, "mean difference {mean} from the encoded pixels");
}

/// Truncated HEIC files give typed errors, never a panic or a hang.
#[test]
fn truncated_heic_gives_typed_errors() {
    let Some(corpus) = corpus() else { return };
    let input = std::fs::read(corpus.join("heic/libheif-rs__test.heic")).unwrap();
    for cut in [12, 100, 1000, 5000, input.len() / 2, input.len() - 10] {
        match compress(&input[..cut], &lossless_png()) {
            Err(Error::Internal { detail }) => panic!("cut at {cut}: internal error {detail}"),
            Err(_) => {}
            Ok(out) => panic!("cut at {cut}: decoded {}x{}", out.width, out.height),
        }
    }
}
