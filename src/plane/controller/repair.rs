//! Desired state is never dropped by a fault. An app whose instances sit on a lost host, or
//! that could not be given all its instances for want of capacity, keeps its desired count;
//! the health manager places the missing instances as soon as they fit (a host joins, comes
//! back, or gets room), says why it cannot meanwhile (`AppSpec::shortfall`), and retires the
//! lost instances only once their replacements serve. A returning host's containers of an
//! app still short of them are adopted back instead of removed.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::core::{Controller, Core, CrashRecord, Draft};
use super::deploy;
use super::health::backoff;
use super::ops;
use super::scheduler::{PlacementRequest, place_with};
use crate::protocol::{
    AppSpec, Change, EventKind, Fleet, HostState, Instance, InstanceReport, InstanceState, OperationKind,
    OperationState, Route, RouteState, StepName, StepState,
};

/// How an app stands against its desired count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    /// Instances on hosts that are not lost: they run, or the health manager restarts them.
    pub live: u32,
    /// Live instances that run.
    pub running: u32,
    /// Instances on lost hosts: kept (and their routes) until replacements serve.
    pub on_lost: u32,
}

/// Every app's count, in one pass over the instances.
pub(crate) fn counts(fleet: &Fleet) -> HashMap<&str, Count> {
    counts_with(fleet, None)
}

/// `counts`, with `returning` (a host heard again, not yet marked up) counted as up.
fn counts_with<'a>(fleet: &'a Fleet, returning: Option<&str>) -> HashMap<&'a str, Count> {
    let mut counts: HashMap<&str, Count> = HashMap::new();
    for i in fleet.instances.values().filter(|i| i.state.occupies_host()) {
        let lost = Some(i.host.as_str()) != returning
            && fleet.hosts.get(&i.host).is_none_or(|h| h.state == HostState::Lost);
        let c = counts.entry(i.app.as_str()).or_default();
        if lost {
            c.on_lost += 1;
        } else {
            c.live += 1;
            c.running += u32::from(i.state == InstanceState::Running);
        }
    }
    counts
}

/// Apps with an operation running: the health manager never works against one.
pub(crate) fn busy_apps(fleet: &Fleet) -> HashSet<&str> {
    let mut busy: HashSet<&str> = fleet
        .operations
        .values()
        .filter(|o| o.state == OperationState::Running)
        .map(|o| o.app.as_str())
        .collect();
    // A drain runs an app one instance over its count while it moves one: not a surplus.
    busy.extend(super::drain::apps_being_moved(fleet));
    busy
}

/// The shortfall text for a placement that failed.
pub(crate) fn capacity_shortfall(reason: impl std::fmt::Display) -> String {
    format!("waiting for capacity: {reason}")
}

/// A draft that sets (or clears) an app's shortfall, when it changes.
pub(crate) fn shortfall_draft(app: &AppSpec, shortfall: Option<String>) -> Option<Draft> {
    if app.shortfall == shortfall {
        return None;
    }
    let message = match &shortfall {
        Some(why) => format!("{} is short of instances: {why}", app.name),
        None => format!("{} is back at its desired count", app.name),
    };
    let mut changed = app.clone();
    changed.shortfall = shortfall;
    Some(Draft::new(EventKind::AppUpdated, message).app(app.name.clone()).change(Change::App(changed)))
}

/// What an operation's failure says when a restarted controller finds it still running.
pub(crate) const RESTARTED: &str =
    "the controller restarted during this operation; the health manager puts right what it left";

/// Operations a previous controller left `running` (it was killed in the middle of a
/// step): nothing carries them on, so they are failed at start, before any command, and
/// what they left is put right by the health manager rather than resumed step by step:
/// - instances the operation placed but no agent reported yet (`new`) are removed; if the
///   agent did start one, its next heartbeat brings it back as an orphan, adopted while
///   the app is short or else removed;
/// - instances it started but had not routed get their route once they run;
/// - an app left short is marked so (its shortfall), and placed again; instances beyond
///   the count are retired (`surplus`).
pub(crate) fn recover(core: &mut Core) -> Vec<Draft> {
    let mut drafts = Vec::new();
    let mut running: Vec<_> =
        core.fleet.operations.values().filter(|o| o.state == OperationState::Running).cloned().collect();
    running.sort_by(|a, b| a.id.cmp(&b.id));
    // Every one ends here: the oldest ended ones beyond the bound go with the first end.
    let mut removals: Vec<Change> = super::ops::trimmed(&core.fleet, running.len()).collect();
    for op in running {
        let started: Vec<&str> = op
            .steps
            .iter()
            .filter(|s| s.name == StepName::NewInstanceAndDeployWarRequest)
            .filter_map(|s| s.instance.as_deref())
            .collect();
        let routed = |id: &str| {
            op.steps.iter().any(|s| {
                s.name == StepName::AddRouteRequest
                    && s.state == StepState::Done
                    && s.instance.as_deref() == Some(id)
            })
        };
        let mut removed = 0u32;
        for id in started {
            match core.fleet.instances.get(id) {
                Some(i) if i.state == InstanceState::New => {
                    removed += 1;
                    drafts.push(
                        Draft::new(EventKind::InstanceRemoved, format!("{id} removed: {RESTARTED}"))
                            .app(i.app.clone())
                            .host(i.host.clone())
                            .instance(id)
                            .op(Some(&op.id))
                            .change(Change::InstanceRemoved { id: id.to_string() }),
                    );
                }
                Some(_) if !routed(id) => {
                    core.route_when_running.insert(id.to_string());
                }
                _ => {}
            }
        }
        let end = super::ops::ended(&op, OperationState::Failed, Some(RESTARTED.to_string()));
        let mut failed = Draft::new(EventKind::OperationFailed, format!("{}: {RESTARTED}", op.id))
            .app(op.app.clone())
            .op(Some(&op.id))
            .change(end);
        failed.changes.append(&mut removals);
        drafts.push(failed);
        if let Some(app) = core.fleet.apps.get(&op.app).filter(|a| a.shortfall.is_none()) {
            // Counted as the drafts above will leave it: the removed instances are gone.
            let live = counts(&core.fleet).get(app.name.as_str()).map_or(0, |c| c.live);
            if live.saturating_sub(removed) < app.instances {
                drafts.extend(shortfall_draft(app, Some(format!("placing again: {RESTARTED}"))));
            }
        }
    }
    drafts
}

/// Routes for the instances `recover` found started but not routed, once they run (a
/// route that an operator removed since is not this: only those instances are looked at,
/// once).
fn route_recovered(core: &mut Core) -> Vec<Draft> {
    let mut drafts = Vec::new();
    let ids: Vec<String> = core.route_when_running.iter().cloned().collect();
    for id in ids {
        let Some(i) = core.fleet.instances.get(&id) else {
            core.route_when_running.remove(&id);
            continue;
        };
        if i.state != InstanceState::Running || i.endpoint.is_empty() {
            continue;
        }
        core.route_when_running.remove(&id);
        let Some(app) = core.fleet.apps.get(&i.app) else { continue };
        if core.fleet.routes.contains_key(&(i.app.clone(), i.endpoint.clone())) {
            continue;
        }
        let route = Route {
            app: app.name.clone(),
            domain: app.domain.clone(),
            backend: i.endpoint.clone(),
            state: RouteState::Enabled,
            weight: 1,
            stale: false,
        };
        drafts.push(
            Draft::new(
                EventKind::RouteAdded,
                format!("{} -> {}: {id} runs; routed after a restart", route.domain, route.backend),
            )
            .app(app.name.clone())
            .instance(id.clone())
            .change(Change::Route(route)),
        );
    }
    drafts
}

/// An operation the health manager opened for one app.
pub(crate) enum Work {
    /// Place `missing` instances of `app` (`run`).
    Place { op_id: String, app: String, missing: u32 },
    /// Retire instances beyond the app's desired count (`trim`).
    Trim { op_id: String, surplus: Vec<Instance> },
}

/// What one tick decides for the apps short of instances, or over their count: the events
/// (shortfalls set or cleared, operations opened) and the operations to run.
pub(crate) fn plan(core: &mut Core, now: Instant) -> (Vec<Draft>, Vec<Work>) {
    let mut drafts = Vec::new();
    let mut starts = Vec::new();
    // Room only appears with a change (a host up, an instance gone) or a backoff running
    // out: at an unchanged revision, once a second is enough (the scheduler reads the
    // whole fleet for each app it tries).
    let rev = core.fleet.revision;
    if core.repair_checked.is_some_and(|(r, at)| r == rev && now.duration_since(at) < RECHECK) {
        return (drafts, starts);
    }
    core.repair_checked = Some((rev, now));
    drafts.extend(route_recovered(core));
    let counts = counts(&core.fleet);
    let busy = busy_apps(&core.fleet);
    let mut names: Vec<&String> = core.fleet.apps.keys().collect();
    names.sort();
    for name in names {
        let Some(app) = core.fleet.apps.get(name) else { continue };
        let count = counts.get(name.as_str()).copied().unwrap_or_default();
        if busy.contains(name.as_str()) {
            continue;
        }
        if count.live > app.instances && count.on_lost == 0 {
            let surplus = surplus(&core.fleet, app, count.live - app.instances);
            let (op_id, opened) = ops::open(
                OperationKind::Replace,
                &app.name,
                format!("{} surplus instance(s) of {}", surplus.len(), app.name),
                None,
            );
            drafts.push(opened);
            starts.push(Work::Trim { op_id, surplus });
            continue;
        }
        if count.live >= app.instances {
            drafts.extend(shortfall_draft(app, None));
            if count.on_lost > 0 && count.running >= app.instances {
                drafts.extend(retire_lost(&core.fleet, app));
            }
            continue;
        }
        // Only a fault makes the health manager place instances: a lost host, or capacity
        // that was missing. A deploy that failed on its own (a bad version) is not retried.
        if count.on_lost == 0 && app.shortfall.is_none() {
            continue;
        }
        let missing = app.instances - count.live;
        let req =
            PlacementRequest { app: &app.name, count: missing, constraints: &app.constraints, exclude: &[] };
        // What fits is placed now; the rest waits, and the shortfall says why.
        let fits = match place_with(&core.fleet, &req, &core.usage) {
            Ok(_) => missing,
            Err(e) => {
                drafts.extend(shortfall_draft(app, Some(capacity_shortfall(&e.reason))));
                e.placed
            }
        };
        let due = core.repairs.get(name).and_then(|r| r.next_attempt).is_none_or(|at| at <= now);
        if fits == 0 || !due {
            continue;
        }
        let (op_id, opened) = ops::open(
            OperationKind::Replace,
            &app.name,
            format!("{fits} missing instance(s) of {}", app.name),
            None,
        );
        drafts.push(opened);
        starts.push(Work::Place { op_id, app: app.name.clone(), missing: fits });
    }
    (drafts, starts)
}

/// `n` instances of `app` to retire when it has more live instances than it wants. A fault
/// can leave that behind: a lost host heard again after its instances were replaced but
/// before they were retired, or a controller restarted between placing a replacement and
/// retiring what it replaced. The surplus goes in this order: not running; one of two
/// with the same index; from the AZ with the most of the app, so the scheduler's spread
/// is kept; the highest index.
fn surplus(fleet: &Fleet, app: &AppSpec, n: u32) -> Vec<Instance> {
    let live: Vec<&Instance> = fleet
        .instances_of(&app.name)
        .filter(|i| i.state.occupies_host())
        .filter(|i| fleet.hosts.get(&i.host).is_some_and(|h| h.state != HostState::Lost))
        .collect();
    let az = |i: &Instance| fleet.hosts.get(&i.host).map(|h| h.info.az.as_str()).unwrap_or("");
    let mut per_az: HashMap<&str, usize> = HashMap::new();
    let mut per_index: HashMap<u32, usize> = HashMap::new();
    for i in &live {
        *per_az.entry(az(i)).or_default() += 1;
        *per_index.entry(i.index).or_default() += 1;
    }
    let mut ranked = live;
    ranked.sort_by_key(|i| {
        (
            i.state == InstanceState::Running,
            per_index.get(&i.index).copied().unwrap_or(0) < 2,
            std::cmp::Reverse(per_az.get(az(i)).copied().unwrap_or(0)),
            std::cmp::Reverse(i.index),
            i.id.clone(),
        )
    });
    ranked.into_iter().take(n as usize).cloned().collect()
}

/// Retires the surplus `plan` chose, routes first, each from its host.
pub(crate) async fn trim(ctl: Controller, op_id: String, surplus: Vec<Instance>) {
    let n = surplus.len();
    for inst in &surplus {
        deploy::retire(&ctl, &op_id, inst, true).await;
    }
    ctl.finish(&op_id, Ok(format!("{n} surplus instance(s) retired")));
}

/// The app runs its desired count elsewhere (replaced, or adopted back from a returning
/// host): its instances on lost hosts are retired with their routes. Their agents are not
/// asked; if such a host comes back, its containers are removed as replaced.
fn retire_lost(fleet: &Fleet, app: &AppSpec) -> Vec<Draft> {
    let mut drafts = Vec::new();
    let lost = fleet
        .instances_of(&app.name)
        .filter(|i| fleet.hosts.get(&i.host).is_none_or(|h| h.state == HostState::Lost));
    for i in lost {
        let route_key = (app.name.clone(), i.endpoint.clone());
        if let Some(r) = fleet.routes.get(&route_key) {
            drafts.push(
                Draft::new(EventKind::RouteRemoved, format!("{} -x- {}: replaced", r.domain, r.backend))
                    .app(app.name.clone())
                    .instance(i.id.clone())
                    .change(Change::RouteRemoved { app: r.app.clone(), backend: r.backend.clone() }),
            );
        }
        drafts.push(
            Draft::new(
                EventKind::InstanceRemoved,
                format!(
                    "{} retired: its host {} is lost and {} runs its {} instances elsewhere",
                    i.id, i.host, app.name, app.instances
                ),
            )
            .app(app.name.clone())
            .host(i.host.clone())
            .instance(i.id.clone())
            .change(Change::InstanceRemoved { id: i.id.clone() }),
        );
    }
    drafts
}

/// Places the missing instances of one app, one at a time; after each that serves, one of
/// its instances on a lost host (if any) is retired. Stops early when the app is no longer
/// short (its host came back) or a deploy of it started.
pub(crate) async fn run(ctl: Controller, op_id: String, app_name: String, missing: u32) {
    let mut placed = 0;
    let mut failure = None;
    for _ in 0..missing {
        let next = ctl.read(|core| {
            let app = core.fleet.apps.get(&app_name)?.clone();
            let count = counts(&core.fleet).get(app_name.as_str()).copied().unwrap_or_default();
            let deploying = core
                .fleet
                .operations
                .values()
                .any(|o| o.app == app_name && o.state == OperationState::Running && o.id != op_id);
            if count.live >= app.instances || deploying {
                return None;
            }
            // No room left (taken meanwhile): stop here; the next tick says why.
            let one =
                PlacementRequest { app: &app.name, count: 1, constraints: &app.constraints, exclude: &[] };
            place_with(&core.fleet, &one, &core.usage).ok()?;
            Some({
                let live: Vec<u32> = core
                    .fleet
                    .instances_of(&app_name)
                    .filter(|i| core.fleet.hosts.get(&i.host).is_some_and(|h| h.state != HostState::Lost))
                    .map(|i| i.index)
                    .collect();
                let index = (0u32..).find(|i| !live.contains(i)).unwrap_or(0);
                (app, index)
            })
        });
        let Some((app, index)) = next else { break };
        match deploy::start_instance(&ctl, &op_id, &app, index, &[]).await {
            Ok(id) => {
                placed += 1;
                retire_replaced(&ctl, &op_id, &app_name, &id, index).await;
            }
            Err(reason) => {
                failure = Some(reason);
                break;
            }
        }
    }
    // Capacity that is missing is waited for, not backed off from (the loop stops before
    // it tries): the next tick that finds room places at once. Any other failure (the
    // instance never got healthy) is retried after a backoff.
    ctl.mutate(|core| {
        let record = core
            .repairs
            .entry(app_name.clone())
            .or_insert(CrashRecord { consecutive: 0, next_attempt: None });
        match &failure {
            None => *record = CrashRecord { consecutive: 0, next_attempt: None },
            Some(_) => {
                record.next_attempt = Some(Instant::now() + backoff(record.consecutive, REPAIR_BACKOFF_MAX));
                record.consecutive += 1;
            }
        }
        (vec![], ())
    });
    let outcome = match failure {
        None => Ok(format!("{placed} instance(s) of {app_name} placed again")),
        Some(reason) => Err(reason),
    };
    ctl.finish(&op_id, outcome);
}

/// How often apps are looked at again while nothing changes.
const RECHECK: Duration = Duration::from_secs(1);

/// The longest wait between repairs of an app that keep failing (not for capacity: that
/// is waited for without a limit and acted on at once).
const REPAIR_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Once a replacement serves, the app may have one instance too many: one on a lost host
/// (the same index first) is retired, its routes with it; if the lost host came back
/// meanwhile, one of its instances is retired and removed from it instead.
async fn retire_replaced(ctl: &Controller, op_id: &str, app: &str, new_id: &str, index: u32) {
    let victim = ctl.read(|core| {
        let desired = core.fleet.apps.get(app)?.instances as usize;
        let all: Vec<&Instance> = core.fleet.instances_of(app).filter(|i| i.id != new_id).collect();
        if all.len() < desired {
            return None;
        }
        let up = |i: &Instance| core.fleet.hosts.get(&i.host).is_some_and(|h| h.state != HostState::Lost);
        let victim = all.into_iter().min_by_key(|i| (up(i), i.index != index, i.index))?;
        Some((victim.clone(), up(victim)))
    });
    if let Some((inst, reachable)) = victim {
        deploy::retire(ctl, op_id, &inst, reachable).await;
    }
}

/// Instances a returning host still runs but the controller no longer has. Each is adopted
/// back when its app is short of instances of its version and no operation of the app runs
/// (it would count on its own picture); the rest were really replaced, and their ids are
/// returned for the caller to have them removed.
pub(crate) fn adopt(core: &Core, host: &str, orphans: &[&InstanceReport]) -> (Vec<Draft>, Vec<String>) {
    // Every heartbeat comes here: counting the whole fleet for none would cost a pass over
    // every instance per heartbeat (20,000 instances, 100 heartbeats a second).
    if orphans.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let counts = counts_with(&core.fleet, Some(host));
    let busy = busy_apps(&core.fleet);
    let mut room: HashMap<&str, u32> = HashMap::new();
    let mut drafts = Vec::new();
    let mut remove = Vec::new();
    for report in orphans {
        let Some(app) = core.fleet.apps.get(&report.app) else { continue };
        let room = room.entry(app.name.as_str()).or_insert_with(|| {
            let live = counts.get(app.name.as_str()).map_or(0, |c| c.live);
            if busy.contains(app.name.as_str()) { 0 } else { app.instances.saturating_sub(live) }
        });
        let wanted = *room > 0 && report.version == app.version && report.state == InstanceState::Running;
        if !wanted {
            remove.push(report.id.clone());
            continue;
        }
        *room -= 1;
        drafts.push(adopted(core, app, host, report));
    }
    (drafts, remove)
}

fn adopted(core: &Core, app: &AppSpec, host: &str, report: &InstanceReport) -> Draft {
    let endpoint = format!("{}:{}", report.ip, report.port);
    let inst = Instance {
        id: report.id.clone(),
        app: app.name.clone(),
        version: report.version.clone(),
        index: report.index,
        host: host.to_string(),
        ip: report.ip.clone(),
        port: report.port,
        endpoint: endpoint.clone(),
        container_id: report.container_id.clone(),
        state: report.state,
        started_at: report.started_at,
        restarts: 0,
        cpu_pct: report.cpu_pct,
        mem_used_mb: report.mem_used_mb,
        mem_limit_mb: app.constraints.memory_mb,
        cpu_limit: app.constraints.cpu,
        last_exit: report.last_exit,
    };
    let mut draft = Draft::new(
        EventKind::InstanceState,
        format!("{} adopted back from {host}: {} is short of instances", report.id, app.name),
    )
    .app(app.name.clone())
    .host(host)
    .instance(report.id.clone())
    .change(Change::Instance(inst));
    if !report.ip.is_empty() && !core.fleet.routes.contains_key(&(app.name.clone(), endpoint.clone())) {
        draft = draft.change(Change::Route(Route {
            app: app.name.clone(),
            domain: app.domain.clone(),
            backend: endpoint,
            state: RouteState::Enabled,
            weight: 1,
            stale: false,
        }));
    }
    draft
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bus::{Bus, LocalBus};
    use crate::plane::agent::sim::{SimConfig, SimDriver};
    use crate::plane::agent::{self, AgentConfig, AgentHandle};
    use crate::plane::controller::store::MemoryStore;
    use crate::plane::controller::{ControllerConfig, ControllerHandle};
    use crate::protocol::{Constraints, DeployRequest, Envelope};

    const PERIOD: Duration = Duration::from_millis(100);

    async fn controller(bus: &Arc<dyn Bus>) -> ControllerHandle {
        let config = ControllerConfig {
            heartbeat_period: PERIOD,
            stale_after: 3,
            lost_after: 6,
            step_timeout: Duration::from_secs(20),
            ..ControllerConfig::default()
        };
        let store = Arc::new(MemoryStore::new(bus.clone()));
        Controller::start(bus.clone(), config, Fleet::default(), store, None).await.expect("controller")
    }

    async fn host(bus: &Arc<dyn Bus>, id: &str, az: &str, n: u8) -> AgentHandle {
        host_on(bus, id, az, n, sim(n)).await
    }

    fn sim(n: u8) -> Arc<SimDriver> {
        sim_with(n, 8)
    }

    fn sim_with(n: u8, cpu_cores: u32) -> Arc<SimDriver> {
        SimDriver::new(SimConfig {
            seed: n as u64,
            cpu_cores,
            memory_mb: 16_384,
            container_ips: (31..60).map(|k| format!("10.0.{n}.{k}")).collect(),
            speed: 50.0,
            crashes_per_hour: 0.0,
        })
    }

    /// An agent on `driver`: the same driver again is a host whose containers outlived
    /// its agent.
    async fn host_on(bus: &Arc<dyn Bus>, id: &str, az: &str, n: u8, driver: Arc<SimDriver>) -> AgentHandle {
        let config = AgentConfig {
            host_id: id.into(),
            hostname: id.into(),
            ip: format!("10.0.{n}.1"),
            az: az.into(),
            tags: vec![],
            heartbeat_period: PERIOD,
            poll_interval: Duration::from_millis(50),
            metrics: None,
        };
        agent::start(bus.clone(), driver, config).await.expect("agent")
    }

    async fn deploy(bus: &Arc<dyn Bus>, az: &str) {
        deploy_with(bus, az, 0.5).await
    }

    async fn deploy_with(bus: &Arc<dyn Bus>, az: &str, cpu: f32) {
        let req = DeployRequest {
            app: "web".into(),
            version: "1".into(),
            instances: 2,
            image: Some("nginx:1".into()),
            port: Some(8080),
            constraints: Some(Constraints { azs: vec![az.into()], tags: vec![], cpu, memory_mb: 256 }),
            ..DeployRequest::default()
        };
        let sent: Result<crate::protocol::Accepted, _> = crate::bus::command(
            bus.as_ref(),
            crate::protocol::subjects::CtlVerb::Deploy,
            &Envelope::new("test", req),
            Duration::from_secs(5),
        )
        .await;
        sent.expect("deploy accepted");
    }

    /// Waits for `pred` on the controller's fleet, or fails with the fleet as it is.
    async fn until<T>(ctl: &Controller, what: &str, pred: impl FnMut(&Fleet) -> Option<T>) -> T {
        match ctl.wait_for(Duration::from_secs(30), pred).await {
            Some(v) => v,
            None => panic!("{what}: not within 30 s; fleet: {:#?}", ctl.snapshot()),
        }
    }

    fn running_on<'a>(f: &'a Fleet, host: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        f.instances_of("web").filter(move |i| i.host == host && i.state == InstanceState::Running)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_a_killed_controller_left_running_is_failed_at_start_and_its_leftovers_put_right() {
        use crate::protocol::{Operation, OperationStep};
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 6, 0);
        let app = fleet
            .apps
            .values()
            .find(|a| fleet.instances_of(&a.name).count() >= 2)
            .cloned()
            .expect("an app with two instances");
        let mut ids: Vec<String> = fleet.instances_of(&app.name).map(|i| i.id.clone()).collect();
        ids.sort();
        // The operation had placed ids[0] (no agent reported it yet) and started ids[1]
        // (running, but its route not yet added) when the controller was killed.
        fleet.instances.get_mut(&ids[0]).unwrap().state = InstanceState::New;
        let unrouted = fleet.instances[&ids[1]].clone();
        fleet.instances.get_mut(&ids[1]).unwrap().state = InstanceState::Running;
        fleet.routes.retain(|(a, backend), _| !(a == &app.name && backend == &unrouted.endpoint));
        let step = |id: &str| OperationStep {
            name: StepName::NewInstanceAndDeployWarRequest,
            instance: Some(id.to_string()),
            state: StepState::Done,
            started_at: 1,
            finished_at: Some(2),
            detail: String::new(),
        };
        let op = Operation {
            id: "op-interrupt".into(),
            kind: OperationKind::Deploy,
            app: app.name.clone(),
            target: format!("{}@{}", app.name, app.version),
            steps: vec![step(&ids[0]), step(&ids[1])],
            state: OperationState::Running,
            error: None,
            started_at: 1,
            finished_at: None,
            command_id: None,
            compacted: None,
        };
        fleet.operations.insert(op.id.clone(), op);

        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        let config = ControllerConfig { heartbeat_period: PERIOD, ..ControllerConfig::default() };
        let ctl = Controller::start(bus.clone(), config, fleet, store, None).await.expect("controller");
        let snap = ctl.snapshot();
        let op = &snap.operations["op-interrupt"];
        assert_eq!(op.state, OperationState::Failed, "nothing carries it on: {op:?}");
        assert_eq!(op.error.as_deref(), Some(RESTARTED));
        assert!(!snap.instances.contains_key(&ids[0]), "the placed instance no agent reported is removed");
        assert!(
            snap.apps[&app.name].shortfall.is_some(),
            "the app is short and says so: {:?}",
            snap.apps[&app.name]
        );
        until(&ctl, "the started instance is routed once it runs", |f| {
            f.routes.contains_key(&(app.name.clone(), unrouted.endpoint.clone())).then_some(())
        })
        .await;
    }

    #[test]
    fn the_surplus_is_what_a_fault_left_behind_not_running_or_a_duplicate_first() {
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 6, 0);
        for h in fleet.hosts.values_mut() {
            h.state = HostState::Up;
        }
        let app = fleet
            .apps
            .values()
            .find(|a| fleet.instances_of(&a.name).count() >= 2)
            .cloned()
            .expect("an app with two instances");
        let mut ids: Vec<String> = fleet.instances_of(&app.name).map(|i| i.id.clone()).collect();
        ids.sort();
        for id in &ids {
            fleet.instances.get_mut(id).unwrap().state = InstanceState::Running;
        }
        // What a returning host brings back after its instance was replaced: the same index.
        let mut dup = fleet.instances[&ids[0]].clone();
        dup.id = format!("{}-9-dup0", app.name);
        fleet.instances.insert(dup.id.clone(), dup.clone());
        assert_eq!(surplus(&fleet, &app, 0), vec![]);
        let chosen = surplus(&fleet, &app, 1);
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].index, dup.index, "one of the two with the same index goes: {chosen:?}");
        // Anything not running goes before what runs.
        fleet.instances.get_mut(&ids[1]).unwrap().state = InstanceState::Crashed;
        assert_eq!(surplus(&fleet, &app, 1)[0].id, ids[1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_app_short_of_capacity_says_why_and_is_placed_when_a_host_joins() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let ctl = controller(&bus).await;
        let _h1 = host(&bus, "h1", "az1", 1).await;
        until(&ctl, "h1 joined", |f| f.hosts.contains_key("h1").then_some(())).await;

        deploy(&bus, "az2").await;
        let why = until(&ctl, "web short, with the reason", |f| f.apps.get("web")?.shortfall.clone()).await;
        assert_eq!(why, "waiting for capacity: no up host is in AZ az2");
        let snap = ctl.snapshot();
        assert_eq!(snap.apps["web"].instances, 2, "the desired count is kept");
        assert_eq!(snap.instances_of("web").count(), 0);

        let _h2 = host(&bus, "h2", "az2", 2).await;
        until(&ctl, "web placed on h2 and no longer short", |f| {
            let done = running_on(f, "h2").count() == 2
                && f.instances_of("web").count() == 2
                && f.routes.values().filter(|r| r.app == "web").count() == 2
                && f.apps.get("web")?.shortfall.is_none();
            done.then_some(())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_hosts_instances_keep_their_routes_until_replacements_serve() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let ctl = controller(&bus).await;
        let h1 = host(&bus, "h1", "az1", 1).await;
        let _h2 = host(&bus, "h2", "az2", 2).await;
        until(&ctl, "h1 and h2 joined", |f| (f.hosts.len() == 2).then_some(())).await;
        deploy(&bus, "az1").await;
        until(&ctl, "web running and routed on h1", |f| {
            (running_on(f, "h1").count() == 2 && f.routes.len() == 2).then_some(())
        })
        .await;
        let routes_before: Vec<Route> = ctl.snapshot().routes.values().cloned().collect();
        assert_eq!(routes_before.len(), 2);

        h1.stop();
        let why = until(&ctl, "h1 lost and web short", |f| {
            (f.hosts.get("h1")?.state == HostState::Lost).then_some(())?;
            f.apps.get("web")?.shortfall.clone()
        })
        .await;
        assert_eq!(why, "waiting for capacity: no up host is in AZ az1");
        let snap = ctl.snapshot();
        assert_eq!(snap.instances_of("web").count(), 2, "the lost host's instances are kept");
        let kept: Vec<Route> = snap.routes.values().cloned().collect();
        assert_eq!(kept, routes_before, "their routes are kept, and still serve");
        assert!(kept.iter().all(Route::serves));

        let _h3 = host(&bus, "h3", "az1", 3).await;
        until(&ctl, "web replaced on h3, the lost instances retired", |f| {
            let on_h3: Vec<&str> = running_on(f, "h3").map(|i| i.endpoint.as_str()).collect();
            let mut backends: Vec<&str> =
                f.routes.values().filter(|r| r.app == "web").map(|r| r.backend.as_str()).collect();
            backends.sort();
            let mut want = on_h3.clone();
            want.sort();
            let done = on_h3.len() == 2
                && f.instances_of("web").count() == 2
                && backends == want
                && f.apps.get("web")?.shortfall.is_none();
            done.then_some(())
        })
        .await;
    }

    /// Room for one of two: that one is placed at once, the other waits with the reason.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_fits_is_placed_and_the_rest_waits_for_room() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let ctl = controller(&bus).await;
        let h1 = host(&bus, "h1", "az1", 1).await;
        let _h2 = host(&bus, "h2", "az2", 2).await;
        until(&ctl, "h1 and h2 joined", |f| (f.hosts.len() == 2).then_some(())).await;
        deploy_with(&bus, "az1", 0.75).await;
        until(&ctl, "web running and routed on h1", |f| {
            (running_on(f, "h1").count() == 2 && f.routes.len() == 2).then_some(())
        })
        .await;

        h1.stop();
        until(&ctl, "h1 lost", |f| (f.hosts.get("h1")?.state == HostState::Lost).then_some(())).await;
        // One core: room for one instance of 0.75.
        let _h3 = host_on(&bus, "h3", "az1", 3, sim_with(3, 1)).await;
        let why = until(&ctl, "one placed on h3, one still short", |f| {
            let on_lost = f.instances_of("web").filter(|i| i.host == "h1").count();
            (running_on(f, "h3").count() == 1 && on_lost == 1 && f.routes.len() == 2).then_some(())?;
            f.apps.get("web")?.shortfall.clone()
        })
        .await;
        assert!(why.starts_with("waiting for capacity: "), "{why}");

        let _h4 = host_on(&bus, "h4", "az1", 4, sim_with(4, 1)).await;
        until(&ctl, "the other placed on h4, the lost ones retired", |f| {
            let done = running_on(f, "h3").count() == 1
                && running_on(f, "h4").count() == 1
                && f.instances_of("web").count() == 2
                && f.routes.len() == 2
                && f.apps.get("web")?.shortfall.is_none();
            done.then_some(())
        })
        .await;
    }

    /// The health manager places a lost host's instances with the one scheduler: never on
    /// a cordoned host, and the shortfall says why; uncordoned, the host takes them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_hosts_instances_are_not_placed_on_a_cordoned_host() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let ctl = controller(&bus).await;
        let h1 = host(&bus, "h1", "az1", 1).await;
        let _h2 = host(&bus, "h2", "az2", 2).await;
        until(&ctl, "h1 and h2 joined", |f| (f.hosts.len() == 2).then_some(())).await;
        deploy(&bus, "az1").await;
        until(&ctl, "web running on h1", |f| (running_on(f, "h1").count() == 2).then_some(())).await;
        let _h3 = host(&bus, "h3", "az1", 3).await;
        until(&ctl, "h3 joined", |f| f.hosts.contains_key("h3").then_some(())).await;
        let cordon = |verb| {
            crate::plane::controller::drain::host_command(
                &ctl,
                verb,
                crate::protocol::HostRequest { host: "h3".into() },
                &crate::protocol::envelope::new_id(),
            )
            .expect("accepted")
        };
        cordon(crate::protocol::subjects::HostVerb::Cordon);

        h1.stop();
        let why = until(&ctl, "h1 lost and web short", |f| {
            (f.hosts.get("h1")?.state == HostState::Lost).then_some(())?;
            f.apps.get("web")?.shortfall.clone()
        })
        .await;
        assert!(why.contains("cordoned"), "{why}");
        assert_eq!(running_on(&ctl.snapshot(), "h3").count(), 0, "nothing on the cordoned h3");

        cordon(crate::protocol::subjects::HostVerb::Uncordon);
        until(&ctl, "web placed on h3 once it is open", |f| (running_on(f, "h3").count() == 2).then_some(()))
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_returning_host_whose_instances_were_replaced_is_adopted_back_when_the_replacements_are_lost() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let ctl = controller(&bus).await;
        let h1_driver = sim(1);
        let h1 = host_on(&bus, "h1", "az1", 1, h1_driver.clone()).await;
        let _h2 = host(&bus, "h2", "az2", 2).await;
        until(&ctl, "h1 and h2 joined", |f| (f.hosts.len() == 2).then_some(())).await;
        deploy(&bus, "az1").await;
        until(&ctl, "web running and routed on h1", |f| {
            (running_on(f, "h1").count() == 2 && f.routes.len() == 2).then_some(())
        })
        .await;
        let mut originals: Vec<String> = running_on(&ctl.snapshot(), "h1").map(|i| i.id.clone()).collect();
        originals.sort();

        // h1 goes; h3 takes its instances; h1's records are retired.
        h1.stop();
        let h3 = host(&bus, "h3", "az1", 3).await;
        until(&ctl, "web replaced on h3", |f| {
            (running_on(f, "h3").count() == 2 && f.instances_of("web").count() == 2).then_some(())
        })
        .await;
        // h3 goes too; h1 comes back with its containers, which nobody has now.
        h3.stop();
        until(&ctl, "h3 lost", |f| (f.hosts.get("h3")?.state == HostState::Lost).then_some(())).await;
        let _h1 = host_on(&bus, "h1", "az1", 1, h1_driver).await;
        until(&ctl, "h1's containers adopted back, h3's records retired", |f| {
            let mut ids: Vec<String> = f.instances_of("web").map(|i| i.id.clone()).collect();
            ids.sort();
            let routed = f.routes.values().filter(|r| r.app == "web").count() == 2;
            (ids == originals
                && running_on(f, "h1").count() == 2
                && routed
                && f.apps.get("web")?.shortfall.is_none())
            .then_some(())
        })
        .await;
    }

    #[test]
    fn a_returning_hosts_container_is_adopted_only_while_its_app_is_short() {
        let (mut fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let app = fleet.apps.values().find(|a| a.instances >= 2).cloned().expect("an app with 2 instances");
        let gone = fleet.instances_of(&app.name).next().cloned().expect("an instance");
        let mut report = InstanceReport::of(&gone);
        report.state = InstanceState::Running;
        report.version = app.version.clone();

        // Its record is still there: the app is at its count, so the container is removed.
        let (bus, store): (Arc<dyn Bus>, _) = {
            let b: Arc<dyn Bus> = Arc::new(LocalBus::new());
            let s = Arc::new(MemoryStore::new(b.clone()));
            (b, s)
        };
        let extra = InstanceReport { id: format!("{}-extra", gone.id), ..report.clone() };
        let (ctl, _events) =
            Controller::new(bus.clone(), ControllerConfig::default(), fleet.clone(), store.clone(), None);
        let (adopted, removed) = ctl.read(|core| adopt(core, &gone.host, &[&extra]));
        assert!(adopted.is_empty());
        assert_eq!(removed, vec![extra.id.clone()]);

        // Without its record the app is one short: that one is adopted (id, container,
        // route), the extra one is not.
        fleet.instances.remove(&gone.id);
        fleet.routes.retain(|_, r| !(r.app == app.name && r.backend == gone.endpoint));
        let (ctl, _events) = Controller::new(bus, ControllerConfig::default(), fleet, store, None);
        let (adopted, removed) = ctl.read(|core| adopt(core, &gone.host, &[&report, &extra]));
        assert_eq!(removed, vec![extra.id.clone()]);
        assert_eq!(adopted.len(), 1);
        let changes = &adopted[0].changes;
        assert!(
            matches!(&changes[0], Change::Instance(i) if i.id == gone.id && i.host == gone.host && i.container_id == gone.container_id),
            "{changes:?}"
        );
        assert!(
            changes.iter().any(|c| matches!(c, Change::Route(r) if r.backend == gone.endpoint && r.serves())),
            "{changes:?}"
        );
    }
}
