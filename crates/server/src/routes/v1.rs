//! `POST /v1/compress`: the public API.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;

use super::query;
use super::upload::{self, Outcome};
use crate::AppState;
use crate::error::ApiError;

pub const ROUTE: &str = "/v1/compress";

/// The query of `/v1/compress`: every option the engine's registry offers over HTTP
/// (`query::parameters`), with the same spellings and ranges as the command line's flags.
pub struct CompressQuery;

impl utoipa::IntoParams for CompressQuery {
    fn into_params(_: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        query::parameters(&[])
    }
}

/// The report returned instead of the bytes when the request asks for `Accept: application/json`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompressReport {
    /// Output format: png, jpeg, webp, avif or gif
    pub format: String,
    pub width: u32,
    pub height: u32,
    /// Upload size in bytes
    pub original_size: usize,
    /// Output size in bytes
    pub compressed_size: usize,
    /// compressed_size / original_size
    pub compression_ratio: f64,
    /// SSIMULACRA2 of a lossy output against the input (90+ visually lossless), with `score=true` or
    /// `target_quality`; null otherwise, and when lossless or unchanged
    pub quality_score: Option<f64>,
    /// Time the engine took, in milliseconds
    pub processing_ms: u64,
    /// False when nothing smaller was found and the input is returned as it was
    pub changed: bool,
    /// Which path produced the output, for example `png-quantized`
    pub method: String,
    /// Fallbacks and decisions worth telling a user about
    pub notes: Vec<String>,
    /// The input's width and height (as displayed) when the output was resized, else null
    pub resized_from: Option<[u32; 2]>,
    /// A safe file name for the output
    pub filename: String,
    /// The output bytes, base64 (standard alphabet, padded)
    pub data_base64: String,
}

/// The multipart form accepted by `POST /v1/compress`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CompressForm {
    /// The image file
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Raw image bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);

/// Compress one image.
///
/// The image is the raw request body (any `Content-Type`; the format is recognised by content) or the
/// `file` field of a `multipart/form-data` form (the form holds no other field). The answer is the compressed image, or a JSON report
/// holding it in base64 when the request says `Accept: application/json`.
#[utoipa::path(
    post,
    path = "/v1/compress",
    tag = "compress",
    params(CompressQuery),
    request_body(
        description = "The image, raw or as the `file` field of a multipart form",
        content(
            (ImageBytes = "application/octet-stream"),
            // Every format the engine reads (`openapi::finish`).
            (ImageBytes = "image/*"),
            (CompressForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "The compressed image (or the JSON report with `Accept: application/json`)",
            headers(
                ("X-Original-Size" = u64, description = "Upload size in bytes"),
                ("X-Compressed-Size" = u64, description = "Output size in bytes"),
                ("X-Compression-Ratio" = f64, description = "Output size / upload size"),
                ("X-Compression-Method" = String, description = "Which path produced the output, for example `png-quantized` or `unchanged`"),
                ("X-Quality-Score" = f64, description = "SSIMULACRA2 of a lossy output, with `score=true` or `target_quality` (absent otherwise, and when lossless)"),
                ("X-Processing-Ms" = u64, description = "Engine time in milliseconds"),
                ("X-Image-Size" = String, description = "Output width x height, for example `640x480`"),
                ("X-Resized-From" = String, description = "The input's width x height, when the output was resized"),
                ("Content-Disposition" = String, description = "attachment with a safe file name"),
            ),
            content(
                // Every format the engine writes (`openapi::finish`).
                (ImageBytes = "image/*"),
                (CompressReport = "application/json"),
            )),
    ),
    security((), ("bearer" = []), ("api_key" = [])),
)]
pub async fn compress(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    // Everything cheap is checked before the body is touched: parameters, then room in the queue.
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let options = query::options(&query::pairs(request.uri().query())?, &accept, &state)?;
    let (charge, request) = upload::start_upload(&state, request)?;

    let upload = upload::read_image(request, state.config.max_body_bytes).await?;
    let admission = upload::admit(&state, charge)?;
    let Outcome { result, processing_ms } = upload::compress(&state, ROUTE, admission, upload.data, options).await?;
    let filename = upload::image_output_filename(upload.filename.as_deref(), result.format);

    if query::accepts_json(&accept) {
        let report = CompressReport {
            format: result.format.to_string(),
            width: result.width,
            height: result.height,
            original_size: result.input_size,
            compressed_size: result.output_size,
            compression_ratio: result.ratio(),
            quality_score: result.quality_score,
            processing_ms,
            changed: result.changed,
            method: result.method,
            notes: result.notes,
            resized_from: result.resized_from.map(|(w, h)| [w, h]),
            filename,
            data_base64: base64::engine::general_purpose::STANDARD.encode(&result.data),
        };
        let mut response = axum::Json(report).into_response();
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("accept"));
        return Ok(response);
    }

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(result.format.mime_type()));
    headers.insert(header::VARY, HeaderValue::from_static("accept"));
    let disposition = format!("attachment; filename=\"{filename}\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|e| ApiError::Internal(e.to_string()))?);
    headers.insert("x-original-size", HeaderValue::from(result.input_size));
    headers.insert("x-compressed-size", HeaderValue::from(result.output_size));
    headers.insert("x-compression-ratio", decimal(result.ratio(), 4));
    if let Ok(method) = HeaderValue::from_str(&result.method) {
        headers.insert("x-compression-method", method);
    }
    if let Some(score) = result.quality_score {
        headers.insert("x-quality-score", decimal(score, 2));
    }
    headers.insert("x-processing-ms", HeaderValue::from(processing_ms));
    headers.insert("x-image-size", size_header(result.width, result.height));
    if let Some((width, height)) = result.resized_from {
        headers.insert("x-resized-from", size_header(width, height));
    }
    Ok((headers, result.data).into_response())
}

pub(super) fn size_header(width: u32, height: u32) -> HeaderValue {
    HeaderValue::from_str(&format!("{width}x{height}")).expect("digits and x")
}

pub(super) fn decimal(value: f64, places: usize) -> HeaderValue {
    HeaderValue::from_str(&format!("{value:.places$}")).unwrap_or(HeaderValue::from_static("0"))
}
