//! The issues' goals, judged as MET, MISSED, N/A or REPORTED from the per-category summaries.

use super::{Breakdown, CategorySummary, Goal, Ratio, Record, Verdict};
use crate::measure::geomean;
use crate::{Category, INPUT_GIF, OURS, OURS_MATCHED, Skipped};

/// The goals, judged on geometric means of per-image ratios (totals are shown too).
pub(super) fn goals(categories: &[CategorySummary], skipped: &[Skipped]) -> Vec<Goal> {
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
pub(super) fn service_goals(breakdowns: &[Breakdown], records: &[Record], skipped: &[Skipped]) -> Vec<Goal> {
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
pub(super) fn resize_goals(categories: &[CategorySummary], skipped: &[Skipped]) -> Vec<Goal> {
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
pub(super) fn video_goals(categories: &[CategorySummary], skipped: &[Skipped]) -> Vec<Goal> {
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

/// Issue 29's goals on the rate–distortion categories: per format and kind, BD-rate ≤ −15 %
/// against the best peer (the one ours is furthest from); per format, at each image's own
/// quality (`ours-matched` against the matched peer's default) total bytes ≤ 0.85 × and CPU
/// ≤ 1.0 ×; and, per format and kind, our default not dominated by any peer's default (no
/// peer both smaller, by the geometric mean of per-image ratios, and higher in mean score).
pub(super) fn rd_goals(rd: &crate::rd::Summary, skipped: &[Skipped]) -> Vec<Goal> {
    use crate::DEFAULT_SUFFIX;
    let verdict = |ok: bool| if ok { Verdict::Met } else { Verdict::Missed };
    let pct = |v: f64| format!("{:+.1} %", v * 100.0);
    let mut out = Vec::new();
    let mut categories: Vec<Category> = rd.bd_rates.iter().map(|b| b.category).chain(rd.curves.iter().map(|c| c.category)).collect();
    categories.sort();
    categories.dedup();
    for category in categories {
        let name = category.label().trim_start_matches("Rate–distortion: ");
        let mut kinds: Vec<&str> = rd.curves.iter().filter(|c| c.category == category).map(|c| c.kind.as_str()).collect();
        kinds.dedup();
        for kind in &kinds {
            let rows: Vec<&crate::rd::BdRateRow> = rd.bd_rates.iter().filter(|b| b.category == category && b.kind == *kind).collect();
            let worst = rows.iter().filter_map(|b| Some((b, b.bd_rate?))).max_by(|a, b| a.1.total_cmp(&b.1));
            let (v, detail) = match worst {
                Some((best, rate)) => {
                    let others: Vec<String> = rows
                        .iter()
                        .filter(|b| b.peer != best.peer)
                        .map(|b| format!("{} {}", b.peer, b.bd_rate.map_or("n/a".into(), pct)))
                        .collect();
                    (
                        verdict(rate <= -0.15),
                        format!(
                            "best peer {}: BD-rate {} over {} of {} images{}",
                            best.peer,
                            pct(rate),
                            best.images,
                            best.compared,
                            if others.is_empty() { String::new() } else { format!("; {}", others.join(", ")) }
                        ),
                    )
                }
                None if rows.is_empty() => {
                    let why: Vec<String> =
                        skipped.iter().filter(|s| s.category == category).map(|s| format!("{}: {}", s.id, s.reason)).collect();
                    (
                        Verdict::NotApplicable,
                        format!("no peer ran{}", if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) }),
                    )
                }
                None => (
                    Verdict::NotApplicable,
                    format!(
                        "no BD-rate: {}",
                        rows.iter().map(|b| format!("{}: {}", b.peer, b.left_out.join(", "))).collect::<Vec<_>>().join("; ")
                    ),
                ),
            };
            out.push(Goal {
                goal: format!("{name}, {kind}: BD-rate ≤ −15 % against the best peer (SSIMULACRA2 {}–{})", rd.range.0, rd.range.1),
                verdict: v,
                detail,
            });
        }

        let matched = rd.at_defaults.iter().find(|d| d.category == category && d.kind == "all" && d.ratio.ours == OURS_MATCHED);
        let (v, detail) = match matched {
            Some(d) => {
                let r = &d.ratio;
                let bytes_ok = r.bytes_total_ratio.is_some_and(|b| b <= 0.85);
                let cpu_ok = r.cpu_total_ratio.is_some_and(|c| c <= 1.0);
                let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
                (
                    verdict(bytes_ok && cpu_ok),
                    format!(
                        "against {}: total bytes {} (goal ≤ 0.85; geomean {}) {}, total CPU {} (goal ≤ 1; geomean {}) {}; mean SSIMULACRA2 ours {} vs {}; {} images",
                        r.peer,
                        f(r.bytes_total_ratio),
                        f(r.bytes_geomean),
                        ok_word(bytes_ok),
                        f(r.cpu_total_ratio),
                        f(r.cpu_geomean),
                        ok_word(cpu_ok),
                        r.ours_mean_score.map_or("n/a".into(), |s| format!("{s:.2}")),
                        r.peer_mean_score.map_or("n/a".into(), |s| format!("{s:.2}")),
                        r.images
                    ),
                )
            }
            None => (Verdict::NotApplicable, "no peer default with a score to aim at".into()),
        };
        out.push(Goal {
            goal: format!(
                "{name}: at each image's own quality (target_quality = the peer default's score), bytes ≤ 0.85 × and CPU ≤ 1.0 ×"
            ),
            verdict: v,
            detail,
        });

        let ours_default = format!("{OURS}{DEFAULT_SUFFIX}");
        let mut dominated = Vec::new();
        let mut judged = 0;
        for d in rd.at_defaults.iter().filter(|d| d.category == category && d.ratio.ours == ours_default) {
            let r = &d.ratio;
            if let (Some(b), Some(o), Some(p)) = (r.bytes_geomean, r.ours_mean_score, r.peer_mean_score) {
                judged += 1;
                if b > 1.0 && p > o {
                    dominated.push(format!("{} by {}: bytes ours/peer {b:.3}, SSIMULACRA2 {o:.1} vs {p:.1}", d.kind, r.peer));
                }
            }
        }
        let (v, detail) = match (judged, dominated.is_empty()) {
            (0, _) => (Verdict::NotApplicable, "no peer default scored".into()),
            (_, true) => (Verdict::Met, format!("{judged} (kind, peer) comparisons, none dominates ours")),
            (_, false) => (Verdict::Missed, dominated.join("; ")),
        };
        out.push(Goal { goal: format!("{name}: our default not dominated by any peer's default (per kind)"), verdict: v, detail });
    }
    out
}
