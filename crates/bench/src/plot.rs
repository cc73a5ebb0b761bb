//! The SVG plot: one panel per category, one point per method: bytes saved (of the input, over
//! the images the method handled) against total wall time. Ours is drawn in red.
//! Text is left to the SVG viewer's fonts (no font files needed).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::OURS;
use crate::report::Report;

pub fn svg(report: &Report, path: &Path) -> anyhow::Result<()> {
    let panels = report.categories.len().max(1);
    let rows = panels.div_ceil(2);
    let root = SVGBackend::new(path, (1200, 380 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let areas = root.split_evenly((rows, 2));
    for (category, area) in report.categories.iter().zip(areas) {
        let points: Vec<(String, f64, f64)> = category
            .methods
            .iter()
            .filter(|m| m.images > 0)
            .map(|m| {
                let label = match m.mean_score.filter(|_| category.category.is_lossy()) {
                    Some(score) => format!("{} · {score:.1}", m.method),
                    None => m.method.clone(),
                };
                (label, m.wall_s, m.saved_fraction * 100.0)
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let tmax = points.iter().fold(0.0f64, |a, p| a.max(p.1));
        let (smin, smax) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.2), b.max(p.2)));
        let pad = ((smax - smin) * 0.15).max(2.0);
        let mut chart = ChartBuilder::on(&area)
            .caption(
                format!(
                    "{} ({} images){}",
                    category.label,
                    category.images,
                    if category.category.is_lossy() { " · mean SSIMULACRA2" } else { "" }
                ),
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..tmax * 1.45, (smin - pad).max(-100.0)..(smax + pad).min(100.0))
            .map_err(|e| anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_desc("total wall time over the corpus, s (median of runs per image)")
            .y_desc("bytes saved, %")
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| if tmax >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        for (name, t, saved) in &points {
            let colour = if name.split(' ').next() == Some(OURS) { RED } else { BLUE };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((*t, *saved))
                        + Circle::new((0, 0), 5, colour.filled())
                        + Text::new(name.clone(), (7, -12), ("sans-serif", 13).into_font().color(&colour)),
                ))
                .map_err(|e| anyhow!("plot: {e}"))?;
        }
    }
    root.present().map_err(|e| anyhow!("plot: {e}"))?;
    Ok(())
}

/// One SVG per rate–distortion category in `dir` (`rd-png.svg`, …): output bytes as % of the
/// input (totals over all images) against mean SSIMULACRA2, one line per tool through its
/// ladder steps. Ours is drawn in red.
pub fn rd_svgs(report: &Report, dir: &Path) -> anyhow::Result<()> {
    let Some(rd) = &report.rd else { return Ok(()) };
    std::fs::create_dir_all(dir)?;
    let mut categories: Vec<crate::Category> = rd.curves.iter().map(|c| c.category).collect();
    categories.dedup();
    let palette = [BLUE, GREEN, MAGENTA, CYAN, BLACK, RGBColor(230, 140, 0)];
    for category in categories {
        let curves: Vec<&crate::rd::RdCurve> = rd.curves.iter().filter(|c| c.category == category && c.kind == "all").collect();
        let path = dir.join(format!("{}.svg", category.id()));
        let root = SVGBackend::new(&path, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
        let points = curves.iter().flat_map(|c| c.points.iter());
        let (xmin, xmax, ymax) = points
            .fold((f64::MAX, f64::MIN, 0.0f64), |(a, b, c), p| (a.min(p.mean_score), b.max(p.mean_score), c.max(p.bytes_ratio * 100.0)));
        if xmin > xmax {
            continue;
        }
        let images = curves.iter().find(|c| c.method == OURS).and_then(|c| c.points.first()).map_or(0, |p| p.images);
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{} ({images} images)", category.label()), ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((xmin - 2.0).floor()..(xmax + 2.0).ceil().min(100.0), 0.0..ymax * 1.1)
            .map_err(|e| anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_desc("mean SSIMULACRA2 (as displayed)")
            .y_desc("output bytes, % of input (totals)")
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        for (i, c) in curves.iter().enumerate() {
            let colour = if c.method == OURS { RED } else { palette[i % palette.len()] };
            let line: Vec<(f64, f64)> = c.points.iter().map(|p| (p.mean_score, p.bytes_ratio * 100.0)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(c.method.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            chart.draw_series(line.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(|e| anyhow!("plot: {e}"))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    Ok(())
}
