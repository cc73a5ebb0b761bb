//! A video error says the same code on every surface: `compressor compress --json`, the batch
//! manifest, and the service's error body (`compressor serve` on a loopback port), all run as the
//! real program on a file real ffmpeg fails on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn compressor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_compressor"))
}

/// The code `compressor compress --json` reports, and its exit status.
fn compress_code(input: &Path, output: &Path) -> (Option<i32>, String, String) {
    let out = compressor().arg("compress").arg(input).arg("--json").arg("-o").arg(output).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), line["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {line}")).to_owned(), stderr)
}

/// The `error_code` of `key` in the manifest `compressor batch src dst` writes, and its exit status.
fn batch_code(src: &Path, dst: &Path, key: &str) -> (Option<i32>, String) {
    let out = compressor().arg("batch").arg(src).arg(dst).args(["--include", "*.mkv"]).output().unwrap();
    let manifest = std::fs::read_to_string(dst.join(".compressor/manifest-0-of-1.jsonl"))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let record = manifest
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no record of {key} in {manifest}"));
    assert_eq!(record["status"], "failed", "{record}");
    (out.status.code(), record["error_code"].as_str().unwrap_or_else(|| panic!("no error_code in {record}")).to_owned())
}

/// The status and error code `POST /v1/video/compress` answers for `body`, from a `compressor
/// serve` started for it.
fn http_code(body: &[u8], temp: &Path) -> (u16, String) {
    let mut command = compressor();
    command.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--services", "video", "--temp-dir"]).arg(temp);
    let served = compressor_test_support::Served::start(command);
    let address = served.address.clone();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        stream,
        "POST /v1/video/compress HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    drop(served);

    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{response}"));
    let json = response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {response}"));
    (status, json["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {json}")).to_owned())
}

#[test]
fn a_failed_transcode_has_one_code_in_cli_json_batch_manifest_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, temp) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("temp"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&temp).unwrap();
    // ffprobe reads it; ffmpeg decodes it; no audio encoder takes its 9 channels.
    let clip = src.join("nine-channels.mkv");
    compressor_test_support::untranscodable_video(&clip);

    let (status, cli, stderr) = compress_code(&clip, &dir.path().join("out.mp4"));
    assert_eq!(status, Some(1), "{stderr}");
    // The human report names the command run and ends with what ffmpeg said.
    assert!(stderr.contains("ran: ffmpeg -nostdin") && stderr.contains("9 channels"), "{stderr}");

    let (status, batch) = batch_code(&src, &dst, "nine-channels.mkv");
    assert_eq!(status, Some(1));

    let (status, http) = http_code(&std::fs::read(&clip).unwrap(), &temp);
    assert_eq!(status, 422);

    assert_eq!([cli.as_str(), batch.as_str(), http.as_str()], ["transcode_failed"; 3]);
}

#[test]
fn a_corrupt_video_has_one_code_in_cli_json_batch_manifest_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst, temp) = (dir.path().join("src"), dir.path().join("dst"), dir.path().join("temp"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&temp).unwrap();
    let fake = src.join("fake.mkv");
    std::fs::write(&fake, [&[0x1A, 0x45, 0xDF, 0xA3][..], &[0x42; 200][..]].concat()).unwrap();

    let (_, cli, stderr) = compress_code(&fake, &dir.path().join("out.mp4"));
    let (_, batch) = batch_code(&src, &dst, "fake.mkv");
    let (status, http) = http_code(&std::fs::read(&fake).unwrap(), &temp);
    assert_eq!(status, 422);
    assert_eq!([cli.as_str(), batch.as_str(), http.as_str()], ["corrupt_video"; 3], "{stderr}");
}
