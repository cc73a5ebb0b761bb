//! Named settings that more than one caller must run identically: the HTTP service's legacy route
//! and the benchmark's service workload both take them from here.

use crate::options::{Mode, Options, Quality};

/// The options of the old Go server's `POST /compress-image` strategies (`Mode::Lossy` for
/// `pngquant`, `Mode::Lossless` for `stdlib`), with the engine's default limits (the service
/// sets its own).
pub fn legacy(strategy: Mode) -> Options {
    Options {
        mode: strategy,
        // pngquant --quality=60-80, as the old server ran it.
        quality: (strategy == Mode::Lossy).then_some(Quality::new(60, 80)),
        // The old lossless route was a plain re-encode with Go's image/png; effort 1 is well below
        // its size in a fraction of its time (see `compressor bench`, service workload).
        effort: if strategy == Mode::Lossless { 1 } else { Options::default().effort },
        // This route never reports a score, so none is computed.
        score: false,
        ..Options::default()
    }
}
