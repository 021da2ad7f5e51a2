//! A deterministic fleet built without running anything: the sandbox's hosts and apps,
//! placed by the real scheduler, with metrics from the seeded generator. For view
//! snapshots, headless tests and benchmarks, where timing must not matter.

use super::controller::scheduler::{PlacementRequest, place};
use super::rng::Rng;
use super::sandbox::{host_layout, seed_apps};
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
    let mut rng = Rng::new(seed);
    let mut fleet = Fleet::default();
    let mut events = Vec::new();
    let mut commit = |fleet: &mut Fleet, kind: EventKind, app: Option<&str>, msg: String, change: Change| {
        let ev = Event {
            rev: fleet.revision + 1,
            ts: T0 + fleet.revision * 250,
            kind,
            app: app.map(str::to_string),
            host: None,
            instance: None,
            operation_id: None,
            message: msg,
            changes: vec![change],
            audit: None,
        };
        let _ = fleet.apply(&ev);
        events.push(ev);
    };

    for i in 0..hosts {
        let l = host_layout(i, hosts);
        let cpu = rng.range(5.0, 70.0) as f32;
        let mem_used = (l.memory_mb as f64 * rng.range(0.2, 0.8)) as u64;
        let host = Host {
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
        };
        let msg = format!("{} joined: {} in {}", l.id, l.ip, l.az);
        commit(&mut fleet, EventKind::HostJoined, None, msg, Change::Host(host));
    }

    let mut apps: Vec<AppSpec> = seed_apps()
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
        .collect();
    if extra_instances > 0 {
        let per_app = 20usize;
        for n in 0..extra_instances.div_ceil(per_app) {
            let count = per_app.min(extra_instances - n * per_app) as u32;
            apps.push(AppSpec {
                name: format!("svc-{n:04}"),
                version: format!("1.{}.{}", n % 7, n % 13),
                instances: count,
                image: format!("registry.local/svc-{n:04}:1"),
                port: 8000 + (n % 1000) as u16,
                constraints: crate::protocol::Constraints {
                    azs: vec![],
                    tags: vec![],
                    cpu: 0.05,
                    memory_mb: 64,
                },
                domain: format!("svc-{n:04}.local"),
                tags: vec![],
                run: crate::protocol::RunSpec::default(),
                shortfall: None,
                digest: None,
            });
        }
    }

    let layout_of: std::collections::HashMap<String, usize> =
        (0..hosts).map(|i| (host_layout(i, hosts).id, i)).collect();
    let mut next_ip: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for app in apps {
        let name = app.name.clone();
        commit(
            &mut fleet,
            EventKind::AppUpdated,
            Some(&name),
            format!("desired {}@{} x{}", name, app.version, app.instances),
            Change::App(app.clone()),
        );
        let req = PlacementRequest {
            app: &app.name,
            count: app.instances,
            constraints: &app.constraints,
            exclude: &[],
        };
        let Ok(placed) = place(&fleet, &req) else { continue };
        for (index, host) in placed.into_iter().enumerate() {
            // Ids sort as text (host-1000 before host-101): the layout index is by id.
            let layout_index = layout_of.get(&host).copied().unwrap_or(0);
            let layout = host_layout(layout_index, hosts);
            let slot = next_ip.entry(host.clone()).or_default();
            let ip = layout.container_ips.get(*slot).cloned().unwrap_or_else(|| "10.0.0.1".into());
            *slot += 1;
            let id = format!("{}-{index}-{:04x}", app.name, rng.next_u64() & 0xffff);
            let endpoint = format!("{ip}:{}", app.port);
            let started = T0 - rng.between(60_000, 86_400_000);
            let instance = Instance {
                id: id.clone(),
                app: app.name.clone(),
                version: app.version.clone(),
                index: index as u32,
                host: host.clone(),
                ip: ip.clone(),
                port: app.port,
                endpoint: endpoint.clone(),
                container_id: format!("{:012x}", rng.next_u64() >> 16),
                state: InstanceState::Running,
                started_at: Some(started),
                restarts: if rng.chance(0.2) { rng.between(1, 4) as u32 } else { 0 },
                cpu_pct: rng.range(1.0, 80.0) as f32 * app.constraints.cpu,
                mem_used_mb: (app.constraints.memory_mb as f64 * rng.range(0.25, 0.9)) as u64,
                mem_limit_mb: app.constraints.memory_mb,
                cpu_limit: app.constraints.cpu,
                last_exit: None,
            };
            let msg = format!("{id}: {endpoint} on {host}");
            commit(&mut fleet, EventKind::InstanceDeployed, Some(&name), msg, Change::Instance(instance));
            let route = Route {
                app: app.name.clone(),
                domain: app.domain.clone(),
                backend: endpoint.clone(),
                state: RouteState::Enabled,
                weight: 1,
                stale: false,
            };
            commit(
                &mut fleet,
                EventKind::RouteAdded,
                Some(&name),
                format!("{} -> {endpoint}", app.domain),
                Change::Route(route),
            );
        }
    }
    (fleet, events)
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
