//! Rate–distortion curves and the Bjøntegaard delta rate (BD-rate): how many more or fewer bytes
//! one tool needs than another at the same SSIMULACRA2 score, averaged over a score interval.
//!
//! Per curve, log(bytes) is interpolated as a function of the score with a monotone piecewise
//! cubic (PCHIP, Fritsch–Carlson), as the modern Bjøntegaard variants do (the single cubic fit of
//! the 2001 method overshoots between points on curves with 6–8 points), and the difference of
//! the two interpolants is integrated over the common score interval: the interval asked for
//! (60–90), clipped to the scores both curves actually reach. BD-rate = exp(mean difference) − 1:
//! −0.5 means half the bytes at equal score.

use serde::{Deserialize, Serialize};

use crate::peers::{LADDER, SHARP};
use crate::report::{Ratio, Record, pairs_of, ratio_of_method};
use crate::{Category, DEFAULT_SUFFIX, OURS, OURS_MATCHED};

/// One encode: its score and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub score: f64,
    pub bytes: f64,
}

/// Why no BD-rate was computed.
#[derive(Debug, Clone, PartialEq)]
pub enum NoBdRate {
    /// Fewer than two usable points on one curve.
    TooFewPoints,
    /// The curves' score ranges, clipped to the interval asked for, share less than [`MIN_OVERLAP`].
    Overlap { low: f64, high: f64 },
}

impl std::fmt::Display for NoBdRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoBdRate::TooFewPoints => write!(f, "fewer than two distinct points on a curve"),
            NoBdRate::Overlap { low, high } if high > low => {
                write!(f, "the curves overlap only over scores {low:.1}–{high:.1} (< {MIN_OVERLAP} points)")
            }
            NoBdRate::Overlap { .. } => write!(f, "the curves do not overlap in score"),
        }
    }
}

/// The narrowest common score interval a BD-rate is computed over: over less, the average is
/// an extrapolation of a point or two.
pub const MIN_OVERLAP: f64 = 5.0;

/// The score interval of the goal.
pub const RANGE: (f64, f64) = (60.0, 90.0);

/// BD-rate of `ours` against `peer` over `range` (clipped to the overlap of both curves):
/// negative when ours needs fewer bytes at equal score.
pub fn bd_rate(ours: &[Point], peer: &[Point], range: (f64, f64)) -> Result<f64, NoBdRate> {
    let a = Curve::new(ours).ok_or(NoBdRate::TooFewPoints)?;
    let b = Curve::new(peer).ok_or(NoBdRate::TooFewPoints)?;
    let low = range.0.max(a.x[0]).max(b.x[0]);
    let high = range.1.min(*a.x.last().expect("two points")).min(*b.x.last().expect("two points"));
    if high - low < MIN_OVERLAP {
        return Err(NoBdRate::Overlap { low, high });
    }
    let mean = (integrate(&a, low, high) - integrate(&b, low, high)) / (high - low);
    Ok(mean.exp() - 1.0)
}

/// log(bytes) against score, strictly increasing in score. Points that another point beats
/// (higher or equal score for fewer or equal bytes) are dropped first: a tool is judged by its
/// best settings, and an interpolant needs scores that rise with bytes.
struct Curve {
    x: Vec<f64>,
    y: Vec<f64>,
    /// PCHIP slopes at each point.
    d: Vec<f64>,
}

impl Curve {
    fn new(points: &[Point]) -> Option<Curve> {
        let mut p: Vec<Point> = points.iter().copied().filter(|p| p.score.is_finite() && p.bytes > 0.0).collect();
        p.sort_by(|a, b| a.bytes.total_cmp(&b.bytes).then(b.score.total_cmp(&a.score)));
        // The lower-right frontier: walking up in bytes, keep a point only if it scores higher
        // than every smaller one.
        let mut kept: Vec<Point> = Vec::new();
        for q in p {
            if kept.last().is_none_or(|k| q.score > k.score) {
                kept.push(q);
            }
        }
        if kept.len() < 2 {
            return None;
        }
        let x: Vec<f64> = kept.iter().map(|p| p.score).collect();
        let y: Vec<f64> = kept.iter().map(|p| p.bytes.ln()).collect();
        let d = pchip_slopes(&x, &y);
        Some(Curve { x, y, d })
    }

    /// The interpolant at `t` (inside the curve's range).
    fn at(&self, t: f64) -> f64 {
        let n = self.x.len();
        let k = match self.x.iter().position(|&x| x > t) {
            Some(0) => 0,
            Some(i) => i - 1,
            None => n - 2,
        }
        .min(n - 2);
        let (x0, x1, y0, y1, d0, d1) = (self.x[k], self.x[k + 1], self.y[k], self.y[k + 1], self.d[k], self.d[k + 1]);
        let h = x1 - x0;
        let s = (t - x0) / h;
        let (h00, h10, h01, h11) =
            (2.0 * s.powi(3) - 3.0 * s * s + 1.0, s.powi(3) - 2.0 * s * s + s, -2.0 * s.powi(3) + 3.0 * s * s, s.powi(3) - s * s);
        h00 * y0 + h10 * h * d0 + h01 * y1 + h11 * h * d1
    }
}

/// Fritsch–Carlson monotone slopes (as SciPy's `PchipInterpolator`): harmonic means of the
/// neighbouring secants inside, zero at local extrema, three-point formula at the ends.
fn pchip_slopes(x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    let h: Vec<f64> = (0..n - 1).map(|i| x[i + 1] - x[i]).collect();
    let delta: Vec<f64> = (0..n - 1).map(|i| (y[i + 1] - y[i]) / h[i]).collect();
    if n == 2 {
        return vec![delta[0], delta[0]];
    }
    let mut d = vec![0.0; n];
    for i in 1..n - 1 {
        if delta[i - 1] * delta[i] > 0.0 {
            let (w1, w2) = (2.0 * h[i] + h[i - 1], h[i] + 2.0 * h[i - 1]);
            d[i] = (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i]);
        }
    }
    let end = |h0: f64, h1: f64, m0: f64, m1: f64| {
        let v = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1);
        if v.signum() != m0.signum() {
            0.0
        } else if m0.signum() != m1.signum() && v.abs() > 3.0 * m0.abs() {
            3.0 * m0
        } else {
            v
        }
    };
    d[0] = end(h[0], h[1], delta[0], delta[1]);
    d[n - 1] = end(h[n - 2], h[n - 3], delta[n - 2], delta[n - 3]);
    d
}

/// ∫ of the interpolant over [low, high] by composite Simpson's rule on each piece (exact for
/// the cubic pieces, so only the split points matter).
fn integrate(c: &Curve, low: f64, high: f64) -> f64 {
    let mut cuts: Vec<f64> = vec![low];
    cuts.extend(c.x.iter().copied().filter(|&x| x > low && x < high));
    cuts.push(high);
    cuts.windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            (b - a) / 6.0 * (c.at(a) + 4.0 * c.at((a + b) / 2.0) + c.at(b))
        })
        .sum()
}

/// The average of per-image BD-rates, as the codec test conditions (JVET, AOM) average
/// per-sequence BD-rates: each image is compared with itself at equal score, so images of very
/// different sizes or difficulty do not mix on one axis (averaging curves per quality step would
/// put different scores of different tools on one "step"). The mean is taken of log(1 + BD-rate)
/// (a geometric mean of the byte ratios), so 2× on one image and 0.5× on another cancel out.
pub fn mean_bd_rate(per_image: &[f64]) -> Option<f64> {
    let logs: Vec<f64> = per_image.iter().filter(|r| **r > -1.0).map(|r| (1.0 + r).ln()).collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp() - 1.0)
}

/// The rate–distortion categories' results: curves per tool, BD-rates of ours against each
/// peer, and the default and matched points against each peer's default; per category, for all
/// images and per kind of image (the corpus folder, [`Record::kind`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The score interval of the BD-rates (before clipping to each image's overlap).
    pub range: (f64, f64),
    pub curves: Vec<RdCurve>,
    pub bd_rates: Vec<BdRateRow>,
    /// `ours-default` and `ours-matched` against each peer's default point.
    pub at_defaults: Vec<DefaultRatio>,
}

/// One tool's curve over some images: per ladder step, the mean score and the bytes relative
/// to the input (totals), over the images with a scored output at that step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RdCurve {
    pub category: Category,
    pub kind: String,
    pub method: String,
    pub points: Vec<CurvePoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurvePoint {
    pub quality: u8,
    pub images: usize,
    pub mean_score: f64,
    /// Output bytes over input bytes, totals over the images.
    pub bytes_ratio: f64,
    pub cpu_s: f64,
}

/// Ours against one peer: the mean of per-image BD-rates ([`mean_bd_rate`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BdRateRow {
    pub category: Category,
    pub kind: String,
    pub peer: String,
    /// Images both tools have a curve for.
    pub compared: usize,
    /// Images with a BD-rate (their curves overlap over at least [`MIN_OVERLAP`] points of score within the range).
    pub images: usize,
    pub bd_rate: Option<f64>,
    /// The per-image extremes.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Why images had none, with counts.
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DefaultRatio {
    pub category: Category,
    pub kind: String,
    /// `ratio.ours` is `ours-default` or `ours-matched`; `ratio.peer` a `…-default`.
    pub ratio: Ratio,
}

/// The peer whose default score `ours-matched` is pointed at: sharp's, else the first peer's
/// (as `bench_rd` chooses).
pub fn matched_peer(records: &[Record], category: Category) -> Option<String> {
    let defaults: Vec<&str> = records
        .iter()
        .filter(|r| r.category == category && r.method.ends_with(DEFAULT_SUFFIX) && !r.method.starts_with(OURS))
        .map(|r| r.method.as_str())
        .collect();
    let sharp = format!("{SHARP}{DEFAULT_SUFFIX}");
    if defaults.contains(&sharp.as_str()) { Some(sharp) } else { defaults.first().map(|s| s.to_string()) }
}

pub fn summarise(records: &[Record]) -> Summary {
    let mut curves = Vec::new();
    let mut bd_rates = Vec::new();
    let mut at_defaults = Vec::new();
    for category in Category::ALL.into_iter().filter(|c| c.is_rd()) {
        let of: Vec<&Record> = records.iter().filter(|r| r.category == category).collect();
        if of.is_empty() {
            continue;
        }
        let mut methods: Vec<&str> = vec![OURS];
        let mut kinds: Vec<&str> = vec!["all"];
        for r in &of {
            if r.quality.is_some() && !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
            if !kinds.contains(&r.kind()) {
                kinds.push(r.kind());
            }
        }
        for &kind in &kinds {
            let in_kind = |r: &Record| kind == "all" || r.kind() == kind;
            for &method in &methods {
                let points: Vec<CurvePoint> = LADDER
                    .iter()
                    .filter_map(|&q| {
                        let rs: Vec<&&Record> = of
                            .iter()
                            .filter(|r| r.method == method && r.quality == Some(q) && r.bytes.is_some() && r.score.is_some() && in_kind(r))
                            .collect();
                        if rs.is_empty() {
                            return None;
                        }
                        let input: u64 = rs.iter().map(|r| r.input_bytes).sum();
                        let bytes: u64 = rs.iter().filter_map(|r| r.bytes).sum();
                        Some(CurvePoint {
                            quality: q,
                            images: rs.len(),
                            mean_score: rs.iter().filter_map(|r| r.score).sum::<f64>() / rs.len() as f64,
                            bytes_ratio: bytes as f64 / input.max(1) as f64,
                            cpu_s: rs.iter().filter_map(|r| r.cpu_s).sum(),
                        })
                    })
                    .collect();
                if !points.is_empty() {
                    curves.push(RdCurve { category, kind: kind.into(), method: method.into(), points });
                }
            }
            for &peer in methods.iter().filter(|m| **m != OURS) {
                bd_rates.push(bd_rate_row(category, kind, peer, &of, &in_kind));
            }
            let mut defaults: Vec<&str> = Vec::new();
            for r in of.iter().filter(|r| r.method.ends_with(DEFAULT_SUFFIX) && !r.method.starts_with(OURS)) {
                if !defaults.contains(&r.method.as_str()) {
                    defaults.push(&r.method);
                }
            }
            let ours_default = format!("{OURS}{DEFAULT_SUFFIX}");
            for peer in defaults {
                // `ours-matched` aimed at one peer's scores: compared with that peer only.
                let matched = matched_peer(records, category).is_some_and(|m| m == peer);
                for ours in [ours_default.as_str(), OURS_MATCHED].into_iter().filter(|o| *o != OURS_MATCHED || matched) {
                    let pairs = pairs_of(records, category, ours, peer, &in_kind);
                    if !pairs.is_empty() {
                        at_defaults.push(DefaultRatio { category, kind: kind.into(), ratio: ratio_of_method(ours, peer, &pairs) });
                    }
                }
            }
        }
    }
    Summary { range: RANGE, curves, bd_rates, at_defaults }
}

fn bd_rate_row(category: Category, kind: &str, peer: &str, of: &[&Record], in_kind: &dyn Fn(&Record) -> bool) -> BdRateRow {
    let curve = |method: &str, image: &str| -> Vec<Point> {
        of.iter()
            .filter(|r| r.method == method && r.image == image && r.quality.is_some())
            .filter_map(|r| Some(Point { score: r.score?, bytes: r.bytes? as f64 }))
            .collect()
    };
    let mut images: Vec<&str> =
        of.iter().filter(|r| r.method == peer && r.quality.is_some() && in_kind(r)).map(|r| r.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    let mut rates = Vec::new();
    let mut reasons: Vec<(String, usize)> = Vec::new();
    for image in &images {
        match bd_rate(&curve(OURS, image), &curve(peer, image), RANGE) {
            Ok(r) => rates.push(r),
            Err(e) => {
                // Counted by kind of reason, not by the exact scores.
                let why = match e {
                    NoBdRate::TooFewPoints => e.to_string(),
                    NoBdRate::Overlap { .. } => format!("overlap within {}–{} below {MIN_OVERLAP} points of score", RANGE.0, RANGE.1),
                };
                match reasons.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((why, 1)),
                }
            }
        }
    }
    BdRateRow {
        category,
        kind: kind.into(),
        peer: peer.into(),
        compared: images.len(),
        images: rates.len(),
        bd_rate: mean_bd_rate(&rates),
        min: rates.iter().copied().reduce(f64::min),
        max: rates.iter().copied().reduce(f64::max),
        left_out: reasons.into_iter().map(|(w, n)| format!("{n} image(s): {w}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic encoder: bytes = scale · exp(score / 10) at each score.
    fn curve(scale: f64, scores: &[f64]) -> Vec<Point> {
        scores.iter().map(|&s| Point { score: s, bytes: scale * (s / 10.0).exp() }).collect()
    }

    const SCORES: [f64; 7] = [45.0, 55.0, 65.0, 72.0, 80.0, 86.0, 93.0];

    #[test]
    fn peer_at_twice_our_bytes_everywhere_is_minus_half() {
        let r = bd_rate(&curve(1.0, &SCORES), &curve(2.0, &SCORES), RANGE).unwrap();
        assert!((r + 0.5).abs() < 1e-9, "{r}");
        // and the other way round: ours at twice the bytes is +100 %.
        let r = bd_rate(&curve(2.0, &SCORES), &curve(1.0, &SCORES), RANGE).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn identical_curves_are_zero_even_sampled_at_other_scores() {
        assert_eq!(bd_rate(&curve(1.0, &SCORES), &curve(1.0, &SCORES), RANGE).unwrap(), 0.0);
        // A smooth curve sampled elsewhere: the interpolants agree closely, not exactly.
        let other = [41.0, 52.0, 61.0, 70.0, 77.0, 84.0, 91.0, 96.0];
        let r = bd_rate(&curve(1.0, &SCORES), &curve(1.0, &other), RANGE).unwrap();
        assert!(r.abs() < 0.005, "{r}");
    }

    #[test]
    fn non_overlapping_or_thin_overlaps_give_none() {
        let low = curve(1.0, &[30.0, 40.0, 50.0, 58.0]);
        let high = curve(1.0, &[70.0, 80.0, 90.0]);
        assert!(matches!(bd_rate(&low, &high, RANGE), Err(NoBdRate::Overlap { .. })));
        // Both reach 60-63 only: 3 points of score are too few.
        let a = curve(1.0, &[40.0, 50.0, 63.0]);
        let b = curve(1.0, &[60.0, 70.0, 80.0]);
        assert_eq!(bd_rate(&a, &b, RANGE), Err(NoBdRate::Overlap { low: 60.0, high: 63.0 }));
        assert_eq!(bd_rate(&a[..1], &b, RANGE), Err(NoBdRate::TooFewPoints));
    }

    #[test]
    fn the_interval_is_clipped_to_the_overlap() {
        // The peer reaches 62-84 only: the BD-rate is taken there (no extrapolation), whatever
        // interval is asked for around it.
        let peer = curve(1.0, &[62.0, 70.0, 78.0, 84.0]);
        for range in [RANGE, (0.0, 100.0)] {
            let r = bd_rate(&curve(2.0, &SCORES), &peer, range).unwrap();
            assert!((r - 1.0).abs() < 1e-9, "{range:?}: {r}");
        }
        // A tool whose bytes do not change with its setting is one point, not a curve.
        let flat: Vec<Point> = (60..=90).map(|s| Point { score: f64::from(s), bytes: 1.0 }).collect();
        assert_eq!(bd_rate(&peer, &flat, RANGE), Err(NoBdRate::TooFewPoints));
    }

    #[test]
    fn dominated_points_are_dropped() {
        let mut ours = curve(1.0, &SCORES);
        // A setting that costs more and scores less than its neighbour changes nothing.
        ours.push(Point { score: 70.0, bytes: 1.0 * (80.0f64 / 10.0).exp() });
        let r = bd_rate(&ours, &curve(2.0, &SCORES), RANGE).unwrap();
        assert!((r + 0.5).abs() < 1e-9, "{r}");
    }

    #[test]
    fn the_mean_is_geometric() {
        let m = mean_bd_rate(&[1.0, -0.5]).unwrap();
        assert!(m.abs() < 1e-12, "{m}");
        assert_eq!(mean_bd_rate(&[]), None);
    }
}
