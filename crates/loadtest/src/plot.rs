//! SVG charts of a load run: latency of every request over time, and the latency histogram.

use std::path::Path;

use plotters::prelude::*;

use crate::{Sample, Summary};

pub fn draw(path: &Path, samples: &[Sample], summary: &Summary) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    let max_t = samples.iter().map(|s| s.at).fold(1.0, f64::max);
    let max_ms = samples.iter().map(|s| s.latency_ms).fold(1.0, f64::max) * 1.05;

    let mut over_time = ChartBuilder::on(&top)
        .caption(format!("latency over time ({} requests, {:.1} req/s)", summary.requests, summary.throughput_rps), ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_t, 0.0..max_ms)?;
    over_time.configure_mesh().x_desc("seconds since start").y_desc("latency (ms)").draw()?;
    let ok = samples.iter().filter(|s| (200..300).contains(&s.status));
    let not_ok = samples.iter().filter(|s| !(200..300).contains(&s.status));
    over_time
        .draw_series(ok.map(|s| Circle::new((s.at, s.latency_ms), 2, BLUE.filled())))?
        .label("2xx")
        .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
    over_time
        .draw_series(not_ok.map(|s| Circle::new((s.at, s.latency_ms), 2, RED.filled())))?
        .label("other")
        .legend(|(x, y)| Circle::new((x, y), 3, RED.filled()));
    over_time.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;

    // Histogram over 40 equal-width latency buckets.
    let buckets = 40usize;
    let width = max_ms / buckets as f64;
    let mut counts = vec![0u32; buckets];
    for s in samples {
        counts[((s.latency_ms / width) as usize).min(buckets - 1)] += 1;
    }
    let max_count = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut histogram = ChartBuilder::on(&bottom)
        .caption("latency histogram", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_ms, 0u32..max_count + max_count / 10 + 1)?;
    histogram.configure_mesh().x_desc("latency (ms)").y_desc("requests").draw()?;
    histogram.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = i as f64 * width;
        Rectangle::new([(x0, 0), (x0 + width, c)], BLUE.mix(0.6).filled())
    }))?;
    for (name, color) in [("p50", GREEN), ("p95", MAGENTA), ("p99", RED)] {
        if let Some(&v) = summary.latency_ms.get(name) {
            histogram
                .draw_series(LineSeries::new([(v, 0), (v, max_count)], color))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color));
        }
    }
    histogram.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}
