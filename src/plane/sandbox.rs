//! The embedded sandbox: a controller and a simulated fleet on an in-process bus, all in
//! one process, with the three apps of the original system running. `quarterdeck` with no
//! bus given opens the cockpit on this.

use std::sync::Arc;
use std::time::Duration;

use super::agent::sim::{SimConfig, SimDriver};
use super::agent::{self, AgentConfig, AgentHandle};
use super::controller::store::MemoryStore;
use super::controller::{Controller, ControllerConfig, ControllerHandle};
use super::fixture::{T0, fixture};
use super::rng::Rng;
use super::router::{self, RouterConfig, SimApplier};
use crate::bus::{self, Bus, LocalBus, RequestError};
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::CtlVerb;
use crate::protocol::{Accepted, Constraints, DeployRequest, Envelope, Fleet, InstanceReport};
use crate::repository::{MemoryRepository, Repository};

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub seed: u64,
    pub hosts: usize,
    /// 1.0 is realistic timing; tests run faster.
    pub speed: f64,
    pub heartbeat_period: Duration,
    pub crashes_per_hour: f64,
    /// Deploy shop-web, api-gateway and session-cache at start.
    pub seed_apps: bool,
    /// More instances than the seed apps' seven: the fleet starts already placed (the seed
    /// apps plus generated apps of 20 instances), for scale. Otherwise the seed apps are
    /// deployed through the controller, step by step, as a newcomer would watch it.
    pub instances: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            seed: 42,
            hosts: 6,
            speed: 1.0,
            heartbeat_period: Duration::from_secs(2),
            crashes_per_hour: 4.0,
            seed_apps: true,
            instances: 0,
        }
    }
}

pub struct Sandbox {
    pub bus: Arc<LocalBus>,
    pub controller: ControllerHandle,
    pub agents: Vec<AgentHandle>,
    /// Artifacts uploaded from the cockpit's wizard, in memory.
    pub repository: Arc<MemoryRepository>,
}

/// The most heartbeats a second the whole simulated fleet sends, as Nomad caps its
/// clients' (`max_heartbeats_per_second`): a large fleet heartbeats less often, each host
/// at least every `hosts / 100` seconds, never more often than every 2 s.
pub const MAX_HEARTBEATS_PER_S: u64 = 100;

/// The heartbeat period for a fleet of `hosts`: 2 s up to 200 hosts, 10 s at 1,000.
pub fn heartbeat_period_for(hosts: usize) -> Duration {
    let ms = (hosts as u64 * 1000).div_ceil(MAX_HEARTBEATS_PER_S);
    Duration::from_millis(ms.max(2000))
}

/// The seed apps' instances: shop-web x3, api-gateway x2, session-cache x2.
pub const SEED_INSTANCES: usize = 7;

/// The fixture's fleet for `--sandbox-instances`, moved to the present: the hosts have just
/// been heard from (so the health manager does not take them for lost before their first
/// heartbeat), and the instances started as long before now as before the fixture's clock.
fn placed_fleet(config: &SandboxConfig) -> Fleet {
    let (mut fleet, _) = fixture(config.seed, config.hosts, config.instances - SEED_INSTANCES);
    let now = now_ms();
    let shift = now.saturating_sub(T0);
    for h in fleet.hosts.values_mut() {
        h.last_heartbeat = now;
    }
    for i in fleet.instances.values_mut() {
        i.started_at = i.started_at.map(|t| t + shift);
    }
    fleet
}

/// Where a simulated host sits: the original addressing, az1 10.101.1.0/24 and az2
/// 10.101.2.0/24, hosts from .11 and containers from .31. Fleets of more than ten hosts per
/// AZ get a block per host elsewhere in 10/8, since a /24 cannot hold them.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLayout {
    pub id: String,
    pub az: String,
    pub ip: String,
    pub tags: Vec<String>,
    pub cpu_cores: u32,
    pub memory_mb: u64,
    pub container_ips: Vec<String>,
}

pub fn host_layout(index: usize, total: usize) -> HostLayout {
    let az = index % 2 + 1;
    let j = index / 2;
    let per_az = total.div_ceil(2);
    let (ip, container_ips) = if per_az <= 10 {
        let ips = (0..22).map(|k| format!("10.101.{az}.{}", 31 + j * 22 + k)).collect();
        (format!("10.101.{az}.{}", 11 + j), ips)
    } else {
        let ips = (0..64)
            .map(|k| {
                let n = j * 64 + k;
                format!("10.{}.{}.{}", 200 + az, n / 256, n % 256)
            })
            .collect();
        (format!("10.{}.{}.{}", 100 + az, 1 + j / 240, 11 + j % 240), ips)
    };
    let tags: &[&str] = match index % 3 {
        0 => &["web"],
        1 => &["web", "ssd"],
        _ => &["cache", "ssd"],
    };
    HostLayout {
        id: format!("host-{:02}", index + 1),
        az: format!("az{az}"),
        ip,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        cpu_cores: if index.is_multiple_of(2) { 8 } else { 16 },
        memory_mb: if index.is_multiple_of(2) { 16_384 } else { 32_768 },
        container_ips,
    }
}

/// The apps the original system ran: a tomcat web app, a node.js gateway and a redis cache.
pub fn seed_apps() -> Vec<DeployRequest> {
    let app = |name: &str, image: &str, port, n, cpu, mem, tags: &[&str], app_tags: &[&str]| DeployRequest {
        app: name.into(),
        version: "1.0.0".into(),
        instances: n,
        image: Some(image.into()),
        port: Some(port),
        constraints: Some(Constraints {
            azs: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            cpu,
            memory_mb: mem,
        }),
        domain: Some(format!("{name}.dianping.local")),
        tags: Some(app_tags.iter().map(|t| t.to_string()).collect()),
        ..DeployRequest::default()
    };
    vec![
        app("shop-web", "tomcat:8.5-jre8", 8080, 3, 1.0, 1024, &["web"], &["prod"]),
        app("api-gateway", "node:18-alpine", 3000, 2, 0.5, 512, &[], &[]),
        app("session-cache", "redis:7-alpine", 6379, 2, 0.5, 1024, &["ssd"], &[]),
    ]
}

impl Sandbox {
    /// Starts the plane, or says why it cannot (the fleet does not fit, the bus failed).
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, String> {
        let bus = Arc::new(LocalBus::new());
        let dyn_bus: Arc<dyn Bus> = bus.clone();
        let controller_config = ControllerConfig {
            heartbeat_period: config.heartbeat_period,
            step_timeout: Duration::from_secs_f64((60.0 / config.speed).max(5.0)),
            ..ControllerConfig::default()
        };
        let store = Arc::new(MemoryStore::new(dyn_bus.clone()));
        let repository = Arc::new(MemoryRepository::default());
        let repo: Arc<dyn Repository> = repository.clone();
        let placed = placed_fleet_that_fits(&config)?;
        let initial = placed.clone().unwrap_or_default();
        // The sandbox's secrets live in memory; its simulated agents need no values.
        let secrets = crate::secrets::Secrets(Arc::new(crate::secrets::MemorySecrets::default()));
        let controller = Controller::start_with_secrets(
            dyn_bus.clone(),
            controller_config,
            initial,
            store,
            Some(repo),
            Some(secrets),
        )
        .await
        .map_err(|e| e.to_string())?;
        let agents = start_agents(&dyn_bus, &config, placed.as_ref()).await?;
        start_router(&dyn_bus);
        let sandbox = Sandbox { bus, controller, agents, repository };
        sandbox.settle(config.hosts, config.seed_apps && placed.is_none()).await;
        Ok(sandbox)
    }

    /// Waits for the hosts to say hello, then deploys the seed apps when `deploy_seed`:
    /// apps can only be placed once the hosts have joined.
    async fn settle(&self, hosts: usize, deploy_seed: bool) {
        let joined = self
            .controller
            .wait_for(Duration::from_secs(10), |f| (f.hosts.len() >= hosts).then_some(()))
            .await;
        if joined.is_none() {
            log::warn!("not every simulated host joined within 10 s");
        }
        if deploy_seed {
            for req in seed_apps() {
                if let Err(err) = self.deploy(req).await {
                    log::warn!("sandbox could not deploy a seed app: {err}");
                }
            }
        }
    }

    /// Sends a deploy request over the bus, as any client would.
    pub async fn deploy(&self, req: DeployRequest) -> Result<Accepted, RequestError> {
        bus::command(
            self.bus.as_ref(),
            CtlVerb::Deploy,
            &Envelope::new("sandbox", req),
            Duration::from_secs(5),
        )
        .await
    }
}

/// The placed fleet `--sandbox-instances` asks for (`None` when the seed apps are deployed
/// step by step instead), or why the hosts cannot hold it.
fn placed_fleet_that_fits(config: &SandboxConfig) -> Result<Option<Fleet>, String> {
    let placed = (config.seed_apps && config.instances > SEED_INSTANCES).then(|| placed_fleet(config));
    if let Some(fleet) = placed.as_ref().filter(|f| f.instances.len() < config.instances) {
        return Err(format!(
            "{} hosts have room for {} of the {} instances asked for: give more hosts (--sandbox-hosts)",
            config.hosts,
            fleet.instances.len(),
            config.instances
        ));
    }
    Ok(placed)
}

/// One agent per simulated host, each adopting its instances of the `placed` fleet.
async fn start_agents(
    bus: &Arc<dyn Bus>,
    config: &SandboxConfig,
    placed: Option<&Fleet>,
) -> Result<Vec<AgentHandle>, String> {
    let mut rng = Rng::new(config.seed);
    let mut agents = Vec::with_capacity(config.hosts);
    for i in 0..config.hosts {
        let layout = host_layout(i, config.hosts);
        let driver = SimDriver::new(SimConfig {
            seed: rng.fork(i as u64).next_u64(),
            cpu_cores: layout.cpu_cores,
            memory_mb: layout.memory_mb,
            container_ips: layout.container_ips.clone(),
            speed: config.speed,
            crashes_per_hour: config.crashes_per_hour,
        });
        if let Some(fleet) = placed {
            driver.adopt(fleet.instances_on(&layout.id).map(|i| {
                let image = fleet.apps.get(&i.app).map(|a| a.image.clone()).unwrap_or_default();
                (InstanceReport::of(i), i.cpu_limit, image)
            }));
        }
        let agent_config = AgentConfig {
            host_id: layout.id.clone(),
            hostname: format!("{}.sandbox", layout.id),
            ip: layout.ip.clone(),
            az: layout.az.clone(),
            tags: layout.tags.clone(),
            heartbeat_period: config.heartbeat_period,
            poll_interval: Duration::from_millis(200),
            metrics: None,
        };
        agents.push(agent::start(bus.clone(), driver, agent_config).await.map_err(|e| e.to_string())?);
    }
    Ok(agents)
}

/// The sandbox keeps its routes in memory and shows a simulated router.
fn start_router(bus: &Arc<dyn Bus>) {
    let router_config = RouterConfig {
        id: "sandbox-router".into(),
        listen: "simulated".into(),
        state_dir: std::env::temp_dir(),
        coalesce: Duration::from_millis(100),
        min_interval: Duration::from_millis(500),
        status_period: Duration::from_secs(2),
        metrics: None,
    };
    tokio::spawn(router::run(bus.clone(), router_config, Box::new(SimApplier), None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_fleet_heartbeats_less_often() {
        assert_eq!(heartbeat_period_for(6), Duration::from_secs(2));
        assert_eq!(heartbeat_period_for(200), Duration::from_secs(2));
        assert_eq!(heartbeat_period_for(1000), Duration::from_secs(10));
    }

    #[test]
    fn six_hosts_use_the_original_addressing() {
        let l: Vec<HostLayout> = (0..6).map(|i| host_layout(i, 6)).collect();
        assert_eq!(l[0].ip, "10.101.1.11");
        assert_eq!(l[1].ip, "10.101.2.11");
        assert_eq!(l[2].ip, "10.101.1.12");
        assert_eq!(l[0].container_ips[0], "10.101.1.31");
        assert_eq!(l[2].container_ips[0], "10.101.1.53");
        assert_eq!(l.iter().filter(|h| h.az == "az1").count(), 3);
    }

    #[test]
    fn large_fleets_never_share_an_address() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            let l = host_layout(i, 1000);
            assert!(seen.insert(l.ip.clone()), "{}", l.ip);
            for ip in l.container_ips {
                assert!(seen.insert(ip.clone()), "{ip}");
            }
        }
    }
}
