//! Records, per-category summaries (totals, geometric means of our/peer ratios, mean scores), the
//! issue's goals as MET or MISSED, and the Markdown rendering. The JSON is `Report` serialised.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::measure::geomean;
use crate::peers::Peer;
use crate::{Category, INPUT_GIF, OURS, OURS_MATCHED, Settings, Skipped};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The tool wrote an output.
    Ok,
    /// The tool declined (pngquant's exit 99: quality not reachable) and the input is kept as is.
    KeptInput,
    /// The tool failed; the record has no bytes and is left out of sums and ratios.
    Failed,
}

/// One (image, method) measurement: medians over the runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub image: String,
    pub input_bytes: u64,
    pub category: Category,
    /// `ours` or a peer id.
    pub method: String,
    pub status: Status,
    pub bytes: Option<u64>,
    pub wall_s: Option<f64>,
    pub cpu_s: Option<f64>,
    pub maxrss_kib: Option<u64>,
    /// Successful timed runs behind the medians.
    pub samples: usize,
    /// SSIMULACRA2 against the input (lossy categories only).
    pub score: Option<f64>,
    pub note: Option<String>,
    /// Width × height of the input.
    #[serde(default)]
    pub pixels: Option<u64>,
    /// Seconds of video of the input (video categories).
    #[serde(default)]
    pub duration_s: Option<f64>,
    /// The worst sampled frame's SSIMULACRA2 (video categories; `score` is their mean).
    #[serde(default)]
    pub score_min: Option<f64>,
    /// What our video worker ran (`h264-crf23`), and at which quality for `ours-matched`.
    #[serde(default)]
    pub setting: Option<String>,
}

impl Record {
    /// The corpus folder the image came from (`screenshot` for `png_real/screenshot/…`): its kind.
    pub fn kind(&self) -> &str {
        let parts: Vec<&str> = self.image.split('/').collect();
        if parts.len() >= 3 { parts[1] } else { parts[0] }
    }

    /// At least 1 MP: what the service is sent, and what its goals are judged on.
    pub fn is_large(&self) -> bool {
        self.pixels.is_some_and(|p| p >= LARGE_PIXELS)
    }
}

/// Images of at least this many pixels count as large.
pub const LARGE_PIXELS: u64 = 1_000_000;

/// Totals for one method in one category, over the images where it produced an output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MethodSummary {
    pub method: String,
    pub command: String,
    pub images: usize,
    pub failed: usize,
    pub kept_input: usize,
    pub input_bytes: u64,
    pub bytes: u64,
    pub saved_fraction: f64,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub max_maxrss_kib: u64,
    pub mean_score: Option<f64>,
    pub scored: usize,
    /// Seconds of video of the inputs handled (video categories).
    #[serde(default)]
    pub video_seconds: f64,
    /// The mean of the worst sampled frame's score (video categories).
    #[serde(default)]
    pub mean_score_min: Option<f64>,
}

/// A test clip the benchmark generated, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratedClip {
    pub name: String,
    pub description: String,
}

/// Ours against one peer, over the images where both produced an output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    /// Our method compared: `ours`, or `ours-matched` (video categories).
    #[serde(default = "ours_method")]
    pub ours: String,
    pub peer: String,
    pub images: usize,
    /// Geometric means of per-image ours/peer ratios.
    pub bytes_geomean: Option<f64>,
    pub wall_geomean: Option<f64>,
    pub cpu_geomean: Option<f64>,
    /// Ratios of the sums over the same images.
    pub bytes_total_ratio: Option<f64>,
    pub wall_total_ratio: Option<f64>,
    pub cpu_total_ratio: Option<f64>,
    /// Mean scores over the images where both have one (lossy categories).
    pub ours_mean_score: Option<f64>,
    pub peer_mean_score: Option<f64>,
    pub scored: usize,
}

/// For the service categories: ours against one peer over the images of one kind and size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Breakdown {
    pub category: Category,
    /// The corpus folder (`screenshot`, `photo`, …), or `all`.
    pub kind: String,
    /// Images of at least 1 MP, or smaller ones.
    pub large: bool,
    pub ratio: Ratio,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategorySummary {
    pub category: Category,
    pub label: String,
    pub images: usize,
    pub methods: Vec<MethodSummary>,
    pub ratios: Vec<Ratio>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "MET")]
    Met,
    #[serde(rename = "MISSED")]
    Missed,
    /// The peer was skipped or nothing could be compared.
    #[serde(rename = "N/A")]
    NotApplicable,
    /// A comparison asked for with its numbers, without a target.
    #[serde(rename = "REPORTED")]
    Reported,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "MET",
            Verdict::Missed => "MISSED",
            Verdict::NotApplicable => "n/a",
            Verdict::Reported => "reported",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Goal {
    pub goal: String,
    pub verdict: Verdict,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub id: String,
    pub category: Category,
    pub command: String,
    pub program: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    pub runs: usize,
    pub corpus: Vec<PathBuf>,
    pub machine: Machine,
    pub tools: Vec<Tool>,
    pub skipped: Vec<Skipped>,
    pub categories: Vec<CategorySummary>,
    /// The service categories by kind and size.
    #[serde(default)]
    pub breakdowns: Vec<Breakdown>,
    pub goals: Vec<Goal>,
    pub records: Vec<Record>,
    /// The clips the video categories made and ran on.
    #[serde(default)]
    pub clips: Vec<GeneratedClip>,
}

fn ours_method() -> String {
    OURS.into()
}

pub fn build(
    runs: usize,
    args: &Settings,
    tools: Vec<(Peer, PathBuf)>,
    skipped: Vec<Skipped>,
    records: Vec<Record>,
    clips: Vec<GeneratedClip>,
) -> Report {
    let tools: Vec<Tool> =
        tools.into_iter().map(|(p, program)| Tool { id: p.id.into(), category: p.category, command: p.command_line(), program }).collect();
    let categories: Vec<CategorySummary> = Category::ALL
        .into_iter()
        .filter(|c| records.iter().any(|r| r.category == *c))
        .map(|c| summarise_category(c, &records, &tools))
        .collect();
    let breakdowns = breakdowns(&records);
    let mut goals = goals(&categories, &skipped);
    goals.extend(service_goals(&breakdowns, &records, &skipped));
    goals.extend(resize_goals(&categories, &skipped));
    goals.extend(video_goals(&categories, &skipped));
    Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        runs,
        corpus: args.corpus.clone(),
        machine: machine(),
        tools,
        skipped,
        categories,
        breakdowns,
        goals,
        records,
        clips,
    }
}

/// Pairs of (ours, peer) records of `category` for the same image, both with an output, among
/// the images `keep` accepts.
fn pairs<'a>(records: &'a [Record], category: Category, peer: &str, keep: &dyn Fn(&Record) -> bool) -> Vec<(&'a Record, &'a Record)> {
    pairs_of(records, category, OURS, peer, keep)
}

/// [`pairs`] of another of our methods (`ours-matched`) with `peer`.
fn pairs_of<'a>(
    records: &'a [Record],
    category: Category,
    ours: &str,
    peer: &str,
    keep: &dyn Fn(&Record) -> bool,
) -> Vec<(&'a Record, &'a Record)> {
    let usable = |r: &&Record| r.category == category && r.bytes.is_some() && keep(r);
    let ours: Vec<&Record> = records.iter().filter(|r| r.method == ours).filter(usable).collect();
    records
        .iter()
        .filter(|r| r.method == peer)
        .filter(usable)
        .filter_map(|p| ours.iter().find(|o| o.image == p.image).map(|o| (*o, p)))
        .collect()
}

/// Ours against `peer` over `pairs`: geometric means of per-image ratios, ratios of totals, mean scores.
fn ratio(peer: &str, pairs: &[(&Record, &Record)]) -> Ratio {
    ratio_of_method(OURS, peer, pairs)
}

fn ratio_of_method(ours: &str, peer: &str, pairs: &[(&Record, &Record)]) -> Ratio {
    let ratio_of = |f: &dyn Fn(&Record) -> Option<f64>| -> (Option<f64>, Option<f64>) {
        let per_image: Vec<f64> = pairs.iter().filter_map(|(o, p)| Some(f(o)? / f(p)?)).collect();
        let (so, sp): (f64, f64) = pairs.iter().filter_map(|(o, p)| Some((f(o)?, f(p)?))).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        (geomean(&per_image), (sp > 0.0).then(|| so / sp))
    };
    let (bytes_geomean, bytes_total_ratio) = ratio_of(&|r| r.bytes.map(|b| b as f64));
    let (wall_geomean, wall_total_ratio) = ratio_of(&|r| r.wall_s);
    let (cpu_geomean, cpu_total_ratio) = ratio_of(&|r| r.cpu_s);
    let scored: Vec<(f64, f64)> = pairs.iter().filter_map(|(o, p)| Some((o.score?, p.score?))).collect();
    Ratio {
        ours: ours.into(),
        peer: peer.into(),
        images: pairs.len(),
        bytes_geomean,
        wall_geomean,
        cpu_geomean,
        bytes_total_ratio,
        wall_total_ratio,
        cpu_total_ratio,
        ours_mean_score: mean(&scored.iter().map(|s| s.0).collect::<Vec<_>>()),
        peer_mean_score: mean(&scored.iter().map(|s| s.1).collect::<Vec<_>>()),
        scored: scored.len(),
    }
}

/// The service categories against each peer: all images, then each kind, large and small apart.
fn breakdowns(records: &[Record]) -> Vec<Breakdown> {
    let mut out = Vec::new();
    for category in Category::ALL.into_iter().filter(|c| c.is_service()) {
        let mut peers: Vec<&str> = Vec::new();
        let mut kinds: Vec<&str> = vec!["all"];
        for r in records.iter().filter(|r| r.category == category) {
            if r.method != OURS && !peers.contains(&r.method.as_str()) {
                peers.push(&r.method);
            }
            if !kinds.contains(&r.kind()) {
                kinds.push(r.kind());
            }
        }
        for peer in peers {
            for &kind in &kinds {
                for large in [true, false] {
                    let keep = |r: &Record| r.is_large() == large && (kind == "all" || r.kind() == kind);
                    let pairs = pairs(records, category, peer, &keep);
                    if !pairs.is_empty() {
                        out.push(Breakdown { category, kind: kind.into(), large, ratio: ratio(peer, &pairs) });
                    }
                }
            }
        }
    }
    out
}

fn summarise_category(category: Category, records: &[Record], tools: &[Tool]) -> CategorySummary {
    let of = |method: &str| -> Vec<&Record> { records.iter().filter(|r| r.category == category && r.method == method).collect() };
    let mut methods: Vec<String> = vec![OURS.into()];
    for r in records.iter().filter(|r| r.category == category) {
        if !methods.contains(&r.method) {
            methods.push(r.method.clone());
        }
    }
    let summaries = methods
        .iter()
        .map(|m| {
            let rs = of(m);
            let ok: Vec<&&Record> = rs.iter().filter(|r| r.bytes.is_some()).collect();
            let input_bytes: u64 = ok.iter().map(|r| r.input_bytes).sum();
            let bytes: u64 = ok.iter().filter_map(|r| r.bytes).sum();
            let scores: Vec<f64> = ok.iter().filter_map(|r| r.score).collect();
            let minima: Vec<f64> = ok.iter().filter_map(|r| r.score_min).collect();
            MethodSummary {
                method: m.clone(),
                command: match m.as_str() {
                    OURS => category.ours_label().into(),
                    OURS_MATCHED => format!(
                        "ours at the lowest quality (bisection over --quality 20-100, {} encodes, and the default) whose mean SSIMULACRA2 ≥ the first peer's, per input",
                        crate::MATCH_STEPS
                    ),
                    INPUT_GIF => "the GIF as it is (no work)".into(),
                    _ => tools.iter().find(|t| &t.id == m).map(|t| t.command.clone()).unwrap_or_default(),
                },
                images: ok.len(),
                failed: rs.len() - ok.len(),
                kept_input: ok.iter().filter(|r| r.status == Status::KeptInput).count(),
                input_bytes,
                bytes,
                saved_fraction: if input_bytes == 0 { 0.0 } else { 1.0 - bytes as f64 / input_bytes as f64 },
                wall_s: ok.iter().filter_map(|r| r.wall_s).sum(),
                cpu_s: ok.iter().filter_map(|r| r.cpu_s).sum(),
                max_maxrss_kib: ok.iter().filter_map(|r| r.maxrss_kib).max().unwrap_or(0),
                mean_score: mean(&scores),
                scored: scores.len(),
                video_seconds: ok.iter().filter_map(|r| r.duration_s).sum(),
                mean_score_min: mean(&minima),
            }
        })
        .collect();
    let mut ratios: Vec<Ratio> = methods
        .iter()
        .filter(|m| *m != OURS && *m != OURS_MATCHED)
        .map(|peer| ratio(peer, &pairs(records, category, peer, &|_| true)))
        .collect();
    if methods.iter().any(|m| m == OURS_MATCHED) {
        for peer in methods.iter().filter(|m| ![OURS, OURS_MATCHED, INPUT_GIF].contains(&m.as_str())) {
            ratios.push(ratio_of_method(OURS_MATCHED, peer, &pairs_of(records, category, OURS_MATCHED, peer, &|_| true)));
        }
    }
    let images = {
        let mut names: Vec<&str> = records.iter().filter(|r| r.category == category).map(|r| r.image.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    CategorySummary { category, label: category.label().into(), images, methods: summaries, ratios }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The goals, judged on geometric means of per-image ratios (totals are shown too).
fn goals(categories: &[CategorySummary], skipped: &[Skipped]) -> Vec<Goal> {
    let ratio = |c: Category, peer: &str| {
        categories.iter().find(|s| s.category == c).and_then(|s| s.ratios.iter().find(|r| r.peer == peer)).filter(|r| r.images > 0)
    };
    let missing = |peer: &str| {
        let why = skipped.iter().find(|s| s.id == peer).map(|s| s.reason.clone()).unwrap_or_else(|| "not run".into());
        (Verdict::NotApplicable, format!("{peer} skipped: {why}"))
    };
    let verdict = |ok: bool| if ok { Verdict::Met } else { Verdict::Missed };
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let s = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    let mut out = Vec::new();

    let (verdict_, detail) = match ratio(Category::LossyPng, "pngquant-65-80-s4") {
        Some(r) => {
            let bytes_ok = r.bytes_geomean.is_some_and(|b| b <= 0.85);
            let score_ok = matches!((r.ours_mean_score, r.peer_mean_score), (Some(o), Some(p)) if o >= p);
            let cpu_ok = r.cpu_geomean.is_some_and(|c| c <= 1.0);
            (
                verdict(bytes_ok && score_ok && cpu_ok),
                format!(
                    "bytes ours/pngquant {} (goal ≤ 0.85; totals {}) {}; mean SSIMULACRA2 ours {} vs pngquant {} {}; CPU ours/pngquant {} (goal ≤ 1; totals {}) {}; {} images",
                    f(r.bytes_geomean),
                    f(r.bytes_total_ratio),
                    ok_word(bytes_ok),
                    s(r.ours_mean_score),
                    s(r.peer_mean_score),
                    ok_word(score_ok),
                    f(r.cpu_geomean),
                    f(r.cpu_total_ratio),
                    ok_word(cpu_ok),
                    r.images
                ),
            )
        }
        None => missing("pngquant-65-80-s4"),
    };
    out.push(Goal {
        goal: "Lossy PNG: bytes ≤ 0.85 × pngquant --quality=65-80 --speed 4, at ≥ its mean SSIMULACRA2, CPU ≤ its".into(),
        verdict: verdict_,
        detail,
    });

    let (verdict_, detail) = match ratio(Category::LosslessPng, "oxipng-o2") {
        Some(r) => {
            let bytes_ok = r.bytes_geomean.is_some_and(|b| b <= 1.0);
            let time_ok = r.wall_geomean.is_some_and(|t| t <= 1.0);
            (
                verdict(bytes_ok && time_ok),
                format!(
                    "bytes ours/oxipng {} (totals {}) {}; wall time ours/oxipng {} (totals {}; CPU {}) {}; {} images",
                    f(r.bytes_geomean),
                    f(r.bytes_total_ratio),
                    ok_word(bytes_ok),
                    f(r.wall_geomean),
                    f(r.wall_total_ratio),
                    f(r.cpu_geomean),
                    ok_word(time_ok),
                    r.images
                ),
            )
        }
        None => missing("oxipng-o2"),
    };
    out.push(Goal { goal: "Lossless PNG: bytes ≤ oxipng -o 2 at ≤ its (wall) time".into(), verdict: verdict_, detail });

    let (verdict_, detail) = match ratio(Category::LosslessPng, "go-png") {
        Some(r) => {
            let ok = r.bytes_geomean.is_some_and(|b| b <= 0.90);
            (
                verdict(ok),
                format!("bytes ours/Go-style {} (goal ≤ 0.90; totals {}); {} images", f(r.bytes_geomean), f(r.bytes_total_ratio), r.images),
            )
        }
        None => missing("go-png"),
    };
    out.push(Goal { goal: "Lossless PNG: well below the Go-style re-encode (taken as ≥ 10% smaller)".into(), verdict: verdict_, detail });

    let (verdict_, detail) = match ratio(Category::JpegLossless, "jpegtran") {
        Some(r) => {
            let ok = r.bytes_geomean.is_some_and(|b| b <= 0.98);
            (
                verdict(ok),
                format!("bytes ours/jpegtran {} (goal ≤ 0.98; totals {}); {} images", f(r.bytes_geomean), f(r.bytes_total_ratio), r.images),
            )
        }
        None => missing("jpegtran"),
    };
    out.push(Goal {
        goal: "JPEG lossless: bytes ≤ 0.98 × jpegtran -optimize -progressive -copy none".into(), verdict: verdict_, detail
    });
    out
}

/// The speed issue's goals on exactly what the service runs, judged on the images of 1 MP or more.
fn service_goals(breakdowns: &[Breakdown], records: &[Record], skipped: &[Skipped]) -> Vec<Goal> {
    let large = |category: Category, peer: &str, kind: &str| {
        breakdowns.iter().find(|b| b.category == category && b.ratio.peer == peer && b.kind == kind && b.large).map(|b| &b.ratio)
    };
    let missing = |peer: &str| {
        let why = skipped.iter().find(|s| s.id == peer).map(|s| s.reason.clone()).unwrap_or_else(|| "no image of 1 MP or more".into());
        (Verdict::NotApplicable, format!("{peer}: {why}"))
    };
    let verdict = |ok: bool| if ok { Verdict::Met } else { Verdict::Missed };
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let mut out = Vec::new();

    let (v, detail) = match large(Category::ServiceLossy, "pngquant-60-80", "all") {
        Some(r) => within(r, [("wall", r.wall_geomean, r.wall_total_ratio, 0.5), ("CPU", r.cpu_geomean, r.cpu_total_ratio, 0.8)]),
        None => missing("pngquant-60-80"),
    };
    out.push(Goal {
        goal: "Service lossy (≥ 1 MP): wall ≤ 0.5 × and CPU ≤ 0.8 × pngquant --quality=60-80".into(), verdict: v, detail
    });

    let kinds: Vec<&Breakdown> = breakdowns
        .iter()
        .filter(|b| b.category == Category::ServiceLossy && b.ratio.peer == "pngquant-60-80" && b.large && b.kind != "all")
        .collect();
    let (v, detail) = if kinds.is_empty() {
        missing("pngquant-60-80")
    } else {
        let judged: Vec<(bool, String)> = kinds
            .iter()
            .map(|b| {
                let r = &b.ratio;
                let bytes_ok = r.bytes_geomean.is_some_and(|x| x <= 0.85);
                let score_ok = matches!((r.ours_mean_score, r.peer_mean_score), (Some(o), Some(p)) if o >= p);
                let scores = match (r.ours_mean_score, r.peer_mean_score) {
                    (Some(o), Some(p)) => format!("{o:.1} vs {p:.1}"),
                    _ => "n/a".into(),
                };
                (
                    bytes_ok && score_ok,
                    format!(
                        "{}: bytes {} {}, SSIMULACRA2 {scores} {} ({} images)",
                        b.kind,
                        f(r.bytes_geomean),
                        ok_word(bytes_ok),
                        ok_word(score_ok),
                        r.images
                    ),
                )
            })
            .collect();
        (verdict(judged.iter().all(|j| j.0)), judged.into_iter().map(|j| j.1).collect::<Vec<_>>().join("; "))
    };
    out.push(Goal {
        goal: "Service lossy (≥ 1 MP): bytes ≤ 0.85 × pngquant at ≥ its mean SSIMULACRA2, in each kind of image".into(),
        verdict: v,
        detail,
    });

    let (v, detail) = match large(Category::ServiceLossless, "go-png", "all") {
        Some(r) => within(r, [("wall", r.wall_geomean, r.wall_total_ratio, 0.5), ("bytes", r.bytes_geomean, r.bytes_total_ratio, 0.93)]),
        None => missing("go-png"),
    };
    out.push(Goal {
        goal: "Service lossless (≥ 1 MP): wall ≤ 0.5 × and bytes ≤ 0.93 × the Go re-encode".into(), verdict: v, detail
    });

    // What the score adds: the same engine run with and without it, image by image.
    let cpu = |category: Category, image: &str| {
        records.iter().find(|r| r.category == category && r.method == OURS && r.image == image && r.is_large()).and_then(|r| r.cpu_s)
    };
    let costs: Vec<f64> = records
        .iter()
        .filter(|r| r.category == Category::ServiceLossyScored && r.method == OURS && r.is_large())
        .filter_map(|r| Some(cpu(Category::ServiceLossyScored, &r.image)? / cpu(Category::ServiceLossy, &r.image)?))
        .collect();
    let (v, detail) = match geomean(&costs) {
        Some(g) => {
            (verdict(g <= 1.1), format!("CPU with the score / without {g:.3} (goal ≤ 1.10) {}; {} images", ok_word(g <= 1.1), costs.len()))
        }
        None => (Verdict::NotApplicable, "needs the service-lossy and service-lossy-scored categories".into()),
    };
    out.push(Goal { goal: "Service lossy (≥ 1 MP): a reported score costs ≤ 10 % of the request's CPU".into(), verdict: v, detail });
    out
}

/// The resize issue's goals: as fast as vipsthumbnail (wall) and at least its mean SSIMULACRA2
/// against the reference downscale.
fn resize_goals(categories: &[CategorySummary], skipped: &[Skipped]) -> Vec<Goal> {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let score = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    [(Category::Resize1280, "vipsthumbnail-1280"), (Category::ResizeCover300, "vipsthumbnail-cover-300")]
        .into_iter()
        .map(|(category, peer)| {
            let ratio = categories.iter().find(|s| s.category == category).and_then(|s| s.ratios.iter().find(|r| r.peer == peer));
            let (verdict, detail) = match ratio.filter(|r| r.images > 0) {
                Some(r) => {
                    let fast = r.wall_geomean.is_some_and(|g| g <= 1.0);
                    let good = matches!((r.ours_mean_score, r.peer_mean_score), (Some(o), Some(p)) if o >= p);
                    let verdict = if fast && good { Verdict::Met } else { Verdict::Missed };
                    let detail = format!(
                        "wall ours/{peer} {} (goal ≤ 1; totals {}) {}; CPU {} (totals {}); mean SSIMULACRA2 ours {} vs {} {} ({} scored); bytes {}; {} images",
                        f(r.wall_geomean),
                        f(r.wall_total_ratio),
                        ok_word(fast),
                        f(r.cpu_geomean),
                        f(r.cpu_total_ratio),
                        score(r.ours_mean_score),
                        score(r.peer_mean_score),
                        ok_word(good),
                        r.scored,
                        f(r.bytes_geomean),
                        r.images
                    );
                    (verdict, detail)
                }
                None => {
                    let why = skipped.iter().find(|s| s.id == peer).map(|s| s.reason.clone()).unwrap_or_else(|| "not run".into());
                    (Verdict::NotApplicable, format!("{peer}: {why}"))
                }
            };
            Goal { goal: format!("{}: wall ≤ 1.0 × {peer}, mean SSIMULACRA2 ≥ its", category.label()), verdict, detail }
        })
        .collect()
}

/// The peers of the video categories.
pub const GIFSICLE: &str = "gifsicle-o3";
pub const FFMPEG_X264: &str = "ffmpeg-x264-crf23";
pub const FFMPEG_SVTAV1: &str = "ffmpeg-svtav1";

/// Wall seconds per second of video of `method` in `category`.
fn wall_per_second(categories: &[CategorySummary], category: Category, method: &str) -> Option<f64> {
    let m = categories.iter().find(|s| s.category == category)?.methods.iter().find(|m| m.method == method)?;
    (m.video_seconds > 0.0 && m.images > 0).then(|| m.wall_s / m.video_seconds)
}

/// The video issue's goals: GIF to MP4 against the GIF (bytes, score) and gifsicle; the MP4
/// re-encode against ffmpeg's default at equal score; VP9 against SVT-AV1 (numbers only).
fn video_goals(categories: &[CategorySummary], skipped: &[Skipped]) -> Vec<Goal> {
    let find = |c: Category, ours: &str, peer: &str| {
        categories
            .iter()
            .find(|s| s.category == c)
            .and_then(|s| s.ratios.iter().find(|r| r.ours == ours && r.peer == peer))
            .filter(|r| r.images > 0)
    };
    let missing = |peer: &str, what: &str| {
        let why = skipped.iter().find(|s| s.id == peer).map(|s| format!("{peer} skipped: {}", s.reason)).unwrap_or_else(|| what.into());
        (Verdict::NotApplicable, why)
    };
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let s = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    let verdict = |ok: bool| if ok { Verdict::Met } else { Verdict::Missed };
    let per_s = |c: Category, m: &str| wall_per_second(categories, c, m).map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let mut out = Vec::new();

    let (v, detail) = match find(Category::GifMp4, OURS, INPUT_GIF) {
        Some(r) => {
            let bytes_ok = r.bytes_geomean.is_some_and(|b| b <= 0.2);
            let score_ok = r.ours_mean_score.is_some_and(|m| m >= 80.0);
            let gifsicle = match find(Category::GifMp4, OURS, GIFSICLE) {
                Some(g) => format!(
                    "against gifsicle -O3: bytes ours/gifsicle {} (totals {}), its mean SSIMULACRA2 {}, wall {} s per s of video; ",
                    f(g.bytes_geomean),
                    f(g.bytes_total_ratio),
                    s(g.peer_mean_score),
                    per_s(Category::GifMp4, GIFSICLE)
                ),
                None => String::new(),
            };
            (
                verdict(bytes_ok && score_ok),
                format!(
                    "bytes ours/GIF {} (goal ≤ 0.2; totals {}) {}; mean SSIMULACRA2 {} (goal ≥ 80) {}; {gifsicle}wall ours {} s per s of video; {} GIFs",
                    f(r.bytes_geomean),
                    f(r.bytes_total_ratio),
                    ok_word(bytes_ok),
                    s(r.ours_mean_score),
                    ok_word(score_ok),
                    per_s(Category::GifMp4, OURS),
                    r.images
                ),
            )
        }
        None => (Verdict::NotApplicable, "gif-mp4 not run, or no animated GIF in the corpus folders".into()),
    };
    out.push(Goal {
        goal: "Video: animated GIF → MP4 ≤ 0.2 × the GIF's bytes at mean SSIMULACRA2 ≥ 80 (and against gifsicle -O3)".into(),
        verdict: v,
        detail,
    });

    let (v, detail) = match (find(Category::VideoMp4, OURS_MATCHED, FFMPEG_X264), find(Category::VideoMp4, OURS, FFMPEG_X264)) {
        (Some(m), default) => {
            let ok = m.bytes_geomean.is_some_and(|b| b <= 0.8);
            let at_default = default.map_or(String::new(), |d| {
                format!(
                    "at our default: bytes {} (totals {}), mean SSIMULACRA2 ours {} vs ffmpeg {}; ",
                    f(d.bytes_geomean),
                    f(d.bytes_total_ratio),
                    s(d.ours_mean_score),
                    s(d.peer_mean_score)
                )
            });
            (
                verdict(ok),
                format!(
                    "at matched score (ours-matched: per clip, the lowest quality scoring ≥ ffmpeg's): bytes ours/ffmpeg {} (goal ≤ 0.8; totals {}) {}, mean SSIMULACRA2 {} vs {}; {at_default}wall s per s of video: ours {}, ffmpeg {}; {} clips",
                    f(m.bytes_geomean),
                    f(m.bytes_total_ratio),
                    ok_word(ok),
                    s(m.ours_mean_score),
                    s(m.peer_mean_score),
                    per_s(Category::VideoMp4, OURS),
                    per_s(Category::VideoMp4, FFMPEG_X264),
                    m.images
                ),
            )
        }
        (None, _) => missing(FFMPEG_X264, "video-mp4 not run"),
    };
    out.push(Goal {
        goal: "Video: MP4 re-encode ≤ 0.8 × ffmpeg -c:v libx264 -crf 23 -preset medium bytes at equal mean SSIMULACRA2".into(),
        verdict: v,
        detail,
    });

    let (v, detail) = match find(Category::VideoWebM, OURS, FFMPEG_SVTAV1) {
        Some(d) => {
            let matched = find(Category::VideoWebM, OURS_MATCHED, FFMPEG_SVTAV1).map_or(String::new(), |m| {
                format!(
                    "at matched score: bytes VP9/SVT-AV1 {} (totals {}), mean SSIMULACRA2 {} vs {}; ",
                    f(m.bytes_geomean),
                    f(m.bytes_total_ratio),
                    s(m.ours_mean_score),
                    s(m.peer_mean_score)
                )
            });
            (
                Verdict::Reported,
                format!(
                    "defaults: bytes VP9/SVT-AV1 {} (totals {}), mean SSIMULACRA2 VP9 {} vs SVT-AV1 {}; {matched}wall s per s of video: VP9 {}, SVT-AV1 {} (CPU ratio {}); {} clips",
                    f(d.bytes_geomean),
                    f(d.bytes_total_ratio),
                    s(d.ours_mean_score),
                    s(d.peer_mean_score),
                    per_s(Category::VideoWebM, OURS),
                    per_s(Category::VideoWebM, FFMPEG_SVTAV1),
                    f(d.cpu_geomean),
                    d.images
                ),
            )
        }
        None => missing(FFMPEG_SVTAV1, "video-webm not run"),
    };
    out.push(Goal { goal: "Video: WebM, VP9 (our default) against SVT-AV1's default (numbers, no target)".into(), verdict: v, detail });
    out
}

/// A goal on two of a ratio's measures, each at most its limit: (measure, geomean, total, limit).
fn within(r: &Ratio, limits: [(&str, Option<f64>, Option<f64>, f64); 2]) -> (Verdict, String) {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let judged: Vec<(bool, String)> = limits
        .iter()
        .map(|&(measure, geomean, total, limit)| {
            let ok = geomean.is_some_and(|g| g <= limit);
            (ok, format!("{measure} ours/{} {} (goal ≤ {limit}; totals {}) {}", r.peer, f(geomean), f(total), ok_word(ok)))
        })
        .collect();
    let verdict = if judged.iter().all(|j| j.0) { Verdict::Met } else { Verdict::Missed };
    (verdict, format!("{}; {} images", judged.into_iter().map(|j| j.1).collect::<Vec<_>>().join("; "), r.images))
}

fn ok_word(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / 1024.0 / 1024.0)
}

/// The Markdown report: per-category tables, goals, skipped tools.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(
        md,
        "Machine: {} CPUs ({}), {} GiB memory. Runs per measurement: {} (median).",
        m.cpus, m.cpu_model, m.memory_gib, report.runs
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Ratios are ours/peer, geometric means over the images both handled (< 1: ours smaller or faster). \
         Times are medians of the runs; CPU = user + system of the child process; RSS = largest peak resident set."
    );
    md.push('\n');
    md.push_str(&summary_markdown(report));
    if !report.clips.is_empty() {
        let _ = writeln!(md, "\nClips generated for the video categories (no video is in the corpus):\n");
        for clip in &report.clips {
            let _ = writeln!(md, "- `{}`: {}", clip.name, clip.description);
        }
    }
    for c in &report.categories {
        if c.category.is_video() {
            md.push_str(&video_markdown(report, c));
            continue;
        }
        let _ = writeln!(md, "\n### {} ({} images)\n", c.label, c.images);
        let lossy = c.category.is_lossy();
        let _ = writeln!(
            md,
            "| method | command | images | in MiB | out MiB | saved | wall s | CPU s | peak RSS MiB |{} bytes ours/peer | wall ours/peer | CPU ours/peer |",
            if lossy { " mean SSIMULACRA2 |" } else { "" }
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|{}---:|---:|---:|", if lossy { "---:|" } else { "" });
        for s in &c.methods {
            let r = c.ratios.iter().find(|r| r.peer == s.method);
            let g = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
            let mut images = s.images.to_string();
            if s.failed > 0 {
                let _ = write!(images, " ({} failed)", s.failed);
            }
            if s.kept_input > 0 {
                let _ = write!(images, " ({} kept input)", s.kept_input);
            }
            let score = if lossy { format!(" {} |", s.mean_score.map_or("n/a".into(), |v| format!("{v:.2}"))) } else { String::new() };
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} | {:.1}% | {:.2} | {:.2} | {:.0} |{} {} | {} | {} |",
                s.method,
                s.command,
                images,
                mib(s.input_bytes),
                mib(s.bytes),
                s.saved_fraction * 100.0,
                s.wall_s,
                s.cpu_s,
                s.max_maxrss_kib as f64 / 1024.0,
                score,
                g(r.and_then(|r| r.bytes_geomean)),
                g(r.and_then(|r| r.wall_geomean)),
                g(r.and_then(|r| r.cpu_geomean)),
            );
        }
    }
    if !report.breakdowns.is_empty() {
        md.push_str(&breakdown_markdown(report));
    }
    let _ = writeln!(md, "\n### Goals\n\n| goal | result | numbers |\n|---|---|---|");
    for g in &report.goals {
        let _ = writeln!(md, "| {} | **{}** | {} |", g.goal, g.verdict.text(), g.detail);
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(md, "\n### Skipped tools\n");
        for s in &report.skipped {
            let _ = writeln!(md, "- `{}` ({}): {}", s.id, s.category.id(), s.reason);
        }
    }
    let failures: Vec<&Record> = report.records.iter().filter(|r| r.status == Status::Failed).collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "\n### Failures\n");
        for r in failures {
            let note = r.note.as_deref().unwrap_or("").replace('\n', " ");
            let _ = writeln!(md, "- {} / {} / {}: {}", r.category.id(), r.method, r.image, truncate(&note, 160));
        }
    }
    md
}

/// A video category: per-method totals with times per second of video, the ratios, and every input.
fn video_markdown(report: &Report, c: &CategorySummary) -> String {
    let mut md = String::new();
    let seconds = c.methods.iter().find(|m| m.method == OURS).map_or(0.0, |m| m.video_seconds);
    let _ = writeln!(md, "\n### {} ({} inputs, {:.1} s of video)\n", c.label, c.images, seconds);
    let _ = writeln!(
        md,
        "| method | command | inputs | in MiB | out MiB | out/in | mean SSIMULACRA2 | mean worst frame | wall s | wall s per s of video | CPU s per s of video | peak RSS MiB |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let o = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |v| format!("{v:.d$}"));
    for s in &c.methods {
        let timed = s.method != INPUT_GIF;
        let per = |x: f64| if timed && s.video_seconds > 0.0 { format!("{:.3}", x / s.video_seconds) } else { "—".into() };
        let mut inputs = s.images.to_string();
        if s.failed > 0 {
            let _ = write!(inputs, " ({} failed)", s.failed);
        }
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {:.3} | {} | {} | {} | {} | {} | {} |",
            s.method,
            s.command,
            inputs,
            mib(s.input_bytes),
            mib(s.bytes),
            if s.input_bytes == 0 { 0.0 } else { s.bytes as f64 / s.input_bytes as f64 },
            o(s.mean_score, 2),
            o(s.mean_score_min, 2),
            if timed { format!("{:.2}", s.wall_s) } else { "—".into() },
            per(s.wall_s),
            per(s.cpu_s),
            if timed { format!("{:.0}", s.max_maxrss_kib as f64 / 1024.0) } else { "—".into() },
        );
    }
    let _ = writeln!(
        md,
        "\n| ours | against | inputs | bytes ours/it (geomean) | bytes (totals) | mean SSIMULACRA2 ours / it | wall ours/it | CPU ours/it |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &c.ratios {
        let scores = match (r.ours_mean_score, r.peer_mean_score) {
            (Some(a), Some(b)) => format!("{a:.2} / {b:.2}"),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.ours,
            r.peer,
            r.images,
            o(r.bytes_geomean, 3),
            o(r.bytes_total_ratio, 3),
            scores,
            o(r.wall_geomean, 3),
            o(r.cpu_geomean, 3)
        );
    }
    let methods: Vec<&str> = c.methods.iter().map(|m| m.method.as_str()).collect();
    let _ = writeln!(md, "\nPer input: KiB · mean SSIMULACRA2 of the sampled frames (worst frame); wall s.\n");
    let _ = writeln!(md, "| input | MP | s | in KiB | {} |", methods.join(" | "));
    let _ = writeln!(md, "|---|---:|---:|---:|{}", "---|".repeat(methods.len()));
    let mut names: Vec<&str> = report.records.iter().filter(|r| r.category == c.category).map(|r| r.image.as_str()).collect();
    names.dedup();
    for name in names {
        let of = |m: &str| report.records.iter().find(|r| r.category == c.category && r.image == name && r.method == m);
        let Some(first) = report.records.iter().find(|r| r.category == c.category && r.image == name) else { continue };
        let cells: Vec<String> = methods
            .iter()
            .map(|m| match of(m) {
                Some(r) if r.bytes.is_some() => {
                    let mut cell = format!("{:.1}", r.bytes.unwrap_or(0) as f64 / 1024.0);
                    if let Some(score) = r.score {
                        let _ = write!(cell, " · {score:.1}");
                        if let Some(worst) = r.score_min {
                            let _ = write!(cell, " ({worst:.1})");
                        }
                    }
                    if let Some(w) = r.wall_s {
                        let _ = write!(cell, "; {w:.2} s");
                    }
                    if *m == OURS_MATCHED
                        && let Some(setting) = &r.setting
                    {
                        let _ = write!(cell, "; {setting}");
                    }
                    cell
                }
                Some(_) => "failed".into(),
                None => "—".into(),
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {} |",
            name,
            first.pixels.map_or("?".into(), |p| format!("{:.2}", p as f64 / 1e6)),
            first.duration_s.map_or("?".into(), |d| format!("{d:.2}")),
            first.input_bytes as f64 / 1024.0,
            cells.join(" | ")
        );
    }
    md
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { s.chars().take(n).collect::<String>() + "…" }
}

/// The service categories by kind of image, images of 1 MP or more first.
pub fn breakdown_markdown(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n### Service workload by kind of image\n");
    let _ = writeln!(
        md,
        "| category | peer | kind | size | images | bytes ours/peer | wall ours/peer | CPU ours/peer | SSIMULACRA2 ours / peer |"
    );
    let _ = writeln!(md, "|---|---|---|---|---:|---:|---:|---:|---:|");
    let g = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let mut rows: Vec<&Breakdown> = report.breakdowns.iter().collect();
    rows.sort_by_key(|b| (b.category, b.ratio.peer.clone(), !b.large, b.kind != "all", b.kind.clone()));
    for b in rows {
        let r = &b.ratio;
        let scores = match (r.ours_mean_score, r.peer_mean_score) {
            (Some(o), Some(p)) => format!("{o:.1} / {p:.1}"),
            _ if !b.category.is_lossy() => "lossless".into(),
            _ => "n/a".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            b.category.label(),
            r.peer,
            b.kind,
            if b.large { "≥ 1 MP" } else { "< 1 MP" },
            r.images,
            g(r.bytes_geomean),
            g(r.wall_geomean),
            g(r.cpu_geomean),
            scores
        );
    }
    md
}

/// One row per (category, peer): the geometric-mean ratios and mean scores, for the README.
pub fn summary_markdown(report: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "| category | peer | images | bytes ours/peer | wall ours/peer | CPU ours/peer | SSIMULACRA2 ours / peer |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    let g = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    for c in &report.categories {
        for r in &c.ratios {
            let scores = match (c.category.is_lossy(), r.ours_mean_score, r.peer_mean_score) {
                (false, _, _) => "lossless".to_string(),
                (true, Some(o), Some(p)) => format!("{o:.1} / {p:.1} ({} scored)", r.scored),
                _ => "n/a".into(),
            };
            let peer = if r.ours == OURS { r.peer.clone() } else { format!("{} (as {})", r.peer, r.ours) };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                c.label,
                peer,
                r.images,
                g(r.bytes_geomean),
                g(r.wall_geomean),
                g(r.cpu_geomean),
                scores
            );
        }
    }
    md
}
