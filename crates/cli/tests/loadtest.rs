//! Load testing and observability against a real `compressor serve` on loopback: the built-in
//! runner, overload behaviour, thresholds, the k6 scripts' syntax, and a real Prometheus server
//! scraping the service.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use compressor_test_support::{free_port, repo_root, wait_for_port};

fn compressor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compressor"))
}

/// A running `compressor serve`, stopped on drop.
struct Server {
    child: Child,
    url: String,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut cmd = compressor();
    cmd.arg("serve").env("COMPRESSOR_LISTEN", format!("127.0.0.1:{port}")).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    wait_for_port(port, "compressor serve");
    Server { child, url: format!("http://127.0.0.1:{port}"), port }
}

/// A screenshot-like PNG of about `side`² pixels: flat areas, text-like strokes, fast deflate.
fn screenshot_png(dir: &Path, side: u32) -> PathBuf {
    let mut rgba = Vec::with_capacity((side * side * 4) as usize);
    for y in 0..side {
        for x in 0..side {
            let stroke = (x / 3 + y / 7) % 11 == 0 || (y % 24) < 2;
            let c = if stroke { [30, 30, 40, 255] } else { [240, 240 - (y % 64) as u8, 245, 255] };
            rgba.extend_from_slice(&c);
        }
    }
    let path = dir.join("screenshot.png");
    std::fs::write(&path, compressor_test_support::encode_png(side, side, &rgba, &[])).unwrap();
    path
}

fn loadtest(server: &Server, image: &Path, extra: &[&str], json: &Path) -> (Output, serde_json::Value) {
    let out = compressor()
        .arg("loadtest")
        .args(["--url", &server.url, "--image"])
        .arg(image)
        .arg("--json")
        .arg(json)
        .args(extra)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap_or_default()).unwrap_or(serde_json::Value::Null);
    (out, report)
}

#[test]
fn the_runner_sees_no_failures_at_low_load_on_both_routes() {
    let dir = tempfile::tempdir().unwrap();
    let image = screenshot_png(dir.path(), 256);
    let server = serve(&[]);
    for (route, extra) in
        [("v1", vec![]), ("v1", vec!["--multipart", "--query", "mode=lossless"]), ("legacy", vec!["--query", "strategy=pngquant"])]
    {
        let json = dir.path().join(format!("{route}.json"));
        let mut args = vec!["--route", route, "--concurrency", "2", "--duration", "2s", "--max-error-rate", "0", "--plot"];
        let plot = dir.path().join(format!("{route}.svg"));
        args.push(plot.to_str().unwrap());
        args.extend(extra.iter().copied());
        let (out, report) = loadtest(&server, &image, &args, &json);
        assert!(out.status.success(), "{route}: {}", String::from_utf8_lossy(&out.stderr));
        let summary = &report["summary"];
        assert!(summary["requests"].as_u64().unwrap() >= 2, "{summary}");
        assert_eq!(summary["errors"], 0, "{summary}");
        assert_eq!(summary["status_counts"]["200"], summary["requests"]);
        assert!(summary["mean_compression_ratio"].as_f64().is_some_and(|r| r > 0.0 && r < 1.0), "{summary}");
        for p in ["p50", "p90", "p95", "p99", "max"] {
            assert!(summary["latency_ms"][p].as_f64().is_some_and(|v| v > 0.0), "{p} missing: {summary}");
        }
        assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    }
}

#[test]
fn overload_shows_as_503_with_retry_after_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let image = screenshot_png(dir.path(), 900);
    let server = serve(&[("COMPRESSOR_WORKERS", "1"), ("COMPRESSOR_QUEUE", "0")]);
    let json = dir.path().join("overload.json");
    let (out, report) =
        loadtest(&server, &image, &["--concurrency", "8", "--duration", "3s", "--allow-status", "503", "--max-error-rate", "0"], &json);
    let summary = &report["summary"];
    assert!(out.status.success(), "{}\n{summary}", String::from_utf8_lossy(&out.stderr));
    let rejected = summary["rejected_with_retry_after"].as_u64().unwrap();
    let ok = summary["status_counts"]["200"].as_u64().unwrap_or(0);
    assert!(rejected > 0, "no 503 at 8 clients against 1 worker and no queue: {summary}");
    assert!(ok > 0, "nothing succeeded: {summary}");
    assert_eq!(rejected + ok, summary["requests"].as_u64().unwrap(), "statuses other than 200 and 503: {summary}");
}

#[test]
fn impossible_thresholds_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let image = screenshot_png(dir.path(), 128);
    let server = serve(&[]);
    let json = dir.path().join("tight.json");
    let (out, report) = loadtest(&server, &image, &["--concurrency", "1", "--duration", "1s", "--max-p95-ms", "0.001"], &json);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report["summary"]["passed"], false);
    let (out, _) = loadtest(&server, &image, &["--concurrency", "1", "--duration", "1s", "--min-rps", "1000000"], &json);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn k6_scripts_parse() {
    let scripts = repo_root().join("loadtest/k6");
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&scripts).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "js") {
            continue;
        }
        // k6 scripts are ES modules; node checks their syntax when they are named .mjs.
        let copy = dir.path().join(path.file_stem().unwrap()).with_extension("mjs");
        std::fs::copy(&path, &copy).unwrap();
        let out = Command::new("node").arg("--check").arg(&copy).output().expect("node is needed to check the k6 scripts");
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        checked += 1;
    }
    assert!(checked >= 3, "expected the k6 scenarios, found {checked}");
}

/// Metric names used in the Grafana dashboard's PromQL expressions.
fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("deploy/grafana/dashboards/compressor.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "dashboard has only {} queries", exprs.len());
    let mut names = BTreeSet::new();
    for e in exprs {
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("compressor_") || word.starts_with("process_") {
                names.insert(word.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count").to_owned());
            }
        }
    }
    names
}

#[test]
fn prometheus_scrapes_the_service_and_the_dashboard_uses_real_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let image = screenshot_png(dir.path(), 128);
    let server = serve(&[]);
    // A few uploads so the request counter exists.
    let json = dir.path().join("warm.json");
    let (out, _) = loadtest(&server, &image, &["--concurrency", "1", "--duration", "1s", "--max-requests", "5"], &json);
    assert!(out.status.success());

    // Every metric the dashboard queries is exported by the service.
    let metrics = http_get(&format!("{}/metrics", server.url));
    let exported: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            l.split(['{', ' ']).next().unwrap().trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count").to_owned()
        })
        .collect();
    for name in dashboard_metrics() {
        assert!(exported.contains(&name), "dashboard queries {name}, which /metrics does not export");
    }

    // A real Prometheus server scrapes it and answers a query over its HTTP API.
    let Some(prometheus) = which("prometheus") else {
        assert!(std::env::var_os("CI").is_none(), "prometheus is required in CI (scripts/install-deps.sh installs it)");
        eprintln!("prometheus is not installed: skipping the scrape");
        return;
    };
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: compressor\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n", server.port),
    )
    .unwrap();
    let mut child = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(prom_port, "prometheus");
    let deadline = Instant::now() + Duration::from_secs(40);
    let query =
        format!("http://127.0.0.1:{prom_port}/api/v1/query?query=sum(compressor_http_requests_total%7Broute%3D%22%2Fv1%2Fcompress%22%7D)");
    let value = loop {
        let body: serde_json::Value = serde_json::from_str(&http_get(&query)).unwrap_or_default();
        if let Some(v) = body["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) {
            break v;
        }
        assert!(Instant::now() < deadline, "Prometheus never scraped the request counter: {body}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(value >= 5.0, "Prometheus saw {value} requests, expected at least 5");
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.is_file()))
}

/// A blocking GET for the test's own checks.
fn http_get(url: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

/// scripts/loadtest-compare.py (the speed issue's service comparison) runs end to end on a short
/// budget: it starts the service, measures it and N concurrent pngquant processes on the same
/// image, and prints every measurement and goal. The numbers are not judged here.
#[test]
fn the_service_comparison_script_measures_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let image = screenshot_png(dir.path(), 300);
    let out = Command::new("python3")
        .arg(repo_root().join("scripts/loadtest-compare.py"))
        .args(["--duration", "1s", "--concurrency", "2", "--runs", "2", "--compressor", env!("CARGO_BIN_EXE_compressor")])
        .arg(&image)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "| screenshot.png | 0.1 |",
        "| throughput, 2 at a time (images/s) |",
        "| legacy route throughput at 2 clients >= 2 x 2 pngquant processes |",
        "| legacy route 1-client p50 <= 0.5 x one pngquant run (geomean over images) |",
        "| POST /v1/compress 1-client p50 <= 0.6 x one pngquant run (geomean) |",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    // Every ratio is a positive number: both sides were measured.
    let ratios: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && l.ends_with(" x |"))
        .map(|l| {
            let cell = l.trim_end_matches(" x |").rsplit("| ").next().unwrap();
            cell.trim().parse::<f64>().unwrap_or_else(|_| panic!("not a ratio: {l}"))
        })
        .collect();
    assert_eq!(ratios.len(), 4, "{stdout}");
    assert!(ratios.iter().all(|r| *r > 0.0 && r.is_finite()), "{ratios:?}");
}
