//! The rules, pure: from the fleet, what `Seen` kept and the routers' fresh traffic, which
//! conditions hold now. Whether that fires or resolves an alert is `state.rs`'s.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use super::config::AlertConfig;
use super::seen::Seen;
use crate::protocol::alert::ALERT_CAUSES_KEPT;
use crate::protocol::{
    AlertRule, AlertSubject, Fleet, HostState, InstanceState, OperationKind, OperationState, Traffic,
    TrafficStats, percent,
};

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub rule: AlertRule,
    pub subject: AlertSubject,
    pub summary: String,
    pub causes: Vec<u64>,
    /// How long it must hold before its alert fires.
    pub after: Duration,
}

/// What the rules found, and the rules they could not judge (no fresh numbers): those
/// alerts neither fire nor resolve.
#[derive(Debug, Default)]
pub(crate) struct Evaluation {
    pub findings: Vec<Finding>,
    pub unjudged: HashSet<AlertRule>,
}

pub(crate) fn evaluate(
    fleet: &Fleet,
    seen: &Seen,
    traffic: &[&Traffic],
    cfg: &AlertConfig,
    now: u64,
) -> Evaluation {
    let mut eval = Evaluation::default();
    crash_loops(fleet, seen, cfg, now, &mut eval.findings);
    unhealthy(fleet, cfg, &mut eval.findings);
    hosts(fleet, seen, cfg, &mut eval.findings);
    below_desired(fleet, cfg, &mut eval.findings);
    deploys_failed(fleet, seen, &mut eval.findings);
    no_serving_route(fleet, seen, traffic, cfg, &mut eval.findings);
    if traffic.is_empty() {
        eval.unjudged.insert(AlertRule::Route5xx);
    } else {
        route_5xx(fleet, traffic, cfg, &mut eval.findings);
    }
    eval
}

fn finding(rule: AlertRule, subject: AlertSubject, summary: String, causes: Vec<u64>) -> Finding {
    let skip = causes.len().saturating_sub(ALERT_CAUSES_KEPT);
    Finding { rule, subject, summary, causes: causes[skip..].to_vec(), after: Duration::ZERO }
}

/// N crashes within the window; once firing, it holds while the instance is crashed or
/// crashed within the window (it has not yet run stably for the window). After a restart
/// the crashes seen before are gone: the instance's own last exit stands in for them.
fn crash_loops(fleet: &Fleet, seen: &Seen, cfg: &AlertConfig, now: u64, out: &mut Vec<Finding>) {
    let window = cfg.crash_loop.window;
    let oldest = now.saturating_sub(window.as_millis() as u64);
    let active: BTreeSet<&String> = fleet
        .alerts
        .values()
        .filter(|a| a.rule == AlertRule::CrashLoop && a.state.is_active())
        .filter_map(|a| match &a.subject {
            AlertSubject::Instance(i) => Some(i),
            _ => None,
        })
        .collect();
    let none = VecDeque::new();
    for id in seen.crashes.keys().chain(active.iter().copied()).collect::<BTreeSet<_>>() {
        let Some(inst) = fleet.instances.get(id) else { continue };
        let log = seen.crashes.get(id).unwrap_or(&none);
        let recent: Vec<&(u64, u64)> = log.iter().filter(|(ts, _)| *ts >= oldest).collect();
        let exited_lately = inst.last_exit.is_some_and(|e| e.at >= oldest);
        let holds = recent.len() >= cfg.crash_loop.crashes as usize
            || (active.contains(id)
                && (!recent.is_empty() || exited_lately || inst.state == InstanceState::Crashed));
        if !holds {
            continue;
        }
        let last = inst.last_exit.map(|e| format!(" (last: {})", e.reason())).unwrap_or_default();
        let summary = format!("{} crashes in {}{last}", recent.len(), words(window));
        let causes = recent.iter().map(|(_, rev)| *rev).collect();
        let subject = AlertSubject::Instance(id.clone());
        out.push(finding(AlertRule::CrashLoop, subject, summary, causes));
    }
}

fn unhealthy(fleet: &Fleet, cfg: &AlertConfig, out: &mut Vec<Finding>) {
    for inst in fleet.instances.values().filter(|i| i.state == InstanceState::Unhealthy) {
        let summary =
            format!("{} on {} unhealthy for over {}", inst.id, inst.host, words(cfg.unhealthy_after));
        let mut f =
            finding(AlertRule::InstanceUnhealthy, AlertSubject::Instance(inst.id.clone()), summary, vec![]);
        f.after = cfg.unhealthy_after;
        out.push(f);
    }
}

fn hosts(fleet: &Fleet, seen: &Seen, cfg: &AlertConfig, out: &mut Vec<Finding>) {
    for host in fleet.hosts.values() {
        let id = &host.info.id;
        if host.state != HostState::Up {
            let causes = seen.host_down.get(id).copied().into_iter().collect();
            let summary = format!("host {id} is {}", host.state.as_str());
            out.push(finding(AlertRule::HostDown, AlertSubject::Host(id.clone()), summary, causes));
            continue;
        }
        let m = &host.metrics;
        let disk = percent(m.disk_used_mb, m.disk_total_mb);
        let mem = m.mem_pct();
        let mut over = Vec::new();
        if disk > cfg.disk_pct {
            over.push(format!("disk {disk:.0}% (over {:.0}%)", cfg.disk_pct));
        }
        if mem > cfg.mem_pct {
            over.push(format!("memory {mem:.0}% (over {:.0}%)", cfg.mem_pct));
        }
        if !over.is_empty() {
            let summary = format!("host {id}: {}", over.join(", "));
            out.push(finding(AlertRule::HostPressure, AlertSubject::Host(id.clone()), summary, vec![]));
        }
    }
}

fn running_by_app(fleet: &Fleet) -> HashMap<&str, usize> {
    let mut running: HashMap<&str, usize> = HashMap::new();
    for i in fleet.instances.values().filter(|i| i.state == InstanceState::Running) {
        *running.entry(i.app.as_str()).or_default() += 1;
    }
    running
}

fn below_desired(fleet: &Fleet, cfg: &AlertConfig, out: &mut Vec<Finding>) {
    let running = running_by_app(fleet);
    for app in fleet.apps.values() {
        let n = running.get(app.name.as_str()).copied().unwrap_or(0);
        if n >= app.instances as usize {
            continue;
        }
        let why = app.shortfall.as_ref().map(|s| format!(": {s}")).unwrap_or_default();
        let summary = format!("{} has {n} of {} instances running{why}", app.name, app.instances);
        let mut f = finding(AlertRule::AppBelowDesired, AlertSubject::App(app.name.clone()), summary, vec![]);
        f.after = cfg.below_desired_after;
        out.push(f);
    }
}

/// The app's last finished deploy failed: holds until a later deploy succeeds.
fn deploys_failed(fleet: &Fleet, seen: &Seen, out: &mut Vec<Finding>) {
    let mut last: BTreeMap<&str, &crate::protocol::Operation> = BTreeMap::new();
    for op in fleet.operations.values() {
        if op.kind != OperationKind::Deploy || op.state == OperationState::Running {
            continue;
        }
        let newer = last.get(op.app.as_str()).is_none_or(|l| (op.started_at, &op.id) > (l.started_at, &l.id));
        if newer {
            last.insert(op.app.as_str(), op);
        }
    }
    for (app, op) in last {
        if op.state != OperationState::Failed || !fleet.apps.contains_key(app) {
            continue;
        }
        let causes = seen.op_failed.get(&op.id).copied().into_iter().collect();
        let error = op.error.as_deref().unwrap_or("no reason given");
        let summary = format!("deploy {} of {app} failed: {error}", op.id);
        out.push(finding(AlertRule::DeployFailed, AlertSubject::App(app.to_string()), summary, causes));
    }
}

/// An app with a domain and desired instances and no route that serves with a running
/// instance behind it: after the threshold, or at once when the routers see traffic for it.
fn no_serving_route(
    fleet: &Fleet,
    seen: &Seen,
    traffic: &[&Traffic],
    cfg: &AlertConfig,
    out: &mut Vec<Finding>,
) {
    let running: HashSet<(&str, &str)> = fleet
        .instances
        .values()
        .filter(|i| i.state == InstanceState::Running)
        .map(|i| (i.app.as_str(), i.endpoint.as_str()))
        .collect();
    let serving: HashSet<&str> = fleet
        .routes
        .values()
        .filter(|r| r.serves() && running.contains(&(r.app.as_str(), r.backend.as_str())))
        .map(|r| r.app.as_str())
        .collect();
    for app in fleet.apps.values() {
        if app.domain.is_empty() || app.instances == 0 || serving.contains(app.name.as_str()) {
            continue;
        }
        let requests: u64 = traffic.iter().filter_map(|t| t.apps.get(&app.name)).map(|s| s.requests).sum();
        let causes =
            seen.route_events.get(&app.name).map(|r| r.iter().copied().collect()).unwrap_or_default();
        let (summary, after) = if requests > 0 {
            (
                format!("{} gets traffic ({requests} requests) but no route serves it", app.domain),
                Duration::ZERO,
            )
        } else {
            (format!("no route of {} serves with a running instance", app.domain), cfg.no_route_after)
        };
        let mut f = finding(AlertRule::NoServingRoute, AlertSubject::App(app.name.clone()), summary, causes);
        f.after = after;
        out.push(f);
    }
}

/// Each backend's numbers summed over the routers; above the share with enough requests.
fn route_5xx(fleet: &Fleet, traffic: &[&Traffic], cfg: &AlertConfig, out: &mut Vec<Finding>) {
    let mut sums: BTreeMap<(&str, &str), TrafficStats> = BTreeMap::new();
    for t in traffic {
        for (app, backends) in &t.backends {
            for (backend, s) in backends {
                let sum = sums.entry((app.as_str(), backend.as_str())).or_default();
                sum.requests += s.requests;
                sum.errors_5xx += s.errors_5xx;
            }
        }
    }
    for ((app, backend), s) in sums {
        let Some(pct) = s.pct_5xx() else { continue };
        if s.requests < cfg.min_requests_5xx || pct <= cfg.pct_5xx || !fleet.apps.contains_key(app) {
            continue;
        }
        let summary = format!(
            "{backend} of {app}: {pct:.1}% 5xx ({} of {} requests; over {}%)",
            s.errors_5xx, s.requests, cfg.pct_5xx
        );
        let subject = AlertSubject::Route { app: app.to_string(), backend: backend.to_string() };
        out.push(finding(AlertRule::Route5xx, subject, summary, vec![]));
    }
}

/// `5m`, `90s`, `2h` for a summary.
pub(crate) fn words(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
