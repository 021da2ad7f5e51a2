//! The `docker` runtime driver: runs instances as containers on a real Docker engine
//! through bollard.
//!
//! Cost model (the idle-cost budget): one container list per refresh period, cgroup
//! files for metrics, one event stream for crashes. Never a stats stream per container and
//! never `size=true`. `list()` and friends are served from a cache that the refresh task
//! and the event task keep up to date, so the agent's 250 ms poll costs dockerd nothing.
//!
//! One job per file:
//! - `connect`: reaching the engine and negotiating the API version;
//! - `labels`: the label schema that lets a restarted agent find its containers;
//! - `cache`: what the driver knows about its instances;
//! - `lifecycle`: deploy, restart, remove;
//! - `image`: the digest a registry's tag names, and the pull of a missing image;
//! - `artifact`: download, checksum, unpack, swap the per-instance directory;
//! - `health`: the HTTP / TCP probe;
//! - `network`: published ports and the VLAN network with its address management;
//! - `adopt`: the periodic reconcile with `docker ps` (adoption, unmanaged containers);
//! - `events`: Docker's event stream (die, oom, health);
//! - `exec`: exec sessions (create, attach, resize, exit code, kill);
//! - `metrics`: per-container CPU and memory from cgroup files, stats as the fallback;
//! - `host`: host metrics from sysinfo;
//! - `diagnostics`: storage driver warnings.

mod adopt;
pub mod artifact;
mod cache;
mod connect;
mod diagnostics;
mod events;
mod exec;
mod health;
mod host;
mod image;
mod inspect;
mod labels;
mod lifecycle;
mod logs;
mod metrics;
mod network;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::driver::{DriverError, ExecProcess, LogReceiver, RuntimeDriver, StepSender};
use crate::protocol::{ContainerReport, HostMetrics, InstanceReport, InstanceSpec};
use crate::repository::Repository;

pub use diagnostics::storage_warnings;
pub use network::{Ipv4Net, VlanConfig};

/// How a container's port is published on the advertise address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishMode {
    /// A free host port picked by the agent when the container is created, and kept for its
    /// life: Docker picks a new port on every restart when asked for "any", which would
    /// move the instance's endpoint under its routes.
    #[default]
    Auto,
    /// The host port equals the container port, as in the original per-host scheme; a
    /// port already taken fails the deploy.
    Same,
}

/// Where instances are reached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Ports published on the advertise IP; the endpoint is `advertise ip:host port`.
    #[default]
    Published,
    /// Each container gets a static address on a Docker network with IPAM; the endpoint is
    /// `container ip:container port`.
    Vlan(VlanConfig),
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// The agent's host id; written into every container's `quarterdeck.host` label.
    pub host_id: String,
    /// Unpacked artifacts go to `<data_dir>/instances/<instance id>/<version>`.
    pub data_dir: PathBuf,
    /// Where ports are published. Required in published mode; in VLAN mode, when set, the
    /// port is published as well and health checks go there.
    pub advertise_ip: Option<Ipv4Addr>,
    pub publish: PublishMode,
    pub network: NetworkMode,
    /// How long a new or restarted container may take to pass its health check.
    pub health_timeout: Duration,
    /// How often the driver reconciles with `docker ps` and samples metrics.
    pub refresh_period: Duration,
    /// Grace period for `docker stop` before the kill.
    pub stop_timeout: Duration,
    /// Extra labels for every container (tests mark theirs for cleanup).
    pub extra_labels: BTreeMap<String, String>,
    /// Root of the cgroup file system (tests point it elsewhere).
    pub cgroup_root: PathBuf,
    /// What this host offers when it shares its machine with other hosts.
    pub share: HostShare,
    /// Where the values of an instance's secrets are read when its container is created;
    /// without it, a spec with secrets fails with a clear reason.
    pub secrets: Option<crate::secrets::Secrets>,
}

/// A host's slice of a machine it shares with other hosts (the lab's hosts are network
/// namespaces on one machine, each with its own dockerd, and each engine reports the whole
/// machine). Given, it is the host's capacity, and its CPU and MEM figures are its own
/// containers' use of it: four hosts showing the same machine-wide figures would tell the
/// operator nothing about any one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostShare {
    pub cores: Option<u32>,
    pub memory_mb: Option<u64>,
}

impl HostShare {
    /// The engine's figures with the share's in their place.
    fn apply(self, engine: &mut Engine) {
        engine.cpu_cores = self.cores.unwrap_or(engine.cpu_cores);
        engine.memory_mb = self.memory_mb.unwrap_or(engine.memory_mb);
    }

    /// The host's figures from its containers' use (CPU as % of one core, memory in MB) where a
    /// share is given; the machine's otherwise.
    pub fn metrics(self, machine: HostMetrics, containers: &[(f32, u64)]) -> HostMetrics {
        let mut m = machine;
        if let Some(cores) = self.cores {
            let used: f32 = containers.iter().map(|(cpu, _)| cpu).sum();
            m.cpu_pct = (used / cores as f32).clamp(0.0, 100.0);
        }
        if let Some(total) = self.memory_mb {
            m.mem_total_mb = total;
            m.mem_used_mb = containers.iter().map(|(_, mem)| mem).sum();
        }
        m
    }
}

impl DockerConfig {
    /// Defaults for a host: published on `advertise_ip`.
    pub fn new(host_id: impl Into<String>, data_dir: impl Into<PathBuf>, advertise_ip: Ipv4Addr) -> Self {
        DockerConfig {
            host_id: host_id.into(),
            data_dir: data_dir.into(),
            advertise_ip: Some(advertise_ip),
            publish: PublishMode::Auto,
            network: NetworkMode::Published,
            health_timeout: Duration::from_secs(30),
            refresh_period: Duration::from_secs(2),
            // Short: the controller waits 5 s for an agent's answer to a remove.
            stop_timeout: Duration::from_secs(2),
            extra_labels: BTreeMap::new(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            share: HostShare::default(),
            secrets: None,
        }
    }
}

/// What the engine told us when we connected.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub cpu_cores: u32,
    pub memory_mb: u64,
    pub storage_driver: String,
    pub root_dir: String,
    pub api_version: String,
    pub server_version: String,
}

/// The shared state behind the driver; background tasks hold it too.
pub(crate) struct Inner {
    pub docker: Docker,
    pub config: DockerConfig,
    pub repo: Arc<dyn Repository>,
    pub engine: Engine,
    pub warnings: Vec<String>,
    pub cache: Mutex<cache::Cache>,
    pub metrics: Mutex<metrics::Sampler>,
    pub host: Mutex<host::HostSampler>,
    /// Wakes the refresh task early (after the event stream reconnects).
    pub refresh_now: Notify,
    /// Serialises VLAN address picks so two deploys never take the same address.
    pub ipam: tokio::sync::Mutex<()>,
}

impl Inner {
    pub fn cache(&self) -> MutexGuard<'_, cache::Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct DockerDriver {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl DockerDriver {
    /// Connects to the engine (`DOCKER_HOST` or the local socket), negotiates the API
    /// version, prepares the VLAN network if configured, adopts this host's labelled
    /// containers, and starts the event and refresh tasks. Fails with a clear reason when
    /// the engine cannot be reached.
    pub async fn connect(config: DockerConfig, repo: Arc<dyn Repository>) -> Result<DockerDriver, String> {
        crate::protocol::validate::name("host id", &config.host_id)?;
        if config.network == NetworkMode::Published && config.advertise_ip.is_none() {
            return Err("published networking needs an advertise IP".into());
        }
        let (docker, mut engine, info) = connect::connect().await?;
        config.share.apply(&mut engine);
        std::fs::create_dir_all(config.data_dir.join("instances"))
            .map_err(|e| format!("data dir {}: {e}", config.data_dir.display()))?;
        // Bind mounts need an absolute source.
        let data_dir = std::fs::canonicalize(&config.data_dir)
            .map_err(|e| format!("data dir {}: {e}", config.data_dir.display()))?;
        let config = DockerConfig { data_dir, ..config };
        if let NetworkMode::Vlan(vlan) = &config.network {
            network::ensure_network(&docker, &config.host_id, vlan).await?;
        }
        let warnings = diagnostics::diagnose(&info);
        log::info!(
            "docker engine {} (API {}), storage driver {}, {} cores, {} MB{}",
            engine.server_version,
            engine.api_version,
            engine.storage_driver,
            engine.cpu_cores,
            engine.memory_mb,
            if warnings.is_empty() { String::new() } else { format!("; warnings: {}", warnings.join("; ")) }
        );
        let host = host::HostSampler::new(&engine.root_dir);
        let inner = Arc::new(Inner {
            metrics: Mutex::new(metrics::Sampler::new(config.cgroup_root.clone())),
            docker,
            config,
            repo,
            engine,
            warnings,
            cache: Mutex::new(cache::Cache::default()),
            host: Mutex::new(host),
            refresh_now: Notify::new(),
            ipam: tokio::sync::Mutex::new(()),
        });
        // Adopt before anyone asks: the first heartbeat already reports what runs.
        adopt::refresh(&inner).await.map_err(|e| format!("cannot list containers: {e}"))?;
        let tasks = vec![
            tokio::spawn(events::watch(inner.clone())),
            tokio::spawn(adopt::refresh_loop(inner.clone())),
        ];
        Ok(DockerDriver { inner, tasks })
    }

    /// The engine's API version in use after negotiation, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.inner.engine.api_version
    }

    /// The storage driver dockerd uses.
    pub fn storage_driver(&self) -> &str {
        &self.inner.engine.storage_driver
    }

    /// How many container samples came from cgroup files and how many from one-shot stats
    /// (the fallback), since the driver started.
    pub fn metric_sources(&self) -> (u64, u64) {
        let m = self.inner.metrics.lock().unwrap_or_else(|p| p.into_inner());
        (m.from_cgroup, m.from_stats)
    }

    /// Reconciles with Docker now instead of at the next period (tests, diagnostics).
    pub async fn refresh(&self) -> Result<(), String> {
        adopt::refresh(&self.inner).await
    }
}

impl Drop for DockerDriver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait]
impl RuntimeDriver for DockerDriver {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn capacity(&self) -> (u32, u64) {
        (self.inner.engine.cpu_cores, self.inner.engine.memory_mb)
    }

    async fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }

    async fn host_metrics(&self) -> HostMetrics {
        let inner = self.inner.clone();
        // sysinfo reads /proc synchronously; keep it off the async workers.
        let machine = tokio::task::spawn_blocking(move || {
            inner.host.lock().unwrap_or_else(|p| p.into_inner()).sample()
        })
        .await
        .unwrap_or_default();
        let containers: Vec<(f32, u64)> = {
            let cache = self.inner.cache();
            let managed = cache.reports().into_iter().map(|r| (r.cpu_pct, r.mem_used_mb));
            managed.chain(cache.unmanaged.iter().map(|c| (c.cpu_pct, c.mem_used_mb))).collect()
        };
        self.inner.config.share.metrics(machine, &containers)
    }

    async fn unmanaged(&self) -> Vec<ContainerReport> {
        self.inner.cache().unmanaged.clone()
    }

    async fn list(&self) -> Result<Vec<InstanceReport>, DriverError> {
        Ok(self.inner.cache().reports())
    }

    async fn has(&self, id: &str) -> bool {
        self.inner.cache().has(id)
    }

    async fn resolve(&self, image: &str) -> Result<String, DriverError> {
        image::resolve(&self.inner.docker, image).await.map_err(DriverError::Failed)
    }

    async fn forward_target(&self, id: &str, port: u16) -> Result<std::net::SocketAddr, DriverError> {
        let cache = self.inner.cache();
        match cache.entries.get(id).filter(|_| cache.has(id)) {
            Some(e) => crate::plane::agent::driver::forward_target(&e.report, e.container_port, port),
            None => Err(DriverError::NotFound(id.to_string())),
        }
    }

    async fn deploy(&self, spec: InstanceSpec, steps: StepSender) -> Result<(), DriverError> {
        lifecycle::deploy(&self.inner, spec, &steps).await
    }

    async fn restart(&self, id: &str, steps: StepSender) -> Result<(), DriverError> {
        lifecycle::restart(&self.inner, id, &steps).await
    }

    async fn remove(&self, id: &str) -> Result<(), DriverError> {
        lifecycle::remove(&self.inner, id).await
    }

    async fn logs(&self, id: &str, tail: u32, follow: bool) -> Result<LogReceiver, DriverError> {
        logs::stream(&self.inner, id, logs::From::Tail(tail), follow).await
    }

    async fn logs_since(&self, id: &str, since_ms: u64) -> Result<LogReceiver, DriverError> {
        logs::stream(&self.inner, id, logs::From::Since(since_ms), true).await
    }

    async fn exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: bool,
        size: (u16, u16),
    ) -> Result<ExecProcess, DriverError> {
        exec::start(&self.inner, id, cmd, tty, size).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> HostMetrics {
        HostMetrics {
            cpu_pct: 90.0,
            mem_used_mb: 20_000,
            mem_total_mb: 24_000,
            load1: 3.0,
            ..HostMetrics::default()
        }
    }

    /// A lab host offered 2 cores and 4 GB runs a container at half a core and 300 MB and
    /// another at one core and 100 MB: 75 % of its 2 cores and 400 of 4096 MB, whatever the
    /// machine does.
    #[test]
    fn a_shared_host_s_figures_are_its_containers_use_of_its_share() {
        let share = HostShare { cores: Some(2), memory_mb: Some(4096) };
        let m = share.metrics(machine(), &[(50.0, 300), (100.0, 100)]);
        assert_eq!((m.cpu_pct, m.mem_used_mb, m.mem_total_mb), (75.0, 400, 4096));
        assert_eq!(m.load1, 3.0, "what has no share stays the machine's");
        let idle = share.metrics(machine(), &[]);
        assert_eq!((idle.cpu_pct, idle.mem_used_mb), (0.0, 0));
    }

    #[test]
    fn without_a_share_the_figures_are_the_machine_s() {
        assert_eq!(HostShare::default().metrics(machine(), &[(50.0, 300)]), machine());
        let mut engine = Engine {
            cpu_cores: 8,
            memory_mb: 24_000,
            storage_driver: String::new(),
            root_dir: String::new(),
            api_version: String::new(),
            server_version: String::new(),
        };
        HostShare::default().apply(&mut engine);
        assert_eq!((engine.cpu_cores, engine.memory_mb), (8, 24_000));
        HostShare { cores: Some(1), memory_mb: Some(2048) }.apply(&mut engine);
        assert_eq!((engine.cpu_cores, engine.memory_mb), (1, 2048));
    }
}
