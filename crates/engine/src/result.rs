//! What compressing produces: the public [`Compressed`] report and, inside the engine, the
//! [`Candidate`]s a codec or a search makes and the [`Encoded`] result `compress` finishes.

use crate::format::{Format, ImageInfo};
use crate::image::Image;

/// The result of [`crate::compress`]: the bytes and what happened to them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Compressed {
    #[serde(skip)]
    pub data: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub input_size: usize,
    pub output_size: usize,
    /// False when the input is returned as it was (nothing smaller was found).
    pub changed: bool,
    /// SSIMULACRA2 of the output against the decoded input, for lossy results.
    pub quality_score: Option<f64>,
    /// Which path produced the output, for example `png-quantized` or `jpeg-lossless`.
    pub method: String,
    /// Fallbacks and decisions worth telling a user about.
    pub notes: Vec<String>,
    /// Every format tried by `format=auto` (or a search), smallest first.
    pub candidates: Vec<CandidateReport>,
    /// The input's width and height (as displayed) when the output was resized or downscaled;
    /// `width` and `height` are then the size reached.
    pub resized_from: Option<(u32, u32)>,
}

/// One output tried by `auto`: its format, size and score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CandidateReport {
    pub format: Format,
    pub size: usize,
    pub quality_score: Option<f64>,
    pub method: String,
}

impl Compressed {
    /// Output size over input size (below 1 means smaller).
    pub fn ratio(&self) -> f64 {
        if self.input_size == 0 { 1.0 } else { self.output_size as f64 / self.input_size as f64 }
    }
}

/// What a codec or the pipeline returns; [`crate::compress`] adds sizes and the never-larger rule.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) data: Vec<u8>,
    pub(crate) format: Format,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) score: Option<f64>,
    pub(crate) method: String,
    pub(crate) notes: Vec<String>,
    pub(crate) candidates: Vec<CandidateReport>,
    /// The source's size when these pixels were resized from it.
    pub(crate) resized_from: Option<(u32, u32)>,
}

/// One encoding tried by the pipeline.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) format: Format,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) data: Vec<u8>,
    pub(crate) score: Option<f64>,
    pub(crate) method: String,
    /// Exact pixels (no quality setting was involved).
    pub(crate) lossless: bool,
    pub(crate) notes: Vec<String>,
    /// Set when the image was shrunk to fit a byte budget: the size it was shrunk from.
    pub(crate) resized_from: Option<(u32, u32)>,
}

impl Candidate {
    /// An encoding of `image` in `format`: at the quality setting `quality`, or exact when `None`.
    pub(crate) fn of(
        format: Format,
        image: &Image,
        data: Vec<u8>,
        quality: Option<u8>,
        score: Option<f64>,
        notes: Vec<String>,
    ) -> Candidate {
        let method = match quality {
            Some(q) => format!("{format}-q{q}"),
            None => format!("{format}-lossless"),
        };
        Candidate {
            format,
            width: image.width,
            height: image.height,
            data,
            score,
            method,
            lossless: quality.is_none(),
            notes,
            resized_from: None,
        }
    }

    pub(crate) fn report(&self) -> CandidateReport {
        CandidateReport { format: self.format, size: self.data.len(), quality_score: self.score, method: self.method.clone() }
    }

    pub(crate) fn into_encoded(self) -> Encoded {
        Encoded {
            data: self.data,
            format: self.format,
            width: self.width,
            height: self.height,
            score: self.score,
            method: self.method,
            notes: self.notes,
            candidates: Vec::new(),
            resized_from: self.resized_from,
        }
    }
}

impl Encoded {
    /// The input itself, with the reasons it was kept.
    pub(crate) fn unchanged(input: &[u8], info: &ImageInfo, notes: Vec<String>) -> Self {
        Encoded {
            data: input.to_vec(),
            format: info.format,
            width: info.width,
            height: info.height,
            score: None,
            method: "unchanged".into(),
            notes,
            candidates: Vec::new(),
            resized_from: None,
        }
    }
}
