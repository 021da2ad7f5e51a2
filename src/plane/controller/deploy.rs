//! Deploy, restart and replace operations, following the original flow:
//! PULL_IMAGE (an image from a registry pinned to its digest), ALLOCATE_REPOSITORY_REQUEST,
//! UPLOAD, NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST, then the agent's PULL_IMAGE (when the host
//! lacks the image), DOWNLOAD, RESTART and HEALTH_CHECK, then ADD_ROUTE_REQUEST and
//! INSTANCE_DEPLOYED.

use futures_util::future::join_all;

use super::core::{Controller, Core, Draft};
use super::image;
use super::ops::step_draft;
use super::repair;
use super::scheduler::{PlacementRequest, place_with};
use crate::bus::RequestError;
use crate::protocol::deploy_plan::{self, Mode, Step, Target};
use crate::protocol::envelope::new_id;
use crate::protocol::subjects::AgentVerb;
use crate::protocol::{
    AgentAck, AppSpec, Change, ErrorCode, EventKind, Fleet, Instance, InstanceRef, InstanceSpec,
    InstanceState, Route, RouteState, StepName, StepState, Strategy,
};
use crate::repository;

/// A deploy's roll-out; on failure the app's desired spec goes back to `previous`.
pub(crate) async fn run_deploy(
    ctl: Controller,
    op_id: String,
    app: AppSpec,
    strategy: Strategy,
    previous: Option<AppSpec>,
) {
    let mut app = app;
    // The same version with another environment replaces every instance: a container's
    // environment is fixed when it is created.
    let refresh = previous.as_ref().is_some_and(|p| p.version == app.version && env_changed(p, &app));
    let outcome = match image::pin(&ctl, &op_id, &mut app).await {
        Ok(()) => {
            super::releases::pinned(&ctl, &op_id, &app);
            deploy(&ctl, &op_id, &app, strategy, refresh).await
        }
        Err(e) => Err(e),
    };
    if outcome.is_err()
        && let Some(prev) = previous.filter(|p| p.version != app.version || env_changed(p, &app))
    {
        // The old version keeps serving: the desired state says so again, so restarts and
        // re-placements use the spec that actually runs.
        let msg = format!("desired back to {}@{} after the failed deploy", prev.name, prev.version);
        ctl.commit(vec![
            Draft::new(EventKind::AppUpdated, msg)
                .app(prev.name.clone())
                .op(Some(&op_id))
                .change(Change::App(prev)),
        ]);
    }
    ctl.finish(&op_id, outcome);
}

/// Whether `app` runs with other env variables or secrets than `prev`.
pub(super) fn env_changed(prev: &AppSpec, app: &AppSpec) -> bool {
    prev.run.env != app.run.env || prev.run.secrets != app.run.secrets
}

/// `ALLOCATE_REPOSITORY_REQUEST` and `UPLOAD`: the artifact must be in its slot with the
/// checksum the deploy names, before any container is touched.
async fn check_artifact(ctl: &Controller, op_id: &str, app: &AppSpec) -> Result<(), String> {
    let Some(art) = &app.run.artifact else {
        let slot = repository::slot(&app.name, &app.version);
        ctl.step(
            op_id,
            StepName::AllocateRepositoryRequest,
            None,
            StepState::Done,
            format!("slot {slot}"),
            vec![],
        );
        ctl.step(
            op_id,
            StepName::Upload,
            None,
            StepState::Done,
            format!("image {} only: no artifact", app.image),
            vec![],
        );
        return Ok(());
    };
    ctl.step(
        op_id,
        StepName::AllocateRepositoryRequest,
        None,
        StepState::Done,
        format!("slot {}", art.name),
        vec![],
    );
    let fail = |reason: String| {
        ctl.step(op_id, StepName::Upload, None, StepState::Failed, reason.clone(), vec![]);
        Err(reason)
    };
    let Some(repo) = ctl.repository() else {
        return fail(format!("artifact {} given, but this controller has no repository", art.name));
    };
    match repo.info(&art.name).await {
        Ok(Some(stored)) if stored.sha256 == art.sha256 => {
            let short = &art.sha256[..art.sha256.len().min(12)];
            ctl.step(
                op_id,
                StepName::Upload,
                None,
                StepState::Done,
                format!("{} ({} bytes, sha256 {short}…)", art.name, stored.size),
                vec![],
            );
            Ok(())
        }
        Ok(Some(stored)) => fail(format!(
            "artifact {} in the repository has sha256 {}, not {}: upload it again",
            art.name, stored.sha256, art.sha256
        )),
        Ok(None) => fail(format!("artifact {} is not in the repository: upload it first", art.name)),
        Err(e) => fail(e.to_string()),
    }
}

/// Restarts the targets `batch` at a time (rolling); a batch with a failure ends the
/// operation, so the rest keep serving.
pub(crate) async fn run_restart(ctl: Controller, op_id: String, targets: Vec<String>, batch: usize) {
    let mut outcome = Ok(format!("restarted {} instance(s)", targets.len()));
    for chunk in targets.chunks(batch.max(1)) {
        let done = join_all(chunk.iter().map(|id| restart_instance(&ctl, &op_id, id))).await;
        let errors: Vec<String> = done.into_iter().filter_map(Result::err).collect();
        if !errors.is_empty() {
            outcome = Err(errors.join("; "));
            break;
        }
    }
    ctl.finish(&op_id, outcome);
}

async fn deploy(
    ctl: &Controller,
    op_id: &str,
    app: &AppSpec,
    strategy: Strategy,
    refresh: bool,
) -> Result<String, String> {
    check_artifact(ctl, op_id, app).await?;

    let target = Target::of(app, strategy);
    // The preview's planner: the same steps in the same order. Each new instance is
    // placed when its turn comes, on the fleet as it is then.
    let (mode, steps) = ctl.read(|core| deploy_plan::steps_replacing(&core.fleet, &target, refresh));
    let start_all = |steps: &[Step]| {
        join_all(steps.iter().filter_map(|s| match s {
            Step::Start { index } => Some(start_instance(ctl, op_id, app, *index, &[])),
            Step::Retire { .. } => None,
        }))
    };
    match mode {
        Mode::Scale => {
            // Same version: the missing ones side by side, then the extras go.
            let errors: Vec<String> = start_all(&steps).await.into_iter().filter_map(Result::err).collect();
            retire_all(ctl, op_id, &steps).await;
            if !errors.is_empty() {
                return Err(errors.join("; "));
            }
        }
        Mode::All => {
            // Every new instance at once; the old ones go only when all the new are healthy.
            let started = start_all(&steps).await;
            let errors: Vec<String> = started.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
            if !errors.is_empty() {
                for id in started.into_iter().flatten() {
                    if let Some(inst) = ctl.read(|c| c.fleet.instances.get(&id).cloned()) {
                        retire(ctl, op_id, &inst, true).await;
                    }
                }
                return Err(format!("new version not healthy, old one kept: {}", errors.join("; ")));
            }
            retire_all(ctl, op_id, &steps).await;
        }
        Mode::Rolling => {
            // A new instance, healthy, then the old one it replaces. A failure stops the
            // roll with the old ones still serving.
            let desired = app.instances;
            let mut n = 0;
            for step in &steps {
                match step {
                    Step::Start { index } => {
                        start_instance(ctl, op_id, app, *index, &[])
                            .await
                            .map_err(|e| format!("roll stopped after {n} of {desired}: {e}"))?;
                        n += 1;
                    }
                    Step::Retire { instance, .. } => retire(ctl, op_id, instance, true).await,
                }
            }
        }
    }
    Ok(format!("{}@{} running x{}", app.name, app.version, app.instances))
}

/// The plan's retirements, in its order.
async fn retire_all(ctl: &Controller, op_id: &str, steps: &[Step]) {
    for step in steps {
        if let Step::Retire { instance, .. } = step {
            retire(ctl, op_id, instance, true).await;
        }
    }
}

fn spec_for(app: &AppSpec, inst: &Instance, op_id: &str) -> InstanceSpec {
    InstanceSpec {
        id: inst.id.clone(),
        app: app.name.clone(),
        version: app.version.clone(),
        index: inst.index,
        image: app.pinned_image(),
        port: app.port,
        cpu: inst.cpu_limit,
        memory_mb: inst.mem_limit_mb,
        operation_id: op_id.to_string(),
        run: app.run.clone(),
    }
}

/// A new instance's id, which is its generation: no instance the fleet holds has it, so a
/// container that a returning host still runs under an id now placed elsewhere is told
/// apart from the current one (see `intake::sort_reports`). The fleet cannot know what a
/// host cut off from it still runs, so the suffix is 8 hex digits (32 bits): with 4, a new
/// placement drew an id such a host held once in 65,536 draws of an app's index.
fn fresh_instance_id(fleet: &crate::protocol::Fleet, app: &str, index: u32) -> String {
    fresh_instance_id_from(fleet, app, index, || new_id()[..INSTANCE_SUFFIX_HEX].to_string())
}

/// The hex digits of an instance id's random suffix.
const INSTANCE_SUFFIX_HEX: usize = 8;

fn fresh_instance_id_from(
    fleet: &crate::protocol::Fleet,
    app: &str,
    index: u32,
    mut draw: impl FnMut() -> String,
) -> String {
    loop {
        let id = format!("{app}-{index}-{}", draw());
        if !fleet.instances.contains_key(&id) {
            return id;
        }
    }
}

/// Places, starts and routes one new instance; on failure nothing of it is left behind.
pub(crate) async fn start_instance(
    ctl: &Controller,
    op_id: &str,
    app: &AppSpec,
    index: u32,
    exclude: &[String],
) -> Result<String, String> {
    // An operation's steps wait while the store is behind (`Controller::room`).
    ctl.room().await;
    let (id, host, spec) = ctl.mutate(|core| place_one(core, op_id, app, index, exclude))?;
    // A fenced leader sends agents nothing: its operations wait, or end with it.
    ctl.unfenced().await;

    let sent: Result<AgentAck, RequestError> = ctl.ask_agent(&host, AgentVerb::Deploy, spec).await;
    if let Err(err) = sent {
        let reason = format!("host {host} did not accept {id}: {err}");
        ctl.step(
            op_id,
            StepName::NewInstanceAndDeployWarRequest,
            Some(&id),
            StepState::Failed,
            reason.clone(),
            vec![Change::InstanceRemoved { id: id.clone() }],
        );
        return Err(reason);
    }
    ctl.step(
        op_id,
        StepName::NewInstanceAndDeployWarRequest,
        Some(&id),
        StepState::Done,
        format!("accepted by {host}"),
        vec![],
    );

    let inst = match wait_settled(ctl, op_id, &id).await {
        Some(Ok(inst)) => inst,
        other => return Err(fail_unsettled(ctl, op_id, &id, other).await),
    };
    let route = Route {
        app: app.name.clone(),
        domain: app.domain.clone(),
        backend: inst.endpoint.clone(),
        state: RouteState::Enabled,
        weight: 1,
        stale: false,
    };
    ctl.step(
        op_id,
        StepName::AddRouteRequest,
        Some(&id),
        StepState::Done,
        format!("{} -> {}", app.domain, inst.endpoint),
        vec![Change::Route(route)],
    );
    ctl.step(
        op_id,
        StepName::InstanceDeployed,
        Some(&id),
        StepState::Done,
        format!("{} on {host}", inst.endpoint),
        vec![],
    );
    Ok(id)
}

/// A new instance placed: its id, its host and what its agent is asked to run.
type Placed = Result<(String, String, InstanceSpec), String>;

/// Places one new instance of `app` (its step, and the instance, drafted), or says why it
/// does not fit: the app keeps its desired count and says why it is short, and the health
/// manager places the instance once it fits.
fn place_one(
    core: &mut Core,
    op_id: &str,
    app: &AppSpec,
    index: u32,
    exclude: &[String],
) -> (Vec<Draft>, Placed) {
    let req = PlacementRequest { app: &app.name, count: 1, constraints: &app.constraints, exclude };
    match place_with(&core.fleet, &req, &core.usage) {
        Err(err) => {
            let d = step_draft(
                core,
                op_id,
                StepName::NewInstanceAndDeployWarRequest,
                None,
                StepState::Failed,
                err.to_string(),
            );
            let short = core
                .fleet
                .apps
                .get(&app.name)
                .and_then(|a| repair::shortfall_draft(a, Some(repair::capacity_shortfall(&err.reason))));
            (d.into_iter().chain(short).collect(), Err(err.to_string()))
        }
        Ok(hosts) => {
            let host = hosts.into_iter().next().unwrap_or_default();
            let id = fresh_instance_id(&core.fleet, &app.name, index);
            // The strategy does not change what one instance reserves.
            let target = Target::of(app, Strategy::default());
            let inst = target.new_instance(id.clone(), index, &host, app.port);
            let spec = spec_for(app, &inst, op_id);
            let drafts = step_draft(
                core,
                op_id,
                StepName::NewInstanceAndDeployWarRequest,
                Some(&id),
                StepState::Running,
                format!("to {host}"),
            )
            .map(|d| d.host(host.clone()).change(Change::Instance(inst)))
            .into_iter()
            .collect();
            (drafts, Ok((id, host, spec)))
        }
    }
}

/// A new instance that did not come up healthy: its health check step fails with the
/// agent's own words (e.g. "GET /health answered 404", which say more than the state),
/// and what is left of it is retired. Returns the reason.
async fn fail_unsettled(
    ctl: &Controller,
    op_id: &str,
    id: &str,
    outcome: Option<Result<Instance, String>>,
) -> String {
    let detail = ctl.read(|c| {
        c.fleet.operations.get(op_id).and_then(|op| {
            op.steps
                .iter()
                .rev()
                .find(|s| s.instance.as_deref() == Some(id) && s.state == StepState::Failed)
                .map(|s| s.detail.clone())
        })
    });
    let reason = match (outcome, detail) {
        (Some(Err(why)), Some(d)) if !d.is_empty() => format!("{id} failed: {why}: {d}"),
        (Some(Err(why)), _) => format!("{id} failed: {why}"),
        _ => format!("{id} was not healthy within {:?}", ctl.config().step_timeout),
    };
    ctl.step(op_id, StepName::HealthCheck, Some(id), StepState::Failed, reason.clone(), vec![]);
    if let Some(inst) = ctl.read(|c| c.fleet.instances.get(id).cloned()) {
        retire(ctl, op_id, &inst, true).await;
    }
    reason
}

/// Waits until a new instance has come up or failed, for the step timeout; longer while
/// its host pulls its image (a large image may take more than a step), up to the agent's
/// bound on a pull.
async fn wait_settled(ctl: &Controller, op_id: &str, id: &str) -> Option<Result<Instance, String>> {
    let step_timeout = ctl.config().step_timeout;
    let cap = tokio::time::Instant::now() + crate::plane::agent::PULL_TIMEOUT + step_timeout;
    loop {
        let settled = ctl.wait_for_instance(id, step_timeout, |f| instance_settled(f, id, None)).await;
        if settled.is_some() || tokio::time::Instant::now() >= cap || !pulling(ctl, op_id, id) {
            return settled;
        }
    }
}

/// Whether the instance's `PULL_IMAGE` step is running.
fn pulling(ctl: &Controller, op_id: &str, id: &str) -> bool {
    ctl.read(|core| {
        core.fleet.operations.get(op_id).is_some_and(|op| {
            op.steps.iter().any(|s| {
                s.name == StepName::PullImage
                    && s.instance.as_deref() == Some(id)
                    && s.state == StepState::Running
            })
        })
    })
}

/// Whether an instance has come up (`Ok`) or failed (`Err`). `since` demands a start after
/// that time, for restarts.
fn instance_settled(f: &Fleet, id: &str, since: Option<u64>) -> Option<Result<Instance, String>> {
    let Some(inst) = f.instances.get(id) else {
        return Some(Err("it was removed".into()));
    };
    let fresh = since.is_none_or(|t| inst.started_at.is_some_and(|s| s > t));
    match inst.state {
        InstanceState::Running if fresh => Some(Ok(inst.clone())),
        InstanceState::Crashed | InstanceState::Unhealthy | InstanceState::Stopped
            if fresh || since.is_none() =>
        {
            Some(Err(format!("it is {}", inst.state.as_str())))
        }
        _ => None,
    }
}

/// Takes an instance out: its routes first, then (if `ask_agent`) its container, then its
/// record.
pub(crate) async fn retire(ctl: &Controller, op_id: &str, inst: &Instance, ask_agent: bool) {
    // An operation's steps wait while the store is behind (`Controller::room`).
    ctl.room().await;
    unroute(ctl, op_id, inst);
    if ask_agent {
        ctl.unfenced().await;
        let req = InstanceRef { id: inst.id.clone(), operation_id: Some(op_id.to_string()) };
        let sent: Result<AgentAck, RequestError> = ctl.ask_agent(&inst.host, AgentVerb::Remove, req).await;
        if let Err(err) = sent {
            log::warn!("host {} did not confirm removing {}: {err}", inst.host, inst.id);
        }
    }
    ctl.step(
        op_id,
        StepName::RemoveInstance,
        Some(&inst.id),
        StepState::Done,
        format!("removed from {}", inst.host),
        vec![Change::InstanceRemoved { id: inst.id.clone() }],
    );
}

/// `REMOVE_ROUTE_REQUEST` for the instance's route (an app has one route per backend);
/// returns the revision of the removal when the route was in service, for a caller that
/// waits for the routers to apply it before the instance stops (a scale-down).
pub(crate) fn unroute(ctl: &Controller, op_id: &str, inst: &Instance) -> Option<u64> {
    ctl.mutate(|core| {
        let Some(r) = core.fleet.routes.get(&(inst.app.clone(), inst.endpoint.clone())).cloned() else {
            return (vec![], None);
        };
        let detail = format!("{} -x- {}", r.domain, r.backend);
        let step =
            step_draft(core, op_id, StepName::RemoveRouteRequest, Some(&inst.id), StepState::Done, &detail)
                // The operation ended (or is gone): the route goes all the same.
                .unwrap_or_else(|| {
                    Draft::new(EventKind::RemoveRouteRequest, detail)
                        .op(Some(op_id))
                        .instance(inst.id.clone())
                });
        let removed = step.change(Change::RouteRemoved { app: r.app.clone(), backend: r.backend.clone() });
        // The one draft gets the next revision.
        let rev = core.fleet.revision + 1;
        (vec![removed], r.serves().then_some(rev))
    })
}

/// Restarts one instance and waits until it runs again.
pub(crate) async fn restart_instance(ctl: &Controller, op_id: &str, id: &str) -> Result<(), String> {
    // An operation's steps wait while the store is behind (`Controller::room`).
    ctl.room().await;
    let Some(before) = ctl.read(|c| c.fleet.instances.get(id).cloned()) else {
        return Err(format!("no instance {id}"));
    };
    let since = before.started_at.unwrap_or(0);
    let mut counted = before.clone();
    counted.restarts += 1;
    // Out of the load balancer while it restarts; back in once healthy. Only the routes
    // this restart disabled come back: an operator's disable stands.
    let taken_out = set_routes_of(ctl, op_id, &before, RouteState::Enabled, RouteState::Disabled);
    ctl.step(
        op_id,
        StepName::Restart,
        Some(id),
        StepState::Running,
        format!("on {}", before.host),
        vec![Change::Instance(counted)],
    );
    let sent = send_restart(ctl, &before, Some(op_id)).await;
    let settled = match sent {
        Ok(()) => {
            ctl.wait_for_instance(id, ctl.config().step_timeout, |f| instance_settled(f, id, Some(since)))
                .await
        }
        Err(e) => Some(Err(e)),
    };
    if taken_out > 0 {
        // Even after a failed restart: the stale-backend TTL takes out a dead backend,
        // while a disabled route would never come back on its own. Redeployed (its agent
        // no longer had it), the instance may serve on a new address, and its routes moved
        // with it (intake's `routes_following`): they are found at its address now.
        let now = ctl.read(|c| c.fleet.instances.get(id).cloned()).unwrap_or_else(|| before.clone());
        set_routes_of(ctl, op_id, &now, RouteState::Disabled, RouteState::Enabled);
    }
    match settled {
        Some(Ok(_)) => {
            ctl.step(op_id, StepName::Restart, Some(id), StepState::Done, "running again", vec![]);
            Ok(())
        }
        other => {
            let reason = match other {
                Some(Err(why)) => format!("{id} did not come back: {why}"),
                _ => format!("{id} was not running again within {:?}", ctl.config().step_timeout),
            };
            ctl.step(op_id, StepName::Restart, Some(id), StepState::Failed, reason.clone(), vec![]);
            Err(reason)
        }
    }
}

/// Moves the routes of an instance from one state to another, one event each; returns
/// how many moved.
fn set_routes_of(ctl: &Controller, op_id: &str, inst: &Instance, from: RouteState, to: RouteState) -> usize {
    ctl.mutate(|core| {
        let drafts: Vec<Draft> = core
            .fleet
            .routes
            .values()
            .filter(|r| r.app == inst.app && r.backend == inst.endpoint && r.state == from)
            .map(|r| {
                let mut changed = r.clone();
                changed.state = to;
                let (kind, word) = match to {
                    RouteState::Disabled => (EventKind::RouteDisabled, "out of service while it restarts"),
                    RouteState::Enabled => (EventKind::RouteEnabled, "back in service"),
                };
                Draft::new(kind, format!("{} -> {} {word}", r.domain, r.backend))
                    .app(r.app.clone())
                    .instance(inst.id.clone())
                    .op(Some(op_id))
                    .change(Change::Route(changed))
            })
            .collect();
        let n = drafts.len();
        (drafts, n)
    })
}

/// Asks the instance's agent to restart it; an agent that no longer has it (it restarted,
/// or the container vanished) is sent the full spec to deploy it again.
pub(crate) async fn send_restart(
    ctl: &Controller,
    inst: &Instance,
    op_id: Option<&str>,
) -> Result<(), String> {
    ctl.unfenced().await;
    let req = InstanceRef { id: inst.id.clone(), operation_id: op_id.map(str::to_string) };
    let sent: Result<AgentAck, RequestError> = ctl.ask_agent(&inst.host, AgentVerb::Restart, req).await;
    match sent {
        Ok(_) => Ok(()),
        Err(RequestError::Refused(e)) if e.code == ErrorCode::NotFound => {
            let Some(app) = ctl.read(|c| c.fleet.apps.get(&inst.app).cloned()) else {
                return Err(format!("app {} is gone", inst.app));
            };
            let spec = spec_for(&app, inst, op_id.unwrap_or(""));
            let spec = InstanceSpec { version: inst.version.clone(), ..spec };
            ctl.ask_agent::<_, AgentAck>(&inst.host, AgentVerb::Deploy, spec)
                .await
                .map(|_| ())
                .map_err(|e| format!("host {} could not redeploy {}: {e}", inst.host, inst.id))
        }
        Err(e) => Err(format!("host {} did not restart {}: {e}", inst.host, inst.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod against_the_plan {
        //! The planner's plan (what the cockpit's preview shows) against what this deploy
        //! does: a controller and sim agents on an in-process bus, started from a fleet
        //! laid out by hand, then one deploy; the placements and retirements it made, in
        //! order, are the plan's.

        use std::sync::Arc;
        use std::time::Duration;

        use crate::bus::{Bus, LocalBus, Subscription};
        use crate::plane::agent::sim::{SimConfig, SimDriver};
        use crate::plane::agent::{self, AgentConfig, AgentHandle};
        use crate::plane::controller::store::MemoryStore;
        use crate::plane::controller::{Controller, ControllerConfig, ControllerHandle};
        use crate::protocol::clock::now_ms;
        use crate::protocol::deploy_plan::{self, Step, Target};
        use crate::protocol::scheduler::Usage;
        use crate::protocol::{
            Accepted, AppSpec, Constraints, DeployRequest, Envelope, Event, EventKind, Fleet, Host,
            HostState, InstanceReport, InstanceState, OperationState, Route, RouteState, RunSpec, Strategy,
            decode, subjects,
        };

        const PERIOD: Duration = Duration::from_millis(100);

        /// A host: id, AZ, tags, cores, MB.
        type HostSpec = (&'static str, &'static str, &'static [&'static str], u32, u64);

        /// A fleet to start from, and one deploy.
        struct Scene {
            name: &'static str,
            hosts: Vec<HostSpec>,
            /// The running app's instances: (index, host), all at version "1".
            old: Vec<(u32, &'static str)>,
            /// What each running instance reserves.
            old_needs: Constraints,
            version: &'static str,
            instances: u32,
            needs: Constraints,
            strategy: Strategy,
        }

        fn needs(cpu: f32, memory_mb: u64, azs: &[&str], tags: &[&str]) -> Constraints {
            let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
            Constraints { azs: strings(azs), tags: strings(tags), cpu, memory_mb }
        }

        /// The scene's fleet: its hosts up, its app at version 1 running and routed.
        fn fleet_of(scene: &Scene) -> Fleet {
            let mut f = Fleet::default();
            let now = now_ms();
            for (n, (id, az, tags, cores, mem)) in scene.hosts.iter().enumerate() {
                let mut host = Host::for_test(id, az, *cores, *mem);
                host.info.ip = format!("10.0.{}.1", n + 1);
                host.info.tags = tags.iter().map(|t| t.to_string()).collect();
                host.last_heartbeat = now;
                host.metrics.mem_total_mb = *mem;
                f.hosts.insert(host.info.id.clone(), host);
            }
            let app = AppSpec {
                name: "web".into(),
                version: "1".into(),
                instances: scene.old.len() as u32,
                image: "nginx:1".into(),
                port: 8080,
                constraints: scene.old_needs.clone(),
                domain: "web.local".into(),
                tags: vec![],
                run: RunSpec::default(),
                shortfall: None,
                digest: None,
            };
            let old = Target::of(&app, Strategy::Rolling);
            for (k, (index, host)) in scene.old.iter().enumerate() {
                let n = scene.hosts.iter().position(|h| h.0 == *host).expect("a host of the scene");
                let mut i = old.new_instance(format!("web-{index}-{k:04x}"), *index, host, 8080);
                i.ip = format!("10.0.{}.{}", n + 1, 31 + k);
                i.endpoint = format!("{}:8080", i.ip);
                i.container_id = format!("c{k:011}");
                i.state = InstanceState::Running;
                i.started_at = Some(now);
                let route = Route {
                    app: "web".into(),
                    domain: app.domain.clone(),
                    backend: i.endpoint.clone(),
                    state: RouteState::Enabled,
                    weight: 1,
                    stale: false,
                };
                f.routes.insert(("web".into(), route.backend.clone()), route);
                f.instances.insert(i.id.clone(), i);
            }
            f.apps.insert(app.name.clone(), app);
            f
        }

        /// A controller on `fleet`, and a sim agent per host that runs what the fleet
        /// places on it.
        async fn start(name: &str, fleet: Fleet) -> (Arc<dyn Bus>, ControllerHandle, Vec<AgentHandle>) {
            let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
            let store = Arc::new(MemoryStore::new(bus.clone()));
            let config = ControllerConfig {
                heartbeat_period: PERIOD,
                // A host gone stale on a loaded machine would be placed around: a minute.
                stale_after: 600,
                lost_after: 1200,
                step_timeout: Duration::from_secs(30),
                ..ControllerConfig::default()
            };
            let ctl =
                Controller::start(bus.clone(), config, fleet.clone(), store, None).await.expect("controller");
            let since = now_ms();
            let mut agents = Vec::new();
            for (n, h) in fleet.hosts.values().enumerate() {
                let driver = SimDriver::new(SimConfig {
                    seed: n as u64 + 1,
                    cpu_cores: h.info.cpu_cores,
                    memory_mb: h.info.memory_total_mb,
                    // Apart from any address the fleet's instances have.
                    container_ips: (1..200).map(|k| format!("10.250.{n}.{k}")).collect(),
                    speed: 100.0,
                    crashes_per_hour: 0.0,
                });
                driver.adopt(fleet.instances_on(&h.info.id).map(|i| {
                    let image = fleet.apps.get(&i.app).map(|a| a.image.clone()).unwrap_or_default();
                    (InstanceReport::of(i), i.cpu_limit, image)
                }));
                let config = AgentConfig {
                    host_id: h.info.id.clone(),
                    hostname: h.info.hostname.clone(),
                    ip: h.info.ip.clone(),
                    az: h.info.az.clone(),
                    tags: h.info.tags.clone(),
                    heartbeat_period: PERIOD,
                    poll_interval: Duration::from_millis(50),
                    metrics: None,
                };
                agents.push(agent::start(bus.clone(), driver, config).await.expect("agent"));
            }
            let heard = ctl
                .wait_for(Duration::from_secs(30), |f| {
                    f.hosts
                        .values()
                        .all(|h| h.state == HostState::Up && h.last_heartbeat >= since)
                        .then_some(())
                })
                .await;
            assert!(heard.is_some(), "{name}: every host heard from: {:#?}", ctl.snapshot().hosts);
            (bus, ctl, agents)
        }

        /// What a deploy did, in order: a host for each instance placed, an id for each
        /// instance retired.
        #[derive(Debug, PartialEq)]
        enum Did {
            Placed(String),
            Retired(String),
        }

        /// Reads the events up to the operation's end.
        async fn done_by(sub: &mut Subscription, op: &str) -> Vec<Did> {
            let mut did = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_secs(30), sub.next()).await;
                let Ok(Some(msg)) = next else { panic!("{op}: no end on the bus; so far {did:?}") };
                let Ok(env) = decode::<Event>(&msg.payload) else { continue };
                let e = env.body;
                if e.operation_id.as_deref() != Some(op) {
                    continue;
                }
                match e.kind {
                    EventKind::NewInstanceAndDeployWarRequest => did.extend(e.host.map(Did::Placed)),
                    EventKind::InstanceRemoved => did.extend(e.instance.map(Did::Retired)),
                    EventKind::OperationSucceeded | EventKind::OperationFailed => return did,
                    _ => {}
                }
            }
        }

        /// The plan in the same words, up to its first start that does not fit.
        fn planned(plan: &deploy_plan::DeployPlan) -> Vec<Did> {
            let mut hosts = plan.placements.iter();
            let mut out = Vec::new();
            for step in &plan.steps {
                match step {
                    Step::Start { .. } => match hosts.next() {
                        Some(h) => out.push(Did::Placed(h.clone())),
                        None => break,
                    },
                    Step::Retire { instance, .. } => out.push(Did::Retired(instance.id.clone())),
                }
            }
            out
        }

        async fn check(scene: Scene) {
            let req = DeployRequest {
                app: "web".into(),
                version: scene.version.into(),
                instances: scene.instances,
                constraints: Some(scene.needs.clone()),
                strategy: scene.strategy,
                ..DeployRequest::default()
            };
            check_on(scene.name, fleet_of(&scene), req).await;
        }

        /// Plans `req` on `fleet`, then has the controller deploy it there; returns the plan.
        async fn check_on(name: &str, fleet: Fleet, req: DeployRequest) -> deploy_plan::DeployPlan {
            let (bus, ctl, agents) = start(name, fleet).await;
            let before = ctl.snapshot();
            let needs = req.constraints.clone().expect("the deploy's constraints");
            let target = Target {
                app: &req.app,
                version: &req.version,
                instances: req.instances,
                constraints: &needs,
                strategy: req.strategy,
            };
            let plan = deploy_plan::plan(&before, &Usage::of(&before), &target);

            let mut sub = bus.subscribe(subjects::EVT_ALL).await.expect("events");
            let sent: Accepted = crate::bus::command(
                bus.as_ref(),
                subjects::CtlVerb::Deploy,
                &Envelope::new("test", req.clone()),
                Duration::from_secs(5),
            )
            .await
            .expect("deploy accepted");
            let op = sent.operation_id.expect("an operation");
            let end = ctl
                .wait_for(Duration::from_secs(60), |f| {
                    f.operations
                        .get(&op)
                        .filter(|o| o.finished_at.is_some())
                        .map(|o| (o.state, o.error.clone()))
                })
                .await;
            let Some((state, error)) = end else {
                panic!("{name}: the deploy did not end: {:#?}", ctl.snapshot().operations.get(&op))
            };
            let want = if plan.no_fit.is_some() { OperationState::Failed } else { OperationState::Succeeded };
            assert_eq!(state, want, "{name}: {error:?}; plan {:?}", plan.no_fit);
            let did = done_by(&mut sub, &op).await;
            assert!(!did.is_empty(), "{name}: the deploy placed or retired something");
            assert_eq!(did, planned(&plan), "{name}: the controller (left), the plan (right)");
            for a in agents {
                a.stop();
            }
            plan
        }

        fn half() -> Constraints {
            needs(0.5, 256, &[], &[])
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_rolling_replace_of_twelve_on_tight_hosts() {
            check(Scene {
                name: "rolling x12",
                hosts: vec![
                    ("h1", "az1", &[], 4, 8192),
                    ("h2", "az2", &[], 4, 8192),
                    ("h3", "az1", &[], 2, 8192),
                ],
                old: (0..8)
                    .map(|i| (i, "h1"))
                    .chain([(8, "h2"), (9, "h2"), (10, "h3"), (11, "h3")])
                    .collect(),
                old_needs: half(),
                version: "2",
                instances: 12,
                needs: half(),
                strategy: Strategy::Rolling,
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_rolling_deploy_that_scales_up_within_az_and_tag_constraints() {
            check(Scene {
                name: "rolling 3 -> 5, ssd only",
                hosts: vec![
                    ("h1", "az1", &["ssd"], 2, 4096),
                    ("h2", "az2", &[], 8, 16384),
                    ("h3", "az2", &["ssd"], 2, 4096),
                    ("h4", "az1", &["ssd", "gpu"], 4, 2048),
                ],
                old: vec![(0, "h1"), (1, "h3"), (2, "h1")],
                old_needs: half(),
                version: "2",
                instances: 5,
                needs: needs(0.5, 512, &[], &["ssd"]),
                strategy: Strategy::Rolling,
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_rolling_deploy_that_scales_down_into_one_az() {
            check(Scene {
                name: "rolling 5 -> 3, az2 only",
                hosts: vec![
                    ("h1", "az1", &[], 4, 8192),
                    ("h2", "az2", &[], 2, 8192),
                    ("h3", "az2", &[], 2, 8192),
                ],
                old: vec![(0, "h2"), (1, "h1"), (2, "h3"), (3, "h1"), (4, "h2")],
                old_needs: half(),
                version: "2",
                instances: 3,
                needs: needs(1.0, 256, &["az2"], &[]),
                strategy: Strategy::Rolling,
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn every_new_instance_at_once() {
            check(Scene {
                name: "all 3 -> 4",
                hosts: vec![("h1", "az1", &[], 4, 8192), ("h2", "az2", &[], 3, 8192)],
                old: vec![(0, "h1"), (1, "h2"), (2, "h1")],
                old_needs: half(),
                version: "2",
                instances: 4,
                needs: half(),
                strategy: Strategy::All,
            })
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_same_version_scaled_up_and_down() {
            let hosts: Vec<HostSpec> = vec![("h1", "az1", &[], 8, 8192), ("h2", "az2", &[], 8, 8192)];
            let thirteen: Vec<(u32, &str)> =
                (0..13).map(|i| (i, if i % 2 == 0 { "h1" } else { "h2" })).collect();
            check(Scene {
                name: "same version 13 -> 10",
                hosts: hosts.clone(),
                old: thirteen,
                old_needs: half(),
                version: "1",
                instances: 10,
                needs: half(),
                strategy: Strategy::Rolling,
            })
            .await;
            check(Scene {
                name: "same version 2 -> 5",
                hosts,
                old: vec![(0, "h2"), (3, "h2")],
                old_needs: half(),
                version: "1",
                instances: 5,
                needs: half(),
                strategy: Strategy::Rolling,
            })
            .await;
        }

        /// The sandbox's fixture fleet (six hosts, three apps, AZs and tags): shop-web, on
        /// the hosts tagged `web`, rolled to a new version and scaled up by one.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_rolling_deploy_on_the_fixture_fleet() {
            let (mut fleet, _) = crate::plane::fixture::fixture(7, 6, 0);
            let now = now_ms();
            for h in fleet.hosts.values_mut() {
                h.last_heartbeat = now;
            }
            let app = fleet.apps["shop-web"].clone();
            assert!(!app.constraints.tags.is_empty(), "a tag constraint: {:?}", app.constraints);
            let req = DeployRequest {
                app: app.name.clone(),
                version: "2.0.0".into(),
                instances: app.instances + 1,
                constraints: Some(app.constraints.clone()),
                strategy: Strategy::Rolling,
                ..DeployRequest::default()
            };
            let plan = check_on("fixture: shop-web rolled and scaled up", fleet, req).await;
            assert_eq!((plan.no_fit, plan.placements.len()), (None, 4), "{:?}", plan.placements);
        }

        /// Room for the first new instance only: the roll stops where the plan says it
        /// no longer fits, the old ones still serving.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_roll_that_runs_out_of_room_stops_where_the_plan_says() {
            check(Scene {
                name: "rolling, no room for the second",
                hosts: vec![("h1", "az1", &[], 2, 8192), ("h2", "az1", &[], 1, 8192)],
                old: (0..4).map(|i| (i, "h1")).collect(),
                old_needs: half(),
                version: "2",
                instances: 4,
                needs: needs(1.0, 256, &[], &[]),
                strategy: Strategy::Rolling,
            })
            .await;
        }
    }

    /// A drawn id that the fleet holds (the instance being replaced, say) is drawn again:
    /// an id names one placement.
    #[test]
    fn a_new_instance_id_ends_in_8_hex_digits() {
        let (fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let id = fresh_instance_id(&fleet, "web", 12);
        let suffix = id.strip_prefix("web-12-").expect("app and index first");
        assert_eq!(suffix.len(), 8, "{id}");
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{id}");
        crate::protocol::validate::instance_id(&id).expect("a valid id");
    }

    #[test]
    fn an_instance_id_the_fleet_holds_is_never_given_again() {
        let (fleet, _) = crate::plane::fixture::fixture(7, 4, 0);
        let held = fleet.instances.values().next().cloned().expect("an instance");
        let suffix = held.id.rsplit('-').next().expect("a suffix").to_string();
        assert_eq!(held.id, format!("{}-{}-{suffix}", held.app, held.index), "the fixture's ids");
        let mut draws = vec!["beef".to_string(), suffix.clone(), suffix].into_iter().rev();
        let id = fresh_instance_id_from(&fleet, &held.app, held.index, || draws.next().expect("a draw"));
        assert_ne!(id, held.id);
        assert_eq!(id, format!("{}-{}-beef", held.app, held.index));
        assert_eq!(draws.next(), None, "each held id was drawn again");
    }
}
