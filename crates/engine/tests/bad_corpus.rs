//! Hostile input: every malformed, truncated and fuzzed file gives a typed error or a valid
//! output, within a time bound, and declared-huge images are refused by the limits.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::{corpus, files_recursive};
use compressor_engine::{Error, Limits, Mode, Options, compress};

/// Runs `compress` on a thread and fails if it panics or takes longer than `limit`.
fn compress_bounded(path: &Path, options: Options, limit: Duration) -> Result<compressor_engine::Compressed, Error> {
    let input = std::fs::read(path).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(compress(&input, &options));
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{}: no answer within {limit:?}", path.display()),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{}: compress panicked", path.display()),
    }
}

fn bad_files(corpus: &Path, folder_prefix: &str) -> Vec<PathBuf> {
    files_recursive(&corpus.join("bad"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "txt"))
        .filter(|p| p.strip_prefix(corpus.join("bad")).unwrap().to_string_lossy().starts_with(folder_prefix))
        .collect()
}

fn every_file_fails_cleanly(folder_prefix: &str) {
    let Some(corpus) = corpus() else { return };
    let files = bad_files(&corpus, folder_prefix);
    assert!(!files.is_empty(), "no bad files under {folder_prefix}");
    for path in &files {
        for mode in [Mode::Lossless, Mode::Lossy] {
            // Scores are off: they add time without touching the decoders under test.
            let options = Options { mode, score: false, ..Options::default() };
            if let Err(Error::Internal { detail }) = compress_bounded(path, options, Duration::from_secs(20)) {
                panic!("{} ({mode:?}): internal error for bad input: {detail}", path.display());
            }
        }
    }
}

#[test]
fn bad_png_files_fail_cleanly() {
    every_file_fails_cleanly("png");
}

#[test]
fn bad_jpeg_files_fail_cleanly() {
    every_file_fails_cleanly("jpeg");
}

#[test]
fn bad_files_of_other_formats_fail_cleanly() {
    for prefix in ["gif", "webp", "avif", "other_formats"] {
        every_file_fails_cleanly(prefix);
    }
}

/// BOMBS.txt lists files declaring >= 50 megapixels or a side >= 30000 px. With limits just
/// under those, each is refused from its header.
#[test]
fn declared_bombs_are_refused_by_the_limits() {
    let Some(corpus) = corpus() else { return };
    let list = std::fs::read_to_string(corpus.join("bad/BOMBS.txt")).unwrap();
    let limits = Limits { max_pixels: 49_999_999, max_dimension: 29_999, ..Limits::default() };
    let (mut by_limits, mut by_header) = (0, 0);
    for line in list.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let file = cols.next().unwrap();
        let declared_pixels: u64 = cols.next().unwrap().parse().unwrap();
        let detected = cols.nth(1).unwrap_or("");
        let path = corpus.join("bad").join(file);
        let result = compress_bounded(&path, Options { limits, ..Options::default() }, Duration::from_secs(5));
        match (detected.split(' ').next(), result) {
            // Bombs hidden in ancillary data (a 1x1 PNG with a huge zTXt) are not dimension
            // bombs: within the time bound, a valid output or a typed error is the right answer.
            (_, Ok(_) | Err(Error::Corrupt { .. })) if declared_pixels <= limits.max_pixels => by_header += 1,
            // A GIF frame rectangle far outside a small canvas: the decoder clips it to the canvas.
            (_, Ok(r)) if detected.contains("frame-extent") && u64::from(r.width) * u64::from(r.height) <= limits.max_pixels => {
                by_header += 1
            }
            (Some("PNG" | "JPEG" | "GIF" | "WEBP" | "BMP" | "TIFF"), Err(Error::LimitExceeded { .. })) => by_limits += 1,
            // Some fuzzed files hold a second, contradicting IHDR (the huge size is in that one): corrupt.
            (Some("PNG" | "JPEG" | "GIF" | "WEBP" | "BMP" | "TIFF"), Err(Error::Corrupt { .. })) => by_header += 1,
            // A format the engine does not read (ICO) is refused before any limit applies; so is a
            // TIFF layout the decoder does not support.
            (Some("ICO" | "TIFF"), Err(Error::UnsupportedFormat { .. })) => by_header += 1,
            (_, other) => panic!("{file} ({detected}): expected a refusal by the limits, got {other:?}"),
        }
    }
    assert!(by_limits > 200, "only {by_limits} bombs refused by the limits ({by_header} by their headers)");
}
