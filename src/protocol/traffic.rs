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
