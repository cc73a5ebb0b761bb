//! The one error type of the HTTP layer and its JSON shape: `{"error":{"code":"…","message":"…"}}`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use compressor_engine::Error as EngineError;
use serde::Serialize;

/// Everything a request can fail with. Each variant has one status code; the body is always
/// [`ErrorBody`] JSON.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a query parameter, multipart form or option the engine refuses.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: keys are configured and the request carries none or a wrong one.
    #[error("a valid API key is required (Authorization: Bearer <key> or X-API-Key)")]
    Unauthorized,
    /// 404: no such route.
    #[error("no route for {0}")]
    NotFound(String),
    /// 408: the upload arrived slower than the minimum rate (see `slow.rs`).
    #[error("{0}")]
    SlowUpload(String),
    /// 413: the body, or the image the header declares, is over a limit.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    /// 415: not an image format the engine reads.
    #[error("{0}")]
    Unsupported(String),
    /// 422: a known format that cannot be decoded, or a size target no setting reaches.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 429: the caller's token bucket is empty.
    #[error("rate limit exceeded: {limit} requests per {window}; retry in {retry_after} s")]
    RateLimited { limit: u32, window: String, retry_after: u64, reset: u64 },
    /// 503: all workers busy and the queue full.
    #[error("all workers are busy and the queue is full; retry in {retry_after} s")]
    Overloaded { retry_after: u64 },
    /// 504: the request took longer than the configured timeout.
    #[error("the request took longer than the {0} ms timeout")]
    Timeout(u128),
    /// 500: a bug (a panic in a handler or a codec, a failed worker).
    #[error("internal error: {0}")]
    Internal(String),
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
        ApiError::BadRequest { code: "bad_request", message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::SlowUpload(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::TooLarge { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unsupported(_) => "unsupported_format",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::SlowUpload(_) => "slow_upload",
            ApiError::Timeout(_) => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        let message = e.message(compressor_engine::Surface::Http);
        match e {
            EngineError::LimitExceeded { .. } => ApiError::TooLarge { code, message },
            EngineError::UnsupportedFormat { .. } => ApiError::Unsupported(message),
            EngineError::Corrupt { .. } | EngineError::CannotFit { .. } | EngineError::NeedsOption { .. } => {
                ApiError::Unprocessable { code, message }
            }
            EngineError::InvalidOptions { .. } => ApiError::BadRequest { code, message },
            EngineError::Internal { .. } => ApiError::Internal(message),
            // Only the request's own drop guard cancels, so no one is left to read this.
            EngineError::Cancelled => ApiError::Internal(message),
        }
    }
}

/// Each video error with the status the image route gives its like (the one place video errors
/// get a status); the code is the video crate's own ([`compressor_video::Error::code`]).
impl From<compressor_video::Error> for ApiError {
    fn from(e: compressor_video::Error) -> Self {
        use compressor_video::Error as VideoError;
        let (code, message) = (e.code(), e.to_string());
        match e {
            VideoError::Unsupported { .. } => ApiError::Unsupported(message),
            VideoError::Corrupt { .. } | VideoError::Failed { .. } => ApiError::Unprocessable { code, message },
            VideoError::LimitExceeded { .. } => ApiError::TooLarge { code, message },
            VideoError::InvalidOptions { .. } => ApiError::BadRequest { code, message },
            VideoError::Timeout { seconds, .. } => ApiError::Timeout((seconds * 1000.0) as u128),
            // Only the request's own drop guard cancels, so no one is left to read this.
            VideoError::Cancelled | VideoError::ToolMissing { .. } | VideoError::Io(_) => ApiError::Internal(message),
        }
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
            ApiError::Overloaded { retry_after } => {
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
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!((api.status().as_u16(), api.code()), (status, code), "{api:?}");
        }
        assert_eq!(ApiError::from(VideoError::Failed { detail: String::new(), log: None }).code(), "transcode_failed");
    }
}
