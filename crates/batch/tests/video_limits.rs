//! The video limits through the library (the command line has no flags for them): a clip over a
//! limit is refused with a typed error in the manifest, like an image over its own, and the run
//! carries on.

use std::collections::BTreeMap;
use std::path::Path;

use compressor_batch::{Settings, VideoSettings};

fn clip(path: &Path, seconds: u32) {
    compressor_test_support::ffmpeg_clip(path, "96x64", 10, seconds, false, &["-c:v", "libx264", "-crf", "5"]);
}

fn records(dst: &Path) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dst.join(".compressor/manifest-0-of-1.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r))
        .collect()
}

#[test]
fn videos_over_a_limit_are_refused_with_a_typed_error_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, temp) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("temp"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&temp).unwrap();
    clip(&src.join("short.mp4"), 1);
    clip(&src.join("long.mp4"), 3);
    let long_size = std::fs::metadata(src.join("long.mp4")).unwrap().len();
    let run = |dst: &Path, limits: compressor_video::Limits| {
        let settings = Settings {
            src: src.to_str().unwrap().into(),
            dst: dst.to_str().unwrap().into(),
            temp_dir: Some(temp.clone()),
            jobs: Some(2),
            ..Settings::default()
        };
        let video = VideoSettings { options: compressor_video::Options { limits, ..Default::default() }, gifs: false };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(compressor_batch::run(settings, compressor_engine::Options::default(), video)).unwrap()
    };

    // Found by the probe: the duration.
    let report = run(&dst, compressor_video::Limits { max_duration_seconds: 2.0, ..Default::default() });
    assert_eq!((report.videos, report.failed), (1, 1), "{report:?}");
    let r = records(&dst);
    assert_eq!(r["short.mp4"]["status"], "done");
    assert_eq!((r["long.mp4"]["status"].as_str(), r["long.mp4"]["error_code"].as_str()), (Some("failed"), Some("limit_exceeded")));
    assert!(r["long.mp4"]["error"].as_str().unwrap().contains("max_duration_seconds"), "{}", r["long.mp4"]);

    // Found from the listing's size, before the object is read.
    let other = dir.path().join("dst-bytes");
    let report = run(&other, compressor_video::Limits { max_input_bytes: long_size - 1, ..Default::default() });
    assert_eq!((report.videos, report.failed), (1, 1), "{report:?}");
    let r = records(&other);
    assert_eq!(r["long.mp4"]["error_code"], "limit_exceeded");
    assert!(r["long.mp4"]["error"].as_str().unwrap().contains("max_input_bytes"), "{}", r["long.mp4"]);
    assert_eq!(std::fs::read_dir(&temp).unwrap().count(), 0, "temporary files left");
}
