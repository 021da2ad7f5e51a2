//! What the driver knows about its instances. The agent reads it every 250 ms, so it is a
//! plain map behind a mutex; the refresh task, the event task and the operations write it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Instant;

use crate::protocol::{ContainerReport, HealthCheck, InstanceReport, InstanceState};

/// Who is in charge of an entry's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A deploy, restart or remove owns it: events and the refresh leave its state alone,
    /// since a restart's own die/start events are not a crash.
    Busy,
    /// It has a container; Docker's events and the refresh keep its state.
    Idle,
    /// A deploy failed before a container was left running, or the container vanished. The
    /// entry stays so the controller sees the failure, until it removes the instance or
    /// deploys it again.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub report: InstanceReport,
    /// The full container id, when there is a container.
    pub container: Option<String>,
    pub phase: Phase,
    /// Changes whenever an operation claims the entry; an operation that finds another
    /// generation (or none) was overtaken, by a remove for instance, and stops.
    pub generation: u64,
    /// When the entry last left `Busy`; a container list older than that says nothing
    /// about it.
    pub settled: Instant,
    pub image: String,
    pub container_port: u16,
    /// Where the artifact is mounted; empty without one.
    pub mount: String,
    /// The deployed artifact's sha256; empty without one.
    pub artifact: String,
    /// The command override, when known (not for adopted containers).
    pub cmd: Option<Vec<String>>,
    /// How the instance is checked after a start (from the spec, or its label).
    pub health: HealthCheck,
    pub vlan_ip: Option<Ipv4Addr>,
    /// When the kernel's OOM killer last struck in the container (ms): the die that
    /// follows it is an OOM kill. A process of the container other than its main one may
    /// be killed without the container ending, so this alone is no crash.
    pub oom_at: Option<u64>,
}

impl Entry {
    pub fn set_state(&mut self, state: InstanceState) {
        self.report.state = state;
        if !matches!(state, InstanceState::Running | InstanceState::Unhealthy) {
            self.report.cpu_pct = 0.0;
        }
    }
}

#[derive(Debug, Default)]
pub struct Cache {
    pub entries: BTreeMap<String, Entry>,
    pub unmanaged: Vec<ContainerReport>,
    generation: u64,
}

impl Cache {
    pub fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    pub fn reports(&self) -> Vec<InstanceReport> {
        self.entries.values().map(|e| e.report.clone()).collect()
    }

    /// Whether the instance runs here or is being deployed; a failed one is not, so a new
    /// deploy may replace it and a restart of it is "not found".
    pub fn has(&self, id: &str) -> bool {
        self.entries.get(id).is_some_and(|e| e.phase != Phase::Failed)
    }

    /// The entry `generation` still owns, if nothing overtook it.
    pub fn owned(&mut self, id: &str, generation: u64) -> Option<&mut Entry> {
        self.entries.get_mut(id).filter(|e| e.generation == generation)
    }

    pub fn by_container(&mut self, container: &str) -> Option<&mut Entry> {
        self.entries.values_mut().find(|e| e.container.as_deref() == Some(container))
    }

    /// Every VLAN address in use or promised to a deploy that has not attached yet.
    pub fn ips_in_use(&self) -> BTreeSet<Ipv4Addr> {
        self.entries.values().filter_map(|e| e.vlan_ip).collect()
    }
}

/// Docker's short id, as `docker ps` shows it.
pub fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}
