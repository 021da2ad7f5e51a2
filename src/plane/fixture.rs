//! A deterministic fleet built without running anything: the sandbox's hosts and apps,
//! placed by the real scheduler, with metrics from the seeded generator. For view
//! snapshots, headless tests and benchmarks, where timing must not matter.

use std::collections::HashMap;

use super::controller::scheduler::{PlacementRequest, place};
use super::rng::Rng;
use super::sandbox::{HostLayout, host_layout, seed_apps};
use crate::protocol::{
    AppSpec, Change, Event, EventKind, Fleet, Host, HostInfo, HostMetrics, HostState, Instance,
    InstanceState, Route, RouteState,
};

/// The fixture's clock: 2026-11-18 11:06:40 UTC.
pub const T0: u64 = 1_795_000_000_000;

/// `hosts` hosts running the three seed apps, plus `extra_instances` more instances spread
/// over generated apps (for scale). Every change is also returned as an event, in revision
/// order, so a replica can be built either way.
pub fn fixture(seed: u64, hosts: usize, extra_instances: usize) -> (Fleet, Vec<Event>) {
    let mut build = Build { rng: Rng::new(seed), fleet: Fleet::default(), events: Vec::new() };
    for i in 0..hosts {
        let l = host_layout(i, hosts);
        let host = build.host(&l);
        let msg = format!("{} joined: {} in {}", l.id, l.ip, l.az);
        build.commit(EventKind::HostJoined, None, msg, Change::Host(host));
    }
    let mut addresses = Addresses::new(hosts);
    for app in seed_specs().into_iter().chain(generated_apps(extra_instances)) {
        build.deploy(app, &mut addresses);
    }
    (build.fleet, build.events)
}

/// The fleet as it is built, and each change as the event that made it. The generator is
/// drawn from in one fixed order: a seed builds the same fleet every time.
struct Build {
    rng: Rng,
    fleet: Fleet,
    events: Vec<Event>,
}

impl Build {
    /// The change as the next revision's event, applied to the fleet.
    fn commit(&mut self, kind: EventKind, app: Option<&str>, message: String, change: Change) {
        let ev = Event {
            rev: self.fleet.revision + 1,
            ts: T0 + self.fleet.revision * 250,
            kind,
            app: app.map(str::to_string),
            host: None,
            instance: None,
            operation_id: None,
            message,
            changes: vec![change],
            audit: None,
        };
        let _ = self.fleet.apply(&ev);
        self.events.push(ev);
    }

    /// The sandbox's host at `l`, up and heard a second ago, with metrics of its own.
    fn host(&mut self, l: &HostLayout) -> Host {
        let rng = &mut self.rng;
        let cpu = rng.range(5.0, 70.0) as f32;
        let mem_used = (l.memory_mb as f64 * rng.range(0.2, 0.8)) as u64;
        Host {
            info: HostInfo {
                id: l.id.clone(),
                hostname: format!("{}.sandbox", l.id),
                ip: l.ip.clone(),
                az: l.az.clone(),
                tags: l.tags.clone(),
                cpu_cores: l.cpu_cores,
                memory_total_mb: l.memory_mb,
                agent_version: format!("{}/sim", env!("CARGO_PKG_VERSION")),
                warnings: vec![],
            },
            last_heartbeat: T0 + 59_000,
            state: HostState::Up,
            metrics: HostMetrics {
                cpu_pct: cpu,
                load1: cpu / 100.0 * l.cpu_cores as f32,
                load5: cpu / 110.0 * l.cpu_cores as f32,
                load15: cpu / 120.0 * l.cpu_cores as f32,
                mem_used_mb: mem_used,
                mem_total_mb: l.memory_mb,
                disk_used_mb: rng.between(40, 200) * 1024,
                disk_total_mb: 500 * 1024,
                net_rx_bps: rng.between(10_000, 5_000_000),
                net_tx_bps: rng.between(10_000, 9_000_000),
            },
            unmanaged: vec![],
            schedule: Default::default(),
        }
    }

    /// The app desired, then its instances where the real scheduler places them, each
    /// with its route. An app the fleet has no room for stays without instances.
    fn deploy(&mut self, app: AppSpec, addresses: &mut Addresses) {
        let name = app.name.clone();
        let desired = format!("desired {}@{} x{}", name, app.version, app.instances);
        self.commit(EventKind::AppUpdated, Some(&name), desired, Change::App(app.clone()));
        let req = PlacementRequest {
            app: &app.name,
            count: app.instances,
            constraints: &app.constraints,
            exclude: &[],
        };
        let Ok(placed) = place(&self.fleet, &req) else { return };
        for (index, host) in placed.into_iter().enumerate() {
            let ip = addresses.next_on(&host);
            let instance = self.instance(&app, index, host, ip);
            let (id, endpoint) = (instance.id.clone(), instance.endpoint.clone());
            let msg = format!("{id}: {endpoint} on {}", instance.host);
            self.commit(EventKind::InstanceDeployed, Some(&name), msg, Change::Instance(instance));
            let msg = format!("{} -> {endpoint}", app.domain);
            self.commit(EventKind::RouteAdded, Some(&name), msg, Change::Route(route(&app, endpoint)));
        }
    }

    /// Instance `index` of `app`, running on `host` at `ip` for a while already.
    fn instance(&mut self, app: &AppSpec, index: usize, host: String, ip: String) -> Instance {
        let rng = &mut self.rng;
        let id = format!("{}-{index}-{:04x}", app.name, rng.next_u64() & 0xffff);
        let endpoint = format!("{ip}:{}", app.port);
        let started = T0 - rng.between(60_000, 86_400_000);
        Instance {
            id,
            app: app.name.clone(),
            version: app.version.clone(),
            index: index as u32,
            host,
            ip,
            port: app.port,
            endpoint,
            container_id: format!("{:012x}", rng.next_u64() >> 16),
            state: InstanceState::Running,
            started_at: Some(started),
            restarts: if rng.chance(0.2) { rng.between(1, 4) as u32 } else { 0 },
            cpu_pct: rng.range(1.0, 80.0) as f32 * app.constraints.cpu,
            mem_used_mb: (app.constraints.memory_mb as f64 * rng.range(0.25, 0.9)) as u64,
            mem_limit_mb: app.constraints.memory_mb,
            cpu_limit: app.constraints.cpu,
            last_exit: None,
        }
    }
}

/// The enabled route to an instance of `app` at `backend`.
fn route(app: &AppSpec, backend: String) -> Route {
    Route {
        app: app.name.clone(),
        domain: app.domain.clone(),
        backend,
        state: RouteState::Enabled,
        weight: 1,
        stale: false,
    }
}

/// The sandbox's seed apps as the controller keeps them.
fn seed_specs() -> Vec<AppSpec> {
    seed_apps()
        .into_iter()
        .map(|r| AppSpec {
            name: r.app,
            version: r.version,
            instances: r.instances,
            image: r.image.unwrap_or_default(),
            port: r.port.unwrap_or(8080),
            constraints: r.constraints.unwrap_or_default(),
            domain: r.domain.unwrap_or_default(),
            tags: r.tags.unwrap_or_default(),
            run: r.run.map(|p| crate::protocol::RunSpec::default().patched(&p)).unwrap_or_default(),
            shortfall: None,
            digest: None,
        })
        .collect()
}

/// Small apps of up to 20 instances each, `instances` in all.
fn generated_apps(instances: usize) -> impl Iterator<Item = AppSpec> {
    const PER_APP: usize = 20;
    (0..instances.div_ceil(PER_APP)).map(move |n| AppSpec {
        name: format!("svc-{n:04}"),
        version: format!("1.{}.{}", n % 7, n % 13),
        instances: PER_APP.min(instances - n * PER_APP) as u32,
        image: format!("registry.local/svc-{n:04}:1"),
        port: 8000 + (n % 1000) as u16,
        constraints: crate::protocol::Constraints { azs: vec![], tags: vec![], cpu: 0.05, memory_mb: 64 },
        domain: format!("svc-{n:04}.local"),
        tags: vec![],
        run: crate::protocol::RunSpec::default(),
        shortfall: None,
        digest: None,
    })
}

/// The container addresses each host hands out, in its layout's order.
struct Addresses {
    hosts: usize,
    /// Ids sort as text (host-1000 before host-101): the layout index is by id.
    layout_of: HashMap<String, usize>,
    used: HashMap<String, usize>,
}

impl Addresses {
    fn new(hosts: usize) -> Addresses {
        let layout_of = (0..hosts).map(|i| (host_layout(i, hosts).id, i)).collect();
        Addresses { hosts, layout_of, used: HashMap::new() }
    }

    /// The next free container address on `host`.
    fn next_on(&mut self, host: &str) -> String {
        let layout_index = self.layout_of.get(host).copied().unwrap_or(0);
        let layout = host_layout(layout_index, self.hosts);
        let slot = self.used.entry(host.to_string()).or_default();
        let ip = layout.container_ips.get(*slot).cloned().unwrap_or_else(|| "10.0.0.1".into());
        *slot += 1;
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_builds_the_same_fleet() {
        let (a, ea) = fixture(42, 6, 0);
        let (b, eb) = fixture(42, 6, 0);
        assert_eq!(a, b);
        assert_eq!(ea, eb);
        assert_eq!(a.hosts.len(), 6);
        assert_eq!(a.instances.len(), 7);
        assert_eq!(a.routes.len(), 7);
        assert_eq!(a.revision, ea.len() as u64);
        let mut replayed = Fleet::default();
        for e in &ea {
            replayed.apply(e).unwrap();
        }
        assert_eq!(replayed, a);
    }

    #[test]
    fn scales_to_a_large_fleet() {
        let (f, _) = fixture(1, 100, 2000);
        assert_eq!(f.hosts.len(), 100);
        assert_eq!(f.instances.len(), 2007);
    }
}
