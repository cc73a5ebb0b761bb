//! The runtime container image, built by scripts/image.sh from this build's binary and run with
//! podman (runc, the host's network, a read-only root filesystem, its own non-root user): it
//! serves, compresses real images on both routes, answers its own HEALTHCHECK, has no shell, and
//! drains an in-flight request on `podman stop` before exiting 0.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use compressor_test_support::{corpus, free_port, repo_root, wait_until};

fn podman(args: &[&str]) -> Output {
    Command::new("podman").args(args).output().expect("podman is needed for this test (scripts/install-deps.sh installs it)")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A container removed when the test ends, however it ends.
struct Container(String);

impl Container {
    /// Runs `image` detached as `name`: the host's network, a read-only root, listening on `port`
    /// of loopback, with extra `VAR=value` settings.
    fn start(name: &str, image: &str, port: u16, env: &[&str]) -> Container {
        let listen = format!("COMPRESSOR_LISTEN=127.0.0.1:{port}");
        let mut args = vec!["run", "--detach", "--name", name, "--network", "host", "--read-only", "--env", &listen];
        for setting in env {
            args.extend(["--env", setting]);
        }
        args.push(image);
        ok(podman(&args));
        Container(name.to_owned())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time", "0", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_serves_checks_its_health_and_drains_on_stop() {
    let Some(corpus) = corpus() else { return };
    let image = format!("localhost/compressor:test-{}", std::process::id());
    let (_image, summary) = BuiltImage::build("build", &image);
    assert!(summary.contains("MiB uncompressed") && summary.contains("gzip"), "{summary}");
    println!("{summary}");

    let port = free_port();
    let container = Container::start(&format!("compressor-test-{}", std::process::id()), &image, port, &["COMPRESSOR_SHUTDOWN_GRACE=30s"]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let health = format!("{base}/health");
    wait_until("the service in the container", Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let answer = client.get(&health).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "OK");

    // It runs as its own numeric user, on a read-only root.
    let pid = ok(podman(&["inspect", "--format", "{{.State.Pid}}", &container.0]));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("10001"), "{uid}");
    assert_eq!(ok(podman(&["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", &container.0])), "true");

    // Real images through both routes.
    let png = std::fs::read(corpus.join("png_real/screenshot/rich__features.png")).unwrap();
    let jpeg = std::fs::read(corpus.join("photos_jpeg/exif-orientation__Landscape_2.jpg")).unwrap();
    for (input, content_type) in [(&png, "image/png"), (&jpeg, "image/jpeg")] {
        let answer = client.post(format!("{base}/v1/compress")).body(input.clone()).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["content-type"], content_type);
        let out = answer.bytes().await.unwrap();
        assert!(!out.is_empty() && out.len() < input.len(), "{content_type}: {} -> {}", input.len(), out.len());
    }
    // A HEIC (libheif and its HEVC decoder inside the image) comes back converted.
    let heic = std::fs::read(corpus.join("heic/libheif__with-alpha-512x512.heic")).unwrap();
    let answer = client.post(format!("{base}/v1/compress")).body(heic).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(["image/jpeg", "image/webp", "image/avif"].contains(&content_type.as_str()), "{content_type}");
    assert!(!answer.bytes().await.unwrap().is_empty());
    let form = reqwest::multipart::Form::new().part("image_files", reqwest::multipart::Part::bytes(png.clone()).file_name("shot.png"));
    let answer = client.post(format!("{base}/compress-image")).multipart(form).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("x-compression-metadata"));
    assert!(answer.bytes().await.unwrap().len() < png.len());

    // This image has no ffmpeg, so it runs the image service only.
    let video = client.post(format!("{base}/v1/video/compress")).body(png.clone()).send().await.unwrap();
    assert_eq!(video.status(), 404);

    // The image's own HEALTHCHECK (the binary asking itself), and the subcommand directly.
    ok(podman(&["healthcheck", "run", &container.0]));
    let inside = ok(podman(&["exec", &container.0, "/usr/local/bin/compressor", "healthcheck"]));
    assert!(inside.ends_with("/readyz: ready"), "{inside}");

    // No shell to run anything else with.
    let shell = podman(&["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", &image, "-c", "true"]);
    assert!(!shell.status.success(), "/bin/sh ran in the image");

    // A slow request (lossless at the highest effort) is in flight when the container is stopped:
    // it is answered, and the container then exits 0 well within the grace period.
    let photo = std::fs::read(corpus.join("png_real/photo/imagecompression.info/rgb8bit_flower_foveon.png")).unwrap();
    let slow = tokio::spawn({
        let (client, url) = (client.clone(), format!("{base}/v1/compress?mode=lossless&effort=4"));
        async move { client.post(url).body(photo).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stop = tokio::task::spawn_blocking({
        let name = container.0.clone();
        move || {
            let started = Instant::now();
            let out = podman(&["stop", "--time", "40", &name]);
            (out, started.elapsed())
        }
    });
    let status = slow.await.unwrap().expect("the in-flight request got an answer");
    assert_eq!(status, 200, "the in-flight request was cut off");
    let (stopped, took) = stop.await.unwrap();
    ok(stopped);
    assert!(took < Duration::from_secs(35), "stop took {took:?}: it waited for the kill timeout");
    assert_eq!(ok(podman(&["inspect", "--format", "{{.State.ExitCode}}", &container.0])), "0");
    // Stopped means stopped: nothing answers any more.
    assert!(client.get(&health).send().await.is_err());
}

/// Builds `scripts/image.sh <how>` as `image` (removed when the test ends); returns its size line.
struct BuiltImage(String);

impl BuiltImage {
    fn build(how: &str, image: &str) -> (BuiltImage, String) {
        let built = Command::new(repo_root().join("scripts/image.sh"))
            .args([how, env!("CARGO_BIN_EXE_compressor")])
            .env("IMAGE", image)
            .output()
            .unwrap();
        let summary = ok(built);
        (BuiltImage(image.to_owned()), summary)
    }
}

impl Drop for BuiltImage {
    fn drop(&mut self) {
        let _ = podman(&["rmi", "--force", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_video_image_transcodes_videos_and_gifs_on_a_read_only_root() {
    let Some(corpus) = corpus() else { return };
    let image = format!("localhost/compressor-video:test-{}", std::process::id());
    let (_image, summary) = BuiltImage::build("build-video", &image);
    assert!(summary.contains("MiB uncompressed"), "{summary}");
    println!("{summary}");

    let port = free_port();
    let _container = Container::start(&format!("compressor-video-test-{}", std::process::id()), &image, port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    wait_until("the service in the container", Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let client = reqwest::Client::new();

    let scratch = tempfile::tempdir().unwrap();
    let clip = scratch.path().join("clip.mp4");
    compressor_test_support::test_video(&clip, 320, 240, 2);
    let gif = corpus.join("other/gif/wuffs__muybridge.gif");
    for (input, query, content_type, codecs) in [
        (clip.clone(), "", "video/mp4", "h264,aac"),
        (clip.clone(), "?format=webm", "video/webm", "vp9,opus"),
        (gif, "", "video/mp4", "h264"),
    ] {
        let data = std::fs::read(&input).unwrap();
        let answer = client.post(format!("{base}/v1/video/compress{query}")).body(data.clone()).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{}{query}", input.display());
        assert_eq!(answer.headers()["content-type"], content_type);
        let out = answer.bytes().await.unwrap();
        assert!(out.len() < data.len(), "{}{query}: {} -> {}", input.display(), data.len(), out.len());
        let written = scratch.path().join("out");
        std::fs::write(&written, &out).unwrap();
        let probed = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
            .arg(&written)
            .output()
            .unwrap();
        assert_eq!(ok(probed).replace('\n', ","), codecs, "{}{query}", input.display());
    }
    // Images are served by the same instance.
    let png = std::fs::read(corpus.join("png_real/screenshot/rich__features.png")).unwrap();
    let answer = client.post(format!("{base}/v1/compress")).body(png.clone()).send().await.unwrap();
    assert_eq!(answer.status(), 200);
}
