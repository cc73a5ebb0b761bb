//! The one error type of the HTTP layer and its JSON shape: `{"error":{"code":"…","message":"…"}}`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use compressor_engine::Error as EngineError;
use serde::Serialize;

/// One code an answer can carry: its status and what it means. [`ERROR_CODES`] is the one table.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode {
    pub code: &'static str,
    pub status: u16,
    pub meaning: &'static str,
}

const fn code(code: &'static str, status: u16, meaning: &'static str) -> ErrorCode {
    ErrorCode { code, status, meaning }
}

/// Every error code the HTTP API answers with, its status and meaning: [`ApiError::status`] reads
/// the status from here, and the OpenAPI document's error responses and the README's table list
/// these (a test holds each to it). The engine's and the video crate's codes (`Error::code`, also
/// what `compress --json` and batch's manifest say) are among them.
pub const ERROR_CODES: &[ErrorCode] = &[
    code("invalid_options", 400, "a query parameter outside what the document allows, or a combination the route refuses"),
    code("invalid_strategy", 400, "the legacy route's `strategy` is neither `pngquant` nor `stdlib`"),
    code("missing_file", 400, "the form holds no file"),
    code("invalid_multipart", 400, "a broken multipart form, or a /v1 form with a field other than `file`"),
    code("bad_body", 400, "the request body could not be read"),
    code("bad_request", 400, "a request the route cannot read"),
    code("unauthorized", 401, "API keys are configured and none or a wrong one was given"),
    code("not_found", 404, "no such route"),
    code("method_not_allowed", 405, "the route does not answer that method"),
    code("slow_upload", 408, "the upload arrived slower than the minimum rate"),
    code("too_large", 413, "the body is over the route's limit"),
    code("over_memory_budget", 413, "the image's estimated peak, or the upload itself, is more than the whole memory budget"),
    code("limit_exceeded", 413, "what the header declares is over a limit: pixels, dimensions, frames, a video's duration or frame size"),
    code(
        "unsupported_format",
        415,
        "not a format the route reads (judged by content, not by name or Content-Type); a video sent to an image route, or \
         an image to the video route, names the right route",
    ),
    code("corrupt_image", 422, "a known image format that cannot be decoded"),
    code("cannot_fit", 422, "no output within `max_bytes`"),
    code("no_variants", 422, "every `widths` entry is wider than the image (without `enlarge=true`)"),
    code(
        "needs_option",
        422,
        "the image needs an option the request did not set, such as `first_frame=true` for an animation into a still-only format",
    ),
    code("corrupt_video", 422, "a video that cannot be read"),
    code("transcode_failed", 422, "a transcode that failed on the output side, or was stopped by its CPU or memory limit"),
    code("rate_limited", 429, "the caller's token bucket is empty; retry after `Retry-After` seconds"),
    code("internal", 500, "a bug; only this request fails"),
    code("cancelled", 500, "the work was stopped (no one is left to read this)"),
    code(
        "overloaded",
        503,
        "every worker busy and the queue full, or no room in the memory budget within 5 s; retry after `Retry-After` seconds",
    ),
    code("timeout", 504, "the request took longer than the route's timeout; its work stops"),
    code(
        "insufficient_storage",
        507,
        "the temporary folder's disk is full: a video's upload or its transcode did not fit; nothing is kept, and it may fit later",
    ),
];

/// The table's entry for `code`.
pub fn error_code(code: &str) -> Option<&'static ErrorCode> {
    ERROR_CODES.iter().find(|c| c.code == code)
}

/// Everything a request can fail with. The status comes from the code ([`ERROR_CODES`]); the
/// body is always [`ErrorBody`] JSON.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal or failure named by its code: 400, 413, 415, 422 and the like.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// 401: keys are configured and the request carries none or a wrong one.
    #[error("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")]
    Unauthorized,
    /// 404: no such route.
    #[error("no route for {0}")]
    NotFound(String),
    /// 408: the upload arrived slower than the minimum rate (see `slow.rs`).
    #[error("{0}")]
    SlowUpload(String),
    /// 429: the caller's token bucket is empty.
    #[error("rate limit exceeded: {limit} requests per {window}; retry in {retry_after} s")]
    RateLimited { limit: u32, window: String, retry_after: u64, reset: u64 },
    /// 503: no room now, for the reason `why`.
    #[error("{why}; retry in {retry_after} s")]
    Overloaded { why: Busy, retry_after: u64 },
    /// 504: the request took longer than the configured timeout.
    #[error("the request took longer than the {0} ms timeout")]
    Timeout(u128),
    /// 500: a bug (a panic in a handler or a codec, a failed worker).
    #[error("internal error: {0}")]
    Internal(String),
}

/// What was full when a request was answered 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("all workers are busy and the queue is full")]
    Workers,
    #[error("as many uploads as this server reads at once are in progress")]
    Uploads,
    #[error("no room in the server's memory budget: other work holds it")]
    Memory,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, for example `corrupt_image` or `rate_limited`.
    #[schema(example = "corrupt_image")]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Refused { code: "bad_request", message: message.into() }
    }

    /// The code's status in [`ERROR_CODES`].
    pub fn status(&self) -> StatusCode {
        let status = error_code(self.code()).map(|c| c.status);
        debug_assert!(status.is_some(), "{} is in ERROR_CODES", self.code());
        StatusCode::from_u16(status.unwrap_or(500)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Refused { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::SlowUpload(_) => "slow_upload",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// An engine error under its own code (the same the CLI's JSON and batch's manifest show), its
/// message as an HTTP caller sets options.
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.message(compressor_engine::Surface::Http);
        match e {
            EngineError::Internal { .. } => ApiError::Internal(message),
            // Only the request's own drop guard cancels, so no one is left to read this.
            EngineError::Cancelled => ApiError::Internal(message),
            e => ApiError::Refused { code: e.code(), message },
        }
    }
}

/// A video error under the video crate's code (the same the CLI's JSON and batch's manifest show).
impl From<compressor_video::Error> for ApiError {
    fn from(e: compressor_video::Error) -> Self {
        use compressor_video::Error as VideoError;
        let message = e.to_string();
        match e {
            VideoError::Timeout { seconds, .. } => ApiError::Timeout((seconds * 1000.0) as u128),
            VideoError::Cancelled | VideoError::ToolMissing { .. } | VideoError::Io(_) => ApiError::Internal(message),
            e => ApiError::Refused { code: e.code(), message },
        }
    }
}

/// A failed write of a request's data to a temporary file: a full disk is the caller's to retry
/// later (507); anything else is this machine's fault.
pub fn write_error(e: &std::io::Error, what: &str) -> ApiError {
    if compressor_video::is_no_space(e) {
        ApiError::Refused { code: "insufficient_storage", message: format!("{what}: no space left in the temporary folder") }
    } else {
        ApiError::Internal(format!("{what}: {e}"))
    }
}

/// The JSON error response for a status and code, also used to give bodies to the bare error
/// responses of tower layers (body limit, timeout, method not allowed).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message: message.to_owned() } };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code(), "{self}");
        } else {
            tracing::debug!(code = self.code(), "{self}");
        }
        let mut response = json_error(status, self.code(), &self.to_string());
        let headers: &mut HeaderMap = response.headers_mut();
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { limit, retry_after, reset, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                headers.insert("x-ratelimit-limit", HeaderValue::from(*limit));
                headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
                headers.insert("x-ratelimit-reset", HeaderValue::from(*reset));
            }
            ApiError::Overloaded { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compressor_engine::LimitKind;

    #[test]
    fn engine_errors_map_to_the_documented_statuses() {
        let cases = [
            (EngineError::LimitExceeded { what: LimitKind::Pixels, value: 2, limit: 1 }, 413),
            (EngineError::UnsupportedFormat { detail: "bmp".into() }, 415),
            (EngineError::Corrupt { detail: "eof".into() }, 422),
            (EngineError::InvalidOptions { detail: "q".into() }, 400),
            (EngineError::CannotFit { max_bytes: 1, smallest: 2 }, 422),
            (EngineError::NeedsOption { detail: "animated".into(), option: "first_frame" }, 422),
            (EngineError::Internal { detail: "bug".into() }, 500),
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{api:?}");
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn every_code_is_in_the_table_once_with_an_error_status() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ERROR_CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!((400..600).contains(&c.status), "{}: {}", c.code, c.status);
        }
        let fixed = [
            ApiError::Unauthorized,
            ApiError::NotFound("/x".into()),
            ApiError::SlowUpload("slow".into()),
            ApiError::RateLimited { limit: 1, window: "1s".into(), retry_after: 1, reset: 1 },
            ApiError::Overloaded { why: Busy::Memory, retry_after: 1 },
            ApiError::Timeout(1),
            ApiError::Internal("bug".into()),
        ];
        for error in fixed {
            assert!(error_code(error.code()).is_some(), "{}", error.code());
        }
    }

    /// The README's table of error answers lists every code under the status it is answered with.
    #[test]
    fn the_readme_lists_every_code_under_its_status() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let rows: Vec<(&str, &str)> = readme
            .lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix("| ")?.split(" | ");
                let statuses = cells.next()?;
                statuses.split(", ").all(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then_some((statuses, cells.next()?))
            })
            .collect();
        for c in ERROR_CODES {
            let listed = rows.iter().any(|(statuses, codes)| {
                statuses.split(", ").any(|s| s == c.status.to_string()) && codes.contains(&format!("`{}`", c.code))
            });
            assert!(listed, "the README's error table does not list `{}` under {}", c.code, c.status);
        }
    }

    #[test]
    fn video_errors_keep_the_video_crates_code() {
        use compressor_video::{Error as VideoError, LimitKind as VideoLimit};
        let cases = [
            (VideoError::Unsupported { detail: "mp3".into() }, 415),
            (VideoError::Corrupt { detail: "eof".into(), log: None }, 422),
            (VideoError::Failed { detail: "encoder".into(), log: None }, 422),
            (VideoError::LimitExceeded { what: VideoLimit::DurationSeconds, value: 2.0, limit: 1.0 }, 413),
            (VideoError::InvalidOptions { detail: "q".into() }, 400),
            (VideoError::Timeout { program: "ffmpeg".into(), seconds: 1.0 }, 504),
            (VideoError::ToolMissing { program: "ffmpeg".into() }, 500),
            (VideoError::Io(std::io::Error::other("disk")), 500),
            (VideoError::from(std::io::Error::from(std::io::ErrorKind::StorageFull)), 507),
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!((api.status().as_u16(), api.code()), (status, code), "{api:?}");
        }
        assert_eq!(ApiError::from(VideoError::Failed { detail: String::new(), log: None }).code(), "transcode_failed");
    }
}
