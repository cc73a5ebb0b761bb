//! The service over real HTTP: a server on a loopback port, the reqwest client.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use common::{Server, bomb_png, client, config, decode_png, header, png, readiness, wait_until};
use compressor_server::{App, Config, RateLimit};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// Lossy effort 6 on this takes a good second of CPU: long enough to hold a worker while a test
/// looks at what the server does meanwhile.
fn slow_png() -> Vec<u8> {
    png(700, 700, 7)
}

const SLOW_QUERY: &str = "/v1/compress?effort=6";

async fn error_of(response: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    assert_eq!(headers.get("content-type").map(|v| v.to_str().unwrap()), Some("application/json"), "{status}");
    let body: Value = response.json().await.unwrap();
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_owned();
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no message in {body}");
    (status, headers, code)
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let server = Server::start(config()).await;
    let client = client();

    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "OK");
    let live: Value = client.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(live["status"], "ok");
    assert_eq!(readiness(&client, &server).await, "ready");

    let (status, _, code) = error_of(client.get(server.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _, code) = error_of(client.get(server.url("/v1/compress")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
}

#[tokio::test]
async fn v1_raw_upload_returns_smaller_png_with_result_headers() {
    let server = Server::start(config()).await;
    let input = png(96, 64, 1);
    let response = client()
        .post(server.url("/v1/compress?score=true"))
        .header("content-type", "application/octet-stream")
        .body(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert_eq!(header(&headers, "content-disposition"), "attachment; filename=\"image.png\"");
    assert!(header(&headers, "x-request-id").len() >= 32);
    let original: usize = header(&headers, "x-original-size").parse().unwrap();
    let compressed: usize = header(&headers, "x-compressed-size").parse().unwrap();
    let ratio: f64 = header(&headers, "x-compression-ratio").parse().unwrap();
    let score: f64 = header(&headers, "x-quality-score").parse().unwrap();
    let _ms: u64 = header(&headers, "x-processing-ms").parse().unwrap();
    let body = response.bytes().await.unwrap();
    assert_eq!(original, input.len());
    assert_eq!(compressed, body.len());
    assert!(compressed < original, "{compressed} !< {original}");
    assert!((ratio - compressed as f64 / original as f64).abs() < 1e-4, "ratio {ratio}");
    assert!((0.0..=100.0).contains(&score));
    assert_eq!(decode_png(&body), (96, 64));

    // Without `score=true` the same image comes back unscored: the score is not computed.
    let unscored = client().post(server.url("/v1/compress")).body(input.clone()).send().await.unwrap();
    assert_eq!(unscored.status(), 200);
    assert!(unscored.headers().get("x-quality-score").is_none(), "{:?}", unscored.headers());
    assert_eq!(unscored.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn v1_multipart_upload_with_json_report() {
    let server = Server::start(config()).await;
    let input = png(80, 80, 2);
    let form = Form::new().part("file", Part::bytes(input.clone()).file_name("My Shot.png").mime_str("image/png").unwrap());
    let response = client()
        .post(server.url("/v1/compress?mode=lossless&metadata=strip"))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-type"), "application/json");
    let report: Value = response.json().await.unwrap();
    let keys: BTreeSet<&str> = report.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "format",
        "width",
        "height",
        "original_size",
        "compressed_size",
        "compression_ratio",
        "quality_score",
        "processing_ms",
        "changed",
        "method",
        "notes",
        "resized_from",
        "filename",
        "data_base64",
    ]
    .into();
    assert_eq!(keys, expected);
    assert!(report["resized_from"].is_null());
    assert_eq!(report["format"], "png");
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(80), Some(80)));
    assert_eq!(report["original_size"].as_u64(), Some(input.len() as u64));
    assert_eq!(report["filename"], "My_Shot.png");
    assert!(report["quality_score"].is_null(), "lossless has no score");
    assert!(report["notes"].is_array() && report["changed"].is_boolean() && report["method"].is_string());
    let data = base64::engine::general_purpose::STANDARD.decode(report["data_base64"].as_str().unwrap()).unwrap();
    assert_eq!(data.len() as u64, report["compressed_size"].as_u64().unwrap());
    assert_eq!(decode_png(&data), (80, 80));
    let ratio = report["compression_ratio"].as_f64().unwrap();
    assert!((ratio - data.len() as f64 / input.len() as f64).abs() < 1e-9);
}

#[tokio::test]
async fn v1_bad_parameters_are_400() {
    let server = Server::start(config()).await;
    let client = client();
    for query in [
        "mode=fast",
        "quality=200",
        "quality=80-20",
        "format=bmp",
        "metadata=all",
        "effort=9",
        "target_quality=101",
        "max_bytes=0",
        "qualty=80",
        "max_bytes=lots",
        "width=0",
        "width=abc",
        "fit=cover",
        "width=10&fit=squash",
        "width=10&height=10&fit=scale",
        "width=10&fit=cover",
        "allow_downscale=true",
        "enlarge=true",
    ] {
        let response = client.post(server.url(&format!("/v1/compress?{query}"))).body(png(8, 8, 3)).send().await.unwrap();
        let (status, _, code) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(code, "invalid_options", "{query}");
    }
    // A multipart form holds its `file` field and nothing else, as the query holds only the
    // documented parameters.
    let image = || Part::bytes(png(8, 8, 3)).file_name("a.png");
    for (form, expected) in [
        (Form::new().part("image", image()), r#"a field "image"; it takes only "file""#),
        (Form::new().text("note", "hi").part("file", image()), r#"a field "note""#),
        (Form::new().part("file", image()).part("file", image()), r#"more than one "file" field"#),
    ] {
        let response = client.post(server.url("/v1/compress")).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_multipart", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(expected), "{body}");
    }
}

#[tokio::test]
async fn legacy_route_keeps_the_old_servers_shape() {
    let server = Server::start(config()).await;
    let input = png(120, 90, 4);
    // The old k6 scenario: the file in `image_files`, plus a `strategy=bimg` field the old server ignored.
    let form = Form::new()
        .text("strategy", "bimg")
        .part("image_files", Part::bytes(input.clone()).file_name("shot.png").mime_str("image/png").unwrap())
        .part("image_files", Part::bytes(b"second file, ignored".to_vec()).file_name("other.png"));
    let response = client().post(server.url("/compress-image")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert_eq!(header(&headers, "content-disposition"), "attachment; filename=shot.png");
    let metadata_text = header(&headers, "x-compression-metadata").to_owned();
    let body = response.bytes().await.unwrap();
    assert_eq!(decode_png(&body), (120, 90));
    assert!(body.len() < input.len());

    // Byte for byte: key order, spelling and number formats as the old server wrote them.
    let metadata: Value = serde_json::from_str(&metadata_text).unwrap();
    let data = &metadata["data"];
    assert!(data["compressed_image_metadata"]["ImageSize"].is_u64());
    assert!(data["original_size"].is_u64());
    assert!(data["size_difference"].is_f64(), "size_difference must be a float: {metadata_text}");
    let size_difference = data["size_difference"].as_f64().unwrap();
    assert!((size_difference - input.len() as f64 / body.len() as f64).abs() < 1e-9);
    let expected = format!(
        r#"{{"status":"success","message":"Image compressed successfully","data":{{"compressed_image_metadata":{{"Filename":"shot.png","ImageSize":{}}},"size_difference":{},"original_size":{}}}}}"#,
        body.len(),
        serde_json::to_string(&size_difference).unwrap(),
        input.len()
    );
    assert_eq!(metadata_text, expected);

    // stdlib is lossless: the pixels survive exactly.
    let form = Form::new().part("image_files", Part::bytes(input.clone()).file_name("shot.png"));
    let response = client().post(server.url("/compress-image?strategy=stdlib")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let lossless = response.bytes().await.unwrap();
    assert!(lossless.len() <= input.len());
    assert_eq!(png_pixels(&lossless), png_pixels(&input));
}

fn png_pixels(data: &[u8]) -> Vec<u8> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    buf.truncate(frame.buffer_size());
    if frame.color_type == png::ColorType::Rgba { buf.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect() } else { buf }
}

#[tokio::test]
async fn legacy_route_errors() {
    let server = Server::start(config()).await;
    let client = client();
    let form = || Form::new().part("image_files", Part::bytes(png(8, 8, 5)).file_name("a.png"));
    let (status, _, code) =
        error_of(client.post(server.url("/compress-image?strategy=bimg")).multipart(form()).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_strategy"));
    let no_file = Form::new().text("strategy", "pngquant");
    let (status, _, code) = error_of(client.post(server.url("/compress-image")).multipart(no_file).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "missing_file"));
    let (status, _, code) = error_of(client.post(server.url("/compress-image")).body(png(8, 8, 5)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_multipart"));
    // Content decides, not the name: a text file called .png is refused as unsupported.
    let fake = Form::new().part("image_files", Part::bytes(b"just text".to_vec()).file_name("fake.png"));
    let (status, _, code) = error_of(client.post(server.url("/compress-image")).multipart(fake).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format"));
}

#[tokio::test]
async fn legacy_route_on_a_real_screenshot() {
    let Some(corpus) = common::corpus() else { return };
    let input = std::fs::read(corpus.join("png_real/screenshot/rich__features.png")).unwrap();
    let server = Server::start(config()).await;
    let form = Form::new().text("strategy", "bimg").part("image_files", Part::bytes(input.clone()).file_name("rich__features.png"));
    let response = client().post(server.url("/compress-image")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let metadata: Value = serde_json::from_str(header(response.headers(), "x-compression-metadata")).unwrap();
    let body = response.bytes().await.unwrap();
    assert!(body.len() < input.len() * 3 / 4, "{} -> {}", input.len(), body.len());
    assert_eq!(metadata["data"]["original_size"].as_u64(), Some(input.len() as u64));
    decode_png(&body);
}

#[tokio::test]
async fn oversized_bodies_are_413_with_and_without_content_length() {
    let server = Server::start(Config { max_body_bytes: 10_000, ..config() }).await;
    let client = client();
    let big = vec![0u8; 20_000];
    // Content-Length over the limit: refused by the body-limit layer before anything is read.
    let (status, _, code) = error_of(client.post(server.url("/v1/compress")).body(big.clone()).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
    let form = Form::new().part("image_files", Part::bytes(big.clone()).file_name("big.png"));
    let (status, _, code) = error_of(client.post(server.url("/compress-image")).multipart(form).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));

    // Chunked, no length: the limit trips while the handler reads.
    let (status, body) = chunked_post(server.addr, "/v1/compress", &[&big[..6000], &big[6000..12_000], &big[12_000..]]).await;
    assert_eq!(status, 413, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["code"], "too_large");
}

#[tokio::test]
async fn uploads_are_charged_to_the_memory_budget_as_they_arrive() {
    // A 4 MiB budget: an upload larger than all of it is refused while it is read, as no image
    // could be compressed from it here, and the bytes it held are given back.
    let server = Server::start(Config { memory_budget: 4 << 20, ..config() }).await;
    let response = client().post(server.url("/v1/compress")).body(vec![7u8; 5 << 20]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "over_memory_budget", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("more than the whole memory budget of 4 MiB"), "{body}");
    assert_eq!(memory_reserved(&server).await, 0, "nothing is held after the refusal");
}

/// Bytes of the memory budget held now, as `/metrics` says.
async fn memory_reserved(server: &Server) -> u64 {
    let metrics = common::parse_metrics(&client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap());
    metrics["compressor_memory_reserved_bytes"] as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_image_is_served_while_large_uploads_hold_the_memory_budget() {
    use tokio::io::AsyncWriteExt;
    // A 256 MiB budget: images estimated at up to 32 MiB (an eighth; an image's estimate starts at
    // 16 MiB) are small and may use 32 MiB beyond it; large work holds at most the budget.
    let server = Server::start(Config { memory_budget: 256 << 20, max_body_bytes: 256 << 20, ..config() }).await;
    let (upload, sent) = (200usize << 20, 120usize << 20);
    // A large upload holds 120 MiB of the budget: 120 MiB of its 200 sent, then nothing for now.
    let mut holding = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Length: {upload}\r\n\r\n");
    holding.write_all(head.as_bytes()).await.unwrap();
    holding.write_all(&vec![0u8; sent]).await.unwrap();
    wait_until("the first upload to be charged", Duration::from_secs(10), || async { memory_reserved(&server).await >= 119 << 20 }).await;
    // A second one finds room for 136 MiB more, up to the whole budget, and waits there.
    let second = tokio::spawn(common::post_sending_everything(server.addr, "/v1/compress", upload, 256 << 10));
    wait_until("the second upload to stop for room", Duration::from_secs(10), || async {
        let before = memory_reserved(&server).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        before >= 255 << 20 && memory_reserved(&server).await == before
    })
    .await;
    assert!(memory_reserved(&server).await <= 256 << 20, "large work holds at most the budget");

    // A small image is answered at once from the room beyond the budget (without it, it waited
    // for room: 4.8 s, until the second upload's own 5 s ran out and gave back its bytes).
    let started = std::time::Instant::now();
    let response = client().post(server.url("/v1/compress")).body(png(64, 64, 1)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3), "the small image took {:?}", started.elapsed());
    assert!(!second.is_finished(), "the second large upload still waits");

    // The second large upload still waits its 5 s and is told to come back (and reads that).
    let sent = second.await.unwrap();
    assert_eq!(sent.status(), 503, "{}", sent.answer());
    assert!(sent.answer().to_ascii_lowercase().contains("retry-after: 1"), "{}", sent.answer());
    assert!(sent.answer().contains(r#""code":"overloaded""#), "{}", sent.answer());
    assert!(sent.answer().contains("memory budget"), "the message names what was full: {}", sent.answer());
    drop(holding);
    wait_until("the budget to be given back", Duration::from_secs(10), || async { memory_reserved(&server).await == 0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_while_the_body_is_still_coming_reaches_the_client() {
    // Clients that send all 8 MiB of their body whatever the server answers meanwhile: one over
    // the body limit by its Content-Length (413 before anything is read), one over the memory
    // budget as it is read (413 part-way). Each reads its whole answer and every write of its
    // body succeeds (a reset would fail one or the other); 20 rounds, so a race shows.
    let over_limit = Server::start(Config { max_body_bytes: 1 << 20, ..config() }).await;
    let over_budget = Server::start(Config { memory_budget: 4 << 20, ..config() }).await;
    for round in 0..20 {
        for (server, code) in [(&over_limit, "too_large"), (&over_budget, "over_memory_budget")] {
            let sent = common::post_sending_everything(server.addr, "/v1/compress", 8 << 20, 64 << 10).await;
            assert_eq!(sent.status(), 413, "round {round}, {code}");
            assert!(sent.answer().contains(&format!(r#""code":"{code}""#)), "{}", sent.answer());
        }
    }
}

/// A POST with `Transfer-Encoding: chunked` written by hand; returns the status and body.
async fn chunked_post(addr: std::net::SocketAddr, path: &str, chunks: &[&[u8]]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything; a failed write is fine.
    let _ = stream.write_all(&request).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Sends only the head of a POST with `Expect: 100-continue` and reads the first final response
/// (a `100 Continue` would mean the server wants the body, and fails the caller's checks).
async fn expect_continue_post(addr: std::net::SocketAddr, path: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before a response");
            response.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("a response without sending the body");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

#[tokio::test]
async fn bomb_headers_are_413_before_decoding() {
    let server = Server::start(Config { max_pixels: 1_000_000, ..config() }).await;
    let client = client();
    // Over the configured pixel limit (2000 x 2000), and over every default (30000 x 30000).
    for (w, h) in [(2000, 2000), (30_000, 30_000)] {
        let response = client.post(server.url("/v1/compress")).body(bomb_png(w, h)).send().await.unwrap();
        let (status, _, code) = error_of(response).await;
        assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "limit_exceeded"), "{w}x{h}");
    }
}

#[tokio::test]
async fn corrupt_and_unsupported_input() {
    let server = Server::start(config()).await;
    let client = client();
    // A PNG cut off in the middle of its image data.
    let mut truncated = png(64, 64, 6);
    truncated.truncate(truncated.len() / 2);
    let (status, _, code) = error_of(client.post(server.url("/v1/compress")).body(truncated).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image"));
    // A BMP header with nothing behind it is a corrupt BMP; a PDF is not an image format at all.
    let bmp = [b"BM".as_slice(), &[0u8; 60]].concat();
    let (status, _, code) = error_of(client.post(server.url("/v1/compress")).body(bmp).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image"));
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n".to_vec();
    let (status, _, code) = error_of(client.post(server.url("/v1/compress")).body(pdf).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format"));
}

#[tokio::test]
async fn corrupt_corpus_file_is_422() {
    let Some(corpus) = common::corpus() else { return };
    let server = Server::start(config()).await;
    let client = client();
    for name in ["image-png__x_unexpected_eof.png", "libpng-crashers__badcrc.png", "image-png__x_consecutive_idat.png"] {
        let input = std::fs::read(corpus.join("bad/png").join(name)).unwrap();
        let (status, _, code) = error_of(client.post(server.url("/v1/compress")).body(input).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image"), "{name}");
    }
}

#[tokio::test]
async fn api_keys_are_required_on_compress_routes_only() {
    let keys = ["k-one", "k-two"].map(String::from).into();
    let server = Server::start(Config { api_keys: keys, ..config() }).await;
    let client = client();
    let post = || client.post(server.url("/v1/compress")).body(png(16, 16, 8));

    let (status, headers, code) = error_of(post().send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert_eq!(header(&headers, "www-authenticate"), "Bearer");
    let (status, _, _) = error_of(post().bearer_auth("k-three").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = error_of(post().header("x-api-key", "k-on").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let form = Form::new().part("image_files", Part::bytes(png(16, 16, 8)).file_name("a.png"));
    let (status, _, _) = error_of(client.post(server.url("/compress-image")).multipart(form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(post().bearer_auth("k-one").send().await.unwrap().status(), 200);
    assert_eq!(post().header("x-api-key", "k-two").send().await.unwrap().status(), 200);
    for open in ["/health", "/healthz", "/readyz", "/metrics", "/openapi.json"] {
        assert_eq!(client.get(server.url(open)).send().await.unwrap().status(), 200, "{open}");
    }
}

#[tokio::test]
async fn rate_limit_is_per_key_with_headers() {
    let keys = ["a", "b"].map(String::from).into();
    let rate = RateLimit { count: 2, per: Duration::from_secs(60) };
    let server = Server::start(Config { api_keys: keys, rate_limit: Some(rate), ..config() }).await;
    let client = client();
    let post = |key: &str| client.post(server.url("/v1/compress")).bearer_auth(key).body(png(8, 8, 9)).send();

    let first = post("a").await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(header(first.headers(), "x-ratelimit-limit"), "2");
    assert_eq!(header(first.headers(), "x-ratelimit-remaining"), "1");
    let second = post("a").await.unwrap();
    assert_eq!(header(second.headers(), "x-ratelimit-remaining"), "0");
    let (status, headers, code) = error_of(post("a").await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    let retry: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    assert_eq!(header(&headers, "x-ratelimit-limit"), "2");
    assert_eq!(header(&headers, "x-ratelimit-remaining"), "0");
    let reset: u64 = header(&headers, "x-ratelimit-reset").parse().unwrap();
    assert!((retry..=60).contains(&reset), "reset {reset}");
    // The other key has its own bucket; a refused key does not count against it.
    assert_eq!(post("b").await.unwrap().status(), 200);
}

#[tokio::test]
async fn rate_limit_per_client_ip_without_keys() {
    let rate = RateLimit { count: 1, per: Duration::from_secs(60) };
    let server = Server::start(Config { rate_limit: Some(rate), ..config() }).await;
    let client = client();
    let form = || Form::new().part("image_files", Part::bytes(png(8, 8, 9)).file_name("a.png"));
    assert_eq!(client.post(server.url("/compress-image")).multipart(form()).send().await.unwrap().status(), 200);
    let (status, _, code) = error_of(client.post(server.url("/compress-image")).multipart(form()).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    // Health checks are not rate limited.
    assert_eq!(client.get(server.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn rate_limit_per_forwarded_client_behind_a_proxy() {
    let rate = RateLimit { count: 1, per: Duration::from_secs(60) };
    let behind_proxy = Server::start(Config { rate_limit: Some(rate), forwarded_for_depth: 1, ..config() }).await;
    let direct = Server::start(Config { rate_limit: Some(rate), ..config() }).await;
    let client = client();
    let post = |server: &Server, forwarded_for: &'static str| {
        client.post(server.url("/v1/compress")).header("x-forwarded-for", forwarded_for).body(png(8, 8, 11)).send()
    };
    assert_eq!(post(&behind_proxy, "10.0.0.1").await.unwrap().status(), 200);
    assert_eq!(post(&behind_proxy, "10.0.0.1").await.unwrap().status(), 429);
    // Another client behind the same proxy has its own bucket, whatever it claims further left.
    assert_eq!(post(&behind_proxy, "10.0.0.1, 10.0.0.2").await.unwrap().status(), 200);
    assert_eq!(post(&behind_proxy, "10.0.0.3, 10.0.0.2").await.unwrap().status(), 429);
    // Without a configured proxy the header is not trusted: both requests come from 127.0.0.1.
    assert_eq!(post(&direct, "10.0.0.1").await.unwrap().status(), 200);
    assert_eq!(post(&direct, "10.0.0.2").await.unwrap().status(), 429);
}

#[tokio::test]
async fn saturated_pool_answers_503_at_once() {
    let server = Server::start(Config { workers: 1, queue: 0, ..config() }).await;
    let client = client();
    let slow = tokio::spawn(client.post(server.url(SLOW_QUERY)).body(slow_png()).send());
    wait_until("the slow request to be admitted", Duration::from_secs(10), || async { readiness(&client, &server).await == "saturated" })
        .await;

    let started = std::time::Instant::now();
    let response = client.post(server.url("/v1/compress")).body(png(8, 8, 10)).send().await.unwrap();
    let (status, headers, code) = error_of(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "overloaded"));
    assert_eq!(header(&headers, "retry-after"), "1");
    // Refused while the worker is still busy, not after waiting for it.
    assert!(!slow.is_finished(), "the slow request ended before the refusal; make it slower");
    assert!(started.elapsed() < Duration::from_secs(1), "503 took {:?}", started.elapsed());
    let form = Form::new().part("image_files", Part::bytes(png(8, 8, 10)).file_name("a.png"));
    let (status, _, _) = error_of(client.post(server.url("/compress-image")).multipart(form).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // A client that waits for `100 Continue` before sending its 40 MB gets the 503 instead: the
    // body is never asked for.
    let (status, head) = expect_continue_post(server.addr, "/v1/compress", 40_000_000).await;
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");

    // The request holding the worker is unaffected, and the server is ready again after it.
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(readiness(&client, &server).await, "ready");
}

#[tokio::test]
async fn slow_requests_time_out_with_504() {
    let server = Server::start(Config { request_timeout: Duration::from_millis(150), ..config() }).await;
    let started = std::time::Instant::now();
    let response = client().post(server.url(SLOW_QUERY)).body(slow_png()).send().await.unwrap();
    let (status, _, code) = error_of(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::GATEWAY_TIMEOUT, "timeout"));
    assert!(started.elapsed() < Duration::from_secs(1), "504 after {:?}", started.elapsed());
}

/// Waits until the only worker is free again (readiness stops saying saturated).
async fn worker_free(client: &reqwest::Client, server: &Server) {
    wait_until("the worker to be free", Duration::from_secs(120), || async { readiness(client, server).await == "ready" }).await;
}

#[tokio::test]
async fn a_timed_out_request_stops_its_work_and_frees_its_worker() {
    // A target-quality search on a 4 MP image: many stages (quantize, encode, score per step).
    let (image, query) = (png(2000, 2000, 11), "/v1/compress?target_quality=90");
    let client = client();
    let one = |timeout: Duration| Config { workers: 1, queue: 0, request_timeout: timeout, ..config() };

    let server = Server::start(one(Duration::from_secs(120))).await;
    let started = std::time::Instant::now();
    let response = client.post(server.url(query)).body(image.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let whole = started.elapsed();

    let server = Server::start(one(Duration::from_millis(100))).await;
    let started = std::time::Instant::now();
    let (status, _, code) = error_of(client.post(server.url(query)).body(image).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::GATEWAY_TIMEOUT, "timeout"));
    worker_free(&client, &server).await;
    let freed = started.elapsed();
    println!("the whole request: {whole:?}; with a 100 ms timeout, the worker was free after {freed:?}");
    assert!(freed * 3 < whole, "freed after {freed:?}; the work takes {whole:?}");
    let response = client.post(server.url("/v1/compress")).body(png(16, 16, 1)).send().await.unwrap();
    assert_eq!(response.status(), 200, "the freed worker serves the next request");
}

#[tokio::test]
async fn cors_echoes_only_configured_origins() {
    let origins = vec!["https://app.example".to_owned()];
    let server = Server::start(Config { cors_origins: origins, ..config() }).await;
    let client = client();

    let allowed = client.post(server.url("/v1/compress")).header("origin", "https://app.example").body(png(8, 8, 11)).send().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(header(allowed.headers(), "access-control-allow-origin"), "https://app.example");
    let exposed = header(allowed.headers(), "access-control-expose-headers").to_ascii_lowercase();
    for name in [
        "x-original-size",
        "x-compressed-size",
        "x-compression-ratio",
        "x-quality-score",
        "x-processing-ms",
        "x-compression-metadata",
        "retry-after",
        "x-ratelimit-remaining",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }

    let refused =
        client.post(server.url("/v1/compress")).header("origin", "https://evil.example").body(png(8, 8, 11)).send().await.unwrap();
    assert!(refused.headers().get("access-control-allow-origin").is_none());

    let preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/v1/compress"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "x-api-key, content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(preflight.headers(), "access-control-allow-origin"), "https://app.example");
    assert!(header(preflight.headers(), "access-control-allow-methods").contains("POST"));
    let allowed_headers = header(preflight.headers(), "access-control-allow-headers").to_ascii_lowercase();
    assert!(allowed_headers.contains("x-api-key") && allowed_headers.contains("authorization"), "{allowed_headers}");

    let refused_preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/v1/compress"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(refused_preflight.headers().get("access-control-allow-origin").is_none());

    // `*` allows any origin.
    let any = Server::start(Config { cors_origins: vec!["*".into()], ..config() }).await;
    let response = client.get(any.url("/healthz")).header("origin", "https://whoever.example").send().await.unwrap();
    assert_eq!(header(response.headers(), "access-control-allow-origin"), "*");
    // Without configured origins there are no CORS headers at all.
    let none = Server::start(config()).await;
    let response = client.get(none.url("/healthz")).header("origin", "https://app.example").send().await.unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_panicking_handler_answers_500_for_that_request_only() {
    async fn boom() -> &'static str {
        panic!("test panic")
    }
    let extra = axum::Router::new().route("/boom", axum::routing::get(boom));
    let server = Server::start_app(App::with_extra_routes(config(), extra)).await;
    let client = client();
    let (status, _, code) = error_of(client.get(server.url("/boom")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
    assert_eq!(client.post(server.url("/v1/compress")).body(png(8, 8, 12)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn request_ids_are_set_and_propagated() {
    let server = Server::start(config()).await;
    let client = client();
    let given = client.get(server.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(header(given.headers(), "x-request-id"), "abc-123");
    let a = client.get(server.url("/healthz")).send().await.unwrap();
    let b = client.get(server.url("/healthz")).send().await.unwrap();
    assert_ne!(header(a.headers(), "x-request-id"), header(b.headers(), "x-request-id"));
}

#[tokio::test]
async fn graceful_shutdown_lets_the_in_flight_request_finish() {
    let mut server = Server::start(Config { workers: 1, queue: 0, shutdown_grace: Duration::from_secs(30), ..config() }).await;
    let client = client();
    let input = slow_png();
    let in_flight = tokio::spawn(client.post(server.url(SLOW_QUERY)).body(input.clone()).send());
    wait_until("the slow request to be admitted", Duration::from_secs(10), || async { readiness(&client, &server).await == "saturated" })
        .await;

    let stopped = server.shutdown();
    // Readiness turns 503 "draining" (asked in-process: the listener no longer accepts).
    let router = server.router.clone();
    wait_until("readiness to report draining", Duration::from_secs(5), || {
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            let request = axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
            let response = router.oneshot(request).await.unwrap();
            let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            body.as_ref() == br#"{"status":"draining"}"#
        }
    })
    .await;

    let response = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert_eq!(decode_png(&body), (700, 700));
    let result = tokio::time::timeout(Duration::from_secs(10), stopped).await.expect("server stops after draining");
    result.unwrap().expect("App::run returns Ok after a graceful shutdown");
    // Nothing listens any more.
    assert!(client.get(server.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn the_web_page_is_served_with_its_policy_a_tag_and_compression_unless_turned_off() {
    let server = Server::start(config()).await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    for (path, content_type) in [("/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let page = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let headers = page.headers().clone();
        assert!(header(&headers, "content-type").starts_with(content_type), "{path}");
        assert!(header(&headers, "content-security-policy").contains("script-src 'self'"), "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-cache");
        let etag = header(&headers, "etag").to_owned();
        let full = page.bytes().await.unwrap();
        // Revalidation: the same tag is answered 304 with no body.
        let again = client.get(server.url(path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
        // Compressed for a browser that accepts it.
        let gzipped = client.get(server.url(path)).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(header(gzipped.headers(), "content-encoding"), "gzip", "{path}");
        let compressed = gzipped.bytes().await.unwrap();
        assert!(compressed.len() < full.len(), "{path}: {} gzipped bytes for {}", compressed.len(), full.len());
    }
    let off = Server::start(Config { ui: false, ..config() }).await;
    assert_eq!(client.get(off.url("/")).send().await.unwrap().status(), 404);
    assert_eq!(client.get(off.url("/ui/app.js")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_shutdown_delay_keeps_serving_while_readiness_says_draining() {
    let mut server = Server::start(Config { shutdown_delay: Duration::from_millis(1500), ..config() }).await;
    let client = client();
    let stopped = server.shutdown();
    // During the delay the listener still accepts: readiness says draining over the network, and
    // compress requests are still answered, so a load balancer has time to take the instance out.
    wait_until("readiness to report draining", Duration::from_secs(5), || async { readiness(&client, &server).await == "draining" }).await;
    let response = client.post(server.url("/v1/compress")).body(png(32, 32, 13)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(!stopped.is_finished(), "stopped before the delay was over");
    let result = tokio::time::timeout(Duration::from_secs(10), stopped).await.expect("server stops after the delay");
    result.unwrap().expect("App::run returns Ok");
    assert!(client.get(server.url("/health")).send().await.is_err());
}

#[tokio::test]
async fn metrics_count_requests_bytes_ratios_and_rejections() {
    let server = Server::start(Config { max_body_bytes: 50_000, ..config() }).await;
    let client = client();
    let inputs = [png(40, 40, 13), png(50, 30, 14)];
    let mut bytes_out = 0;
    for input in &inputs {
        let response = client.post(server.url("/v1/compress")).body(input.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        bytes_out += response.bytes().await.unwrap().len();
    }
    let form = Form::new().part("image_files", Part::bytes(inputs[0].clone()).file_name("a.png"));
    let legacy = client.post(server.url("/compress-image")).multipart(form).send().await.unwrap();
    assert_eq!(legacy.status(), 200);
    let legacy_out = legacy.bytes().await.unwrap().len();
    assert_eq!(client.post(server.url("/v1/compress")).body(vec![0u8; 60_000]).send().await.unwrap().status(), 413);
    assert_eq!(client.post(server.url("/v1/compress?mode=x")).body(vec![1u8]).send().await.unwrap().status(), 400);
    assert_eq!(client.get(server.url("/nope")).send().await.unwrap().status(), 404);

    let response = client.get(server.url("/metrics")).send().await.unwrap();
    assert!(header(response.headers(), "content-type").starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let m = common::parse_metrics(&text);
    let get = |series: &str| *m.get(series).unwrap_or_else(|| panic!("no {series} in\n{text}"));

    assert_eq!(get(r#"compressor_http_requests_total{route="/v1/compress",method="POST",status="200"}"#), 2.0);
    assert_eq!(get(r#"compressor_http_requests_total{route="/v1/compress",method="POST",status="413"}"#), 1.0);
    assert_eq!(get(r#"compressor_http_requests_total{route="/v1/compress",method="POST",status="400"}"#), 1.0);
    assert_eq!(get(r#"compressor_http_requests_total{route="/compress-image",method="POST",status="200"}"#), 1.0);
    assert_eq!(get(r#"compressor_http_requests_total{route="unmatched",method="GET",status="404"}"#), 1.0);
    assert_eq!(get(r#"compressor_bytes_in_total{route="/v1/compress"}"#), (inputs[0].len() + inputs[1].len()) as f64);
    assert_eq!(get(r#"compressor_bytes_out_total{route="/v1/compress"}"#), bytes_out as f64);
    assert_eq!(get(r#"compressor_bytes_in_total{route="/compress-image"}"#), inputs[0].len() as f64);
    assert_eq!(get(r#"compressor_bytes_out_total{route="/compress-image"}"#), legacy_out as f64);
    assert_eq!(get(r#"compressor_compression_ratio_count{format="png"}"#), 3.0);
    assert_eq!(get(r#"compressor_compression_ratio_bucket{format="png",le="1"}"#), 3.0);
    assert_eq!(get(r#"compressor_http_request_duration_seconds_count{route="/v1/compress"}"#), 4.0);
    assert_eq!(get(r#"compressor_http_request_duration_seconds_bucket{route="/v1/compress",le="+Inf"}"#), 4.0);
    assert_eq!(get(r#"compressor_rejected_total{reason="too_large"}"#), 1.0);
    for reason in ["overloaded", "rate_limited", "unauthorized", "timeout"] {
        assert_eq!(get(&format!(r#"compressor_rejected_total{{reason="{reason}"}}"#)), 0.0, "{reason}");
    }
    assert_eq!(get("compressor_queue_depth"), 0.0);
    // The scrape itself is in flight while it renders.
    assert_eq!(get("compressor_in_flight"), 1.0);
    assert!(get("process_resident_memory_bytes") > 1e6);
    assert!(get("process_cpu_seconds_total") > 0.0);
    assert!(text.contains("# TYPE compressor_http_request_duration_seconds histogram"));
    assert!(text.contains("# TYPE compressor_compression_ratio histogram"));
}

#[tokio::test]
async fn metrics_count_overload_timeouts_auth_and_rate_limits() {
    let config = Config {
        workers: 1,
        queue: 0,
        api_keys: ["k".to_owned()].into(),
        rate_limit: Some(RateLimit { count: 2, per: Duration::from_secs(60) }),
        request_timeout: Duration::from_millis(300),
        ..config()
    };
    let server = Server::start(config).await;
    let client = client();
    assert_eq!(client.post(server.url("/v1/compress")).body(vec![1u8]).send().await.unwrap().status(), 401);
    let slow = tokio::spawn(client.post(server.url(SLOW_QUERY)).bearer_auth("k").body(slow_png()).send());
    wait_until("saturation", Duration::from_secs(10), || async { readiness(&client, &server).await == "saturated" }).await;
    assert_eq!(client.post(server.url("/v1/compress")).bearer_auth("k").body(vec![1u8]).send().await.unwrap().status(), 503);
    assert_eq!(slow.await.unwrap().unwrap().status(), 504);
    // Two tokens went to the slow and the refused request (a wrong key takes none); the bucket is empty.
    assert_eq!(client.post(server.url("/v1/compress")).bearer_auth("k").body(vec![1u8]).send().await.unwrap().status(), 429);

    let text = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let m = common::parse_metrics(&text);
    for (reason, n) in [("unauthorized", 1.0), ("overloaded", 1.0), ("timeout", 1.0), ("rate_limited", 1.0), ("too_large", 0.0)] {
        assert_eq!(m[&format!(r#"compressor_rejected_total{{reason="{reason}"}}"#)], n, "{reason}\n{text}");
    }
}

/// Every route the router serves, as (method, path). The OpenAPI document must list exactly these,
/// and each must answer on the running server.
const ROUTES: [(&str, &str); 10] = [
    ("post", "/v1/compress"),
    ("post", "/v1/video/compress"),
    ("post", "/v1/variants"),
    ("post", "/compress-image"),
    ("get", "/health"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let server = Server::start(config()).await;
    let client = client();
    let response = client.get(server.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-type"), "application/json");
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "compressor");

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch", "options", "head"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, expected);

    // Every listed route is served (no 404/405), and an unlisted one is not.
    for (method, path) in ROUTES {
        let request = match method {
            "get" => client.get(server.url(path)),
            _ => client.post(server.url(path)).body(png(8, 8, 15)),
        };
        let status = request.send().await.unwrap().status();
        assert!(status != 404 && status != 405, "{method} {path}: {status}");
    }
    assert_eq!(client.get(server.url("/api-docs")).send().await.unwrap().status(), 404);

    // Error responses refer to the shared schema, and the compress parameters are documented.
    let compress = &doc["paths"]["/v1/compress"]["post"];
    let params: BTreeSet<&str> = compress["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    // Every option the engine's registry offers over HTTP, and nothing else.
    let expected_params: BTreeSet<&str> =
        compressor_engine::OPTIONS.iter().filter(|o| o.http == compressor_engine::Http::Offered).map(|o| o.name).collect();
    assert!(expected_params.contains("first_frame") && expected_params.contains("background"), "{expected_params:?}");
    assert_eq!(params, expected_params);
    let variants = &doc["paths"]["/v1/variants"]["post"];
    let params: BTreeSet<&str> = variants["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(params.contains("widths") && params.contains("format"), "{params:?}");
    assert!(variants["responses"]["200"]["content"]["application/zip"].is_object());
    // The image media types: every format read in the request bodies, every one written in answers.
    let types = |content: &Value| content.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let read = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/tiff", "image/bmp", "image/heic", "image/heif"];
    let written = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"];
    for op in [compress, variants] {
        let expected: BTreeSet<String> =
            read.iter().chain(&["application/octet-stream", "multipart/form-data"]).map(|t| t.to_string()).collect();
        assert_eq!(types(&op["requestBody"]["content"]), expected);
    }
    let expected: BTreeSet<String> = written.iter().chain(&["application/json"]).map(|t| t.to_string()).collect();
    assert_eq!(types(&compress["responses"]["200"]["content"]), expected);
    // The video route's bodies: the video crate's containers, GIF (as video), raw bytes and a form.
    let expected: BTreeSet<String> = ["video/mp4", "video/x-m4v", "video/quicktime", "video/webm", "video/x-matroska"]
        .iter()
        .chain(&["image/gif", "application/octet-stream", "multipart/form-data"])
        .map(|t| t.to_string())
        .collect();
    assert_eq!(types(&doc["paths"]["/v1/video/compress"]["post"]["requestBody"]["content"]), expected);
    let expected: BTreeSet<String> = written.iter().map(|t| t.to_string()).collect();
    assert_eq!(types(&doc["paths"]["/compress-image"]["post"]["responses"]["200"]["content"]), expected);
    for status in ["400", "401", "413", "415", "422", "429", "503", "504"] {
        let reference = compress["responses"][status]["$ref"].as_str().unwrap_or_else(|| panic!("{status}: {}", compress["responses"]));
        let name = reference.strip_prefix("#/components/responses/").unwrap();
        let response = &doc["components"]["responses"][name];
        let schema = &response["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/ErrorBody", "{status}");
        let headers = response["headers"].as_object().unwrap();
        assert!(headers.contains_key("X-Request-Id"), "{status}");
        assert_eq!(headers.contains_key("Retry-After"), status == "429" || status == "503", "{status}");
    }
    // Only the video route writes files, so only it can find its disk full.
    let video = &doc["paths"]["/v1/video/compress"]["post"]["responses"];
    assert_eq!(video["507"]["$ref"], "#/components/responses/InsufficientStorage", "{video}");
    assert!(compress["responses"].get("507").is_none(), "{}", compress["responses"]);
    // The routes' enumerated parameters are enums, and variants does not list the size parameters.
    let schema_of =
        |op: &Value, name: &str| op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
    assert_eq!(schema_of(compress, "mode")["enum"], serde_json::json!(["lossy", "lossless"]));
    assert_eq!(schema_of(&doc["paths"]["/compress-image"]["post"], "strategy")["pattern"], "^(pngquant|stdlib|)$");
    assert!(!params.contains("width") && !params.contains("fit"), "{params:?}");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// The `METHOD /path` of each row of the README's route table (under `### Routes`).
fn readme_routes(readme: &str) -> BTreeSet<(String, String)> {
    let table = readme.split("\n### Routes\n").nth(1).expect("a ### Routes section in README.md");
    let mut routes = BTreeSet::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')).skip(2) {
        let cell = line.split('|').nth(1).unwrap_or("").trim();
        let route = cell.split('`').nth(1).unwrap_or_else(|| panic!("README route row without a `METHOD /path`: {line}"));
        let (method, path) = route.split_once(' ').unwrap_or_else(|| panic!("not METHOD /path: {route:?}"));
        routes.insert((method.to_ascii_lowercase(), path.to_owned()));
    }
    routes
}

#[tokio::test]
async fn readme_route_table_matches_the_document() {
    let server = Server::start(config()).await;
    let doc: Value = client().get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone())))
        .collect();
    // The web page is the one route outside the document (it is not part of the API).
    documented.insert(("get".into(), "/".into()));
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert_eq!(readme_routes(&readme), documented, "README.md's route table and /openapi.json disagree");
}

#[test]
fn readme_route_rows_are_read() {
    let readme = "x\n### Routes\n\n| route | what |\n|---|---|\n| `POST /a` | one |\n| `POST /a` more | two |\n| `GET /b` | three |\n\nafter\n| `GET /c` | no |\n";
    let expected: BTreeSet<(String, String)> =
        [("post", "/a"), ("get", "/b")].iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(readme_routes(readme), expected);
}

#[tokio::test]
async fn v1_resizes_with_width_height_and_fit() {
    let server = Server::start(config()).await;
    let client = client();
    let input = png(300, 200, 4);
    let response = client.post(server.url("/v1/compress?width=150&mode=lossless")).body(input.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "x-image-size"), "150x100");
    assert_eq!(header(response.headers(), "x-resized-from"), "300x200");
    assert_eq!(decode_png(&response.bytes().await.unwrap()), (150, 100));

    let response = client
        .post(server.url("/v1/compress?width=64&height=64&fit=cover&format=webp"))
        .header("accept", "application/json")
        .body(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!((report["width"].as_u64(), report["height"].as_u64(), report["format"].as_str()), (Some(64), Some(64), Some("webp")));
    assert_eq!(report["resized_from"], serde_json::json!([300, 200]));
    assert!(report["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("centred crop")), "{report}");

    // Not enlarged by default; enlarging past the server's pixel limit is refused before decoding.
    let response = client.post(server.url("/v1/compress?width=600&mode=lossless")).body(input.clone()).send().await.unwrap();
    assert_eq!(header(response.headers(), "x-image-size"), "300x200");
    assert!(response.headers().get("x-resized-from").is_none());
    let response = client.post(server.url("/v1/compress?width=60000&enlarge=true")).body(input.clone()).send().await.unwrap();
    let (status, _, code) = error_of(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "limit_exceeded"));

    // An enlargement within the input limit but over the output limit (81 MP against the default
    // 50 MP) is refused from the header and the query, before any work.
    let over_output_limit = |body: &Value| {
        body["error"]["code"] == "limit_exceeded" && body["error"]["message"].as_str().unwrap().contains("max_output_pixels")
    };
    let huge = "/v1/compress?width=9000&height=9000&fit=fill&enlarge=true&target_quality=80";
    let response = client.post(server.url(huge)).body(input.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert!(over_output_limit(&body), "{body}");
    // The operator's limit is the one applied: 100,000 pixels lets 300×300 through, not 400×400.
    let strict = Server::start(Config { max_output_pixels: 100_000, ..config() }).await;
    let enlarge_to = |side: u32| format!("/v1/compress?width={side}&height={side}&fit=fill&enlarge=true");
    let response = client.post(strict.url(&enlarge_to(300))).body(input.clone()).send().await.unwrap();
    assert_eq!(header(response.headers(), "x-image-size"), "300x300");
    let response = client.post(strict.url(&enlarge_to(400))).body(input).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(over_output_limit(&response.json().await.unwrap()));
}

/// The files of a ZIP (read with the `zip` crate), by name.
fn unzip(data: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data)).expect("a ZIP");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            (file.name().unwrap().into_owned(), bytes)
        })
        .collect()
}

#[tokio::test]
async fn variants_come_back_as_one_zip_with_a_manifest_and_srcset() {
    let server = Server::start(config()).await;
    let client = client();
    let form = Form::new().part("file", Part::bytes(png(400, 300, 9)).file_name("hero shot.png"));
    // Commas as a browser's URLSearchParams writes them.
    let response = client.post(server.url("/v1/variants?widths=200%2C100%2C800&score=true")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(response.headers(), "content-type"), "application/zip");
    assert_eq!(header(response.headers(), "content-disposition"), "attachment; filename=\"hero_shot-variants.zip\"");
    assert_eq!(header(response.headers(), "x-variant-count"), "2");
    let files = unzip(&response.bytes().await.unwrap());
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["hero_shot-100w.webp", "hero_shot-200w.webp", "manifest.json"]);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["srcset"], "hero_shot-100w.webp 100w, hero_shot-200w.webp 200w");
    assert_eq!(manifest["skipped"], serde_json::json!([800]));
    assert_eq!(manifest["source"]["width"], 400);
    for variant in manifest["variants"].as_array().unwrap() {
        let file = &files[variant["file"].as_str().unwrap()];
        assert_eq!(variant["bytes"].as_u64(), Some(file.len() as u64));
        assert_eq!(&file[8..12], b"WEBP");
        assert_eq!(variant["height"].as_u64().unwrap() * 4, variant["width"].as_u64().unwrap() * 3, "{variant}");
        assert!(variant["quality_score"].as_f64().is_some(), "{variant}");
    }

    // PNG on request, raw body.
    let response = client.post(server.url("/v1/variants?widths=50&format=png")).body(png(100, 100, 2)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let files = unzip(&response.bytes().await.unwrap());
    assert_eq!(decode_png(&files["image-50w.png"]), (50, 50));

    for query in ["", "widths=", "widths=0", "widths=a,b", "widths=100&width=50", "widths=100&bogus=1"] {
        let response = client.post(server.url(&format!("/v1/variants?{query}"))).body(png(100, 100, 2)).send().await.unwrap();
        let (status, _, code) = error_of(response).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_options"), "{query}");
    }
    let response = client.post(server.url("/v1/variants?widths=150&enlarge=true&format=png")).body(png(100, 100, 2)).send().await.unwrap();
    assert_eq!(response.status(), 200, "enlarge applies to the widths");
    assert_eq!(decode_png(&unzip(&response.bytes().await.unwrap())["image-150w.png"]), (150, 150));
    // Every width wider than the image (and no enlarge): nothing to make.
    let response = client.post(server.url("/v1/variants?widths=900")).body(png(100, 100, 2)).send().await.unwrap();
    let (status, _, code) = error_of(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "no_variants"));
    let too_many: Vec<String> = (1..=17).map(|w| (w * 5).to_string()).collect();
    let response =
        client.post(server.url(&format!("/v1/variants?widths={}", too_many.join(",")))).body(png(100, 100, 2)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
