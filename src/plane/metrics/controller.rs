//! The controller's metrics. The fleet counts follow each applied change (`before` and
//! `after`, called from `mutate` under the state's lock, a few atomic updates per change),
//! so a scrape never counts the fleet and never takes the controller's lock. A new term
//! (`load`) counts the loaded fleet once.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::protocol::{
    AlertRule, AlertState, Change, Fleet, HostState, InstanceState, OperationKind, OperationState, RouteKey,
    RouteState,
};

type State = [(&'static str, &'static str); 1];
type Pair = [(&'static str, &'static str); 2];
type Histograms = Family<Pair, Histogram, fn() -> Histogram>;

const HOST_STATES: [HostState; 3] = [HostState::Up, HostState::Stale, HostState::Lost];
const INSTANCE_STATES: [InstanceState; 8] = [
    InstanceState::New,
    InstanceState::Deploying,
    InstanceState::Starting,
    InstanceState::Running,
    InstanceState::Unhealthy,
    InstanceState::Crashed,
    InstanceState::Stopped,
    InstanceState::Removed,
];
const ROUTE_STATES: [&str; 3] = ["serving", "stale", "disabled"];
const ALERT_STATES: [AlertState; 3] = [AlertState::Firing, AlertState::Acknowledged, AlertState::Resolved];

/// Events waiting to be durable, at most, whose queueing time is kept: the controller's
/// own bound on its commit queue is lower (`core::MAX_QUEUED` plus one decision's drafts).
const PENDING_KEPT: usize = 65_536;

pub struct ControllerMetrics {
    registry: Registry,
    hosts: Family<State, Gauge>,
    instances: Family<State, Gauge>,
    apps: Gauge,
    routes: Family<State, Gauge>,
    alerts: Family<Pair, Gauge>,
    operations: Histograms,
    commit: Histogram,
    revision: Gauge,
    leader: Gauge,
    reconnects: Counter,
    /// Each event's revision and when `mutate` queued it, until it is durable.
    pending: Mutex<VecDeque<(u64, Instant)>>,
}

impl std::fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControllerMetrics")
    }
}

impl super::Scrape for ControllerMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// What one entity of the fleet counts as: the gauge (and labels) it adds one to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Host(String),
    App(String),
    Instance(String),
    Route(RouteKey),
    Alert(String),
}

/// The entities an event's changes touch, each once, in the order first touched: what
/// `before` took out of the counts and `after` puts back as they now are.
#[derive(Debug, Default)]
pub struct Touched(Vec<Key>);

fn operation_histogram() -> Histogram {
    // Half a second to about 17 minutes: a restart to a long rolling deploy.
    Histogram::new(exponential_buckets(0.5, 2.0, 12))
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics::new()
    }
}

impl ControllerMetrics {
    pub fn new() -> Self {
        let mut registry = super::registry();
        let hosts = Family::<State, Gauge>::default();
        let instances = Family::<State, Gauge>::default();
        let apps = Gauge::default();
        let routes = Family::<State, Gauge>::default();
        let alerts = Family::<Pair, Gauge>::default();
        let operations: Histograms = Family::new_with_constructor(operation_histogram);
        // A twentieth of a millisecond to about 13 seconds: a JetStream ack to a bus outage.
        let commit = Histogram::new(exponential_buckets(0.00005, 2.0, 18));
        let (revision, leader) = (Gauge::default(), Gauge::default());
        registry.register("hosts", "Hosts in the fleet, by state (up, stale, lost)", hosts.clone());
        registry.register("instances", "Instances in the fleet, by state", instances.clone());
        registry.register("apps", "Apps in the fleet", apps.clone());
        registry.register("routes", "Routes, by state (serving, stale, disabled)", routes.clone());
        registry.register("alerts", "Alerts in the fleet, by rule and state", alerts.clone());
        registry.register(
            "operation_duration_seconds",
            "How long ended operations took, by kind and outcome (succeeded, failed)",
            operations.clone(),
        );
        registry.register(
            "event_commit_seconds",
            "Time from an event's decision to its being durable (stream and state)",
            commit.clone(),
        );
        registry.register("revision", "The newest durable revision of the fleet", revision.clone());
        registry.register(
            "leader",
            "1 while this controller leads and is not fenced, else 0",
            leader.clone(),
        );
        let reconnects = super::reconnects(&mut registry);
        ControllerMetrics {
            registry,
            hosts,
            instances,
            apps,
            routes,
            alerts,
            operations,
            commit,
            revision,
            leader,
            reconnects,
            pending: Mutex::new(VecDeque::new()),
        }
    }

    /// The bus reconnect counter, for `count_reconnects`.
    pub fn reconnects(&self) -> Counter {
        self.reconnects.clone()
    }

    /// Counts `fleet` afresh, as a term starts with the state it loaded: every state of each
    /// kind is present, at zero when nothing is in it.
    pub fn load(&self, fleet: &Fleet) {
        for s in HOST_STATES {
            self.hosts.get_or_create(&[("state", s.as_str())]).set(0);
        }
        for s in INSTANCE_STATES {
            self.instances.get_or_create(&[("state", s.as_str())]).set(0);
        }
        for s in ROUTE_STATES {
            self.routes.get_or_create(&[("state", s)]).set(0);
        }
        for rule in AlertRule::ALL {
            for s in ALERT_STATES {
                self.alerts.get_or_create(&[("rule", rule.as_str()), ("state", s.as_str())]).set(0);
            }
        }
        self.apps.set(0);
        let keys = fleet.hosts.keys().map(|h| Key::Host(h.clone()));
        let keys = keys.chain(fleet.apps.keys().map(|a| Key::App(a.clone())));
        let keys = keys.chain(fleet.instances.keys().map(|i| Key::Instance(i.clone())));
        let keys = keys.chain(fleet.routes.keys().map(|r| Key::Route(r.clone())));
        let keys = keys.chain(fleet.alerts.keys().map(|a| Key::Alert(a.clone())));
        for key in keys {
            self.count(fleet, &key, 1);
        }
        self.revision.set(i64::try_from(fleet.revision).unwrap_or(i64::MAX));
        self.lock_pending().clear();
    }

    /// Before `changes` are applied to `fleet`: takes what they touch out of the counts and
    /// observes the operations they end.
    pub fn before(&self, fleet: &Fleet, changes: &[Change]) -> Touched {
        let mut touched = Touched::default();
        for change in changes {
            if let Change::OperationEnded(end) = change {
                self.ended(fleet, &end.id, end.state, end.finished_at);
            }
            let Some(key) = key_of(change) else { continue };
            if !touched.0.contains(&key) {
                self.count(fleet, &key, -1);
                touched.0.push(key);
            }
        }
        touched
    }

    /// After the changes are applied: counts what they touched as it now is.
    pub fn after(&self, fleet: &Fleet, touched: Touched) {
        for key in &touched.0 {
            self.count(fleet, key, 1);
        }
    }

    /// `mutate` queued the event at `rev` now.
    pub fn queued(&self, rev: u64) {
        let mut pending = self.lock_pending();
        if pending.len() >= PENDING_KEPT {
            pending.pop_front();
        }
        pending.push_back((rev, Instant::now()));
    }

    /// Every event up to `rev` is durable now.
    pub fn durable(&self, rev: u64) {
        let now = Instant::now();
        let mut pending = self.lock_pending();
        while let Some(&(queued, at)) = pending.front()
            && queued <= rev
        {
            self.commit.observe(now.duration_since(at).as_secs_f64());
            pending.pop_front();
        }
        drop(pending);
        self.revision.set(i64::try_from(rev).unwrap_or(i64::MAX));
    }

    /// Whether this controller leads (holds its lease and is not fenced).
    pub fn set_leader(&self, leads: bool) {
        self.leader.set(i64::from(leads));
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Instant)>> {
        // Plain data: a panic elsewhere leaves it usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ended(&self, fleet: &Fleet, id: &str, state: OperationState, finished_at: u64) {
        let Some(op) = fleet.operations.get(id) else { return };
        if op.finished_at.is_some() {
            return;
        }
        let outcome = match state {
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Running => return,
        };
        let seconds = finished_at.saturating_sub(op.started_at) as f64 / 1000.0;
        self.operations
            .get_or_create(&[("kind", kind_label(op.kind)), ("outcome", outcome)])
            .observe(seconds);
    }

    /// Adds `by` to the gauge `key` counts in, as it is in `fleet` (nothing if absent).
    fn count(&self, fleet: &Fleet, key: &Key, by: i64) {
        match key {
            Key::Host(id) => {
                if let Some(h) = fleet.hosts.get(id) {
                    self.hosts.get_or_create(&[("state", h.state.as_str())]).inc_by(by);
                }
            }
            Key::App(name) => {
                if fleet.apps.contains_key(name) {
                    self.apps.inc_by(by);
                }
            }
            Key::Instance(id) => {
                if let Some(i) = fleet.instances.get(id) {
                    self.instances.get_or_create(&[("state", i.state.as_str())]).inc_by(by);
                }
            }
            Key::Route(k) => {
                if let Some(r) = fleet.routes.get(k) {
                    let state = match (r.state, r.stale) {
                        (RouteState::Disabled, _) => "disabled",
                        (RouteState::Enabled, true) => "stale",
                        (RouteState::Enabled, false) => "serving",
                    };
                    self.routes.get_or_create(&[("state", state)]).inc_by(by);
                }
            }
            Key::Alert(id) => {
                if let Some(a) = fleet.alerts.get(id) {
                    let labels = [("rule", a.rule.as_str()), ("state", a.state.as_str())];
                    self.alerts.get_or_create(&labels).inc_by(by);
                }
            }
        }
    }
}

fn key_of(change: &Change) -> Option<Key> {
    Some(match change {
        Change::Host(h) => Key::Host(h.info.id.clone()),
        Change::App(a) => Key::App(a.name.clone()),
        Change::AppRemoved { name } => Key::App(name.clone()),
        Change::Instance(i) => Key::Instance(i.id.clone()),
        Change::InstanceRemoved { id } => Key::Instance(id.clone()),
        Change::Route(r) => Key::Route(r.key()),
        Change::RouteRemoved { app, backend } => Key::Route((app.clone(), backend.clone())),
        Change::Alert(a) => Key::Alert(a.id.clone()),
        Change::AlertRemoved { id } => Key::Alert(id.clone()),
        Change::Operation(_)
        | Change::OperationStep(_)
        | Change::OperationEnded(_)
        | Change::OperationRemoved { .. }
        | Change::Silence(_)
        | Change::SilenceRemoved { .. } => return None,
    })
}

fn kind_label(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Deploy => "deploy",
        OperationKind::Restart => "restart",
        OperationKind::Replace => "replace",
        OperationKind::Drain => "drain",
        OperationKind::Scale => "scale",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plane::metrics::testing::{parse, value};
    use crate::protocol::{Alert, AlertSubject, Event, EventKind};

    const COUNTED: [&str; 5] = [
        "quarterdeck_hosts",
        "quarterdeck_instances",
        "quarterdeck_apps",
        "quarterdeck_routes",
        "quarterdeck_alerts",
    ];

    /// The fleet gauges' samples, as text lines sorted, for comparing two registries.
    fn counts(m: &ControllerMetrics) -> Vec<String> {
        let mut lines: Vec<String> = parse(&m.registry)
            .samples
            .into_iter()
            .filter(|s| COUNTED.contains(&s.metric.as_str()))
            .map(|s| {
                let labels: std::collections::BTreeMap<_, _> = s.labels.iter().collect();
                format!("{} {labels:?} {:?}", s.metric, s.value)
            })
            .collect();
        lines.sort();
        lines
    }

    fn event(rev: u64, changes: Vec<Change>) -> Event {
        Event {
            rev,
            ts: 0,
            kind: EventKind::AppUpdated,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            message: String::new(),
            changes,
            audit: None,
        }
    }

    fn alert(state: AlertState) -> Alert {
        let subject = AlertSubject::parse("app/shop").expect("subject");
        Alert {
            id: Alert::id_of(AlertRule::CrashLoop, &subject),
            rule: AlertRule::CrashLoop,
            subject,
            state,
            since: 0,
            changed_at: 0,
            resolved_at: None,
            summary: "4 crashes in 5m".into(),
            causes: vec![],
            acked_by: None,
        }
    }

    /// Applies `event` to `fleet` the way `mutate` does, counting as it goes.
    fn apply(m: &ControllerMetrics, fleet: &mut Fleet, event: &Event) {
        let touched = m.before(fleet, &event.changes);
        fleet.apply(event).expect("in order");
        m.after(fleet, touched);
    }

    /// A registry with a series in each family, so that every name shows in its text.
    pub(crate) fn filled() -> ControllerMetrics {
        let m = ControllerMetrics::new();
        m.load(&crate::plane::fixture::fixture(7, 1, 1).0);
        m.operations.get_or_create(&[("kind", "deploy"), ("outcome", "succeeded")]).observe(1.0);
        m
    }

    #[test]
    fn counts_kept_change_by_change_equal_a_fresh_count_of_the_fleet() {
        let (built, events) = crate::plane::fixture::fixture(7, 4, 3);
        let m = ControllerMetrics::new();
        let mut fleet = Fleet::default();
        m.load(&fleet);
        for e in &events {
            apply(&m, &mut fleet, e);
        }
        let mut rev = fleet.revision;
        let mut next = |changes| {
            rev += 1;
            event(rev, changes)
        };
        // One event touching an instance twice, an alert firing then acknowledged, an app removed.
        let mut crashed = fleet.instances.values().next().expect("an instance").clone();
        crashed.state = InstanceState::Crashed;
        let mut unhealthy = crashed.clone();
        unhealthy.state = InstanceState::Unhealthy;
        apply(&m, &mut fleet, &next(vec![Change::Instance(crashed), Change::Instance(unhealthy)]));
        apply(&m, &mut fleet, &next(vec![Change::Alert(alert(AlertState::Firing))]));
        apply(&m, &mut fleet, &next(vec![Change::Alert(alert(AlertState::Acknowledged))]));
        let app = fleet.apps.keys().next().expect("an app").clone();
        apply(&m, &mut fleet, &next(vec![Change::AppRemoved { name: app }]));
        let fresh = ControllerMetrics::new();
        fresh.load(&fleet);
        assert_eq!(counts(&m), counts(&fresh));
        let scrape = parse(&m.registry);
        let running = fleet.instances.values().filter(|i| i.state == InstanceState::Running).count();
        assert_eq!(value(&scrape, "quarterdeck_instances", &[("state", "running")]), Some(running as f64));
        assert_eq!(value(&scrape, "quarterdeck_instances", &[("state", "unhealthy")]), Some(1.0));
        assert_eq!(value(&scrape, "quarterdeck_hosts", &[("state", "up")]), Some(built.hosts.len() as f64));
        assert_eq!(value(&scrape, "quarterdeck_apps", &[]), Some(built.apps.len() as f64 - 1.0));
        let acked = [("rule", "crash_loop"), ("state", "acknowledged")];
        assert_eq!(value(&scrape, "quarterdeck_alerts", &acked), Some(1.0));
        let firing = [("rule", "crash_loop"), ("state", "firing")];
        assert_eq!(value(&scrape, "quarterdeck_alerts", &firing), Some(0.0));
    }

    #[test]
    fn an_ended_operation_is_observed_once_with_its_kind_and_outcome() {
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 2, 0);
        let m = ControllerMetrics::new();
        m.load(&fleet);
        let op = crate::protocol::Operation {
            id: "op-1".into(),
            kind: OperationKind::Restart,
            app: "shop".into(),
            target: "shop".into(),
            steps: vec![],
            state: OperationState::Running,
            error: None,
            started_at: 1_000,
            finished_at: None,
            command_id: None,
            compacted: None,
        };
        let rev = fleet.revision;
        apply(&m, &mut fleet, &event(rev + 1, vec![Change::Operation(op)]));
        let end = crate::protocol::OperationEnded {
            id: "op-1".into(),
            state: OperationState::Failed,
            error: Some("boom".into()),
            finished_at: 4_000,
            steps: Default::default(),
        };
        apply(&m, &mut fleet, &event(rev + 2, vec![Change::OperationEnded(end.clone())]));
        // Ending an ended operation again (a replayed change) is not a second observation.
        apply(&m, &mut fleet, &event(rev + 3, vec![Change::OperationEnded(end)]));
        let scrape = parse(&m.registry);
        let labels = [("kind", "restart"), ("outcome", "failed")];
        assert_eq!(value(&scrape, "quarterdeck_operation_duration_seconds_count", &labels), Some(1.0));
        assert_eq!(value(&scrape, "quarterdeck_operation_duration_seconds_sum", &labels), Some(3.0));
    }

    #[test]
    fn commit_latency_is_observed_once_per_event_as_it_becomes_durable() {
        let m = ControllerMetrics::new();
        m.queued(5);
        m.queued(6);
        m.queued(7);
        let observed =
            |m: &ControllerMetrics| value(&parse(&m.registry), "quarterdeck_event_commit_seconds_count", &[]);
        m.durable(6);
        assert_eq!(observed(&m), Some(2.0));
        m.durable(6);
        assert_eq!(observed(&m), Some(2.0), "nothing new became durable");
        m.durable(7);
        let scrape = parse(&m.registry);
        assert_eq!(value(&scrape, "quarterdeck_revision", &[]), Some(7.0));
        assert_eq!(value(&scrape, "quarterdeck_event_commit_seconds_count", &[]), Some(3.0));
    }

    #[test]
    fn the_leader_gauge_follows_the_lease() {
        let m = ControllerMetrics::new();
        m.set_leader(true);
        assert_eq!(value(&parse(&m.registry), "quarterdeck_leader", &[]), Some(1.0));
        m.set_leader(false);
        assert_eq!(value(&parse(&m.registry), "quarterdeck_leader", &[]), Some(0.0));
    }
}
