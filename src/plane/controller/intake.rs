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
    Change, EventKind, Heartbeat, Host, HostState, InstanceRef, InstanceReport, InstanceState,
    InstanceStatus, StepState, decode,
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
        for report in sorted.current {
            drafts.extend(reconcile(core, &host_id, report, None));
        }
        for report in sorted.unknown_app {
            // An app the controller has never heard of: its state may have been lost.
            // Removing running containers on a guess is worse than leaving them.
            log::warn!("{host_id} runs {} of unknown app {}; leaving it alone", report.id, report.app);
        }
        // Containers the controller no longer has: adopted back while their app is short
        // of them, else really replaced (e.g. while their host was lost).
        let (adopted, mut remove) = repair::adopt(core, &host_id, &sorted.orphans);
        drafts.extend(adopted);
        drafts.extend(missing_instances(core, &host_id, &hb.instances));
        for report in &sorted.superseded {
            log::warn!("{host_id} runs {}, which is now placed on another host; removing it", report.id);
            remove.push(report.id.clone());
        }
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
    let (kind, message) = match previous {
        Some(h) => {
            h.metrics = hb.metrics.clone();
            h.unmanaged = hb.unmanaged.clone();
            h.last_heartbeat = now;
            let same = h.hostname == info.hostname
                && h.ip == info.ip
                && h.az == info.az
                && h.tags == info.tags
                && h.cpu_cores == info.cpu_cores
                && h.memory_total_mb == info.memory_total_mb
                && h.agent_version == info.agent_version
                && h.warnings == info.warnings;
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
    let host = Host {
        id: info.id.clone(),
        hostname: info.hostname.clone(),
        ip: info.ip.clone(),
        az: info.az.clone(),
        tags: info.tags.clone(),
        cpu_cores: info.cpu_cores,
        memory_total_mb: info.memory_total_mb,
        agent_version: info.agent_version.clone(),
        last_heartbeat: now,
        state: HostState::Up,
        metrics: hb.metrics.clone(),
        warnings: info.warnings.clone(),
        unmanaged: hb.unmanaged.clone(),
    };
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
    let endpoint =
        if report.ip.is_empty() { String::new() } else { format!("{}:{}", report.ip, report.port) };
    let changed = inst.state != report.state
        || inst.started_at != report.started_at
        || inst.container_id != report.container_id
        || inst.endpoint != endpoint
        || (report.last_exit.is_some() && inst.last_exit != report.last_exit);
    if !changed && step.is_none() {
        return None;
    }
    let mut updated = inst.clone();
    updated.state = report.state;
    updated.started_at = report.started_at;
    updated.container_id = report.container_id.clone();
    updated.ip = report.ip.clone();
    updated.port = report.port;
    updated.endpoint = endpoint;
    // An agent that does not know (restarted, it adopted a running container) keeps the
    // reason the controller has.
    updated.last_exit = report.last_exit.or(inst.last_exit);
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
    Some(draft.host(host).instance(id).change(Change::Instance(updated)))
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
}
