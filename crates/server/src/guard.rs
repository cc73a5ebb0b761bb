//! API keys and rate limiting, applied to the compress routes only (health, readiness, metrics and
//! the OpenAPI document are open).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;

use crate::AppState;
use crate::config::RateLimit;
use crate::error::ApiError;

/// Checks the API key (when keys are configured), then takes a token from the caller's bucket.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = presented_key(request.headers());
    if !state.config.api_keys.is_empty() {
        let valid = key.is_some_and(|k| state.config.api_keys.iter().fold(false, |found, known| found | constant_time_eq(known, k)));
        if !valid {
            return ApiError::Unauthorized.into_response();
        }
    }
    let Some(limiter) = &state.limiter else {
        return next.run(request).await;
    };
    let bucket = match key {
        Some(k) if !state.config.api_keys.is_empty() => format!("key:{k}"),
        _ => {
            let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
            let ip = forwarded_client(request.headers(), state.config.forwarded_for_depth).or(peer);
            format!("ip:{}", ip.map_or_else(|| "unknown".into(), |ip| ip.to_string()))
        }
    };
    let decision = limiter.take(&bucket);
    if !decision.allowed {
        return ApiError::RateLimited {
            limit: decision.limit,
            window: format_window(limiter.rate.per),
            retry_after: decision.retry_after,
            reset: decision.reset,
        }
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset));
    response
}

/// The `depth`-th address from the right of `X-Forwarded-For` (all its header lines, in order).
/// Entries further left were written by whoever sent the request and could be anything, so only
/// the ones the trusted proxies appended are read. `None` when `depth` is 0 or that entry is
/// missing or not an address; the caller then uses the connection's address.
fn forwarded_client(headers: &HeaderMap, depth: usize) -> Option<IpAddr> {
    let lines = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let entry = lines.flat_map(|v| v.split(',')).rev().nth(depth.checked_sub(1)?)?;
    entry.trim().parse().ok()
}

/// `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)).filter(|k| !k.is_empty())
}

/// Compares without stopping at the first difference, so timing does not reveal how much of a
/// guessed key is right.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn format_window(per: Duration) -> String {
    match per.as_secs() {
        1 => "second".into(),
        60 => "minute".into(),
        3600 => "hour".into(),
        _ => format!("{} s", per.as_secs_f64()),
    }
}

/// One token bucket per caller (governor's GCRA: at most `count` requests at once, one more every
/// `per / count`), keyed by API key or client address.
pub struct RateLimiter<C: Clock = DefaultClock> {
    rate: RateLimit,
    limiter: governor::RateLimiter<String, DashMapStateStore<String>, C, StateInformationMiddleware>,
    clock: C,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Whole requests left after this one.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// Seconds until the next request is allowed (only meaningful when refused).
    pub retry_after: u64,
}

/// Callers remembered before those back at a full bucket (which carry no state) are dropped.
const MAX_IDLE_BUCKETS: usize = 10_000;

impl RateLimiter {
    pub fn new(rate: RateLimit) -> RateLimiter {
        RateLimiter::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    fn with_clock(rate: RateLimit, clock: C) -> RateLimiter<C> {
        // `parse_rate` only makes positive counts and periods.
        let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(rate.per / burst.get()).unwrap_or_else(|| Quota::per_second(burst)).allow_burst(burst);
        let limiter = governor::RateLimiter::dashmap_with_clock(quota, clock.clone()).with_middleware::<StateInformationMiddleware>();
        RateLimiter { rate, limiter, clock }
    }

    pub fn take(&self, key: &str) -> Decision {
        if self.limiter.len() >= MAX_IDLE_BUCKETS {
            self.limiter.retain_recent();
        }
        let per_request = self.rate.per.as_secs_f64() / f64::from(self.rate.count);
        let limit = self.rate.count;
        match self.limiter.check_key(&key.to_owned()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let reset = (f64::from(limit - remaining.min(limit)) * per_request).ceil() as u64;
                Decision { allowed: true, limit, remaining, reset, retry_after: 0 }
            }
            Err(refused) => {
                let wait = refused.wait_time_from(self.clock.now()).as_secs_f64();
                // Empty: the next request is `wait` away, the rest follow one per interval.
                let reset = (f64::from(limit - 1) * per_request + wait).ceil() as u64;
                Decision { allowed: false, limit, remaining: 0, reset, retry_after: wait.ceil().max(1.0) as u64 }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_client_reads_only_what_trusted_proxies_appended() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        let at = |headers: &HeaderMap, depth| forwarded_client(headers, depth).map(|ip| ip.to_string());
        assert_eq!(at(&headers, 0), None);
        assert_eq!(at(&headers, 1).as_deref(), Some("198.51.100.2"));
        assert_eq!(at(&headers, 2).as_deref(), Some("203.0.113.7"));
        assert_eq!(at(&headers, 3).as_deref(), Some("6.6.6.6"));
        assert_eq!(at(&headers, 4), None, "fewer entries than proxies");
        headers.insert("x-forwarded-for", HeaderValue::from_static("2001:db8::1, not-an-address"));
        assert_eq!(at(&headers, 1), None);
        assert_eq!(at(&headers, 2).as_deref(), Some("2001:db8::1"));
    }

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let clock = governor::clock::FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(RateLimit { count: 2, per: Duration::from_secs(10) }, clock.clone());
        let first = limiter.take("a");
        assert_eq!((first.allowed, first.remaining), (true, 1));
        assert!(limiter.take("a").allowed);
        let refused = limiter.take("a");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, 5);
        assert_eq!(refused.reset, 10);
        // Another caller has its own bucket.
        assert!(limiter.take("b").allowed);
        // One token is back after 5 s.
        clock.advance(Duration::from_secs(5));
        assert!(limiter.take("a").allowed);
        assert!(!limiter.take("a").allowed);
    }

    #[test]
    fn keys_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  s3cret "));
        assert_eq!(presented_key(&h), Some("s3cret"));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k2"));
        assert_eq!(presented_key(&h), Some("k2"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&h), None);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
