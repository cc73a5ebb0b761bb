//! `POST /compress-image`: the route of the Go server this service replaces. Its clients (a web site
//! and k6 scripts) depend on the exact field, parameter and header names used here.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use compressor_engine::{Mode, Options};
use serde::Serialize;

use super::upload::{self, Outcome};
use super::v1::ImageBytes;
use crate::AppState;
use crate::error::ApiError;

pub const ROUTE: &str = "/compress-image";

/// The multipart form of the old server. Other fields (the old k6 script sends `strategy=bimg`) are
/// read past and ignored; only the query parameter chooses the strategy. (A field name that a part
/// header cannot carry, with control characters or a double quote, makes the form unreadable: 400.)
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LegacyForm {
    /// The image; the first `image_files` part is used
    #[schema(value_type = String, format = Binary)]
    image_files: Vec<u8>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LegacyParams {
    /// `pngquant` (default, also when empty; lossy, quality 60-80) or `stdlib` (lossless)
    #[param(pattern = "^(pngquant|stdlib|)$", example = "pngquant")]
    pub strategy: Option<String>,
}

/// The `X-Compression-Metadata` header, field for field as the old server wrote it.
#[derive(Debug, Serialize)]
pub struct Metadata {
    pub status: &'static str,
    pub message: &'static str,
    pub data: MetadataData,
}

#[derive(Debug, Serialize)]
pub struct MetadataData {
    pub compressed_image_metadata: ImageMetadata,
    /// original size / compressed size
    pub size_difference: f64,
    pub original_size: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    pub filename: String,
    /// Compressed size in bytes
    pub image_size: usize,
}

/// Compress an image (compatibility route of the old Go server).
///
/// Multipart field `image_files` (the first file is used; other fields are ignored). The answer is
/// the compressed image with `X-Compression-Metadata` describing it. The format is recognised by
/// content, not by the file name; a non-PNG upload is compressed in its own format, and answered
/// with its own media type.
#[utoipa::path(
    post,
    path = "/compress-image",
    tag = "legacy",
    params(LegacyParams),
    request_body(content = LegacyForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The compressed image",
            headers(
                ("X-Compression-Metadata" = String, description = r#"JSON: {"status":"success","message":"Image compressed successfully","data":{"compressed_image_metadata":{"Filename":"…","ImageSize":<bytes>},"size_difference":<original/compressed>,"original_size":<bytes>}}"#),
                ("Content-Disposition" = String, description = "attachment; filename=<upload name, sanitised, with the output format's extension>"),
            ),
            // Every format the engine writes (`openapi::finish`).
            content((ImageBytes = "image/*"))),
    ),
    security((), ("bearer" = []), ("api_key" = [])),
)]
pub async fn compress_image(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let strategy = strategy(request.uri())?;
    let (charge, request) = upload::start_upload(&state, request)?;
    let upload = upload::read_multipart(request, "image_files", upload::OtherFields::Ignored, state.config.max_body_bytes).await?;
    let admission = upload::admit(&state, charge)?;

    let limits = state.config.limits();
    let options = Options { limits, ..compressor_engine::presets::legacy(strategy) };
    let Outcome { result, .. } = upload::compress(&state, ROUTE, admission, upload.data, options).await?;

    let filename = upload::image_output_filename(upload.filename.as_deref(), result.format);
    let metadata = Metadata {
        status: "success",
        message: "Image compressed successfully",
        data: MetadataData {
            compressed_image_metadata: ImageMetadata { filename: filename.clone(), image_size: result.output_size },
            size_difference: if result.output_size == 0 { 0.0 } else { result.input_size as f64 / result.output_size as f64 },
            original_size: result.input_size,
        },
    };
    let metadata = serde_json::to_string(&metadata).map_err(|e| ApiError::Internal(e.to_string()))?;
    let header_value = |s: String| HeaderValue::from_str(&s).map_err(|e| ApiError::Internal(e.to_string()));

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(result.format.mime_type()));
    headers.insert(header::CONTENT_DISPOSITION, header_value(format!("attachment; filename={filename}"))?);
    headers.insert("x-compression-metadata", header_value(metadata)?);
    Ok((headers, result.data).into_response())
}

/// `strategy` from the query: `pngquant` (default) is lossy, `stdlib` lossless; other values are refused.
fn strategy(uri: &Uri) -> Result<Mode, ApiError> {
    let params = axum::extract::Query::<LegacyParams>::try_from_uri(uri).map_err(|e| ApiError::bad_request(e.body_text()))?;
    match params.0.strategy.as_deref().unwrap_or("pngquant") {
        "pngquant" | "" => Ok(Mode::Lossy),
        "stdlib" => Ok(Mode::Lossless),
        other => Err(ApiError::Refused {
            code: "invalid_strategy",
            message: format!("strategy {other:?} is not pngquant (lossy) or stdlib (lossless)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(strategy(&uri("/compress-image")).unwrap(), Mode::Lossy);
        assert_eq!(strategy(&uri("/compress-image?strategy=pngquant")).unwrap(), Mode::Lossy);
        assert_eq!(strategy(&uri("/compress-image?strategy=stdlib&x=1")).unwrap(), Mode::Lossless);
        assert_eq!(strategy(&uri("/compress-image?strategy=bimg")).unwrap_err().code(), "invalid_strategy");
    }

    #[test]
    fn metadata_field_names() {
        let m = Metadata {
            status: "success",
            message: "Image compressed successfully",
            data: MetadataData {
                compressed_image_metadata: ImageMetadata { filename: "a.png".into(), image_size: 10 },
                size_difference: 2.0,
                original_size: 20,
            },
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"status":"success","message":"Image compressed successfully","data":{"compressed_image_metadata":{"Filename":"a.png","ImageSize":10},"size_difference":2.0,"original_size":20}}"#
        );
    }
}
