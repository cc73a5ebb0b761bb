//! `target_quality`: the highest CRF whose output still scores the target, searched on short
//! samples of the video rather than whole encodes (in the spirit of `ab-av1 crf-search`).
//!
//! Samples: a video longer than [`WHOLE_UP_TO_SECONDS`] gives [`SAMPLES`] segments of
//! [`SAMPLE_SECONDS`] spread evenly across it, cut once into lossless FFV1 files; a shorter one (and
//! nearly every GIF) is its own single sample. The frames scored are the same few of each sample
//! (every k-th, about [`SCORED_PIXELS_PER_STEP`] pixels in all per step, at least
//! [`MIN_FRAMES_PER_STEP`] frames and at most [`MAX_FRAMES_PER_STEP`]), decoded from the sample once
//! as the reference, at the output's size.
//!
//! Each step encodes every sample at one CRF with exactly the final encode's settings (audio
//! aside), decodes the same frames of the result, and scores them one at a time against the
//! reference with the image engine's SSIMULACRA2 ([`compressor_engine::ssimulacra2_rgba8`]); the
//! step's score is the mean over those frames. The first step tries the codec's default CRF; the
//! next ones interpolate (or extrapolate) the CRF where the score crosses the target from the steps
//! so far, within the bracket of the highest CRF that passed and the lowest that failed, for at most
//! [`MAX_STEPS`] steps or until the two are neighbours.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::ffmpeg::{Budget, Command};
use crate::{Error, Probe, VideoFormat};

/// Segments sampled from a video longer than [`WHOLE_UP_TO_SECONDS`].
pub(crate) const SAMPLES: usize = 4;
/// The length of each segment.
pub(crate) const SAMPLE_SECONDS: f64 = 1.5;
/// Videos up to this long are sampled whole (one sample).
pub(crate) const WHOLE_UP_TO_SECONDS: f64 = 10.0;
/// Most CRFs one search tries.
pub(crate) const MAX_STEPS: usize = 6;
/// About how many pixels each step scores (SSIMULACRA2 costs about 0.2 µs a pixel on two cores).
pub(crate) const SCORED_PIXELS_PER_STEP: u64 = 4_000_000;
pub(crate) const MIN_FRAMES_PER_STEP: u64 = 8;
pub(crate) const MAX_FRAMES_PER_STEP: u64 = 24;
/// Score lost per CRF step, for the first extrapolation (before two steps give a slope).
const POINTS_PER_CRF: f64 = 1.5;
/// The least slope extrapolations assume.
const MIN_SLOPE: f64 = 0.2;

/// What a search found.
pub(crate) struct Searched {
    pub crf: u32,
    /// The mean score over the samples' frames at `crf`.
    pub score: f64,
    pub notes: Vec<String>,
}

/// One sample: what the candidates encode, and its reference frames.
struct Sample {
    /// The source itself (sampled whole) or a lossless cut of it.
    input: PathBuf,
    /// The scored frames of `input`, rgb24 at the output's size, one after the other.
    reference: PathBuf,
    frames: u64,
    /// Every `every`-th frame is scored (an odd stride, from the middle of the first `every`
    /// rather than the sample's first frame, its keyframe), at most `limit` of them.
    every: u64,
    limit: u64,
}

struct Searcher<'a> {
    scratch: &'a Path,
    format: VideoFormat,
    /// The output's size (frames are scored at it).
    size: (u32, u32),
    budget: &'a Budget,
    /// The source is a GIF (see [`crate::gif_time_base`]).
    gif: bool,
}

/// The highest CRF whose mean score on the samples reaches `target` (or, when none does, the
/// best-scoring CRF tried, with a note).
pub(crate) fn search(
    input: &Path,
    scratch: &Path,
    format: VideoFormat,
    probed: &Probe,
    target: f64,
    budget: &Budget,
) -> Result<Searched, Error> {
    let size = crate::even_for(format, probed.display_size());
    if size.0 < 8 || size.1 < 8 {
        return Err(Error::Unsupported {
            detail: format!(
                "{}x{} frames are too small to score (SSIMULACRA2 needs 8x8), so no target quality can be searched",
                size.0, size.1
            ),
        });
    }
    let searcher = Searcher { scratch, format, size, budget, gif: probed.is_gif() };
    let (samples, what) = searcher.samples(input, probed)?;
    let frames: u64 = samples.iter().map(|s| s.frames).sum();
    let mut notes = Vec::new();
    let mut tried: Vec<(u32, f64)> = Vec::new();
    let mut crf = crate::crf(format, None);
    for _ in 0..MAX_STEPS {
        let score = searcher.measure(&samples, crf, &mut notes)?;
        tried.push((crf, score));
        match next_crf(&tried, target, max_crf(format)) {
            Some(c) => crf = c,
            None => break,
        }
    }
    let passing = tried.iter().filter(|t| t.1 >= target).max_by_key(|t| t.0);
    let &(crf, score) = match passing {
        Some(p) => p,
        None => {
            let best = tried.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("one step at least");
            notes.push(format!("target quality {target} not reached: the best CRF tried ({}) scored {:.1}", best.0, best.1));
            best
        }
    };
    let steps: Vec<String> = tried.iter().map(|(c, s)| format!("{c} -> {s:.1}")).collect();
    notes.insert(
        0,
        format!(
            "target quality {target}: CRF {crf}, mean SSIMULACRA2 {score:.1} over {frames} frames of {what} (CRF -> score: {})",
            steps.join(", ")
        ),
    );
    Ok(Searched { crf, score, notes })
}

/// The largest CRF of each codec.
fn max_crf(format: VideoFormat) -> u32 {
    if format == VideoFormat::WebM { 63 } else { 51 }
}

/// The next CRF to try after `tried` (CRF, score), or `None` when the search is done: the highest
/// passing and the lowest failing CRF are neighbours, or the range's end is reached.
fn next_crf(tried: &[(u32, f64)], target: f64, max: u32) -> Option<u32> {
    let pass = tried.iter().filter(|t| t.1 >= target).max_by_key(|t| t.0).copied();
    let fail = tried.iter().filter(|t| t.1 < target).min_by_key(|t| t.0).copied();
    // Points lost per CRF between the last two steps (at least MIN_SLOPE: a flat or noisy stretch
    // gives long strides, not none).
    let slope = || match tried {
        [.., a, b] if a.0 != b.0 => Some(((a.1 - b.1) / (f64::from(b.0) - f64::from(a.0))).max(MIN_SLOPE)),
        _ => None,
    };
    let guess = match (pass, fail) {
        (Some(p), Some(f)) => {
            if f.0 <= p.0 + 1 {
                return None;
            }
            let at = match tried {
                // The last two on one side: the curve bends, and the line through the bracket's
                // ends would creep towards the crossing from that side; the secant through the
                // last two steps goes further.
                [.., a, b] if (a.1 >= target) == (b.1 >= target) => f64::from(b.0) + (b.1 - target) / slope().unwrap_or(POINTS_PER_CRF),
                // Where the line between the bracket's ends crosses the target.
                _ => f64::from(p.0) + f64::from(f.0 - p.0) * (p.1 - target) / (p.1 - f.1),
            };
            at.round().clamp(f64::from(p.0 + 1), f64::from(f.0 - 1))
        }
        (Some(p), None) => {
            if p.0 >= max {
                return None;
            }
            // Aim one step past the crossing, so the next step likely brackets it.
            let ahead = (p.1 - target) / slope().unwrap_or(POINTS_PER_CRF) + 1.0;
            (f64::from(p.0) + ahead.clamp(1.0, 12.0)).round().min(f64::from(max))
        }
        (None, Some(f)) => {
            if f.0 == 0 {
                return None;
            }
            let back = (target - f.1) / slope().unwrap_or(POINTS_PER_CRF) + 1.0;
            (f64::from(f.0) - back.clamp(1.0, 12.0)).round().max(0.0)
        }
        (None, None) => return None,
    };
    Some(guess as u32)
}

impl Searcher<'_> {
    /// The samples of the video, and how they are described in the note.
    fn samples(&self, input: &Path, probed: &Probe) -> Result<(Vec<Sample>, String), Error> {
        let (w, h) = self.size;
        let per_step = (SCORED_PIXELS_PER_STEP / (u64::from(w) * u64::from(h))).clamp(MIN_FRAMES_PER_STEP, MAX_FRAMES_PER_STEP);
        let duration = probed.duration_seconds;
        if duration > WHOLE_UP_TO_SECONDS {
            let rate = if probed.frame_rate > 0.0 { probed.frame_rate } else { 30.0 };
            let expected = (SAMPLE_SECONDS * rate).round().max(1.0) as u64;
            let mut samples = Vec::new();
            for i in 0..SAMPLES {
                let centre = duration * (i as f64 + 0.5) / SAMPLES as f64;
                let start = (centre - SAMPLE_SECONDS / 2.0).clamp(0.0, duration - SAMPLE_SECONDS);
                let cut = self.scratch.join(format!("sample{i}.mkv"));
                self.budget.run(Command::cut(input, &cut, start, SAMPLE_SECONDS, self.gif))?;
                let sample = self.reference(cut, i, expected, per_step.div_ceil(SAMPLES as u64))?;
                if sample.frames > 0 {
                    samples.push(sample);
                } else {
                    // A still stretch of a variable-rate video can hold no frame; the others do.
                    let _ = std::fs::remove_file(&sample.input);
                    let _ = std::fs::remove_file(&sample.reference);
                }
            }
            if !samples.is_empty() {
                let what = format!("{} samples of {SAMPLE_SECONDS} s", samples.len());
                return Ok((samples, what));
            }
        }
        let sample = self.reference(input.to_owned(), 0, probed.frames.max(1), per_step)?;
        if sample.frames == 0 {
            return Err(Error::corrupt("no frame could be decoded to score"));
        }
        Ok((vec![sample], "the whole video".into()))
    }

    /// Decodes the frames of `input` that each step scores.
    fn reference(&self, input: PathBuf, index: usize, expected: u64, limit: u64) -> Result<Sample, Error> {
        // Odd, so that the frames scored fall on every position of the encoder's periodic frame
        // structure (VP9 alternates frames about 5 points apart; x264 has its B-frame pattern):
        // an even stride would score only the better or only the worse ones.
        let every = (expected / limit).max(1);
        let every = if every.is_multiple_of(2) { every - 1 } else { every };
        let reference = self.scratch.join(format!("sample{index}.rgb"));
        self.budget.run(Command::decode_rgb(&input, &reference, self.size, every, limit))?;
        let frames = std::fs::metadata(&reference)?.len() / self.frame_bytes();
        Ok(Sample { input, reference, frames, every, limit })
    }

    fn frame_bytes(&self) -> u64 {
        u64::from(self.size.0) * u64::from(self.size.1) * 3
    }

    /// The mean score of every sample encoded at `crf`.
    fn measure(&self, samples: &[Sample], crf: u32, notes: &mut Vec<String>) -> Result<f64, Error> {
        let (mut sum, mut count) = (0.0, 0u64);
        for (i, sample) in samples.iter().enumerate() {
            let encoded = self.scratch.join(format!("candidate{i}.{}", self.format.extension()));
            let (encode, _) = Command::encode(&sample.input, &encoded, self.format, crf, false, self.gif);
            self.budget.run(encode)?;
            let decoded = self.scratch.join(format!("candidate{i}.rgb"));
            let result = self.budget.run(Command::decode_rgb(&encoded, &decoded, self.size, sample.every, sample.limit));
            let _ = std::fs::remove_file(&encoded);
            result?;
            let scored = self.score_frames(&sample.reference, &decoded);
            let _ = std::fs::remove_file(&decoded);
            let (s, n, distorted) = scored?;
            if distorted != sample.frames && !notes.iter().any(|n| n.starts_with("sample")) {
                notes.push(format!("sample {i}: {distorted} frames decoded from the encode against {} from the source", sample.frames));
            }
            sum += s;
            count += n;
        }
        if count == 0 {
            return Err(Error::failed("no frame of the encoded samples could be decoded"));
        }
        Ok(sum / count as f64)
    }

    /// The sum of the scores of the frames of `distorted` against those of `reference`, their
    /// count, and how many frames `distorted` has. Frames are read one at a time.
    fn score_frames(&self, reference: &Path, distorted: &Path) -> Result<(f64, u64, u64), Error> {
        let bytes = self.frame_bytes();
        let distorted_frames = std::fs::metadata(distorted)?.len() / bytes;
        let reference_frames = std::fs::metadata(reference)?.len() / bytes;
        let mut a = std::io::BufReader::new(std::fs::File::open(reference)?);
        let mut b = std::io::BufReader::new(std::fs::File::open(distorted)?);
        let (mut rgb_a, mut rgb_b) = (vec![0u8; bytes as usize], vec![0u8; bytes as usize]);
        let (w, h) = self.size;
        let mut sum = 0.0;
        let frames = reference_frames.min(distorted_frames);
        for _ in 0..frames {
            self.budget.check("the quality search (scoring)")?;
            a.read_exact(&mut rgb_a)?;
            b.read_exact(&mut rgb_b)?;
            let score = compressor_engine::ssimulacra2_rgba8(&rgba(&rgb_a), &rgba(&rgb_b), w, h)
                .ok_or_else(|| Error::failed(format!("a {w}x{h} frame could not be scored")))?;
            sum += score;
        }
        Ok((sum, frames, distorted_frames))
    }
}

/// rgb24 to RGBA8, opaque.
fn rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], u8::MAX]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A codec whose score falls 2 points per CRF from 100 at CRF 0.
    fn score(crf: u32) -> f64 {
        100.0 - 2.0 * f64::from(crf)
    }

    fn run(target: f64, max: u32, start: u32) -> Vec<(u32, f64)> {
        let mut tried = vec![(start, score(start))];
        while tried.len() < MAX_STEPS {
            let Some(next) = next_crf(&tried, target, max) else { break };
            assert!(!tried.iter().any(|t| t.0 == next), "{next} tried twice: {tried:?}");
            tried.push((next, score(next)));
        }
        tried
    }

    #[test]
    fn the_search_brackets_the_crossing_within_its_steps() {
        for target in [50.0, 60.0, 75.0, 80.0, 90.0, 95.0] {
            let tried = run(target, 51, 23);
            let best = tried.iter().filter(|t| t.1 >= target).map(|t| t.0).max().unwrap();
            // The highest CRF that reaches the target on this line.
            let exact = ((100.0 - target) / 2.0).floor() as u32;
            assert_eq!(best, exact, "target {target}: {tried:?}");
        }
        // Unreachable ends: down to CRF 0, or up to the codec's last.
        let tried = run(100.5, 51, 23);
        assert!(tried.iter().any(|t| t.0 == 0), "{tried:?}");
        let tried = run(-30.0, 63, 32);
        assert!(tried.iter().any(|t| t.0 == 63), "{tried:?}");
        assert_eq!(next_crf(&[(20, 81.0), (21, 79.0)], 80.0, 51), None);
        // A bent curve (as measured on a noisy 480p clip): bracketed in 5 steps, not 6.
        let bent = [(23, 62.4), (11, 87.0), (14, 83.2)];
        assert_eq!(next_crf(&bent, 80.0, 51), Some(17));
        assert_eq!(next_crf(&[(23, 62.4), (11, 87.0), (14, 83.2), (17, 79.4)], 80.0, 51), Some(16));
        // A flat end (4:2:0 caps what CRF 0 can reach): long strides down.
        assert_eq!(next_crf(&[(23, 74.6), (12, 85.2), (6, 85.8)], 90.0, 51), Some(0));
        assert_eq!(next_crf(&[(0, 70.0)], 80.0, 51), None);
    }
}
