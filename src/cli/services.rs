//! `quarterdeck controller` and `quarterdeck agent`: the control plane's long-running
//! services on a real NATS server.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::BusArgs;
use super::parse;
use crate::bus::{self, Bus, NatsBus};
use crate::plane::agent::docker::{
    DockerConfig, DockerDriver, HostShare, Ipv4Net, NetworkMode, PublishMode, VlanConfig,
};
use crate::plane::agent::driver::RuntimeDriver;
use crate::plane::agent::sim::{SimConfig, SimDriver};
use crate::plane::agent::{self, AgentConfig};
use crate::plane::controller::lease::Lease;
use crate::plane::controller::store::{JetStreamConfig, JetStreamStore, Store};
use crate::plane::controller::{Controller, ControllerConfig, LeaseHold};
use crate::plane::metrics::agent::AgentMetrics;
use crate::plane::metrics::controller::ControllerMetrics;
use crate::plane::metrics::serve::MetricsServer;
use crate::plane::metrics::{Scrape, count_reconnects};
use crate::protocol::{ErrorCode, Reply, WireError, subjects, validate};
use crate::repository::{DirRepository, ObjectStoreRepository, Repository};

/// `--metrics-listen`, the same on the controller, the agent and the router.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://IP:PORT/metrics (e.g. 127.0.0.1:9100; port 0
    /// takes a free one, which the log names). Off unless given; the README lists the
    /// metrics.
    #[arg(long, value_name = "IP:PORT", value_parser = parse::listen_addr)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl MetricsArgs {
    /// Starts the endpoint when the flag is given: a port in use fails here, before the
    /// service connects to anything.
    pub async fn start(&self, scrape: Arc<dyn Scrape>) -> Result<Option<MetricsServer>, String> {
        match self.metrics_listen {
            Some(addr) => MetricsServer::start(addr, scrape).await.map(Some),
            None => Ok(None),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// This controller's identity in the leader lease. A controller restarted with the same
    /// id takes its lease back at once; one with another id waits until it expires.
    /// [default: the host name]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// Heartbeat period the controller expects from agents that don't say theirs.
    #[arg(long, default_value = "2s", value_parser = parse::duration, value_name = "DURATION")]
    pub heartbeat: Duration,

    /// Missed heartbeat periods before a host is `stale`.
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub stale_after: u32,

    /// Missed heartbeat periods before a host is `lost` and its instances are placed again.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=10000))]
    pub lost_after: u32,

    /// How long the event history (a JetStream stream) keeps events.
    #[arg(long, default_value = "24h", value_parser = parse::duration, value_name = "DURATION")]
    pub history_max_age: Duration,

    /// How many events the history keeps at most.
    #[arg(long, default_value_t = 1_000_000, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub history_max_msgs: i64,

    /// How long the leader lease lasts without renewal; a standby takes over after it. A
    /// leader that cannot renew it (the bus is down) is fenced: it answers `not_ready` and
    /// acts on nothing until it renews, and goes standby if another controller took it.
    #[arg(long, default_value = "10s", value_parser = parse::duration, value_name = "DURATION")]
    pub lease_ttl: Duration,

    /// How long one deploy step may take before the operation fails.
    #[arg(long, default_value = "60s", value_parser = parse::duration, value_name = "DURATION")]
    pub step_timeout: Duration,

    /// How long a route's backend may have no running instance before the route is marked
    /// stale and the router leaves it out.
    #[arg(long, default_value = "10s", value_parser = parse::duration, value_name = "DURATION")]
    pub route_stale_after: Duration,

    /// Copies JetStream keeps of the event history, the state and lease buckets and the
    /// artifact store: 3 on a 3-node NATS cluster, so it survives losing a node. Objects
    /// that exist with another number are scaled to this one. More than the cluster's
    /// nodes is refused by nats-server.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    pub replicas: u8,

    #[command(flatten)]
    pub alerts: super::alert_flags::AlertArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// Simulated containers (for demos and tests of the plane itself).
    Sim,
    /// A real Docker engine (DOCKER_HOST or the local socket).
    Docker,
}

/// docker driver: how instances are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DockerNetwork {
    /// Each container port published on --advertise-ip and a host port.
    Published,
    /// A Docker network with IPAM (--subnet, --gateway); a static address per container.
    Vlan,
}

/// docker driver: which host port a container port is published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DockerPublish {
    /// A free port, picked once per container and kept across restarts.
    Auto,
    /// The container's own port; a port already taken fails the deploy.
    Same,
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// This host's id: 1-63 of a-z, 0-9 and '-'.
    #[arg(long, value_name = "ID")]
    pub host_id: String,

    /// The availability zone this host is in.
    #[arg(long, value_name = "AZ")]
    pub az: String,

    /// A tag the scheduler can require (repeat for more), e.g. --tag ssd.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// The container runtime driver.
    #[arg(long, value_enum, default_value = "sim")]
    pub driver: Driver,

    /// The address this host is reached at, reported in heartbeats.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub ip: std::net::Ipv4Addr,

    /// Heartbeat period.
    #[arg(long, default_value = "2s", value_parser = parse::duration, value_name = "DURATION")]
    pub heartbeat: Duration,

    /// sim driver: CPU cores the host offers.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub sim_cores: u32,

    /// sim driver: memory the host offers, e.g. 16G.
    #[arg(long, default_value = "16G", value_parser = parse::memory_mb, value_name = "SIZE")]
    pub sim_memory: u64,

    /// sim driver: random seed [default: derived from the host id, so hosts differ].
    #[arg(long, value_name = "N")]
    pub sim_seed: Option<u64>,

    /// sim driver: speed of container lifecycles (1 is realistic).
    #[arg(long, default_value_t = 1.0, value_parser = super::parse_speed, value_name = "X")]
    pub sim_speed: f64,

    /// sim driver: random crashes per container per hour.
    #[arg(long, default_value_t = 0.0, value_parser = super::parse_crash_rate, value_name = "RATE")]
    pub sim_crash_rate: f64,

    /// docker driver: the address container ports are published on [default: --ip].
    #[arg(long, value_name = "IP")]
    pub advertise_ip: Option<std::net::Ipv4Addr>,

    /// docker driver: where artifacts are unpacked (<DIR>/instances/<id>/<version>).
    #[arg(long, default_value = "/var/lib/quarterdeck", value_name = "DIR")]
    pub data_dir: std::path::PathBuf,

    /// docker driver: published ports, or a VLAN network with a static address each.
    #[arg(long, value_enum, default_value = "published")]
    pub network: DockerNetwork,

    /// docker driver: which host port each container port is published on.
    #[arg(long, value_enum, default_value = "auto")]
    pub publish: DockerPublish,

    /// docker driver, --network vlan: the host's subnet, e.g. 10.101.1.0/24; containers
    /// get addresses from .31 up.
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,

    /// docker driver, --network vlan: the subnet's gateway.
    #[arg(long, value_name = "IP")]
    pub gateway: Option<std::net::Ipv4Addr>,

    /// docker driver, --network vlan: the Docker network driver (bridge, macvlan, ipvlan).
    #[arg(long, default_value = "bridge", value_name = "NAME")]
    pub vlan_driver: String,

    /// docker driver, --network vlan: the host interface a macvlan/ipvlan network uses.
    #[arg(long, value_name = "IFACE")]
    pub vlan_parent: Option<String>,

    /// docker driver: how long a started container may take to pass its health check.
    #[arg(long, default_value = "30s", value_parser = parse::duration, value_name = "DURATION")]
    pub health_timeout: Duration,

    /// docker driver: read artifacts from this directory instead of the bus's object store.
    #[arg(long, value_name = "DIR")]
    pub repo_dir: Option<std::path::PathBuf>,

    /// docker driver: the CPU cores this host offers when it shares a machine with other
    /// hosts (the lab's hosts in network namespaces). Its capacity for placement, and its
    /// CPU figure becomes its own containers' use of these cores [default: the engine's].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub share_cores: Option<u32>,

    /// docker driver: the memory this host offers on a shared machine, e.g. 4G; its MEM
    /// figure becomes its own containers' use of it [default: the engine's].
    #[arg(long, value_parser = parse::memory_mb, value_name = "SIZE")]
    pub share_memory: Option<u64>,

    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Resolves when the process is asked to stop.
pub(crate) async fn stop_signal() {
    let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// Retries `f` every second until it works, logging each failure once it changes.
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut last = String::new();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                if e != last {
                    log::warn!("{what}: {e}; retrying");
                    last = e;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The controller's id: `--id`, else the machine's host name. Its log lines and its bus
/// connection go by `controller/<id>`.
pub fn controller_id(args: &ControllerArgs) -> String {
    args.id.clone().unwrap_or_else(|| sysinfo::System::host_name().unwrap_or_else(|_| "controller".into()))
}

pub async fn run_controller(bus_args: BusArgs, args: ControllerArgs) -> Result<(), String> {
    let id = controller_id(&args);
    let metrics = Arc::new(ControllerMetrics::new());
    let mut server = args.metrics.start(metrics.clone()).await?;
    let bus = bus_args.connect(&format!("controller/{id}")).await?;
    if let Some(server) = &mut server {
        server.own(count_reconnects(bus.connection(), metrics.reconnects()));
    }
    let js_config = JetStreamConfig {
        max_age: args.history_max_age,
        max_messages: args.history_max_msgs,
        replicas: Some(usize::from(args.replicas)),
        ..JetStreamConfig::default()
    };
    let store = retry("opening JetStream", || async {
        JetStreamStore::open(&bus, &js_config).await.map_err(|e| e.to_string())
    })
    .await;
    let config = ControllerConfig {
        source: format!("controller/{id}"),
        heartbeat_period: args.heartbeat,
        stale_after: args.stale_after,
        lost_after: args.lost_after.max(args.stale_after + 1),
        step_timeout: args.step_timeout,
        route_stale_after: args.route_stale_after,
        alerts: args.alerts.config(),
        metrics: server.is_some().then_some(metrics),
        ..ControllerConfig::default()
    };
    let dyn_bus: Arc<dyn Bus> = Arc::new(bus.clone());
    let store: Arc<dyn Store> = Arc::new(store);
    let repository = retry("opening the artifact repository", || async {
        ObjectStoreRepository::open_with(&bus, Some(usize::from(args.replicas)))
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let repository: Arc<dyn Repository> = Arc::new(repository);
    // Made here, as the artifacts' bucket is: agents put their session recordings into it.
    retry("opening the sessions bucket", || async {
        let bucket = crate::protocol::exec::SESSIONS_BUCKET;
        ObjectStoreRepository::open_bucket(&bus, bucket, Some(usize::from(args.replicas)))
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let secrets = retry("opening the secrets bucket", || async {
        crate::secrets::KvSecrets::open(&bus, usize::from(args.replicas)).await.map_err(|e| e.to_string())
    })
    .await;
    let buckets = Buckets { repository, secrets: crate::secrets::Secrets(Arc::new(secrets)) };
    // Leader, then standby again if another controller takes the lease, as often as that
    // happens: the process ends only when asked to.
    loop {
        let term = tokio::select! {
            term = lead_once(&bus, &id, &args, &config, &dyn_bus, &store, &buckets) => term?,
            _ = stop_signal() => Term::Stop,
        };
        match term {
            Term::Stop => {
                log::info!("controller {id} stopping");
                if let Some(server) = server {
                    server.stop().await;
                }
                return Ok(());
            }
            Term::Lost(reason) => {
                log::warn!(
                    "controller {id} stopped leading: {reason}; standby until the lease is free again"
                );
            }
        }
    }
}

/// The buckets a controller works with besides its state: artifacts and secret values.
struct Buckets {
    repository: Arc<dyn Repository>,
    secrets: crate::secrets::Secrets,
}

/// How one term as leader ended.
enum Term {
    /// Asked to stop.
    Stop,
    /// The lease was written by another controller: standby, and reload before leading.
    Lost(String),
}

/// Waits for the lease, loads the state from the store (afresh each time: another leader
/// may have changed it) and leads until the lease is lost.
async fn lead_once(
    bus: &NatsBus,
    id: &str,
    args: &ControllerArgs,
    config: &ControllerConfig,
    dyn_bus: &Arc<dyn Bus>,
    store: &Arc<dyn Store>,
    buckets: &Buckets,
) -> Result<Term, String> {
    // Retried: the bus may be down when a superseded leader comes back here.
    let lease = retry("opening the leader lease", || async {
        Lease::acquire(bus, id, args.lease_ttl, usize::from(args.replicas)).await.map_err(|e| e.to_string())
    })
    .await;
    // Kept from now on, while the state loads too: a long load must not let the lease lapse.
    let (hold_tx, mut hold) = watch::channel(LeaseHold::Fenced);
    let mut keeper = tokio::spawn(lease.keep(move |h| {
        hold_tx.send_replace(h);
    }));
    // Leader now: commands are refused, by name, until the state is loaded.
    let not_ready = tokio::spawn(refuse_until_loaded(bus.clone()));
    let fleet = retry("loading state", || async { store.load().await.map_err(|e| e.to_string()) }).await;
    not_ready.abort();
    let started = Controller::start_with_secrets(
        dyn_bus.clone(),
        config.clone(),
        fleet,
        store.clone(),
        Some(buckets.repository.clone()),
        Some(buckets.secrets.clone()),
    )
    .await;
    let controller = match started {
        Ok(c) => c,
        Err(e) => {
            keeper.abort();
            return Err(e.to_string());
        }
    };
    log::info!("controller {id} is serving on {}", bus.describe());
    let reason = loop {
        // Copied out first, so the guard is not held while the controller's lease is written.
        let now = *hold.borrow_and_update();
        controller.set_lease(now);
        tokio::select! {
            ended = &mut keeper => break ended.unwrap_or_else(|e| format!("the lease keeper failed: {e}")),
            // Another writer on the event stream: what this controller holds in memory is
            // no longer the history. It stops, and takes the lease back (or waits for it)
            // to load the state afresh.
            deposed = controller.deposed() => {
                keeper.abort();
                break deposed;
            }
            _ = hold.changed() => {}
        }
    };
    // Every task of this term ends before the next term starts: nothing of it acts on.
    controller.stop().await;
    Ok(Term::Lost(reason))
}

async fn refuse_until_loaded(bus: NatsBus) {
    let Ok(mut sub) = bus.subscribe(subjects::CTL_ALL).await else { return };
    while let Some(msg) = sub.next().await {
        let reply: Reply<()> = Reply::Error(WireError::new(
            ErrorCode::NotReady,
            "the controller is still loading its state; try again in a moment",
        ));
        let _ = bus::respond(&bus, &msg, "controller", &reply).await;
    }
}

/// The sim driver's seed for a host: derived from its id (FNV-1a), so hosts differ.
pub(crate) fn sim_seed(host_id: &str) -> u64 {
    host_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The addresses a sim host hands its containers: from .31 up in the host's /24, as in
/// the original, never the host's own.
pub(crate) fn sim_container_ips(ip: std::net::Ipv4Addr) -> Vec<String> {
    let [a, b, c, d] = ip.octets();
    (31u8..=250).filter(|x| *x != d).map(|x| format!("{a}.{b}.{c}.{x}")).collect()
}

/// The runtime driver `--driver` names, set up from the agent's flags.
async fn runtime_driver(args: &AgentArgs, bus: &NatsBus) -> Result<Arc<dyn RuntimeDriver>, String> {
    Ok(match args.driver {
        Driver::Sim => SimDriver::new(SimConfig {
            seed: args.sim_seed.unwrap_or_else(|| sim_seed(&args.host_id)),
            cpu_cores: args.sim_cores,
            memory_mb: args.sim_memory,
            container_ips: sim_container_ips(args.ip),
            speed: args.sim_speed,
            crashes_per_hour: args.sim_crash_rate,
        }),
        Driver::Docker => {
            let advertise_ip = args.advertise_ip.unwrap_or(args.ip);
            let network = match args.network {
                DockerNetwork::Published => NetworkMode::Published,
                DockerNetwork::Vlan => {
                    let (Some(subnet), Some(gateway)) = (&args.subnet, args.gateway) else {
                        return Err("--network vlan needs --subnet CIDR and --gateway IP".into());
                    };
                    let mut vlan = VlanConfig::new(subnet.parse::<Ipv4Net>()?, gateway)?;
                    vlan.driver = args.vlan_driver.clone();
                    vlan.parent = args.vlan_parent.clone();
                    NetworkMode::Vlan(vlan)
                }
            };
            let config = DockerConfig {
                network,
                publish: match args.publish {
                    DockerPublish::Auto => PublishMode::Auto,
                    DockerPublish::Same => PublishMode::Same,
                },
                health_timeout: args.health_timeout,
                refresh_period: args.heartbeat,
                share: HostShare { cores: args.share_cores, memory_mb: args.share_memory },
                secrets: Some(crate::secrets::Secrets(Arc::new(crate::secrets::KvSecrets::reader(bus)))),
                ..DockerConfig::new(args.host_id.clone(), args.data_dir.clone(), advertise_ip)
            };
            let repo: Arc<dyn Repository> = match &args.repo_dir {
                Some(dir) => Arc::new(DirRepository::new(dir).map_err(|e| e.to_string())?),
                None => Arc::new(ObjectStoreRepository::reader(bus)),
            };
            let docker = DockerDriver::connect(config, repo).await?;
            log::info!(
                "docker driver: API {}, storage driver {}",
                docker.api_version(),
                docker.storage_driver()
            );
            Arc::new(docker)
        }
    })
}

pub async fn run_agent(bus_args: BusArgs, args: AgentArgs) -> Result<(), String> {
    validate::name("host id", &args.host_id)?;
    validate::name("AZ", &args.az)?;
    for t in &args.tags {
        validate::tag(t)?;
    }
    let metrics = Arc::new(AgentMetrics::new());
    let mut server = args.metrics.start(metrics.clone()).await?;
    let bus = bus_args.connect(&format!("agent/{}", args.host_id)).await?;
    if let Some(server) = &mut server {
        server.own(count_reconnects(bus.connection(), metrics.reconnects()));
    }
    let driver = runtime_driver(&args, &bus).await?;
    let config = AgentConfig {
        host_id: args.host_id.clone(),
        hostname: sysinfo::System::host_name().unwrap_or_else(|_| args.host_id.clone()),
        ip: args.ip.to_string(),
        az: args.az.clone(),
        tags: args.tags.clone(),
        heartbeat_period: args.heartbeat,
        poll_interval: Duration::from_millis(250),
        metrics: server.is_some().then_some(metrics),
    };
    // Exec sessions are recorded into the sessions bucket, which the controller makes.
    let recordings: Arc<dyn Repository> =
        Arc::new(ObjectStoreRepository::reader_of(&bus, crate::protocol::exec::SESSIONS_BUCKET));
    let handle = agent::start_with_recordings(Arc::new(bus.clone()), driver, config, Some(recordings))
        .await
        .map_err(|e| e.to_string())?;
    log::info!("agent {} ({}, {}) is serving on {}", args.host_id, args.az, args.ip, bus.describe());
    stop_signal().await;
    handle.stop();
    if let Some(server) = server {
        server.stop().await;
    }
    log::info!("agent {} stopping", args.host_id);
    Ok(())
}
