//! Per-container CPU and memory, read from the container's cgroup files as cAdvisor does:
//! the agent runs on the host, and reading a few small files costs dockerd nothing. Where
//! the files cannot be read (another cgroup layout, a rootless engine, a remote
//! DOCKER_HOST), one-shot stats are asked for, a few at a time. Never a stats stream.
//!
//! CPU % is worked out from the agent's own previous sample: 100 % is one core.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures_util::StreamExt;

use super::Inner;

/// One-shot stats calls in flight at once, for containers without readable cgroup files.
const STATS_CONCURRENCY: usize = 4;
/// cgroup v1 writes "no limit" as a page-rounded i64::MAX.
const UNLIMITED: u64 = 1 << 62;

/// Counters as read, before they become rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw {
    pub cpu_ns: u64,
    /// In use, less the inactive page cache (what `docker stats` shows).
    pub mem_bytes: u64,
    /// `None` when the container has no memory limit.
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu_pct: f32,
    pub mem_used_mb: u64,
    pub mem_limit_mb: Option<u64>,
}

#[derive(Debug, Clone)]
enum Dirs {
    V1 { cpu: PathBuf, memory: PathBuf },
    V2(PathBuf),
}

pub struct Sampler {
    root: PathBuf,
    dirs: HashMap<String, Dirs>,
    previous: HashMap<String, (u64, Instant)>,
    /// Samples taken from cgroup files and from one-shot stats, for diagnostics.
    pub from_cgroup: u64,
    pub from_stats: u64,
}

impl Sampler {
    pub fn new(root: PathBuf) -> Sampler {
        Sampler { root, dirs: HashMap::new(), previous: HashMap::new(), from_cgroup: 0, from_stats: 0 }
    }

    /// Where the container's cgroup is: cgroupfs or systemd driver, v1 or v2.
    fn resolve(&self, id: &str) -> Option<Dirs> {
        let r = &self.root;
        let v1_parents = [format!("docker/{id}"), format!("system.slice/docker-{id}.scope")];
        for parent in &v1_parents {
            let memory = r.join("memory").join(parent);
            let cpu = ["cpuacct", "cpu,cpuacct"].iter().map(|c| r.join(c).join(parent)).find(|p| p.is_dir());
            if let (Some(cpu), true) = (cpu, memory.is_dir()) {
                return Some(Dirs::V1 { cpu, memory });
            }
        }
        [format!("system.slice/docker-{id}.scope"), format!("docker/{id}")]
            .iter()
            .map(|p| r.join(p))
            .find(|p| p.join("cpu.stat").is_file())
            .map(Dirs::V2)
    }

    /// The container's counters from its cgroup files, if they can be read.
    pub fn read_cgroup(&mut self, id: &str) -> Option<Raw> {
        let dirs = match self.dirs.get(id) {
            Some(d) => d.clone(),
            None => {
                let d = self.resolve(id)?;
                self.dirs.insert(id.to_string(), d.clone());
                d
            }
        };
        let raw = match &dirs {
            Dirs::V1 { cpu, memory } => read_v1(cpu, memory),
            Dirs::V2(dir) => read_v2(dir),
        };
        if raw.is_none() {
            // The container may have stopped; resolve again next time.
            self.dirs.remove(id);
        }
        raw
    }

    /// Turns counters into a usage, against the previous sample of the same container.
    pub fn usage(&mut self, id: &str, raw: Raw, at: Instant) -> Usage {
        let cpu_pct = match self.previous.insert(id.to_string(), (raw.cpu_ns, at)) {
            Some((prev_ns, prev_at)) if at > prev_at && raw.cpu_ns >= prev_ns => {
                let wall = at.duration_since(prev_at).as_nanos() as f64;
                ((raw.cpu_ns - prev_ns) as f64 / wall * 100.0) as f32
            }
            _ => 0.0,
        };
        Usage {
            cpu_pct,
            mem_used_mb: raw.mem_bytes / (1024 * 1024),
            mem_limit_mb: raw.limit_bytes.map(|b| b / (1024 * 1024)),
        }
    }

    /// Drops what is kept for containers that are gone.
    pub fn retain(&mut self, live: &HashSet<String>) {
        self.dirs.retain(|id, _| live.contains(id));
        self.previous.retain(|id, _| live.contains(id));
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line of a cgroup stat file.
fn stat_value(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

fn read_v1(cpu: &Path, memory: &Path) -> Option<Raw> {
    let cpu_ns = read_u64(&cpu.join("cpuacct.usage"))?;
    let usage = read_u64(&memory.join("memory.usage_in_bytes"))?;
    let inactive = stat_value(&memory.join("memory.stat"), "total_inactive_file").unwrap_or(0);
    let limit = read_u64(&memory.join("memory.limit_in_bytes")).filter(|l| *l < UNLIMITED);
    Some(Raw { cpu_ns, mem_bytes: usage.saturating_sub(inactive), limit_bytes: limit })
}

fn read_v2(dir: &Path) -> Option<Raw> {
    let cpu_ns = stat_value(&dir.join("cpu.stat"), "usage_usec")?.saturating_mul(1000);
    let usage = read_u64(&dir.join("memory.current"))?;
    let inactive = stat_value(&dir.join("memory.stat"), "inactive_file").unwrap_or(0);
    // "max" does not parse: no limit.
    let limit = read_u64(&dir.join("memory.max"));
    Some(Raw { cpu_ns, mem_bytes: usage.saturating_sub(inactive), limit_bytes: limit })
}

/// Counters from a one-shot stats answer.
pub fn from_stats(stats: &ContainerStatsResponse) -> Option<Raw> {
    let cpu_ns = stats.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage?;
    let mem = stats.memory_stats.as_ref()?;
    let inactive = mem
        .stats
        .as_ref()
        .and_then(|s| s.get("total_inactive_file").or_else(|| s.get("inactive_file")).copied())
        .unwrap_or(0);
    Some(Raw {
        cpu_ns,
        mem_bytes: mem.usage.unwrap_or(0).saturating_sub(inactive),
        limit_bytes: mem.limit.filter(|l| *l < UNLIMITED),
    })
}

/// Samples every running container in `ids`: cgroup files first, one-shot stats for the
/// rest with bounded concurrency.
pub async fn sample_all(inner: &std::sync::Arc<Inner>, ids: Vec<String>) -> HashMap<String, Usage> {
    let now = Instant::now();
    let for_files = inner.clone();
    let read_ids = ids.clone();
    // Blocking reads of small files; a few hundred containers take well under a millisecond
    // each, but they still belong off the async workers.
    let (raws, missing) = tokio::task::spawn_blocking(move || {
        let mut sampler = for_files.metrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut raws = Vec::new();
        let mut missing = Vec::new();
        for id in read_ids {
            match sampler.read_cgroup(&id) {
                Some(raw) => raws.push((id, raw)),
                None => missing.push(id),
            }
        }
        (raws, missing)
    })
    .await
    .unwrap_or_default();
    let docker = inner.docker.clone();
    let fallback: Vec<(String, Raw)> = futures_util::stream::iter(missing)
        .map(|id| {
            let docker = docker.clone();
            async move {
                let opts = StatsOptions { stream: false, one_shot: true };
                let answer = docker.stats(&id, Some(opts)).next().await;
                answer.and_then(|r| r.ok()).as_ref().and_then(from_stats).map(|raw| (id, raw))
            }
        })
        .buffer_unordered(STATS_CONCURRENCY)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let mut sampler = inner.metrics.lock().unwrap_or_else(|p| p.into_inner());
    let live: HashSet<String> = ids.into_iter().collect();
    sampler.retain(&live);
    sampler.from_cgroup += raws.len() as u64;
    sampler.from_stats += fallback.len() as u64;
    raws.into_iter().chain(fallback).map(|(id, raw)| (id.clone(), sampler.usage(&id, raw, now))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cgroup_v1_and_v2_files_and_cpu_from_the_previous_sample() {
        let root = std::env::temp_dir().join(format!("qd-cgroup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |p: PathBuf, s: &str| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        write(root.join("cpuacct/docker/aaa/cpuacct.usage"), "1000000000\n");
        write(root.join("memory/docker/aaa/memory.usage_in_bytes"), &format!("{}\n", 80 << 20));
        write(
            root.join("memory/docker/aaa/memory.stat"),
            &format!("cache 1\ntotal_inactive_file {}\n", 16 << 20),
        );
        write(root.join("memory/docker/aaa/memory.limit_in_bytes"), &format!("{}\n", 128 << 20));
        write(root.join("system.slice/docker-bbb.scope/cpu.stat"), "usage_usec 5000\nuser_usec 1\n");
        write(root.join("system.slice/docker-bbb.scope/memory.current"), &format!("{}\n", 10 << 20));
        write(root.join("system.slice/docker-bbb.scope/memory.stat"), "inactive_file 0\n");
        write(root.join("system.slice/docker-bbb.scope/memory.max"), "max\n");

        let mut s = Sampler::new(root.clone());
        let a = s.read_cgroup("aaa").unwrap();
        assert_eq!(a, Raw { cpu_ns: 1_000_000_000, mem_bytes: 64 << 20, limit_bytes: Some(128 << 20) });
        let b = s.read_cgroup("bbb").unwrap();
        assert_eq!(b, Raw { cpu_ns: 5_000_000, mem_bytes: 10 << 20, limit_bytes: None });
        assert!(s.read_cgroup("ccc").is_none());

        let t0 = Instant::now();
        assert_eq!(s.usage("aaa", a, t0).cpu_pct, 0.0, "no previous sample yet");
        // Half a core over two seconds.
        let later = Raw { cpu_ns: a.cpu_ns + 1_000_000_000, ..a };
        let u = s.usage("aaa", later, t0 + Duration::from_secs(2));
        assert!((u.cpu_pct - 50.0).abs() < 0.01, "{u:?}");
        assert_eq!((u.mem_used_mb, u.mem_limit_mb), (64, Some(128)));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
