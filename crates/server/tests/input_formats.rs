//! HEIC, TIFF and BMP uploads over real HTTP: `/v1/compress` and the legacy route convert them
//! (they are read, not written), and `Content-Type` follows the output's format.

mod common;

use common::{Server, client, config, decode_png, header};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

/// A HEIC phone-style photo posted raw comes back as JPEG, WebP or AVIF, its type in
/// `Content-Type`, and the JSON report names the conversion.
#[tokio::test]
async fn v1_converts_heic_and_says_so() {
    let Some(corpus) = common::corpus() else { return };
    let input = std::fs::read(corpus.join("heic/libheif-rs__test.heic")).unwrap();
    let server = Server::start(config()).await;
    let response = client().post(server.url("/v1/compress")).body(input.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = header(response.headers(), "content-type").to_owned();
    assert!(["image/jpeg", "image/webp", "image/avif"].contains(&content_type.as_str()), "{content_type}");
    let disposition = header(response.headers(), "content-disposition").to_owned();
    let body = response.bytes().await.unwrap();
    let extension = match content_type.as_str() {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        _ => "avif",
    };
    assert!(disposition.ends_with(&format!(".{extension}\"")), "{disposition}");
    assert!(body.len() < input.len() * 2, "{} -> {}", input.len(), body.len());

    let response = client()
        .post(server.url("/v1/compress?format=jpeg"))
        .header("accept", "application/json")
        .body(input.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["format"], "jpeg");
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(1652), Some(1791)));

    let response = client().post(server.url("/v1/compress")).header("accept", "application/json").body(input).send().await.unwrap();
    let report: Value = response.json().await.unwrap();
    let notes = report["notes"].to_string();
    assert!(notes.contains("heic is not written"), "{notes}");
}

/// TIFF and BMP sent as multipart come back as PNG with the same pixel count.
#[tokio::test]
async fn v1_converts_tiff_and_bmp_to_png() {
    let Some(corpus) = common::corpus() else { return };
    let server = Server::start(config()).await;
    for (file, size) in [("other/tiff/pillow__hopper.tif", (128, 128)), ("other/bmp/bmpsuite__g_pal8.bmp", (127, 64))] {
        let input = std::fs::read(corpus.join(file)).unwrap();
        let form = Form::new().part("file", Part::bytes(input).file_name("scan"));
        let response = client().post(server.url("/v1/compress?mode=lossless")).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), 200, "{file}");
        assert_eq!(header(response.headers(), "content-type"), "image/png", "{file}");
        assert_eq!(decode_png(&response.bytes().await.unwrap()), size, "{file}");
    }
}

/// The legacy route keeps the input's format where it can; a HEIC cannot be written, so it
/// answers the converted image with that image's type.
#[tokio::test]
async fn legacy_route_converts_heic() {
    let Some(corpus) = common::corpus() else { return };
    let input = std::fs::read(corpus.join("heic/libheif__with-alpha-512x512.heic")).unwrap();
    let server = Server::start(config()).await;
    let form = Form::new().part("image_files", Part::bytes(input).file_name("photo.heic"));
    let response = client().post(server.url("/compress-image")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = header(response.headers(), "content-type").to_owned();
    assert!(["image/jpeg", "image/webp", "image/avif"].contains(&content_type.as_str()), "{content_type}");
    assert!(!response.bytes().await.unwrap().is_empty());
}

/// A HEIC whose header declares more pixels than the service allows is 413 before decoding.
#[tokio::test]
async fn oversized_heic_is_413() {
    let Some(corpus) = common::corpus() else { return };
    let input = std::fs::read(corpus.join("heic/pillow_heif__pug.heic")).unwrap();
    let server = Server::start(compressor_server::Config { max_pixels: 1_000_000, ..config() }).await;
    let response = client().post(server.url("/v1/compress")).body(input).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "limit_exceeded");
}

/// A HEIF image whose major brand is one of the other HEVC image brands (`hevc`, `hevx`) is an
/// image, not a video: the engine and the video check read the same brand list (it was answered
/// 415 "this is a video" before).
#[tokio::test]
async fn heif_images_with_any_hevc_brand_are_images() {
    let Some(corpus) = common::corpus() else { return };
    let input = std::fs::read(corpus.join("heic/libheif-rs__test.heic")).unwrap();
    assert_eq!(&input[4..12], b"ftypheic", "the corpus file's major brand");
    let server = Server::start(config()).await;
    for brand in [b"hevc", b"hevx"] {
        let mut renamed = input.clone();
        renamed[8..12].copy_from_slice(brand);
        let response = client().post(server.url("/v1/compress?format=jpeg")).body(renamed).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", String::from_utf8_lossy(brand));
        assert_eq!(header(response.headers(), "content-type"), "image/jpeg");
    }
}
