//! The final report of a batch run.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub seen: u64,
    pub compressed: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Of the compressed and unchanged keys, how many were videos (or GIFs turned into video).
    pub videos: u64,
    /// Dry runs: keys that would be compressed.
    pub planned: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub percent_saved: f64,
    pub wall_seconds: f64,
    pub images_per_second: f64,
    pub interrupted: bool,
    pub dry_run: bool,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub key: String,
    pub error: String,
}

impl Report {
    pub(crate) fn done(&mut self, unchanged: bool, bytes_in: u64, bytes_out: u64) {
        if unchanged {
            self.unchanged += 1
        } else {
            self.compressed += 1
        }
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
    }

    pub(crate) fn skip(&mut self, _bytes: u64) {
        self.skipped += 1;
    }

    pub(crate) fn planned(&mut self, bytes: u64) {
        self.planned += 1;
        self.bytes_in += bytes;
    }

    pub(crate) fn fail(&mut self, key: &str, _bytes: u64, error: String) {
        self.failed += 1;
        self.failures.push(Failure { key: key.to_owned(), error });
    }

    pub(crate) fn finish(&mut self, wall: Duration, interrupted: bool, dry_run: bool) {
        self.wall_seconds = wall.as_secs_f64();
        let processed = self.compressed + self.unchanged + self.failed;
        self.images_per_second = if self.wall_seconds > 0.0 { processed as f64 / self.wall_seconds } else { 0.0 };
        self.percent_saved = if self.bytes_in > 0 && !dry_run { (1.0 - self.bytes_out as f64 / self.bytes_in as f64) * 100.0 } else { 0.0 };
        self.interrupted = interrupted;
        self.dry_run = dry_run;
        self.failures.sort_by(|a, b| a.key.cmp(&b.key));
    }

    /// The human summary for standard error.
    pub fn summary(&self) -> String {
        let mut s = if self.dry_run {
            format!(
                "dry run: {} of {} keys would be compressed ({} bytes); {} skipped",
                self.planned, self.seen, self.bytes_in, self.skipped
            )
        } else {
            format!(
                "{} seen, {} compressed, {} unchanged{}, {} skipped, {} failed; {} -> {} bytes ({:.1}% saved) in {:.1} s ({:.1} images/s){}",
                self.seen,
                self.compressed,
                self.unchanged,
                if self.videos > 0 { format!(" ({} of them videos)", self.videos) } else { String::new() },
                self.skipped,
                self.failed,
                self.bytes_in,
                self.bytes_out,
                self.percent_saved,
                self.wall_seconds,
                self.images_per_second,
                if self.interrupted { "; interrupted" } else { "" }
            )
        };
        for f in &self.failures {
            s += &format!("\n  failed {}: {}", f.key, f.error);
        }
        s
    }
}
