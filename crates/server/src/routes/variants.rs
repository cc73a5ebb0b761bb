//! `POST /v1/variants`: responsive variants of one image, in one ZIP with a manifest and the
//! `srcset` to paste into an `<img>`.

use std::io::Write as _;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use compressor_engine::{Compressed, Format, MAX_VARIANTS, OptionValue, OutputFormat, option, srcset, variant_file_name};
use serde::{Deserialize, Serialize};

use super::v1::{self, ImageBytes};
use super::{query, upload};
use crate::AppState;
use crate::error::ApiError;

pub const ROUTE: &str = "/v1/variants";

/// One width of `widths`: 1-65535 in plain digits.
const WIDTH_PATTERN: &str = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";

/// The `/v1/compress` parameters that size one output; here the widths do.
const SIZE_PARAMETERS: [&str; 3] = ["width", "height", "fit"];

/// What the document lists for `/v1/variants`: `widths` and every `/v1/compress` parameter but
/// the size ones (which this route refuses).
pub struct VariantsQuery;

impl utoipa::IntoParams for VariantsQuery {
    fn into_params(_: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let pattern = format!("^ *{WIDTH_PATTERN} *(, *{WIDTH_PATTERN} *){{0,{}}}$", MAX_VARIANTS - 1);
        let widths = ParameterBuilder::new()
            .name("widths")
            .parameter_in(ParameterIn::Query)
            .required(utoipa::openapi::Required::True)
            .description(Some(format!(
                "Comma-separated widths in pixels, 1-65535 each, at most {MAX_VARIANTS} (for example `320,640,1280`). Widths beyond \
                 the image's own are skipped unless `enlarge=true`; when every one is, 422 `no_variants`."
            )))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).build()))
            .example(Some("320,640,1280".into()))
            .build();
        let mut params = vec![widths];
        params.extend(query::parameters(&SIZE_PARAMETERS));
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
    let bad = |message: String| ApiError::Refused { code: "invalid_options", message };
    let mut pairs = query::pairs(request.uri().query())?;
    let mut take = |name: &str| pairs.iter().position(|(n, _)| n == name).map(|i| pairs.remove(i).1);
    let widths = parse_widths(&take("widths").ok_or_else(|| bad("widths is required, for example widths=320,640".into()))?).map_err(bad)?;
    // `enlarge` applies to the widths here, not to a /v1/compress resize (which would want a side).
    let enlarge = match take("enlarge") {
        Some(text) => option("enlarge").expect("a registry option").parse(&text)? == OptionValue::Switch(true),
        None => false,
    };
    if let Some((name, _)) = pairs.iter().find(|(n, _)| SIZE_PARAMETERS.contains(&n.as_str())) {
        return Err(bad(format!("{name} is for /v1/compress; here the sizes come from widths")));
    }
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut options = query::options(&pairs, &accept, &state)?;
    if !pairs.iter().any(|(n, _)| n == "format") {
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
        Some(w) if w.len() <= MAX_VARIANTS => Ok(w),
        _ => Err(format!("widths {text:?} is not a comma-separated list of at most {MAX_VARIANTS} widths in 1-65535")),
    }
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
        return Err(ApiError::Refused {
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
        for bad in ["", "0", "320,", "a", "70000", "-5", "+5", "0320"] {
            assert!(parse_widths(bad).is_err(), "{bad:?}");
        }
        let most = vec!["1"; MAX_VARIANTS].join(",");
        assert!(parse_widths(&most).is_ok() && parse_widths(&format!("{most},1")).is_err());
    }
}
