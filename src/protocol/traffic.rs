//! Traffic per route, as a router read it from its load balancer: requests, 5xx and
//! latency over the last window. Whole numbers on the wire (counts, µs), so a status
//! compares exactly; rates are worked out here, in one place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One backend's (or one app's) numbers over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficStats {
    /// Requests in the window.
    pub requests: u64,
    /// Of them, answered 5xx.
    pub errors_5xx: u64,
    /// Upstream response time percentiles over the window, µs; absent with no request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<u64>,
}

impl TrafficStats {
    /// Requests per second over `window_ms`.
    pub fn rps(&self, window_ms: u64) -> f64 {
        per_second(self.requests, window_ms)
    }

    /// 5xx per second over `window_ms`.
    pub fn errors_per_second(&self, window_ms: u64) -> f64 {
        per_second(self.errors_5xx, window_ms)
    }

    /// The share of 5xx, in percent; `None` with no request.
    pub fn pct_5xx(&self) -> Option<f64> {
        TrafficSum { requests: self.requests, errors_5xx: self.errors_5xx, ..TrafficSum::default() }.pct_5xx()
    }
}

/// One backend's or app's numbers summed over the routers that reported them: the one rule
/// the cockpit and `ctl routes` share. Counts and rates add; p50 is the request-weighted
/// mean of the routers' (a mean of medians is not the median, but it stays within their
/// range and follows the busier router); p99 is the highest (a tail is never averaged away).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrafficSum {
    pub requests: u64,
    pub errors_5xx: u64,
    pub rps: f64,
    pub errors_per_second: f64,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// The longest of the routers' windows.
    pub window_ms: u64,
}

impl TrafficSum {
    pub fn add(&mut self, s: &TrafficStats, window_ms: u64) {
        let before = self.requests;
        self.requests += s.requests;
        self.errors_5xx += s.errors_5xx;
        self.rps += s.rps(window_ms);
        self.errors_per_second += s.errors_per_second(window_ms);
        self.p99_us = self.p99_us.max(s.p99_us);
        self.p50_us = match (self.p50_us, s.p50_us) {
            (Some(a), Some(b)) if self.requests > 0 => Some(
                ((a as u128 * before as u128 + b as u128 * s.requests as u128) / self.requests as u128)
                    as u64,
            ),
            (a, b) => a.or(b),
        };
        self.window_ms = self.window_ms.max(window_ms);
    }

    /// The share of 5xx, in percent; `None` with no request.
    pub fn pct_5xx(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors_5xx as f64 * 100.0 / self.requests as f64)
    }
}

fn per_second(count: u64, window_ms: u64) -> f64 {
    if window_ms == 0 { 0.0 } else { count as f64 * 1000.0 / window_ms as f64 }
}

/// A router's traffic over its last window, sent in its status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// The window's end (ms since epoch) and length.
    pub at: u64,
    pub window_ms: u64,
    /// Per backend (`ip:port`, the route's `backend`), keyed by app then backend.
    #[serde(default)]
    pub backends: BTreeMap<String, BTreeMap<String, TrafficStats>>,
    /// Per app: every request for its domain, including those no backend took (a 502 or
    /// 503 from nginx itself).
    #[serde(default)]
    pub apps: BTreeMap<String, TrafficStats>,
}
