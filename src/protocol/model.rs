//! The fleet's objects as they travel on the wire and sit in every replica.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Docker host with its agent: the facts its agent reports, and what only the controller
/// knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Flattened, so a host's JSON is one flat object, as it was before the facts had a
    /// type of their own: snapshots, the state bucket and stored events stay readable both
    /// ways. Reading it costs about a microsecond more per host than a flat struct
    /// (serde buffers the fields of a flattened part): hosts are few beside instances,
    /// heartbeats carry a `HostInfo`, and events a host only when it joins, changes or is back.
    #[serde(flatten)]
    pub info: HostInfo,
    /// When the controller last heard this host's heartbeat (ms since epoch).
    pub last_heartbeat: u64,
    pub state: HostState,
    #[serde(default)]
    pub metrics: HostMetrics,
    /// Containers on the host that no agent manages; like metrics, they carry no revision.
    #[serde(default)]
    pub unmanaged: Vec<crate::protocol::ContainerReport>,
    /// Whether the scheduler may place on the host: an operator's decision, which only the
    /// controller knows (never in `HostInfo`, so no heartbeat resets it). Missing in JSON
    /// from before cordons: open. Left out when open, so an open host's JSON is what it
    /// was before.
    #[serde(default, skip_serializing_if = "HostSchedule::is_open")]
    pub schedule: HostSchedule,
}

/// Whether a host takes new instances (`ctl host cordon|drain|uncordon`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum HostSchedule {
    /// Takes new instances.
    #[default]
    Open,
    /// Takes no new instance; what runs on it stays.
    Cordoned,
    /// Cordoned, and a drain operation is moving its instances away: `done` of `total`
    /// moved so far.
    Draining { done: u32, total: u32 },
}

impl HostSchedule {
    /// Whether the scheduler may place a new instance here.
    pub fn accepts_placements(self) -> bool {
        self.is_open()
    }

    pub fn is_open(&self) -> bool {
        *self == HostSchedule::Open
    }

    /// How the cockpit and ctl show it: `open`, `cordoned`, `draining 3/7`.
    pub fn label(self) -> String {
        match self {
            HostSchedule::Open => "open".into(),
            HostSchedule::Cordoned => "cordoned".into(),
            HostSchedule::Draining { done, total } => format!("draining {done}/{total}"),
        }
    }
}

#[cfg(test)]
impl Host {
    /// A host that is up and open, for tests: `cores` and `memory_mb` of capacity, no tags,
    /// address 10.0.0.1, its heartbeat at 0.
    pub fn for_test(id: &str, az: &str, cores: u32, memory_mb: u64) -> Host {
        Host {
            info: HostInfo {
                id: id.into(),
                hostname: id.into(),
                ip: "10.0.0.1".into(),
                az: az.into(),
                tags: vec![],
                cpu_cores: cores,
                memory_total_mb: memory_mb,
                agent_version: "test".into(),
                warnings: vec![],
            },
            last_heartbeat: 0,
            state: HostState::Up,
            metrics: HostMetrics::default(),
            unmanaged: vec![],
            schedule: HostSchedule::default(),
        }
    }
}

/// The facts of a host that do not change between heartbeats: what its agent reports in
/// every heartbeat (`Heartbeat::host`), and the part of a `Host` the agent knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub id: String,
    pub hostname: String,
    pub ip: String,
    pub az: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub cpu_cores: u32,
    pub memory_total_mb: u64,
    pub agent_version: String,
    /// Operational warnings the agent found on the host (storage driver, discard, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    Up,
    /// Three heartbeat periods missed.
    Stale,
    /// Ten heartbeat periods missed: its instances are placed again elsewhere.
    Lost,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Up => "up",
            HostState::Stale => "stale",
            HostState::Lost => "lost",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostMetrics {
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu_pct: f32,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub load1: f32,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub load5: f32,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub load15: f32,
    pub mem_used_mb: u64,
    pub mem_total_mb: u64,
    pub disk_used_mb: u64,
    pub disk_total_mb: u64,
    pub net_rx_bps: u64,
    pub net_tx_bps: u64,
}

impl HostMetrics {
    pub fn mem_pct(&self) -> f32 {
        percent(self.mem_used_mb, self.mem_total_mb)
    }
}

/// `part / whole` as a percentage, 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f32 {
    if whole == 0 { 0.0 } else { (part as f64 * 100.0 / whole as f64) as f32 }
}

/// Where an app may run and what each instance reserves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Allowed availability zones; empty means any.
    #[serde(default)]
    pub azs: Vec<String>,
    /// Tags a host must carry, all of them.
    #[serde(default)]
    pub tags: Vec<String>,
    /// CPU cores reserved per instance.
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu: f32,
    /// Memory reserved per instance, and the container's limit.
    pub memory_mb: u64,
}

/// How an app's containers run: the command, where the artifact is mounted, how health is
/// checked, and which artifact to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Overrides the image's command when set.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Where the unpacked artifact is bind-mounted, read-only.
    #[serde(default = "default_mount")]
    pub mount: String,
    #[serde(default)]
    pub health: HealthCheck,
    /// The artifact in the repository; an image-only app has none.
    #[serde(default)]
    pub artifact: Option<ArtifactRef>,
    /// Environment variables of every container, by name (`validate::env`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secrets passed in the environment, by name: only a reference travels here. The
    /// value lives in the `qd_secrets` bucket, which only the controller and the agents read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretRef>,
}

/// The JetStream KV bucket secret values live in (`crate::secrets`); only the controller and
/// the agents may read it (`auth::roles`).
pub const SECRETS_BUCKET: &str = "qd_secrets";

/// Which value of a secret an app runs: its version (1, 2, ...: one more with each
/// `secret set`) and the first 8 hex characters of the value's sha256, which is all of the
/// value anyone but the controller and the agents ever sees. An agent refuses a value whose
/// sha does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub version: u64,
    pub sha8: String,
}

fn default_mount() -> String {
    "/app".into()
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            cmd: None,
            mount: default_mount(),
            health: HealthCheck::default(),
            artifact: None,
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }
}

/// A change to an app's run spec: each field given replaces that field, the others stay.
/// With `replace`, the patch is the whole spec: a field it leaves out is cleared (a
/// rollback to a spec without an artifact, or a deploy that drops one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunPatch {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace: bool,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub mount: Option<String>,
    #[serde(default)]
    pub health: Option<HealthCheck>,
    #[serde(default)]
    pub artifact: Option<ArtifactRef>,
    /// The whole environment when given (`ctl env set` sends the app's map with its change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Every secret reference when given: the controller's own `secret set`, a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, SecretRef>>,
}

impl RunSpec {
    /// This spec with the patch's fields laid over it.
    pub fn patched(&self, patch: &RunPatch) -> RunSpec {
        if patch.replace {
            return RunSpec::default().patched(&RunPatch { replace: false, ..patch.clone() });
        }
        RunSpec {
            cmd: patch.cmd.clone().or_else(|| self.cmd.clone()),
            mount: patch.mount.clone().unwrap_or_else(|| self.mount.clone()),
            health: patch.health.clone().unwrap_or_else(|| self.health.clone()),
            artifact: patch.artifact.clone().or_else(|| self.artifact.clone()),
            env: patch.env.clone().unwrap_or_else(|| self.env.clone()),
            secrets: patch.secrets.clone().unwrap_or_else(|| self.secrets.clone()),
        }
    }
}

/// How an agent decides a new container is healthy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HealthCheck {
    /// The port accepts a TCP connection.
    #[default]
    Tcp,
    /// `GET path` answers 2xx or 3xx.
    Http { path: String },
}

impl HealthCheck {
    /// `http:/path` or `tcp`, as on the command line.
    pub fn parse(s: &str) -> Result<HealthCheck, String> {
        match s {
            "tcp" => Ok(HealthCheck::Tcp),
            _ => match s.strip_prefix("http:") {
                Some(path)
                    if path.starts_with('/')
                        && !path.chars().any(|c| c.is_whitespace() || c.is_control()) =>
                {
                    Ok(HealthCheck::Http { path: path.to_string() })
                }
                _ => Err(format!("health check {s:?} is not valid: use tcp or http:/path")),
            },
        }
    }
}

/// An artifact stored in the repository, with its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// The repository slot, e.g. `shop-web-1.4.2`.
    pub name: String,
    /// Lowercase hex SHA-256 of the artifact's bytes.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    pub version: String,
    /// Desired instance count.
    pub instances: u32,
    pub image: String,
    pub port: u16,
    #[serde(default)]
    pub constraints: Constraints,
    pub domain: String,
    /// Labels such as `prod`; the cockpit asks for more care with `prod` apps.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub run: RunSpec,
    /// Why the app has fewer instances than desired and the controller cannot place them
    /// yet, e.g. "waiting for capacity: no up host is in AZ az1". Set and cleared by the
    /// controller; the desired count is kept, and the instances are placed once they fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<String>,
    /// The digest (`sha256:...`) the controller resolved `image`'s tag to when this
    /// version was deployed, for an image from a registry: every instance of the version
    /// runs exactly that, even after the tag moves. Absent for other images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[cfg(test)]
impl AppSpec {
    /// An app for tests: version 1 of image `NAME:1` on port 8080, `instances` of them,
    /// each reserving `cpu` cores and 256 MB, anywhere, at `NAME.local`.
    pub fn for_test(name: &str, instances: u32, cpu: f32) -> AppSpec {
        AppSpec {
            name: name.into(),
            version: "1".into(),
            instances,
            image: format!("{name}:1"),
            port: 8080,
            constraints: Constraints { azs: vec![], tags: vec![], cpu, memory_mb: 256 },
            domain: format!("{name}.local"),
            tags: vec![],
            run: RunSpec::default(),
            shortfall: None,
            digest: None,
        }
    }
}

/// The tag that marks an app as production: the cockpit asks for its name to be typed
/// before any command that touches it.
pub const PROD_TAG: &str = "prod";

impl AppSpec {
    /// Whether the app is tagged [`PROD_TAG`]: the one test of "is this prod".
    pub fn is_prod(&self) -> bool {
        self.tags.iter().any(|t| t == PROD_TAG)
    }

    /// The image its instances run: pinned to `digest` when there is one.
    pub fn pinned_image(&self) -> String {
        match (&self.digest, super::image::ImageRef::parse(&self.image)) {
            (Some(d), Ok(r)) => r.pinned(d),
            _ => self.image.clone(),
        }
    }
}

/// `Clone` is written out so that `clone_from` reuses the strings' buffers: a replica
/// updates instances in place, event after event, without allocating.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub app: String,
    pub version: String,
    pub index: u32,
    pub host: String,
    pub ip: String,
    pub port: u16,
    /// `ip:port` where the instance serves; what routes point at.
    pub endpoint: String,
    #[serde(default)]
    pub container_id: String,
    pub state: InstanceState,
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu_pct: f32,
    #[serde(default)]
    pub mem_used_mb: u64,
    #[serde(default)]
    pub mem_limit_mb: u64,
    /// CPU cores reserved for this instance on its host.
    #[serde(default, deserialize_with = "crate::protocol::envelope::null_as_zero")]
    pub cpu_limit: f32,
    /// How the instance's container last ended, as its agent saw it; kept after a restart
    /// so the reason of a crash stays visible.
    #[serde(default)]
    pub last_exit: Option<ExitInfo>,
}

/// How a container ended: Docker's exit code, the signal that killed it (an exit code of
/// 128 + N is signal N, as a shell reports it) and whether the kernel's OOM killer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    pub code: i32,
    #[serde(default)]
    pub signal: Option<u8>,
    #[serde(default)]
    pub oom: bool,
    /// When it ended (ms since epoch); 0 when unknown.
    #[serde(default)]
    pub at: u64,
}

impl ExitInfo {
    /// The exit of a container with this code; the signal follows from the code.
    pub fn new(code: i32, oom: bool, at: u64) -> ExitInfo {
        let signal = (129..=128 + 64).contains(&code).then(|| (code - 128) as u8);
        ExitInfo { code, signal, oom, at }
    }

    /// Why it ended, for an event message or the detail: `exit 3`, `killed by SIGKILL`,
    /// `OOM killed`.
    pub fn reason(&self) -> String {
        match (self.oom, self.signal) {
            (true, _) => "OOM killed".into(),
            (false, Some(n)) => format!("killed by {}", signal_name(n)),
            (false, None) => format!("exit {}", self.code),
        }
    }

    /// The same in a table cell's few characters: `exit 3`, `SIGKILL`, `OOM`.
    pub fn short(&self) -> String {
        match (self.oom, self.signal) {
            (true, _) => "OOM".into(),
            (false, Some(n)) => signal_name(n),
            (false, None) => format!("exit {}", self.code),
        }
    }
}

/// `SIGKILL` for 9; `signal 42` for one without a common name.
pub fn signal_name(n: u8) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {n}"),
    };
    name.to_string()
}

impl Clone for Instance {
    fn clone(&self) -> Self {
        Instance {
            id: self.id.clone(),
            app: self.app.clone(),
            version: self.version.clone(),
            host: self.host.clone(),
            ip: self.ip.clone(),
            endpoint: self.endpoint.clone(),
            container_id: self.container_id.clone(),
            ..*self
        }
    }

    fn clone_from(&mut self, source: &Self) {
        // Destructured so that a new field cannot be forgotten here.
        let Instance {
            id,
            app,
            version,
            index,
            host,
            ip,
            port,
            endpoint,
            container_id,
            state,
            started_at,
            restarts,
            cpu_pct,
            mem_used_mb,
            mem_limit_mb,
            cpu_limit,
            last_exit,
        } = source;
        self.id.clone_from(id);
        self.app.clone_from(app);
        self.version.clone_from(version);
        self.index = *index;
        self.host.clone_from(host);
        self.ip.clone_from(ip);
        self.port = *port;
        self.endpoint.clone_from(endpoint);
        self.container_id.clone_from(container_id);
        self.state = *state;
        self.started_at = *started_at;
        self.restarts = *restarts;
        self.cpu_pct = *cpu_pct;
        self.mem_used_mb = *mem_used_mb;
        self.mem_limit_mb = *mem_limit_mb;
        self.cpu_limit = *cpu_limit;
        self.last_exit = *last_exit;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    New,
    Deploying,
    Starting,
    Running,
    Unhealthy,
    Crashed,
    Stopped,
    Removed,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::New => "new",
            InstanceState::Deploying => "deploying",
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Unhealthy => "unhealthy",
            InstanceState::Crashed => "crashed",
            InstanceState::Stopped => "stopped",
            InstanceState::Removed => "removed",
        }
    }

    /// Whether the instance holds resources on its host.
    pub fn occupies_host(self) -> bool {
        !matches!(self, InstanceState::Removed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub app: String,
    pub domain: String,
    /// `ip:port` of the backend in the load balancer.
    pub backend: String,
    pub state: RouteState,
    pub weight: u32,
    /// Set by the controller when the backend's instance has been gone or unhealthy past
    /// the stale TTL (as gorouter prunes); the router leaves stale backends out.
    #[serde(default)]
    pub stale: bool,
}

impl Route {
    /// Whether the load balancer should send traffic to this backend.
    pub fn serves(&self) -> bool {
        self.state == RouteState::Enabled && !self.stale
    }

    /// Whether the backend takes traffic: the route serves and at least one running
    /// instance is behind it. An app none of whose routes does gets no traffic, whatever
    /// its instances' state.
    pub fn serves_with(&self, running_behind: usize) -> bool {
        self.serves() && running_behind > 0
    }

    /// Routes are keyed by app and backend: one backend serves an app once.
    pub fn key(&self) -> RouteKey {
        (self.app.clone(), self.backend.clone())
    }
}

pub type RouteKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    Enabled,
    Disabled,
}

impl RouteState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Enabled => "enabled",
            RouteState::Disabled => "disabled",
        }
    }
}

/// The step names of the original deploy flow, kept as the operation's step names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepName {
    AllocateRepositoryRequest,
    Upload,
    NewInstanceAndDeployWarRequest,
    /// Not of the original flow: the image comes from a registry. The controller resolves
    /// its tag to a digest (no instance); an agent that lacks it pulls it (per instance).
    PullImage,
    Download,
    Restart,
    HealthCheck,
    AddRouteRequest,
    RemoveRouteRequest,
    RemoveInstance,
    InstanceDeployed,
}

impl StepName {
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::AllocateRepositoryRequest => "ALLOCATE_REPOSITORY_REQUEST",
            StepName::Upload => "UPLOAD",
            StepName::NewInstanceAndDeployWarRequest => "NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST",
            StepName::PullImage => "PULL_IMAGE",
            StepName::Download => "DOWNLOAD",
            StepName::Restart => "RESTART",
            StepName::HealthCheck => "HEALTH_CHECK",
            StepName::AddRouteRequest => "ADD_ROUTE_REQUEST",
            StepName::RemoveRouteRequest => "REMOVE_ROUTE_REQUEST",
            StepName::RemoveInstance => "REMOVE_INSTANCE",
            StepName::InstanceDeployed => "INSTANCE_DEPLOYED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationKind {
    Deploy,
    Restart,
    Replace,
    /// Moves every instance off a host, one at a time (`ctl host drain`).
    Drain,
    /// An app's instance count changed (`ctl.scale`): only the new instances start, or
    /// only the victims go.
    Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStep {
    pub name: StepName,
    #[serde(default)]
    pub instance: Option<String>,
    pub state: StepState,
    pub started_at: u64,
    #[serde(default)]
    pub finished_at: Option<u64>,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    pub kind: OperationKind,
    pub app: String,
    /// What the operation acts on, in words: `shop-web@1.4.2 x3`, `instance shop-web-2`.
    pub target: String,
    #[serde(default)]
    pub steps: Vec<OperationStep>,
    pub state: OperationState,
    #[serde(default)]
    pub error: Option<String>,
    pub started_at: u64,
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// The id of the command that started it, so a repeat is recognised even after a
    /// controller restart.
    #[serde(default)]
    pub command_id: Option<String>,
    /// Set once the operation has ended: its steps were dropped from the state (they stay
    /// in the event history) and these counts are what is left of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compacted: Option<StepCounts>,
}

impl Operation {
    /// The step a report of `name` on `instance` makes, at `now`: the running step of the
    /// same name and instance moved to `state`, or else a new step after the last. The
    /// delta carries that step alone, whatever the operation's size.
    pub fn next_step(
        &self,
        name: StepName,
        instance: Option<&str>,
        state: StepState,
        detail: String,
        now: u64,
    ) -> StepDelta {
        let open = self.steps.iter().enumerate().rev().find(|(_, s)| {
            s.name == name && s.instance.as_deref() == instance && s.state == StepState::Running
        });
        let (index, step) = match open {
            Some((index, open)) => {
                let mut step = open.clone();
                step.state = state;
                if state != StepState::Running {
                    step.finished_at = Some(now);
                }
                if !detail.is_empty() {
                    step.detail = detail;
                }
                (index, step)
            }
            None => (
                self.steps.len(),
                OperationStep {
                    name,
                    instance: instance.map(str::to_string),
                    state,
                    started_at: now,
                    finished_at: (state != StepState::Running).then_some(now),
                    detail,
                },
            ),
        };
        // An operation never nears 4 billion steps (500 instances of about 8 each).
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        StepDelta { op: self.id.clone(), index, step }
    }
}

/// How many steps an ended operation had, by how they stood when it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    pub total: u32,
    pub done: u32,
    pub failed: u32,
}

impl StepCounts {
    pub fn of(steps: &[OperationStep]) -> StepCounts {
        let count = |state: StepState| {
            u32::try_from(steps.iter().filter(|s| s.state == state).count()).unwrap_or(u32::MAX)
        };
        StepCounts {
            total: u32::try_from(steps.len()).unwrap_or(u32::MAX),
            done: count(StepState::Done),
            failed: count(StepState::Failed),
        }
    }
}

/// One step of an operation as an event carries it: the step at `index` in the
/// operation's step list. `index` below the list's length replaces that step (a running
/// step that ended); equal to it appends; anything else is refused (`Fleet::apply_change`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDelta {
    pub op: String,
    pub index: u32,
    pub step: OperationStep,
}

/// How an operation ended, as its closing event carries it: no steps, only the outcome,
/// and the step counts the state keeps once the steps are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationEnded {
    pub id: String,
    pub state: OperationState,
    #[serde(default)]
    pub error: Option<String>,
    pub finished_at: u64,
    pub steps: StepCounts,
}
