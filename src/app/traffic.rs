//! Traffic as the cockpit shows it: the routers' numbers summed per route and per app,
//! from the routers whose traffic is fresh only, and a short history of each for the
//! detail panes' sparklines. A router's old numbers are not shown as today's: past
//! `STALE_PERIODS` of its window they count for nothing, and with no fresh router the
//! traffic is unknown (`–`), not zero.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::App;
use super::facts::{AppState, FleetFacts};
use super::rows::RowKey;
use crate::actions::Panel;
use crate::backend::Replica;
use crate::protocol::{Fleet, RouterStatus, TrafficSum};

/// A router's traffic counts until this many of its windows (its status period) have
/// passed since its status arrived.
pub const STALE_PERIODS: u64 = 3;

/// A 5xx share above this, in percent, is drawn as bad.
pub const HIGH_5XX_PCT: f64 = 5.0;

/// Traffic samples kept per route and per app: at a 2 s status period, the last 4 minutes.
pub const TRAFFIC_KEPT: usize = 120;

/// One route's or app's traffic, summed over the fresh routers (`TrafficSum`'s rule).
pub type Rates = TrafficSum;

/// Whether the 5xx share is above `HIGH_5XX_PCT`.
pub fn high_5xx(r: &Rates) -> bool {
    r.pct_5xx().is_some_and(|p| p > HIGH_5XX_PCT)
}

/// The requests per second of an app that takes requests while none of its routes
/// serves: `✕ no route (N rps)` on its row, counted in the header. Not while what serves
/// is unknown (a silent controller or host): then its state says unknown.
pub fn unserved(rates: Option<Rates>, st: &AppState) -> Option<f64> {
    rates.filter(|r| r.requests > 0 && st.serving == 0 && st.unknown == 0).map(|r| r.rps)
}

/// How many apps take requests while none of their routes serves (`unserved`).
pub fn unserved_apps(traffic: &TrafficBook, replica: &Replica, facts: &FleetFacts, now: u64) -> usize {
    traffic
        .apps
        .iter()
        // Most apps with traffic have a serving route: only the others are judged in full.
        .filter(|(name, r)| {
            traffic.known() && r.requests > 0 && facts.per_app.get(*name).is_none_or(|c| c.serving == 0)
        })
        .filter_map(|(name, _)| replica.fleet.apps.get(name))
        .filter(|a| unserved(traffic.app(&a.name), &facts.app_state(replica, a, now)).is_some())
        .count()
}

/// One status period's numbers, for a sparkline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficSample {
    /// When it was taken (ms since epoch, the cockpit's clock).
    pub ts: u64,
    pub rps: f32,
    pub pct_5xx: f32,
    pub p99_ms: f32,
}

impl TrafficSample {
    fn of(ts: u64, r: &Rates) -> TrafficSample {
        TrafficSample {
            ts,
            rps: r.rps as f32,
            pct_5xx: r.pct_5xx().unwrap_or(0.0) as f32,
            p99_ms: r.p99_us.unwrap_or(0) as f32 / 1000.0,
        }
    }
}

/// The last `TRAFFIC_KEPT` samples, oldest first.
pub type TrafficHistory = VecDeque<TrafficSample>;

/// Per app, then per backend.
type PerRoute<T> = HashMap<String, HashMap<String, T>>;

/// Whether a router's traffic still counts at `now`: it has some, with a window, and no
/// more than `STALE_PERIODS` windows passed since its status arrived (`seen`, the
/// cockpit's clock: the router's own may be off).
pub fn is_fresh(status: &RouterStatus, seen: u64, now: u64) -> bool {
    status.traffic.as_ref().is_some_and(|t| {
        t.window_ms > 0 && now.saturating_sub(seen) <= t.window_ms.saturating_mul(STALE_PERIODS)
    })
}

/// The routers whose traffic counts at `now`.
pub fn fresh_routers(routers: &BTreeMap<String, (RouterStatus, u64)>, now: u64) -> BTreeSet<String> {
    routers.iter().filter(|(_, (st, seen))| is_fresh(st, *seen, now)).map(|(id, _)| id.clone()).collect()
}

/// The fresh routers' traffic summed per route and per app.
pub fn sum(
    routers: &BTreeMap<String, (RouterStatus, u64)>,
    fresh: &BTreeSet<String>,
) -> (PerRoute<Rates>, HashMap<String, Rates>) {
    let mut routes: PerRoute<Rates> = HashMap::new();
    let mut apps: HashMap<String, Rates> = HashMap::new();
    for id in fresh {
        let Some(t) = routers.get(id).and_then(|(st, _)| st.traffic.as_ref()) else { continue };
        for (app, backends) in &t.backends {
            let mine = routes.entry(app.clone()).or_default();
            for (backend, stats) in backends {
                mine.entry(backend.clone()).or_default().add(stats, t.window_ms);
            }
        }
        for (app, stats) in &t.apps {
            apps.entry(app.clone()).or_default().add(stats, t.window_ms);
        }
    }
    (routes, apps)
}

/// The summed traffic the rows read, and its recent history.
#[derive(Debug, Clone, Default)]
pub struct TrafficBook {
    /// The routers counted.
    fresh: BTreeSet<String>,
    routes: PerRoute<Rates>,
    apps: HashMap<String, Rates>,
    route_history: PerRoute<TrafficHistory>,
    app_history: HashMap<String, TrafficHistory>,
}

/// The rows whose traffic numbers changed in an update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changed {
    /// Every row: traffic became known or unknown.
    pub all: bool,
    pub rows: Vec<(Panel, RowKey)>,
}

impl TrafficBook {
    /// Whether any router's traffic counts: without, every number is unknown.
    pub fn known(&self) -> bool {
        !self.fresh.is_empty()
    }

    /// A route's traffic: zero when the fresh routers saw none, `None` when unknown.
    pub fn route(&self, app: &str, backend: &str) -> Option<Rates> {
        self.known().then(|| self.routes.get(app).and_then(|b| b.get(backend)).copied().unwrap_or_default())
    }

    /// An app's traffic: zero when the fresh routers saw none, `None` when unknown.
    pub fn app(&self, app: &str) -> Option<Rates> {
        self.known().then(|| self.apps.get(app).copied().unwrap_or_default())
    }

    pub fn route_history(&self, app: &str, backend: &str) -> Option<&TrafficHistory> {
        self.route_history.get(app).and_then(|b| b.get(backend))
    }

    pub fn app_history(&self, app: &str) -> Option<&TrafficHistory> {
        self.app_history.get(app)
    }

    /// Whether the set of fresh routers differs from the one counted: a router's traffic
    /// went stale, so the sums must be worked out again.
    pub fn fresh_changed(&self, routers: &BTreeMap<String, (RouterStatus, u64)>, now: u64) -> bool {
        let mut fresh = routers.iter().filter(|(_, (st, seen))| is_fresh(st, *seen, now)).map(|(id, _)| id);
        !fresh.by_ref().eq(self.fresh.iter())
    }

    /// Sums the routers again and says which rows' numbers changed; with `sample`, the
    /// new numbers go into the histories (one sample per status period of the shortest
    /// fresh window: a second router's status within it replaces the sample).
    pub fn update(
        &mut self,
        routers: &BTreeMap<String, (RouterStatus, u64)>,
        fleet: &Fleet,
        now: u64,
        sample: bool,
    ) -> Changed {
        let fresh = fresh_routers(routers, now);
        let (routes, apps) = sum(routers, &fresh);
        let all = fresh.is_empty() != self.fresh.is_empty();
        let rows = if all { Vec::new() } else { self.changed_rows(&routes, &apps) };
        self.fresh = fresh;
        self.routes = routes;
        self.apps = apps;
        if sample && self.known() {
            let window = self.fresh_window(routers);
            self.sample(fleet, now, window);
        }
        Changed { all, rows }
    }

    fn fresh_window(&self, routers: &BTreeMap<String, (RouterStatus, u64)>) -> u64 {
        self.fresh
            .iter()
            .filter_map(|id| routers.get(id)?.0.traffic.as_ref().map(|t| t.window_ms))
            .min()
            .unwrap_or(0)
    }

    fn changed_rows(&self, routes: &PerRoute<Rates>, apps: &HashMap<String, Rates>) -> Vec<(Panel, RowKey)> {
        let zero = Rates::default();
        let old_route = |app: &str, backend: &str| self.routes.get(app).and_then(|b| b.get(backend));
        let new_route = |app: &str, backend: &str| routes.get(app).and_then(|b| b.get(backend));
        let pairs = |m: &'_ PerRoute<Rates>| {
            m.iter().flat_map(|(a, b)| b.keys().map(move |k| (a.clone(), k.clone()))).collect::<Vec<_>>()
        };
        let mut out = Vec::new();
        // The new numbers against the old, then the old that are gone (now zero).
        for (app, backend) in pairs(routes) {
            if old_route(&app, &backend).unwrap_or(&zero) != new_route(&app, &backend).unwrap_or(&zero) {
                out.push((Panel::Routes, RowKey::Route(app, backend)));
            }
        }
        for (app, backend) in pairs(&self.routes) {
            if new_route(&app, &backend).is_none() && old_route(&app, &backend) != Some(&zero) {
                out.push((Panel::Routes, RowKey::Route(app, backend)));
            }
        }
        for (app, new) in apps {
            if self.apps.get(app).unwrap_or(&zero) != new {
                out.push((Panel::Apps, RowKey::Id(app.clone())));
            }
        }
        for (app, old) in &self.apps {
            if !apps.contains_key(app) && *old != zero {
                out.push((Panel::Apps, RowKey::Id(app.clone())));
            }
        }
        out
    }

    /// A sample for each route and app with traffic or a history; the histories of
    /// routes and apps that are gone go with them.
    fn sample(&mut self, fleet: &Fleet, now: u64, window: u64) {
        let zero = Rates::default();
        for (app, backends) in &self.routes {
            let mine = self.route_history.entry(app.clone()).or_default();
            for backend in backends.keys() {
                mine.entry(backend.clone()).or_default();
            }
        }
        for app in self.apps.keys() {
            self.app_history.entry(app.clone()).or_default();
        }
        self.route_history.retain(|app, backends| {
            backends.retain(|backend, _| fleet.routes.contains_key(&(app.clone(), backend.clone())));
            !backends.is_empty()
        });
        self.app_history.retain(|app, _| fleet.apps.contains_key(app));
        for (app, backends) in self.route_history.iter_mut() {
            for (backend, history) in backends.iter_mut() {
                let r = self.routes.get(app).and_then(|b| b.get(backend)).unwrap_or(&zero);
                remember(history, TrafficSample::of(now, r), window);
            }
        }
        for (app, history) in self.app_history.iter_mut() {
            remember(history, TrafficSample::of(now, self.apps.get(app).unwrap_or(&zero)), window);
        }
    }
}

fn remember(history: &mut TrafficHistory, sample: TrafficSample, window: u64) {
    if history.back().is_some_and(|last| sample.ts < last.ts.saturating_add(window / 2)) {
        history.pop_back();
    } else if history.len() >= TRAFFIC_KEPT {
        history.pop_front();
    }
    history.push_back(sample);
}

impl App {
    /// The routers' traffic summed again: the rows whose numbers changed are rebuilt
    /// (every route and app row when the traffic became known or unknown), and the views
    /// draw the new numbers. `sample`: a router status arrived, so the histories move on.
    pub(super) fn refresh_traffic(&mut self, sample: bool) {
        let changed = self.traffic.update(&self.routers, &self.replica.fleet, self.now, sample);
        if !changed.all && changed.rows.is_empty() {
            return;
        }
        self.replica.generation += 1;
        for panel in [Panel::Routes, Panel::Apps] {
            let cache = &mut self.views[panel.index()].cache;
            if changed.all && cache.in_use() {
                cache.rebuild_all();
            }
        }
        for (panel, key) in changed.rows {
            let cache = &mut self.views[panel.index()].cache;
            if cache.in_use() {
                cache.touch(key);
            }
        }
    }

    /// On the clock: a router whose traffic went stale stops counting at once.
    pub(super) fn expire_traffic(&mut self) {
        if self.traffic.fresh_changed(&self.routers, self.now) {
            self.refresh_traffic(false);
        }
    }
}

#[cfg(test)]
#[path = "traffic_tests.rs"]
mod tests;
