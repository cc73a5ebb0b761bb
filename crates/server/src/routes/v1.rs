//! `POST /v1/compress`: the public API.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use compressor_engine::{Fit, Format, Limits, MetadataPolicy, Mode, Options, OutputFormat, Quality, Resize};
use serde::{Deserialize, Serialize};

use super::upload::{self, Outcome};
use crate::AppState;
use crate::error::ApiError;

pub const ROUTE: &str = "/v1/compress";

/// Query parameters; the same spellings as the command line's flags.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompressParams {
    /// `lossy` (default) or `lossless`
    #[param(value_type = Option<ModeName>, inline, example = "lossy")]
    pub mode: Option<String>,
    /// 0-100 as `N` or `MIN-MAX` with MIN <= MAX (PNG default 65-80, JPEG default 80); a MIN above MAX is 400
    #[param(pattern = r"^(100|[1-9]?[0-9])(-(100|[1-9]?[0-9]))?$", example = "65-80")]
    pub quality: Option<String>,
    /// `keep` (default), `png`, `jpeg` (or `jpg`), `webp`, `avif`, `gif` or `auto` (candidates from the `Accept` header)
    #[param(value_type = Option<FormatName>, inline, example = "keep")]
    pub format: Option<String>,
    /// `strip`, `safe` (default: keep ICC profile and orientation, drop EXIF/GPS, XMP, text) or `keep`
    #[param(value_type = Option<MetadataName>, inline, example = "safe")]
    pub metadata: Option<String>,
    /// 1 (fastest) to 6 (smallest); default 2
    #[param(minimum = 1, maximum = 6)]
    pub effort: Option<u8>,
    /// Smallest output whose SSIMULACRA2 score is at least this (0-100); lossy mode only (400 with `mode=lossless`)
    #[param(minimum = 0, maximum = 100)]
    pub target_quality: Option<f64>,
    /// Best-quality output no larger than this many bytes (422 `cannot_fit` when none is)
    #[param(minimum = 1, maximum = 9007199254740991_u64)]
    pub max_bytes: Option<u64>,
    /// `true` to compute the SSIMULACRA2 score of a lossy result (`X-Quality-Score`,
    /// `quality_score`). Off by default: scoring the whole image costs more CPU than compressing it.
    /// Target-quality searches always report the score they reached.
    pub score: Option<bool>,
    /// Resize to this width in pixels (as displayed, after the EXIF orientation); `fit` says how it
    /// combines with `height`
    #[param(minimum = 1, maximum = 65535)]
    pub width: Option<u32>,
    /// Resize to this height in pixels
    #[param(minimum = 1, maximum = 65535)]
    pub height: Option<u32>,
    /// How `width` and `height` apply: `scale` (one side given, the other follows), `fit` (inside
    /// the box, aspect kept; the default; also spelled `inside` or `contain`), `cover` (fill the
    /// box, centred crop) or `fill` (stretch). Without `width` or `height` it is 400; `scale` with
    /// both, or `cover` or `fill` with one, is 400 too
    #[param(value_type = Option<FitName>, inline, example = "fit")]
    pub fit: Option<String>,
    /// `true` to allow resizing beyond the image's own size (by default no side is enlarged); on
    /// `/v1/compress` it needs `width` or `height` (else 400)
    pub enlarge: Option<bool>,
    /// With `max_bytes` (without it: 400): when even the lowest quality does not fit, shrink the
    /// image by steps until it does
    pub allow_downscale: Option<bool>,
}

/// The largest `max_bytes`: the largest integer a JSON number holds exactly.
pub const MAX_BYTES_LIMIT: u64 = (1 << 53) - 1;

/// The spellings of the enumerated parameters, for the document (the engine parses them,
/// ignoring case).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ModeName {
    Lossy,
    Lossless,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FormatName {
    Keep,
    Auto,
    Png,
    Jpeg,
    Jpg,
    Webp,
    Avif,
    Gif,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum MetadataName {
    Strip,
    Safe,
    Keep,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FitName {
    Scale,
    Fit,
    Inside,
    Contain,
    Cover,
    Fill,
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
    params(CompressParams),
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
    let params = Query::<CompressParams>::try_from_uri(request.uri())
        .map_err(|e| ApiError::BadRequest { code: "invalid_options", message: e.body_text() })?
        .0;
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let options = options(&params, &accept, &state)?;
    let (charge, request) = upload::start_upload(&state, request)?;

    let upload = upload::read_image(request, state.config.max_body_bytes).await?;
    let admission = upload::admit(&state, charge)?;
    let Outcome { result, processing_ms } = upload::compress(&state, ROUTE, admission, upload.data, options).await?;
    let filename = upload::image_output_filename(upload.filename.as_deref(), result.format);

    if accepts_json(&accept) {
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

/// Engine options from the query and the `Accept` header; the server's limits always apply.
pub(super) fn options(params: &CompressParams, accept: &str, state: &AppState) -> Result<Options, ApiError> {
    let bad = |message: String| ApiError::BadRequest { code: "invalid_options", message };
    let mut options = Options {
        limits: Limits { max_pixels: state.config.max_pixels, max_input_bytes: state.config.max_body_bytes as u64, ..Limits::default() },
        ..Options::default()
    };
    if let Some(mode) = &params.mode {
        options.mode = mode.parse::<Mode>().map_err(ApiError::from)?;
    }
    if let Some(quality) = &params.quality {
        if !is_quality(quality) {
            return Err(bad(format!("quality {quality:?} is not N or MIN-MAX (0-100, without signs, spaces or leading zeros)")));
        }
        options.quality = Some(quality.parse::<Quality>().map_err(ApiError::from)?);
    }
    if let Some(metadata) = &params.metadata {
        options.metadata = metadata.parse::<MetadataPolicy>().map_err(ApiError::from)?;
    }
    if let Some(format) = &params.format {
        options.format = format.parse::<OutputFormat>().map_err(ApiError::from)?;
    }
    if options.format == OutputFormat::Auto {
        options.auto_formats = accepted_formats(accept);
    }
    if let Some(effort) = params.effort {
        options.effort = effort; // its range is checked by Options::validate below
    }
    if let Some(target) = params.target_quality {
        if !(0.0..=100.0).contains(&target) {
            return Err(bad(format!("target_quality {target} is not in 0-100")));
        }
        options.target_quality = Some(target);
    }
    if let Some(max_bytes) = params.max_bytes {
        if !(1..=MAX_BYTES_LIMIT).contains(&max_bytes) {
            return Err(bad(format!("max_bytes must be 1-{MAX_BYTES_LIMIT}")));
        }
        options.max_bytes = Some(max_bytes);
    }
    options.score = params.score.unwrap_or(false);
    options.allow_downscale = params.allow_downscale.unwrap_or(false);
    if [params.width, params.height].into_iter().flatten().any(|side| !(1..=65_535).contains(&side)) {
        return Err(bad("width and height must be 1-65535".into()));
    }
    if params.width.is_some() || params.height.is_some() {
        let fit = match &params.fit {
            Some(fit) => fit.parse::<Fit>().map_err(ApiError::from)?,
            None => Fit::default(),
        };
        options.resize = Some(Resize { width: params.width, height: params.height, fit, enlarge: params.enlarge.unwrap_or(false) });
    } else if params.fit.is_some() || params.enlarge.is_some() {
        return Err(bad("fit and enlarge need width or height".into()));
    }
    options.validate().map_err(ApiError::from)?;
    Ok(options)
}

/// `N` or `MIN-MAX`, each 0-100 in plain digits (the document's pattern); the engine checks MIN <= MAX.
fn is_quality(text: &str) -> bool {
    let percent = |p: &str| {
        !p.is_empty()
            && p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'))
            && p.parse::<u8>().is_ok_and(|v| v <= 100)
    };
    match text.split_once('-') {
        Some((min, max)) => percent(min) && percent(max),
        None => percent(text),
    }
}

/// Media ranges of an `Accept` header with their q-values (q=0 ranges are dropped).
fn media_ranges(accept: &str) -> impl Iterator<Item = String> + '_ {
    accept.split(',').filter_map(|range| {
        let mut parts = range.split(';');
        let media = parts.next()?.trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (!media.is_empty() && q > 0.0).then_some(media)
    })
}

fn accepts_json(accept: &str) -> bool {
    media_ranges(accept).any(|m| m == "application/json")
}

/// The formats `format=auto` may choose from: the image types the client lists; empty (the
/// engine's default candidates) when it accepts any image (`*/*`, `image/*`) or lists none.
fn accepted_formats(accept: &str) -> Vec<Format> {
    let mut formats = Vec::new();
    for media in media_ranges(accept) {
        let format = match media.as_str() {
            "*/*" | "image/*" => return Vec::new(),
            "image/avif" => Format::Avif,
            "image/webp" => Format::WebP,
            "image/png" => Format::Png,
            "image/jpeg" | "image/jpg" => Format::Jpeg,
            "image/gif" => Format::Gif,
            _ => continue,
        };
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    formats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_to_auto_candidates() {
        assert_eq!(accepted_formats(""), vec![]);
        assert_eq!(accepted_formats("image/webp, image/png;q=0.5"), vec![Format::WebP, Format::Png]);
        assert_eq!(accepted_formats("image/avif,image/webp,image/*;q=0.8"), vec![]);
        assert_eq!(accepted_formats("*/*"), vec![]);
        assert_eq!(accepted_formats("image/avif;q=0, image/jpeg"), vec![Format::Jpeg]);
        assert_eq!(accepted_formats("application/json"), vec![]);
        assert!(accepts_json("application/json"));
        assert!(accepts_json("image/png, application/json;q=0.9"));
        assert!(!accepts_json("application/json;q=0"));
        assert!(!accepts_json("*/*"));
    }

    #[test]
    fn quality_spellings() {
        for good in ["0", "7", "80", "100", "60-80", "0-100", "80-20"] {
            assert!(is_quality(good), "{good}");
        }
        for bad in ["", "-", "101", "080", "+5", " 80", "80 ", "60-", "-80", "1-2-3", "60--80", "1e2"] {
            assert!(!is_quality(bad), "{bad:?}");
        }
    }
}
