//! `compressor serve` as a process: it logs where it listens, answers, and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[cfg(unix)]
#[test]
fn serve_answers_and_exits_0_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compressor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();

    // The first log line says where it listens (port 0 picks a free one).
    let first = lines.next().expect("a log line").unwrap();
    let event: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert_eq!(event["fields"]["message"], "compressor listening", "{first}");
    let address = event["fields"]["address"].as_str().unwrap().to_owned();

    let health = get(&address, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("\r\n\r\nOK"), "{health}");
    let ready = get(&address, "/readyz");
    assert!(ready.contains(r#"{"status":"ready"}"#), "{ready}");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("SIGTERM received")), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:?}");
}

#[test]
fn serve_refuses_bad_settings_with_status_2() {
    for (args, env, message) in [
        (&["serve", "--workers", "0"][..], None, "workers must be at least 1"),
        (&["serve", "--rate-limit", "ten/s"][..], None, "count must be a positive integer"),
        (&["serve", "--cors-origins", "example.com"][..], None, "is not `*` or an origin"),
        (&["serve"][..], Some(("COMPRESSOR_REQUEST_TIMEOUT", "soon")), "not a duration"),
        (&["serve", "--api-keys-file", "/nonexistent/keys"][..], None, "reading API keys file"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_compressor"));
        command.args(args).args(["--listen", "127.0.0.1:0"]);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// Starts `compressor serve` on a free port with these extra arguments and environment, and
/// returns the child with the address it logged.
#[cfg(unix)]
fn start(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_compressor"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"]).args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    // Keep reading the log, so the service never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    (child, event["fields"]["address"].as_str().unwrap().to_owned())
}

#[cfg(unix)]
#[test]
fn the_web_page_is_on_by_default_and_off_with_no_ui_or_compressor_ui_false() {
    for (args, env, page) in [
        (&[][..], &[][..], true),
        (&["--no-ui"][..], &[][..], false),
        (&[][..], &[("COMPRESSOR_UI", "false")][..], false),
        (&[][..], &[("COMPRESSOR_UI", "true")][..], true),
    ] {
        let (mut child, address) = start(args, env);
        let answer = get(&address, "/");
        let _ = child.kill();
        let _ = child.wait();
        if page {
            assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("content-type: text/html"), "{args:?} {env:?}: {answer}");
        } else {
            assert!(answer.starts_with("HTTP/1.1 404"), "{args:?} {env:?}: {answer}");
        }
    }
}

/// A log sink that goes away (a closed pipe, a crashed log collector) must not take the service
/// with it: it went on running but closed every connection without an answer.
#[cfg(unix)]
#[test]
fn serve_keeps_answering_when_its_log_pipe_is_closed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_compressor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    let address = event["fields"]["address"].as_str().unwrap().to_owned();
    drop(log); // the reading end goes away: every log write from now on fails
    for _ in 0..3 {
        let health = get(&address, "/health");
        assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A log written to a file (or a pipe, or journald) holds text, not a terminal's colour codes:
/// colours are for a terminal only.
#[cfg(unix)]
#[test]
fn serve_writes_no_colour_codes_to_a_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_compressor"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let address = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        let listening = log.lines().find(|l| l.contains("compressor listening"));
        if let Some(address) = listening.and_then(|l| l.split("address=").nth(1)).and_then(|a| a.split_whitespace().next()) {
            break address.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no listening line: {log:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(get(&address, "/health").starts_with("HTTP/1.1 200"));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("compressor listening") && log.contains("stopped"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape characters in a log file: {log:?}");
}
