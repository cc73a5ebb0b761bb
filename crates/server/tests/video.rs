//! The video service over real HTTP: `compressor serve`'s router on a loopback port, videos made
//! by ffmpeg in the test and the corpus's animated GIFs, answers checked by ffprobe.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, client, config, entries, parse_metrics, png, test_video, wait_until};
use compressor_server::{Config, VideoConfig};
use compressor_test_support::{Probed, ffprobe};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

const ROUTE: &str = "/v1/video/compress";

/// A service whose video scratch files go to `temp`, so the test can see them go.
fn video_config(temp: &Path, workers: usize, queue: usize) -> Config {
    let video = VideoConfig { workers, queue, temp_dir: Some(temp.to_path_buf()), ..VideoConfig::default() };
    Config { video: Some(video), ..config() }
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} without a JSON body ({e}): {text}"));
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_owned();
    (status, code, body["error"]["message"].as_str().unwrap().to_owned())
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).unwrap_or_else(|| panic!("no {name} header")).to_str().unwrap().to_owned()
}

/// Waits until `dir` is empty (the work's files are removed when its worker lets go of them).
async fn wait_empty(dir: &Path, limit: Duration) {
    let started = Instant::now();
    while !entries(dir).is_empty() {
        assert!(started.elapsed() < limit, "still in the temporary folder after {limit:?}: {:?}", entries(dir));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn raw_and_multipart_uploads_come_back_as_smaller_playable_video() {
    let (inputs, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clip = inputs.path().join("clip.mp4");
    test_video(&clip, 321, 241, 2);
    let in_frames = ffprobe(&clip).frames;
    let data = std::fs::read(&clip).unwrap();
    let server = Server::start(video_config(temp.path(), 1, 2)).await;
    let client = client();

    // Raw body, default format: MP4 stays MP4, smaller, with every frame and the audio.
    let response = client.post(server.url(ROUTE)).body(data.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "video/mp4");
    assert_eq!(header(&response, "x-original-size"), data.len().to_string());
    assert_eq!(header(&response, "x-video-size"), "320x240", "H.264 4:2:0 needs even sides");
    assert_eq!(header(&response, "x-video-codec"), "h264");
    assert_eq!(header(&response, "x-audio-codec"), "aac");
    assert!(header(&response, "x-compression-method").starts_with("h264-crf"));
    let duration: f64 = header(&response, "x-duration-seconds").parse().unwrap();
    assert!((duration - 2.0).abs() < 0.1, "{duration}");
    let announced: usize = header(&response, "x-compressed-size").parse().unwrap();
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), announced);
    assert!(body.len() < data.len(), "{} >= {}", body.len(), data.len());
    let out = inputs.path().join("out.mp4");
    std::fs::write(&out, &body).unwrap();
    let Probed { frames, codecs, .. } = ffprobe(&out);
    assert_eq!(frames, in_frames);
    assert_eq!(codecs, ["h264", "aac"]);

    // Multipart, WebM without audio; the file name follows the upload's.
    let form = Form::new().part("file", Part::bytes(data.clone()).file_name("holiday clip.mp4"));
    let response = client.post(server.url(&format!("{ROUTE}?format=webm&audio=false&quality=40"))).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "video/webm");
    assert_eq!(header(&response, "content-disposition"), "attachment; filename=\"holiday_clip.webm\"");
    assert!(response.headers().get("x-audio-codec").is_none());
    let out = inputs.path().join("out.webm");
    std::fs::write(&out, response.bytes().await.unwrap()).unwrap();
    let Probed { frames, codecs, .. } = ffprobe(&out);
    assert_eq!(frames, in_frames);
    assert_eq!(codecs, ["vp9"]);

    // A target quality: the search's score comes back and reaches it.
    let response = client.post(server.url(&format!("{ROUTE}?target_quality=70"))).body(data.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let score: f64 = header(&response, "x-quality-score").parse().unwrap();
    assert!(score >= 70.0, "{score}");
    assert!(response.bytes().await.unwrap().len() < data.len());

    // The corpus's animated GIFs become MP4 at a fraction of their size.
    if let Some(gif) = common::corpus_file("other/gif/wuffs__muybridge.gif") {
        let data = std::fs::read(&gif).unwrap();
        let response = client.post(server.url(ROUTE)).body(data.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "video/mp4");
        let body = response.bytes().await.unwrap();
        assert!(body.len() * 2 < data.len(), "{} of {}", body.len(), data.len());
    }

    // Metrics count the route's requests and bytes.
    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = parse_metrics(&text);
    let requests = samples.get(&format!("compressor_http_requests_total{{route=\"{ROUTE}\",method=\"POST\",status=\"200\"}}"));
    assert!(requests.is_some_and(|n| *n >= 2.0), "{text}");
    assert!(samples.get(&format!("compressor_bytes_in_total{{route=\"{ROUTE}\"}}")).is_some_and(|n| *n >= 2.0 * data.len() as f64));
    assert!(samples.contains_key("compressor_video_queue_depth"), "{text}");
    wait_empty(temp.path(), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn images_and_videos_are_sent_to_their_own_routes_and_bad_videos_are_typed_errors() {
    let (inputs, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clip = inputs.path().join("clip.mp4");
    test_video(&clip, 160, 120, 1);
    let data = std::fs::read(&clip).unwrap();
    let server = Server::start(Config { max_body_bytes: 1_000_000, ..video_config(temp.path(), 1, 2) }).await;
    let client = client();

    let (status, code, message) = error_code(client.post(server.url("/v1/compress")).body(data.clone()).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format"));
    assert!(message.contains(ROUTE), "{message}");
    let form = Form::new().part("image_files", Part::bytes(data.clone()).file_name("clip.mp4"));
    let (status, _, message) = error_code(client.post(server.url("/compress-image")).multipart(form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message.contains(ROUTE), "{message}");

    let (status, _, message) = error_code(client.post(server.url(ROUTE)).body(png(64, 64, 1)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message.contains("/v1/compress"), "{message}");

    // Truncated MP4, garbage behind a valid-looking header, and nothing at all.
    let cases: [(&str, Vec<u8>, &[u16]); 3] = [
        ("truncated", data[..data.len() / 3].to_vec(), &[422, 415]),
        ("garbage", [&data[..64], &[0x5a; 4096][..]].concat(), &[422, 415]),
        ("empty", Vec::new(), &[415]),
    ];
    for (name, body, statuses) in cases {
        let (status, code, _) = error_code(client.post(server.url(ROUTE)).body(body).send().await.unwrap()).await;
        assert!(statuses.contains(&status.as_u16()), "{name}: {status} {code}");
    }
    for query in ["format=mkv", "quality=101", "speed=3", "target_quality=101"] {
        let (status, code, _) =
            error_code(client.post(server.url(&format!("{ROUTE}?{query}"))).body(data.clone()).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_options"), "{query}");
    }
    wait_empty(temp.path(), Duration::from_secs(5)).await;

    // The video body limit is its own (here below the clip), not the image one.
    let small = VideoConfig { max_body_bytes: 1000, temp_dir: Some(temp.path().to_path_buf()), ..VideoConfig::default() };
    let server = Server::start(Config { max_body_bytes: 50, video: Some(small), ..config() }).await;
    let (status, code, message) = error_code(client.post(server.url(ROUTE)).body(data.clone()).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    assert!(message.contains("1000 byte"), "{message}");
    let (status, _, _) = error_code(client.post(server.url(ROUTE)).body(data[..600].to_vec()).send().await.unwrap()).await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE, "600 bytes are under the video limit though over the image one");
    wait_empty(temp.path(), Duration::from_secs(5)).await;
}

/// Sends a whole POST of `body` to `ROUTE` on a raw socket and returns the socket unread.
async fn raw_post(server: &Server, query: &str, body: &[u8]) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST {ROUTE}{query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", server.addr, body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream
}

#[tokio::test]
async fn a_full_pool_answers_503_and_clients_that_leave_take_their_work_and_files_with_them() {
    let (inputs, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let long = inputs.path().join("long.mp4");
    test_video(&long, 1280, 720, 8);
    let data = std::fs::read(&long).unwrap();
    let server = Server::start(video_config(temp.path(), 1, 0)).await;
    let client = client();

    // A slow transcode (VP9 of 8 s of 720p) holds the only video worker: the next request is
    // refused at once with Retry-After, and image requests are still served.
    let mut first = raw_post(&server, "?format=webm", &data).await;
    wait_until("the transcode to start", Duration::from_secs(10), || {
        let temp = temp.path().to_path_buf();
        async move { entries(&temp).iter().any(|e| e.starts_with(".compressor-video-")) }
    })
    .await;
    let refused = client.post(server.url(ROUTE)).body(data.clone()).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&refused, "retry-after"), "1");
    let image = client.post(server.url("/v1/compress")).body(png(64, 64, 2)).send().await.unwrap();
    assert_eq!(image.status(), 200, "the image pool is not the video pool");
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "a busy video pool does not take an image instance out");

    // The client goes away mid-transcode: ffmpeg is stopped and every file removed well before
    // the transcode would have ended, and the worker takes the next request.
    first.shutdown().await.unwrap();
    drop(first);
    let left = Instant::now();
    wait_empty(temp.path(), Duration::from_secs(3)).await;
    let freed = left.elapsed();
    let short = inputs.path().join("short.mp4");
    test_video(&short, 160, 120, 1);
    let response = client.post(server.url(ROUTE)).body(std::fs::read(&short).unwrap()).send().await.unwrap();
    assert_eq!(response.status(), 200, "freed after {freed:?}");

    // The client goes away mid-upload: the partial upload is removed.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST {ROUTE} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", server.addr, data.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&data[..data.len() / 2]).await.unwrap();
    wait_until("the upload to be on disk", Duration::from_secs(5), || {
        let temp = temp.path().to_path_buf();
        async move { entries(&temp).iter().any(|e| e.starts_with(".compressor-upload-")) }
    })
    .await;
    drop(stream);
    wait_empty(temp.path(), Duration::from_secs(3)).await;

    // A request past the video timeout is 504, its transcode stopped and its files removed.
    let quick = VideoConfig {
        workers: 1,
        queue: 0,
        timeout: Duration::from_millis(1500),
        temp_dir: Some(temp.path().to_path_buf()),
        ..VideoConfig::default()
    };
    let server = Server::start(Config { video: Some(quick), ..config() }).await;
    let started = Instant::now();
    let response = client.post(server.url(&format!("{ROUTE}?format=webm"))).body(data.clone()).send().await.unwrap();
    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::GATEWAY_TIMEOUT, "timeout"));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    wait_empty(temp.path(), Duration::from_secs(3)).await;
}

#[tokio::test]
async fn each_service_can_run_alone() {
    let temp = tempfile::tempdir().unwrap();
    let client = client();

    let images = Server::start(Config { video: None, ..config() }).await;
    assert_eq!(client.post(images.url(ROUTE)).body(vec![0u8; 10]).send().await.unwrap().status(), 404);
    let doc: Value = client.get(images.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"].get(ROUTE).is_none());
    assert!(doc["paths"].get("/v1/compress").is_some());

    let video = Server::start(Config { images: false, ..video_config(temp.path(), 1, 0) }).await;
    for path in ["/v1/compress", "/compress-image", "/v1/variants"] {
        assert_eq!(client.post(video.url(path)).body(png(8, 8, 1)).send().await.unwrap().status(), 404, "{path}");
    }
    assert_eq!(client.get(video.url("/")).send().await.unwrap().status(), 404, "no image page on a video instance");
    assert_eq!(client.get(video.url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(common::readiness(&client, &video).await, "ready");
    // On a video-only instance a full video pool is what readiness reports.
    let inputs = tempfile::tempdir().unwrap();
    let long = inputs.path().join("long.mp4");
    test_video(&long, 1280, 720, 8);
    let busy = raw_post(&video, "?format=webm", &std::fs::read(&long).unwrap()).await;
    wait_until("saturation", Duration::from_secs(10), || async { common::readiness(&client, &video).await == "saturated" }).await;
    drop(busy);
    wait_until("readiness again", Duration::from_secs(5), || async { common::readiness(&client, &video).await == "ready" }).await;
    let doc: Value = client.get(video.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"].get(ROUTE).is_some() && doc["paths"].get("/v1/compress").is_none());
    let post = &doc["paths"][ROUTE]["post"];
    assert!(post["responses"]["200"]["content"]["video/mp4"].is_object());
    for status in ["400", "413", "415", "422", "503", "504"] {
        // Shared error responses are references into components.responses.
        let mut response = &post["responses"][status];
        if let Some(name) = response["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/responses/")) {
            response = &doc["components"]["responses"][name];
        }
        assert_eq!(response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody", "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_video_uploads_keep_no_other_video_out() {
    let (inputs, temp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clip = inputs.path().join("clip.mp4");
    test_video(&clip, 160, 120, 1);
    let data = std::fs::read(&clip).unwrap();
    // The default pool (one worker, two waiting places) and four uploads read at once.
    let video = VideoConfig { workers: 1, queue: 2, uploads: 4, temp_dir: Some(temp.path().to_path_buf()), ..VideoConfig::default() };
    let server = Server::start(Config { video: Some(video), ..config() }).await;
    let uploads_on_disk = |n: usize| {
        let temp = temp.path().to_path_buf();
        move || {
            let temp = temp.clone();
            async move { entries(&temp).iter().filter(|e| e.starts_with(".compressor-upload-")).count() == n }
        }
    };
    // Clients that send a quarter of their video, then pause (within the 10 s before the minimum
    // upload rate counts).
    let slow_upload = || async {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let head = format!("POST {ROUTE} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", data.len());
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&data[..data.len() / 4]).await.unwrap();
        stream
    };
    let mut slow = Vec::new();
    for _ in 0..3 {
        slow.push(slow_upload().await);
    }
    wait_until("three uploads on disk", Duration::from_secs(5), uploads_on_disk(3)).await;

    // As many slow uploads as the pool has places: another video that uploads at once is
    // transcoded meanwhile (before, it was refused with 503 until the slow ones were cut off).
    let response = client().post(server.url(ROUTE)).body(data.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.bytes().await.unwrap().is_empty());

    // Uploads read at once are bounded: with four in progress, a fifth is refused at once with
    // Retry-After, and reads that while it is still sending.
    slow.push(slow_upload().await);
    wait_until("four uploads on disk", Duration::from_secs(5), uploads_on_disk(4)).await;
    let refused = common::post_sending_everything(server.addr, ROUTE, data.len(), 4096).await;
    assert_eq!(refused.status(), 503, "{}", refused.answer());
    assert!(refused.answer().to_ascii_lowercase().contains("retry-after: 1"), "{}", refused.answer());

    // The slow ones finish; three take the pool's three places and are transcoded in turn.
    drop(slow.pop());
    let finishing: Vec<_> = slow
        .into_iter()
        .map(|mut stream| {
            let rest = data[data.len() / 4..].to_vec();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                stream.write_all(&rest).await.unwrap();
                let mut answer = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    for finished in finishing {
        let answer = finished.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(400)]);
    }
    wait_empty(temp.path(), Duration::from_secs(5)).await;
}

/// A folder on its own tmpfs of `bytes`, a disk that fills up; unmounted when dropped. Mounting
/// needs root, as CI runs the tests.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(bytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "compressor-test"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a {bytes}-byte tmpfs failed (it needs root, as CI runs the tests)");
        SmallDisk(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_full_temporary_disk_answers_507_and_keeps_no_files() {
    const DISK: u64 = 8 << 20;
    const PAGE: u64 = 4096;
    let inputs = tempfile::tempdir().unwrap();
    let clip = inputs.path().join("clip.mp4");
    test_video(&clip, 320, 240, 2);
    let data = std::fs::read(&clip).unwrap();
    assert!((data.len() as u64) < DISK / 2, "the clip must fit the disk: {} bytes", data.len());
    let disk = SmallDisk::mount(DISK);
    let server = Server::start(video_config(disk.path(), 1, 2)).await;
    let client = client();

    // An upload larger than the disk: refused while it is read, and its part on disk removed.
    let larger: Vec<u8> = data.iter().cycle().take((DISK + (1 << 20)) as usize).copied().collect();
    let response = client.post(server.url(ROUTE)).body(larger).send().await.unwrap();
    let (status, code, message) = error_code(response).await;
    assert_eq!((status.as_u16(), code.as_str()), (507, "insufficient_storage"), "{message}");
    assert!(message.starts_with("writing the upload"), "{message}");
    wait_empty(disk.path(), Duration::from_secs(5)).await;

    // An upload that fits, with no room left for the transcode's output (ffmpeg's write fails).
    let filler = disk.path().join("filler");
    let room_for_upload = (data.len() as u64).div_ceil(PAGE) * PAGE;
    std::fs::write(&filler, vec![1u8; (DISK - room_for_upload) as usize]).unwrap();
    let response = client.post(server.url(ROUTE)).body(data.clone()).send().await.unwrap();
    let (status, code, message) = error_code(response).await;
    assert_eq!((status.as_u16(), code.as_str()), (507, "insufficient_storage"), "{message}");
    assert!(message.contains("No space left on device"), "ffmpeg's own words: {message}");
    wait_until("only the filler left", Duration::from_secs(5), || {
        let dir = disk.path().to_path_buf();
        async move { entries(&dir) == ["filler"] }
    })
    .await;

    // With the room back, the same video is transcoded: the 507 was the disk's.
    std::fs::remove_file(&filler).unwrap();
    let response = client.post(server.url(ROUTE)).body(data.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.bytes().await.unwrap().is_empty());
    wait_empty(disk.path(), Duration::from_secs(5)).await;
}
