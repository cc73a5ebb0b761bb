//! The 3-minute soak (issue 30): `scripts/soak.py` against the release binary on its defaults:
//! mixed corpus images to both image routes, corrupt and hostile files, video, slow uploaders and
//! clients that hang up, at 70 % of the capacity it measures first. It fails on any answer other
//! than 200, a 4xx with a JSON body, or a 503 with Retry-After; on a growth trend of the server's
//! RSS, open file descriptors or temporary files; or on the server dying. The script's report
//! (per-minute statuses and latencies, the slopes) is printed either way.

use std::process::Command;

use compressor_test_support::repo_root;

/// Every kind of traffic the soak sends, as its report names them.
const SOAK_ROUTES: [&str; 8] = [
    "/v1/compress",
    "/compress-image",
    "/v1/video/compress",
    "/health",
    "slow-upload",
    "slow-upload(too slow)",
    "hang-up mid-upload",
    "hang-up mid-response",
];

#[test]
fn three_minutes_of_mixed_traffic_leave_nothing_wrong_and_nothing_growing() {
    let Some(corpus) = compressor_test_support::corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("soak.json");
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/soak.py"))
        .args(["--binary", env!("CARGO_BIN_EXE_compressor"), "--minutes", "3", "--capacity-seconds", "20"])
        .arg("--json")
        .arg(&summary_path)
        .env("COMPRESSOR_CORPUS", corpus)
        .output()
        .expect("python3 runs scripts/soak.py (scripts/install-deps.sh installs it and ffmpeg)");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the soak failed (its report is above)");

    // The exit status is the verdict; the summary shows that the soak really ran its mix.
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["passed"], true);
    let requests = |route: &str| summary["totals"][route]["requests"].as_u64().unwrap_or(0);
    for route in SOAK_ROUTES {
        assert!(requests(route) > 0, "no {route} requests in the soak: {}", summary["totals"]);
    }
    assert!(summary["minutes_report"].as_array().unwrap().len() >= 3, "fewer than 3 minute reports");
}
