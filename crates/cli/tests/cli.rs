//! The `compressor compress` command, run as a real process on files it writes itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn compressor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compressor"))
}

/// A noisy gradient PNG with alpha, stored with fast deflate so there is something to gain.
fn write_png(path: &Path, w: u32, h: u32) -> Vec<u8> {
    let mut rgba = Vec::new();
    let mut seed = 12345u32;
    for y in 0..h {
        for x in 0..w {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (seed >> 16) as u8 % 3;
            rgba.extend_from_slice(&[(x * 255 / w) as u8 + n, (y * 255 / h) as u8, n * 8, 255 - (x * 100 / w) as u8]);
        }
    }
    let out = compressor_test_support::encode_png(w, h, &rgba, &[]);
    std::fs::write(path, &out).unwrap();
    out
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run compressor")
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

#[test]
fn writes_a_min_file_beside_the_input_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shot.png");
    let original = write_png(&input, 120, 80);
    let out = run(compressor().arg("compress").arg(&input).arg("--json").arg("--score"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let min = dir.path().join("shot.min.png");
    let written = std::fs::read(&min).unwrap();
    assert!(written.len() < original.len());
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["output"], min.display().to_string());
    assert_eq!(r["input_size"], original.len());
    assert_eq!(r["output_size"], written.len());
    assert_eq!(r["format"], "png");
    assert_eq!(r["changed"], true);
    assert!(r["quality_score"].as_f64().is_some(), "{r}");
    assert!(r["error"].is_null());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("% saved"), "human summary on stderr: {stderr}");
}

#[test]
fn reads_stdin_and_writes_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    let original = write_png(&input, 64, 64);
    let out = run(compressor().args(["compress", "-", "-o", "-", "--mode", "lossless"]).stdin(std::fs::File::open(&input).unwrap()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.starts_with(b"\x89PNG"));
    assert!(out.stdout.len() < original.len());
}

#[test]
fn a_failing_file_does_not_stop_the_others_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    write_png(&good, 50, 50);
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR broken").unwrap();
    let missing = dir.path().join("missing.png");
    let out = run(compressor().arg("compress").args([&bad, &missing, &good]).arg("--json"));
    assert_eq!(out.status.code(), Some(1));
    assert!(dir.path().join("good.min.png").exists());
    assert!(!dir.path().join("bad.min.png").exists(), "no output for a failed file");
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0]["error"]["code"], "corrupt_image");
    assert_eq!(reports[1]["error"]["code"], "io");
    assert!(reports[2]["error"].is_null());
    // Nothing half-written is left behind.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".compressor-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.png");
    write_png(&a, 8, 8);
    assert_eq!(run(compressor().args(["compress", "--mode", "fast"]).arg(&a)).status.code(), Some(2));
    assert_eq!(run(compressor().args(["compress", "-q", "90-10"]).arg(&a)).status.code(), Some(2));
    assert_eq!(run(compressor().args(["compress", "-o", "x.png"]).arg(&a).arg(&a)).status.code(), Some(2));
    assert_eq!(run(compressor().arg("compress")).status.code(), Some(2));
}

#[test]
fn in_place_replaces_only_when_smaller_and_out_dir_keeps_names() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("p.png");
    let original = write_png(&input, 90, 60);
    let out = run(compressor().args(["compress", "--in-place", "-m", "lossless"]).arg(&input));
    assert!(out.status.success());
    let once = std::fs::read(&input).unwrap();
    assert!(once.len() < original.len());
    // Second run: nothing smaller exists, the file is left as it is.
    let modified = std::fs::metadata(&input).unwrap().modified().unwrap();
    assert!(run(compressor().args(["compress", "--in-place", "-m", "lossless"]).arg(&input)).status.success());
    assert_eq!(std::fs::read(&input).unwrap(), once);
    assert_eq!(std::fs::metadata(&input).unwrap().modified().unwrap(), modified);

    let outdir = dir.path().join("out");
    assert!(run(compressor().arg("compress").arg("-d").arg(&outdir).arg(&input)).status.success());
    assert!(outdir.join("p.png").exists());
}

#[test]
fn compresses_a_real_screenshot_when_the_corpus_is_available() {
    let Some(corpus) = std::env::var_os("COMPRESSOR_CORPUS").map(PathBuf::from) else {
        eprintln!("COMPRESSOR_CORPUS is not set: skipping");
        return;
    };
    let input = corpus.join("png_real/screenshot/image-png__lorem_ipsum_screenshot.png");
    let dir = tempfile::tempdir().unwrap();
    let out = run(compressor().arg("compress").arg(&input).arg("-o").arg(dir.path().join("o.png")).arg("--json").stdout(Stdio::piped()));
    assert!(out.status.success());
    let r = &json_lines(&out)[0];
    let ratio = r["ratio"].as_f64().unwrap();
    // The old pngquant pipeline's promise for screenshots: 70-85 % smaller.
    assert!(ratio < 0.30, "lossy screenshot only {:.0}% smaller", (1.0 - ratio) * 100.0);
}

#[test]
fn resizes_with_width_height_and_fit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shot.png");
    write_png(&input, 120, 80);
    let out = run(compressor().arg("compress").arg(&input).args(["--width", "60", "--json", "-o"]).arg(dir.path().join("w.png")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = &json_lines(&out)[0];
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(60), Some(40)), "{r}");
    assert_eq!(r["resized_from"], serde_json::json!([120, 80]));
    assert_eq!(compressor_test_support::decode_png(&std::fs::read(dir.path().join("w.png")).unwrap()), (60, 40));

    let out = run(compressor()
        .arg("compress")
        .arg(&input)
        .args(["--width", "30", "--height", "30", "--fit", "cover", "-o"])
        .arg(dir.path().join("c.png")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(compressor_test_support::decode_png(&std::fs::read(dir.path().join("c.png")).unwrap()), (30, 30));

    // Options that make no sense are usage errors, before any file is read.
    for bad in [&["--fit", "cover"][..], &["--allow-downscale"], &["--width", "0"], &["--fit", "squash", "--width", "9"]] {
        let out = run(compressor().arg("compress").arg(&input).args(bad));
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Options are checked together (the engine's `Options::validate`) before any file is read too.
    let out = run(compressor().arg("compress").arg(&input).args(["--width", "40", "--height", "40", "--fit", "scale", "-o", "-"]));
    assert_eq!(out.status.code(), Some(2), "scale with both sides is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid options"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn widths_write_responsive_variants_and_print_their_srcset() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hero.png");
    write_png(&input, 120, 80);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = run(compressor().arg("compress").arg(&input).args(["--widths", "80,40,500", "--out-dir"]).arg(&out_dir));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"srcset="hero-40w.webp 40w, hero-80w.webp 80w""#);
    let mut names: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["hero-40w.webp", "hero-80w.webp"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped widths [500]"));
    for name in &names {
        assert_eq!(&std::fs::read(out_dir.join(name)).unwrap()[8..12], b"WEBP", "{name}");
    }

    let out =
        run(compressor().arg("compress").arg(&input).args(["--widths", "50", "--format", "png", "--json", "--out-dir"]).arg(&out_dir));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = &json_lines(&out)[0];
    assert_eq!(r["srcset"], "hero-50w.png 50w");
    assert_eq!(r["variants"][0]["width"], 50);
    assert_eq!(compressor_test_support::decode_png(&std::fs::read(out_dir.join("hero-50w.png")).unwrap()), (50, 33));

    let out = run(compressor().arg("compress").arg(&input).args(["--widths", "50", "--width", "20"]));
    assert_eq!(out.status.code(), Some(2), "--widths and --width conflict");
}

#[test]
fn outputs_get_the_mode_a_new_file_gets_and_in_place_keeps_the_inputs() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shot.png");
    write_png(&input, 120, 80);
    // What this process's umask makes of a new file, for comparison.
    let reference = dir.path().join("reference");
    std::fs::write(&reference, b"").unwrap();
    let out = run(compressor().arg("compress").arg(&input));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&dir.path().join("shot.min.png")), mode(&reference), "not tempfile's private 0600");

    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o604)).unwrap();
    let before = std::fs::read(&input).unwrap();
    let out = run(compressor().arg("compress").arg(&input).arg("--in-place"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(&input).unwrap(), before, "replaced");
    assert_eq!(mode(&input), 0o604);
}

/// ffprobe's frame count of a file, decoding every frame.
fn frames_of(path: &Path) -> u64 {
    compressor_test_support::ffprobe(path).frames
}

/// A 2 s, 25 fps, 320×240 `testsrc2` clip in near-lossless H.264 (a camera original).
fn testsrc_clip(path: &Path, extra: &[&str]) {
    compressor_test_support::ffmpeg_clip(path, "320x240", 25, 2, false, &[&["-c:v", "libx264", "-crf", "5"], extra].concat());
}

#[test]
fn videos_and_gifs_to_video_go_through_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    testsrc_clip(&clip, &[]);
    let out = run(compressor().arg("compress").arg(&clip).arg("--json"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = &json_lines(&out)[0];
    assert_eq!((r["format"].as_str(), r["video_codec"].as_str(), r["changed"].as_bool()), (Some("mp4"), Some("h264"), Some(true)), "{r}");
    let min = dir.path().join("clip.min.mp4");
    assert_eq!(r["output"], min.display().to_string());
    assert_eq!(std::fs::metadata(&min).unwrap().len(), r["output_size"].as_u64().unwrap());
    assert!(r["output_size"].as_u64() < r["input_size"].as_u64());
    assert_eq!(frames_of(&min), 50);

    // An animated GIF made here (10 frames), turned into WebM.
    let gif_path = dir.path().join("anim.gif");
    let mut gif = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut gif, 64, 48, &[0, 0, 0, 255, 255, 255, 200, 30, 30]).unwrap();
        for i in 0..10u8 {
            let pixels: Vec<u8> = (0..64 * 48).map(|p| ((p / 64 + usize::from(i) * 3) % 3) as u8).collect();
            encoder.write_frame(&gif::Frame { width: 64, height: 48, delay: 10, buffer: pixels.into(), ..Default::default() }).unwrap();
        }
    }
    std::fs::write(&gif_path, &gif).unwrap();
    let out = run(compressor().arg("compress").arg(&gif_path).args(["--format", "webm", "-o"]).arg(dir.path().join("anim.webm")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(frames_of(&dir.path().join("anim.webm")), 10);

    // Not a video after all: a typed error, exit 1.
    let fake = dir.path().join("fake.mp4");
    std::fs::write(&fake, b"\0\0\0\x18ftypisom\0\0\0\0 and then nothing").unwrap();
    let out = run(compressor().arg("compress").arg(&fake).arg("--json"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out)[0]["error"]["code"], "corrupt_video");
    // Batch takes --format mp4 too (tests/batch.rs runs it).
    let out = run(compressor().arg("batch").arg(dir.path()).arg(dir.path().join("out")).args(["--format", "mp4", "--dry-run"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn video_target_quality_reports_the_score_reached() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    testsrc_clip(&clip, &["-pix_fmt", "yuv420p"]);
    let out = run(compressor().arg("compress").arg(&clip).args(["--target-quality", "80", "--json"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = &json_lines(&out)[0];
    // The mean SSIMULACRA2 of the search's sampled frames at the chosen CRF: at least the target.
    assert!(r["score"].as_f64().is_some_and(|s| s >= 80.0), "{r}");
    assert!(r["method"].as_str().is_some_and(|m| m.starts_with("h264-crf")), "{r}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSIMULACRA2"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(compressor().arg("compress").arg(&clip).args(["--target-quality", "101"]));
    assert_eq!(out.status.code(), Some(2), "refused by the argument parser");
}

/// A HEIC photo (read, never written) comes out beside the input as `.min.jpg`, `.min.webp` or
/// `.min.avif`, whichever is smallest, and a TIFF as PNG; the JSON report says which.
#[test]
fn heic_and_tiff_inputs_are_converted() {
    let Some(corpus) = std::env::var_os("COMPRESSOR_CORPUS").map(PathBuf::from) else {
        eprintln!("COMPRESSOR_CORPUS is not set: skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let heic = dir.path().join("photo.heic");
    std::fs::copy(corpus.join("heic/libheif-rs__test.heic"), &heic).unwrap();
    let tiff = dir.path().join("scan.tif");
    std::fs::copy(corpus.join("other/tiff/pillow__hopper.tif"), &tiff).unwrap();
    let out = run(compressor().arg("compress").arg(&heic).arg(&tiff).arg("--json"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 2);
    let format = reports[0]["format"].as_str().unwrap();
    let extension = match format {
        "jpeg" => "jpg",
        "webp" | "avif" => format,
        other => panic!("HEIC became {other}"),
    };
    assert!(dir.path().join(format!("photo.min.{extension}")).exists());
    assert_eq!(reports[1]["format"], "png");
    let png = std::fs::read(dir.path().join("scan.min.png")).unwrap();
    assert_eq!(compressor_test_support::decode_png(&png), (128, 128));
}
