//! The one grammar of durations and rates on the command line (`serve`, `batch`, `loadtest`,
//! `healthcheck`): only flags and their environment variables are text, so only the binary parses
//! them; the libraries take [`Duration`]s.
//!
//! A duration is a number (decimals allowed) and a unit: `ms`; `s`, `sec`, `secs` or none
//! (seconds); `m`, `min`, `mins`; `h`, `hour`, `hours`. It must be positive, except where a
//! delay may be off ([`parse_delay`]).

use std::fmt;
use std::time::Duration;

use compressor_server::RateLimit;

/// `250ms`, `30s`, `5m` / `5min`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" | "sec" | "secs" => value,
        "m" | "min" | "mins" => value * 60.0,
        "h" | "hour" | "hours" => value * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration as [`parse_duration`] reads it, or zero (`0`, `0s`, `0ms`): for delays that may be off.
pub fn parse_delay(s: &str) -> Result<Duration, String> {
    if ["0", "0s", "0ms", "0m", "0h"].contains(&s.trim()) { Ok(Duration::ZERO) } else { parse_duration(s) }
}

/// `10/s`, `600/min`, `1000/h`, or with a count of units, `5/10s`.
pub fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let (count, per) = s.split_once('/').ok_or_else(|| format!("rate limit {s:?} is not like 10/s or 600/min"))?;
    let count: u32 =
        count.trim().parse().ok().filter(|c| *c > 0).ok_or_else(|| format!("rate limit {s:?}: count must be a positive integer"))?;
    let per = per.trim();
    let per = if per.starts_with(|c: char| c.is_ascii_digit()) { parse_duration(per)? } else { parse_duration(&format!("1{per}"))? };
    Ok(RateLimit { count, per })
}

/// A duration flag's value. Its `Display` is how `--help` shows a library's default, so that
/// default is written once, as a [`Duration`], in the library: whole milliseconds below a
/// second or with a fraction of one, seconds up to a minute, else whole hours or minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Span {
    /// [`parse_duration`] for clap.
    pub fn positive(s: &str) -> Result<Span, String> {
        parse_duration(s).map(Span)
    }

    /// [`parse_delay`] for clap.
    pub fn or_zero(s: &str) -> Result<Span, String> {
        parse_delay(s).map(Span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, millis) = (self.0.as_secs(), self.0.subsec_millis());
        match secs {
            _ if millis != 0 || (secs == 0 && !self.0.is_zero()) => write!(f, "{}ms", self.0.as_millis()),
            0..=60 => write!(f, "{secs}s"),
            _ if secs % 3600 == 0 => write!(f, "{}h", secs / 3600),
            _ if secs % 60 == 0 => write!(f, "{}m", secs / 60),
            _ => write!(f, "{secs}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_delay("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_delay("0"), Ok(Duration::ZERO));
        assert_eq!(parse_delay("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_delay("0parsecs").is_err() && parse_delay("-1s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    /// Every spelling the grammar accepts, and some it refuses.
    #[test]
    fn accepted_spellings() {
        let ok = [
            ("500ms", Duration::from_millis(500)),
            ("1.5", Duration::from_millis(1500)),
            ("30", Duration::from_secs(30)),
            ("30s", Duration::from_secs(30)),
            ("30sec", Duration::from_secs(30)),
            ("30secs", Duration::from_secs(30)),
            (" 30 s ", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("2min", Duration::from_secs(120)),
            ("2mins", Duration::from_secs(120)),
            ("0.5m", Duration::from_secs(30)),
            ("1h", Duration::from_secs(3600)),
            ("1hour", Duration::from_secs(3600)),
            ("2hours", Duration::from_secs(7200)),
        ];
        for (text, expected) in ok {
            assert_eq!(parse_duration(text), Ok(expected), "{text:?}");
        }
        for text in ["", "s", "0", "0s", "-1s", "1d", "1 parsec", "1e3s", "ms5", "nan", "inf"] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }

    /// `--help` shows the libraries' defaults as they were written by hand before.
    #[test]
    fn spans_display_as_flags_spell_them() {
        for (secs, text) in [(0, "0s"), (5, "5s"), (10, "10s"), (25, "25s"), (60, "60s"), (90, "90s"), (600, "10m"), (7200, "2h")] {
            assert_eq!(Span(Duration::from_secs(secs)).to_string(), text);
            assert_eq!(Span::or_zero(text), Ok(Span(Duration::from_secs(secs))));
        }
        assert_eq!(Span(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10/s"), Ok(RateLimit { count: 10, per: Duration::from_secs(1) }));
        assert_eq!(parse_rate("600/min"), Ok(RateLimit { count: 600, per: Duration::from_secs(60) }));
        assert_eq!(parse_rate("5/10s"), Ok(RateLimit { count: 5, per: Duration::from_secs(10) }));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("ten/s").is_err());
        assert!(parse_rate("10").is_err());
    }
}
