//! The one error type of the engine. Every failure a caller can see is one of these variants.

use std::fmt;

use crate::option_defs::Surface;

/// Which limit an input exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Width × height of the image (or of the animation canvas).
    Pixels,
    /// Width or height in pixels.
    Dimension,
    /// Size of the input in bytes.
    InputBytes,
    /// Number of animation frames.
    Frames,
    /// Width × height of a resize's output.
    OutputPixels,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Pixels => "max_pixels",
            LimitKind::Dimension => "max_dimension",
            LimitKind::InputBytes => "max_input_bytes",
            LimitKind::Frames => "max_frames",
            LimitKind::OutputPixels => "max_output_pixels",
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    /// The bytes are not an image format the engine reads (or writes, for conversions).
    #[error("unsupported format: {detail}")]
    UnsupportedFormat { detail: String },
    /// The bytes claim to be a known format but cannot be decoded.
    #[error("corrupt image: {detail}")]
    Corrupt { detail: String },
    /// The header declares more than a configured limit allows; nothing was decoded.
    #[error("{what} exceeded: {value} > {limit}")]
    LimitExceeded { what: LimitKind, value: u64, limit: u64 },
    /// This input needs an option the caller did not set (for example `first_frame` to turn an
    /// animation into a still-only format). [`Error::message`] says how each surface sets it.
    #[error("{detail}; set the option {option} to allow it")]
    NeedsOption { detail: String, option: &'static str },
    /// The options cannot be satisfied (for example a quality range with min > max).
    #[error("invalid options: {detail}")]
    InvalidOptions { detail: String },
    /// No setting of the encoder produces an output within `max_bytes`.
    #[error("cannot fit within {max_bytes} bytes: the smallest output is {smallest} bytes")]
    CannotFit { max_bytes: u64, smallest: u64 },
    /// The caller cancelled the work (see [`crate::Cancel`]).
    #[error("cancelled")]
    Cancelled,
    /// A bug or a codec failure that is not the input's fault (including caught panics).
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl Error {
    /// A header cut off before the fields a probe reads.
    pub(crate) fn truncated(format: &str) -> Self {
        Error::corrupt(format!("{format} header is truncated"))
    }

    pub(crate) fn corrupt(detail: impl fmt::Display) -> Self {
        Error::Corrupt { detail: detail.to_string() }
    }

    pub(crate) fn unsupported(detail: impl fmt::Display) -> Self {
        Error::UnsupportedFormat { detail: detail.to_string() }
    }

    pub(crate) fn internal(detail: impl fmt::Display) -> Self {
        Error::Internal { detail: detail.to_string() }
    }

    /// Needs the switch `option` (a name in the option registry) to go on.
    pub(crate) fn needs(option: &'static str, detail: impl fmt::Display) -> Self {
        debug_assert!(crate::option_defs::option(option).is_some(), "{option} is an option");
        Error::NeedsOption { detail: detail.to_string(), option }
    }

    /// The message as a user of `surface` should read it: an option it needs is spelled as that
    /// surface sets it (`--first-frame`, `first_frame=true`).
    pub fn message(&self, surface: Surface) -> String {
        match self {
            Error::NeedsOption { detail, option } => {
                let spelled = crate::option_defs::known(option).spelled(surface, "true");
                let verb = if surface == Surface::Cli { "pass" } else { "add" };
                format!("{detail}; {verb} {spelled} to allow it")
            }
            other => other.to_string(),
        }
    }

    /// A short stable machine-readable code, used by the CLI's JSON and the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnsupportedFormat { .. } => "unsupported_format",
            Error::Corrupt { .. } => "corrupt_image",
            Error::LimitExceeded { .. } => "limit_exceeded",
            Error::InvalidOptions { .. } => "invalid_options",
            Error::NeedsOption { .. } => "needs_option",
            Error::CannotFit { .. } => "cannot_fit",
            Error::Cancelled => "cancelled",
            Error::Internal { .. } => "internal",
        }
    }
}
