//! API keys and rate limiting, applied to the compress routes only (health, readiness, metrics and
//! the OpenAPI document are open).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
    let decision = limiter.take(&bucket, Instant::now());
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

/// One token bucket per caller: holds at most `count` tokens, refilled at `count / per`.
pub struct RateLimiter {
    rate: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// Seconds until the next token (only meaningful when refused).
    pub retry_after: u64,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_IDLE_BUCKETS: usize = 10_000;

impl RateLimiter {
    pub fn new(rate: RateLimit) -> RateLimiter {
        RateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.rate.count) / self.rate.per.as_secs_f64()
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second()).min(f64::from(self.rate.count));
        bucket.updated = now;
    }

    pub fn take(&self, key: &str, now: Instant) -> Decision {
        let capacity = f64::from(self.rate.count);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_IDLE_BUCKETS && !buckets.contains_key(key) {
            // Full buckets carry no state worth keeping: dropping one is the same as a new caller.
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
                b.tokens + elapsed * self.per_second() < capacity
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: capacity, updated: now });
        self.refill(bucket, now);
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let secs_per_token = self.rate.per.as_secs_f64() / capacity;
        let reset = ((capacity - bucket.tokens) * secs_per_token).ceil() as u64;
        let retry_after = if allowed { 0 } else { ((1.0 - bucket.tokens) * secs_per_token).ceil().max(1.0) as u64 };
        Decision { allowed, limit: self.rate.count, remaining: bucket.tokens.floor() as u32, reset, retry_after }
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
        let limiter = RateLimiter::new(RateLimit { count: 2, per: Duration::from_secs(10) });
        let t0 = Instant::now();
        let first = limiter.take("a", t0);
        assert_eq!((first.allowed, first.remaining), (true, 1));
        assert!(limiter.take("a", t0).allowed);
        let refused = limiter.take("a", t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, 5);
        assert_eq!(refused.reset, 10);
        // Another caller has its own bucket.
        assert!(limiter.take("b", t0).allowed);
        // One token is back after 5 s.
        assert!(limiter.take("a", t0 + Duration::from_secs(5)).allowed);
        assert!(!limiter.take("a", t0 + Duration::from_secs(5)).allowed);
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
