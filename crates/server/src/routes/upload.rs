//! Reading an uploaded image (raw body or one multipart field) and running the engine on it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use compressor_engine::{Compressed, Options};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::AppState;
use crate::error::ApiError;
use crate::pool::{Admission, PendingCharge, UploadCharge, UploadOverBudget};

/// The image bytes of a request and the file name it came with (multipart only).
pub struct Upload {
    pub data: Bytes,
    pub filename: Option<String>,
}

/// The image of a `/v1` request: the `file` field of a multipart form, or else the raw body.
pub async fn read_image(request: Request, max_bytes: usize) -> Result<Upload, ApiError> {
    if is_multipart(request.headers()) {
        read_multipart(request, "file", OtherFields::Refused, max_bytes).await
    } else {
        read_raw(request.into_body(), max_bytes).await
    }
}

pub(super) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Lets a compress request upload its image, or refuses it with 503 at once when the work queue
/// is full (the body it is still sending is drained by the connection, `linger.rs`, so the 503
/// reaches it). The body's bytes are charged to the memory budget as they arrive (the returned
/// charge); reading takes no admission slot, which is taken by [`admit`] once the body is in.
pub fn start_upload(state: &AppState, request: Request) -> Result<(UploadCharge, Request), ApiError> {
    // Image uploads are bounded by the memory budget, not counted: the slot holds nothing.
    let _uncounted = state.pool.try_start_upload()?;
    let charge = state.pool.upload_charge();
    let body = charge.clone();
    Ok((charge, request.map(|inner| Body::new(Charged { inner, charge: body, pending: None }))))
}

/// A slot in the work queue for an upload that has been read, or 503 when the queue is full.
pub fn admit(state: &AppState, upload: UploadCharge) -> Result<Admission, ApiError> {
    Ok(state.pool.try_admit()?.holding(upload))
}

/// A request body whose bytes are charged to the memory budget as they arrive; a frame that finds
/// no room waits for it (up to the budget's wait) before it is passed on, else the body fails
/// with [`UploadOverBudget`] (503, or 413 for a body larger than the whole budget).
struct Charged {
    inner: Body,
    charge: UploadCharge,
    /// A frame waiting for room, and the wait.
    pending: Option<(Frame<Bytes>, PendingCharge)>,
}

impl HttpBody for Charged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Some((_, waiting)) = self.pending.as_mut() {
            return match waiting.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(reservation)) => {
                    self.charge.take(reservation);
                    let (frame, _) = self.pending.take().expect("a pending frame");
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Err(over)) => {
                    self.pending = None;
                    Poll::Ready(Some(Err(axum::Error::new(over))))
                }
            };
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let bytes = frame.data_ref().map_or(0, |d| d.len() as u64);
                match self.charge.try_add(bytes) {
                    Ok(()) => Poll::Ready(Some(Ok(frame))),
                    Err(Err(never)) => Poll::Ready(Some(Err(axum::Error::new(never)))),
                    Err(Ok(waiting)) => {
                        self.pending = Some((frame, waiting));
                        self.poll_frame(cx)
                    }
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The whole body. The body-limit layer makes a longer body fail; that failure is a 413.
pub async fn read_raw(body: Body, max_bytes: usize) -> Result<Upload, ApiError> {
    let data = body.collect().await.map_err(|e| body_error(&e, max_bytes))?.to_bytes();
    image_upload(data, None)
}

/// Which fields a form may carry besides its file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OtherFields {
    /// `/v1`: the form holds its one file field and nothing else, as the query holds only the
    /// documented parameters; anything else is 400 `invalid_multipart`.
    Refused,
    /// The legacy route: the old server read past other fields (its clients send `strategy=bimg`),
    /// and the first file field counts.
    Ignored,
}

/// The field named `field` (which must be a file or at least hold bytes).
pub async fn read_multipart(request: Request, field: &str, others: OtherFields, max_bytes: usize) -> Result<Upload, ApiError> {
    let mut multipart =
        Multipart::from_request(request, &()).await.map_err(|e| ApiError::Refused { code: "invalid_multipart", message: e.body_text() })?;
    let mut upload = None;
    while let Some(part) = multipart.next_field().await.map_err(|e| multipart_error(e, max_bytes))? {
        if !is_file_field(part.name(), field, upload.is_some(), others)? {
            continue;
        }
        let filename = part.file_name().map(str::to_owned);
        let data = part.bytes().await.map_err(|e| multipart_error(e, max_bytes))?;
        upload = Some(image_upload(data, filename)?);
    }
    upload.ok_or_else(|| ApiError::Refused {
        code: "missing_file",
        message: format!("the multipart form has no field named {field:?} holding the image"),
    })
}

/// Whether a form's part named `name` is its file (`field`, the first one when `seen` is false);
/// a part the form does not take is skipped or refused as `others` says.
pub(super) fn is_file_field(name: Option<&str>, field: &str, seen: bool, others: OtherFields) -> Result<bool, ApiError> {
    match name {
        Some(name) if name == field && !seen => Ok(true),
        _ if others == OtherFields::Ignored => Ok(false),
        Some(name) if name == field => {
            Err(ApiError::Refused { code: "invalid_multipart", message: format!("the form holds more than one {field:?} field") })
        }
        name => Err(ApiError::Refused {
            code: "invalid_multipart",
            message: format!("the form has a field {:?}; it takes only {field:?}", name.unwrap_or("")),
        }),
    }
}

/// An image upload; a video sent to an image route is told where videos go.
fn image_upload(data: Bytes, filename: Option<String>) -> Result<Upload, ApiError> {
    if compressor_video::looks_like_video(&data) {
        return Err(ApiError::Refused {
            code: "unsupported_format",
            message: format!("this is a video, not an image: send videos to POST {}", super::video::ROUTE),
        });
    }
    Ok(Upload { data, filename })
}

fn too_large(max_bytes: usize) -> ApiError {
    ApiError::Refused { code: "too_large", message: format!("the request body is larger than the {max_bytes} byte limit") }
}

/// What a failure while reading a body means for the client: too slow (408), too large (413),
/// no room in the memory budget now (503) or ever (413), or a bad body (400).
pub(super) fn body_error(error: &(dyn std::error::Error + 'static), max_bytes: usize) -> ApiError {
    read_error(error, max_bytes)
        .unwrap_or_else(|| ApiError::Refused { code: "bad_body", message: format!("reading the request body failed: {error}") })
}

pub(super) fn multipart_error(error: axum::extract::multipart::MultipartError, max_bytes: usize) -> ApiError {
    match read_error(&error, max_bytes) {
        Some(known) => known,
        None if error.status() == StatusCode::PAYLOAD_TOO_LARGE => too_large(max_bytes),
        None => ApiError::Refused { code: "invalid_multipart", message: error.body_text() },
    }
}

/// The answer for a body failure caused by one of the limits on reading, if it was one.
fn read_error(error: &(dyn std::error::Error + 'static), max_bytes: usize) -> Option<ApiError> {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<crate::slow::SlowUpload>() {
            return Some(ApiError::SlowUpload(crate::slow::SlowUpload.to_string()));
        }
        if e.is::<http_body_util::LengthLimitError>() {
            return Some(too_large(max_bytes));
        }
        match e.downcast_ref::<UploadOverBudget>() {
            Some(UploadOverBudget::Busy) => {
                return Some(ApiError::Overloaded { why: crate::error::Busy::Memory, retry_after: crate::pool::RETRY_AFTER_SECS });
            }
            Some(never @ UploadOverBudget::NeverFits { .. }) => {
                return Some(ApiError::Refused { code: "over_memory_budget", message: never.to_string() });
            }
            None => {}
        }
        source = e.source();
    }
    None
}

/// What the engine returned and how long it took on its worker.
pub struct Outcome {
    pub result: Compressed,
    pub processing_ms: u64,
}

/// Runs the engine on a worker thread and records bytes and ratio for `route`.
pub async fn compress(
    state: &AppState,
    route: &'static str,
    admission: Admission,
    data: Bytes,
    options: Options,
) -> Result<Outcome, ApiError> {
    state.metrics.bytes_in(route, data.len());
    let memory = compressor_engine::estimate_peak_bytes(&data, &options)?;
    // Dropped with this future (client gone, timeout): the engine stops at its next stage and
    // the worker is free again.
    let _cancel = compressor_engine::CancelOnDrop(options.cancel.clone());
    let (result, processing_ms) = state
        .pool
        .run(admission, memory, move || {
            let started = Instant::now();
            let result = compressor_engine::compress(&data, &options);
            (result, started.elapsed().as_millis() as u64)
        })
        .await?;
    let result = result?;
    state.metrics.bytes_out(route, result.output_size);
    state.metrics.compression_ratio(&result.format.to_string(), result.ratio());
    Ok(Outcome { result, processing_ms })
}

/// A file name safe to put in a header and on a disk: the last path component, with anything but
/// ASCII letters, digits, `.`, `-` and `_` replaced by `_`, no leading dots, at most 200 bytes.
pub fn sanitize_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    let cleaned = cleaned.trim_start_matches('.');
    let cleaned: String = cleaned.chars().take(200).collect();
    (!cleaned.is_empty() && cleaned.chars().any(|c| c.is_ascii_alphanumeric())).then_some(cleaned)
}

/// An image output's file name: the upload's (sanitised) or `image`, by the engine's one naming
/// rule (its extension says the output's format; an extension that already does is kept).
pub fn image_output_filename(upload_name: Option<&str>, format: compressor_engine::Format) -> String {
    format.output_name(&upload_name.and_then(sanitize_filename).unwrap_or_else(|| "image".into()))
}

/// `stem.ext` for an output: the upload's stem (sanitised) or `image`, with the output's extension.
pub fn output_filename(upload_name: Option<&str>, extension: &str) -> String {
    format!("{}.{extension}", output_stem(upload_name))
}

/// The upload's file name without its extension, made safe, or `image`.
pub fn output_stem(upload_name: Option<&str>) -> String {
    upload_name
        .and_then(sanitize_filename)
        .map(|n| match n.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
            _ => n,
        })
        .unwrap_or_else(|| "image".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(sanitize_filename("shot.png").as_deref(), Some("shot.png"));
        assert_eq!(sanitize_filename("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(sanitize_filename("C:\\Users\\me\\my photo.PNG").as_deref(), Some("my_photo.PNG"));
        assert_eq!(sanitize_filename("a\"b;\r\nc.png").as_deref(), Some("a_b___c.png"));
        assert_eq!(sanitize_filename("..").as_deref(), None);
        assert_eq!(sanitize_filename("").as_deref(), None);
        assert_eq!(sanitize_filename(".hidden.png").as_deref(), Some("hidden.png"));
        assert_eq!(sanitize_filename("ünï.png").as_deref(), Some("_n_.png"));
        assert_eq!(output_filename(Some("holiday.jpeg"), "webp"), "holiday.webp");
        assert_eq!(output_filename(None, "png"), "image.png");
        assert_eq!(image_output_filename(Some("scan.TIF"), compressor_engine::Format::Png), "scan.png");
        assert_eq!(image_output_filename(Some("shot.PNG"), compressor_engine::Format::Png), "shot.PNG");
        assert_eq!(image_output_filename(None, compressor_engine::Format::Avif), "image.avif");
        assert_eq!(output_filename(Some("/"), "png"), "image.png");
    }
}
