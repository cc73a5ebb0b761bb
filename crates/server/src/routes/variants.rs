//! `POST /v1/variants`: responsive variants of one image, in one ZIP with a manifest and the
//! `srcset` to paste into an `<img>`.

use std::io::Write as _;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use compressor_engine::{Compressed, Format, OutputFormat, srcset, variant_file_name};
use serde::{Deserialize, Serialize};

use super::upload;
use super::v1::{self, CompressParams, ImageBytes};
use crate::AppState;
use crate::error::ApiError;

pub const ROUTE: &str = "/v1/variants";

/// The widths; every other query parameter is one of `/v1/compress`'s.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VariantsParams {
    /// Comma-separated widths in pixels, 1-65535 each, at most 16 (for example `320,640,1280`).
    /// Widths beyond the image's own are skipped unless `enlarge=true`; when every one is, 422
    /// `no_variants`.
    #[param(
        pattern = r"^ *(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}) *(, *(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}) *){0,15}$",
        example = "320,640,1280"
    )]
    pub widths: String,
}

/// What the document lists for `/v1/variants`: `widths` and every `/v1/compress` parameter but
/// the size ones (which this route refuses).
pub struct VariantsQuery;

impl utoipa::IntoParams for VariantsQuery {
    fn into_params(parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        let mut params = VariantsParams::into_params(&parameter_in);
        let compress = CompressParams::into_params(&parameter_in);
        params.extend(compress.into_iter().filter(|p| !matches!(p.name.as_str(), "width" | "height" | "fit")));
        params
    }
}

/// `manifest.json` in the ZIP: what each file is, and the `srcset` of them all.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    /// The uploaded image's width and height (as displayed) and size in bytes
    pub source: Source,
    /// One entry per file in the ZIP, narrowest first
    pub variants: Vec<Variant>,
    /// Widths asked for that are wider than the image (not produced without `enlarge=true`)
    pub skipped: Vec<u32>,
    /// `name-320w.webp 320w, name-640w.webp 640w, …`, ready for `<img srcset>`
    pub srcset: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Source {
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variant {
    /// The file's name in the ZIP: `stem-<width>w.<ext>`
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    /// png, jpeg, webp, avif or gif
    pub format: String,
    pub method: String,
    /// SSIMULACRA2 against the resized pixels, with `score=true`
    pub quality_score: Option<f64>,
}

/// Responsive variants of one image.
///
/// The image is resized (Lanczos3, linear light, after the EXIF orientation) to each width,
/// decoded once, and each variant compressed with the same options as `/v1/compress` (the output
/// format defaults to WebP here). The answer is a ZIP (stored, as images are already compressed)
/// holding the variants and `manifest.json`.
#[utoipa::path(
    post,
    path = "/v1/variants",
    tag = "compress",
    params(VariantsQuery),
    request_body(
        description = "The image, raw or as the `file` field of a multipart form",
        content(
            (ImageBytes = "application/octet-stream"),
            // Every format the engine reads (`openapi::finish`).
            (ImageBytes = "image/*"),
            (v1::CompressForm = "multipart/form-data"),
        ),
    ),
    responses(
        (status = 200, description = "A ZIP of the variants and manifest.json",
            headers(
                ("X-Variant-Count" = u32, description = "How many variants the ZIP holds"),
                ("Content-Disposition" = String, description = "attachment; filename=\"stem-variants.zip\""),
            ),
            content((ImageBytes = "application/zip"))),
    ),
    security((), ("bearer" = []), ("api_key" = [])),
)]
pub async fn variants(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::BadRequest { code: "invalid_options", message };
    let widths = Query::<VariantsParams>::try_from_uri(request.uri()).map_err(|e| bad(e.body_text()))?.0.widths;
    let widths = parse_widths(&widths).map_err(bad)?;
    let mut params = Query::<CompressParams>::try_from_uri(&without_widths(request.uri())?).map_err(|e| bad(e.body_text()))?.0;
    // `enlarge` applies to the widths here, not to a /v1/compress resize (which would want a side).
    let enlarge = params.enlarge.take().unwrap_or(false);
    if params.width.is_some() || params.height.is_some() || params.fit.is_some() {
        return Err(bad("width, height and fit are for /v1/compress; here the sizes come from widths".into()));
    }
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut options = v1::options(&params, &accept, &state)?;
    if params.format.is_none() {
        options.format = OutputFormat::To(Format::WebP);
    }
    let (charge, request) = upload::start_upload(&state, request)?;
    let upload = upload::read_image(request, state.config.max_body_bytes).await?;
    let admission = upload::admit(&state, charge)?;
    let stem = upload::output_stem(upload.filename.as_deref());
    state.metrics.bytes_in(ROUTE, upload.data.len());
    let zip_stem = stem.clone();
    let memory = compressor_engine::estimate_variants_peak_bytes(&upload.data, &widths, enlarge, &options)?;
    let _cancel = compressor_engine::CancelOnDrop(options.cancel.clone());
    let (zip, count) = state
        .pool
        .run(admission, memory, move || -> Result<(Vec<u8>, usize), ApiError> {
            let results = compressor_engine::variants(&upload.data, &widths, enlarge, &options)?;
            package(&zip_stem, upload.data.len(), results)
        })
        .await??;
    state.metrics.bytes_out(ROUTE, zip.len());

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    let disposition = format!("attachment; filename=\"{stem}-variants.zip\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(|e| ApiError::Internal(e.to_string()))?);
    headers.insert("x-variant-count", HeaderValue::from(count));
    Ok((headers, zip).into_response())
}

/// `320,640` → [320, 640]; the engine sorts, deduplicates and bounds the count.
fn parse_widths(text: &str) -> Result<Vec<u32>, String> {
    // Plain digits (the document's pattern): no signs, no leading zeros; spaces around commas.
    let width = |w: &str| {
        let w = w.trim_matches(' ');
        let digits = !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) && !w.starts_with('0');
        digits.then(|| w.parse::<u32>().ok()).flatten().filter(|w| (1..=65_535).contains(w))
    };
    let widths: Option<Vec<u32>> = text.split(',').map(width).collect();
    match widths {
        Some(w) if w.len() <= 16 => Ok(w),
        _ => Err(format!("widths {text:?} is not a comma-separated list of at most 16 widths in 1-65535")),
    }
}

/// The request's URI without the `widths` parameter, for parsing the others strictly.
fn without_widths(uri: &Uri) -> Result<Uri, ApiError> {
    let rest: Vec<&str> = uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty() && p.split('=').next() != Some("widths")).collect();
    let path_and_query = format!("{}?{}", uri.path(), rest.join("&"));
    path_and_query.parse().map_err(|_| ApiError::BadRequest { code: "invalid_options", message: "unreadable query".into() })
}

/// The ZIP: every variant under its `stem-<W>w.<ext>` name, then `manifest.json`.
fn package(stem: &str, input_bytes: usize, results: Vec<(u32, Option<Compressed>)>) -> Result<(Vec<u8>, usize), ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError::Internal(format!("writing the ZIP: {e}"));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut variants = Vec::new();
    let mut skipped = Vec::new();
    let mut source = Source { width: 0, height: 0, bytes: input_bytes };
    for (width, result) in results {
        let Some(result) = result else {
            skipped.push(width);
            continue;
        };
        let (source_width, source_height) = result.resized_from.unwrap_or((result.width, result.height));
        source = Source { width: source_width, height: source_height, bytes: input_bytes };
        let file = variant_file_name(stem, &result);
        zip.start_file(file.as_str(), stored).map_err(|e| internal(&e))?;
        zip.write_all(&result.data).map_err(|e| internal(&e))?;
        variants.push(Variant {
            file,
            width: result.width,
            height: result.height,
            bytes: result.output_size,
            format: result.format.to_string(),
            method: result.method,
            quality_score: result.quality_score,
        });
    }
    if variants.is_empty() {
        return Err(ApiError::Unprocessable {
            code: "no_variants",
            message: format!("every width in {skipped:?} is wider than the image; pass enlarge=true to upscale"),
        });
    }
    let manifest = Manifest { source, srcset: srcset(variants.iter().map(|v| (v.file.as_str(), v.width))), variants, skipped };
    zip.start_file("manifest.json", stored).map_err(|e| internal(&e))?;
    zip.write_all(&serde_json::to_vec_pretty(&manifest).map_err(|e| internal(&e))?).map_err(|e| internal(&e))?;
    let count = manifest.variants.len();
    Ok((zip.finish().map_err(|e| internal(&e))?.into_inner(), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_the_remaining_query() {
        assert_eq!(parse_widths("320,640, 1280"), Ok(vec![320, 640, 1280]));
        for bad in ["", "0", "320,", "a", "70000", "-5", "+5", "0320", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"] {
            assert!(parse_widths(bad).is_err(), "{bad:?}");
        }
        let uri: Uri = "/v1/variants?widths=320%2C640&format=avif&quality=60".parse().unwrap();
        assert_eq!(without_widths(&uri).unwrap().query(), Some("format=avif&quality=60"));
        let uri: Uri = "/v1/variants?widths=320".parse().unwrap();
        assert_eq!(without_widths(&uri).unwrap().query(), Some(""));
    }
}
