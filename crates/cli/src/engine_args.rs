//! Engine options as command-line flags, shared by every subcommand that compresses.

use clap::Args;
use compressor_engine::{Limits, MetadataPolicy, Mode, Options, Quality};

#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// lossy (palette quantization, JPEG re-encoding) or lossless (pixel-identical, verified)
    #[arg(short, long, default_value = "lossy", value_parser = parse::<Mode>)]
    pub mode: Mode,
    /// Quality 0-100, as N or MIN-MAX (PNG default 65-80, JPEG default 80)
    #[arg(short, long, value_parser = parse::<Quality>)]
    pub quality: Option<Quality>,
    /// What to do with metadata: strip, safe (keep ICC profile and orientation), keep
    #[arg(long, default_value = "safe", value_parser = parse::<MetadataPolicy>)]
    pub metadata: MetadataPolicy,
    /// 1 (fastest) to 6 (smallest)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=6))]
    pub effort: u8,
    /// Refuse images with more pixels than this (checked from the header, before decoding)
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    pub max_pixels: u64,
}

impl EngineArgs {
    pub fn options(&self) -> Options {
        Options {
            mode: self.mode,
            quality: self.quality,
            metadata: self.metadata,
            effort: self.effort,
            limits: Limits { max_pixels: self.max_pixels, ..Limits::default() },
            ..Options::default()
        }
    }
}

/// Uses the engine's own parsers so the CLI, HTTP API and batch accept the same spellings.
fn parse<T: std::str::FromStr<Err = compressor_engine::Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: compressor_engine::Error| e.to_string())
}
