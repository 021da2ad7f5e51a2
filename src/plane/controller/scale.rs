//! Scale (`ctl.scale`) and app removal (`ctl.app.remove`): operations of kind `scale`.
//!
//! A scale changes only the app's instance count. Up: only the new instances are placed,
//! by the one scheduler (same constraints, AZ spread), each started, healthy and routed
//! as a deploy's (`deploy::start_instance`). Down: the victims are chosen to keep the AZ
//! spread (`victims`); their routes go first, and once the routers have applied that, each
//! is retired as a deploy retires one (`deploy::retire`). Scaling to 0 keeps the app;
//! removing it retires every instance the same way, then drops its routes and the app.

use std::collections::HashMap;

use futures_util::future::join_all;

use super::core::{Controller, Core, Draft};
use super::deploy;
use super::ops;
use crate::protocol::deploy_plan::free_indexes;
use crate::protocol::release::Cause;
use crate::protocol::{
    Accepted, AppRemoveRequest, AppSpec, Change, ErrorCode, EventKind, Fleet, HostState, Instance,
    InstanceState, OperationKind, OperationState, ScaleRequest, WireError, validate,
};

/// `ctl.scale`: checks the request, opens the operation with the app's new desired count
/// (durable before the reply), and starts it.
pub(crate) fn start_scale(
    ctl: &Controller,
    req: ScaleRequest,
    command_id: &str,
    user: &str,
) -> Result<Accepted, WireError> {
    validate::name("app", &req.app).map_err(WireError::bad_request)?;
    validate::scale_instances(req.instances).map_err(WireError::bad_request)?;
    let started = ctl.mutate(|core| {
        let app = match scalable(core, &req.app, true) {
            Ok(app) => app.clone(),
            Err(e) => return (vec![], Err(e)),
        };
        if app.instances == req.instances {
            let placed = core.fleet.instances_of(&app.name).count();
            let why = format!(
                "{} already has {} instance(s) desired ({placed} placed): nothing to scale",
                app.name, app.instances
            );
            return (vec![], Err(WireError::bad_request(why)));
        }
        let from = app.instances;
        let target = format!("{} x{from} -> x{}", app.name, req.instances);
        let (op_id, opened) = ops::open(OperationKind::Scale, &app.name, target, Some(command_id));
        let (spec, committed) = scaled_spec(&app, req.instances, &op_id);
        let rev = core.fleet.revision + 2;
        (vec![opened, committed], Ok((op_id, spec, from, rev)))
    });
    let (op_id, spec, from, rev) = started?;
    super::releases::record(ctl, &spec, user, Some(&op_id), Cause::Scale);
    ctl.spawn(run_scale(ctl.clone(), op_id.clone(), spec, from));
    Ok(Accepted { operation_id: Some(op_id), rev })
}

/// `ctl.app.remove`: an operation of kind `scale` that takes the app to 0 and then removes
/// it.
pub(crate) fn start_app_remove(
    ctl: &Controller,
    req: AppRemoveRequest,
    command_id: &str,
) -> Result<Accepted, WireError> {
    validate::name("app", &req.app).map_err(WireError::bad_request)?;
    let started = ctl.mutate(|core| {
        let app = match scalable(core, &req.app, false) {
            Ok(app) => app.clone(),
            Err(e) => return (vec![], Err(e)),
        };
        let target = format!("remove {}", app.name);
        let (op_id, opened) = ops::open(OperationKind::Scale, &app.name, target, Some(command_id));
        // Desired 0 first: whatever happens next, nothing places its instances again.
        let (spec, committed) = scaled_spec(&app, 0, &op_id);
        let rev = core.fleet.revision + 2;
        (vec![opened, committed], Ok((op_id, spec, rev)))
    });
    let (op_id, spec, rev) = started?;
    ctl.spawn(run_remove(ctl.clone(), op_id.clone(), spec));
    Ok(Accepted { operation_id: Some(op_id), rev })
}

/// The app a scale or removal may act on: it exists and no operation runs on it. A scale,
/// as a deploy, may run beside the health manager's repair (`also_beside_repair`); a
/// removal never does.
fn scalable<'a>(core: &'a Core, name: &str, also_beside_repair: bool) -> Result<&'a AppSpec, WireError> {
    let Some(app) = core.fleet.apps.get(name) else {
        return Err(WireError::not_found(format!("no app {}", validate::quoted(name))));
    };
    let busy = core.fleet.operations.values().find(|o| {
        o.app == name
            && o.state == OperationState::Running
            && !(also_beside_repair && o.kind == OperationKind::Replace)
    });
    if let Some(op) = busy {
        return Err(WireError::new(
            ErrorCode::Conflict,
            format!("{name} is busy with operation {}; wait for it to finish", op.id),
        ));
    }
    Ok(app)
}

/// The one place a scale commits an app's new spec: the same spec with `instances`
/// desired, as an `APP_UPDATED` event of the operation. (Releases are recorded here.)
pub(crate) fn scaled_spec(app: &AppSpec, instances: u32, op_id: &str) -> (AppSpec, Draft) {
    let mut spec = app.clone();
    spec.instances = instances;
    let draft = Draft::new(
        EventKind::AppUpdated,
        format!("desired {}@{} x{instances} (was x{})", spec.name, spec.version, app.instances),
    )
    .app(spec.name.clone())
    .op(Some(op_id))
    .change(Change::App(spec.clone()));
    (spec, draft)
}

async fn run_scale(ctl: Controller, op_id: String, app: AppSpec, from: u32) {
    let outcome = scale(&ctl, &op_id, &app).await;
    let outcome = outcome.map(|()| format!("{} scaled from x{from} to x{}", app.name, app.instances));
    ctl.finish(&op_id, outcome);
}

/// Brings the app's instances to its desired count: the missing ones placed and started
/// side by side, or the extra ones retired, their routes first (`retire_routes_first`).
async fn scale(ctl: &Controller, op_id: &str, app: &AppSpec) -> Result<(), String> {
    let (indexes, gone) = ctl.read(|core| {
        let mine: Vec<&Instance> = core.fleet.instances_of(&app.name).collect();
        let have = mine.len();
        let want = app.instances as usize;
        let used: Vec<u32> = mine.iter().map(|i| i.index).collect();
        let indexes = free_indexes(&used, want.saturating_sub(have));
        (indexes, victims(&core.fleet, app, have.saturating_sub(want)))
    });
    let started =
        join_all(indexes.iter().map(|&index| deploy::start_instance(ctl, op_id, app, index, &[]))).await;
    let errors: Vec<String> = started.into_iter().filter_map(Result::err).collect();
    retire_routes_first(ctl, op_id, &gone).await;
    match errors.is_empty() {
        true => Ok(()),
        false => Err(errors.join("; ")),
    }
}

/// Retires `victims`: every route first, then, once every live router has applied the
/// last removal (one nginx reload for them all), their containers, as a deploy retires
/// one. No request goes to a stopping instance.
async fn retire_routes_first(ctl: &Controller, op_id: &str, victims: &[Instance]) {
    ctl.room().await;
    let last = victims.iter().filter_map(|v| deploy::unroute(ctl, op_id, v)).max();
    if let Some(rev) = last
        && let Err(late) = ctl.routers_applied(rev, super::router_wait::APPLY_WAIT).await
    {
        log::warn!("{op_id}: stopping the instances anyway: {late}");
    }
    // Out of every load balancer now: their containers go side by side.
    join_all(victims.iter().map(|victim| deploy::retire(ctl, op_id, victim, true))).await;
}

async fn run_remove(ctl: Controller, op_id: String, app: AppSpec) {
    let gone = ctl.read(|core| victims(&core.fleet, &app, usize::MAX));
    retire_routes_first(&ctl, &op_id, &gone).await;
    // Routes without an instance (added by hand, or left by a lost host) go with the app;
    // the app goes last, once nothing of it is left.
    ctl.mutate(|core| {
        let mut drafts: Vec<Draft> = core
            .fleet
            .routes
            .values()
            .filter(|r| r.app == app.name)
            .map(|r| {
                Draft::new(EventKind::RouteRemoved, format!("{} -x- {} (app removed)", r.domain, r.backend))
                    .app(app.name.clone())
                    .op(Some(&op_id))
                    .change(Change::RouteRemoved { app: r.app.clone(), backend: r.backend.clone() })
            })
            .collect();
        let left = core.fleet.instances_of(&app.name).count();
        if left == 0 {
            drafts.push(
                Draft::new(EventKind::AppUpdated, format!("app {} removed", app.name))
                    .app(app.name.clone())
                    .op(Some(&op_id))
                    .change(Change::AppRemoved { name: app.name.clone() }),
            );
        }
        (drafts, ())
    });
    let left = ctl.read(|core| core.fleet.apps.contains_key(&app.name));
    let outcome = match left {
        false => Ok(format!("app {} removed ({} instance(s) retired)", app.name, gone.len())),
        true => Err(format!("{} still has instances; kept with 0 desired", app.name)),
    };
    ctl.finish(&op_id, outcome);
}

/// The `n` instances of `app` a scale-down retires, in order. Those that serve nothing go
/// first (not running: crashed, unhealthy, still starting; or on a host that is not up),
/// then those outside the app's allowed AZs, then each time one from the AZ holding the
/// most of what is left, from its host holding the most, the highest index first: an even
/// AZ spread stays even at every step.
pub(crate) fn victims(fleet: &Fleet, app: &AppSpec, n: usize) -> Vec<Instance> {
    let az_of = |i: &Instance| fleet.hosts.get(&i.host).map(|h| h.info.az.clone()).unwrap_or_default();
    let mut left: Vec<(&Instance, String)> = fleet.instances_of(&app.name).map(|i| (i, az_of(i))).collect();
    let mut per_az: HashMap<String, usize> = HashMap::new();
    let mut per_host: HashMap<&str, usize> = HashMap::new();
    for (i, az) in &left {
        *per_az.entry(az.clone()).or_default() += 1;
        *per_host.entry(i.host.as_str()).or_default() += 1;
    }
    let allowed = |az: &str| app.constraints.azs.is_empty() || app.constraints.azs.iter().any(|a| a == az);
    // An instance on a host that is not up serves nothing anyone can vouch for.
    let host_up = |i: &Instance| fleet.hosts.get(&i.host).is_some_and(|h| h.state == HostState::Up);
    let mut out = Vec::with_capacity(n.min(left.len()));
    while out.len() < n {
        let pick = left
            .iter()
            .enumerate()
            .max_by_key(|(_, (i, az))| {
                (
                    i.state != InstanceState::Running || !host_up(i),
                    !allowed(az),
                    per_az.get(az).copied().unwrap_or(0),
                    per_host.get(i.host.as_str()).copied().unwrap_or(0),
                    i.index,
                    // Ties by id, the last first, so the choice never depends on map order.
                    i.id.as_str(),
                )
            })
            .map(|(k, _)| k);
        let Some(k) = pick else { break };
        let (victim, az) = left.swap_remove(k);
        if let Some(c) = per_az.get_mut(&az) {
            *c = c.saturating_sub(1);
        }
        if let Some(c) = per_host.get_mut(victim.host.as_str()) {
            *c = c.saturating_sub(1);
        }
        out.push(victim.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Host, HostState};

    fn fleet(hosts: &[(&str, &str)], instances: &[(u32, &str, InstanceState)]) -> (Fleet, AppSpec) {
        let mut f = Fleet::default();
        for (id, az) in hosts {
            let h = Host::for_test(id, az, 8, 8192);
            f.hosts.insert(id.to_string(), h);
        }
        let app = AppSpec {
            port: 80,
            digest: Some("sha256:abc".into()),
            ..AppSpec::for_test("web", instances.len() as u32, 0.5)
        };
        let c = app.constraints.clone();
        let target = crate::protocol::deploy_plan::Target {
            app: "web",
            version: "1",
            instances: app.instances,
            constraints: &c,
            strategy: Default::default(),
        };
        for (index, host, state) in instances {
            let mut i = target.new_instance(format!("web-{index}-0000000{index}"), *index, host, 80);
            i.state = *state;
            f.instances.insert(i.id.clone(), i);
        }
        f.apps.insert("web".into(), app.clone());
        (f, app)
    }

    /// The instances per AZ once `gone` have left, over `azs`.
    fn spread(f: &Fleet, gone: &[Instance], azs: &[&str]) -> Vec<usize> {
        azs.iter()
            .map(|az| {
                f.instances
                    .values()
                    .filter(|i| !gone.iter().any(|g| g.id == i.id))
                    .filter(|i| f.hosts[&i.host].info.az == *az)
                    .count()
            })
            .collect()
    }

    use InstanceState::{Crashed, Running, Starting};

    #[test]
    fn a_scale_down_takes_from_the_fullest_az_and_keeps_the_spread_at_every_step() {
        let hosts = [("a1", "az1"), ("a2", "az1"), ("b1", "az2"), ("c1", "az3")];
        let inst: Vec<(u32, &str, InstanceState)> = vec![
            (0, "a1", Running),
            (1, "a2", Running),
            (2, "a1", Running),
            (3, "b1", Running),
            (4, "c1", Running),
            (5, "c1", Running),
            (6, "b1", Running),
        ];
        let (f, app) = fleet(&hosts, &inst);
        let all = victims(&f, &app, 7);
        assert_eq!(all.len(), 7, "every instance, once");
        for n in 0..=7 {
            let gone = &all[..n];
            let per = spread(&f, gone, &["az1", "az2", "az3"]);
            let (max, min) = (per.iter().max().copied().unwrap_or(0), per.iter().min().copied().unwrap_or(0));
            assert!(max - min <= 1, "after {n}: {per:?}");
        }
        // 3, 2, 2 over the AZs: the first victim is in az1, on a1 (which holds two), the
        // higher index; then 2, 2, 2: from the hosts holding two, the highest index.
        let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
        assert_eq!((all[0].host.as_str(), all[0].index), ("a1", 2), "{ids:?}");
        assert_eq!((all[1].host.as_str(), all[1].index), ("b1", 6), "{ids:?}");
        // Asking for more than there are gives each once.
        assert_eq!(victims(&f, &app, 100).len(), 7);
        assert!(victims(&f, &app, 0).is_empty());
    }

    #[test]
    fn instances_that_serve_nothing_go_first_then_those_outside_the_allowed_azs() {
        let hosts = [("a1", "az1"), ("b1", "az2"), ("c1", "az3")];
        let inst = vec![
            (0, "a1", Running),
            (1, "b1", Crashed),
            (2, "a1", Running),
            (3, "b1", Starting),
            (4, "c1", Running),
            (5, "a1", Running),
        ];
        let (mut f, mut app) = fleet(&hosts, &inst);
        app.constraints.azs = vec!["az1".into(), "az2".into()];
        let order: Vec<u32> = victims(&f, &app, 4).iter().map(|i| i.index).collect();
        // Not running first (the crashed and the starting one, highest index first), then
        // the one in az3, which the app may no longer use, then az1's.
        assert_eq!(order, vec![3, 1, 4, 5]);
        // A running instance on a lost host serves nothing anyone can vouch for: it goes
        // with the ones not running.
        f.hosts.get_mut("a1").expect("a1").state = HostState::Lost;
        let order: Vec<u32> = victims(&f, &app, 4).iter().map(|i| i.index).collect();
        assert_eq!(order, vec![5, 3, 2, 1], "a1's first (3 of them), the highest index first");
    }

    #[test]
    fn the_committed_spec_changes_the_count_only() {
        let (_, app) = fleet(&[("a1", "az1")], &[(0, "a1", Running), (1, "a1", Running)]);
        let (spec, draft) = scaled_spec(&app, 5, "op-1");
        assert_eq!(spec, AppSpec { instances: 5, ..app.clone() });
        assert_eq!(draft.kind, EventKind::AppUpdated);
        assert_eq!(draft.operation_id.as_deref(), Some("op-1"));
        assert_eq!(draft.changes, vec![Change::App(spec.clone())]);
        assert!(draft.message.contains("x5 (was x2)"), "{}", draft.message);
        let (zero, _) = scaled_spec(&app, 0, "op-2");
        assert_eq!((zero.instances, zero.digest.as_deref()), (0, Some("sha256:abc")), "0 keeps the app");
    }
}

#[cfg(test)]
mod routes_first {
    //! A scale-down on a controller over an in-process bus, with a stand-in router: the
    //! victim's container goes only once the router says it applied the route's removal.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use crate::bus::RequestError;
    use crate::bus::{Bus, LocalBus, Subscription};
    use crate::plane::controller::store::MemoryStore;
    use crate::plane::controller::{Controller, ControllerConfig};
    use crate::protocol::clock::now_ms;
    use crate::protocol::deploy_plan::Target;
    use crate::protocol::subjects::{self, CtlVerb};
    use crate::protocol::{
        Accepted, AppRemoveRequest, AppSpec, Envelope, ErrorCode, Event, EventKind, Fleet, Host,
        InstanceState, OperationKind, Route, RouteState, RouterStatus, ScaleRequest, decode,
    };

    /// One host, and `web` with two instances running and routed.
    fn fleet() -> Fleet {
        let mut f = Fleet::default();
        let mut host = Host::for_test("h1", "az1", 8, 8192);
        host.info.ip = "10.0.1.1".into();
        host.last_heartbeat = now_ms();
        f.hosts.insert("h1".into(), host);
        let app = AppSpec::for_test("web", 2, 0.5);
        let target = Target::of(&app, Default::default());
        for index in 0..2u32 {
            let mut i = target.new_instance(format!("web-{index}-0000000{index}"), index, "h1", 8080);
            i.state = InstanceState::Running;
            i.ip = format!("10.0.1.{}", 31 + index);
            i.endpoint = format!("{}:8080", i.ip);
            let route = Route {
                app: "web".into(),
                domain: "web.local".into(),
                backend: i.endpoint.clone(),
                state: RouteState::Enabled,
                weight: 1,
                stale: false,
            };
            f.routes.insert(("web".into(), route.backend.clone()), route);
            f.instances.insert(i.id.clone(), i);
        }
        f.apps.insert("web".into(), app);
        f
    }

    /// A router that reports, every 100 ms, the revision `applied` holds.
    fn stand_in_router(bus: Arc<dyn Bus>, applied: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let status = RouterStatus {
                    id: "r1".into(),
                    generation: 1,
                    last_reload: None,
                    last_error: None,
                    backends: 2,
                    listen: "simulated".into(),
                    revision: applied.load(Ordering::SeqCst),
                    traffic: None,
                };
                let env = Envelope::new("router/r1", status);
                let _ = crate::bus::publish(bus.as_ref(), &subjects::router_status("r1"), &env).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// The next event of `kind`, within 30 s.
    async fn next_of(sub: &mut Subscription, kind: EventKind) -> Event {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), sub.next()).await;
            let Ok(Some(msg)) = next else { panic!("no {kind:?} within 30 s") };
            if let Ok(env) = decode::<Event>(&msg.payload)
                && env.body.kind == kind
            {
                return env.body;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_victim_stops_only_once_the_router_applied_its_route_removal() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let config = ControllerConfig {
            heartbeat_period: Duration::from_millis(100),
            // No agent runs here: the host must not go stale or lost meanwhile.
            stale_after: 100_000,
            lost_after: 200_000,
            agent_timeout: Duration::from_millis(200),
            ..ControllerConfig::default()
        };
        let ctl = Controller::start(bus.clone(), config, fleet(), store, None).await.expect("controller");
        let applied = Arc::new(AtomicU64::new(ctl.revision()));
        let router = stand_in_router(bus.clone(), applied.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while ctl.read(|core| !core.routers_applied.contains_key("r1")) {
            assert!(tokio::time::Instant::now() < deadline, "the router was never heard");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut events = bus.subscribe(subjects::EVT_ALL).await.expect("events");
        let req = Envelope::new("test", ScaleRequest { app: "web".into(), instances: 1 });
        let sent: Accepted = crate::bus::command(bus.as_ref(), CtlVerb::Scale, &req, Duration::from_secs(10))
            .await
            .expect("scale accepted");
        assert!(sent.operation_id.is_some());

        let unrouted = next_of(&mut events, EventKind::RemoveRouteRequest).await;
        let victim = unrouted.instance.clone().expect("the victim");
        assert_eq!(victim, "web-1-00000001", "the highest index of the fullest host");
        // The router has not applied it: the instance stays (for a second here; the wait
        // itself lasts up to APPLY_WAIT while the router is heard).
        let early =
            tokio::time::timeout(Duration::from_secs(1), next_of(&mut events, EventKind::InstanceRemoved))
                .await;
        assert!(early.is_err(), "removed before the router applied its route's removal: {early:?}");
        assert!(ctl.snapshot().instances.contains_key(&victim));
        // Meanwhile the app is busy: neither a removal nor another scale runs beside it.
        let remove = Envelope::new("test", AppRemoveRequest { app: "web".into() });
        let busy = crate::bus::command::<_, Accepted>(
            bus.as_ref(),
            CtlVerb::AppRemove,
            &remove,
            Duration::from_secs(10),
        )
        .await;
        let Err(RequestError::Refused(e)) = busy else { panic!("a removal beside the scale: {busy:?}") };
        assert_eq!(e.code, ErrorCode::Conflict, "{e:?}");
        assert!(e.reason.contains("web is busy with operation op-"), "{}", e.reason);
        let again = Envelope::new("test", ScaleRequest { app: "web".into(), instances: 3 });
        let busy =
            crate::bus::command::<_, Accepted>(bus.as_ref(), CtlVerb::Scale, &again, Duration::from_secs(10))
                .await;
        assert!(
            matches!(busy, Err(RequestError::Refused(ref e)) if e.code == ErrorCode::Conflict),
            "{busy:?}"
        );
        applied.store(unrouted.rev, Ordering::SeqCst);
        let removed = next_of(&mut events, EventKind::InstanceRemoved).await;
        assert_eq!(removed.instance.as_deref(), Some(victim.as_str()));
        next_of(&mut events, EventKind::OperationSucceeded).await;
        router.abort();
        ctl.stop().await;
    }

    /// The same command id twice: the first answer, one operation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_repeated_scale_command_gets_the_first_answer_and_starts_nothing() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let config = ControllerConfig {
            stale_after: 100_000,
            lost_after: 200_000,
            agent_timeout: Duration::from_millis(200),
            ..ControllerConfig::default()
        };
        let ctl = Controller::start(bus.clone(), config, fleet(), store, None).await.expect("controller");
        let req = Envelope::with_id("cmd-scale-1", "test", ScaleRequest { app: "web".into(), instances: 3 });
        let mut ops = Vec::new();
        for _ in 0..2 {
            let sent: Accepted =
                crate::bus::command(bus.as_ref(), CtlVerb::Scale, &req, Duration::from_secs(10))
                    .await
                    .expect("scale accepted");
            ops.push(sent.operation_id.expect("an operation"));
        }
        assert_eq!(ops[0], ops[1]);
        let scales = ctl.snapshot().operations.values().filter(|o| o.kind == OperationKind::Scale).count();
        assert_eq!(scales, 1);
        ctl.stop().await;
    }
}
