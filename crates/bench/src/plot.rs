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
