//! Progress on standard error: an indicatif bar on a terminal, plain lines every few seconds
//! otherwise (logs of schedulers are not terminals).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::Report;

pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
    started: Instant,
    quiet: bool,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").unwrap());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, last_line: Mutex::new(Instant::now()), started: Instant::now(), quiet }
    }

    fn line(report: &Report, started: Duration) -> String {
        let done = report.compressed + report.unchanged + report.failed;
        let rate = if started.as_secs_f64() > 0.0 { done as f64 / started.as_secs_f64() } else { 0.0 };
        let saved = report.bytes_in.saturating_sub(report.bytes_out);
        format!(
            "{done} done ({} failed, {} skipped), {:.1} MB in, {:.1} MB saved, {rate:.1} images/s, {:.1} MB/s",
            report.failed,
            report.skipped,
            report.bytes_in as f64 / 1e6,
            saved as f64 / 1e6,
            report.bytes_in as f64 / 1e6 / started.as_secs_f64().max(1e-3)
        )
    }

    pub fn update(&self, report: &Report, current: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("{} | {current}", Self::line(report, bar.elapsed()))),
            None if !self.quiet => {
                let mut last = self.last_line.lock().unwrap();
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("progress: {}", Self::line(report, self.started.elapsed()));
                }
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
