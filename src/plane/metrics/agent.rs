//! The agent's metrics, taken from each heartbeat it sends: its instances' CPU and memory
//! (an instance gone from the heartbeat loses its series), the host's figures, heartbeats
//! sent and bus reconnects.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::protocol::Heartbeat;

type Labels = [(&'static str, String); 2];
type Ratio = Gauge<f64, AtomicU64>;

pub struct AgentMetrics {
    registry: Registry,
    cpu: Family<Labels, Ratio>,
    memory: Family<Labels, Gauge>,
    host_cpu: Ratio,
    host_memory_used: Gauge,
    host_memory_total: Gauge,
    host_disk_used: Gauge,
    host_disk_total: Gauge,
    heartbeats: Counter,
    reconnects: Counter,
    /// The instances the last heartbeat had series for: what to remove once they are gone.
    shown: Mutex<BTreeSet<Labels>>,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentMetrics")
    }
}

impl super::Scrape for AgentMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        AgentMetrics::new()
    }
}

fn bytes(mb: u64) -> i64 {
    i64::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
}

impl AgentMetrics {
    pub fn new() -> Self {
        let mut registry = super::registry();
        let cpu = Family::<Labels, Ratio>::default();
        let memory = Family::<Labels, Gauge>::default();
        registry.register(
            "instance_cpu_ratio",
            "An instance's CPU use, in cores (1 is one core busy), by app and instance",
            cpu.clone(),
        );
        registry.register(
            "instance_memory_bytes",
            "An instance's memory use, by app and instance",
            memory.clone(),
        );
        let host_cpu = Ratio::default();
        registry.register(
            "host_cpu_ratio",
            "The host's CPU use, from 0 to 1 of all its cores",
            host_cpu.clone(),
        );
        let gauges: [Gauge; 4] = Default::default();
        let names = [
            ("host_memory_used_bytes", "The host's memory in use"),
            ("host_memory_total_bytes", "The host's memory"),
            ("host_disk_used_bytes", "The host's disk space in use"),
            ("host_disk_total_bytes", "The host's disk space"),
        ];
        for ((name, help), gauge) in names.into_iter().zip(&gauges) {
            registry.register(name, help, gauge.clone());
        }
        let heartbeats = Counter::default();
        registry.register("heartbeats_sent", "Heartbeats the agent published", heartbeats.clone());
        let reconnects = super::reconnects(&mut registry);
        let [host_memory_used, host_memory_total, host_disk_used, host_disk_total] = gauges;
        AgentMetrics {
            registry,
            cpu,
            memory,
            host_cpu,
            host_memory_used,
            host_memory_total,
            host_disk_used,
            host_disk_total,
            heartbeats,
            reconnects,
            shown: Mutex::new(BTreeSet::new()),
        }
    }

    /// The bus reconnect counter, for `count_reconnects`.
    pub fn reconnects(&self) -> Counter {
        self.reconnects.clone()
    }

    /// Takes the figures of a heartbeat about to be sent; the series of instances it no
    /// longer lists are removed.
    pub fn observe(&self, hb: &Heartbeat) {
        let mut now = BTreeSet::new();
        for i in &hb.instances {
            let labels: Labels = [("app", i.app.clone()), ("instance", i.id.clone())];
            // The agent reports percent of one core; the metric is in cores.
            self.cpu.get_or_create(&labels).set(f64::from(i.cpu_pct) / 100.0);
            self.memory.get_or_create(&labels).set(bytes(i.mem_used_mb));
            now.insert(labels);
        }
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        for gone in shown.difference(&now) {
            self.cpu.remove(gone);
            self.memory.remove(gone);
        }
        *shown = now;
        drop(shown);
        let m = &hb.metrics;
        self.host_cpu.set(f64::from(m.cpu_pct) / 100.0);
        self.host_memory_used.set(bytes(m.mem_used_mb));
        self.host_memory_total.set(bytes(m.mem_total_mb));
        self.host_disk_used.set(bytes(m.disk_used_mb));
        self.host_disk_total.set(bytes(m.disk_total_mb));
    }

    /// A heartbeat went out.
    pub fn sent(&self) {
        self.heartbeats.inc();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plane::metrics::testing::{parse, value};
    use crate::protocol::{HostMetrics, InstanceReport};

    fn heartbeat(instances: Vec<InstanceReport>) -> Heartbeat {
        let (fleet, _) = crate::plane::fixture::fixture(3, 1, 0);
        let host = fleet.hosts.values().next().expect("a host").info.clone();
        Heartbeat {
            host,
            metrics: HostMetrics {
                cpu_pct: 25.0,
                mem_used_mb: 512,
                mem_total_mb: 2048,
                disk_used_mb: 10,
                disk_total_mb: 100,
                ..HostMetrics::default()
            },
            instances,
            period_ms: 2000,
            unmanaged: vec![],
        }
    }

    fn report(app: &str, id: &str, cpu_pct: f32, mem_used_mb: u64) -> InstanceReport {
        let (fleet, _) = crate::plane::fixture::fixture(3, 1, 1);
        let any = fleet.instances.values().next().expect("an instance");
        InstanceReport { app: app.into(), id: id.into(), cpu_pct, mem_used_mb, ..InstanceReport::of(any) }
    }

    /// A registry with a series in each family, so that every name shows in its text.
    pub(crate) fn filled() -> AgentMetrics {
        let m = AgentMetrics::new();
        m.observe(&heartbeat(vec![report("shop", "shop-1", 1.0, 1)]));
        m
    }

    #[test]
    fn a_heartbeat_sets_each_instance_and_the_host_and_a_gone_instance_loses_its_series() {
        let m = AgentMetrics::new();
        m.observe(&heartbeat(vec![report("shop", "shop-1", 150.0, 64), report("shop", "shop-2", 0.0, 1)]));
        m.sent();
        let s = parse(&m.registry);
        let one = [("app", "shop"), ("instance", "shop-1")];
        assert_eq!(value(&s, "quarterdeck_instance_cpu_ratio", &one), Some(1.5));
        assert_eq!(value(&s, "quarterdeck_instance_memory_bytes", &one), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(value(&s, "quarterdeck_host_cpu_ratio", &[]), Some(0.25));
        assert_eq!(value(&s, "quarterdeck_host_memory_total_bytes", &[]), Some(2048.0 * 1024.0 * 1024.0));
        assert_eq!(value(&s, "quarterdeck_host_disk_used_bytes", &[]), Some(10.0 * 1024.0 * 1024.0));
        assert_eq!(value(&s, "quarterdeck_heartbeats_sent_total", &[]), Some(1.0));

        m.observe(&heartbeat(vec![report("shop", "shop-2", 0.0, 2)]));
        let s = parse(&m.registry);
        assert_eq!(value(&s, "quarterdeck_instance_cpu_ratio", &one), None, "shop-1 is gone");
        assert_eq!(value(&s, "quarterdeck_instance_memory_bytes", &one), None);
        let two = [("app", "shop"), ("instance", "shop-2")];
        assert_eq!(value(&s, "quarterdeck_instance_memory_bytes", &two), Some(2.0 * 1024.0 * 1024.0));
    }
}
