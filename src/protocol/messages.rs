//! Request, reply, command and heartbeat bodies.

use serde::{Deserialize, Serialize};

use super::model::{
    Constraints, HostInfo, HostMetrics, InstanceState, RunPatch, RunSpec, StepName, StepState,
};

/// The answer to every request: the quick accepted-or-refused. Long work reports through
/// events tied to an operation id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply<T> {
    Ok(T),
    Error(WireError),
}

impl<T> Reply<T> {
    pub fn into_result(self) -> Result<T, WireError> {
        match self {
            Reply::Ok(v) => Ok(v),
            Reply::Error(e) => Err(e),
        }
    }
}

impl<T> From<Result<T, WireError>> for Reply<T> {
    fn from(r: Result<T, WireError>) -> Self {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(e),
        }
    }
}

/// An error as it travels: a stable code for programs and a reason for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason} ({})", code.as_str())]
pub struct WireError {
    pub code: ErrorCode,
    pub reason: String,
}

impl WireError {
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        WireError { code, reason: reason.into() }
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, reason)
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
    NoCapacity,
    Conflict,
    NotReady,
    ReadOnly,
    Timeout,
    Unavailable,
    Internal,
    /// A command that arrived after its envelope's `deadline`: not run.
    Expired,
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NoCapacity => "no_capacity",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Expired => "expired",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// `qd.v1.ctl.snapshot`. Without `page` the answer is the whole `Fleet` in one message, as
/// before paging existed; with `page` it is one `SnapshotPage` of the fleet's JSON text, so
/// a fleet larger than the server's max_payload still gets through. Both fields are left
/// out of the JSON when unset, so `{}` stays the old request byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// Which part of the paged snapshot (0 first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// The revision page 0 answered with: the later pages must come from the same text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<u64>,
    /// Which encoding at `rev` page 0 came from. Metrics change without a revision, so the
    /// controller may encode one revision more than once; this names the one being read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<u64>,
}

/// One part of a paged snapshot: the fleet's JSON text at revision `rev`, cut on UTF-8
/// character boundaries into `pages` parts; this is part `page`. Joining all the parts in
/// order gives the text, which decodes as a `Fleet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPage {
    pub rev: u64,
    /// Names this encoding of the fleet among others at the same `rev`; sent back with
    /// the following pages.
    #[serde(default)]
    pub encoding: u64,
    pub page: u32,
    pub pages: u32,
    pub part: String,
}

/// Where to cut `text` into parts of at most `max_part` bytes: the end offset of each part,
/// always on a character boundary. An empty text is one empty part, so there is always a
/// page 0. `max_part` below 4 is taken as 4, the longest UTF-8 character, so every part
/// holds at least one character and the cutting always moves on.
pub fn snapshot_cuts(text: &str, max_part: usize) -> Vec<usize> {
    let max_part = max_part.max(4);
    let mut cuts = Vec::with_capacity(text.len() / max_part + 1);
    let mut start = 0;
    loop {
        let mut end = (start + max_part).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        cuts.push(end);
        if end >= text.len() {
            return cuts;
        }
        start = end;
    }
}

/// Part `page` of `text` cut at `cuts` (from [`snapshot_cuts`]); `None` past the last one.
pub fn snapshot_part<'a>(text: &'a str, cuts: &[usize], page: usize) -> Option<&'a str> {
    let end = *cuts.get(page)?;
    let start = page.checked_sub(1).and_then(|p| cuts.get(p).copied()).unwrap_or(0);
    text.get(start..end)
}

/// `qd.v1.ctl.history`: recent events, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// Only events stamped at or after this time (ms since epoch).
    #[serde(default)]
    pub since_ts: Option<u64>,
    /// At most this many, the newest ones; the controller caps it.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `qd.v1.ctl.repo.allocate` (`ALLOCATE_REPOSITORY_REQUEST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateRequest {
    pub app: String,
    pub version: String,
}

/// Where to upload the artifact: a slot in the repository's bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub slot: String,
    pub bucket: String,
}

/// `qd.v1.ctl.deploy`: deploy `app@version` with N instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployRequest {
    pub app: String,
    pub version: String,
    pub instances: u32,
    /// Required for a new app; an existing app keeps its image when omitted.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Placement; omitted fields keep the app's current constraints.
    #[serde(default)]
    pub constraints: Option<Constraints>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Command, mount, health check and artifact; each one omitted keeps the app's current.
    #[serde(default)]
    pub run: Option<RunPatch>,
    /// `rolling` (one at a time, the default) or `all` (every new instance at once).
    #[serde(default)]
    pub strategy: Strategy,
}

/// `qd.v1.ctl.<user>.secret.set`: a secret's new value for an app. The value travels in
/// this command only: the controller stores it in `qd_secrets` and keeps a `SecretRef` in
/// the app's spec; the audit trail records the request with the value left out
/// (`audit::redacted`). `Debug` leaves it out too, so no log line can hold it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSetRequest {
    pub app: String,
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for SecretSetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSetRequest")
            .field("app", &self.app)
            .field("name", &self.name)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

/// How a new version replaces the old one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Start one new instance, wait until healthy, remove one old; keep the count.
    #[default]
    Rolling,
    /// Start every new instance, wait until all are healthy, then remove the old ones.
    All,
}

/// `qd.v1.ctl.restart`: what to restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartRequest {
    Instance(String),
    /// Every instance of the app, one at a time.
    App(String),
    /// Every instance on the host, one at a time.
    Host(String),
    /// These instances (the operator's marked set), one operation, one at a time.
    Instances(Vec<String>),
}

/// `qd.v1.ctl.route.add`, `.remove`, `.enable`, `.disable`, `.weight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRequest {
    pub app: String,
    pub backend: String,
    /// For `add`: the weight, 1 when omitted; for `weight`: the new weight (required).
    #[serde(default)]
    pub weight: Option<u32>,
}

/// `qd.v1.ctl.<user>.host.cordon`, `.host.drain`, `.host.uncordon`: the host by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRequest {
    pub host: String,
}

/// `qd.v1.ctl.<user>.scale`: run `instances` instances of `app` (0 to the deploy bound),
/// its version, spec and constraints unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub app: String,
    pub instances: u32,
}

/// `qd.v1.ctl.<user>.app.remove`: remove `app`, its routes and instances first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRemoveRequest {
    pub app: String,
}

/// `qd.v1.ctl.<user>.whoami`: who the controller sees the sender as, the user its
/// subject named. Only a user allowed to send commands can ask (a viewer's publish is
/// refused by the server), so an answer also says "you may act".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    pub user: String,
}

/// The reply to a command the controller accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Present when the command started an operation; its events carry this id.
    #[serde(default)]
    pub operation_id: Option<String>,
    /// The controller's revision once the command was accepted.
    pub rev: u64,
}

/// What an agent is told to run: `NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub id: String,
    pub app: String,
    pub version: String,
    pub index: u32,
    pub image: String,
    pub port: u16,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu: f32,
    pub memory_mb: u64,
    pub operation_id: String,
    #[serde(default)]
    pub run: RunSpec,
}

/// `qd.v1.agent.<host>.cmd.restart` and `.remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRef {
    pub id: String,
    #[serde(default)]
    pub operation_id: Option<String>,
}

/// An agent's acknowledgement of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAck {
    pub instance_id: String,
}

/// One instance as its agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub id: String,
    pub app: String,
    pub version: String,
    pub index: u32,
    pub state: InstanceState,
    pub ip: String,
    pub port: u16,
    #[serde(default)]
    pub container_id: String,
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu_pct: f32,
    #[serde(default)]
    pub mem_used_mb: u64,
    #[serde(default)]
    pub mem_limit_mb: u64,
    /// How its container last ended, when the agent knows (Docker's die event or inspect).
    #[serde(default)]
    pub last_exit: Option<super::model::ExitInfo>,
}

impl InstanceReport {
    /// What an agent reports of `spec` as it starts deploying it: no container, no
    /// address, no metrics yet.
    pub fn deploying(spec: &InstanceSpec) -> InstanceReport {
        InstanceReport {
            id: spec.id.clone(),
            app: spec.app.clone(),
            version: spec.version.clone(),
            index: spec.index,
            state: InstanceState::Deploying,
            ip: String::new(),
            port: spec.port,
            container_id: String::new(),
            started_at: None,
            cpu_pct: 0.0,
            mem_used_mb: 0,
            mem_limit_mb: spec.memory_mb,
            last_exit: None,
        }
    }

    /// What an agent running `i` reports of it, metrics included.
    pub fn of(i: &super::model::Instance) -> InstanceReport {
        InstanceReport {
            id: i.id.clone(),
            app: i.app.clone(),
            version: i.version.clone(),
            index: i.index,
            state: i.state,
            ip: i.ip.clone(),
            port: i.port,
            container_id: i.container_id.clone(),
            started_at: i.started_at,
            cpu_pct: i.cpu_pct,
            mem_used_mb: i.mem_used_mb,
            mem_limit_mb: i.mem_limit_mb,
            last_exit: i.last_exit,
        }
    }
}

/// `qd.v1.agent.<host>.hb`: level-triggered, the full picture every period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub host: HostInfo,
    pub metrics: HostMetrics,
    pub instances: Vec<InstanceReport>,
    /// The agent's heartbeat period, so the controller can judge staleness per host.
    pub period_ms: u64,
    /// Containers on the host that the agent does not manage (started by hand, other
    /// tools). Reported so the cockpit can show them; never touched.
    #[serde(default)]
    pub unmanaged: Vec<ContainerReport>,
}

impl Heartbeat {
    /// The host as the controller keeps it from this heartbeat: up, last heard at `now_ms`,
    /// open (the controller keeps a known host's schedule: `intake::host_draft`).
    pub fn host_at(&self, now_ms: u64) -> super::model::Host {
        super::model::Host {
            info: self.host.clone(),
            last_heartbeat: now_ms,
            state: super::model::HostState::Up,
            metrics: self.metrics.clone(),
            unmanaged: self.unmanaged.clone(),
            schedule: super::model::HostSchedule::Open,
        }
    }
}

/// A container the agent does not manage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerReport {
    pub container_id: String,
    pub name: String,
    pub image: String,
    /// Docker's own word: running, exited, ...
    pub state: String,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu_pct: f32,
    #[serde(default)]
    pub mem_used_mb: u64,
    #[serde(default)]
    pub mem_limit_mb: u64,
}

/// `qd.v1.agent.<host>.status`: one instance changed, sent at once rather than waiting for
/// the next heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub host: String,
    pub instance: InstanceReport,
    /// The deploy step the instance just reached, when it is part of an operation.
    #[serde(default)]
    pub step: Option<StepName>,
    #[serde(default)]
    pub operation_id: Option<String>,
    #[serde(default)]
    pub detail: String,
    /// `running` for a step still under way (a pull's progress); absent when the step is
    /// done, or failed if the instance is crashed, unhealthy or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_state: Option<StepState>,
}

/// `cmd.resolve`: which digest an image's tag names now, asked of one agent, whose
/// runtime asks the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveImage {
    pub image: String,
}

/// The answer to `cmd.resolve`: the digest (`sha256:...`) the registry gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResolved {
    pub digest: String,
}

/// `qd.v1.controller.hb`: the active controller and its current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerBeacon {
    pub id: String,
    pub revision: u64,
}

/// `qd.v1.router.<id>.status`: what a router has applied, every few seconds and after
/// each reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterStatus {
    pub id: String,
    /// How many configurations it has applied since it started.
    pub generation: u64,
    /// When it last reloaded the load balancer (ms since epoch).
    #[serde(default)]
    pub last_reload: Option<u64>,
    /// The last apply error, cleared by the next good apply.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Backends currently in the load balancer.
    pub backends: usize,
    /// Where it listens, e.g. `127.0.0.1:8080`, or `simulated`.
    pub listen: String,
    /// The controller revision the applied configuration reflects.
    pub revision: u64,
    /// What the load balancer served over the last window; absent from a router that
    /// does not read it (the sandbox's, or an older one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<super::traffic::Traffic>,
}

/// `qd.v1.agent.<host>.logs.<user>.start`: stream an instance's container logs to `stream`,
/// a subject under `qd.v1.logs.<user>.` owned by one viewer of that user. Answered with
/// `Reply<AgentAck>`; the lines then arrive as `LogBatch`es on `stream` until the viewer
/// sends a stop or its keep-alives stop arriving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    pub instance: String,
    /// How many past lines to send first (capped by the agent at `LOGS_TAIL_MAX`).
    pub tail: u32,
    /// Keep streaming new lines after the tail.
    pub follow: bool,
    /// Where the batches go: `qd.v1.logs.<user>.<viewer id>`.
    pub stream: String,
    /// Leave out lines older than this (ms since epoch), as Docker's `since`: the tail is
    /// read, then narrowed. Optional, so an older agent ignores it (its viewer filters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// The most past lines a logs request may ask for.
pub const LOGS_TAIL_MAX: u32 = 10_000;

/// `qd.v1.agent.<host>.logs.<user>.stop` and `.keepalive`: about one of the user's streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsStreamRef {
    pub stream: String,
}

/// Which output of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    Stdout,
    Stderr,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the runtime saw it (ms since epoch); 0 when unknown.
    pub ts: u64,
    pub source: LogSource,
    pub text: String,
}

/// Published on a viewer's `qd.v1.logs.<user>.<viewer id>`: lines in order. `end` is set on the
/// last batch of a stream: why it ended (the container stopped, the viewer went quiet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    pub instance: String,
    /// Counts batches from 0, so a viewer can tell one was lost.
    pub seq: u64,
    pub lines: Vec<LogLine>,
    #[serde(default)]
    pub end: Option<String>,
}
