//! The router's metrics, taken from each status it publishes: per-route traffic (the last
//! window of `RouterStatus.traffic`; a route gone from it loses its series), reloads, the
//! last reload's time, apply errors, the revision applied and bus reconnects.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::protocol::RouterStatus;
use crate::protocol::traffic::TrafficStats;

type RouteLabels = [(&'static str, String); 2];
type AppLabels = [(&'static str, String); 1];
type Float = Gauge<f64, AtomicU64>;

/// One window's figures of a backend or an app.
#[derive(Clone, Default)]
struct Rates<L: Clone + std::hash::Hash + Eq> {
    rps: Family<L, Float>,
    errors: Family<L, Float>,
}

impl<L> Rates<L>
where
    L: Clone + std::hash::Hash + Eq + Ord + prometheus_client::encoding::EncodeLabelSet + std::fmt::Debug,
{
    fn set(&self, labels: &L, stats: &TrafficStats, window_ms: u64) {
        self.rps.get_or_create(labels).set(stats.rps(window_ms));
        self.errors.get_or_create(labels).set(stats.errors_per_second(window_ms));
    }

    fn remove(&self, labels: &L) {
        self.rps.remove(labels);
        self.errors.remove(labels);
    }
}

pub struct RouterMetrics {
    registry: Registry,
    routes: Rates<RouteLabels>,
    p50: Family<RouteLabels, Float>,
    p99: Family<RouteLabels, Float>,
    apps: Rates<AppLabels>,
    reloads: Counter,
    last_reload: Float,
    apply_errors: Counter,
    revision: Gauge,
    reconnects: Counter,
    /// What the last status had series for, to remove what it no longer lists; and the
    /// generation the reload counter has counted up to.
    shown: Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    routes: BTreeSet<RouteLabels>,
    apps: BTreeSet<AppLabels>,
    generation: u64,
}

impl std::fmt::Debug for RouterMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouterMetrics")
    }
}

impl super::Scrape for RouterMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for RouterMetrics {
    fn default() -> Self {
        RouterMetrics::new()
    }
}

impl RouterMetrics {
    pub fn new() -> Self {
        let mut registry = super::registry();
        let routes = Rates::<RouteLabels>::default();
        let apps = Rates::<AppLabels>::default();
        let (p50, p99) = (Family::<RouteLabels, Float>::default(), Family::<RouteLabels, Float>::default());
        let per = "over the router's last traffic window";
        let register = |registry: &mut Registry, name: &str, help: String, metric: Family<_, Float>| {
            registry.register(name, help, metric);
        };
        register(
            &mut registry,
            "route_requests_per_second",
            format!("Requests per backend {per}"),
            routes.rps.clone(),
        );
        register(
            &mut registry,
            "route_5xx_per_second",
            format!("5xx answers per backend {per}"),
            routes.errors.clone(),
        );
        register(
            &mut registry,
            "route_latency_p50_seconds",
            format!("Median upstream time per backend {per}"),
            p50.clone(),
        );
        register(
            &mut registry,
            "route_latency_p99_seconds",
            format!("99th percentile upstream time per backend {per}"),
            p99.clone(),
        );
        registry.register(
            "app_requests_per_second",
            format!("Requests for an app's domain {per}, those no backend took included"),
            apps.rps.clone(),
        );
        registry.register(
            "app_5xx_per_second",
            format!("5xx answers for an app's domain {per}"),
            apps.errors.clone(),
        );
        let (reloads, apply_errors) = (Counter::default(), Counter::default());
        registry.register("router_reloads", "Configurations the router applied to nginx", reloads.clone());
        registry.register(
            "router_apply_errors",
            "Applies that failed (the last good configuration stays)",
            apply_errors.clone(),
        );
        let last_reload = Float::default();
        registry.register(
            "router_last_reload_timestamp_seconds",
            "When the router last reloaded nginx (seconds since the epoch; 0 before the first)",
            last_reload.clone(),
        );
        let revision = Gauge::default();
        registry.register(
            "router_revision",
            "The controller revision the applied configuration reflects",
            revision.clone(),
        );
        let reconnects = super::reconnects(&mut registry);
        RouterMetrics {
            registry,
            routes,
            p50,
            p99,
            apps,
            reloads,
            last_reload,
            apply_errors,
            revision,
            reconnects,
            shown: Mutex::new(Shown::default()),
        }
    }

    /// The bus reconnect counter, for `count_reconnects`.
    pub fn reconnects(&self) -> Counter {
        self.reconnects.clone()
    }

    /// An apply failed.
    pub fn apply_failed(&self) {
        self.apply_errors.inc();
    }

    /// Takes the figures of a status about to be published.
    pub fn observe(&self, status: &RouterStatus) {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        self.reloads.inc_by(status.generation.saturating_sub(shown.generation));
        shown.generation = shown.generation.max(status.generation);
        if let Some(ms) = status.last_reload {
            self.last_reload.set(ms as f64 / 1000.0);
        }
        self.revision.set(i64::try_from(status.revision).unwrap_or(i64::MAX));
        let (mut routes, mut apps) = (BTreeSet::new(), BTreeSet::new());
        if let Some(traffic) = &status.traffic {
            let window = traffic.window_ms;
            for (app, backends) in &traffic.backends {
                for (backend, stats) in backends {
                    let labels: RouteLabels = [("app", app.clone()), ("backend", backend.clone())];
                    self.routes.set(&labels, stats, window);
                    let seconds = |us: Option<u64>| us.map_or(0.0, |us| us as f64 / 1e6);
                    self.p50.get_or_create(&labels).set(seconds(stats.p50_us));
                    self.p99.get_or_create(&labels).set(seconds(stats.p99_us));
                    routes.insert(labels);
                }
            }
            for (app, stats) in &traffic.apps {
                let labels: AppLabels = [("app", app.clone())];
                self.apps.set(&labels, stats, window);
                apps.insert(labels);
            }
        }
        for gone in shown.routes.difference(&routes) {
            self.routes.remove(gone);
            self.p50.remove(gone);
            self.p99.remove(gone);
        }
        for gone in shown.apps.difference(&apps) {
            self.apps.remove(gone);
        }
        shown.routes = routes;
        shown.apps = apps;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plane::metrics::testing::{parse, value};
    use crate::protocol::traffic::Traffic;

    fn stats(requests: u64, errors_5xx: u64, p50_us: u64, p99_us: u64) -> TrafficStats {
        TrafficStats { requests, errors_5xx, p50_us: Some(p50_us), p99_us: Some(p99_us) }
    }

    fn status(generation: u64, backends: &[(&str, TrafficStats)]) -> RouterStatus {
        let per_backend: BTreeMap<String, TrafficStats> =
            backends.iter().map(|(b, s)| (b.to_string(), s.clone())).collect();
        let total = stats(backends.iter().map(|(_, s)| s.requests).sum(), 0, 0, 0);
        RouterStatus {
            id: "r1".into(),
            generation,
            last_reload: Some(1_700_000_000_500),
            last_error: None,
            backends: backends.len(),
            listen: "127.0.0.1:8080".into(),
            revision: 42,
            traffic: Some(Traffic {
                at: 0,
                window_ms: 2000,
                backends: BTreeMap::from([("shop".to_string(), per_backend)]),
                apps: BTreeMap::from([("shop".to_string(), total)]),
            }),
        }
    }

    /// A registry with a series in each family, so that every name shows in its text.
    pub(crate) fn filled() -> RouterMetrics {
        let m = RouterMetrics::new();
        m.observe(&status(1, &[("10.0.0.1:8080", stats(1, 0, 1, 1))]));
        m
    }

    #[test]
    fn a_status_sets_each_route_and_a_route_gone_from_the_traffic_loses_its_series() {
        let m = RouterMetrics::new();
        let a = ("10.0.0.1:8080", stats(200, 20, 1_500, 250_000));
        let b = ("10.0.0.2:8080", stats(100, 0, 1_000, 2_000));
        m.observe(&status(3, &[a.clone(), b]));
        m.apply_failed();
        let s = parse(&m.registry);
        let route = [("app", "shop"), ("backend", "10.0.0.1:8080")];
        assert_eq!(value(&s, "quarterdeck_route_requests_per_second", &route), Some(100.0));
        assert_eq!(value(&s, "quarterdeck_route_5xx_per_second", &route), Some(10.0));
        assert_eq!(value(&s, "quarterdeck_route_latency_p50_seconds", &route), Some(0.0015));
        assert_eq!(value(&s, "quarterdeck_route_latency_p99_seconds", &route), Some(0.25));
        assert_eq!(value(&s, "quarterdeck_app_requests_per_second", &[("app", "shop")]), Some(150.0));
        assert_eq!(value(&s, "quarterdeck_router_reloads_total", &[]), Some(3.0));
        assert_eq!(value(&s, "quarterdeck_router_apply_errors_total", &[]), Some(1.0));
        assert_eq!(value(&s, "quarterdeck_router_last_reload_timestamp_seconds", &[]), Some(1_700_000_000.5));
        assert_eq!(value(&s, "quarterdeck_router_revision", &[]), Some(42.0));

        m.observe(&status(5, &[a]));
        let s = parse(&m.registry);
        let gone = [("app", "shop"), ("backend", "10.0.0.2:8080")];
        assert_eq!(value(&s, "quarterdeck_route_requests_per_second", &gone), None);
        assert_eq!(value(&s, "quarterdeck_route_latency_p99_seconds", &gone), None);
        assert_eq!(
            value(&s, "quarterdeck_router_reloads_total", &[]),
            Some(5.0),
            "counted up to the generation"
        );

        m.observe(&RouterStatus { traffic: None, ..status(5, &[]) });
        let s = parse(&m.registry);
        assert_eq!(value(&s, "quarterdeck_route_requests_per_second", &route), None);
        assert_eq!(value(&s, "quarterdeck_app_requests_per_second", &[("app", "shop")]), None);
    }
}
