//! Fleet-wide facts the views show on every frame (header totals, instances per host, the
//! instance behind a route backend). Counting them means a pass over every instance, so
//! they are computed once per change of the fleet's structure, not per frame: heartbeats
//! change metrics only, never a state or a placement, so they keep the facts current.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The facts' maps: counted afresh, every instance's host, app and endpoint is hashed, so
/// the hasher is a fast one (keys come from our own controller, not from an attacker who
/// could aim collisions at a cockpit).
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::backend::Replica;
use crate::protocol::{
    AppSpec, Change, Fleet, HostState, Instance, InstanceState, Operation, OperationState, OperationStep,
    Route, RouteState, StepCounts,
};

/// The steps the cockpit shows of an operation: its own while it runs; once it ended
/// (the state keeps only their counts), rebuilt from the events the replica keeps, or
/// `None` when those no longer reach back to its first step.
pub fn operation_steps<'a>(replica: &Replica, op: &'a Operation) -> Option<Cow<'a, [OperationStep]>> {
    if op.compacted.is_none() {
        return Some(Cow::Borrowed(op.steps.as_slice()));
    }
    crate::protocol::steps_in_history(op, &replica.events).map(Cow::Owned)
}

/// What is said of an ended operation's steps when the events kept no longer hold them.
pub fn compacted_note(counts: StepCounts) -> String {
    format!(
        "{} steps ({} done, {} failed); their detail is in the event history (ctl events)",
        counts.total, counts.done, counts.failed
    )
}

/// What the facts were computed from: the replica's structure counter plus the collection
/// sizes, which catch changes made to the fleet without a new structure (tests do that).
pub type FactsStamp = (u64, usize, usize, usize, usize);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetFacts {
    pub stamp: FactsStamp,
    pub hosts_up: usize,
    pub running: usize,
    /// Instances the apps ask for, summed.
    pub desired: u64,
    /// Running instances with an endpoint and no route.
    pub unrouted: usize,
    /// Routes that serve: enabled, not stale, with a running instance behind them
    /// (`Route::serves_with`).
    pub serving: usize,
    /// Instances placed on each host.
    pub per_host: Map<String, usize>,
    /// Running instances on each host, by app: what a silent host takes away from the
    /// totals until it is heard again.
    pub running_by_host: Map<String, Map<String, usize>>,
    /// Serving routes whose backend is on each host, by app.
    pub serving_by_host: Map<String, Map<String, usize>>,
    /// Running instances and routes of each app.
    pub per_app: Map<String, AppCounts>,
    /// The instances behind each endpoint, by app then endpoint: nested so that a view
    /// looks one up by `&str`, without building a key.
    pub by_endpoint: Map<String, Map<String, Endpoint>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppCounts {
    pub running: usize,
    pub routes: usize,
    /// Routes that serve (`Route::serves_with`): none means the app gets no traffic.
    pub serving: usize,
    /// Instances by version: more than one during a rolling update.
    pub versions: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The instances on it, by id: kept so that an event re-counts an endpoint from its
    /// own few instances, not from a pass over the fleet.
    /// In id order.
    pub ids: Vec<String>,
    /// The state of the first instance on it, in id order (what the Routes panel shows).
    pub first: InstanceState,
    /// How many of its instances run.
    pub running: usize,
    /// The route to it, if there is one.
    pub route: Option<RouteState>,
    /// Whether its route serves traffic (`Route::serves_with` its running instances).
    pub serves: bool,
    /// The host of its first instance: where it is served from.
    pub host: String,
}

impl Endpoint {
    /// Whether any instance on it runs.
    pub fn backed(&self) -> bool {
        self.running > 0
    }

    /// Whether its route serves traffic (`Route::serves_with`).
    pub fn serving(&self) -> bool {
        self.serves
    }

    /// An endpoint an instance just came to, before it is counted.
    fn empty(state: InstanceState, host: &str) -> Endpoint {
        Endpoint {
            ids: Vec::new(),
            first: state,
            running: 0,
            route: None,
            serves: false,
            host: host.to_string(),
        }
    }
}

/// The header's totals at one moment: what is known to be healthy, and apart from it
/// what is unknown because its source is silent (`Replica::host_silence`,
/// `controller_silence`). Unknown is never counted as healthy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Hosts the controller has up and whose heartbeat is heard.
    pub hosts_up: usize,
    /// Hosts the controller has up whose heartbeat is not heard.
    pub hosts_silent: usize,
    pub running: usize,
    /// Running, last we knew, on a silent host or with a silent controller.
    pub running_unknown: usize,
    pub serving: usize,
    pub serving_unknown: usize,
}

/// An app's state in one word, from the facts and the freshness of their sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppHealth {
    /// An operation (deploy, restart) is running on it.
    Changing,
    /// Some of its running instances sit on a silent host, or the controller is silent.
    Unknown,
    /// None of its instances runs.
    Down,
    /// Instances run but no route serves them (`Route::serves_with`): disabled, stale or
    /// unbacked. The load balancer sends it nothing.
    NoTraffic,
    Degraded,
    Ok,
}

impl AppHealth {
    pub fn word(self) -> &'static str {
        match self {
            AppHealth::Changing => "changing",
            AppHealth::Unknown => "unknown",
            AppHealth::Down => "down",
            AppHealth::NoTraffic => "no traffic",
            AppHealth::Degraded => "degraded",
            AppHealth::Ok => "ok",
        }
    }
}

/// What the Apps panel shows of one app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppState {
    /// Running instances whose facts are fresh.
    pub running: usize,
    /// Running, last we knew, on a silent host or with a silent controller.
    pub unknown: usize,
    /// Serving routes whose backends are heard (not on a silent host, with a controller).
    pub serving: usize,
    pub routes: usize,
    pub health: AppHealth,
}

impl AppState {
    /// Why the controller has not placed the missing instances (`AppSpec::shortfall`), while
    /// the app is short of them: the Apps panel says that rather than only "down".
    pub fn waiting_for<'a>(&self, app: &'a crate::protocol::AppSpec) -> Option<&'a str> {
        let short = matches!(self.health, AppHealth::Down | AppHealth::Degraded)
            && (self.running as u32) < app.instances;
        app.shortfall.as_deref().filter(|_| short)
    }
}

/// What one event's changes touch in the facts, as it was before they applied.
#[derive(Debug, Default)]
pub struct Before {
    /// Instances by id, as they were (none if new).
    instances: Vec<(String, Option<Instance>)>,
    /// Hosts by id, and whether each was up.
    hosts: Vec<(String, bool)>,
    /// Apps by name, and the instances each asked for.
    apps: Vec<(String, u64)>,
    /// Routes by key, and whether each existed.
    routes: Vec<((String, String), bool)>,
    /// The endpoints the old instances were on.
    endpoints: Vec<(String, String)>,
}

impl Before {
    pub fn capture(fleet: &Fleet, changes: &[Change]) -> Before {
        let mut b = Before::default();
        let instance = |id: &str, b: &mut Before| {
            let old = fleet.instances.get(id).cloned();
            if let Some(i) = &old
                && !i.endpoint.is_empty()
            {
                b.endpoints.push((i.app.clone(), i.endpoint.clone()));
            }
            b.instances.push((id.to_string(), old));
        };
        for change in changes {
            match change {
                Change::Instance(i) => instance(&i.id, &mut b),
                Change::InstanceRemoved { id } => instance(id, &mut b),
                Change::Host(h) => {
                    let up = fleet.hosts.get(&h.info.id).is_some_and(|h| h.state == HostState::Up);
                    b.hosts.push((h.info.id.clone(), up));
                }
                Change::App(AppSpec { name, .. }) | Change::AppRemoved { name } => {
                    b.apps.push((name.clone(), fleet.apps.get(name).map_or(0, |a| u64::from(a.instances))));
                }
                Change::Route(Route { app, backend, .. }) | Change::RouteRemoved { app, backend } => {
                    let key = (app.clone(), backend.clone());
                    let existed = fleet.routes.contains_key(&key);
                    b.routes.push((key, existed));
                }
                Change::Operation(_)
                | Change::OperationStep(_)
                | Change::OperationEnded(_)
                | Change::OperationRemoved { .. }
                | Change::Alert(_)
                | Change::AlertRemoved { .. }
                | Change::Silence(_)
                | Change::SilenceRemoved { .. } => {}
            }
        }
        // One change each: a second change of the same thing in one event must not count
        // it twice.
        b.instances.sort_by(|x, y| x.0.cmp(&y.0));
        b.instances.dedup_by(|x, y| x.0 == y.0);
        b.hosts.sort_by(|x, y| x.0.cmp(&y.0));
        b.hosts.dedup_by(|x, y| x.0 == y.0);
        b.apps.sort_by(|x, y| x.0.cmp(&y.0));
        b.apps.dedup_by(|x, y| x.0 == y.0);
        b.routes.sort_by(|x, y| x.0.cmp(&y.0));
        b.routes.dedup_by(|x, y| x.0 == y.0);
        b
    }
}

/// The entry for `key`, made if need be (a few per event: the copied key costs nothing).
fn entry<'m, V: Default>(map: &'m mut Map<String, V>, key: &str) -> &'m mut V {
    map.entry(key.to_string()).or_default()
}

/// Adds (`sign` 1) or takes away (-1) one of `app` on `host` (a running instance, a
/// serving route); empty entries go, as `of` never makes them. Names are copied only for
/// a new entry: `of` calls this for each of 20,000 instances.
fn add_count(running_on: &mut Map<String, Map<String, usize>>, host: &str, app: &str, sign: i8) {
    if let Some(apps) = running_on.get_mut(host) {
        if let Some(n) = apps.get_mut(app) {
            *n = if sign > 0 { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                apps.remove(app);
            }
            if apps.is_empty() {
                running_on.remove(host);
            }
            return;
        }
        if sign > 0 {
            apps.insert(app.to_string(), 1);
        }
        return;
    }
    if sign > 0 {
        running_on.insert(host.to_string(), [(app.to_string(), 1)].into_iter().collect());
    }
}

/// An app with neither running instances nor routes has no entry, as `of` leaves it.
fn prune_app(per_app: &mut Map<String, AppCounts>, app: &str) {
    if per_app.get(app) == Some(&AppCounts::default()) {
        per_app.remove(app);
    }
}

pub fn stamp_of(replica: &Replica) -> FactsStamp {
    let f = &replica.fleet;
    (replica.structure, f.hosts.len(), f.instances.len(), f.apps.len(), f.routes.len())
}

impl FleetFacts {
    pub fn of(replica: &Replica) -> FleetFacts {
        let f = &replica.fleet;
        let mut facts = FleetFacts {
            stamp: stamp_of(replica),
            hosts_up: f.hosts.values().filter(|h| h.state == HostState::Up).count(),
            desired: f.apps.values().map(|a| u64::from(a.instances)).sum(),
            ..FleetFacts::default()
        };
        // Counted afresh after a snapshot and during floods of events, so at 20,000
        // instances each allocation counts: a host's or an app's name is copied once, not
        // per instance.
        let routes: Map<(&str, &str), &Route> =
            f.routes.values().map(|r| ((r.app.as_str(), r.backend.as_str()), r)).collect();
        facts.per_host.reserve(f.hosts.len());
        facts.per_app.reserve(f.apps.len());
        facts.by_endpoint.reserve(f.apps.len());
        for (app, _) in routes.keys() {
            match facts.per_app.get_mut(*app) {
                Some(c) => c.routes += 1,
                None => {
                    facts.per_app.insert(app.to_string(), AppCounts { routes: 1, ..AppCounts::default() });
                }
            }
        }
        for i in f.instances.values() {
            facts.tally_instance(i, &routes);
        }
        facts.tally_serving(&routes);
        facts
    }

    /// One instance counted: on its host, in its app and version, running or not, and on
    /// its endpoint (with the route there, if any).
    fn tally_instance(&mut self, i: &Instance, routes: &Map<(&str, &str), &Route>) {
        match self.per_host.get_mut(&i.host) {
            Some(n) => *n += 1,
            None => {
                self.per_host.insert(i.host.clone(), 1);
            }
        }
        let running = i.state == InstanceState::Running;
        if !self.per_app.contains_key(&i.app) {
            self.per_app.insert(i.app.clone(), AppCounts::default());
        }
        if let Some(counts) = self.per_app.get_mut(&i.app) {
            match counts.versions.get_mut(&i.version) {
                Some(n) => *n += 1,
                None => {
                    counts.versions.insert(i.version.clone(), 1);
                }
            }
            counts.running += usize::from(running);
        }
        self.running += usize::from(running);
        if running {
            add_count(&mut self.running_by_host, &i.host, &i.app, 1);
        }
        if i.endpoint.is_empty() {
            return;
        }
        let route = routes.get(&(i.app.as_str(), i.endpoint.as_str())).copied();
        if running && route.is_none() {
            self.unrouted += 1;
        }
        if !self.by_endpoint.contains_key(&i.app) {
            self.by_endpoint.insert(i.app.clone(), Map::default());
        }
        let Some(endpoints) = self.by_endpoint.get_mut(&i.app) else { return };
        match endpoints.get_mut(&i.endpoint) {
            Some(e) => {
                e.running += usize::from(running);
                // Instances come in id order: the ids stay sorted.
                e.ids.push(i.id.clone());
            }
            None => {
                let ids = vec![i.id.clone()];
                let e = Endpoint {
                    ids,
                    first: i.state,
                    running: usize::from(running),
                    route: route.map(|r| r.state),
                    // Known once every instance on it is counted, below.
                    serves: false,
                    host: i.host.clone(),
                };
                endpoints.insert(i.endpoint.clone(), e);
            }
        }
    }

    /// Which endpoints serve, once every instance on them is counted.
    fn tally_serving(&mut self, routes: &Map<(&str, &str), &Route>) {
        for (app, endpoints) in self.by_endpoint.iter_mut() {
            for (backend, e) in endpoints.iter_mut() {
                let route = routes.get(&(app.as_str(), backend.as_str()));
                e.serves = route.is_some_and(|r| r.serves_with(e.running));
                if !e.serves {
                    continue;
                }
                self.serving += 1;
                if let Some(c) = self.per_app.get_mut(app) {
                    c.serving += 1;
                }
                add_count(&mut self.serving_by_host, &e.host, app, 1);
            }
        }
    }

    /// Brings the facts up to date with one event's changes, from what they touched as it
    /// was (`before`) to the fleet as it is now: a few map entries per event instead of a
    /// pass over every instance. `of` gives the same facts (a test checks it).
    pub fn apply(&mut self, before: Before, after: &Fleet) {
        for (id, was_up) in &before.hosts {
            let up = after.hosts.get(id).is_some_and(|h| h.state == HostState::Up);
            self.hosts_up = (self.hosts_up + usize::from(up)).saturating_sub(usize::from(*was_up));
        }
        for (name, was) in &before.apps {
            let now = after.apps.get(name).map_or(0, |a| u64::from(a.instances));
            self.desired = (self.desired + now).saturating_sub(*was);
        }
        let mut endpoints: BTreeSet<(String, String)> = before.endpoints.into_iter().collect();
        for (key, existed) in &before.routes {
            let exists = after.routes.contains_key(key);
            let routes = &mut entry(&mut self.per_app, &key.0).routes;
            *routes = (*routes + usize::from(exists)).saturating_sub(usize::from(*existed));
            prune_app(&mut self.per_app, &key.0);
            endpoints.insert(key.clone());
        }
        for (id, old) in &before.instances {
            if let Some(old) = old {
                self.count_instance(old, -1);
                if let Some(e) = self.by_endpoint.get_mut(&old.app).and_then(|m| m.get_mut(&old.endpoint))
                    && let Ok(at) = e.ids.binary_search(id)
                {
                    e.ids.remove(at);
                }
            }
            if let Some(new) = after.instances.get(id) {
                self.count_instance(new, 1);
                if !new.endpoint.is_empty() {
                    let on = entry(&mut self.by_endpoint, &new.app)
                        .entry(new.endpoint.clone())
                        .or_insert_with(|| Endpoint::empty(new.state, &new.host));
                    if let Err(at) = on.ids.binary_search(id) {
                        on.ids.insert(at, id.clone());
                    }
                    endpoints.insert((new.app.clone(), new.endpoint.clone()));
                }
            }
        }
        for (app, endpoint) in endpoints {
            self.recount_endpoint(after, &app, &endpoint);
        }
    }

    /// Adds (`sign` 1) or takes away (-1) one instance from the per-host and per-app counts.
    fn count_instance(&mut self, i: &Instance, sign: i8) {
        let add = |n: &mut usize| *n = if sign > 0 { *n + 1 } else { n.saturating_sub(1) };
        add(entry(&mut self.per_host, &i.host));
        if self.per_host.get(&i.host) == Some(&0) {
            self.per_host.remove(&i.host);
        }
        let counts = entry(&mut self.per_app, &i.app);
        let version = counts.versions.entry(i.version.clone()).or_default();
        add(version);
        if *version == 0 {
            counts.versions.remove(&i.version);
        }
        if i.state == InstanceState::Running {
            add(&mut counts.running);
            add(&mut self.running);
            add_count(&mut self.running_by_host, &i.host, &i.app, sign);
        }
        prune_app(&mut self.per_app, &i.app);
    }

    /// Counts one endpoint again from its instances: whether they run, the first one's
    /// state and host, its route. An endpoint left with no instance goes.
    fn recount_endpoint(&mut self, fleet: &Fleet, app: &str, endpoint: &str) {
        let unrouted = |e: &Endpoint| if e.route.is_none() { e.running } else { 0 };
        let Some(m) = self.by_endpoint.get_mut(app) else { return };
        let Some(e) = m.get_mut(endpoint) else { return };
        let old = unrouted(e);
        let was_serving = e.serving().then(|| e.host.clone());
        let on: Vec<&Instance> = e.ids.iter().filter_map(|id| fleet.instances.get(id)).collect();
        let (new, now_serving) = match on.first() {
            Some(first) => {
                e.first = first.state;
                if e.host != first.host {
                    e.host.clone_from(&first.host);
                }
                e.running = on.iter().filter(|i| i.state == InstanceState::Running).count();
                let route = fleet.routes.get(&(app.to_string(), endpoint.to_string()));
                e.route = route.map(|r| r.state);
                e.serves = route.is_some_and(|r| r.serves_with(e.running));
                (unrouted(e), e.serving().then(|| e.host.clone()))
            }
            None => {
                m.remove(endpoint);
                if m.is_empty() {
                    self.by_endpoint.remove(app);
                }
                (0, None)
            }
        };
        self.unrouted = (self.unrouted + new).saturating_sub(old);
        if was_serving != now_serving {
            if let Some(host) = was_serving {
                self.count_serving(app, &host, -1);
            }
            if let Some(host) = now_serving {
                self.count_serving(app, &host, 1);
            }
        }
    }

    /// Adds (`sign` 1) or takes away (-1) one serving route of `app` on `host`.
    fn count_serving(&mut self, app: &str, host: &str, sign: i8) {
        let add = |n: &mut usize| *n = if sign > 0 { *n + 1 } else { n.saturating_sub(1) };
        add(&mut self.serving);
        add(&mut entry(&mut self.per_app, app).serving);
        prune_app(&mut self.per_app, app);
        add_count(&mut self.serving_by_host, host, app, sign);
    }

    /// Running instances on a host, all apps together.
    pub fn running_on(&self, host: &str) -> usize {
        self.running_by_host.get(host).map_or(0, |apps| apps.values().sum())
    }

    /// Running instances of one app on a host.
    pub fn running_of_on(&self, app: &str, host: &str) -> usize {
        self.running_by_host.get(host).and_then(|apps| apps.get(app)).copied().unwrap_or(0)
    }

    /// Serving routes whose backend is on a host.
    pub fn serving_on(&self, host: &str) -> usize {
        self.serving_by_host.get(host).map_or(0, |apps| apps.values().sum())
    }

    /// Serving routes of one app whose backend is on a host.
    pub fn serving_of_on(&self, app: &str, host: &str) -> usize {
        self.serving_by_host.get(host).and_then(|apps| apps.get(app)).copied().unwrap_or(0)
    }

    /// The totals at `now`, from these facts and which sources are silent. The silent
    /// hosts are those of the replica's last tick (judging every host at each frame would
    /// cost a frame at 1,000 hosts as much as drawing it), so this costs a pass over the
    /// silent hosts only; the controller is judged at `now`.
    pub fn totals(&self, replica: &Replica, now: u64) -> Totals {
        let mut t = Totals {
            hosts_up: self.hosts_up,
            running: self.running,
            serving: self.serving,
            ..Totals::default()
        };
        let controller_silent = replica.controller_silence(now).is_some();
        for host in replica.silence.hosts.iter().filter_map(|h| replica.fleet.hosts.get(h)) {
            if host.state == HostState::Up {
                t.hosts_silent += 1;
            }
            if !controller_silent {
                t.running_unknown += self.running_on(&host.info.id);
                t.serving_unknown += self.serving_on(&host.info.id);
            }
        }
        if controller_silent {
            // Every state the controller reported may have changed since.
            t.running_unknown = self.running;
            t.serving_unknown = self.serving;
        }
        t.hosts_up -= t.hosts_silent.min(t.hosts_up);
        t.running -= t.running_unknown.min(t.running);
        t.serving -= t.serving_unknown.min(t.serving);
        t
    }

    /// One app's state: its counts, less what is unknown, and its health. The silent
    /// hosts are those of the replica's last tick (a row per app on screen would
    /// otherwise judge every host each frame).
    pub fn app_state(&self, replica: &Replica, app: &AppSpec, now: u64) -> AppState {
        let counts = self.per_app.get(&app.name);
        let running = counts.map_or(0, |c| c.running);
        let serving = counts.map_or(0, |c| c.serving);
        let routes = counts.map_or(0, |c| c.routes);
        let (unknown, serving_unknown) = if replica.controller_silence(now).is_some() {
            (running, serving)
        } else {
            replica.silence.hosts.iter().fold((0, 0), |(r, s), h| {
                (r + self.running_of_on(&app.name, h), s + self.serving_of_on(&app.name, h))
            })
        };
        let known = running.saturating_sub(unknown);
        let serving = serving.saturating_sub(serving_unknown);
        let busy = replica
            .fleet
            .operations
            .values()
            .any(|o| o.app == app.name && o.state == OperationState::Running);
        let health = if busy {
            AppHealth::Changing
        } else if unknown > 0 {
            AppHealth::Unknown
        } else if app.instances == 0 {
            AppHealth::Ok
        } else if known == 0 {
            AppHealth::Down
        } else if serving == 0 {
            AppHealth::NoTraffic
        } else if (known as u64) < u64::from(app.instances) {
            AppHealth::Degraded
        } else {
            AppHealth::Ok
        };
        AppState { running: known, unknown, serving, routes, health }
    }

    /// The apps that serve traffic now and would serve none once these backends
    /// (`(app, backend)`) stop serving: what a disable or a removal takes away last.
    pub fn left_without_traffic<'a>(
        &self,
        backends: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<String> {
        let mut lost: BTreeMap<&str, usize> = BTreeMap::new();
        let mut seen: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (app, backend) in backends {
            if seen.insert((app, backend)) && self.endpoint(app, backend).is_some_and(Endpoint::serving) {
                *lost.entry(app).or_default() += 1;
            }
        }
        lost.into_iter()
            .filter(|(app, n)| *n > 0 && self.app(app).serving <= *n)
            .map(|(app, _)| app.to_string())
            .collect()
    }

    pub fn instances_on(&self, host: &str) -> usize {
        self.per_host.get(host).copied().unwrap_or(0)
    }

    pub fn app(&self, app: &str) -> AppCounts {
        self.per_app.get(app).cloned().unwrap_or_default()
    }

    pub fn endpoint(&self, app: &str, endpoint: &str) -> Option<&Endpoint> {
        self.by_endpoint.get(app).and_then(|m| m.get(endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EventKind, RouteState};

    /// The fixture's facts after `changes`, applied as one event.
    fn with(changes: Vec<Change>) -> (crate::app::App, FleetFacts) {
        let mut app = crate::views::harness::fixture_app(0);
        let event = crate::protocol::Event {
            rev: app.replica.fleet.revision + 1,
            ts: app.now,
            kind: EventKind::RouteDisabled,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            message: String::new(),
            changes,
            audit: None,
        };
        app.apply(crate::backend::Inbound::Feed(crate::backend::Feed::Event(event)));
        let facts = FleetFacts::of(&app.replica);
        (app, facts)
    }

    fn routes_of(app: &crate::app::App, name: &str) -> Vec<Route> {
        app.replica.fleet.routes.values().filter(|r| r.app == name).cloned().collect()
    }

    #[test]
    fn the_last_serving_backends_of_an_app_are_found_whatever_else_is_named() {
        let (app, facts) = with(vec![]);
        let web = routes_of(&app, "shop-web");
        assert_eq!(web.len(), 3);
        assert_eq!(facts.app("shop-web").serving, 3);
        let keys = |rs: &[Route]| rs.iter().map(|r| (r.app.clone(), r.backend.clone())).collect::<Vec<_>>();
        let named = |facts: &FleetFacts, ks: &[(String, String)]| {
            facts.left_without_traffic(ks.iter().map(|(a, b)| (a.as_str(), b.as_str())))
        };
        assert!(named(&facts, &keys(&web[..2])).is_empty(), "one is left");
        let mut all = keys(&web);
        all.push(all[0].clone());
        all.push(("shop-web".into(), "10.0.0.9:1".into()));
        assert_eq!(named(&facts, &all), vec!["shop-web".to_string()], "repeats and unknowns do not count");

        // Two already disabled: the third is the last.
        let off = |r: &Route| Change::Route(Route { state: RouteState::Disabled, ..r.clone() });
        let (app, facts) = with(vec![off(&web[0]), off(&web[1])]);
        assert_eq!(facts.app("shop-web").serving, 1);
        assert_eq!(named(&facts, &keys(&web[2..])), vec!["shop-web".to_string()]);
        assert!(named(&facts, &keys(&web[..2])).is_empty(), "they serve nothing already");
        let st = facts.app_state(&app.replica, &app.replica.fleet.apps["shop-web"], app.now);
        assert_eq!((st.running, st.serving, st.routes, st.health), (3, 1, 3, AppHealth::Ok));
    }

    #[test]
    fn an_app_state_says_no_traffic_when_no_route_serves_and_unknown_before_anything() {
        let (_, facts) = with(vec![]);
        let (app, _) = with(vec![]);
        let web = routes_of(&app, "shop-web");
        let mut changes: Vec<Change> =
            web.iter().map(|r| Change::Route(Route { state: RouteState::Disabled, ..r.clone() })).collect();
        // A stale route does not serve either, enabled or not.
        changes[0] = Change::Route(Route { stale: true, ..web[0].clone() });
        let (mut app, after) = with(changes);
        assert_eq!(after.serving + 3, facts.serving, "the header's count drops by three");
        let spec = app.replica.fleet.apps["shop-web"].clone();
        let st = after.app_state(&app.replica, &spec, app.now);
        assert_eq!((st.running, st.serving, st.health), (3, 0, AppHealth::NoTraffic));
        // A silent controller: nothing it said is known, not even that.
        app.update(crate::actions::Action::Tick(app.now + 60_000));
        let st = after.app_state(&app.replica, &spec, app.now);
        assert_eq!((st.running, st.unknown, st.health), (0, 3, AppHealth::Unknown));
        let api = app.replica.fleet.apps["api-gateway"].clone();
        let st = after.app_state(&app.replica, &api, app.now);
        assert_eq!((st.running, st.unknown, st.serving, st.routes), (0, 2, 0, 2), "serving is unknown too");
        let t = after.totals(&app.replica, app.now);
        assert_eq!((t.running, t.running_unknown, t.serving), (0, after.running, 0));
    }
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod headless_tests;
