//! Cordon, drain and uncordon a host (`qd.v1.ctl.<user>.host.*`). A cordoned host gets no
//! new placement (the scheduler's rule). A drain cordons the host, then moves its instances
//! one at a time as a rolling replacement: the new instance healthy and routed, and every
//! router showing it, before the old one is unrouted, then (once the routers no longer
//! send to it) stopped. Refused up front, before anything changes, when the rest of the
//! fleet cannot hold the host's instances (`drain_plan`).

use std::collections::HashSet;
use std::time::Duration;

use super::core::{Controller, Core, Draft};
use super::deploy::{retire, start_instance, unroute};
use super::ops;
use super::scheduler::{PlacementRequest, place_with};
use crate::protocol::drain_plan::{self, DrainRefused};
use crate::protocol::subjects::HostVerb;
use crate::protocol::{
    Accepted, Change, ErrorCode, EventKind, Fleet, HostRequest, HostSchedule, Instance, OperationKind,
    OperationState, WireError, validate,
};

/// Runs a host command: cordon and uncordon at once, a drain as an operation.
pub(crate) fn host_command(
    ctl: &Controller,
    verb: HostVerb,
    req: HostRequest,
    command_id: &str,
) -> Result<Accepted, WireError> {
    validate::name("host", &req.host).map_err(WireError::bad_request)?;
    match verb {
        HostVerb::Cordon => set_schedule(ctl, &req.host, HostSchedule::Cordoned),
        HostVerb::Uncordon => set_schedule(ctl, &req.host, HostSchedule::Open),
        HostVerb::Drain => start_drain(ctl, &req.host, command_id),
    }
}

/// Cordons or uncordons; a host already so is left as it is (accepted, no event). A
/// draining host refuses both: the drain decides, and ends cordoned.
fn set_schedule(ctl: &Controller, host: &str, to: HostSchedule) -> Result<Accepted, WireError> {
    ctl.mutate(|core| {
        let Some(h) = core.fleet.hosts.get(host) else {
            return (vec![], Err(unknown_host(host)));
        };
        if let HostSchedule::Draining { .. } = h.schedule {
            return (vec![], Err(draining(core, host, h.schedule)));
        }
        let rev = core.fleet.revision;
        if h.schedule == to {
            return (vec![], Ok(Accepted { operation_id: None, rev }));
        }
        let (kind, why) = match to {
            HostSchedule::Open => (EventKind::HostUncordoned, "takes new instances again"),
            _ => (EventKind::HostCordoned, "cordoned: no new instance is placed there"),
        };
        let draft = schedule_draft(h.clone(), to, kind, format!("{host} {why}"), None);
        (vec![draft], Ok(Accepted { operation_id: None, rev: rev + 1 }))
    })
}

fn unknown_host(host: &str) -> WireError {
    WireError::not_found(format!("no host {}", validate::quoted(host)))
}

/// Refuses a second drain, a cordon or an uncordon while a drain runs, naming it.
fn draining(core: &Core, host: &str, schedule: HostSchedule) -> WireError {
    let op = core
        .fleet
        .operations
        .values()
        .find(|o| o.kind == OperationKind::Drain && o.state == OperationState::Running && drains(o, host))
        .map(|o| format!(" (operation {})", o.id))
        .unwrap_or_default();
    WireError::new(
        ErrorCode::Conflict,
        format!(
            "host {host} is {}{op}: wait for the drain to end (it leaves the host cordoned)",
            schedule.label()
        ),
    )
}

/// A drain's target, in words: `host h1 (3 instance(s))`. Host-wide work, so the
/// operation's app is `-`, as a host's restart's is.
fn drain_target(host: &str, total: u32) -> String {
    format!("host {host} ({total} instance(s))")
}

/// Whether `op` drains `host` (by its target, which `drain_target` wrote).
fn drains(op: &crate::protocol::Operation, host: &str) -> bool {
    op.target.strip_prefix("host ").and_then(|t| t.strip_prefix(host)).is_some_and(|t| t.starts_with(" ("))
}

/// The draft that moves `host` to `schedule`.
fn schedule_draft(
    mut host: crate::protocol::Host,
    schedule: HostSchedule,
    kind: EventKind,
    message: String,
    op_id: Option<&str>,
) -> Draft {
    host.schedule = schedule;
    Draft::new(kind, message).host(host.info.id.clone()).op(op_id).change(Change::Host(host))
}

/// Checks the whole drain fits, then cordons the host and opens the operation, in one
/// decision: nothing changes when it is refused.
fn start_drain(ctl: &Controller, host: &str, command_id: &str) -> Result<Accepted, WireError> {
    let started = ctl.mutate(|core| {
        let Some(h) = core.fleet.hosts.get(host).cloned() else {
            return (vec![], Err(unknown_host(host)));
        };
        if let HostSchedule::Draining { .. } = h.schedule {
            return (vec![], Err(draining(core, host, h.schedule)));
        }
        let moves = match drain_plan::plan(&core.fleet, host) {
            Ok(moves) => moves,
            Err(refused) => return (vec![], Err(refusal(&refused))),
        };
        let busy: Option<String> = moves.iter().find_map(|m| {
            core.fleet
                .operations
                .values()
                .find(|o| o.app == m.app && o.state == OperationState::Running)
                .map(|o| format!("app {} is busy with operation {}; drain once it has ended", m.app, o.id))
        });
        if let Some(why) = busy {
            return (vec![], Err(WireError::new(ErrorCode::Conflict, why)));
        }
        let total = moves.len() as u32;
        let (op_id, opened) =
            ops::open(OperationKind::Drain, "-", drain_target(host, total), Some(command_id));
        let schedule = HostSchedule::Draining { done: 0, total };
        let cordon = schedule_draft(
            h,
            schedule,
            EventKind::HostDraining,
            format!("{host} cordoned, draining {total} instance(s)"),
            Some(&op_id),
        );
        let rev = core.fleet.revision + 2;
        (vec![opened, cordon], Ok((op_id, rev, total)))
    });
    let (op_id, rev, total) = started?;
    ctl.spawn(run_drain(ctl.clone(), op_id.clone(), host.to_string(), total));
    Ok(Accepted { operation_id: Some(op_id), rev })
}

fn refusal(refused: &DrainRefused) -> WireError {
    let code = match refused {
        DrainRefused::UnknownHost(_) => ErrorCode::NotFound,
        DrainRefused::NoRoom { .. } => ErrorCode::NoCapacity,
        DrainRefused::NotUp { .. } | DrainRefused::UnknownApp { .. } => ErrorCode::Conflict,
    };
    WireError::new(code, refused.to_string())
}

/// A drain gives up on a host whose instances keep coming back after this many moves
/// beyond its plan (an agent adopting containers back, say), rather than loop.
const EXTRA_MOVES: u32 = 16;

async fn run_drain(ctl: Controller, op_id: String, host: String, planned: u32) {
    let mut done = 0u32;
    let outcome = loop {
        let next = ctl.read(|core| {
            let left = drain_plan::on_host(&core.fleet, &host);
            left.first().map(|i| ((*i).clone(), left.len() as u32))
        });
        let Some((old, left)) = next else {
            break Ok(format!("moved {done} instance(s) off {host}; it is cordoned"));
        };
        if done >= planned + EXTRA_MOVES {
            break Err(format!("{host} still has {left} instance(s) after {done} moves; stopped"));
        }
        if let Err(why) = move_one(&ctl, &op_id, &host, &old).await {
            break Err(format!("drain of {host} stopped after {done} move(s): {why}"));
        }
        done += 1;
        let total = planned.max(done + left - 1);
        progress(&ctl, &op_id, &host, HostSchedule::Draining { done, total }, format!("moved {}", old.id));
    };
    let end = match &outcome {
        Ok(_) => "drained, no instance left".to_string(),
        Err(_) => "the drain failed; it stays cordoned".to_string(),
    };
    progress(&ctl, &op_id, &host, HostSchedule::Cordoned, end);
    ctl.finish(&op_id, outcome);
}

/// Moves the host to `schedule`, unless it is no longer known.
fn progress(ctl: &Controller, op_id: &str, host: &str, schedule: HostSchedule, what: String) {
    ctl.mutate(|core| {
        let Some(h) = core.fleet.hosts.get(host).cloned() else { return (vec![], ()) };
        let kind = match schedule {
            HostSchedule::Cordoned => EventKind::HostCordoned,
            _ => EventKind::HostDraining,
        };
        let message = format!("{host} {}: {what}", schedule.label());
        (vec![schedule_draft(h, schedule, kind, message, Some(op_id))], ())
    });
}

/// How long a drain waits for the routers to show a route change.
const ROUTER_WAIT: Duration = Duration::from_secs(30);

/// Replaces `old` elsewhere, then takes it out: routes first, then its container.
async fn move_one(ctl: &Controller, op_id: &str, host: &str, old: &Instance) -> Result<(), String> {
    let Some(app) = ctl.read(|core| core.fleet.apps.get(&old.app).cloned()) else {
        // Nothing to replace it with; it only goes.
        retire(ctl, op_id, old, true).await;
        return Ok(());
    };
    let to = ctl.read(|core| {
        // Placed as if the old one were gone, so the AZ spread it keeps is the app's
        // without it; the drained host is cordoned, and left out besides.
        let mut usage = core.usage.clone();
        usage.remove(old);
        let exclude = [host.to_string()];
        let req =
            PlacementRequest { app: &app.name, count: 1, constraints: &app.constraints, exclude: &exclude };
        place_with(&core.fleet, &req, &usage).map(|hosts| hosts.into_iter().next().unwrap_or_default())
    });
    let to = to.map_err(|e| format!("no room for {}'s replacement: {e}", old.id))?;
    // The one placement path places it: on that host and no other.
    let others: Vec<String> =
        ctl.read(|core| core.fleet.hosts.keys().filter(|h| **h != to).cloned().collect());
    let new_id = start_instance(ctl, op_id, &app, old.index, &others).await?;
    ctl.routers_applied(ctl.revision(), ROUTER_WAIT)
        .await
        .map_err(|e| format!("{new_id} runs on {to}, but {e}; {} keeps serving", old.id))?;
    if let Some(rev) = unroute(ctl, op_id, old)
        && let Err(e) = ctl.routers_applied(rev, super::router_wait::APPLY_WAIT).await
    {
        // Its route is out of the desired state already; nginx retries a backend that
        // goes away on the next one (`proxy_next_upstream`).
        log::warn!("drain of {host}: {e}; removing {} anyway", old.id);
    }
    retire(ctl, op_id, old, true).await;
    Ok(())
}

/// Apps with an instance on a draining host: while one is moved the app runs one over
/// its count, which the health manager must not trim.
pub(crate) fn apps_being_moved(fleet: &Fleet) -> HashSet<&str> {
    let draining: HashSet<&str> = fleet
        .hosts
        .values()
        .filter(|h| matches!(h.schedule, HostSchedule::Draining { .. }))
        .map(|h| h.info.id.as_str())
        .collect();
    if draining.is_empty() {
        return HashSet::new();
    }
    fleet.instances.values().filter(|i| draining.contains(i.host.as_str())).map(|i| i.app.as_str()).collect()
}

/// The running drain that will move an instance of `app`, if any: a deploy of that app
/// waits for it, as for any operation of the app.
pub(crate) fn moving(fleet: &Fleet, app: &str) -> Option<String> {
    let hosts: HashSet<&str> = fleet.instances_of(app).map(|i| i.host.as_str()).collect();
    fleet
        .operations
        .values()
        .filter(|o| o.kind == OperationKind::Drain && o.state == OperationState::Running)
        .find(|o| hosts.iter().any(|h| drains(o, h)))
        .map(|o| o.id.clone())
}

/// At start, after `repair::recover` failed what a previous controller left running: a
/// host it was draining stays cordoned (an operator runs the drain again).
pub(crate) fn recover(core: &mut Core) -> Vec<Draft> {
    core.fleet
        .hosts
        .values()
        .filter(|h| matches!(h.schedule, HostSchedule::Draining { .. }))
        .map(|h| {
            let message = format!("{} stays cordoned: the controller restarted during its drain", h.info.id);
            schedule_draft(h.clone(), HostSchedule::Cordoned, EventKind::HostCordoned, message, None)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::bus::{Bus, LocalBus};
    use crate::plane::controller::ControllerConfig;
    use crate::plane::controller::store::MemoryStore;

    /// A controller on the fixture fleet, with no agent: a drain it starts stays draining
    /// (its first move waits for an agent) while the test looks.
    fn controller() -> Controller {
        let (fleet, _) = crate::plane::fixture::fixture(3, 4, 0);
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        Controller::new(bus, ControllerConfig::default(), fleet, store, None).0
    }

    fn req(host: &str) -> HostRequest {
        HostRequest { host: host.into() }
    }

    fn schedule(ctl: &Controller, host: &str) -> HostSchedule {
        ctl.read(|core| core.fleet.hosts[host].schedule)
    }

    #[tokio::test]
    async fn cordon_and_uncordon_change_the_host_and_a_repeat_changes_nothing() {
        let ctl = controller();
        let host = ctl.read(|core| core.fleet.hosts.keys().next().cloned().expect("a host"));
        let rev = ctl.revision();
        host_command(&ctl, HostVerb::Cordon, req(&host), "c1").expect("cordoned");
        assert_eq!(schedule(&ctl, &host), HostSchedule::Cordoned);
        assert_eq!(ctl.revision(), rev + 1, "one event");
        host_command(&ctl, HostVerb::Cordon, req(&host), "c2").expect("again: accepted");
        assert_eq!(ctl.revision(), rev + 1, "and nothing changed");
        host_command(&ctl, HostVerb::Uncordon, req(&host), "c3").expect("uncordoned");
        assert_eq!(schedule(&ctl, &host), HostSchedule::Open);
        let err = host_command(&ctl, HostVerb::Cordon, req("nope"), "c4").unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        let err = host_command(&ctl, HostVerb::Drain, req("Bad Name"), "c5").unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest, "{err:?}");
    }

    /// Uncordon (or cordon, or a second drain) while a drain runs is refused, naming the
    /// drain: the drain decides, and leaves the host cordoned.
    #[tokio::test]
    async fn a_draining_host_refuses_uncordon_cordon_and_a_second_drain() {
        let ctl = controller();
        let host = ctl.read(|core| {
            let mut with: Vec<String> =
                core.fleet.hosts.keys().filter(|h| core.instances_on(h).next().is_some()).cloned().collect();
            with.sort();
            with.into_iter().next().expect("a host with instances")
        });
        let accepted = host_command(&ctl, HostVerb::Drain, req(&host), "d1").expect("the drain starts");
        let op = accepted.operation_id.expect("an operation");
        assert!(matches!(schedule(&ctl, &host), HostSchedule::Draining { done: 0, .. }));
        for verb in [HostVerb::Uncordon, HostVerb::Cordon, HostVerb::Drain] {
            let err = host_command(&ctl, verb, req(&host), "d2").unwrap_err();
            assert_eq!(err.code, ErrorCode::Conflict, "{verb:?}");
            assert!(err.reason.contains("draining") && err.reason.contains(&op), "{verb:?}: {}", err.reason);
        }
        // The apps on the host are being moved: the health manager does not trim them.
        let moved = ctl
            .read(|core| apps_being_moved(&core.fleet).into_iter().map(str::to_string).collect::<Vec<_>>());
        assert!(!moved.is_empty());
        for app in &moved {
            assert_eq!(
                ctl.read(|core| moving(&core.fleet, app)),
                Some(op.clone()),
                "a deploy of {app} waits"
            );
        }
        // A controller started on this state finds the drain gone: the host stays cordoned.
        let fleet = ctl.read(|core| core.fleet.clone());
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let next = Controller::new(bus, ControllerConfig::default(), fleet, store, None).0;
        next.mutate(|core| (recover(core), ()));
        assert_eq!(schedule(&next, &host), HostSchedule::Cordoned);
        ctl.abort();
    }
}
