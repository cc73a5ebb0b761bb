//! Records and per-category summaries (totals, geometric means of our/peer ratios, mean scores);
//! the goals are judged in [`goals`] and the Markdown is written in [`markdown`]. The JSON is
//! `Report` serialised.

mod goals;
mod markdown;

pub use goals::{FFMPEG_SVTAV1, FFMPEG_X264, GIFSICLE};
pub use markdown::{breakdown_markdown, markdown, summary_markdown};

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
    /// The ladder step of a rate–distortion record (`None` for default and matched points).
    #[serde(default)]
    pub quality: Option<u8>,
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
    /// The rate–distortion categories: curves, BD-rates, default and matched points.
    #[serde(default)]
    pub rd: Option<crate::rd::Summary>,
    /// The versions of sharp and its libvips, when it ran.
    #[serde(default)]
    pub sharp: Option<String>,
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
        .filter(|c| !c.is_rd() && records.iter().any(|r| r.category == *c))
        .map(|c| summarise_category(c, &records, &tools))
        .collect();
    let breakdowns = breakdowns(&records);
    let mut goals = Vec::new();
    // A run of the rate–distortion categories alone judges only their goals (the others would
    // all read "not run").
    if records.iter().any(|r| !r.category.is_rd()) || records.is_empty() {
        goals.extend(goals::goals(&categories, &skipped));
        goals.extend(goals::service_goals(&breakdowns, &records, &skipped));
        goals.extend(goals::resize_goals(&categories, &skipped));
        goals.extend(goals::video_goals(&categories, &skipped));
    }
    let rd = records.iter().any(|r| r.category.is_rd()).then(|| crate::rd::summarise(&records));
    if let Some(rd) = &rd {
        goals.extend(goals::rd_goals(rd, &skipped));
    }
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
        rd,
        sharp: None,
    }
}

/// Pairs of (ours, peer) records of `category` for the same image, both with an output, among
/// the images `keep` accepts.
fn pairs<'a>(records: &'a [Record], category: Category, peer: &str, keep: &dyn Fn(&Record) -> bool) -> Vec<(&'a Record, &'a Record)> {
    pairs_of(records, category, OURS, peer, keep)
}

/// [`pairs`] of another of our methods (`ours-matched`) with `peer`.
pub(crate) fn pairs_of<'a>(
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

pub(crate) fn ratio_of_method(ours: &str, peer: &str, pairs: &[(&Record, &Record)]) -> Ratio {
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
