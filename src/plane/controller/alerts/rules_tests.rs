//! The rules and their transitions, judged tick by tick on a fleet built by hand.

use std::time::Duration;

use super::*;
use crate::plane::controller::alerts::seen::Seen;
use crate::plane::controller::alerts::state::{self, Tracker, Transition};
use crate::protocol::{
    Alert, AlertState, AppSpec, Change, Event, EventKind, ExitInfo, Host, Instance, Operation, Route,
    RouteState, Traffic,
};

fn cfg() -> AlertConfig {
    AlertConfig {
        crash_loop: super::super::config::CrashLoop { crashes: 3, window: Duration::from_secs(60) },
        unhealthy_after: Duration::from_secs(30),
        below_desired_after: Duration::from_secs(30),
        no_route_after: Duration::from_secs(30),
        resolve_after: Duration::from_secs(10),
        ..AlertConfig::default()
    }
}

fn instance(id: &str, app: &str, state: InstanceState) -> Instance {
    Instance {
        id: id.into(),
        app: app.into(),
        version: "1".into(),
        index: 0,
        host: "h1".into(),
        ip: "10.0.0.1".into(),
        port: 8080,
        endpoint: format!("10.0.0.1:{}", 8000 + id.len()),
        container_id: String::new(),
        state,
        started_at: Some(0),
        restarts: 0,
        cpu_pct: 0.0,
        mem_used_mb: 0,
        mem_limit_mb: 0,
        cpu_limit: 0.0,
        last_exit: Some(ExitInfo::new(3, false, 0)),
    }
}

/// One app `shop` (1 instance, running, routed) on host h1.
fn fleet() -> Fleet {
    let mut f = Fleet::default();
    f.hosts.insert("h1".into(), Host::for_test("h1", "az1", 4, 4096));
    f.apps.insert("shop".into(), AppSpec::for_test("shop", 1, 0.1));
    let inst = instance("shop-1", "shop", InstanceState::Running);
    let route = Route {
        app: "shop".into(),
        domain: "shop.local".into(),
        backend: inst.endpoint.clone(),
        state: RouteState::Enabled,
        weight: 1,
        stale: false,
    };
    f.routes.insert(route.key(), route);
    f.instances.insert(inst.id.clone(), inst);
    f
}

/// The rules' task at one tick, its transitions applied to the fleet.
struct Judge {
    fleet: Fleet,
    seen: Seen,
    tracker: Tracker,
    cfg: AlertConfig,
}

impl Judge {
    fn new(fleet: Fleet) -> Judge {
        Judge { fleet, seen: Seen::default(), tracker: Tracker::default(), cfg: cfg() }
    }

    fn tick(&mut self, now: u64) -> Vec<Transition> {
        let traffic = self.seen.fresh_traffic(self.cfg.router_status_period, now);
        let eval = evaluate(&self.fleet, &self.seen, &traffic, &self.cfg, now);
        let out = state::decide(&self.fleet, eval, &mut self.tracker, &self.cfg, now);
        for t in &out {
            for c in state::changes(t) {
                self.fleet.try_apply_change(&c).expect("applies");
            }
        }
        out
    }

    fn crash(&mut self, id: &str, ts: u64, rev: u64) {
        let event = Event {
            rev,
            ts,
            kind: EventKind::InstanceCrashed,
            app: None,
            host: None,
            instance: Some(id.into()),
            operation_id: None,
            message: String::new(),
            changes: vec![],
            audit: None,
        };
        self.seen.observe(&event);
    }

    fn alert(&self, rule: AlertRule, subject: AlertSubject) -> Option<&Alert> {
        self.fleet.alerts.get(&Alert::id_of(rule, &subject))
    }
}

fn kinds(ts: &[Transition]) -> Vec<(EventKind, String)> {
    ts.iter().map(|t| (t.kind, t.alert.id.clone())).collect()
}

#[test]
fn a_crash_loop_fires_at_n_crashes_in_the_window_with_its_crashes_as_causes() {
    let mut j = Judge::new(fleet());
    j.crash("shop-1", 1_000, 11);
    j.crash("shop-1", 2_000, 12);
    assert!(j.tick(3_000).is_empty(), "2 crashes are not a loop");
    j.crash("shop-1", 61_500, 13);
    assert!(j.tick(61_500).is_empty(), "the first crash is out of the 60 s window");
    j.crash("shop-1", 62_000, 14);
    let fired = j.tick(62_000);
    assert_eq!(kinds(&fired), vec![(EventKind::AlertFiring, "crash_loop:instance/shop-1".into())]);
    assert_eq!(fired[0].alert.causes, vec![12, 13, 14]);
    assert!(fired[0].alert.summary.contains("3 crashes in 1m (last: exit 3)"), "{}", fired[0].alert.summary);
    assert!(j.tick(63_000).is_empty(), "firing once");
}

#[test]
fn a_crash_loop_resolves_once_stable_for_the_window_and_the_hold() {
    let mut j = Judge::new(fleet());
    for (n, ts) in [1_000, 2_000, 3_000].into_iter().enumerate() {
        j.crash("shop-1", ts, n as u64 + 1);
    }
    assert_eq!(j.tick(3_000).len(), 1);
    // Still within the window of the last crash: it holds.
    assert!(j.tick(62_000).is_empty());
    // 63 s: the last crash left the window; clear from now, resolved 10 s later.
    assert!(j.tick(63_001).is_empty());
    assert!(j.tick(70_000).is_empty(), "the hold is not over");
    let resolved = j.tick(73_001);
    assert_eq!(kinds(&resolved), vec![(EventKind::AlertResolved, "crash_loop:instance/shop-1".into())]);
    assert_eq!(resolved[0].alert.resolved_at, Some(73_001));
}

#[test]
fn an_alert_whose_subject_is_gone_resolves_at_once() {
    let mut j = Judge::new(fleet());
    for ts in [1_000, 2_000, 3_000] {
        j.crash("shop-1", ts, ts);
    }
    assert_eq!(j.tick(3_000).len(), 1);
    j.fleet.instances.remove("shop-1");
    let resolved = j.tick(4_000);
    assert_eq!(kinds(&resolved), vec![(EventKind::AlertResolved, "crash_loop:instance/shop-1".into())]);
}

#[test]
fn unhealthy_fires_after_its_threshold_and_does_not_flap() {
    let mut j = Judge::new(fleet());
    // Only this rule: the app below its count and its route not serving wait an hour.
    (j.cfg.below_desired_after, j.cfg.no_route_after) =
        (Duration::from_secs(3600), Duration::from_secs(3600));
    let subject = AlertSubject::Instance("shop-1".into());
    j.fleet.instances.get_mut("shop-1").expect("inst").state = InstanceState::Unhealthy;
    assert!(j.tick(0).is_empty());
    assert!(j.tick(29_999).is_empty(), "not yet 30 s");
    assert_eq!(j.tick(30_000).len(), 1);
    // Healthy for 5 s, then unhealthy again: no resolve, no second firing.
    j.fleet.instances.get_mut("shop-1").expect("inst").state = InstanceState::Running;
    assert!(j.tick(31_000).is_empty());
    assert!(j.tick(36_000).is_empty());
    j.fleet.instances.get_mut("shop-1").expect("inst").state = InstanceState::Unhealthy;
    assert!(j.tick(37_000).is_empty());
    assert!(j.tick(50_000).is_empty(), "the clear time started again from nothing");
    assert_eq!(j.alert(AlertRule::InstanceUnhealthy, subject.clone()).map(|a| a.since), Some(30_000));
    j.fleet.instances.get_mut("shop-1").expect("inst").state = InstanceState::Running;
    assert!(j.tick(51_000).is_empty());
    assert_eq!(j.tick(61_000).len(), 1, "resolved after 10 s clear");
    // It fires again later: a new `since`.
    j.fleet.instances.get_mut("shop-1").expect("inst").state = InstanceState::Unhealthy;
    assert!(j.tick(70_000).is_empty());
    let again = j.tick(100_000);
    assert_eq!(again[0].alert.since, 100_000);
    assert_eq!(again[0].alert.resolved_at, None);
}

#[test]
fn a_condition_that_ends_before_its_threshold_never_fires() {
    let mut j = Judge::new(fleet());
    j.fleet.apps.get_mut("shop").expect("app").instances = 2;
    assert!(j.tick(0).is_empty());
    j.fleet.apps.get_mut("shop").expect("app").instances = 1;
    assert!(j.tick(20_000).is_empty());
    j.fleet.apps.get_mut("shop").expect("app").instances = 2;
    assert!(j.tick(40_000).is_empty(), "its pending time started again at 40 s");
    let fired = j.tick(70_000);
    assert_eq!(kinds(&fired), vec![(EventKind::AlertFiring, "app_below_desired:app/shop".into())]);
    assert!(fired[0].alert.summary.contains("1 of 2"), "{}", fired[0].alert.summary);
}

#[test]
fn a_host_down_fires_at_once_with_its_event_and_resolves_when_up() {
    let mut j = Judge::new(fleet());
    j.fleet.hosts.get_mut("h1").expect("h1").state = HostState::Stale;
    let mut event = Event {
        rev: 42,
        ts: 0,
        kind: EventKind::HostStale,
        app: None,
        host: Some("h1".into()),
        instance: None,
        operation_id: None,
        message: String::new(),
        changes: vec![],
        audit: None,
    };
    j.seen.observe(&event);
    event.kind = EventKind::InstanceState;
    j.seen.observe(&event);
    let fired = j.tick(1_000);
    assert_eq!(kinds(&fired), vec![(EventKind::AlertFiring, "host_down:host/h1".into())]);
    assert_eq!(fired[0].alert.causes, vec![42]);
    j.fleet.hosts.get_mut("h1").expect("h1").state = HostState::Up;
    assert!(j.tick(2_000).is_empty());
    assert_eq!(j.tick(12_000).len(), 1);
}

#[test]
fn host_pressure_names_what_is_over() {
    let mut j = Judge::new(fleet());
    let m = &mut j.fleet.hosts.get_mut("h1").expect("h1").metrics;
    (m.disk_used_mb, m.disk_total_mb, m.mem_used_mb, m.mem_total_mb) = (95, 100, 50, 100);
    let fired = j.tick(0);
    assert_eq!(kinds(&fired), vec![(EventKind::AlertFiring, "host_pressure:host/h1".into())]);
    assert!(fired[0].alert.summary.contains("disk 95%"), "{}", fired[0].alert.summary);
    assert!(!fired[0].alert.summary.contains("memory"), "{}", fired[0].alert.summary);
}

fn deploy(id: &str, started_at: u64, state: OperationState) -> Operation {
    Operation {
        id: id.into(),
        kind: OperationKind::Deploy,
        app: "shop".into(),
        target: "shop@1 x1".into(),
        steps: vec![],
        state,
        error: (state == OperationState::Failed).then(|| "health check failed".to_string()),
        started_at,
        finished_at: Some(started_at + 1),
        command_id: None,
        compacted: None,
    }
}

#[test]
fn a_failed_deploy_fires_until_the_next_deploy_succeeds() {
    let mut j = Judge::new(fleet());
    j.fleet.operations.insert("op-1".into(), deploy("op-1", 1, OperationState::Failed));
    let fired = j.tick(1_000);
    assert_eq!(kinds(&fired), vec![(EventKind::AlertFiring, "deploy_failed:app/shop".into())]);
    assert!(fired[0].alert.summary.contains("health check failed"), "{}", fired[0].alert.summary);
    j.fleet.operations.insert("op-2".into(), deploy("op-2", 2, OperationState::Running));
    assert!(j.tick(20_000).is_empty(), "a running deploy proves nothing yet");
    j.fleet.operations.insert("op-2".into(), deploy("op-2", 2, OperationState::Succeeded));
    assert!(j.tick(21_000).is_empty());
    assert_eq!(kinds(&j.tick(31_000)), vec![(EventKind::AlertResolved, "deploy_failed:app/shop".into())]);
}

fn traffic_for(app: &str, backend: &str, requests: u64, errors: u64) -> Traffic {
    let stats = crate::protocol::TrafficStats { requests, errors_5xx: errors, p50_us: None, p99_us: None };
    let mut t = Traffic { at: 0, window_ms: 2_000, ..Traffic::default() };
    t.apps.insert(app.into(), stats.clone());
    t.backends.entry(app.into()).or_default().insert(backend.into(), stats);
    t
}

#[test]
fn no_serving_route_waits_its_threshold_but_fires_at_once_with_traffic() {
    let mut j = Judge::new(fleet());
    for r in j.fleet.routes.values_mut() {
        r.state = RouteState::Disabled;
    }
    assert!(j.tick(0).is_empty(), "no traffic: the threshold applies");
    j.seen.router_traffic("r1", Some(traffic_for("shop", "10.0.0.1:8006", 40, 40)), 1_000);
    let fired = j.tick(1_000);
    assert_eq!(kinds(&fired)[0], (EventKind::AlertFiring, "no_serving_route:app/shop".into()));
    assert!(fired[0].alert.summary.contains("gets traffic (40 requests)"), "{}", fired[0].alert.summary);
}

#[test]
fn stale_router_traffic_fires_nothing() {
    let mut j = Judge::new(fleet());
    for r in j.fleet.routes.values_mut() {
        r.state = RouteState::Disabled;
    }
    j.seen.router_traffic("r1", Some(traffic_for("shop", "10.0.0.1:8006", 40, 40)), 1_000);
    // Three 2 s periods later the numbers are gone: only the threshold can fire it.
    assert!(j.tick(7_001).is_empty());
}

#[test]
fn route_5xx_sums_the_routers_and_needs_enough_requests() {
    let mut j = Judge::new(fleet());
    let backend = j.fleet.routes.values().next().expect("route").backend.clone();
    j.seen.router_traffic("r1", Some(traffic_for("shop", &backend, 3, 1)), 0);
    assert!(j.tick(0).is_empty(), "one error among three does not page");
    j.seen.router_traffic("r2", Some(traffic_for("shop", &backend, 17, 1)), 0);
    let fired = j.tick(0);
    let id = format!("route_5xx:route/shop/{backend}");
    assert_eq!(kinds(&fired), vec![(EventKind::AlertFiring, id.clone())]);
    assert!(fired[0].alert.summary.contains("10.0% 5xx (2 of 20 requests"), "{}", fired[0].alert.summary);
    // The routers go quiet: no numbers, so the alert neither resolves nor fires again.
    assert!(j.tick(60_000).is_empty());
    assert!(j.fleet.alerts[&id].state.is_active());
    // Fresh numbers without errors resolve it after the hold.
    j.seen.router_traffic("r1", Some(traffic_for("shop", &backend, 100, 0)), 61_000);
    assert!(j.tick(61_000).is_empty());
    j.seen.router_traffic("r1", Some(traffic_for("shop", &backend, 100, 0)), 71_000);
    assert_eq!(kinds(&j.tick(71_000)), vec![(EventKind::AlertResolved, id)]);
}

#[test]
fn resolved_alerts_beyond_the_bound_are_removed_oldest_first_active_ones_never() {
    let mut j = Judge::new(fleet());
    for n in 0..state::RESOLVED_KEPT as u64 {
        let subject = AlertSubject::Host(format!("gone-{n}"));
        let alert = Alert {
            id: Alert::id_of(AlertRule::HostDown, &subject),
            rule: AlertRule::HostDown,
            subject,
            state: AlertState::Resolved,
            since: n,
            changed_at: n,
            resolved_at: Some(n),
            summary: String::new(),
            causes: vec![],
            acked_by: None,
        };
        j.fleet.try_apply_change(&Change::Alert(alert)).expect("applies");
    }
    j.fleet.hosts.get_mut("h1").expect("h1").state = HostState::Lost;
    assert_eq!(j.tick(1_000).len(), 1);
    j.fleet.hosts.get_mut("h1").expect("h1").state = HostState::Up;
    assert!(j.tick(2_000).is_empty());
    let resolved = j.tick(12_000);
    assert_eq!(resolved[0].removed, vec!["host_down:host/gone-0".to_string()]);
    assert!(!j.fleet.alerts.contains_key("host_down:host/gone-0"));
    assert_eq!(j.fleet.alerts.len(), state::RESOLVED_KEPT);
}

#[test]
fn after_a_restart_a_crash_loop_holds_on_the_instance_s_last_exit() {
    let mut j = Judge::new(fleet());
    for ts in [1_000, 2_000, 3_000] {
        j.crash("shop-1", ts, ts);
    }
    assert_eq!(j.tick(3_000).len(), 1);
    // A new controller: nothing seen, the alert loaded back, the last exit at 3 s.
    (j.seen, j.tracker) = (Seen::default(), Tracker::default());
    j.fleet.instances.get_mut("shop-1").expect("inst").last_exit = Some(ExitInfo::new(3, false, 3_000));
    assert!(j.tick(20_000).is_empty());
    assert!(j.tick(62_000).is_empty(), "its last exit is within the window: it holds");
    assert!(j.tick(63_001).is_empty(), "clear from now");
    assert_eq!(kinds(&j.tick(73_001)), vec![(EventKind::AlertResolved, "crash_loop:instance/shop-1".into())]);
}
