//! Slow clients are cut off without starving the others: request headers must arrive within the
//! header read timeout (10 s), an upload must keep up 16 KiB/s after a 10 s grace (408), and an
//! upload being read holds no place in the work queue.

mod common;

use std::time::{Duration, Instant};

use common::{Server, client, config, png};
use compressor_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` and then `trickle` one byte every 200 ms; returns what the server answered and
/// how long the connection lasted.
async fn trickle(server: &Server, head: &[u8], trickle: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    for byte in trickle {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut answer)).await;
                break;
            }
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(40), "the server kept a trickling connection for 40 s");
    }
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickling_headers_and_bodies_are_cut_off_while_others_are_served() {
    // One worker and one queue place: the four trickled uploads outnumber them.
    let server = Server::start(Config { workers: 1, queue: 1, ..config() }).await;
    let slow_headers = trickle(&server, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\n", &[b'a'; 400]);
    let body_head = b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 400\r\n\r\n";
    let slow_body = || trickle(&server, body_head, &[0u8; 400]);
    let slow_bodies = async {
        let (a, b, c, d) = tokio::join!(slow_body(), slow_body(), slow_body(), slow_body());
        [a, b, c, d]
    };
    let image = png(200, 150, 3);
    let normal = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let client = client();
        let mut served = 0;
        for _ in 0..5 {
            let response = client.post(server.url("/v1/compress")).body(image.clone()).send().await.unwrap();
            assert_eq!(response.status(), 200);
            served += 1;
        }
        served
    };
    let ((headers_answer, headers_lasted), bodies, served) = tokio::join!(slow_headers, slow_bodies, normal);
    assert_eq!(served, 5, "normal clients are served while the slow ones hang on");
    assert!(
        headers_lasted >= Duration::from_secs(9) && headers_lasted < Duration::from_secs(15),
        "headers: {headers_lasted:?} {headers_answer:?}"
    );
    for (body_answer, body_lasted) in bodies {
        assert!(body_lasted >= Duration::from_secs(9) && body_lasted < Duration::from_secs(15), "body: {body_lasted:?}");
        assert!(body_answer.starts_with("HTTP/1.1 408"), "{body_answer}");
        assert!(body_answer.contains(r#""code":"slow_upload""#), "{body_answer}");
    }
}
