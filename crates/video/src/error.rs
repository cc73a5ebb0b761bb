//! What can go wrong, as types the CLI and the service map to exit codes and HTTP statuses.

use std::fmt;

/// The limit a video went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    DurationSeconds,
    FramePixels,
    InputBytes,
    Frames,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::DurationSeconds => "max_duration_seconds",
            LimitKind::FramePixels => "max_frame_pixels",
            LimitKind::InputBytes => "max_input_bytes",
            LimitKind::Frames => "max_frames",
        })
    }
}

pub use crate::ffmpeg::ChildLog;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ffprobe found no video stream, or a container or codec ffmpeg cannot read.
    #[error("unsupported video: {detail}")]
    Unsupported { detail: String },
    /// The file claims a format but cannot be read (ffprobe failed, or ffmpeg failed reading it).
    /// `log`: the child that failed, when one did (see [`Error::log`]).
    #[error("corrupt video: {detail}")]
    Corrupt { detail: String, log: Option<Box<ChildLog>> },
    /// Over a limit, found by the probe before any transcoding.
    #[error("{what} exceeded: {value} > {limit}")]
    LimitExceeded { what: LimitKind, value: f64, limit: f64 },
    #[error("invalid options: {detail}")]
    InvalidOptions { detail: String },
    /// The child ran past its deadline and was killed.
    #[error("{program} took longer than {seconds} s and was stopped")]
    Timeout { program: String, seconds: f64 },
    /// The caller cancelled the work (see [`crate::Cancel`]); the child was killed.
    #[error("cancelled")]
    Cancelled,
    #[error("{program} is not installed (Debian package ffmpeg)")]
    ToolMissing { program: String },
    /// ffmpeg failed on the output side of an input it read (an encoder that refused the input's
    /// streams, the muxer, the output file), or ran out of memory, or was killed by its CPU or
    /// memory limit.
    #[error("transcoding failed: {detail}")]
    Failed { detail: String, log: Option<Box<ChildLog>> },
    /// The temporary folder's disk (or quota) is full: the upload or the transcode's output did not
    /// fit. Nothing is kept; it may fit later, when other work has let go of its files.
    #[error("no space left in the temporary folder: {detail}")]
    NoSpace { detail: String, log: Option<Box<ChildLog>> },
    #[error("I/O: {0}")]
    Io(std::io::Error),
}

/// A full disk is its own error (the caller may retry later or elsewhere); any other I/O error is
/// a fault of this machine.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if is_no_space(&e) { Error::NoSpace { detail: e.to_string(), log: None } } else { Error::Io(e) }
    }
}

/// Whether an I/O error says the disk or the quota is full.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

impl Error {
    /// The one short stable machine-readable code of each error, like the image engine's: the
    /// command line's `--json`, batch's manifest and the service's error body all say this.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unsupported { .. } => "unsupported_format",
            Error::Corrupt { .. } => "corrupt_video",
            Error::LimitExceeded { .. } => "limit_exceeded",
            Error::InvalidOptions { .. } => "invalid_options",
            Error::Timeout { .. } => "timeout",
            Error::Cancelled => "cancelled",
            Error::Failed { .. } => "transcode_failed",
            Error::NoSpace { .. } => "insufficient_storage",
            Error::ToolMissing { .. } | Error::Io(_) => "internal",
        }
    }

    /// The child whose failure this is: its command line and the end of its standard error.
    pub fn log(&self) -> Option<&ChildLog> {
        match self {
            Error::Corrupt { log, .. } | Error::Failed { log, .. } | Error::NoSpace { log, .. } => log.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn corrupt(detail: impl Into<String>) -> Error {
        Error::Corrupt { detail: detail.into(), log: None }
    }

    pub(crate) fn failed(detail: impl Into<String>) -> Error {
        Error::Failed { detail: detail.into(), log: None }
    }
}
