//! What an autoscaled instance group does to the service: three `compressor serve` processes
//! behind a real load balancer (Debian's HAProxy, health-checking `/readyz`), the built-in load
//! runner sending uploads through it, and one instance after another stopped with SIGTERM and
//! started again. No request may be lost: every answer is 200, or 503 with Retry-After when all
//! are saturated. Then one instance is killed with SIGKILL under load: only the requests in flight
//! on it may fail, and the test prints how many did.
//!
//! The instances keep serving for `COMPRESSOR_SHUTDOWN_DELAY` after SIGTERM with `/readyz`
//! answering 503, so HAProxy takes them out before they stop accepting; HAProxy opens one server
//! connection per request (`http-server-close`), so a refused connection is retried on another
//! instance before anything was sent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use compressor_test_support::{free_port, wait_until};

/// GET http://127.0.0.1:port/path answers 200.
fn answers_200(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

struct Instance {
    port: u16,
    child: Child,
}

impl Instance {
    fn start(port: u16) -> Instance {
        let child = Command::new(env!("CARGO_BIN_EXE_compressor"))
            .arg("serve")
            .env("COMPRESSOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("COMPRESSOR_WORKERS", "1")
            .env("COMPRESSOR_QUEUE", "8")
            .env("COMPRESSOR_SHUTDOWN_DELAY", "1s")
            .env("COMPRESSOR_SHUTDOWN_GRACE", "20s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("an instance to be ready", Duration::from_secs(30), || answers_200(port, "/readyz"));
        Instance { port, child }
    }

    fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// SIGTERM, then the exit status once it has drained.
    fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < end, "instance on port {} did not stop after SIGTERM", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Balancer(Child);

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy(dir: &Path, port: u16, backends: &[u16]) -> Balancer {
    let servers: String = backends.iter().enumerate().map(|(i, p)| format!("  server s{i} 127.0.0.1:{p} check\n")).collect();
    let config = format!(
        "global\n  maxconn 2000\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n  \
         retries 3\n  option redispatch 1\n  option http-server-close\n\
         frontend uploads\n  bind 127.0.0.1:{port}\n  default_backend compressors\n\
         backend compressors\n  balance leastconn\n  option httpchk GET /readyz\n  http-check expect status 200\n  \
         default-server inter 200ms fall 2 rise 2\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let haproxy = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].into_iter().find(|p| Path::new(p).exists());
    let haproxy = haproxy.expect("HAProxy is needed for this test (scripts/install-deps.sh installs it)");
    let check = Command::new(haproxy).arg("-c").arg("-f").arg(&path).output().unwrap();
    assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
    let child = Command::new(haproxy).arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let balancer = Balancer(child);
    wait_until("HAProxy to see the instances", Duration::from_secs(30), || answers_200(port, "/health"));
    balancer
}

/// A small real-looking PNG, so the load runner sends many requests a second.
fn image(dir: &Path) -> PathBuf {
    let (w, h) = (160u32, 120u32);
    let rgba: Vec<u8> = (0..h).flat_map(|y| (0..w).flat_map(move |x| [(x * 3) as u8, (y * 2) as u8, ((x ^ y) * 5) as u8, 255])).collect();
    let path = dir.join("upload.png");
    std::fs::write(&path, compressor_test_support::encode_png(w, h, &rgba, &[])).unwrap();
    path
}

/// Runs the load runner through the balancer in the background; the JSON samples when it ends.
fn load(port: u16, image: &Path, json: &Path, duration: &str) -> std::thread::JoinHandle<Vec<serde_json::Value>> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compressor"));
    cmd.args(["loadtest", "--url", &format!("http://127.0.0.1:{port}"), "--concurrency", "6", "--duration", duration, "--image"])
        .arg(image)
        .arg("--json")
        .arg(json)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let json = json.to_path_buf();
    std::thread::spawn(move || {
        let status = cmd.status().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert!(report["summary"]["requests"].as_u64().unwrap() > 0, "no requests sent ({status})");
        report["samples"].as_array().unwrap().clone()
    })
}

/// Requests that were neither answered 200 nor refused with 503 + Retry-After.
fn lost(samples: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    samples.iter().filter(|s| !(s["status"] == 200 || (s["status"] == 503 && s["retry_after"] == true))).collect()
}

#[test]
fn rolling_restarts_lose_nothing_and_a_killed_instance_loses_only_its_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let upload = image(dir.path());
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut instances: Vec<Option<Instance>> = ports.iter().map(|&p| Some(Instance::start(p))).collect();
    let front = free_port();
    let _balancer = haproxy(dir.path(), front, &ports);

    // Rolling restart under load: each instance in turn gets SIGTERM, drains, exits 0 and starts again.
    let running = load(front, &upload, &dir.path().join("rolling.json"), "16s");
    for slot in &mut instances {
        std::thread::sleep(Duration::from_secs(2));
        let instance = slot.take().unwrap();
        let port = instance.port;
        let status = instance.terminate();
        assert!(status.success(), "instance on port {port} exited with {status} after SIGTERM");
        *slot = Some(Instance::start(port));
        // HAProxy sees it up again (rise 2 × 200 ms) before the next one goes.
        std::thread::sleep(Duration::from_millis(800));
    }
    let samples = running.join().unwrap();
    let refused = samples.iter().filter(|s| s["status"] == 503).count();
    println!("rolling restart: {} requests, {refused} answered 503 with Retry-After, {} lost", samples.len(), lost(&samples).len());
    assert!(samples.len() > 100, "only {} requests in the rolling restart", samples.len());
    assert!(lost(&samples).is_empty(), "requests lost during rolling restarts: {:?}", lost(&samples));

    // SIGKILL under load: the requests in flight on that instance may fail (HAProxy answers 502 for
    // them), nothing else.
    let running = load(front, &upload, &dir.path().join("kill.json"), "8s");
    std::thread::sleep(Duration::from_secs(3));
    let victim = instances[0].take().unwrap();
    victim.signal(libc::SIGKILL);
    drop(victim);
    let samples = running.join().unwrap();
    let failed = lost(&samples);
    println!("kill -9 of one of three instances under 6 clients: {} requests, {} failed: {:?}", samples.len(), failed.len(), failed);
    assert!(samples.len() > 50, "only {} requests in the kill phase", samples.len());
    // At most the six clients' requests can have been in flight on it at that moment (with one
    // worker and leastconn balancing, about two).
    assert!(failed.len() <= 6, "{} requests failed, more than could have been in flight: {failed:?}", failed.len());
    assert!(failed.iter().all(|s| s["status"] == 502 || s["status"] == 0), "{failed:?}");
    // The survivors carried on: requests after the kill succeeded.
    let after: Vec<_> = samples.iter().filter(|s| s["at"].as_f64().unwrap() > 4.0).collect();
    assert!(!after.is_empty() && after.iter().all(|s| s["status"] == 200), "after the kill: {after:?}");
}
