//! The README states the video defaults this crate defines ([`Limits::DEFAULT`],
//! [`Options::DEFAULT_TIMEOUT`], [`Options::DEFAULT_MEMORY_BYTES`]): changing one without the
//! text fails here.

use compressor_video::{Limits, Options};

/// 100000 → `100,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_readme_states_the_video_defaults() {
    let readme = std::fs::read_to_string(compressor_test_support::repo_root().join("README.md")).unwrap();
    // Line breaks are spaces.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let l = Limits::DEFAULT;
    let minutes = |seconds: u64| {
        assert_eq!(seconds % 60, 0, "the README speaks of whole minutes");
        seconds / 60
    };
    let timeout = minutes(Options::DEFAULT_TIMEOUT.as_secs());
    for text in [
        format!(
            "over a limit ({} min, {} MP frames, {} MB, {} frames;",
            minutes(l.max_duration_seconds as u64),
            l.max_frame_pixels / 1_000_000,
            l.max_input_bytes / 1_000_000,
            thousands(l.max_frames)
        ),
        format!("a wall-clock deadline ({timeout} min), an address-space limit ({} GiB)", Options::DEFAULT_MEMORY_BYTES >> 30),
        format!("| `--max-video-bytes` | `COMPRESSOR_MAX_VIDEO_BYTES` | `{}` |", l.max_input_bytes),
        format!("| `--video-timeout` | `COMPRESSOR_VIDEO_TIMEOUT` | `{timeout}m` |"),
    ] {
        assert!(readme.contains(&text), "README.md does not say: {text}");
    }
}
