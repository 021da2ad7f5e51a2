//! Protocol tests: a round trip for every body, the JSON shapes that scripts rely on, and
//! garbage, which must give an error and never a panic.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::subjects;
use super::*;

const TS: u64 = 1_795_000_000_000;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn env<T>(body: T) -> Envelope<T> {
    Envelope {
        v: PROTOCOL_VERSION,
        id: "cmd-0001".into(),
        ts: TS,
        source: "test".into(),
        body,
        operator: None,
        deadline: None,
    }
}

fn metrics() -> HostMetrics {
    HostMetrics {
        cpu_pct: 37.5,
        load1: 0.75,
        load5: 1.25,
        load15: 2.0,
        mem_used_mb: 6_144,
        mem_total_mb: 16_384,
        disk_used_mb: 40_960,
        disk_total_mb: 102_400,
        net_rx_bps: 1_250_000,
        net_tx_bps: 640_000,
    }
}

fn host(id: &str, state: HostState) -> Host {
    Host {
        info: HostInfo {
            id: id.into(),
            hostname: format!("{id}.dc1"),
            ip: "10.101.1.11".into(),
            az: "az-1".into(),
            tags: vec!["ssd".into(), "prod".into()],
            cpu_cores: 8,
            memory_total_mb: 16_384,
            agent_version: "0.1.0/sim".into(),
            warnings: vec!["storage driver vfs is slow".into()],
        },
        last_heartbeat: TS - 1_500,
        state,
        metrics: metrics(),
        unmanaged: vec![],
        schedule: Default::default(),
    }
}

fn constraints() -> Constraints {
    Constraints {
        azs: vec!["az-1".into(), "az-2".into()],
        tags: vec!["ssd".into()],
        cpu: 0.5,
        memory_mb: 512,
    }
}

fn app(name: &str) -> AppSpec {
    AppSpec {
        name: name.into(),
        version: "1.4.2".into(),
        instances: 3,
        image: "tomcat:8".into(),
        port: 8080,
        constraints: constraints(),
        domain: format!("{name}.local"),
        tags: vec!["prod".into()],
        run: RunSpec {
            cmd: Some(vec!["httpd".into(), "-f".into()]),
            mount: "/app".into(),
            health: HealthCheck::Http { path: "/health".into() },
            artifact: Some(ArtifactRef {
                name: format!("{name}-1.4.2"),
                sha256: "ab".repeat(32),
                size: 1234,
            }),
            env: Default::default(),
            secrets: Default::default(),
        },
        shortfall: None,
        digest: None,
    }
}

fn instance(id: &str, app: &str, host: &str, state: InstanceState) -> Instance {
    Instance {
        id: id.into(),
        app: app.into(),
        version: "1.4.2".into(),
        index: 2,
        host: host.into(),
        ip: "10.101.1.31".into(),
        port: 8080,
        endpoint: "10.101.1.31:8080".into(),
        container_id: "0a1b2c3d4e5f".into(),
        state,
        started_at: Some(TS - 60_000),
        restarts: 1,
        cpu_pct: 12.5,
        mem_used_mb: 170,
        mem_limit_mb: 512,
        cpu_limit: 0.5,
        last_exit: None,
    }
}

fn route(app: &str, backend: &str, state: RouteState) -> Route {
    Route {
        app: app.into(),
        domain: format!("{app}.local"),
        backend: backend.into(),
        state,
        weight: 1,
        stale: false,
    }
}

fn step(name: StepName, state: StepState) -> OperationStep {
    OperationStep {
        name,
        instance: Some("shop-web-2-ab12".into()),
        state,
        started_at: TS - 2_000,
        finished_at: (state != StepState::Running).then_some(TS - 1_000),
        detail: format!("{} {state:?}", name.as_str()),
    }
}

fn operation(id: &str, kind: OperationKind, state: OperationState) -> Operation {
    let finished = state != OperationState::Running;
    Operation {
        id: id.into(),
        kind,
        app: "shop-web".into(),
        target: "shop-web@1.4.2 x3".into(),
        steps: vec![
            step(StepName::AllocateRepositoryRequest, StepState::Done),
            step(StepName::Upload, StepState::Done),
            step(StepName::NewInstanceAndDeployWarRequest, StepState::Running),
            step(StepName::HealthCheck, StepState::Failed),
        ],
        state,
        error: (state == OperationState::Failed).then(|| "shop-web-2 crashed".to_string()),
        started_at: TS - 5_000,
        finished_at: finished.then_some(TS),
        command_id: Some(format!("cmd-{id}")),
        compacted: None,
    }
}

fn fleet() -> Fleet {
    let mut f = Fleet { revision: 42, ..Fleet::default() };
    for h in
        [host("host-01", HostState::Up), host("host-02", HostState::Stale), host("host-03", HostState::Lost)]
    {
        f.hosts.insert(h.info.id.clone(), h);
    }
    for a in [app("shop-web"), app("billing")] {
        f.apps.insert(a.name.clone(), a);
    }
    for i in [
        instance("shop-web-0-aaaa", "shop-web", "host-01", InstanceState::Running),
        instance("shop-web-1-bbbb", "shop-web", "host-02", InstanceState::Unhealthy),
        instance("billing-0-cccc", "billing", "host-03", InstanceState::Crashed),
    ] {
        f.instances.insert(i.id.clone(), i);
    }
    for r in [
        route("shop-web", "10.101.1.31:8080", RouteState::Enabled),
        route("shop-web", "10.101.1.32:8080", RouteState::Disabled),
    ] {
        f.routes.insert(r.key(), r);
    }
    for o in [
        operation("op-running01", OperationKind::Deploy, OperationState::Running),
        operation("op-done00001", OperationKind::Restart, OperationState::Succeeded),
        operation("op-failed001", OperationKind::Replace, OperationState::Failed),
    ] {
        f.operations.insert(o.id.clone(), o);
    }
    f
}

fn every_change() -> Vec<Change> {
    vec![
        Change::Host(host("host-01", HostState::Up)),
        Change::App(app("shop-web")),
        Change::AppRemoved { name: "billing".into() },
        Change::Instance(instance("shop-web-0-aaaa", "shop-web", "host-01", InstanceState::Starting)),
        Change::InstanceRemoved { id: "billing-0-cccc".into() },
        Change::Route(route("shop-web", "10.101.1.33:8080", RouteState::Enabled)),
        Change::RouteRemoved { app: "shop-web".into(), backend: "10.101.1.32:8080".into() },
        // The running step 2 ends, a step 4 comes next, then the operation ends.
        Change::OperationStep(StepDelta {
            op: "op-running01".into(),
            index: 2,
            step: step(StepName::NewInstanceAndDeployWarRequest, StepState::Done),
        }),
        Change::OperationStep(StepDelta {
            op: "op-running01".into(),
            index: 4,
            step: step(StepName::InstanceDeployed, StepState::Done),
        }),
        Change::OperationEnded(OperationEnded {
            id: "op-running01".into(),
            state: OperationState::Succeeded,
            error: None,
            finished_at: TS,
            steps: StepCounts { total: 5, done: 4, failed: 1 },
        }),
        Change::Operation(operation("op-next00001", OperationKind::Deploy, OperationState::Running)),
        Change::OperationRemoved { id: "op-done00001".into() },
        Change::Alert(crate::protocol::Alert {
            id: "route_5xx:route/shop-web/10.101.1.33:8080".into(),
            rule: crate::protocol::AlertRule::Route5xx,
            subject: crate::protocol::AlertSubject::Route {
                app: "shop-web".into(),
                backend: "10.101.1.33:8080".into(),
            },
            state: crate::protocol::AlertState::Firing,
            since: TS,
            changed_at: TS,
            resolved_at: None,
            summary: "5xx 40% over 10s".into(),
            causes: vec![7, 9],
            acked_by: None,
        }),
        Change::Silence(crate::protocol::Silence {
            subject: crate::protocol::AlertSubject::Host("host-01".into()),
            until: TS + 3_600_000,
            by: "alice@jump".into(),
            reason: Some("planned".into()),
        }),
        Change::AlertRemoved { id: "crash_loop:instance/billing-0-cccc".into() },
        Change::SilenceRemoved { subject: "host/host-01".into() },
    ]
}

fn event(rev: u64, kind: EventKind, changes: Vec<Change>) -> Event {
    Event {
        rev,
        ts: TS + rev,
        kind,
        app: Some("shop-web".into()),
        host: Some("host-01".into()),
        instance: Some("shop-web-0-aaaa".into()),
        operation_id: Some("op-running01".into()),
        message: format!("{} happened", kind.as_str()),
        changes,
        audit: None,
    }
}

/// A pure notice: no optional fields, no changes.
fn bare_event(rev: u64) -> Event {
    Event {
        rev,
        ts: TS,
        kind: EventKind::HostUp,
        app: None,
        host: None,
        instance: None,
        operation_id: None,
        message: String::new(),
        changes: vec![],
        audit: None,
    }
}

fn report(id: &str, state: InstanceState) -> InstanceReport {
    InstanceReport {
        id: id.into(),
        app: "shop-web".into(),
        version: "1.4.2".into(),
        index: 0,
        state,
        ip: "10.101.1.31".into(),
        port: 8080,
        container_id: "0a1b2c3d4e5f".into(),
        started_at: Some(TS - 10_000),
        cpu_pct: 3.25,
        mem_used_mb: 200,
        mem_limit_mb: 512,
        last_exit: None,
    }
}

fn host_info() -> HostInfo {
    HostInfo {
        id: "host-01".into(),
        hostname: "host-01.dc1".into(),
        ip: "10.101.1.11".into(),
        az: "az-1".into(),
        tags: vec!["ssd".into()],
        cpu_cores: 8,
        memory_total_mb: 16_384,
        agent_version: "0.1.0/docker".into(),
        warnings: vec![],
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        host: host_info(),
        metrics: metrics(),
        instances: vec![
            report("shop-web-0-aaaa", InstanceState::Running),
            report("shop-web-1-bbbb", InstanceState::Starting),
        ],
        period_ms: 2_000,
        unmanaged: vec![ContainerReport {
            container_id: "f00dcafe0001".into(),
            name: "by-hand".into(),
            image: "busybox".into(),
            state: "running".into(),
            cpu_pct: 1.5,
            mem_used_mb: 12,
            mem_limit_mb: 0,
        }],
    }
}

fn spec() -> InstanceSpec {
    InstanceSpec {
        id: "shop-web-0-aaaa".into(),
        app: "shop-web".into(),
        version: "1.4.2".into(),
        index: 0,
        image: "tomcat:8".into(),
        port: 8080,
        cpu: 0.5,
        memory_mb: 512,
        operation_id: "op-running01".into(),
        run: RunSpec::default(),
    }
}

fn deploy_request() -> DeployRequest {
    DeployRequest {
        app: "shop-web".into(),
        version: "1.4.2".into(),
        instances: 3,
        image: Some("tomcat:8".into()),
        port: Some(8080),
        constraints: Some(constraints()),
        domain: Some("shop.example.com".into()),
        tags: Some(vec!["prod".into()]),
        run: Some(RunPatch {
            replace: true,
            cmd: app("shop-web").run.cmd,
            mount: None,
            health: Some(HealthCheck::Http { path: "/health".into() }),
            artifact: app("shop-web").run.artifact,
            env: None,
            secrets: None,
        }),
        strategy: Strategy::All,
    }
}

fn status(step: Option<StepName>) -> InstanceStatus {
    InstanceStatus {
        host: "host-01".into(),
        instance: report("shop-web-0-aaaa", InstanceState::Starting),
        step,
        operation_id: step.map(|_| "op-running01".to_string()),
        detail: if step.is_some() { "container started".into() } else { String::new() },
        step_state: None,
    }
}

// The lists below are checked against the enums by exhaustive matches, so a new variant
// fails to compile until it is listed (and so tested).

const ALL_KINDS: [EventKind; 39] = [
    EventKind::AllocateRepositoryRequest,
    EventKind::Upload,
    EventKind::NewInstanceAndDeployWarRequest,
    EventKind::PullImage,
    EventKind::Download,
    EventKind::Restart,
    EventKind::HealthCheck,
    EventKind::AddRouteRequest,
    EventKind::RemoveRouteRequest,
    EventKind::InstanceDeployed,
    EventKind::OperationStarted,
    EventKind::OperationSucceeded,
    EventKind::OperationFailed,
    EventKind::AppUpdated,
    EventKind::HostJoined,
    EventKind::HostUp,
    EventKind::HostStale,
    EventKind::HostLost,
    EventKind::InstanceState,
    EventKind::InstanceCrashed,
    EventKind::InstanceRemoved,
    EventKind::RouteAdded,
    EventKind::RouteRemoved,
    EventKind::RouteEnabled,
    EventKind::RouteDisabled,
    EventKind::RouteStale,
    EventKind::RouteRestored,
    EventKind::RouterError,
    EventKind::RouteWeightChanged,
    EventKind::Audit,
    EventKind::HostCordoned,
    EventKind::HostUncordoned,
    EventKind::HostDraining,
    EventKind::AlertFiring,
    EventKind::AlertAcknowledged,
    EventKind::AlertResolved,
    EventKind::AlertSilenced,
    EventKind::Note,
    EventKind::Unknown,
];

fn kind_is_listed(k: EventKind) -> bool {
    match k {
        EventKind::AllocateRepositoryRequest
        | EventKind::Upload
        | EventKind::NewInstanceAndDeployWarRequest
        | EventKind::PullImage
        | EventKind::Download
        | EventKind::Restart
        | EventKind::HealthCheck
        | EventKind::AddRouteRequest
        | EventKind::RemoveRouteRequest
        | EventKind::InstanceDeployed
        | EventKind::OperationStarted
        | EventKind::OperationSucceeded
        | EventKind::OperationFailed
        | EventKind::AppUpdated
        | EventKind::HostJoined
        | EventKind::HostUp
        | EventKind::HostStale
        | EventKind::HostLost
        | EventKind::InstanceState
        | EventKind::InstanceCrashed
        | EventKind::InstanceRemoved
        | EventKind::RouteAdded
        | EventKind::RouteRemoved
        | EventKind::RouteEnabled
        | EventKind::RouteDisabled
        | EventKind::RouteStale
        | EventKind::RouteRestored
        | EventKind::RouterError
        | EventKind::RouteWeightChanged
        | EventKind::Audit
        | EventKind::HostCordoned
        | EventKind::HostUncordoned
        | EventKind::HostDraining
        | EventKind::AlertFiring
        | EventKind::AlertAcknowledged
        | EventKind::AlertResolved
        | EventKind::AlertSilenced
        | EventKind::Note
        | EventKind::Unknown => ALL_KINDS.contains(&k),
    }
}

const ALL_STEPS: [StepName; 11] = [
    StepName::AllocateRepositoryRequest,
    StepName::Upload,
    StepName::NewInstanceAndDeployWarRequest,
    StepName::PullImage,
    StepName::Download,
    StepName::Restart,
    StepName::HealthCheck,
    StepName::AddRouteRequest,
    StepName::RemoveRouteRequest,
    StepName::RemoveInstance,
    StepName::InstanceDeployed,
];

fn step_is_listed(s: StepName) -> bool {
    match s {
        StepName::AllocateRepositoryRequest
        | StepName::Upload
        | StepName::NewInstanceAndDeployWarRequest
        | StepName::PullImage
        | StepName::Download
        | StepName::Restart
        | StepName::HealthCheck
        | StepName::AddRouteRequest
        | StepName::RemoveRouteRequest
        | StepName::RemoveInstance
        | StepName::InstanceDeployed => ALL_STEPS.contains(&s),
    }
}

const ALL_CODES: [ErrorCode; 11] = [
    ErrorCode::BadRequest,
    ErrorCode::NotFound,
    ErrorCode::NoCapacity,
    ErrorCode::Conflict,
    ErrorCode::NotReady,
    ErrorCode::ReadOnly,
    ErrorCode::Timeout,
    ErrorCode::Unavailable,
    ErrorCode::Internal,
    ErrorCode::Expired,
    ErrorCode::Unknown,
];

fn code_is_listed(c: ErrorCode) -> bool {
    match c {
        ErrorCode::BadRequest
        | ErrorCode::NotFound
        | ErrorCode::NoCapacity
        | ErrorCode::Conflict
        | ErrorCode::NotReady
        | ErrorCode::ReadOnly
        | ErrorCode::Timeout
        | ErrorCode::Unavailable
        | ErrorCode::Internal
        | ErrorCode::Expired
        | ErrorCode::Unknown => ALL_CODES.contains(&c),
    }
}

const ALL_INSTANCE_STATES: [InstanceState; 8] = [
    InstanceState::New,
    InstanceState::Deploying,
    InstanceState::Starting,
    InstanceState::Running,
    InstanceState::Unhealthy,
    InstanceState::Crashed,
    InstanceState::Stopped,
    InstanceState::Removed,
];

fn instance_state_is_listed(s: InstanceState) -> bool {
    match s {
        InstanceState::New
        | InstanceState::Deploying
        | InstanceState::Starting
        | InstanceState::Running
        | InstanceState::Unhealthy
        | InstanceState::Crashed
        | InstanceState::Stopped
        | InstanceState::Removed => ALL_INSTANCE_STATES.contains(&s),
    }
}

#[test]
fn the_variant_lists_are_complete() {
    assert!(ALL_KINDS.iter().all(|&k| kind_is_listed(k)));
    assert!(ALL_STEPS.iter().all(|&s| step_is_listed(s)));
    assert!(ALL_CODES.iter().all(|&c| code_is_listed(c)));
    assert!(ALL_INSTANCE_STATES.iter().all(|&s| instance_state_is_listed(s)));
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// Encodes an envelope around `body`, decodes it, checks it is unchanged, and returns the
/// JSON for shape checks.
fn round_trip<T>(body: T) -> Value
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let original = env(body);
    let bytes = encode(&original).unwrap();
    let back: Envelope<T> = decode(&bytes).unwrap();
    assert_eq!(back, original);
    serde_json::from_slice(&bytes).unwrap()
}

/// The body of an encoded envelope.
fn body_json<T>(body: T) -> Value
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    round_trip(body)["body"].clone()
}

#[test]
fn snapshot_round_trips() {
    let f = fleet();
    round_trip(f.clone());
    round_trip(Reply::Ok(f));
    round_trip(Fleet::default());
}

#[test]
fn events_with_every_change_round_trip() {
    round_trip(event(43, EventKind::AppUpdated, every_change()));
    for change in every_change() {
        round_trip(event(43, EventKind::InstanceState, vec![change]));
    }
    round_trip(bare_event(1));
    round_trip(Reply::Ok(vec![bare_event(1), event(2, EventKind::RouteAdded, every_change())]));
}

#[test]
fn every_event_kind_round_trips() {
    for kind in ALL_KINDS {
        let json = body_json(event(7, kind, vec![]));
        assert_eq!(json["kind"], kind.as_str());
        assert_eq!(kind.subject_token(), kind.as_str().to_ascii_lowercase());
    }
}

#[test]
fn requests_round_trip() {
    round_trip(deploy_request());
    round_trip(DeployRequest {
        image: None,
        port: None,
        constraints: None,
        domain: None,
        tags: None,
        ..deploy_request()
    });
    for r in [
        RestartRequest::Instance("shop-web-0-aaaa".into()),
        RestartRequest::App("shop-web".into()),
        RestartRequest::Host("host-01".into()),
    ] {
        round_trip(r);
    }
    round_trip(RouteRequest { app: "shop-web".into(), backend: "10.101.1.31:8080".into(), weight: Some(5) });
    round_trip(RouteRequest { app: "shop-web".into(), backend: "10.101.1.31:8080".into(), weight: None });
    round_trip(HistoryRequest { since_ts: Some(TS - 3_600_000), limit: Some(5_000) });
    round_trip(HistoryRequest::default());
    round_trip(SnapshotRequest::default());
}

#[test]
fn replies_round_trip() {
    let accepted = Accepted { operation_id: Some("op-running01".into()), rev: 44 };
    round_trip(accepted.clone());
    round_trip(Accepted { operation_id: None, rev: 45 });
    round_trip(Reply::Ok(accepted));
    round_trip(Reply::<()>::Ok(()));
    round_trip(Reply::Ok(AgentAck { instance_id: "shop-web-0-aaaa".into() }));
    for code in ALL_CODES {
        round_trip(Reply::<Accepted>::Error(WireError::new(code, "because")));
        round_trip(Reply::<Fleet>::Error(WireError::new(code, "")));
    }
}

#[test]
fn agent_bodies_round_trip() {
    round_trip(spec());
    round_trip(InstanceRef { id: "shop-web-0-aaaa".into(), operation_id: Some("op-running01".into()) });
    round_trip(InstanceRef { id: "shop-web-0-aaaa".into(), operation_id: None });
    round_trip(AgentAck { instance_id: "shop-web-0-aaaa".into() });
    for state in ALL_INSTANCE_STATES {
        round_trip(report("shop-web-0-aaaa", state));
    }
    round_trip(InstanceReport {
        started_at: None,
        container_id: String::new(),
        ..report("x", InstanceState::New)
    });
    round_trip(host_info());
    round_trip(heartbeat());
    round_trip(Heartbeat { instances: vec![], ..heartbeat() });
    round_trip(status(None));
    for s in ALL_STEPS {
        round_trip(status(Some(s)));
    }
}

// ---------------------------------------------------------------------------------------
// JSON shapes that scripts depend on
// ---------------------------------------------------------------------------------------

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn envelope_has_exactly_its_five_keys() {
    let json = round_trip(heartbeat());
    assert_eq!(keys(&json), ["body", "id", "source", "ts", "v"]);
    assert_eq!(json["v"], PROTOCOL_VERSION);
    assert_eq!(json["id"], "cmd-0001");
    assert_eq!(json["ts"], TS);
    assert_eq!(json["source"], "test");
    // A fresh envelope is stamped now, in ms since the epoch, with a new id.
    let a = Envelope::new("ctl", SnapshotRequest::default());
    let b = Envelope::new("ctl", SnapshotRequest::default());
    assert_eq!(a.v, PROTOCOL_VERSION);
    assert_ne!(a.id, b.id);
    assert!(a.ts > 1_600_000_000_000 && a.ts < 10_000_000_000_000, "{}", a.ts);
    assert_eq!(Envelope::with_id("same", "ctl", ()).id, "same");
}

#[test]
fn a_deadline_is_additive_and_optional_on_the_envelope() {
    // Stamped: the key is written, and the body is borrowed as it is.
    let cmd = env(RouteRequest { app: "shop-web".into(), backend: "10.0.0.1:8080".into(), weight: None });
    let bytes = encode(&cmd.stamped(TS + 2_000)).unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(keys(&json), ["body", "deadline", "id", "source", "ts", "v"]);
    assert_eq!(json["deadline"], TS + 2_000);
    let back: Envelope<RouteRequest> = decode(&bytes).unwrap();
    assert_eq!(back.deadline, Some(TS + 2_000));
    assert_eq!(back.body, cmd.body);
    // A second stamp never moves a deadline later.
    assert_eq!(back.stamped(TS + 9_000).deadline, Some(TS + 2_000));
    assert_eq!(back.stamped(TS + 1_000).deadline, Some(TS + 1_000));
    // An old sender's command has none, and decodes as it always did.
    let old: Envelope<HistoryRequest> = decode(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{}}"#).unwrap();
    assert_eq!(old.deadline, None);
}

#[test]
fn a_command_after_its_deadline_is_expired_and_one_without_never_is() {
    let mut cmd = env(());
    cmd.deadline = Some(TS + 2_000);
    assert_eq!(cmd.check_deadline(TS), Ok(()));
    assert_eq!(cmd.check_deadline(TS + 2_000), Ok(()), "the deadline itself is still in time");
    let late = cmd.check_deadline(TS + 2_001).unwrap_err();
    assert_eq!(late.code, ErrorCode::Expired);
    assert!(late.reason.contains("1 ms after its deadline"), "{}", late.reason);
    let very_late = cmd.check_deadline(TS + 22_000).unwrap_err();
    assert!(very_late.reason.contains("20000 ms"), "{}", very_late.reason);
    cmd.deadline = None;
    assert_eq!(cmd.check_deadline(u64::MAX), Ok(()));
    // The code is on the wire as `expired`, and an older peer reads it as unknown.
    let wire = serde_json::to_value(WireError::new(ErrorCode::Expired, "x")).unwrap();
    assert_eq!(wire["code"], "expired");
    assert_eq!(ErrorCode::Expired.as_str(), "expired");
}

#[test]
fn snapshot_json_has_the_shape_scripts_read() {
    let json = body_json(fleet());
    assert_eq!(keys(&json), ["apps", "hosts", "instances", "operations", "revision", "routes"]);
    assert_eq!(json["revision"], 42);
    for list in ["hosts", "apps", "instances", "routes", "operations"] {
        assert!(json[list].is_array(), "{list} must be an array: {}", json[list]);
    }
    let host_states: Vec<&str> =
        json["hosts"].as_array().unwrap().iter().map(|h| h["state"].as_str().unwrap()).collect();
    assert_eq!(host_states, ["up", "stale", "lost"]);
    let host = &json["hosts"][0];
    assert_eq!(host["id"], "host-01");
    assert_eq!(host["metrics"]["cpu_pct"], 37.5);
    let instance_states: Vec<&str> = json["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.get("state").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(instance_states, ["crashed", "running", "unhealthy"]);
    let route_states: Vec<&str> =
        json["routes"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(route_states, ["enabled", "disabled"]);
    let op = &json["operations"][2];
    assert_eq!(op["id"], "op-running01");
    assert_eq!(op["kind"], "deploy");
    assert_eq!(op["state"], "running");
    assert_eq!(op["steps"][0]["name"], "ALLOCATE_REPOSITORY_REQUEST");
    assert_eq!(op["steps"][0]["state"], "done");
    assert_eq!(op["steps"][3]["state"], "failed");
}

/// `host("host-01", Up)` as it was written before its facts became a `HostInfo` of their
/// own: one flat object, `warnings` after `metrics`. Snapshots, the state bucket and stored
/// events hold hosts of this shape.
const OLD_HOST: &str = r#"{"id":"host-01","hostname":"host-01.dc1","ip":"10.101.1.11","az":"az-1",
    "tags":["ssd","prod"],"cpu_cores":8,"memory_total_mb":16384,"agent_version":"0.1.0/sim",
    "last_heartbeat":1794999998500,"state":"up",
    "metrics":{"cpu_pct":37.5,"load1":0.75,"load5":1.25,"load15":2.0,"mem_used_mb":6144,
        "mem_total_mb":16384,"disk_used_mb":40960,"disk_total_mb":102400,"net_rx_bps":1250000,
        "net_tx_bps":640000},
    "warnings":["storage driver vfs is slow"],"unmanaged":[]}"#;

#[test]
fn a_host_of_the_old_flat_shape_reads_and_writes_back_the_same() {
    let want = host("host-01", HostState::Up);
    let old: Value = serde_json::from_str(OLD_HOST).unwrap();
    let read: Host = serde_json::from_str(OLD_HOST).unwrap();
    assert_eq!(read, want);
    // Written back, the same keys and values: no `info` object, nothing lost.
    assert_eq!(serde_json::to_value(&read).unwrap(), old);
    let compact = serde_json::to_string(&read).unwrap();
    assert!(!compact.contains("\"info\""), "{compact}");
    // From before cordons: open.
    assert_eq!(read.schedule, HostSchedule::Open);

    // Inside a snapshot, and as a stored event's change, with the tag first (the fast
    // path) and last (the derived reader).
    let snapshot = format!(
        r#"{{"revision":7,"hosts":[{OLD_HOST}],"apps":[],"instances":[],"routes":[],"operations":[]}}"#
    );
    let fleet: Fleet = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(fleet.hosts.get("host-01"), Some(&want));
    let fields = OLD_HOST.trim_start_matches('{').trim_end_matches('}');
    for change in [format!(r#"{{"type":"host",{fields}}}"#), format!(r#"{{{fields},"type":"host"}}"#)] {
        let read: Change = serde_json::from_str(&change).unwrap();
        assert_eq!(read, Change::Host(want.clone()), "{change}");
    }

    // What an old writer could leave out still defaults, and unknown keys are ignored.
    let bare = r#"{"id":"h","hostname":"h","ip":"10.0.0.1","az":"a","cpu_cores":1,
        "memory_total_mb":512,"agent_version":"0.0.1","last_heartbeat":0,"state":"lost",
        "from_the_future":{"x":1}}"#;
    let read: Host = serde_json::from_str(bare).unwrap();
    assert!(read.info.tags.is_empty() && read.info.warnings.is_empty() && read.unmanaged.is_empty());
    assert_eq!(read.metrics, HostMetrics::default());
    assert_eq!(read.state, HostState::Lost);

    // A fact missing is named, whichever part of the host it belongs to.
    let no_ip = OLD_HOST.replace(r#""ip":"10.101.1.11","#, "");
    let err = serde_json::from_str::<Host>(&no_ip).unwrap_err().to_string();
    assert!(err.contains("missing field `ip`"), "{err}");
    let no_state = OLD_HOST.replace(r#""state":"up","#, "");
    let err = serde_json::from_str::<Host>(&no_state).unwrap_err().to_string();
    assert!(err.contains("missing field `state`"), "{err}");
}

/// A cordoned or draining host keeps its schedule through JSON, beside (not in place of)
/// its liveness `state`.
#[test]
fn a_host_s_schedule_round_trips_beside_its_state() {
    for schedule in [HostSchedule::Cordoned, HostSchedule::Draining { done: 3, total: 7 }] {
        let mut h = host("host-01", HostState::Stale);
        h.schedule = schedule;
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["state"], "stale");
        let back: Host = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, h, "{v}");
    }
    let mut h = host("host-01", HostState::Up);
    h.schedule = HostSchedule::Draining { done: 3, total: 7 };
    assert_eq!(
        serde_json::to_value(&h).unwrap()["schedule"],
        serde_json::json!({"state": "draining", "done": 3, "total": 7})
    );
    assert_eq!(h.schedule.label(), "draining 3/7");
    assert_eq!(HostSchedule::Cordoned.label(), "cordoned");
}

#[test]
fn enum_strings_match_their_as_str() {
    for s in ALL_INSTANCE_STATES {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        assert_eq!(s.as_str(), s.as_str().to_ascii_lowercase());
    }
    for s in [HostState::Up, HostState::Stale, HostState::Lost] {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for s in [RouteState::Enabled, RouteState::Disabled] {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for s in ALL_STEPS {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for k in ALL_KINDS {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    for c in ALL_CODES {
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
    }
    assert_eq!(
        serde_json::to_value([OperationKind::Deploy, OperationKind::Restart, OperationKind::Replace])
            .unwrap(),
        json!(["deploy", "restart", "replace"])
    );
    assert_eq!(
        serde_json::to_value([OperationState::Running, OperationState::Succeeded, OperationState::Failed])
            .unwrap(),
        json!(["running", "succeeded", "failed"])
    );
}

#[test]
fn event_json_names_its_kind_and_tags_its_changes() {
    let json = body_json(event(43, EventKind::InstanceDeployed, every_change()));
    assert_eq!(json["kind"], "INSTANCE_DEPLOYED");
    assert_eq!(json["rev"], 43);
    let types: Vec<&str> =
        json["changes"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "host",
            "app",
            "app_removed",
            "instance",
            "instance_removed",
            "route",
            "route_removed",
            "operation_step",
            "operation_step",
            "operation_ended",
            "operation",
            "operation_removed",
            "alert",
            "silence",
            "alert_removed",
            "silence_removed"
        ]
    );
    assert_eq!(json["changes"][12]["subject"], "route/shop-web/10.101.1.33:8080");
    assert_eq!(json["changes"][12]["rule"], "route_5xx");
    assert_eq!(json["changes"][8]["op"], "op-running01");
    assert_eq!(json["changes"][8]["index"], 4);
    assert_eq!(json["changes"][8]["step"]["name"], "INSTANCE_DEPLOYED");
    assert_eq!(
        json["changes"][9],
        json!({"type": "operation_ended", "id": "op-running01", "state": "succeeded", "error": null,
               "finished_at": TS, "steps": {"total": 5, "done": 4, "failed": 1}})
    );
    assert_eq!(json["changes"][11], json!({"type": "operation_removed", "id": "op-done00001"}));
    // Struct changes carry their fields beside the tag.
    assert_eq!(json["changes"][0]["id"], "host-01");
    assert_eq!(json["changes"][2], json!({"type": "app_removed", "name": "billing"}));
    assert_eq!(
        json["changes"][6],
        json!({"type": "route_removed", "app": "shop-web", "backend": "10.101.1.32:8080"})
    );
}

#[test]
fn errors_carry_a_code_and_a_reason() {
    let json =
        body_json(Reply::<Accepted>::Error(WireError::bad_request("instances must be 1 to 500, not 0")));
    assert_eq!(
        json,
        json!({"error": {"code": "bad_request", "reason": "instances must be 1 to 500, not 0"}})
    );
    let json = body_json(Reply::<Accepted>::Error(WireError::not_found("no app \"x\"")));
    assert_eq!(json["error"]["code"], "not_found");
    let json = body_json(Reply::Ok(Accepted { operation_id: Some("op-1".into()), rev: 9 }));
    assert_eq!(json, json!({"ok": {"operation_id": "op-1", "rev": 9}}));
    assert_eq!(body_json(Reply::<()>::Ok(())), json!({"ok": null}));
    let e = WireError::new(ErrorCode::NoCapacity, "full");
    assert_eq!(e.to_string(), "full (no_capacity)");
    assert_eq!(Reply::<()>::Error(e.clone()).into_result(), Err(e.clone()), "into_result");
    assert_eq!(Reply::from(Err::<(), _>(e.clone())), Reply::Error(e));
}

#[test]
fn request_json_shapes() {
    assert_eq!(body_json(SnapshotRequest::default()), json!({}));
    assert_eq!(body_json(RestartRequest::Instance("i-1".into())), json!({"instance": "i-1"}));
    assert_eq!(body_json(RestartRequest::App("a".into())), json!({"app": "a"}));
    assert_eq!(body_json(RestartRequest::Host("h".into())), json!({"host": "h"}));
    // Optional fields may be left out entirely.
    let minimal = br#"{"v":1,"id":"c","ts":1,"source":"s",
        "body":{"app":"shop-web","version":"2.0","instances":1}}"#;
    let d: Envelope<DeployRequest> = decode(minimal).unwrap();
    assert_eq!(
        d.body,
        DeployRequest {
            app: "shop-web".into(),
            version: "2.0".into(),
            instances: 1,
            image: None,
            port: None,
            constraints: None,
            domain: None,
            tags: None,
            run: None,
            strategy: Strategy::Rolling,
        }
    );
    let r: Envelope<RouteRequest> =
        decode(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"app":"a","backend":"1.2.3.4:80"}}"#).unwrap();
    assert_eq!(r.body.weight, None);
    let h: Envelope<HistoryRequest> = decode(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{}}"#).unwrap();
    assert_eq!(h.body, HistoryRequest::default());
}

#[test]
fn status_json_names_its_step() {
    let json = body_json(status(Some(StepName::NewInstanceAndDeployWarRequest)));
    assert_eq!(json["step"], "NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST");
    assert_eq!(json["instance"]["state"], "starting");
    let json = body_json(status(None));
    assert_eq!(json["step"], Value::Null);
}

// ---------------------------------------------------------------------------------------
// Garbage: always an error, never a panic
// ---------------------------------------------------------------------------------------

/// A deterministic xorshift64 generator: no dependency, same cases every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Decodes `bytes` as every body type; returns how many decodes succeeded.
fn decode_as_everything(bytes: &[u8]) -> usize {
    [
        decode::<Event>(bytes).is_ok(),
        decode::<Heartbeat>(bytes).is_ok(),
        decode::<Fleet>(bytes).is_ok(),
        decode::<InstanceStatus>(bytes).is_ok(),
        decode::<InstanceSpec>(bytes).is_ok(),
        decode::<InstanceRef>(bytes).is_ok(),
        decode::<DeployRequest>(bytes).is_ok(),
        decode::<RestartRequest>(bytes).is_ok(),
        decode::<RouteRequest>(bytes).is_ok(),
        decode::<Reply<Accepted>>(bytes).is_ok(),
        decode::<Reply<AgentAck>>(bytes).is_ok(),
    ]
    .into_iter()
    .filter(|ok| *ok)
    .count()
}

fn malformed<T: DeserializeOwned + Debug>(bytes: &[u8]) {
    match decode::<T>(bytes) {
        Err(ProtocolError::Malformed(_)) => {}
        other => panic!("{:?} should be malformed, got {other:?}", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn empty_bytes_are_malformed() {
    malformed::<Event>(b"");
    malformed::<Heartbeat>(b"");
    malformed::<Fleet>(b"");
    malformed::<SnapshotRequest>(b"");
    assert_eq!(decode_as_everything(b""), 0);
    assert_eq!(decode_as_everything(b"   \n"), 0);
}

#[test]
fn random_bytes_are_refused() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    // Raw noise, then noise drawn from JSON's own alphabet, which gets further into the
    // parser.
    let alphabet = br#"{}[]":,0123456789.-+eEtruefalsn vidtsbody\u"#;
    for case in 0..2_000 {
        let len = rng.below(if case % 10 == 0 { 4_096 } else { 96 }) as usize;
        let bytes: Vec<u8> = if case % 2 == 0 {
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            (0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect()
        };
        assert_eq!(decode_as_everything(&bytes), 0, "case {case}: {bytes:?}");
    }
}

#[test]
fn mutated_messages_never_panic() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let valid = [
        encode(&env(event(43, EventKind::AppUpdated, every_change()))).unwrap(),
        encode(&env(heartbeat())).unwrap(),
        encode(&env(fleet())).unwrap(),
    ];
    for case in 0..2_000 {
        let mut bytes = valid[case % valid.len()].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len() as u64) as usize;
            match rng.below(3) {
                0 => bytes[at] = rng.next() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"{}[]\",:0"[rng.below(8) as usize]),
            }
        }
        // Whatever the outcome, it is an outcome and not a panic.
        let _ = decode_as_everything(&bytes);
    }
}

#[test]
fn every_truncation_is_refused() {
    let messages = [
        encode(&env(event(43, EventKind::InstanceDeployed, every_change()))).unwrap(),
        encode(&env(heartbeat())).unwrap(),
    ];
    for bytes in &messages {
        assert!(decode::<Event>(bytes).is_ok() || decode::<Heartbeat>(bytes).is_ok());
        for end in 0..bytes.len() {
            let prefix = &bytes[..end];
            assert!(decode::<Event>(prefix).is_err(), "event prefix {end}");
            assert!(decode::<Heartbeat>(prefix).is_err(), "heartbeat prefix {end}");
        }
    }
}

#[test]
fn json_of_the_wrong_type_is_malformed() {
    for text in [
        "null",
        "true",
        "42",
        "\"event\"",
        "[]",
        "[1,2,3]",
        "{}",
        r#"{"v":1}"#,
        r#"{"v":"1","id":"c","ts":1,"source":"s","body":{}}"#,
        r#"{"v":1.5,"id":"c","ts":1,"source":"s","body":{}}"#,
        r#"{"v":-1,"id":"c","ts":1,"source":"s","body":{}}"#,
        r#"{"v":1,"id":7,"ts":1,"source":"s","body":{}}"#,
        r#"{"v":1,"id":"c","ts":"now","source":"s","body":{}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":null,"body":{}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":[]}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":null}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":-1,"ts":1,"kind":"HOST_UP","message":""}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1.5,"ts":1,"kind":"HOST_UP","message":""}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1e400,"ts":1,"kind":"HOST_UP","message":""}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1,"ts":1,"kind":7,"message":""}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1,"ts":1,"kind":"HOST_UP","message":""}} trailing"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1,"ts":1,"kind":"HOST_UP","message":"","changes":{}}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1,"ts":1,"kind":"HOST_UP","message":"","changes":[{"type":"nope"}]}}"#,
        r#"{"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1,"ts":1,"kind":"HOST_UP","message":"","changes":[{"name":"x"}]}}"#,
        r#"{"v":1,"v":1,"id":"c","ts":1,"source":"s","body":{"rev":1,"ts":1,"kind":"HOST_UP","message":""}}"#,
    ] {
        malformed::<Event>(text.as_bytes());
    }
    // A valid message of one type is not a message of another.
    let hb = encode(&env(heartbeat())).unwrap();
    malformed::<Event>(&hb);
    malformed::<Fleet>(&hb);
    let ev = encode(&env(bare_event(1))).unwrap();
    malformed::<Heartbeat>(&ev);
    malformed::<InstanceSpec>(&ev);
    // Maps travel as arrays; an object is refused.
    malformed::<Fleet>(
        br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"revision":1,"hosts":{},"apps":[],"instances":[],"routes":[],"operations":[]}}"#,
    );
    // A state outside the enum is refused.
    let mut bad_state = serde_json::to_value(env(heartbeat())).unwrap();
    bad_state["body"]["instances"][0]["state"] = json!("RUNNING");
    malformed::<Heartbeat>(&serde_json::to_vec(&bad_state).unwrap());
    // More than one variant for a restart is refused.
    malformed::<RestartRequest>(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"app":"a","host":"h"}}"#);
    malformed::<RestartRequest>(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"pod":"a"}}"#);
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let depth = 100_000;
    let mut text = String::from(r#"{"v":1,"id":"c","ts":1,"source":"s","body":"#);
    text.push_str(&"[".repeat(depth));
    text.push_str(&"]".repeat(depth));
    text.push('}');
    assert_eq!(decode_as_everything(text.as_bytes()), 0);
    let nested_objects = format!("{}{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    assert_eq!(decode_as_everything(nested_objects.as_bytes()), 0);
}

#[test]
fn other_versions_are_refused_by_name() {
    let unsupported = |bytes: &[u8], found: u32| {
        assert_eq!(
            decode::<Event>(bytes).unwrap_err(),
            ProtocolError::UnsupportedVersion { found },
            "{}",
            String::from_utf8_lossy(bytes)
        );
    };
    // Same body shape, newer version.
    let mut v3 = serde_json::to_value(env(bare_event(1))).unwrap();
    v3["v"] = json!(3);
    unsupported(&serde_json::to_vec(&v3).unwrap(), 3);
    // A newer version that changed the body's shape, or dropped envelope fields.
    unsupported(br#"{"v":3,"id":"c","ts":1,"source":"s","body":{"revision":"r9","what":["x"]}}"#, 3);
    unsupported(br#"{"v":3,"body":17}"#, 3);
    unsupported(br#"{"v":3}"#, 3);
    unsupported(br#"{"id":"c","v":3,"ts":"later","extra":{"a":[1,2]}}"#, 3);
    unsupported(br#"{"v":0,"id":"c","ts":1,"source":"s","body":{}}"#, 0);
    let err = decode::<Heartbeat>(br#"{"v":3,"body":{}}"#).unwrap_err();
    assert_eq!(err, ProtocolError::UnsupportedVersion { found: 3 });
    assert_eq!(err.to_string(), "unsupported protocol version 3 (this build speaks v2, reads v1 to v2)");
    // A v1 message is read (v2 only added change types); this build writes v2.
    let mut v1 = serde_json::to_value(env(bare_event(1))).unwrap();
    assert_eq!(v1["v"], json!(2));
    v1["v"] = json!(1);
    assert_eq!(decode::<Event>(&serde_json::to_vec(&v1).unwrap()).map(|e| e.body), Ok(bare_event(1)));
    assert_eq!(decode_body::<Event>(&serde_json::to_vec(&v1).unwrap()), Ok(bare_event(1)));
    // Version 1 with a broken body is malformed, not a version problem.
    malformed::<Event>(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"revision":"r9"}}"#);
}

/// Removes each key of `object` in turn from a valid message and checks that decoding
/// fails exactly for the keys not in `optional`.
fn check_required_keys<T: DeserializeOwned + Debug>(message: &Value, path: &[&str], optional: &[&str]) {
    let mut target = message;
    for p in path {
        target = &target[*p];
    }
    let names: Vec<String> = target.as_object().unwrap().keys().cloned().collect();
    assert!(!names.is_empty());
    for name in names {
        let mut m = message.clone();
        let mut obj = &mut m;
        for p in path {
            obj = &mut obj[*p];
        }
        obj.as_object_mut().unwrap().remove(&name);
        let bytes = serde_json::to_vec(&m).unwrap();
        let result = decode::<T>(&bytes);
        if optional.contains(&name.as_str()) {
            assert!(result.is_ok(), "{path:?}.{name} is optional: {result:?}");
        } else {
            assert!(
                matches!(result, Err(ProtocolError::Malformed(_))),
                "{path:?}.{name} is required: {result:?}"
            );
        }
    }
}

#[test]
fn missing_fields_are_refused_and_optional_ones_default() {
    let ev = serde_json::to_value(env(event(5, EventKind::Download, every_change()))).unwrap();
    check_required_keys::<Event>(&ev, &[], &[]);
    check_required_keys::<Event>(&ev, &["body"], &["app", "host", "instance", "operation_id", "changes"]);
    let hb = serde_json::to_value(env(heartbeat())).unwrap();
    check_required_keys::<Heartbeat>(&hb, &[], &[]);
    check_required_keys::<Heartbeat>(&hb, &["body"], &["unmanaged"]);
    check_required_keys::<Heartbeat>(&hb, &["body", "host"], &["tags", "warnings"]);
    // Float metrics read a missing or null value as 0 (serde writes NaN as null).
    check_required_keys::<Heartbeat>(&hb, &["body", "metrics"], &["cpu_pct", "load1", "load5", "load15"]);
    let st = serde_json::to_value(env(status(Some(StepName::Download)))).unwrap();
    check_required_keys::<InstanceStatus>(&st, &["body"], &["step", "operation_id", "detail"]);
    check_required_keys::<InstanceStatus>(
        &st,
        &["body", "instance"],
        &["container_id", "started_at", "cpu_pct", "mem_used_mb", "mem_limit_mb", "last_exit"],
    );
    let f = serde_json::to_value(env(fleet())).unwrap();
    check_required_keys::<Fleet>(&f, &["body"], &[]);
    let dr = serde_json::to_value(env(deploy_request())).unwrap();
    check_required_keys::<DeployRequest>(
        &dr,
        &["body"],
        &["image", "port", "constraints", "domain", "tags", "run", "strategy"],
    );
    // A missing cpu reads as 0, which the controller's validation refuses by name.
    check_required_keys::<DeployRequest>(&dr, &["body", "constraints"], &["azs", "tags", "cpu"]);
    let sp = serde_json::to_value(env(spec())).unwrap();
    check_required_keys::<InstanceSpec>(&sp, &["body"], &["cpu", "run"]);
    let acc =
        serde_json::to_value(env(Reply::Ok(Accepted { operation_id: Some("op".into()), rev: 1 }))).unwrap();
    check_required_keys::<Reply<Accepted>>(&acc, &["body", "ok"], &["operation_id"]);
    let err = serde_json::to_value(env(Reply::<Accepted>::Error(WireError::bad_request("x")))).unwrap();
    check_required_keys::<Reply<Accepted>>(&err, &["body", "error"], &[]);
}

// ---------------------------------------------------------------------------------------
// Forward compatibility
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_fields_are_ignored() {
    let original = env(event(43, EventKind::RouteAdded, every_change()));
    let mut json = serde_json::to_value(&original).unwrap();
    json["trace"] = json!({"span": "abc", "sampled": true});
    json["body"]["priority"] = json!(3);
    json["body"]["changes"][0]["rack"] = json!("r12");
    json["body"]["changes"][2]["reason"] = json!("retired");
    let back: Envelope<Event> = decode(&serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(back, original);

    let original = env(heartbeat());
    let mut json = serde_json::to_value(&original).unwrap();
    json["hops"] = json!(2);
    json["body"]["gpu"] = json!([{"model": "x"}]);
    json["body"]["host"]["rack"] = json!("r12");
    json["body"]["metrics"]["psi"] = json!(0.5);
    json["body"]["instances"][1]["health_url"] = json!("/health");
    let back: Envelope<Heartbeat> = decode(&serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(back, original);

    let original = env(fleet());
    let mut json = serde_json::to_value(&original).unwrap();
    json["body"]["regions"] = json!(["eu"]);
    json["body"]["routes"][0]["tls"] = json!(true);
    let back: Envelope<Fleet> = decode(&serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(back, original);

    let back: Envelope<SnapshotRequest> =
        decode(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"include":"all"}}"#).unwrap();
    assert_eq!(back.body, SnapshotRequest::default());
}

#[test]
fn unknown_event_kinds_and_error_codes_decode_as_unknown() {
    let mut json = serde_json::to_value(env(bare_event(3))).unwrap();
    json["body"]["kind"] = json!("CANARY_PROMOTED");
    let ev: Envelope<Event> = decode(&serde_json::to_vec(&json).unwrap()).unwrap();
    assert_eq!(ev.body.kind, EventKind::Unknown);
    assert_eq!(ev.body.rev, 3);

    let reply: Envelope<Reply<Accepted>> = decode(
        br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"error":{"code":"quota_exceeded","reason":"too many"}}}"#,
    )
    .unwrap();
    assert_eq!(reply.body, Reply::Error(WireError::new(ErrorCode::Unknown, "too many")));
}

// ---------------------------------------------------------------------------------------
// Fleet::apply
// ---------------------------------------------------------------------------------------

#[test]
fn apply_takes_the_next_revision_only() {
    let mut f = fleet();
    let start = f.clone();

    // rev + 1 applies every change, in order.
    let next = event(43, EventKind::AppUpdated, every_change());
    assert_eq!(f.apply(&next), Ok(true));
    assert_eq!(f.revision, 43);
    assert_eq!(f.hosts["host-01"], host("host-01", HostState::Up));
    assert!(!f.apps.contains_key("billing"));
    assert_eq!(f.instances["shop-web-0-aaaa"].state, InstanceState::Starting);
    assert!(!f.instances.contains_key("billing-0-cccc"));
    assert!(f.routes.contains_key(&("shop-web".to_string(), "10.101.1.33:8080".to_string())));
    assert!(!f.routes.contains_key(&("shop-web".to_string(), "10.101.1.32:8080".to_string())));
    let ended = &f.operations["op-running01"];
    assert_eq!(ended.state, OperationState::Succeeded);
    assert_eq!(ended.finished_at, Some(TS));
    assert!(ended.steps.is_empty(), "an ended operation keeps no steps: {ended:?}");
    assert_eq!(ended.compacted, Some(StepCounts { total: 5, done: 4, failed: 1 }));
    assert_eq!(f.operations["op-next00001"].state, OperationState::Running);
    assert!(!f.operations.contains_key("op-done00001"));
    let after = f.clone();

    // Older and equal revisions are already included: ignored, nothing changes.
    let mut stale = event(43, EventKind::AppUpdated, vec![Change::AppRemoved { name: "shop-web".into() }]);
    assert_eq!(f.apply(&stale), Ok(false));
    stale.rev = 10;
    assert_eq!(f.apply(&stale), Ok(false));
    assert_eq!(f, after);

    // rev + 2 is a gap and changes nothing.
    let mut ahead = stale.clone();
    ahead.rev = 45;
    assert_eq!(f.apply(&ahead), Err(Gap { have: 43, got: 45 }));
    assert_eq!(f, after);
    assert_eq!(Gap { have: 43, got: 45 }.to_string(), "revision gap: at 43, received 45");

    // A pure notice still moves the revision.
    assert_eq!(f.apply(&bare_event(44)), Ok(true));
    assert_eq!(f.revision, 44);
    assert_ne!(f, start);
}

#[test]
fn a_replica_that_follows_the_events_equals_the_source() {
    // The controller's fleet and a replica built from a snapshot plus the events after it
    // end up equal, through the wire.
    let mut controller = fleet();
    let snapshot: Envelope<Fleet> = decode(&encode(&env(controller.clone())).unwrap()).unwrap();
    let mut replica = snapshot.body;
    let events = [
        event(43, EventKind::AppUpdated, every_change()),
        event(44, EventKind::HostLost, vec![Change::Host(host("host-02", HostState::Lost))]),
        bare_event(45),
    ];
    for e in &events {
        controller.apply(e).unwrap();
        let wire: Envelope<Event> = decode(&encode(&env(e.clone())).unwrap()).unwrap();
        assert_eq!(replica.apply(&wire.body), Ok(true));
    }
    assert_eq!(replica, controller);
}

// ---------------------------------------------------------------------------------------
// Subjects
// ---------------------------------------------------------------------------------------

#[test]
fn subjects_are_addressed_and_one_verb_each() {
    assert_eq!(
        subjects::event(&EventKind::InstanceDeployed.subject_token(), Some("shop-web")),
        "qd.v1.evt.instance_deployed.shop-web"
    );
    assert_eq!(subjects::event(&EventKind::HostLost.subject_token(), None), "qd.v1.evt.host_lost._");
    assert_eq!(subjects::heartbeat("host-01"), "qd.v1.agent.host-01.hb");
    assert_eq!(subjects::status("host-01"), "qd.v1.agent.host-01.status");
    for (verb, name) in [
        (subjects::AgentVerb::Deploy, "deploy"),
        (subjects::AgentVerb::Restart, "restart"),
        (subjects::AgentVerb::Remove, "remove"),
    ] {
        let s = subjects::agent_cmd("host-01", verb);
        assert_eq!(s, format!("qd.v1.agent.host-01.cmd.{name}"));
        assert!(subjects::matches(&subjects::agent_cmd_all("host-01"), &s));
        assert!(!subjects::matches(&subjects::agent_cmd_all("host-02"), &s));
        assert_eq!(subjects::AgentVerb::parse(name), Some(verb));
    }
    let mut ctl = vec![subjects::CTL_SNAPSHOT.to_string(), subjects::CTL_HISTORY.to_string()];
    ctl.extend(subjects::CtlVerb::ALL.map(|v| subjects::command("alice", v)));
    for (i, s) in ctl.iter().enumerate() {
        assert!(subjects::matches(subjects::CTL_ALL, s), "{s}");
        assert!(!ctl[..i].contains(s), "{s} twice");
    }
    assert!(subjects::matches(subjects::HB_ALL, &subjects::heartbeat("host-01")));
    assert!(subjects::matches(subjects::STATUS_ALL, &subjects::status("host-01")));
    assert!(!subjects::matches(subjects::HB_ALL, &subjects::status("host-01")));
    for kind in ALL_KINDS {
        assert!(subjects::matches(subjects::EVT_ALL, &subjects::event(&kind.subject_token(), Some("a"))));
    }
}

/// serde_json writes a NaN or infinite `f32` as `null`; a heartbeat whose CPU figure is NaN
/// (a zero delta between two samples) must still decode, or the host would drift to `stale`
/// and `lost` over one bad number.
#[test]
fn encode_never_writes_what_decode_refuses() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut hb = heartbeat();
        hb.metrics.cpu_pct = bad;
        hb.instances[0].cpu_pct = bad;
        match encode(&env(hb)) {
            Err(ProtocolError::Encode(_)) => {}
            Err(other) => panic!("{bad}: wrong error {other:?}"),
            Ok(bytes) => {
                let decoded = decode::<Heartbeat>(&bytes);
                assert!(decoded.is_ok(), "{bad}: encoded, then refused: {decoded:?}");
            }
        }
    }
}

/// Found by the `instance_status` fuzz target: a metric beyond f32's range (`1.5e91`) read
/// as infinity, which the reader kept while every peer it passed the value on to read 0
/// (infinity is written as `null`). Such a figure reads as 0 at once, so what a reader
/// keeps is what it sends.
#[test]
fn a_metric_beyond_f32_reads_as_zero_as_it_would_after_a_round_trip() {
    let mut hb = heartbeat();
    hb.metrics.cpu_pct = 12.5;
    hb.instances[0].cpu_pct = 3.0;
    let text = String::from_utf8(encode(&env(hb)).unwrap()).unwrap();
    for huge in ["1.5e91", "-1e39", "3.5e38"] {
        let bad = text.replacen(r#""cpu_pct":12.5"#, &format!(r#""cpu_pct":{huge}"#), 1).replacen(
            r#""cpu_pct":3.0"#,
            &format!(r#""cpu_pct":{huge}"#),
            1,
        );
        assert_ne!(bad, text, "the figures were replaced");
        let hb = decode::<Heartbeat>(bad.as_bytes()).unwrap().body;
        assert_eq!(hb.metrics.cpu_pct, 0.0, "{huge}");
        assert_eq!(hb.instances[0].cpu_pct, 0.0, "{huge}");
        let again = decode::<Heartbeat>(&encode(&env(hb.clone())).unwrap()).unwrap().body;
        assert_eq!(again, hb, "{huge}: what was read is what is sent");
    }
}

// ---------------------------------------------------------------------------------------
// The audit trail: operator identity, AUDIT events, the restart body with its batch
// ---------------------------------------------------------------------------------------

#[test]
fn a_command_carries_its_operator_and_other_messages_keep_five_keys() {
    let op =
        Operator::from_parts("alice", "bastion-1", Some("10.0.0.5 52344 10.0.0.1 22"), Some("ops".into()));
    assert_eq!(op.user, "alice@bastion-1");
    assert_eq!(op.ssh_client.as_deref(), Some("10.0.0.5:52344"));
    let v6 = Operator::from_parts("bob", "b", Some("::1 4000 ::1 22"), None);
    assert_eq!(v6.ssh_client.as_deref(), Some("[::1]:4000"));
    let e = env(RouteRequest { app: "shop-web".into(), backend: "10.101.1.31:8080".into(), weight: None })
        .with_operator(Some(op.clone()));
    let json: Value = serde_json::from_slice(&encode(&e).unwrap()).unwrap();
    assert_eq!(keys(&json), ["body", "id", "operator", "source", "ts", "v"]);
    assert_eq!(
        json["operator"],
        json!({"user": "alice@bastion-1", "ssh_client": "10.0.0.5:52344", "nats_user": "ops"})
    );
    let back: Envelope<RouteRequest> = decode(&encode(&e).unwrap()).unwrap();
    assert_eq!(back.operator, Some(op));
    // An old client's command (no operator) still decodes, with none.
    let old: Envelope<RouteRequest> =
        decode(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"app":"a","backend":"1.2.3.4:80"}}"#).unwrap();
    assert_eq!(old.operator, None);
}

#[test]
fn an_audit_event_round_trips_and_plain_events_keep_their_shape() {
    let record = AuditRecord {
        verb: "restart".into(),
        by: None,
        command_id: "c-1".into(),
        source: "cockpit/alice@bastion-1".into(),
        operator: Some(Operator { user: "alice@bastion-1".into(), ssh_client: None, nats_user: None }),
        request: json!({"app": "shop-web", "batch": 2}),
        outcome: AuditOutcome {
            accepted: true,
            operation_id: Some("op-1".into()),
            detail: None,
            error: None,
        },
        repeated: None,
    };
    let mut e = event(7, EventKind::Audit, vec![]);
    e.audit = Some(Box::new(record.clone()));
    let json = body_json(e);
    assert_eq!(json["kind"], "AUDIT");
    assert_eq!(json["audit"]["outcome"]["operation_id"], "op-1");
    assert_eq!(record.what(), "restart app shop-web (batch 2)");
    assert_eq!(record.result(), "accepted as op-1");
    let plain = body_json(event(8, EventKind::HostUp, vec![]));
    assert!(plain.get("audit").is_none(), "{plain}");
    assert!(json["audit"].get("by").is_none(), "a record without a subject user keeps its shape");
}

#[test]
fn the_audit_shows_the_user_the_subject_named_with_the_clients_account_as_context() {
    let op =
        Operator::from_parts("root", "bastion-1", Some("10.0.0.5 52344 10.0.0.1 22"), Some("alice".into()));
    let record = AuditRecord {
        verb: "deploy".into(),
        by: Some("alice".into()),
        command_id: "c-1".into(),
        source: "ctl/root@bastion-1".into(),
        operator: Some(op),
        request: json!({"app": "shop-web"}),
        outcome: AuditOutcome { accepted: true, operation_id: None, detail: None, error: None },
        repeated: None,
    };
    assert_eq!(record.user(), "alice", "the server-checked user, not the login the client claims");
    assert_eq!(record.via(), "ctl · root@bastion-1 · ssh 10.0.0.5:52344 · nats alice");
    assert_eq!(record.who(), "alice (ctl/root@bastion-1 via ssh 10.0.0.5:52344 as nats alice)");
    let back: AuditRecord = serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
    assert_eq!(back.by.as_deref(), Some("alice"));
}

#[test]
fn a_restart_body_is_a_restart_request_plus_an_optional_batch() {
    let plain = RestartBody::from(RestartRequest::App("shop-web".into()));
    assert_eq!(serde_json::to_value(&plain).unwrap(), json!({"app": "shop-web"}));
    let batched = RestartBody { target: RestartRequest::App("shop-web".into()), batch: Some(2) };
    assert_eq!(serde_json::to_value(&batched).unwrap(), json!({"app": "shop-web", "batch": 2}));
    let marked =
        RestartBody { target: RestartRequest::Instances(vec!["a-0-1".into(), "a-1-2".into()]), batch: None };
    assert_eq!(serde_json::to_value(&marked).unwrap(), json!({"instances": ["a-0-1", "a-1-2"]}));
    for body in [plain, batched, marked] {
        let bytes = encode(&env(body.clone())).unwrap();
        assert_eq!(decode::<RestartBody>(&bytes).unwrap().body, body);
    }
    // What an old client sends is understood; two targets or none are refused.
    let old = encode(&env(RestartRequest::Host("host-01".into()))).unwrap();
    assert_eq!(decode::<RestartBody>(&old).unwrap().body.target, RestartRequest::Host("host-01".into()));
    malformed::<RestartBody>(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"app":"a","host":"h"}}"#);
    malformed::<RestartBody>(br#"{"v":1,"id":"c","ts":1,"source":"s","body":{"pod":"a"}}"#);
}

// ---------------------------------------------------------------------------------------
// Logs (qd.v1.agent.<host>.logs.<user>.start|stop|keepalive, qd.v1.logs.<user>.<viewer>)
// ---------------------------------------------------------------------------------------

#[test]
fn logs_messages_round_trip_with_their_documented_shape() {
    let req = LogsRequest {
        instance: "shop-web-0-aaaa".into(),
        tail: 200,
        follow: true,
        stream: subjects::logs_stream("alice", "v1a2b"),
        since: None,
    };
    let v = round_trip(req.clone());
    assert_eq!(
        v["body"],
        json!({"instance": "shop-web-0-aaaa", "tail": 200, "follow": true, "stream": "qd.v1.logs.alice.v1a2b"})
    );
    // `since` is left out when not asked, so an older agent reads what it always did; an
    // old request without it reads as none.
    let v = round_trip(LogsRequest { since: Some(1_795_000_000_000), ..req });
    assert_eq!(v["body"]["since"], 1_795_000_000_000_u64);
    let old = br#"{"v":1,"id":"a","ts":1,"source":"s","body":{"instance":"i","tail":1,"follow":false,"stream":"s"}}"#;
    assert_eq!(decode::<LogsRequest>(old).unwrap().body.since, None);
    let v = round_trip(LogsStreamRef { stream: "qd.v1.logs.alice.x".into() });
    assert_eq!(v["body"], json!({"stream": "qd.v1.logs.alice.x"}));
    let batch = LogBatch {
        instance: "shop-web-0-aaaa".into(),
        seq: 3,
        lines: vec![
            LogLine { ts: 1, source: LogSource::Stdout, text: "GET / 200".into() },
            LogLine { ts: 2, source: LogSource::Stderr, text: "WARN slow".into() },
        ],
        end: None,
    };
    let v = round_trip(batch);
    assert_eq!(v["body"]["lines"][1]["source"], "stderr");
    assert_eq!(v["body"]["end"], Value::Null);
    // `end` may be left out by a peer; an unknown field is ignored.
    let raw =
        br#"{"v":1,"id":"a","ts":1,"source":"agent/h","body":{"instance":"i","seq":0,"lines":[],"extra":1}}"#;
    let back: Envelope<LogBatch> = decode(raw).unwrap();
    assert_eq!(back.body.end, None);
    let ended =
        LogBatch { instance: "i".into(), seq: 9, lines: vec![], end: Some("container stopped".into()) };
    assert_eq!(round_trip(ended)["body"]["end"], "container stopped");
}

#[test]
fn a_run_patch_lays_fields_over_the_spec_and_a_replacing_one_clears_what_it_leaves_out() {
    let mut spec = app("shop-web").run;
    spec.cmd = Some(vec!["run".into()]);
    spec.artifact = Some(ArtifactRef { name: "shop-web-1".into(), sha256: "a".repeat(64), size: 1 });
    let health = HealthCheck::Http { path: "/ok".into() };
    let patch = RunPatch { health: Some(health.clone()), ..RunPatch::default() };
    let laid = spec.patched(&patch);
    assert_eq!(
        (laid.health, laid.cmd.clone(), laid.artifact.is_some()),
        (health.clone(), spec.cmd.clone(), true)
    );
    let whole =
        spec.patched(&RunPatch { replace: true, health: Some(health.clone()), ..RunPatch::default() });
    assert_eq!((whole.cmd, whole.artifact, whole.mount.as_str()), (None, None, "/app"));
    // Old peers never see the flag unless it is set, and a message without it keeps fields.
    let wire = serde_json::to_string(&RunPatch::default()).unwrap();
    assert!(!wire.contains("replace"), "{wire}");
    let back: RunPatch = serde_json::from_str(r#"{"replace": true}"#).unwrap();
    assert!(back.replace);
}

/// Env and secrets: a patch that names a map replaces the whole map, one that does not
/// keeps it, a replacing one without it clears it; older specs read without them, and an
/// empty map is not written, so older peers see the spec they knew.
#[test]
fn a_run_patch_replaces_env_and_secrets_whole_and_older_specs_read_without_them() {
    let mut spec = app("shop-web").run;
    spec.env = [("A".to_string(), "1".to_string()), ("B".to_string(), "2".to_string())].into();
    spec.secrets = [("K".to_string(), SecretRef { version: 2, sha8: "0123abcd".into() })].into();
    let only_c = RunPatch { env: Some([("C".to_string(), "3".to_string())].into()), ..RunPatch::default() };
    let laid = spec.patched(&only_c);
    assert_eq!(laid.env.keys().collect::<Vec<_>>(), ["C"], "the whole map, not a merge");
    assert_eq!(laid.secrets, spec.secrets, "secrets not named are kept");
    let kept = spec.patched(&RunPatch { cmd: Some(vec!["x".into()]), ..RunPatch::default() });
    assert_eq!((kept.env, kept.secrets), (spec.env.clone(), spec.secrets.clone()));
    let cleared = spec.patched(&RunPatch { replace: true, ..RunPatch::default() });
    assert!(cleared.env.is_empty() && cleared.secrets.is_empty());
    let wire = serde_json::to_value(RunSpec::default()).unwrap();
    assert!(wire.get("env").is_none() && wire.get("secrets").is_none(), "{wire}");
    let old: RunSpec = serde_json::from_str(r#"{"cmd": null, "mount": "/app"}"#).unwrap();
    assert!(old.env.is_empty() && old.secrets.is_empty());
    let back: RunSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn last_exit_travels_in_a_change_and_a_report_and_older_peers_lack_it() {
    let mut crashed = instance("shop-web-0-aaaa", "shop-web", "host-01", InstanceState::Crashed);
    crashed.last_exit = Some(ExitInfo::new(137, true, 1_795_000_000_000));
    let json = body_json(event(7, EventKind::InstanceCrashed, vec![Change::Instance(crashed.clone())]));
    assert_eq!(
        json["changes"][0]["last_exit"],
        serde_json::json!({"code": 137, "signal": 9, "oom": true, "at": 1_795_000_000_000u64})
    );
    // The hand-written Change decoder reads it too, with `type` first or last.
    let text = serde_json::to_string(&Change::Instance(crashed.clone())).unwrap();
    assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), Change::Instance(crashed.clone()));
    let mut reordered: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let tag = reordered.remove("type").unwrap();
    reordered.insert("type".into(), tag);
    let text = serde_json::to_string(&reordered).unwrap();
    assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), Change::Instance(crashed.clone()));
    // A report from an older agent has none; `clone_from` carries it.
    let mut old = serde_json::to_value(InstanceReport::of(&crashed)).unwrap();
    old.as_object_mut().unwrap().remove("last_exit");
    assert_eq!(serde_json::from_value::<InstanceReport>(old).unwrap().last_exit, None);
    let mut copy = instance("x-0-bbbb", "x", "host-02", InstanceState::Running);
    copy.clone_from(&crashed);
    assert_eq!(copy, crashed);
    assert_eq!(ExitInfo::new(3, false, 0).reason(), "exit 3");
    assert_eq!(ExitInfo::new(139, false, 0).short(), "SIGSEGV");
    assert_eq!(ExitInfo::new(200, false, 0).reason(), "exit 200");
}
