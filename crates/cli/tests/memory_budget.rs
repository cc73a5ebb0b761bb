//! `compressor serve` on its defaults inside a 1 GiB memory cgroup (the old service's e2-micro):
//! four concurrent 90 MP uploads, four 12 MP ones (one fits at a time, leaving room for small
//! images) and a stream of small ones. The budget (derived
//! from the cgroup's limit) keeps it alive: every answer is 200, 413 or 503, the small ones keep
//! being served, and the kernel kills nothing. Without the budget the same cgroup kills it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use compressor_test_support::{corpus_file, free_port, wait_for_port};

const LIMIT: u64 = 1 << 30;

/// A memory cgroup (v1, or v2 when that is what this machine has) below our own, limited to LIMIT.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let v1 = own.lines().find_map(|l| {
            l.splitn(3, ':').collect::<Vec<_>>().get(1..).filter(|p| p[0].split(',').any(|c| c == "memory")).map(|p| p[1].to_owned())
        });
        let (parent, v2) = match v1 {
            Some(path) => (PathBuf::from(format!("/sys/fs/cgroup/memory{path}")), false),
            None => {
                let path = own.lines().find_map(|l| l.strip_prefix("0::")).expect("no memory cgroup for this process");
                (PathBuf::from(format!("/sys/fs/cgroup{path}")), true)
            }
        };
        let dir = parent.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!("cannot create the memory cgroup {} ({e}): this test needs a writable memory cgroup", dir.display())
        });
        let limit_file = if v2 { "memory.max" } else { "memory.limit_in_bytes" };
        std::fs::write(dir.join(limit_file), LIMIT.to_string()).unwrap();
        if !v2 {
            // No swap either (when the kernel accounts it), so "1 GiB" means what it says.
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), LIMIT.to_string());
        }
        Cgroup { dir, v2 }
    }

    /// `compressor serve` on its defaults, started inside this cgroup.
    fn serve(&self, port: u16, extra_env: &[(&str, &str)]) -> Child {
        let procs = self.dir.join("cgroup.procs");
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                "echo $$ > \"$0\" && exec \"$@\"",
                procs.to_str().unwrap(),
                env!("CARGO_BIN_EXE_compressor"),
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .env_remove("COMPRESSOR_MEMORY_BUDGET")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        wait_for_port(port, "compressor serve");
        child
    }

    fn oom_kills(&self) -> u64 {
        let file = if self.v2 { "memory.events" } else { "memory.oom_control" };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).map_or(0, |n| n.trim().parse().unwrap())
    }

    fn peak_bytes(&self) -> u64 {
        let file = if self.v2 { "memory.peak" } else { "memory.max_usage_in_bytes" };
        std::fs::read_to_string(self.dir.join(file)).map_or(0, |t| t.trim().parse().unwrap())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A `megapixels` version of a corpus image made with libvips (JPEG quality 85, or PNG).
fn scaled(source: &Path, folder: &Path, name: &str, megapixels: f64, source_pixels: f64, kernel: &str) -> Vec<u8> {
    let out = folder.join(name);
    let target = if name.ends_with(".jpg") { format!("{}[Q=85]", out.display()) } else { out.display().to_string() };
    let scale = (megapixels * 1e6 / source_pixels).sqrt().to_string();
    let status = Command::new("vips").args(["resize", source.to_str().unwrap(), &target, &scale, "--kernel", kernel]).status().unwrap();
    assert!(status.success(), "vips resize failed");
    std::fs::read(&out).unwrap()
}

struct Answer {
    status: u16,
    retry_after: bool,
    code: Option<String>,
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Answer {
    let response = client.post(url).body(body).send().await.unwrap_or_else(|e| panic!("no answer (the server died?): {e}"));
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let text = response.text().await.unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    Answer { status, retry_after, code }
}

#[test]
fn a_1_gib_instance_survives_large_uploads_and_keeps_serving_small_ones() {
    let (Some(photo), Some(shot)) =
        (corpus_file("photos_jpeg/image-rs__examples_scaledown_test.jpg"), corpus_file("png_real/screenshot/rich__features.png"))
    else {
        eprintln!("COMPRESSOR_CORPUS is not set; skipping");
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let (photo_px, shot_px) = (4032.0 * 3024.0, 1988.0 * 2228.0);
    let huge = vec![
        scaled(&photo, folder.path(), "huge1.jpg", 90.0, photo_px, "lanczos3"),
        scaled(&shot, folder.path(), "huge2.png", 90.0, shot_px, "nearest"),
    ];
    let medium = vec![
        scaled(&photo, folder.path(), "medium.png", 12.0, photo_px, "lanczos3"),
        scaled(&shot, folder.path(), "medium2.png", 12.0, shot_px, "nearest"),
    ];
    let small = scaled(&shot, folder.path(), "small.png", 0.25, shot_px, "nearest");
    for (name, data) in [("huge JPEG", &huge[0]), ("huge PNG", &huge[1]), ("medium PNG", &medium[0])] {
        assert!(data.len() < 50 << 20, "{name} must pass the default body limit: {} bytes", data.len());
    }

    let cgroup = Cgroup::new("compressor-memory-test");
    let port = free_port();
    let mut server = cgroup.serve(port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (answers, small_answers, budget) = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let budget = metrics
            .lines()
            .find_map(|l| l.strip_prefix("compressor_memory_budget_bytes "))
            .map(|v| v.trim().parse::<f64>().unwrap() as u64);

        let url = format!("{base}/v1/compress");
        let mut large = Vec::new();
        for data in huge.iter().chain(&huge).chain(&medium).chain(&medium) {
            let (client, url, data) = (client.clone(), url.clone(), data.clone());
            large.push(tokio::spawn(async move { post(&client, &url, data).await }));
        }
        // Small uploads one after another while the large ones are in: every one is served.
        let mut small_answers = Vec::new();
        let started = Instant::now();
        while !large.iter().all(|t| t.is_finished()) || small_answers.len() < 20 {
            let t = Instant::now();
            let answer = post(&client, &url, small.clone()).await;
            small_answers.push((answer.status, t.elapsed()));
            assert!(started.elapsed() < Duration::from_secs(300), "the large uploads took over 5 minutes");
        }
        let mut answers = Vec::new();
        for task in large {
            answers.push(task.await.unwrap());
        }
        (answers, small_answers, budget)
    });

    let alive = server.try_wait().unwrap().is_none();
    let (kills, peak) = (cgroup.oom_kills(), cgroup.peak_bytes());
    let _ = server.kill();
    let _ = server.wait();
    let statuses: Vec<(u16, Option<String>)> = answers.iter().map(|a| (a.status, a.code.clone())).collect();
    eprintln!("large uploads: {statuses:?}; {} small ones; cgroup peak {} MiB", small_answers.len(), peak >> 20);
    assert_eq!(budget, Some(576 << 20), "the default budget follows the cgroup: 3/4 of (1 GiB - 256 MiB)");
    assert!(alive && kills == 0, "the server was killed (alive {alive}, OOM kills {kills})");
    for a in &answers {
        assert!(matches!(a.status, 200 | 413 | 503), "status {} {:?}", a.status, a.code);
        if a.status == 503 {
            assert!(a.retry_after, "a 503 says when to retry");
        }
        if a.status == 413 {
            assert_eq!(a.code.as_deref(), Some("over_memory_budget"));
        }
    }
    assert!(answers[..4].iter().all(|a| a.status == 413), "90 MP images can never fit 576 MiB: {statuses:?}");
    assert!(answers[4..].iter().any(|a| a.status == 200), "12 MP images fit, one at a time: {statuses:?}");
    assert!(small_answers.iter().all(|(s, _)| *s == 200), "small uploads: {small_answers:?}");
    let slowest = small_answers.iter().map(|(_, t)| *t).max().unwrap();
    assert!(slowest < Duration::from_secs(5), "a small upload waited {slowest:?}");
    assert!(peak < LIMIT, "peak {peak}");

    // The same cgroup without the budget: two 90 MP JPEGs at once are more than it holds.
    let port = free_port();
    let mut unbounded = cgroup.serve(port, &[("COMPRESSOR_MEMORY_BUDGET", "64G")]);
    let url = format!("http://127.0.0.1:{port}/v1/compress");
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let sends: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn({
                    let (client, url, data) = (client.clone(), url.clone(), huge[0].clone());
                    async move { client.post(&url).body(data).send().await.map(|r| r.status().as_u16()) }
                })
            })
            .collect();
        for send in sends {
            let _ = send.await;
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let status = unbounded.try_wait().unwrap();
    let _ = unbounded.kill();
    let _ = unbounded.wait();
    assert!(cgroup.oom_kills() > kills, "without the budget the kernel should have killed it (exit {status:?})");
}

/// Scoring works in tiles (a few tiles and a quarter-size copy of both images rather than about
/// 150 bytes per pixel), so the same 1 GiB instance scores a 24 MP photo rather than refusing it
/// as over its budget (issue 30).
#[test]
fn a_1_gib_instance_scores_a_24_mp_photo() {
    let Some(photo) = corpus_file("photos_jpeg/image-rs__examples_scaledown_test.jpg") else {
        eprintln!("COMPRESSOR_CORPUS is not set; skipping");
        return;
    };
    let folder = tempfile::tempdir().unwrap();
    let large = scaled(&photo, folder.path(), "photo24.jpg", 24.0, 4032.0 * 3024.0, "lanczos3");

    let cgroup = Cgroup::new("compressor-score-test");
    let port = free_port();
    let mut server = cgroup.serve(port, &[]);
    let url = format!("http://127.0.0.1:{port}/v1/compress?score=true");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (status, score, body) = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().unwrap();
        let response = client.post(&url).body(large).send().await.unwrap_or_else(|e| panic!("no answer (the server died?): {e}"));
        let status = response.status().as_u16();
        let score = response.headers().get("x-quality-score").and_then(|v| v.to_str().ok()?.parse::<f64>().ok());
        (status, score, response.text().await.unwrap_or_default())
    });
    let alive = server.try_wait().unwrap().is_none();
    let (kills, peak) = (cgroup.oom_kills(), cgroup.peak_bytes());
    let _ = server.kill();
    let _ = server.wait();
    eprintln!("24 MP scored: status {status}, score {score:?}; cgroup peak {} MiB", peak >> 20);
    assert!(alive && kills == 0, "the server was killed (alive {alive}, OOM kills {kills})");
    assert_eq!(status, 200, "{body}");
    assert!(score.is_some_and(|s| (0.0..=100.0).contains(&s)), "x-quality-score: {score:?}");
    assert!(peak < LIMIT, "peak {peak}");
}
