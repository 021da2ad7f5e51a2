//! The whole plane in one process on the in-process bus: deploy through the controller's
//! API, then the instances run and the routes exist. Needs no external service.

use std::time::Duration;

use quarterdeck::backend::{self, Feed, Inbound, Replica};
use quarterdeck::bus::{self, Bus};
use quarterdeck::protocol::subjects::CtlVerb;
use quarterdeck::protocol::{
    Accepted, Constraints, DeployRequest, Envelope, Event, EventKind, HistoryRequest, InstanceState,
    OperationState, RestartRequest, StepName, steps_in_history, subjects,
};

use crate::support::{eventually, fast_sandbox};

fn deploy_req(app: &str, version: &str, n: u32) -> DeployRequest {
    DeployRequest {
        app: app.into(),
        version: version.into(),
        instances: n,
        image: Some("tomcat:8.5".into()),
        port: Some(8080),
        constraints: Some(Constraints { azs: vec![], tags: vec![], cpu: 0.5, memory_mb: 512 }),
        ..DeployRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_runs_instances_and_adds_routes() {
    let sb = fast_sandbox(4).await;
    let accepted: Accepted = bus::command(
        sb.bus.as_ref() as &dyn Bus,
        CtlVerb::Deploy,
        &Envelope::new("test", deploy_req("shop-web", "1.0.0", 3)),
        Duration::from_secs(5),
    )
    .await
    .expect("deploy accepted");
    let op_id = accepted.operation_id.expect("an operation id");

    let ctl = sb.controller.clone();
    eventually(Duration::from_secs(20), "operation succeeds", || {
        ctl.snapshot().operations.get(&op_id).is_some_and(|o| o.state != OperationState::Running)
    })
    .await;
    let fleet = ctl.snapshot();
    let op = &fleet.operations[&op_id];
    assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
    let running: Vec<_> =
        fleet.instances_of("shop-web").filter(|i| i.state == InstanceState::Running).collect();
    assert_eq!(running.len(), 3);
    // Spread over both AZs.
    let azs: std::collections::HashSet<_> =
        running.iter().map(|i| fleet.hosts[&i.host].info.az.clone()).collect();
    assert_eq!(azs.len(), 2);
    for inst in &running {
        assert!(inst.endpoint.starts_with("10.101."), "{}", inst.endpoint);
        assert!(fleet.routes.contains_key(&("shop-web".to_string(), inst.endpoint.clone())));
    }
    // Every step of the original flow, in order, for each instance.
    let order = [
        StepName::NewInstanceAndDeployWarRequest,
        StepName::Download,
        StepName::Restart,
        StepName::HealthCheck,
        StepName::AddRouteRequest,
        StepName::InstanceDeployed,
    ];
    // Ended, the operation keeps only their counts; the steps are in the event history.
    assert!(op.steps.is_empty(), "{op:?}");
    let history: Vec<Event> = bus::request(
        sb.bus.as_ref() as &dyn Bus,
        subjects::CTL_HISTORY,
        &Envelope::new("test", HistoryRequest { since_ts: None, limit: None }),
        Duration::from_secs(5),
    )
    .await
    .expect("the history");
    let op_steps = steps_in_history(op, &history).expect("every step in the history");
    assert_eq!(op.compacted.map(|c| c.total as usize), Some(op_steps.len()), "{op:?}");
    for inst in &running {
        let steps: Vec<StepName> =
            op_steps.iter().filter(|s| s.instance.as_deref() == Some(&inst.id)).map(|s| s.name).collect();
        assert_eq!(steps, order, "steps of {}", inst.id);
    }
    assert_eq!(op_steps[0].name, StepName::AllocateRepositoryRequest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_backend_replica_matches_the_controller() {
    let sb = fast_sandbox(3).await;
    sb.deploy(deploy_req("api-gateway", "2.0", 2)).await.unwrap();
    let mut handle = backend::spawn(sb.bus.clone(), "test-cockpit".into());
    let mut replica = Replica::default();
    let ctl = sb.controller.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut saw_deployed = false;
    loop {
        let update =
            tokio::time::timeout_at(deadline, handle.updates.recv()).await.expect("updates").unwrap();
        match update {
            Inbound::Feed(Feed::Snapshot(f)) => replica.apply_snapshot(f, 0),
            Inbound::Feed(Feed::History(h)) => replica.apply_history(h),
            Inbound::Feed(Feed::Event(e)) => {
                saw_deployed |= e.kind == EventKind::InstanceDeployed;
                if replica.apply_event(e, 0).is_err() {
                    handle.commands.send(backend::BackendRequest::Resync).unwrap();
                }
            }
            _ => {}
        }
        let running = replica.fleet.instances.values().filter(|i| i.state == InstanceState::Running).count();
        if running == 2 && replica.fleet.routes.len() == 2 {
            break;
        }
    }
    assert!(saw_deployed || replica.events.iter().any(|e| e.kind == EventKind::InstanceDeployed));
    // Wait for quiet, then compare everything with a revision.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(u) = handle.updates.try_recv() {
        if let Inbound::Feed(Feed::Event(e)) = u {
            replica.apply_event(e, 0).unwrap();
        }
    }
    let truth = ctl.snapshot();
    assert_eq!(replica.fleet.revision, truth.revision);
    assert_eq!(replica.fleet.routes, truth.routes);
    assert_eq!(replica.fleet.apps, truth.apps);
    assert_eq!(replica.fleet.operations, truth.operations);
    let ids = |f: &quarterdeck::protocol::Fleet| {
        f.instances.values().map(|i| (i.id.clone(), i.state)).collect::<Vec<_>>()
    };
    assert_eq!(ids(&replica.fleet), ids(&truth));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_crash_recovery() {
    let sb = fast_sandbox(2).await;
    let ctl = sb.controller.clone();
    sb.deploy(deploy_req("session-cache", "7", 1)).await.unwrap();
    eventually(Duration::from_secs(20), "instance running", || {
        ctl.snapshot().instances.values().any(|i| i.state == InstanceState::Running)
    })
    .await;
    let inst = ctl.snapshot().instances.values().next().cloned().unwrap();
    let accepted: Accepted = bus::command(
        sb.bus.as_ref() as &dyn Bus,
        CtlVerb::Restart,
        &Envelope::new("test", RestartRequest::Instance(inst.id.clone())),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let op = accepted.operation_id.unwrap();
    eventually(Duration::from_secs(20), "restart done", || {
        ctl.snapshot().operations.get(&op).is_some_and(|o| o.state == OperationState::Succeeded)
    })
    .await;
    let after = ctl.snapshot().instances[&inst.id].clone();
    assert_eq!(after.restarts, 1);
    assert!(after.started_at > inst.started_at);

    // Unknown instance: a clear refusal.
    let err = bus::command::<_, Accepted>(
        sb.bus.as_ref() as &dyn Bus,
        CtlVerb::Restart,
        &Envelope::new("test", RestartRequest::Instance("nope".into())),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no instance"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_host_has_its_instances_placed_elsewhere() {
    let sb = fast_sandbox(2).await;
    let ctl = sb.controller.clone();
    sb.deploy(deploy_req("shop-web", "1", 2)).await.unwrap();
    eventually(Duration::from_secs(20), "two running", || {
        ctl.snapshot().instances.values().filter(|i| i.state == InstanceState::Running).count() == 2
    })
    .await;
    // host-01 stops heartbeating: stale after 3 periods, lost after 10 (200 ms each).
    sb.agents[0].stop();
    eventually(Duration::from_secs(20), "host-01 lost and both instances on host-02", || {
        let f = ctl.snapshot();
        f.hosts["host-01"].state == quarterdeck::protocol::HostState::Lost
            && f.instances
                .values()
                .filter(|i| i.host == "host-02" && i.state == InstanceState::Running)
                .count()
                == 2
            && f.routes.len() == 2
    })
    .await;
    let f = ctl.snapshot();
    assert_eq!(f.instances.len(), 2);
    assert!(f.routes.values().all(|r| f.instances.values().any(|i| i.endpoint == r.backend)));
    // The sandbox runs the alert rules too: the lost host fires `host_down`.
    eventually(Duration::from_secs(20), "a host_down alert on host-01", || {
        ctl.snapshot().alerts.get("host_down:host/host-01").is_some_and(|a| a.state.is_active())
    })
    .await;
}

/// `--sandbox-instances`: the fleet starts placed, and the simulated hosts run exactly
/// what the controller placed on them: their heartbeats keep every host up and every
/// instance running, and nothing is placed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_started_at_scale_runs_what_it_placed() {
    use quarterdeck::plane::sandbox::{Sandbox, SandboxConfig};
    let sb = Sandbox::start(SandboxConfig {
        seed: 5,
        hosts: 40,
        instances: 600,
        speed: 25.0,
        heartbeat_period: Duration::from_millis(200),
        crashes_per_hour: 0.0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let placed = sb.controller.snapshot();
    assert_eq!((placed.hosts.len(), placed.instances.len()), (40, 600));
    assert!(placed.apps.contains_key("shop-web"), "the seed apps are among them");
    // Several heartbeat periods later: every host still up, every instance still running
    // where it was placed, and no operation (no host was lost, nothing re-placed).
    let first_rev = placed.revision;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = sb.controller.snapshot();
    let hosts_up = now.hosts.values().filter(|h| h.state == quarterdeck::protocol::HostState::Up).count();
    assert_eq!(hosts_up, 40);
    for (id, i) in &placed.instances {
        let later = &now.instances[id];
        assert_eq!((later.host.as_str(), later.state), (i.host.as_str(), InstanceState::Running), "{id}");
    }
    assert!(now.operations.is_empty(), "{:?}", now.operations.keys().collect::<Vec<_>>());
    // Heartbeats changed metrics only: they are not events.
    assert_eq!(now.revision, first_rev, "no state changed");
}
