//! The harness on a tiny generated corpus: every installed peer gives a parsed result, every
//! missing one is listed as skipped, and the reported ratios are the geometric means of the
//! per-image records.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use compressor_bench::Settings;
use serde_json::Value;

const PEERS: [(&str, &str, &str); 15] = [
    ("oxipng-o2", "oxipng", "lossless-png"),
    ("oxipng-o4", "oxipng", "lossless-png"),
    ("optipng-o2", "optipng", "lossless-png"),
    ("go-png", "go-png", "lossless-png"),
    ("pngquant-65-80-s4", "pngquant", "lossy-png"),
    ("pngquant-60-80", "pngquant", "lossy-png"),
    ("jpegtran", "jpegtran", "jpeg-lossless"),
    ("cjpeg-q80", "cjpeg", "jpeg-lossy"),
    ("cwebp-q80", "cwebp", "webp"),
    ("avifenc", "avifenc", "avif"),
    ("pngquant-60-80", "pngquant", "service-lossy"),
    ("go-png", "go-png", "service-lossless"),
    ("oxipng-o2", "oxipng", "service-lossless"),
    ("vipsthumbnail-1280", "vipsthumbnail", "resize-1280"),
    ("vipsthumbnail-cover-300", "vipsthumbnail", "resize-cover-300"),
];

fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, data: &[u8]) {
    std::fs::write(path, compressor_test_support::encode_png_as(width, height, color, data, &[])).unwrap();
}

/// Three small PNGs (photo-like RGB, RGBA with transparency, flat graphic) and one JPEG.
fn corpus(dir: &Path) {
    let (w, h) = (96u32, 64u32);
    let noise = |x: u32, y: u32| ((x.wrapping_mul(7919) ^ y.wrapping_mul(104729)).wrapping_mul(2654435761) >> 27) as u8;
    let rgb: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [(x * 255 / w) as u8 ^ noise(x, y), (y * 255 / h) as u8, ((x + y) * 2) as u8]))
        .collect();
    write_png(&dir.join("photo.png"), w, h, png::ColorType::Rgb, &rgb);
    let rgba: Vec<u8> = (0..48u32)
        .flat_map(|y| {
            (0..48u32).flat_map(move |x| [(x * 5) as u8, (y * 5) as u8, 128, if (x / 8 + y / 8) % 2 == 0 { 255 } else { (x * 4) as u8 }])
        })
        .collect();
    write_png(&dir.join("alpha.png"), 48, 48, png::ColorType::Rgba, &rgba);
    let flat: Vec<u8> = (0..40u32)
        .flat_map(|y| (0..60u32).flat_map(move |x| if (x / 10 + y / 10) % 2 == 0 { [20, 40, 200] } else { [250, 250, 250] }))
        .collect();
    write_png(&dir.join("graphic.png"), 60, 40, png::ColorType::Rgb, &flat);

    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w as usize, h as usize);
    c.set_quality(92.0);
    let mut started = c.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&rgb).unwrap();
    std::fs::write(dir.join("photo.jpg"), started.finish().unwrap()).unwrap();
}

fn args(corpus: PathBuf, json: PathBuf) -> Settings {
    Settings {
        corpus: vec![corpus],
        runs: Some(1),
        json: Some(json),
        engine_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_compressor-bench"))),
        ..Settings::default()
    }
}

/// An independent `which`.
fn installed(program: &str, go_png: &Path) -> bool {
    if program == "go-png" {
        return go_png.is_file();
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(program).is_file())
}

fn records<'a>(report: &'a Value, category: &str, method: &str) -> Vec<&'a Value> {
    report["records"].as_array().unwrap().iter().filter(|r| r["category"] == category && r["method"] == method).collect()
}

fn images_for(category: &str) -> usize {
    match category {
        "lossless-png" | "lossy-png" | "service-lossy" | "service-lossy-scored" | "service-lossless" => 3,
        "jpeg-lossless" | "jpeg-lossy" => 1,
        // Resizing is measured on images wider than 1280 px; this corpus has none.
        "resize-1280" | "resize-cover-300" => 0,
        _ => 4,
    }
}

#[test]
fn installed_peers_run_missing_ones_are_skipped_and_ratios_match_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    std::fs::create_dir(&dir).unwrap();
    corpus(&dir);
    let json = tmp.path().join("bench.json");
    let mut a = args(dir, json.clone());
    let go_png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/go-png/go-png");
    a.go_png = Some(go_png.clone());
    a.plot = Some(tmp.path().join("plot.svg"));
    a.markdown = Some(tmp.path().join("bench.md"));
    // A large resident parent: children must still report their own peak memory, not this.
    let ballast = std::hint::black_box(vec![1u8; 256 << 20]);
    compressor_bench::run(a).unwrap();
    drop(ballast);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    // Ours ran in every category, with results.
    for category in [
        "lossless-png",
        "lossy-png",
        "jpeg-lossless",
        "jpeg-lossy",
        "webp",
        "avif",
        "service-lossy",
        "service-lossy-scored",
        "service-lossless",
    ] {
        let ours = records(&report, category, "ours");
        assert_eq!(ours.len(), images_for(category), "{category}: ours ran on every applicable image");
        for r in ours {
            assert!(r["bytes"].as_u64().unwrap() > 0 && r["wall_s"].as_f64().unwrap() > 0.0, "{category}: {r}");
        }
    }

    let skipped: Vec<&str> = report["skipped"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    for (id, program, category) in PEERS {
        if installed(program, &go_png) {
            assert!(!skipped.contains(&id), "{id} is installed but reported skipped");
            let rs = records(&report, category, id);
            assert_eq!(rs.len(), images_for(category), "{id}: one record per applicable image");
            for r in rs {
                assert_ne!(r["status"], "failed", "{id} failed: {r}");
                assert!(r["bytes"].as_u64().unwrap() > 0, "{id}: {r}");
                assert!(r["wall_s"].as_f64().unwrap() > 0.0, "{id}: {r}");
                let rss = r["maxrss_kib"].as_u64().unwrap();
                assert!(rss > 0 && rss < 128 << 10, "{id}: peak RSS {rss} KiB is not the tool's own: {r}");
                if !["lossless-png", "jpeg-lossless", "avif", "service-lossless"].contains(&category) {
                    assert!(r["score"].as_f64().is_some(), "{id}: lossy result without a score: {r}");
                }
            }
        } else {
            assert!(skipped.contains(&id), "{id} is missing but not listed as skipped");
            assert!(records(&report, category, id).is_empty());
        }
    }

    // Every reported geometric mean equals the one computed by hand from the records.
    let mut checked = 0;
    for c in report["categories"].as_array().unwrap() {
        let category = c["category"].as_str().unwrap();
        for ratio in c["ratios"].as_array().unwrap() {
            let peer = ratio["peer"].as_str().unwrap();
            for (field, key) in [("bytes", "bytes_geomean"), ("wall_s", "wall_geomean"), ("cpu_s", "cpu_geomean")] {
                let mut logs = Vec::new();
                for p in records(&report, category, peer) {
                    let o = records(&report, category, "ours").into_iter().find(|o| o["image"] == p["image"]).unwrap();
                    if let (Some(a), Some(b)) = (o[field].as_f64(), p[field].as_f64()) {
                        logs.push((a / b).ln());
                    }
                }
                let expected = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
                let reported = ratio[key].as_f64().unwrap_or(f64::NAN);
                if field == "cpu_s" && reported.is_nan() {
                    continue; // a CPU time of 0 (below the clock's resolution) has no ratio
                }
                assert!((reported - expected).abs() <= 1e-9 * expected, "{category}/{peer} {key}: reported {reported}, by hand {expected}");
                checked += 1;
            }
        }
    }
    let installed_peers = PEERS.iter().filter(|(_, p, _)| installed(p, &go_png)).count();
    assert!(checked >= 2 * installed_peers, "only {checked} ratios checked for {installed_peers} installed peers");

    let md = std::fs::read_to_string(tmp.path().join("bench.md")).unwrap();
    assert!(md.contains("### Goals") && md.contains("### Lossy PNG"), "{md}");
    if installed("pngquant", &go_png) {
        assert!(md.contains("### Service workload by kind of image"), "{md}");
        let breakdowns = report["breakdowns"].as_array().unwrap();
        assert!(
            breakdowns.iter().any(|b| b["category"] == "service-lossy" && b["kind"] == "all" && b["ratio"]["images"] == 3),
            "{breakdowns:?}"
        );
    }
    // The JSON holds everything: re-rendering it gives the same report.
    let mut again = args(tmp.path().join("unused"), tmp.path().join("unused.json"));
    again.from_json = Some(json);
    again.json = None;
    again.markdown = Some(tmp.path().join("again.md"));
    compressor_bench::run(again).unwrap();
    assert_eq!(std::fs::read_to_string(tmp.path().join("again.md")).unwrap(), md);
    let svg = std::fs::read_to_string(tmp.path().join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("ours"), "plot has no points");
}

#[test]
fn with_no_peers_on_the_path_all_are_skipped_and_goals_are_not_judged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir(&dir).unwrap();
    std::fs::create_dir(&empty).unwrap();
    corpus(&dir);
    let json = tmp.path().join("bench.json");
    let mut a = args(dir, json);
    a.search_path = Some(OsString::from(&empty));
    a.go_png = Some(tmp.path().join("no-such-go-png"));
    a.categories = vec!["lossless-png".into(), "jpeg-lossless".into(), "lossy-png".into()];
    let report = serde_json::to_value(compressor_bench::bench(&a).unwrap()).unwrap();
    let mut skipped: Vec<&str> = report["skipped"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    skipped.sort_unstable();
    let mut expected: Vec<&str> =
        PEERS.iter().filter(|(_, _, c)| ["lossless-png", "jpeg-lossless", "lossy-png"].contains(c)).map(|p| p.0).collect();
    expected.sort_unstable();
    assert_eq!(skipped, expected);
    assert_eq!(records(&report, "lossless-png", "ours").len(), 3);
    assert!(report["records"].as_array().unwrap().iter().all(|r| r["method"] == "ours"));
    for g in report["goals"].as_array().unwrap() {
        assert_eq!(g["verdict"], "N/A", "{g}");
    }
}

/// The resize categories on a generated 1600×1000 screenshot-like PNG: both methods give a WebP
/// of the asked size, scored against the reference downscale (when vips is installed).
#[test]
fn resize_categories_score_both_tools_against_the_reference_downscale() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    std::fs::create_dir(&dir).unwrap();
    let (w, h) = (1600u32, 1000u32);
    // Thin dark lines on white with a coloured band: detail that a poor downscale blurs or aliases.
    let rgb: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                if x % 7 == 0 || y % 5 == 0 {
                    [30, 30, 30]
                } else if y < 200 {
                    [40, 120, 220]
                } else {
                    [250, 250, 250]
                }
            })
        })
        .collect();
    write_png(&dir.join("wide.png"), w, h, png::ColorType::Rgb, &rgb);
    let json = tmp.path().join("bench.json");
    let mut a = args(dir, json.clone());
    a.categories = vec!["resize-1280".into(), "resize-cover-300".into()];
    compressor_bench::run(a).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let vips = installed("vips", Path::new("")) && installed("vipsthumbnail", Path::new(""));
    for (category, peer) in [("resize-1280", "vipsthumbnail-1280"), ("resize-cover-300", "vipsthumbnail-cover-300")] {
        let mut methods = vec!["ours"];
        if vips {
            methods.push(peer);
        }
        for method in methods {
            let rs = records(&report, category, method);
            assert_eq!(rs.len(), 1, "{category} {method}");
            assert_eq!(rs[0]["status"], "ok", "{}", rs[0]);
            if vips {
                let score = rs[0]["score"].as_f64().unwrap_or_else(|| panic!("{category} {method}: no score: {}", rs[0]));
                println!("{category} {method}: {score:.2}");
                assert!(score <= 100.0, "{category} {method}: {score}");
                // A reference that does not line up with the output (shifted, mirrored, other
                // colours) scores far below zero; ours, resized in linear light like it, cannot.
                if method == "ours" {
                    assert!(score > 50.0, "{category}: {score}: the reference does not match the output");
                }
            }
        }
    }
    let goals: Vec<&str> = report["goals"].as_array().unwrap().iter().map(|g| g["goal"].as_str().unwrap()).collect();
    assert!(goals.iter().any(|g| g.starts_with("Resize: to 1280")), "{goals:?}");
}

/// The video categories on one tiny animated GIF (and a still one, which is not theirs) and the
/// clips a quick run generates: every method gives a scored record, ours at matched score
/// reaches the peer's score, and the goals are judged.
#[test]
fn video_categories_score_every_method_on_sampled_frames() {
    assert!(
        installed("ffmpeg", Path::new("")) && installed("ffprobe", Path::new("")),
        "the video categories need ffmpeg and ffprobe (scripts/install-deps.sh installs them)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    std::fs::create_dir(&dir).unwrap();
    // A palette of its own and no dithering (which H.264 cannot keep, and SSIMULACRA2 punishes).
    let make_gif = |name: &str, seconds: &str| {
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-t", seconds, "-i", "testsrc2=size=96x64:rate=10"])
            .args(["-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse=dither=none", "-y"])
            .arg(dir.join(name))
            .status()
            .unwrap();
        assert!(status.success(), "ffmpeg could not make {name}");
    };
    make_gif("moving.gif", "0.6");
    make_gif("still.gif", "0.1");
    let json = tmp.path().join("bench.json");
    let mut a = args(dir, json.clone());
    a.quick = true;
    a.categories = vec!["gif-mp4".into(), "video-mp4".into(), "video-webm".into()];
    a.markdown = Some(tmp.path().join("bench.md"));
    compressor_bench::run(a).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    let gifsicle = installed("gifsicle", Path::new(""));
    let skipped: Vec<&str> = report["skipped"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(skipped.contains(&"gifsicle-o3"), !gifsicle, "{skipped:?}");
    let mut gif_methods = vec!["ours", "input-gif"];
    if gifsicle {
        gif_methods.push("gifsicle-o3");
    }
    for method in &gif_methods {
        let rs = records(&report, "gif-mp4", method);
        assert_eq!(rs.len(), 1, "gif-mp4 {method}: only the animated GIF: {rs:?}");
        let r = rs[0];
        assert_eq!(r["image"], "corpus/moving.gif");
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["duration_s"].as_f64().unwrap() > 0.5, "{r}");
        let (score, worst) = (r["score"].as_f64().unwrap(), r["score_min"].as_f64().unwrap());
        assert!(worst <= score && score <= 100.0, "{r}");
    }
    let ours = records(&report, "gif-mp4", "ours")[0];
    assert!(ours["score"].as_f64().unwrap() > 40.0, "a GIF of a test pattern as H.264 CRF 23 scores well: {ours}");
    assert!(ours["wall_s"].as_f64().unwrap() > 0.0);
    let gif = records(&report, "gif-mp4", "input-gif")[0];
    assert_eq!(gif["bytes"], gif["input_bytes"]);
    assert_eq!(gif["score"].as_f64(), Some(100.0));
    assert!(gif["wall_s"].is_null(), "the GIF as it is has no time: {gif}");

    let clips: Vec<&str> = report["clips"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(clips, ["generated/mandelbrot.mp4", "generated/testsrc2-grain.mp4", "generated/life.mp4"], "no photo in this corpus");
    for (category, peer) in [("video-mp4", "ffmpeg-x264-crf23"), ("video-webm", "ffmpeg-svtav1")] {
        for method in ["ours", peer, "ours-matched"] {
            let rs = records(&report, category, method);
            assert_eq!(rs.len(), clips.len(), "{category} {method}");
            for r in rs {
                assert_eq!(r["status"], "ok", "{r}");
                assert!(r["bytes"].as_u64().unwrap() > 0 && r["wall_s"].as_f64().unwrap() > 0.0, "{r}");
                let score = r["score"].as_f64().unwrap_or_else(|| panic!("{category} {method}: no score: {r}"));
                assert!(score > 30.0 && score <= 100.0, "{category} {method}: {score}: frames do not line up? {r}");
            }
        }
        for matched in records(&report, category, "ours-matched") {
            let theirs = records(&report, category, peer).into_iter().find(|p| p["image"] == matched["image"]).unwrap();
            assert!(matched["score"].as_f64() >= theirs["score"].as_f64(), "{matched} against {theirs}");
            let setting = matched["setting"].as_str().unwrap();
            assert!(setting.starts_with("quality ") || setting.starts_with("default"), "{setting}");
        }
        let summary = report["categories"].as_array().unwrap().iter().find(|c| c["category"] == category).unwrap();
        let ratios: Vec<(&str, &str)> =
            summary["ratios"].as_array().unwrap().iter().map(|r| (r["ours"].as_str().unwrap(), r["peer"].as_str().unwrap())).collect();
        assert_eq!(ratios, [("ours", peer), ("ours-matched", peer)]);
        let ours_summary = summary["methods"].as_array().unwrap().iter().find(|m| m["method"] == "ours").unwrap();
        assert!((ours_summary["video_seconds"].as_f64().unwrap() - 3.0).abs() < 0.1, "three 1 s clips: {ours_summary}");
    }

    let goals = report["goals"].as_array().unwrap();
    for (prefix, verdicts) in [
        ("Video: animated GIF", &["MET", "MISSED"][..]),
        ("Video: MP4 re-encode", &["MET", "MISSED"][..]),
        ("Video: WebM", &["REPORTED"][..]),
    ] {
        let g = goals.iter().find(|g| g["goal"].as_str().unwrap().starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {goals:?}"));
        assert!(verdicts.contains(&g["verdict"].as_str().unwrap()), "{g}");
    }
    let md = std::fs::read_to_string(tmp.path().join("bench.md")).unwrap();
    for heading in
        ["### Video: animated GIF to MP4", "### Video: MP4 re-encode", "### Video: WebM", "wall s per s of video", "generated/life.mp4"]
    {
        assert!(md.contains(heading), "{heading} missing: {md}");
    }
}

/// Settings for the four rate–distortion sweeps against `tools`, on three small corpus images
/// (a photo, a graphic, an icon with alpha) copied under `dir/png_real/KIND/`; the report goes to
/// `dir/bench.json`.
fn rd_settings(corpus: &Path, dir: &Path, tools: &[&str]) -> Settings {
    let root = dir.join("png_real");
    for file in ["photo/wuffs__bricks-color.png", "graphic/pillow__hopper.png", "icon_alpha/small-n-flat__96_user-male.png"] {
        let to = root.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(corpus.join("png_real").join(file), &to).unwrap();
    }
    let mut a = args(root, dir.join("bench.json"));
    a.categories = ["rd-png", "rd-jpeg", "rd-webp", "rd-avif"].map(String::from).to_vec();
    a.tools = tools.iter().map(|t| t.to_string()).collect();
    a
}

/// The rate–distortion sweep on three small corpus images (a photo, a graphic, an icon with
/// alpha), ours against sharp only: every format has curves for both, scores that rise with the
/// quality, a BD-rate for sharp, the matched points, the goals and the plots.
#[test]
fn rd_sweep_gives_curves_and_bd_rates_against_sharp() {
    let Some(corpus) = compressor_test_support::corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let mut a = rd_settings(&corpus, tmp.path(), &["sharp"]);
    let sharp_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/sharp");
    a.sharp = Some(sharp_dir.join("encode.js"));
    a.markdown = Some(tmp.path().join("bench.md"));
    a.rd_plots = Some(tmp.path().join("plots"));
    compressor_bench::run(a).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let skipped: Vec<&Value> = report["skipped"].as_array().unwrap().iter().filter(|s| s["id"] == "sharp").collect();
    if !sharp_dir.join("node_modules/sharp").is_dir() {
        // Not installed here (scripts/install-bench-tools.sh installs it, as CI does).
        assert_eq!(skipped.len(), 4, "sharp is missing but not skipped in each rd category");
        return;
    }
    assert!(skipped.is_empty(), "sharp is installed but skipped: {skipped:?}");
    let rd = &report["rd"];
    let ladder = 8;
    for category in ["rd-png", "rd-jpeg", "rd-webp", "rd-avif"] {
        for method in ["ours", "sharp"] {
            let curve = rd["curves"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["category"] == category && c["kind"] == "all" && c["method"] == method)
                .unwrap_or_else(|| panic!("{category}: no curve for {method}"));
            let scores: Vec<f64> = curve["points"].as_array().unwrap().iter().map(|p| p["mean_score"].as_f64().unwrap()).collect();
            assert_eq!(scores.len(), ladder, "{category}/{method}: {curve}");
            // Scores rise with quality (a small dip between neighbouring steps is noise of palette choices).
            assert!(scores[ladder - 1] > scores[0] + 5.0, "{category}/{method}: {scores:?}");
            assert!(scores.windows(2).all(|w| w[1] > w[0] - 2.0), "{category}/{method}: {scores:?}");
            let bytes: Vec<f64> = curve["points"].as_array().unwrap().iter().map(|p| p["bytes_ratio"].as_f64().unwrap()).collect();
            assert!(bytes[ladder - 1] > bytes[0], "{category}/{method}: bytes do not grow with quality: {bytes:?}");
        }
        let bd = rd["bd_rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["category"] == category && b["kind"] == "all" && b["peer"] == "sharp")
            .unwrap_or_else(|| panic!("{category}: no BD-rate row for sharp"));
        let rate = bd["bd_rate"].as_f64().unwrap_or_else(|| panic!("{category}: no BD-rate against sharp: {bd}"));
        assert!(rate > -0.95 && rate < 10.0, "{category}: {bd}");
        // Each image: ours at sharp's default score, with its own record.
        // (JPEG holds no transparency: the icon is left out of rd-jpeg.)
        let matched = records(&report, category, "ours-matched");
        assert_eq!(matched.len(), if category == "rd-jpeg" { 2 } else { 3 }, "{category}: {matched:?}");
        assert!(matched.iter().all(|m| m["score"].as_f64().is_some()), "{category}: {matched:?}");
        let svg = std::fs::read_to_string(tmp.path().join("plots").join(format!("{category}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("sharp") && svg.contains("ours"), "{category}: plot without both lines");
    }
    let goals: Vec<&Value> =
        report["goals"].as_array().unwrap().iter().filter(|g| g["goal"].as_str().unwrap().contains("BD-rate")).collect();
    // One per format and kind (all, photo, graphic, icon_alpha; no icon in rd-jpeg), judged.
    assert_eq!(goals.len(), 15, "{goals:?}");
    assert!(goals.iter().any(|g| g["verdict"] == "MET" || g["verdict"] == "MISSED"), "{goals:?}");
    let md = std::fs::read_to_string(tmp.path().join("bench.md")).unwrap();
    assert!(md.contains("## Rate–distortion") && md.contains("ours-matched"), "{md}");
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The crates.io peers write into a folder under names of their own: stand-ins on the search
/// path show the one file written is taken at every ladder step (caesiumclt: a copy, scored
/// 100), and that a peer whose trial encode fails (a rimage built without a codec, or writing
/// two files where one is expected) is skipped with why, all without the real tools.
#[test]
fn folder_peers_give_their_single_file_and_failed_trials_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("png_real");
    std::fs::create_dir_all(root.join("photo")).unwrap();
    let rgb: Vec<u8> = (0..40u32 * 40).flat_map(|i| [(i % 40 * 6) as u8, (i / 40 * 6) as u8, (i % 7 * 30) as u8]).collect();
    write_png(&root.join("photo/gen.png"), 40, 40, png::ColorType::Rgb, &rgb);
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // `-q Q --format TO -Q -o DIR IN`: a PNG to PNG must be asked as `--format original`.
    script(
        &bin.join("caesiumclt"),
        r#"out=""; to=""; prev=""
for a in "$@"; do case "$prev" in -o) out="$a" ;; --format) to="$a" ;; esac; prev="$a"; done
[ "$to" = original ] || { echo "format $to" >&2; exit 3; }
cp "$prev" "$out/$(basename "$prev")"
"#,
    );
    // `rimage avif` fails (no such codec in this build); `rimage oxipng` writes two files.
    script(
        &bin.join("rimage"),
        r#"[ "$1" = avif ] && { echo 'Encoder "avif" not found' >&2; exit 2; }
out=""; prev=""
for a in "$@"; do [ "$prev" = -d ] && out="$a"; prev="$a"; done
cp "$prev" "$out/a.png"; cp "$prev" "$out/b.png"
"#,
    );
    let json = tmp.path().join("bench.json");
    let mut a = args(root, json.clone());
    a.categories = vec!["rd-png".into(), "rd-avif".into()];
    a.tools = vec!["caesiumclt".into(), "rimage".into()];
    a.search_path = Some(OsString::from(&bin));
    compressor_bench::run(a).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let input_bytes = std::fs::metadata(tmp.path().join("png_real/photo/gen.png")).unwrap().len();

    let caesium = records(&report, "rd-png", "caesiumclt");
    assert_eq!(caesium.len(), 8, "one record per ladder step: {caesium:?}");
    for r in &caesium {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["bytes"].as_u64(), Some(input_bytes), "{r}");
        assert!(r["score"].as_f64().unwrap() > 99.0, "{r}");
    }
    let default = records(&report, "rd-png", "caesiumclt-default");
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["setting"], "quality 80");
    let skipped = report["skipped"].as_array().unwrap();
    let reason = |category: &str| -> String {
        let s: Vec<&Value> = skipped.iter().filter(|s| s["id"] == "rimage" && s["category"] == category).collect();
        assert_eq!(s.len(), 1, "{category}: {skipped:?}");
        s[0]["reason"].as_str().unwrap().to_string()
    };
    let why = reason("rd-avif");
    assert!(why.contains("failed") && why.contains("not found"), "{why}");
    let why = reason("rd-png");
    assert!(why.contains("2 files (a.png, b.png)"), "{why}");
    assert!(records(&report, "rd-png", "rimage").is_empty() && records(&report, "rd-avif", "rimage").is_empty());
    // caesiumclt writes no AVIF: it is no peer there, neither run nor skipped.
    assert!(!skipped.iter().any(|s| s["id"] == "caesiumclt"), "{skipped:?}");
    assert!(!records(&report, "rd-avif", "ours").is_empty());
}

/// caesiumclt and rimage as installed from crates.io (`scripts/install-bench-tools.sh
/// --rust-peers`) on three corpus images: in every format each writes, every ladder step has a
/// scored output and ours gets a BD-rate against it; when not installed, they are skipped.
#[test]
fn rd_sweep_runs_caesiumclt_and_rimage_when_installed() {
    let Some(corpus) = compressor_test_support::corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    compressor_bench::run(rd_settings(&corpus, tmp.path(), &["caesiumclt", "rimage"])).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let skipped = report["skipped"].as_array().unwrap();
    let go_png = Path::new("no go-png");
    // rimage's AVIF is a cargo feature: a build without it still has the subcommand, but
    // fails every encode, and is skipped there.
    let rimage_avif = installed("rimage", go_png) && {
        let out = tmp.path().join("avif-check");
        std::fs::create_dir(&out).unwrap();
        let input = corpus.join("png_real/icon_alpha/small-n-flat__96_user-male.png");
        std::process::Command::new("rimage").args(["avif", "-d"]).arg(&out).arg(input).output().is_ok_and(|o| o.status.success())
            && std::fs::read_dir(&out).unwrap().count() == 1
    };
    let pairs = [
        ("caesiumclt", "rd-png", true),
        ("caesiumclt", "rd-jpeg", true),
        ("caesiumclt", "rd-webp", true),
        ("rimage", "rd-png", true),
        ("rimage", "rd-jpeg", true),
        ("rimage", "rd-webp", true),
        ("rimage", "rd-avif", rimage_avif),
    ];
    for (tool, category, supported) in pairs {
        let is_skipped = skipped.iter().any(|s| s["id"] == tool && s["category"] == category);
        if !installed(tool, go_png) || !supported {
            assert!(is_skipped, "{tool} is missing or lacks {category} but is not skipped: {skipped:?}");
            continue;
        }
        assert!(!is_skipped, "{tool} is installed but skipped in {category}: {skipped:?}");
        // JPEG holds no transparency: the icon is left out of rd-jpeg.
        let images = if category == "rd-jpeg" { 2 } else { 3 };
        let points = records(&report, category, tool);
        assert_eq!(points.len(), 8 * images, "{tool} {category}: {points:?}");
        for p in &points {
            assert_eq!(p["status"], "ok", "{tool} {category}: {p}");
            let score = p["score"].as_f64().unwrap_or_else(|| panic!("{tool} {category}: no score: {p}"));
            assert!(score > 0.0 && score <= 100.0, "{tool} {category}: {p}");
        }
        assert_eq!(records(&report, category, &format!("{tool}-default")).len(), images, "{tool} {category}");
        let bd = report["rd"]["bd_rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["category"] == category && b["kind"] == "all" && b["peer"] == tool)
            .unwrap_or_else(|| panic!("{category}: no BD-rate row for {tool}"));
        assert!(bd["bd_rate"].as_f64().is_some(), "{tool} {category}: no BD-rate: {bd}");
    }
}
