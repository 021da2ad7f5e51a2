//! Deploy, restart and replace operations, following the original flow:
//! PULL_IMAGE (an image from a registry pinned to its digest), ALLOCATE_REPOSITORY_REQUEST,
//! UPLOAD, NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST, then the agent's PULL_IMAGE (when the host
//! lacks the image), DOWNLOAD, RESTART and HEALTH_CHECK, then ADD_ROUTE_REQUEST and
//! INSTANCE_DEPLOYED.

use futures_util::future::join_all;

use super::core::{Controller, Draft};
use super::image;
use super::ops::step_draft;
use super::repair;
use super::scheduler::{PlacementRequest, place_with};
use crate::bus::RequestError;
use crate::protocol::envelope::new_id;
use crate::protocol::subjects::AgentVerb;
use crate::protocol::{
    AgentAck, App, Change, ErrorCode, EventKind, Fleet, Instance, InstanceRef, InstanceSpec, InstanceState,
    Route, RouteState, StepName, StepState, Strategy,
};
use crate::repository;

pub(crate) async fn run_deploy(
    ctl: Controller,
    op_id: String,
    app: App,
    strategy: Strategy,
    previous: Option<App>,
) {
    let mut app = app;
    let outcome = match image::pin(&ctl, &op_id, &mut app).await {
        Ok(()) => deploy(&ctl, &op_id, &app, strategy).await,
        Err(e) => Err(e),
    };
    if outcome.is_err()
        && let Some(prev) = previous.filter(|p| p.version != app.version)
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

/// `ALLOCATE_REPOSITORY_REQUEST` and `UPLOAD`: the artifact must be in its slot with the
/// checksum the deploy names, before any container is touched.
async fn check_artifact(ctl: &Controller, op_id: &str, app: &App) -> Result<(), String> {
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

async fn deploy(ctl: &Controller, op_id: &str, app: &App, strategy: Strategy) -> Result<String, String> {
    check_artifact(ctl, op_id, app).await?;

    let (old, current) = ctl.read(|core| {
        let mut old: Vec<Instance> = Vec::new();
        let mut current: Vec<Instance> = Vec::new();
        for i in core.fleet.instances_of(&app.name) {
            if i.version == app.version { current.push(i.clone()) } else { old.push(i.clone()) }
        }
        old.sort_by_key(|i| i.index);
        current.sort_by_key(|i| i.index);
        (old, current)
    });

    let desired = app.instances as usize;
    if old.is_empty() {
        // Same version: scale to the desired count, starting the new ones side by side.
        let used: Vec<u32> = current.iter().map(|i| i.index).collect();
        let missing = free_indexes(&used, desired.saturating_sub(current.len()));
        let started = join_all(missing.iter().map(|&idx| start_instance(ctl, op_id, app, idx, &[]))).await;
        let errors: Vec<String> = started.into_iter().filter_map(Result::err).collect();
        for extra in current.iter().skip(desired) {
            retire(ctl, op_id, extra, true).await;
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
    } else if strategy == Strategy::All {
        // Every new instance at once; the old ones go only when all the new are healthy.
        let started =
            join_all((0..desired as u32).map(|idx| start_instance(ctl, op_id, app, idx, &[]))).await;
        let errors: Vec<String> = started.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
        if !errors.is_empty() {
            for id in started.into_iter().flatten() {
                if let Some(inst) = ctl.read(|c| c.fleet.instances.get(&id).cloned()) {
                    retire(ctl, op_id, &inst, true).await;
                }
            }
            return Err(format!("new version not healthy, old one kept: {}", errors.join("; ")));
        }
        for prev in old.iter().chain(current.iter()) {
            retire(ctl, op_id, prev, true).await;
        }
    } else {
        // A new version rolls one instance at a time: start the new, wait until healthy,
        // then retire an old one. A failure stops the roll with the old ones still serving.
        let mut old = old.into_iter();
        for (n, idx) in free_indexes(&[], desired).into_iter().enumerate() {
            start_instance(ctl, op_id, app, idx, &[])
                .await
                .map_err(|e| format!("roll stopped after {n} of {desired}: {e}"))?;
            if let Some(prev) = old.next() {
                retire(ctl, op_id, &prev, true).await;
            }
        }
        for prev in old {
            retire(ctl, op_id, &prev, true).await;
        }
        for extra in current {
            retire(ctl, op_id, &extra, true).await;
        }
    }
    Ok(format!("{}@{} running x{}", app.name, app.version, app.instances))
}

/// The `n` lowest indexes not in `used`.
fn free_indexes(used: &[u32], n: usize) -> Vec<u32> {
    (0u32..).filter(|i| !used.contains(i)).take(n).collect()
}

fn spec_for(app: &App, inst: &Instance, op_id: &str) -> InstanceSpec {
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
/// apart from the current one (see `intake::sort_reports`).
fn fresh_instance_id(fleet: &crate::protocol::Fleet, app: &str, index: u32) -> String {
    fresh_instance_id_from(fleet, app, index, || new_id()[..4].to_string())
}

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
    app: &App,
    index: u32,
    exclude: &[String],
) -> Result<String, String> {
    // An operation's steps wait while the store is behind (`Controller::room`).
    ctl.room().await;
    let placed = ctl.mutate(|core| {
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
                // The app keeps its desired count and says why it is short; the health
                // manager places the instance once it fits.
                let short =
                    core.fleet.apps.get(&app.name).and_then(|a| {
                        repair::shortfall_draft(a, Some(repair::capacity_shortfall(&err.reason)))
                    });
                (d.into_iter().chain(short).collect(), Err(err.to_string()))
            }
            Ok(hosts) => {
                let host = hosts.into_iter().next().unwrap_or_default();
                let id = fresh_instance_id(&core.fleet, &app.name, index);
                let inst = Instance {
                    id: id.clone(),
                    app: app.name.clone(),
                    version: app.version.clone(),
                    index,
                    host: host.clone(),
                    ip: String::new(),
                    port: app.port,
                    endpoint: String::new(),
                    container_id: String::new(),
                    state: InstanceState::New,
                    started_at: None,
                    restarts: 0,
                    cpu_pct: 0.0,
                    mem_used_mb: 0,
                    mem_limit_mb: app.constraints.memory_mb,
                    cpu_limit: app.constraints.cpu,
                    last_exit: None,
                };
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
    });
    let (id, host, spec) = placed?;
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

    let healthy = wait_settled(ctl, op_id, &id).await;
    let inst = match healthy {
        Some(Ok(inst)) => inst,
        other => {
            // The agent's own words (e.g. "GET /health answered 404") say more than the state.
            let detail = ctl.read(|c| {
                c.fleet.operations.get(op_id).and_then(|op| {
                    op.steps
                        .iter()
                        .rev()
                        .find(|s| s.instance.as_deref() == Some(id.as_str()) && s.state == StepState::Failed)
                        .map(|s| s.detail.clone())
                })
            });
            let reason = match (other, detail) {
                (Some(Err(why)), Some(d)) if !d.is_empty() => format!("{id} failed: {why}: {d}"),
                (Some(Err(why)), _) => format!("{id} failed: {why}"),
                _ => format!("{id} was not healthy within {:?}", ctl.config().step_timeout),
            };
            ctl.step(op_id, StepName::HealthCheck, Some(&id), StepState::Failed, reason.clone(), vec![]);
            if let Some(inst) = ctl.read(|c| c.fleet.instances.get(&id).cloned()) {
                retire(ctl, op_id, &inst, true).await;
            }
            return Err(reason);
        }
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
    let routes: Vec<Route> = ctl.read(|c| {
        c.fleet.routes.values().filter(|r| r.app == inst.app && r.backend == inst.endpoint).cloned().collect()
    });
    for r in routes {
        ctl.step(
            op_id,
            StepName::RemoveRouteRequest,
            Some(&inst.id),
            StepState::Done,
            format!("{} -x- {}", r.domain, r.backend),
            vec![Change::RouteRemoved { app: r.app.clone(), backend: r.backend.clone() }],
        );
    }
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
        // while a disabled route would never come back on its own.
        set_routes_of(ctl, op_id, &before, RouteState::Disabled, RouteState::Enabled);
    }
    match settled {
        Some(Ok(now)) => {
            // Redeployed (its agent no longer had it), it may serve on a new address: its
            // routes follow it, or the old one goes stale and the new one gets no traffic.
            let moved = move_routes(ctl, &before, &now.endpoint);
            ctl.step(op_id, StepName::Restart, Some(id), StepState::Done, "running again", moved);
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

/// The changes that move `inst`'s routes from its old endpoint to `endpoint`, keeping
/// each route's state and weight; none when the address is the same.
fn move_routes(ctl: &Controller, inst: &Instance, endpoint: &str) -> Vec<Change> {
    if endpoint.is_empty() || endpoint == inst.endpoint {
        return Vec::new();
    }
    ctl.read(|core| {
        core.fleet
            .routes
            .values()
            .filter(|r| r.app == inst.app && r.backend == inst.endpoint)
            .flat_map(|r| {
                let moved = Route { backend: endpoint.to_string(), stale: false, ..r.clone() };
                [
                    Change::RouteRemoved { app: r.app.clone(), backend: r.backend.clone() },
                    Change::Route(moved),
                ]
            })
            .collect()
    })
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

    /// A drawn id that the fleet holds (the instance being replaced, say) is drawn again:
    /// an id names one placement.
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
