//! The service's router driven without a socket: one `App` for the whole run, requests sent with
//! `tower::ServiceExt::oneshot` on a current-thread runtime.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"))
}

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let config = compressor_server::Config {
            max_body_bytes: 1 << 20,
            max_pixels: crate::LIMITS.max_pixels,
            workers: 1,
            queue: 4,
            request_timeout: Duration::from_secs(120),
            ui: false,
            video: None,
            ..compressor_server::Config::default()
        };
        let _guard = runtime().enter();
        compressor_server::App::new(config).router()
    })
}

/// `data` cut at its first `N - 1` newlines; missing parts are empty.
pub fn split_lines<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut parts = [&[][..]; N];
    let mut rest = data;
    for part in parts.iter_mut().take(N - 1) {
        match rest.iter().position(|&b| b == b'\n') {
            Some(at) => {
                *part = &rest[..at];
                rest = &rest[at + 1..];
            }
            None => {
                *part = rest;
                rest = &[];
            }
        }
    }
    parts[N - 1] = rest;
    parts
}

/// A POST to `path` with `query` (bytes a URI cannot hold percent-encoded, the rest as they are,
/// so `&`, `=` and `%` reach the parser), the headers that are valid, and `body`. `None` when the
/// URI is still refused.
pub fn request(path: &str, query: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Option<Request<Body>> {
    let mut uri = String::from(path);
    if !query.is_empty() {
        uri.push('?');
        for &b in query {
            if b.is_ascii_graphic() && b != b'#' {
                uri.push(b as char);
            } else {
                uri.push_str(&format!("%{b:02X}"));
            }
        }
    }
    let mut builder = Request::post(uri.parse::<axum::http::Uri>().ok()?);
    for (name, value) in headers {
        if let Ok(value) = axum::http::HeaderValue::from_bytes(value) {
            builder = builder.header(*name, value);
        }
    }
    builder.body(Body::from(body.to_vec())).ok()
}

/// Sends `request` through the router and collects the answer.
pub fn send(request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    runtime().block_on(async {
        let response = router().clone().oneshot(request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the response body").to_bytes().to_vec();
        (parts.status, parts.headers, body)
    })
}

/// The service's promises about any answer: no 5xx, JSON errors, and a 200 that holds an image.
pub fn check_response(status: StatusCode, headers: &HeaderMap, body: &[u8], json: bool) {
    let text = || String::from_utf8_lossy(body).chars().take(500).collect::<String>();
    assert!(!status.is_server_error(), "{status}: {}", text());
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if status.is_client_error() {
        assert!(content_type.starts_with("application/json"), "{status} with content type {content_type:?}");
        let value: serde_json::Value =
            serde_json::from_slice(body).unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {}", text()));
        let error = &value["error"];
        assert!(error["code"].is_string() && error["message"].is_string(), "{status}: not an error body: {}", text());
        return;
    }
    assert_eq!(status, StatusCode::OK, "{}", text());
    if json && content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON report");
        assert!(value["data_base64"].is_string() && value["compressed_size"].is_u64(), "{}", text());
    } else {
        let info = compressor_engine::probe(body).unwrap_or_else(|e| panic!("a 200 that is not an image ({e})"));
        assert_eq!(info.format.mime_type(), content_type, "the content type names another format");
    }
}
