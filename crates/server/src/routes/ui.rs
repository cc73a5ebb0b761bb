//! The web page at `/`: plain HTML, CSS and JavaScript (`crates/server/ui/`) embedded in the binary,
//! so a fresh install serves it with no other server and no request to any other host. Every
//! asset carries a strict Content-Security-Policy (no inline script, nothing from elsewhere), an
//! ETag to revalidate against, and is compressed when the browser accepts it (the router adds the
//! compression layer). The API page at `/docs` (`crates/server/docs/`) is served the same way; it
//! renders `/openapi.json` in the browser and is there whether or not the web page is.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// What the page may load and where it may send requests: only this origin. Thumbnails, results,
/// videos and the ZIP are `blob:` URLs made in the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src blob:; \
     connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The web page's files, then the API page's (`DOCS_FROM` on).
static ASSETS: LazyLock<[Asset; 8]> = LazyLock::new(|| {
    [
        Asset { path: "/", content_type: HTML, body: include_bytes!("../../ui/index.html") },
        Asset { path: "/ui/formats.js", content_type: JS, body: Box::leak(formats_script().into_bytes().into_boxed_slice()) },
        Asset { path: "/ui/app.js", content_type: JS, body: include_bytes!("../../ui/app.js") },
        Asset { path: "/ui/app.css", content_type: CSS, body: include_bytes!("../../ui/app.css") },
        Asset { path: "/ui/icon.svg", content_type: "image/svg+xml", body: include_bytes!("../../ui/icon.svg") },
        Asset { path: DOCS, content_type: HTML, body: include_bytes!("../../docs/index.html") },
        Asset { path: "/docs/docs.js", content_type: JS, body: include_bytes!("../../docs/docs.js") },
        Asset { path: "/docs/docs.css", content_type: CSS, body: include_bytes!("../../docs/docs.css") },
    ]
});
const DOCS_FROM: usize = 5;

/// The page's knowledge of formats, written from the engine's format table and the video crate's
/// containers, so that the page accepts and names files as the service does: each image media
/// type with the extension a pasted file is named with, the extensions that name images and
/// videos, the video media types, and a sentence listing them.
fn formats_script() -> String {
    use compressor_engine::Format;
    let image_types: serde_json::Map<String, serde_json::Value> =
        Format::ALL.iter().flat_map(|f| f.media_types().iter().map(|t| (t.to_string(), f.extension().into()))).collect();
    let image_extensions: Vec<&str> = Format::ALL.iter().flat_map(|f| f.extensions().iter().copied()).collect();
    let titles = |writable: bool| Format::ALL.iter().filter(|f| f.writable() == writable).map(|f| f.title()).collect::<Vec<_>>().join(", ");
    let videos = compressor_video::EXTENSIONS.iter().map(|e| e.to_uppercase()).collect::<Vec<_>>().join(", ");
    let readable = format!("{} ({} are read and converted); {videos} videos", titles(true), titles(false));
    let formats = serde_json::json!({
        "imageTypes": image_types,
        "imageExtensions": image_extensions,
        "videoTypes": compressor_video::MEDIA_TYPES,
        "videoExtensions": compressor_video::EXTENSIONS,
        "readable": readable,
    });
    format!("// Written by the server from its format tables.\n\"use strict\";\nconst FORMATS = {formats};\n")
}

/// The API page's path.
pub const DOCS: &str = "/docs";

/// One strong ETag per asset, from its bytes (the same binary always gives the same tags).
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let mut hasher = DefaultHasher::new();
            a.body.hash(&mut hasher);
            HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish())).expect("hex is a valid header value")
        })
        .collect()
});

/// The page's routes; the caller adds compression.
pub fn router() -> Router<AppState> {
    ASSETS[..DOCS_FROM].iter().fold(Router::new(), |router, asset| router.route(asset.path, get(serve)))
}

/// The API page's script and style (the page itself is [`docs`], in the document); the caller
/// adds compression.
pub fn docs_assets() -> Router<AppState> {
    ASSETS[DOCS_FROM + 1..].iter().fold(Router::new(), |router, asset| router.route(asset.path, get(serve)))
}

/// A human-readable page of this document, rendered in the browser from `/openapi.json` by a
/// script served with it (nothing is loaded from any other host).
#[utoipa::path(get, path = "/docs", tag = "health",
    responses((status = 200, description = "The API page (HTML; its script and style are under /docs/)", body = String, content_type = "text/html")))]
pub async fn docs(uri: Uri, request_headers: HeaderMap) -> Response {
    serve(uri, request_headers).await
}

async fn serve(uri: Uri, request_headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.path == uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (asset, etag) = (&ASSETS[index], &ETAGS[index]);
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag.clone());
    // Always revalidate (a 304 costs one round trip on a page this small), so an upgraded server
    // never leaves an old script running against a new API.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    let matches = request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim().trim_start_matches("W/") == etag.to_str().unwrap_or_default());
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    (headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_stays_small() {
        // The budget: 100 KB uncompressed, everything included.
        let weight: usize = ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(weight <= 100 * 1000, "the page weighs {weight} bytes");
    }

    #[test]
    fn the_page_loads_nothing_inline_or_from_elsewhere() {
        for html in [ASSETS[0].body, ASSETS[DOCS_FROM].body] {
            let html = std::str::from_utf8(html).unwrap();
            assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains("<style"), "inline script or style");
        }
        for asset in ASSETS.iter() {
            let text = String::from_utf8_lossy(asset.body);
            assert!(
                !text.contains("http://") && !text.contains("https://") || asset.path == "/ui/icon.svg",
                "{} names another host",
                asset.path
            );
        }
    }
}
