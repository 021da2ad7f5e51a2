//! `ctl routes`' traffic: the routers' statuses heard for a short wait, summed over the
//! routers, per route (its backend's numbers) and per app (every request for its domain,
//! those nginx answered itself included).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::parse;
use crate::bus::Bus;
use crate::protocol::{RouterStatus, Traffic, TrafficSum, decode, subjects};

#[derive(Debug, Clone, Args)]
pub struct RoutesArgs {
    /// Do not wait for the routers' traffic: the table and JSON without it, at once.
    #[arg(long)]
    pub no_traffic: bool,

    /// How long to listen for the routers' statuses, which carry the traffic: one router
    /// status period (2s by default) and a margin.
    #[arg(long, default_value = "2500ms", value_parser = parse::duration, value_name = "DURATION")]
    pub traffic_wait: Duration,
}

/// One backend's or app's numbers, summed over the routers that reported them.
pub type Summed = TrafficSum;

/// A route's or app's `traffic` in `ctl routes --json`.
pub fn json(s: &Summed) -> Value {
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    json!({
        "rps": round2(s.rps),
        "errors_per_second": round2(s.errors_per_second),
        "pct_5xx": s.pct_5xx().map(round2),
        "p50_ms": ms(s.p50_us),
        "p99_ms": ms(s.p99_us),
        "requests": s.requests,
        "window_ms": s.window_ms,
    })
}

/// RPS, 5XX% and P99 for the table.
pub fn cells(s: &Summed) -> [String; 3] {
    [
        format!("{:.1}", s.rps),
        s.pct_5xx().map_or("-".into(), |p| format!("{p:.1}%")),
        s.p99_us.map_or("-".into(), |us| format!("{:.1}ms", us as f64 / 1000.0)),
    ]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// What the routers reported: `None` when none did (or none reads traffic).
#[derive(Debug, Clone, Default)]
pub struct RoutesTraffic {
    pub routers: usize,
    pub backends: BTreeMap<(String, String), Summed>,
    pub apps: BTreeMap<String, Summed>,
}

impl RoutesTraffic {
    /// Sums the routers' latest traffic; `None` when no router reported any.
    pub fn sum<'a>(traffic: impl Iterator<Item = &'a Traffic>) -> Option<RoutesTraffic> {
        let mut out = RoutesTraffic::default();
        for t in traffic {
            out.routers += 1;
            for (app, s) in &t.apps {
                out.apps.entry(app.clone()).or_default().add(s, t.window_ms);
            }
            for (app, backends) in &t.backends {
                for (backend, s) in backends {
                    out.backends.entry((app.clone(), backend.clone())).or_default().add(s, t.window_ms);
                }
            }
        }
        (out.routers > 0).then_some(out)
    }

    /// A route's numbers: zero when the routers read traffic but none went to it.
    pub fn route(&self, app: &str, backend: &str) -> Summed {
        let found = self.backends.get(&(app.to_string(), backend.to_string())).cloned();
        found.unwrap_or_else(|| Summed { window_ms: self.window_ms(), ..Summed::default() })
    }

    pub fn app(&self, app: &str) -> Summed {
        self.apps
            .get(app)
            .cloned()
            .unwrap_or_else(|| Summed { window_ms: self.window_ms(), ..Summed::default() })
    }

    fn window_ms(&self) -> u64 {
        let all = self.apps.values().chain(self.backends.values());
        all.map(|s| s.window_ms).max().unwrap_or(crate::plane::router::traffic::SLOTS * 1000)
    }
}

/// Listens to the routers' statuses for `wait` (subscribed by the caller before anything
/// else, so the wait overlaps the snapshot's fetch), keeping each router's latest.
pub async fn listen(mut sub: crate::bus::Subscription, wait: Duration) -> BTreeMap<String, Traffic> {
    let mut latest = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        match decode::<RouterStatus>(&msg.payload) {
            Ok(env) => {
                if let Some(t) = env.body.traffic {
                    latest.insert(env.body.id, t);
                }
            }
            Err(e) => log::debug!("router status on {} not read: {e}", msg.subject),
        }
    }
    latest
}

/// Subscribes to every router's status, unless `--no-traffic`.
pub async fn subscribe(bus: &dyn Bus, args: &RoutesArgs) -> Result<Option<crate::bus::Subscription>, String> {
    if args.no_traffic {
        return Ok(None);
    }
    let sub = bus
        .subscribe(subjects::ROUTER_STATUS_ALL)
        .await
        .map_err(|e| format!("cannot listen to the routers' statuses: {e}"))?;
    Ok(Some(sub))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TrafficStats;

    fn stats(requests: u64, errors_5xx: u64, p99_us: u64) -> TrafficStats {
        TrafficStats { requests, errors_5xx, p50_us: Some(p99_us / 2), p99_us: Some(p99_us) }
    }

    fn traffic(window_ms: u64, app: TrafficStats, backend: TrafficStats) -> Traffic {
        let mut t = Traffic { at: 1, window_ms, ..Traffic::default() };
        t.apps.insert("shop".into(), app);
        t.backends.entry("shop".into()).or_default().insert("10.0.0.1:80".into(), backend);
        t
    }

    #[test]
    fn two_routers_add_up_and_the_slowest_percentile_is_kept() {
        let a = traffic(10_000, stats(100, 60, 4000), stats(100, 60, 4000));
        let b = traffic(5_000, stats(50, 0, 9000), stats(50, 0, 9000));
        let sum = RoutesTraffic::sum([a, b].iter()).expect("two routers");
        let route = sum.route("shop", "10.0.0.1:80");
        assert_eq!((route.requests, route.errors_5xx), (150, 60));
        assert_eq!(route.rps, 20.0);
        assert_eq!(route.p99_us, Some(9000));
        let j = json(&route);
        assert_eq!(j["pct_5xx"], json!(40.0));
        assert_eq!(j["p99_ms"], json!(9.0));
        assert_eq!(j["errors_per_second"], json!(6.0));
        assert_eq!(j["window_ms"], json!(10_000));
        // A route no request reached: zeros, no percentage.
        let quiet = json(&sum.route("shop", "10.0.0.2:80"));
        assert_eq!((quiet["rps"].clone(), quiet["pct_5xx"].clone()), (json!(0.0), Value::Null));
        assert_eq!(cells(&sum.route("shop", "10.0.0.2:80")), ["0.0".to_string(), "-".into(), "-".into()]);
        assert!(RoutesTraffic::sum(std::iter::empty()).is_none());
    }
}
