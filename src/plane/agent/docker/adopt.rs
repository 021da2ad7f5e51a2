//! The periodic reconcile with Docker: one container list (never `size=true`), metrics for
//! the running ones, then the cache is brought in line. At start it is also the adoption:
//! every container labelled for this host becomes an instance again, without a new
//! container and without touching anything that is not ours.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::ListContainersOptions;
use futures_util::StreamExt;

use super::cache::{Entry, Phase, short_id};
use super::inspect::{self, Inspected};
use super::labels::{self, Labelled};
use super::metrics::Usage;
use super::{Inner, NetworkMode, artifact, connect, metrics, network};
use crate::protocol::{ContainerReport, ExitInfo, InstanceReport, InstanceState};

/// Inspect calls in flight at once while adopting.
const ADOPT_CONCURRENCY: usize = 4;

pub async fn refresh_loop(inner: Arc<Inner>) {
    let mut last_error = String::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(inner.config.refresh_period) => {}
            _ = inner.refresh_now.notified() => {}
        }
        match refresh(&inner).await {
            Ok(()) => last_error.clear(),
            Err(e) => {
                // Once per distinct error: an engine that is down would fill the log.
                if e != last_error {
                    log::warn!("cannot reconcile with Docker: {e}");
                    last_error = e;
                }
            }
        }
    }
}

/// What Docker's list says about one container's state, given what we last knew.
fn observed(current: InstanceState, state: Option<ContainerSummaryStateEnum>, status: &str) -> InstanceState {
    use ContainerSummaryStateEnum as S;
    match state {
        Some(S::RUNNING) if status.contains("(unhealthy)") => InstanceState::Unhealthy,
        // Unhealthy from our own probe stays until a restart proves otherwise.
        Some(S::RUNNING) if current == InstanceState::Unhealthy => current,
        Some(S::RUNNING) => InstanceState::Running,
        Some(S::RESTARTING) => InstanceState::Starting,
        Some(S::PAUSED) => InstanceState::Stopped,
        Some(S::EXITED | S::DEAD | S::CREATED) if current == InstanceState::Stopped => current,
        Some(S::EXITED | S::DEAD | S::CREATED) => InstanceState::Crashed,
        _ => current,
    }
}

fn vlan_name(inner: &Inner) -> Option<String> {
    match inner.config.network {
        NetworkMode::Vlan(_) => Some(network::network_name(&inner.config.host_id)),
        NetworkMode::Published => None,
    }
}

fn apply_usage(report: &mut InstanceReport, usage: Option<&Usage>, host_mb: u64) {
    match usage {
        Some(u) => {
            report.cpu_pct = u.cpu_pct;
            report.mem_used_mb = u.mem_used_mb;
            report.mem_limit_mb = u.mem_limit_mb.unwrap_or(host_mb);
        }
        None => report.cpu_pct = 0.0,
    }
}

/// An instance rebuilt from its container.
fn adopted(inner: &Inner, l: &Labelled, i: &Inspected, generation: u64, listed_at: Instant) -> Entry {
    let dir = artifact::instance_dir(&inner.config.data_dir, &l.instance);
    // A redeploy in place swaps `current` but cannot relabel the container.
    let version =
        artifact::active_version(&dir).filter(|_| !l.mount.is_empty()).unwrap_or_else(|| l.version.clone());
    let (ip, port) = match (&inner.config.network, i.vlan_ip, inner.config.advertise_ip, i.host_port) {
        (NetworkMode::Vlan(_), Some(ip), _, _) => (ip.to_string(), l.port),
        (_, _, Some(ip), Some(p)) => (ip.to_string(), p),
        _ => (String::new(), l.port),
    };
    let state = if i.running { InstanceState::Running } else { InstanceState::Crashed };
    Entry {
        report: InstanceReport {
            id: l.instance.clone(),
            app: l.app.clone(),
            version,
            index: l.index,
            state,
            ip,
            port,
            container_id: short_id(&i.id),
            started_at: i.started_at,
            cpu_pct: 0.0,
            mem_used_mb: 0,
            mem_limit_mb: 0,
            last_exit: i.exit(),
        },
        container: Some(i.id.clone()),
        phase: Phase::Idle,
        generation,
        settled: listed_at,
        image: i.image.clone(),
        container_port: l.port,
        mount: l.mount.clone(),
        artifact: if version_is_label(&l.version, &dir, &l.mount) {
            l.artifact.clone()
        } else {
            String::new()
        },
        cmd: i.cmd.clone(),
        health: l.health.clone(),
        vlan_ip: i.vlan_ip,
        oom_at: None,
    }
}

fn version_is_label(label: &str, dir: &std::path::Path, mount: &str) -> bool {
    mount.is_empty() || artifact::active_version(dir).is_none_or(|v| v == label)
}

/// When each crashed instance that the list shows running again started, by container:
/// `None` when inspect says it does not run. Docker's list can trail its own events (right
/// after a die it may still say `Up`), so a crash is undone only by a start after it.
async fn revived(
    inner: &Inner,
    ours: &[(Labelled, ContainerSummary)],
    vlan: Option<&str>,
) -> HashMap<String, Option<u64>> {
    let candidates: Vec<(String, u16)> = {
        let cache = inner.cache();
        ours.iter()
            .filter(|(_, c)| c.state == Some(ContainerSummaryStateEnum::RUNNING))
            .filter(|(l, _)| {
                cache.entries.get(&l.instance).is_some_and(|e| e.report.state == InstanceState::Crashed)
            })
            .filter_map(|(l, c)| Some((c.id.clone()?, l.port)))
            .collect()
    };
    let mut found = HashMap::new();
    for (id, port) in candidates {
        let started = match inspect::inspect(&inner.docker, &id, port, vlan).await {
            Ok(i) if i.running => i.started_at,
            _ => None,
        };
        found.insert(id, started);
    }
    found
}

/// One pass over what the daemon lists: new instances adopted, known ones brought in line
/// with their container, those whose container is gone marked crashed, and the containers
/// no agent manages reported.
pub async fn refresh(inner: &Arc<Inner>) -> Result<(), String> {
    let listed_at = Instant::now();
    let opts = ListContainersOptions { all: true, size: false, ..Default::default() };
    let containers = inner.docker.list_containers(Some(opts)).await.map_err(|e| connect::message(&e))?;
    let host = inner.config.host_id.clone();
    let (ours, others): (Vec<_>, Vec<_>) = containers
        .into_iter()
        .map(|c| (c.labels.as_ref().and_then(|l| labels::parse(l, &host)), c))
        .partition(|(l, _)| l.is_some());
    let ours: Vec<(Labelled, ContainerSummary)> =
        ours.into_iter().filter_map(|(l, c)| Some((l?, c))).collect();
    let others: Vec<ContainerSummary> = others.into_iter().map(|(_, c)| c).collect();

    let vlan = vlan_name(inner);
    let inspected = inspect_new(inner, &ours, vlan.as_deref(), listed_at).await;
    let running: Vec<String> = ours
        .iter()
        .map(|(_, c)| c)
        .chain(others.iter())
        .filter(|c| c.state == Some(ContainerSummaryStateEnum::RUNNING))
        .filter_map(|c| c.id.clone())
        .collect();
    let revived = revived(inner, &ours, vlan.as_deref()).await;
    let usage = metrics::sample_all(inner, running).await;
    let host_mb = inner.engine.memory_mb;

    let mut cache = inner.cache();
    for (l, i) in inspected {
        if cache.entries.get(&l.instance).is_some_and(|e| e.phase != Phase::Failed) {
            continue;
        }
        let generation = cache.next_generation();
        let entry = adopted(inner, &l, &i, generation, listed_at);
        log::info!(
            "adopted {} ({}@{}) in container {}: {}",
            l.instance,
            l.app,
            entry.report.version,
            short_id(&i.id),
            entry.report.state.as_str()
        );
        cache.entries.insert(l.instance.clone(), entry);
    }
    let listed = Listed { at: listed_at, usage: &usage, revived: &revived, host_mb };
    let mut present: HashSet<String> = HashSet::new();
    for (l, c) in &ours {
        let Some(id) = c.id.clone() else { continue };
        present.insert(id.clone());
        if let Some(e) = cache.entries.get_mut(&l.instance) {
            follow_container(e, l, c, &id, &listed);
        }
    }
    for e in cache.entries.values_mut() {
        let vanished = e.container.as_ref().is_some_and(|c| !present.contains(c));
        if vanished && e.phase == Phase::Idle && e.settled < listed_at {
            log::warn!("{}: its container is gone", e.report.id);
            e.set_state(InstanceState::Crashed);
            e.container = None;
            e.report.container_id.clear();
            e.vlan_ip = None;
            e.phase = Phase::Failed;
            e.settled = Instant::now();
        }
    }
    cache.unmanaged = others.iter().map(|c| unmanaged(c, &usage, host_mb)).collect();
    Ok(())
}

/// New instances (after an agent restart, or started by hand with our labels), inspected
/// once each for their start time, ports and address.
async fn inspect_new(
    inner: &Arc<Inner>,
    ours: &[(Labelled, ContainerSummary)],
    vlan: Option<&str>,
    listed_at: Instant,
) -> Vec<(Labelled, Inspected)> {
    let to_adopt: Vec<(Labelled, String)> = {
        let cache = inner.cache();
        let mut seen = HashSet::new();
        ours.iter()
            .filter(|(l, _)| seen.insert(l.instance.clone()))
            .filter(|(l, _)| {
                cache
                    .entries
                    .get(&l.instance)
                    .is_none_or(|e| e.phase == Phase::Failed && e.settled < listed_at)
            })
            .filter_map(|(l, c)| Some((l.clone(), c.id.clone()?)))
            .collect()
    };
    futures_util::stream::iter(to_adopt)
        .map(|(l, id)| {
            let (docker, vlan) = (inner.docker.clone(), vlan.map(str::to_string));
            async move {
                let port = l.port;
                inspect::inspect(&docker, &id, port, vlan.as_deref()).await.ok().map(|i| (l, i))
            }
        })
        .buffer_unordered(ADOPT_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

/// What one listing says beside the containers themselves.
struct Listed<'a> {
    at: Instant,
    usage: &'a HashMap<String, Usage>,
    revived: &'a HashMap<String, Option<u64>>,
    host_mb: u64,
}

/// Brings a known instance in line with its listed container `id`: its usage, and its
/// state when the list is newer than the last event or operation on it.
fn follow_container(e: &mut Entry, l: &Labelled, c: &ContainerSummary, id: &str, listed: &Listed<'_>) {
    if e.container.as_deref() != Some(id) {
        if e.phase != Phase::Busy {
            log::warn!("{}: container {} also claims this instance; left alone", l.instance, short_id(id));
        }
        return;
    }
    apply_usage(&mut e.report, listed.usage.get(id), listed.host_mb);
    // A list older than the last event or operation on the entry says nothing new.
    if e.phase != Phase::Idle || e.settled >= listed.at {
        return;
    }
    let mut next = observed(e.report.state, c.state, c.status.as_deref().unwrap_or(""));
    if e.report.state == InstanceState::Crashed && next != InstanceState::Crashed {
        match listed.revived.get(id).copied().flatten() {
            Some(started) if e.report.last_exit.is_none_or(|x| started >= x.at) => {
                e.report.started_at = Some(started);
            }
            // The list trails the die event that made it crashed.
            _ => next = InstanceState::Crashed,
        }
    }
    if next == e.report.state {
        return;
    }
    log::info!("{}: {} -> {} (docker: {:?})", l.instance, e.report.state.as_str(), next.as_str(), c.status);
    e.set_state(next);
    // The die event was missed (the stream was down): the list's status still says how
    // it ended.
    let ended_now = e.report.last_exit.is_none_or(|x| e.report.started_at.is_some_and(|s| x.at < s));
    if next == InstanceState::Crashed
        && ended_now
        && let Some(code) = c.status.as_deref().and_then(inspect::exit_code_of_status)
    {
        let oom = super::events::oom_this_life(e);
        e.report.last_exit = Some(ExitInfo::new(code, oom, crate::protocol::clock::now_ms()));
    }
}

/// A container no agent manages, as the heartbeat reports it.
fn unmanaged(c: &ContainerSummary, usage: &HashMap<String, Usage>, host_mb: u64) -> ContainerReport {
    let id = c.id.clone().unwrap_or_default();
    let u = usage.get(&id);
    ContainerReport {
        container_id: short_id(&id),
        name: c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: c.image.clone().unwrap_or_default(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        cpu_pct: u.map(|u| u.cpu_pct).unwrap_or(0.0),
        mem_used_mb: u.map(|u| u.mem_used_mb).unwrap_or(0),
        mem_limit_mb: u.map(|u| u.mem_limit_mb.unwrap_or(host_mb)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_states_map_to_instance_states() {
        use ContainerSummaryStateEnum as S;
        use InstanceState as I;
        assert_eq!(observed(I::Crashed, Some(S::RUNNING), "Up 2 seconds"), I::Running);
        assert_eq!(observed(I::Running, Some(S::RUNNING), "Up 1 minute (unhealthy)"), I::Unhealthy);
        assert_eq!(observed(I::Unhealthy, Some(S::RUNNING), "Up 1 minute"), I::Unhealthy);
        assert_eq!(observed(I::Running, Some(S::EXITED), "Exited (137)"), I::Crashed);
        assert_eq!(observed(I::Running, Some(S::CREATED), "Created"), I::Crashed);
        assert_eq!(observed(I::Running, None, ""), I::Running);
    }
}
