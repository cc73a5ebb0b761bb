//! The Markdown rendering of a [`Report`]: per-category tables, goals, breakdowns, skipped tools.

use std::fmt::Write as _;

use super::{Breakdown, CategorySummary, Record, Report, Status};
use crate::{INPUT_GIF, OURS, OURS_MATCHED};

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
    if let Some(rd) = &report.rd {
        md.push_str(&rd_markdown(report, rd));
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
    if report.categories.is_empty() {
        // A run of the rate–distortion categories alone: they have their own section.
        return md;
    }
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

/// The rate–distortion categories: per format, the BD-rates of ours against each peer by kind,
/// the curves (all images), and the default and matched points.
pub fn rd_markdown(report: &Report, rd: &crate::rd::Summary) -> String {
    let mut md = String::new();
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:+.1} %", v * 100.0));
    let _ = writeln!(md, "\n## Rate–distortion\n");
    let _ = writeln!(
        md,
        "Every tool at quality {} (ours: `quality=N` (`0-N` for PNG), `--metadata strip`), each output scored by SSIMULACRA2 as displayed. \
         BD-rate: bytes of ours relative to the peer at equal score over {}–{} (clipped to where both curves reach), \
         per image (monotone cubic interpolation of log bytes against score), then the geometric mean over the images of a kind; \
         negative = ours smaller.{}",
        crate::peers::LADDER.map(|q| q.to_string()).join(", "),
        rd.range.0,
        rd.range.1,
        report.sharp.as_ref().map_or(String::new(), |v| format!(
            " sharp: {v}, one node process, `sharp.concurrency(1)`, CPU per job from `process.cpuUsage()`."
        )),
    );
    let mut categories: Vec<crate::Category> = rd.curves.iter().map(|c| c.category).collect();
    categories.dedup();
    for category in categories {
        let _ = writeln!(md, "\n### {}\n", category.label());
        let rows: Vec<&crate::rd::BdRateRow> = rd.bd_rates.iter().filter(|b| b.category == category).collect();
        let mut peers: Vec<&str> = rows.iter().map(|b| b.peer.as_str()).collect();
        peers.sort_unstable();
        peers.dedup();
        if !peers.is_empty() {
            let _ = writeln!(md, "BD-rate of ours against each peer (images with a BD-rate / compared; per-image range):\n");
            let _ = writeln!(md, "| kind | {} |", peers.join(" | "));
            let _ = writeln!(md, "|---|{}", "---:|".repeat(peers.len()));
            let mut kinds: Vec<&str> = rows.iter().map(|b| b.kind.as_str()).collect();
            kinds.dedup();
            for kind in kinds {
                let cells: Vec<String> = peers
                    .iter()
                    .map(|p| match rows.iter().find(|b| b.kind == kind && b.peer == *p) {
                        Some(b) if b.bd_rate.is_some() => {
                            format!("**{}** ({}/{}; {} to {})", pct(b.bd_rate), b.images, b.compared, pct(b.min), pct(b.max))
                        }
                        Some(b) => format!("none ({}/{}: {})", b.images, b.compared, b.left_out.join(", ")),
                        None => "—".into(),
                    })
                    .collect();
                let _ = writeln!(md, "| {kind} | {} |", cells.join(" | "));
            }
        }
        let curves: Vec<&crate::rd::RdCurve> = rd.curves.iter().filter(|c| c.category == category && c.kind == "all").collect();
        let _ = writeln!(md, "\nCurves, all images: mean SSIMULACRA2 / output bytes as % of input, per quality:\n");
        let _ = writeln!(md, "| tool | {} |", crate::peers::LADDER.map(|q| format!("q {q}")).join(" | "));
        let _ = writeln!(md, "|---|{}", "---:|".repeat(crate::peers::LADDER.len()));
        for c in &curves {
            let cells: Vec<String> = crate::peers::LADDER
                .iter()
                .map(|q| {
                    c.points
                        .iter()
                        .find(|p| p.quality == *q)
                        .map_or("—".into(), |p| format!("{:.1} / {:.1} %", p.mean_score, p.bytes_ratio * 100.0))
                })
                .collect();
            let _ = writeln!(md, "| {} | {} |", c.method, cells.join(" | "));
        }
        let defaults: Vec<&crate::rd::DefaultRatio> = rd.at_defaults.iter().filter(|d| d.category == category).collect();
        if !defaults.is_empty() {
            let _ = writeln!(
                md,
                "\nDefaults and equal quality: ours at our defaults (`ours-default`) and with `target_quality` at the peer default's per-image score (`ours-matched`) against each peer's default:\n"
            );
            let _ = writeln!(
                md,
                "| kind | ours | peer | images | bytes ours/peer (total) | geomean | CPU ours/peer (total) | geomean | mean score ours | peer |"
            );
            let _ = writeln!(md, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
            let f = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3}"));
            let s = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
            for d in defaults {
                let r = &d.ratio;
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    d.kind,
                    r.ours,
                    r.peer,
                    r.images,
                    f(r.bytes_total_ratio),
                    f(r.bytes_geomean),
                    f(r.cpu_total_ratio),
                    f(r.cpu_geomean),
                    s(r.ours_mean_score),
                    s(r.peer_mean_score)
                );
            }
        }
    }
    md
}
