//! What the agents report: heartbeats (the full picture, every period) and immediate
//! instance statuses. The agent is the authority on what actually runs.

use std::time::{Duration, Instant};

use super::core::{Controller, Core, Draft};
use super::ops::step_draft;
use super::repair;
use crate::bus::Subscription;
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::{self, AgentVerb};
use crate::protocol::{
    Change, EventKind, Heartbeat, HostState, InstanceRef, InstanceReport, InstanceState, InstanceStatus,
    Route, StepState, decode,
};

pub(crate) async fn serve_heartbeats(ctl: Controller, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        // Fenced, the controller judges nothing: a heartbeat could move state on, or have
        // a container removed, on the word of a leader that may have been superseded.
        if ctl.fenced() {
            continue;
        }
        // The store's pace, not the agents', sets how fast heartbeats turn into events.
        ctl.room().await;
        match decode::<Heartbeat>(&msg.payload) {
            Ok(env) => {
                match bound_to_subject(&msg.subject, &subjects::heartbeat(&env.body.host.id), "host") {
                    Ok(()) => on_heartbeat(&ctl, env.body).await,
                    Err(reason) => log::warn!("rejected heartbeat: {reason}"),
                }
            }
            Err(err) => log::warn!("rejected heartbeat on {}: {err}", msg.subject),
        }
    }
}

pub(crate) async fn serve_statuses(ctl: Controller, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        if ctl.fenced() {
            continue;
        }
        ctl.room().await;
        match decode::<InstanceStatus>(&msg.payload) {
            Ok(env) => match bound_to_subject(&msg.subject, &subjects::status(&env.body.host), "host") {
                Ok(()) => on_status(&ctl, env.body),
                Err(reason) => log::warn!("rejected instance status: {reason}"),
            },
            Err(err) => log::warn!("rejected instance status on {}: {err}", msg.subject),
        }
    }
}

/// Router statuses: each new apply error becomes one event, so it is in the history.
pub(crate) async fn serve_router_statuses(ctl: Controller, mut sub: Subscription) {
    while let Some(msg) = sub.next().await {
        if ctl.fenced() {
            continue;
        }
        let status = match decode::<crate::protocol::RouterStatus>(&msg.payload) {
            Ok(env) => env.body,
            Err(err) => {
                log::warn!("rejected router status on {}: {err}", msg.subject);
                continue;
            }
        };
        if let Err(reason) = bound_to_subject(&msg.subject, &subjects::router_status(&status.id), "router") {
            log::warn!("rejected router status: {reason}");
            continue;
        }
        ctl.mutate(|core| {
            core.routers_applied.insert(status.id.clone(), (Instant::now(), status.revision));
            core.alerts.router_traffic(&status.id, status.traffic.clone(), crate::protocol::clock::now_ms());
            let previous = core.router_errors.insert(status.id.clone(), status.last_error.clone());
            let drafts = match (&status.last_error, previous.flatten()) {
                (Some(err), prev) if prev.as_ref() != Some(err) => {
                    vec![Draft::new(EventKind::RouterError, format!("router {}: {err}", status.id))]
                }
                _ => vec![],
            };
            (drafts, ())
        });
    }
}

/// A report speaks only for the sender whose subject it came on: with roles on, the server
/// lets each agent (or router) publish only on its own subjects, so the subject is the
/// identity the server vouches for, and a body that names another is forged.
fn bound_to_subject(subject: &str, expected: &str, what: &str) -> Result<(), String> {
    if subject == expected {
        return Ok(());
    }
    Err(format!(
        "it came on {} but names a {what} whose subject is {}",
        crate::protocol::validate::quoted(subject),
        crate::protocol::validate::quoted(expected)
    ))
}

async fn on_heartbeat(ctl: &Controller, hb: Heartbeat) {
    if let Err(reason) = crate::protocol::validate::name("host", &hb.host.id) {
        log::warn!("rejected heartbeat: {reason}");
        return;
    }
    let host_id = hb.host.id.clone();
    let orphans = ctl.mutate(|core| {
        let mut drafts = Vec::new();
        let period = Duration::from_millis(hb.period_ms.clamp(100, 600_000));
        core.host_seen.insert(host_id.clone(), (Instant::now(), period));
        if let Some(d) = host_draft(core, &hb) {
            drafts.push(d);
        }
        let sorted = sort_reports(core, &host_id, &hb.instances);
        for report in &sorted.current {
            drafts.extend(reconcile(core, &host_id, report, None));
        }
        for report in &sorted.unknown_app {
            // An app the controller has never heard of: its state may have been lost.
            // Removing running containers on a guess is worse than leaving them.
            log::warn!("{host_id} runs {} of unknown app {}; leaving it alone", report.id, report.app);
        }
        // Containers the controller no longer has: adopted back while their app is short
        // of them, else really replaced (e.g. while their host was lost).
        let (adopted, remove) = orphans_decided(core, &host_id, &sorted);
        drafts.extend(adopted);
        drafts.extend(missing_instances(core, &host_id, &hb.instances));
        (drafts, remove)
    });
    // The agent only ever holds instances the controller gave it, so removing those the
    // controller does not want is safe.
    for id in orphans {
        if ctl.fenced() {
            break;
        }
        log::info!("asking {host_id} to remove {id}, which the controller no longer has");
        let req = InstanceRef { id, operation_id: None };
        let _ = ctl.ask_agent::<_, crate::protocol::AgentAck>(&host_id, AgentVerb::Remove, req).await;
    }
}

/// How long a removal the controller asked for stands before a container still reported
/// is judged again (the agent may have missed the request).
pub(crate) const REMOVAL_GRACE: Duration = Duration::from_secs(30);

/// What becomes of a heartbeat's orphans and superseded containers: the drafts of those
/// adopted back, and the ids to have removed. One decision per container: one whose
/// removal was asked within `REMOVAL_GRACE` is neither adopted back nor asked again.
fn orphans_decided(core: &mut Core, host: &str, sorted: &Sorted<'_>) -> (Vec<Draft>, Vec<String>) {
    let now = Instant::now();
    core.removal_asked.retain(|_, at| now.duration_since(*at) < REMOVAL_GRACE);
    let asked = &core.removal_asked;
    let orphans: Vec<&InstanceReport> =
        sorted.orphans.iter().copied().filter(|r| !asked.contains_key(&r.id)).collect();
    let (adopted, mut remove) = repair::adopt(core, host, &orphans);
    for report in &sorted.superseded {
        if !core.removal_asked.contains_key(&report.id) {
            log::warn!("{host} runs {}, which is now placed on another host; removing it", report.id);
            remove.push(report.id.clone());
        }
    }
    for id in &remove {
        core.removal_asked.insert(id.clone(), now);
    }
    (adopted, remove)
}

/// A heartbeat's instances, sorted by the generation rule: an instance id names one
/// placement, on one host, and is never given to another (`deploy::fresh_instance_id`).
#[derive(Debug, Default)]
struct Sorted<'a> {
    /// Placed on this host: the agent's word on them is taken.
    current: Vec<&'a InstanceReport>,
    /// Of a known app, but no longer in the fleet (replaced or retired while the host was
    /// lost, or left by an operation a controller restart failed): adopted back while the
    /// app is short, else removed.
    orphans: Vec<&'a InstanceReport>,
    /// Placed on another host now: this host's container is superseded, and removed.
    superseded: Vec<&'a InstanceReport>,
    /// Of an app the controller does not know: left alone.
    unknown_app: Vec<&'a InstanceReport>,
}

fn sort_reports<'a>(core: &Core, host: &str, reports: &'a [InstanceReport]) -> Sorted<'a> {
    let mut sorted = Sorted::default();
    for report in reports {
        match core.fleet.instances.get(&report.id) {
            Some(i) if i.host == host => sorted.current.push(report),
            Some(_) => sorted.superseded.push(report),
            None if core.fleet.apps.contains_key(&report.app) => sorted.orphans.push(report),
            None => sorted.unknown_app.push(report),
        }
    }
    sorted
}

/// Updates a host's metrics in place (they carry no revision) and drafts an event when the
/// host is new, changed, or back.
fn host_draft(core: &mut Core, hb: &Heartbeat) -> Option<Draft> {
    let info = &hb.host;
    let now = now_ms();
    let previous = core.fleet.hosts.get_mut(&info.id);
    // An operator's cordon or drain is the controller's, not the agent's: a heartbeat
    // that changes the facts or brings the host back keeps it.
    let schedule = previous.as_ref().map(|h| h.schedule).unwrap_or_default();
    let (kind, message) = match previous {
        Some(h) => {
            h.metrics = hb.metrics.clone();
            h.unmanaged = hb.unmanaged.clone();
            h.last_heartbeat = now;
            // The host was found by this id: equal facts are equal in every field.
            let same = h.info == *info;
            match (h.state, same) {
                (HostState::Up, true) => return None,
                (HostState::Up, false) => (EventKind::HostJoined, format!("{} changed its facts", info.id)),
                (was, _) => (EventKind::HostUp, format!("{} is back (was {})", info.id, was.as_str())),
            }
        }
        None => (
            EventKind::HostJoined,
            format!(
                "{} joined: {} in {}, {} cores, {} MB",
                info.id, info.ip, info.az, info.cpu_cores, info.memory_total_mb
            ),
        ),
    };
    let mut host = hb.host_at(now);
    host.schedule = schedule;
    Some(Draft::new(kind, message).host(info.id.clone()).change(Change::Host(host)))
}

/// Instances the controller placed on this host and saw running, which the agent no longer
/// reports: their containers are gone.
fn missing_instances(core: &Core, host: &str, reported: &[InstanceReport]) -> Vec<Draft> {
    core.instances_on(host)
        .filter(|i| matches!(i.state, InstanceState::Running | InstanceState::Unhealthy))
        .filter(|i| !reported.iter().any(|r| r.id == i.id))
        .map(|i| {
            let mut gone = i.clone();
            gone.state = InstanceState::Crashed;
            Draft::new(EventKind::InstanceCrashed, format!("{} is no longer reported by {host}", i.id))
                .app(i.app.clone())
                .host(host)
                .instance(i.id.clone())
                .change(Change::Instance(gone))
        })
        .collect()
}

fn on_status(ctl: &Controller, st: InstanceStatus) {
    ctl.mutate(|core| {
        if !core.fleet.instances.contains_key(&st.instance.id) {
            return (vec![], ());
        }
        let step = st.step.zip(st.operation_id.as_deref()).map(|(s, op)| Reported {
            name: s,
            op,
            detail: st.detail.as_str(),
            running: st.step_state == Some(StepState::Running),
        });
        (reconcile(core, &st.host, &st.instance, step).into_iter().collect(), ())
    })
}

/// A step an agent reported with an instance's status.
struct Reported<'a> {
    name: crate::protocol::StepName,
    op: &'a str,
    detail: &'a str,
    /// Still under way (a pull's progress), not done.
    running: bool,
}

/// Brings the controller's record of one instance in line with its agent's report. Metrics
/// change in place; a state change (or a reported step) is an event.
fn reconcile(
    core: &mut Core,
    host: &str,
    report: &InstanceReport,
    step: Option<Reported<'_>>,
) -> Option<Draft> {
    let inst = core.fleet.instances.get_mut(&report.id)?;
    if inst.host != host {
        log::warn!("{} reported by {host} but placed on {}", report.id, inst.host);
        return None;
    }
    inst.cpu_pct = report.cpu_pct;
    inst.mem_used_mb = report.mem_used_mb;
    // A report without an address (a redeploy under way) keeps the last one known: the
    // instance's routes still point there, and only with it can they follow the instance
    // to the address it comes back on.
    let (ip, port, endpoint) = if report.ip.is_empty() {
        (inst.ip.clone(), inst.port, inst.endpoint.clone())
    } else {
        (report.ip.clone(), report.port, format!("{}:{}", report.ip, report.port))
    };
    let changed = inst.state != report.state
        || inst.started_at != report.started_at
        || inst.container_id != report.container_id
        || inst.endpoint != endpoint
        || (report.last_exit.is_some() && inst.last_exit != report.last_exit);
    if !changed && step.is_none() {
        return None;
    }
    let inst_endpoint = inst.endpoint.clone();
    let mut updated = inst.clone();
    updated.state = report.state;
    updated.started_at = report.started_at;
    updated.container_id = report.container_id.clone();
    updated.ip = ip;
    updated.port = port;
    updated.endpoint = endpoint;
    // An agent that does not know (restarted, it adopted a running container) keeps the
    // reason the controller has.
    updated.last_exit = report.last_exit.or(inst.last_exit);
    let moved = routes_following(core, &updated.app, &inst_endpoint, &updated.endpoint);
    let app = updated.app.clone();
    let id = updated.id.clone();
    let base = match step {
        Some(Reported { name, op, detail, running }) => {
            let failed = matches!(
                report.state,
                InstanceState::Crashed | InstanceState::Unhealthy | InstanceState::Stopped
            );
            let state = match (failed, running) {
                (true, _) => StepState::Failed,
                (false, true) => StepState::Running,
                (false, false) => StepState::Done,
            };
            step_draft(core, op, name, Some(&id), state, detail)
        }
        None => None,
    };
    let draft = base.unwrap_or_else(|| {
        let kind = if report.state == InstanceState::Crashed {
            EventKind::InstanceCrashed
        } else {
            EventKind::InstanceState
        };
        let message = match (report.state, report.last_exit) {
            // Only an exit of the run that just ended is its reason.
            (InstanceState::Crashed, Some(exit)) if report.started_at.is_none_or(|s| exit.at >= s) => {
                format!("{id} crashed: {}", exit.reason())
            }
            (state, _) => format!("{id} is {}", state.as_str()),
        };
        Draft::new(kind, message).app(app.clone())
    });
    let draft = draft.host(host).instance(id).change(Change::Instance(updated));
    Some(moved.into_iter().fold(draft, Draft::change))
}

/// An instance that comes back on a new address (its agent redeployed it: a restart of an
/// instance the agent no longer had, after its container was lost) takes its routes along,
/// keeping each route's state and weight. Done here, where every report of an address
/// arrives, so no path that moves an instance can leave its route behind: the old backend
/// would go stale and the new one would get no traffic, an outage that never heals.
fn routes_following(core: &Core, app: &str, old: &str, new: &str) -> Vec<Change> {
    if old.is_empty() || new.is_empty() || old == new {
        return Vec::new();
    }
    let key = |backend: &str| (app.to_string(), backend.to_string());
    // A route already at the new address (an operator's) is left as it is.
    if core.fleet.routes.contains_key(&key(new)) {
        return Vec::new();
    }
    let Some(route) = core.fleet.routes.get(&key(old)) else { return Vec::new() };
    let moved = Route { backend: new.to_string(), stale: false, ..route.clone() };
    vec![Change::RouteRemoved { app: app.to_string(), backend: old.to_string() }, Change::Route(moved)]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bus::{Bus, LocalBus};
    use crate::plane::controller::ControllerConfig;
    use crate::plane::controller::store::MemoryStore;

    fn ids(reports: &[&InstanceReport]) -> Vec<String> {
        reports.iter().map(|r| r.id.clone()).collect()
    }

    /// A cordon is the controller's: neither a heartbeat that brings the host back nor
    /// one with changed facts opens the host again.
    #[test]
    fn a_heartbeat_keeps_the_host_s_cordon() {
        use crate::protocol::{HostSchedule, HostState};
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let id = fleet.hosts.keys().next().cloned().expect("a host");
        let host = fleet.hosts.get_mut(&id).expect("the host");
        host.schedule = HostSchedule::Draining { done: 1, total: 3 };
        host.state = HostState::Stale;
        let info = host.info.clone();
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let beat = |info: crate::protocol::HostInfo| Heartbeat {
            host: info,
            metrics: Default::default(),
            instances: vec![],
            period_ms: 2000,
            unmanaged: vec![],
        };
        let mut changed = info.clone();
        changed.agent_version = "newer".into();
        for hb in [beat(info), beat(changed)] {
            let draft = ctl.mutate(|core| {
                let d = host_draft(core, &hb);
                (d.clone().into_iter().collect(), d)
            });
            assert!(draft.is_some(), "back, then changed facts: one event each");
            ctl.read(|core| {
                let h = &core.fleet.hosts[&id];
                assert_eq!(h.state, HostState::Up);
                assert_eq!(h.schedule, HostSchedule::Draining { done: 1, total: 3 }, "{h:?}");
            });
        }
    }

    /// A host heard again after a partition runs: one instance still placed on it, one the
    /// controller placed on another host since under the same id, one retired while it
    /// was lost, and one of an app the controller does not know.
    #[test]
    fn a_returning_host_s_reports_are_sorted_by_where_their_instance_is_placed_now() {
        let (fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let mut on_host = fleet.instances.values().map(|i| i.host.clone()).collect::<Vec<_>>();
        on_host.sort();
        let host = on_host[0].clone();
        let mine =
            fleet.instances.values().find(|i| i.host == host).cloned().expect("an instance on the host");
        let elsewhere =
            fleet.instances.values().find(|i| i.host != host).cloned().expect("an instance on another host");
        let retired = InstanceReport { id: format!("{}-retired", mine.id), ..InstanceReport::of(&mine) };
        let stranger =
            InstanceReport { id: "ghost-0-aaaa".into(), app: "ghost".into(), ..InstanceReport::of(&mine) };
        let reports = vec![
            InstanceReport::of(&mine),
            InstanceReport::of(&elsewhere),
            retired.clone(),
            stranger.clone(),
        ];

        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let sorted = ctl.read(|core| {
            let s = sort_reports(core, &host, &reports);
            (ids(&s.current), ids(&s.orphans), ids(&s.superseded), ids(&s.unknown_app))
        });
        assert_eq!(sorted.0, vec![mine.id], "current");
        assert_eq!(sorted.1, vec![retired.id], "orphans");
        assert_eq!(sorted.2, vec![elsewhere.id], "superseded: placed on {} now", elsewhere.host);
        assert_eq!(sorted.3, vec![stranger.id], "of an unknown app");
    }

    /// The agent redeployed an instance it had lost (a restart it did not know of), and it
    /// serves on a new port: its route moves with it, state and weight kept, and nothing
    /// is left at the old address. Before, the route stayed behind, went stale, and the
    /// new address never got traffic.
    #[test]
    fn an_instance_reported_on_a_new_address_takes_its_route_along() {
        let (fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let route = fleet.routes.values().find(|r| r.state == crate::protocol::RouteState::Disabled).cloned();
        let route = route.or_else(|| fleet.routes.values().next().cloned()).expect("a route");
        let inst = fleet
            .instances
            .values()
            .find(|i| i.app == route.app && i.endpoint == route.backend)
            .cloned()
            .expect("the route's instance");
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let new_port = inst.port + 1000;
        // Redeployed first (no address yet), then running on the new port.
        let deploying = InstanceReport {
            ip: String::new(),
            state: InstanceState::Deploying,
            started_at: None,
            ..InstanceReport::of(&inst)
        };
        let report = InstanceReport { port: new_port, ..InstanceReport::of(&inst) };
        for r in [&deploying, &report] {
            ctl.mutate(|core| (reconcile(core, &inst.host, r, None).into_iter().collect(), ()));
        }

        let new_backend = format!("{}:{new_port}", inst.ip);
        ctl.read(|core| {
            let now = core.fleet.instances.get(&inst.id).expect("still there");
            assert_eq!(now.endpoint, new_backend);
            let key = |b: &str| (route.app.clone(), b.to_string());
            assert!(!core.fleet.routes.contains_key(&key(&route.backend)), "the old address is gone");
            let moved = core.fleet.routes.get(&key(&new_backend)).expect("the route at the new address");
            assert_eq!((moved.state, moved.weight, moved.stale), (route.state, route.weight, false));
        });
    }

    /// A route an operator already has at the new address stands as it is.
    #[test]
    fn a_route_already_at_the_new_address_is_left_alone() {
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let route = fleet.routes.values().next().cloned().expect("a route");
        let inst = fleet
            .instances
            .values()
            .find(|i| i.app == route.app && i.endpoint == route.backend)
            .cloned()
            .expect("the route's instance");
        let new_backend = format!("{}:{}", inst.ip, inst.port + 1000);
        let theirs = Route { backend: new_backend.clone(), weight: 7, ..route.clone() };
        fleet.routes.insert(theirs.key(), theirs.clone());
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let report = InstanceReport { port: inst.port + 1000, ..InstanceReport::of(&inst) };
        ctl.mutate(|core| (reconcile(core, &inst.host, &report, None).into_iter().collect(), ()));
        ctl.read(|core| {
            assert_eq!(core.fleet.routes.get(&theirs.key()), Some(&theirs));
            assert!(core.fleet.routes.contains_key(&route.key()), "the old one goes stale by the TTL");
        });
    }

    /// The chaos run's race: a container the controller decided to remove (its app was
    /// busy) was still in the host's next heartbeat, sent before the removal, and adopted
    /// back then; the removal took it away, and the controller restarted, redeployed and
    /// moved an instance it had itself had removed. Once asked, the removal stands.
    #[test]
    fn an_orphan_whose_removal_was_asked_is_not_adopted_back_by_a_later_heartbeat() {
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let gone =
            fleet.instances.values().find(|i| i.state == InstanceState::Running).cloned().expect("one");
        fleet.instances.remove(&gone.id);
        let report = InstanceReport::of(&gone);
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let reports = [report];
        let decide = || {
            ctl.mutate(|core| {
                let sorted = sort_reports(core, &gone.host, &reports);
                let (adopted, remove) = orphans_decided(core, &gone.host, &sorted);
                (vec![], (adopted.len(), remove))
            })
        };
        // Short of it and not busy: adopted back.
        assert_eq!(decide(), (1, vec![]));
        ctl.mutate(|core| {
            core.fleet.instances.remove(&gone.id);
            core.removal_asked.insert(gone.id.clone(), Instant::now());
            (vec![], ())
        });
        assert_eq!(decide(), (0, vec![]), "neither adopted back nor asked again");
        ctl.mutate(|core| {
            core.removal_asked.insert(gone.id.clone(), Instant::now() - REMOVAL_GRACE);
            (vec![], ())
        });
        assert_eq!(decide(), (1, vec![]), "judged again after the grace");
    }
}
