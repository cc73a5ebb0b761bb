//! The API contract: schemathesis (PyPI, installed by `scripts/install-deps.sh`) generates
//! requests from `/openapi.json` against the service on a loopback port, positive and negative,
//! and checks every answer against the document with every check it has (`--checks all`): status
//! codes, media types, headers, bodies, that schema-valid requests are accepted (content-dependent
//! refusals aside: `tests/contract/schemathesis.toml`) and schema-invalid ones refused, no 5xx.
//! Any finding fails the test, and its report is printed.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Server, client, config, parse_metrics};
use compressor_server::{Config, VideoConfig};

/// Fixed, so a run is reproducible (`st run … --seed SEED` replays it).
const SEED: &str = "19";
/// Test cases per operation and phase; with the seed this keeps the run to a few minutes.
const MAX_EXAMPLES: &str = "40";

/// `name="…"` of every `<testcase>` and the counts of `<testsuite>` in a JUnit report.
fn junit(report: &str) -> (Vec<String>, u64, u64) {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..].split('"').next()?.to_owned())
    };
    let mut cases = Vec::new();
    let (mut failures, mut errors) = (0, 0);
    for tag in report.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or("");
        if tag.starts_with("testcase ") {
            cases.push(attribute(tag, "name").unwrap_or_default().replace("&quot;", "\""));
        } else if tag.starts_with("testsuite ") {
            failures += attribute(tag, "failures").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            errors += attribute(tag, "errors").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    (cases, failures, errors)
}

#[test]
fn junit_reports_are_read() {
    let report = r#"<?xml version="1.0"?><testsuites><testsuite name="schemathesis" tests="2" failures="1" errors="0">
        <testcase name="POST /v1/compress" time="1.0"><failure type="failure" message="x"/></testcase>
        <testcase name="GET /health" time="0.1"></testcase></testsuite></testsuites>"#;
    assert_eq!(junit(report), (vec!["POST /v1/compress".to_owned(), "GET /health".to_owned()], 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_with_every_check() {
    let temp = tempfile::tempdir().unwrap();
    // Pools large enough that schemathesis's requests never meet a 503 (it reads any 5xx as a
    // server error), and a 4 MP pixel limit: generated enlargements of tiny images to tens of
    // megapixels with a target quality are legitimate work that can outlast the 60 s timeout
    // (504); under the limit they are refused at once (413). The video scratch files go to
    // `temp`, so the test can see them removed.
    let video = VideoConfig { workers: 1, queue: 64, temp_dir: Some(temp.path().join("video")), ..VideoConfig::default() };
    std::fs::create_dir(temp.path().join("video")).unwrap();
    let server = Server::start(Config { workers: 2, queue: 64, max_pixels: 4_000_000, video: Some(video), ..config() }).await;
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    let junit_path = temp.path().join("junit.xml");
    // Read from a file rather than from its URL: schemathesis leaves out the operation that
    // serves the document it was loaded from, and `GET /openapi.json` is an operation too.
    let doc: serde_json::Value = client().get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schema_path = temp.path().join("openapi.json");
    std::fs::write(&schema_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let schema = schema_path.display().to_string();
    let base = server.url("");
    let config_file = here.join("schemathesis.toml").display().to_string();
    let junit_file = junit_path.display().to_string();
    let args: Vec<String> = [
        "--config-file",
        &config_file,
        "run",
        &schema,
        "--url",
        &base,
        "--checks",
        "all",
        "--seed",
        SEED,
        "--max-examples",
        MAX_EXAMPLES,
        "--workers",
        "2",
        "--request-timeout",
        "60",
        "--report",
        "junit",
        "--report-junit-path",
        &junit_file,
        "--no-color",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    println!("st {}", args.join(" "));
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("st").args(&args).current_dir(&here).output().expect("st (PyPI schemathesis; scripts/install-deps.sh installs it)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    println!("schemathesis took {:.1} s", started.elapsed().as_secs_f64());
    let report = std::fs::read_to_string(&junit_path).unwrap_or_else(|e| panic!("no JUnit report from st ({e}); exit {:?}", output.status));
    let (cases, failures, errors) = junit(&report);
    assert_eq!((failures, errors), (0, 0), "schemathesis findings (above)");
    assert!(output.status.success(), "st exited {:?}", output.status);

    // Every operation of the document was tested.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let name = format!("{} {path}", method.to_uppercase());
            assert!(cases.contains(&name), "{name} was not tested: {cases:?}");
        }
    }

    // And the generated requests reached the routes' successful answers, not only their errors.
    let metrics = parse_metrics(&client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap());
    for route in ["/v1/compress", "/v1/variants", "/compress-image", "/v1/video/compress"] {
        let ok = metrics
            .iter()
            .filter(|(series, _)| series.contains(&format!("route=\"{route}\"")) && series.contains("status=\"200\""))
            .map(|(_, count)| count)
            .sum::<f64>();
        let all: f64 = metrics
            .iter()
            .filter(|(series, _)| series.starts_with("compressor_http_requests_total") && series.contains(&format!("route=\"{route}\"")))
            .map(|(_, count)| count)
            .sum();
        println!("{route}: {ok} of {all} requests answered 200");
        assert!(ok >= 1.0, "no generated request to {route} was answered 200");
    }
    assert!(common::entries(&temp.path().join("video")).is_empty(), "video scratch files left behind");
}
