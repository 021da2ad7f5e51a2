//! Placement: which hosts get the new instances of an app. Pure, so every rule is tested
//! without a bus. The controller places with it, and the cockpit's deploy wizard previews
//! the same placement on its replica of the fleet.
//!
//! Rules, in order: the host is up; it is open (not cordoned or draining); it is in an allowed AZ; it carries every required tag;
//! it has the CPU and memory the instance reserves. Among the hosts that fit, the app is
//! spread: first across AZs, then across hosts, then onto the host with most free memory.
//! The order a deploy places and retires in is `deploy_plan`'s.

use std::collections::HashMap;

use crate::protocol::{Constraints, Fleet, Host, HostState, Instance};

#[derive(Debug, Clone)]
pub struct PlacementRequest<'a> {
    pub app: &'a str,
    pub count: u32,
    pub constraints: &'a Constraints,
    /// Hosts not to use, e.g. the lost host whose instances are being placed again.
    pub exclude: &'a [String],
}

/// Why nothing (more) fits. The message names the constraint that ruled the hosts out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoFit {
    #[error("no host is up")]
    NoHostUp,
    #[error(
        "every up host that fits the constraints is cordoned or draining (`ctl host uncordon HOST` opens one)"
    )]
    NoHostOpen,
    #[error("no up host is in AZ {0}")]
    NoHostInAz(String),
    #[error("no up host in the allowed AZs carries tags {0}")]
    NoHostWithTags(String),
    #[error(
        "not enough CPU: each instance needs {need:.2} cores, the most free on an eligible host is {best:.2}"
    )]
    NotEnoughCpu { need: f32, best: f32 },
    #[error(
        "not enough memory: each instance needs {need} MB, the most free on an eligible host is {best} MB"
    )]
    NotEnoughMemory { need: u64, best: u64 },
}

/// The placement failed after placing `placed` of `wanted`; nothing is placed at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot place {wanted} instance(s) of {app} (only {placed} fit): {reason}")]
pub struct PlacementError {
    pub app: String,
    pub wanted: u32,
    pub placed: u32,
    pub reason: NoFit,
}

#[derive(Debug, Clone, Copy)]
struct Free {
    cpu: f32,
    memory_mb: u64,
}

/// What the instances that occupy hosts take, per host, and how many of each app run on
/// each host. `place` works it out from the fleet (a pass over every instance); the
/// controller keeps one up to date change by change (`add`, `remove`), so placing one
/// instance among 20,000 is not a pass over all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Per host: CPU cores and MB of memory taken.
    taken: HashMap<String, (f64, u64)>,
    /// Per app, per host: instances.
    apps: HashMap<String, HashMap<String, u32>>,
}

impl Usage {
    pub fn of(fleet: &Fleet) -> Usage {
        let mut usage = Usage::default();
        for inst in fleet.instances.values() {
            usage.add(inst);
        }
        usage
    }

    /// Counts `inst` in, if it occupies its host.
    pub fn add(&mut self, inst: &Instance) {
        if !inst.state.occupies_host() {
            return;
        }
        let t = self.taken.entry(inst.host.clone()).or_default();
        t.0 += f64::from(inst.cpu_limit);
        t.1 += inst.mem_limit_mb;
        *self.apps.entry(inst.app.clone()).or_default().entry(inst.host.clone()).or_default() += 1;
    }

    /// CPU cores and MB of memory the counted instances take on `host`.
    pub fn taken(&self, host: &str) -> (f64, u64) {
        self.taken.get(host).copied().unwrap_or_default()
    }

    /// Counts `inst` out, as `add` counted it in.
    pub fn remove(&mut self, inst: &Instance) {
        if !inst.state.occupies_host() {
            return;
        }
        if let Some(t) = self.taken.get_mut(&inst.host) {
            t.0 = (t.0 - f64::from(inst.cpu_limit)).max(0.0);
            t.1 = t.1.saturating_sub(inst.mem_limit_mb);
            // Every instance takes memory (at least 4 MB): none left, nothing taken.
            if t.1 == 0 {
                self.taken.remove(&inst.host);
            }
        }
        if let Some(hosts) = self.apps.get_mut(&inst.app) {
            if let Some(n) = hosts.get_mut(&inst.host) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    hosts.remove(&inst.host);
                }
            }
            if hosts.is_empty() {
                self.apps.remove(&inst.app);
            }
        }
    }
}

/// Chooses a host for each of `count` new instances, or explains why they don't all fit.
pub fn place(fleet: &Fleet, req: &PlacementRequest<'_>) -> Result<Vec<String>, PlacementError> {
    place_with(fleet, req, &Usage::of(fleet))
}

/// `place`, with the fleet's usage already known.
pub fn place_with(
    fleet: &Fleet,
    req: &PlacementRequest<'_>,
    usage: &Usage,
) -> Result<Vec<String>, PlacementError> {
    let c = req.constraints;
    let mine = usage.apps.get(req.app);
    // Each eligible host with what placement weighs, worked out once: with thousands of
    // hosts, the comparisons must not look anything up.
    let mut azs: Vec<&str> = Vec::new();
    let mut candidates: Vec<Candidate<'_>> = fleet
        .hosts
        .values()
        .filter(|h| usable(h, req) && h.schedule.accepts_placements())
        .filter(|h| c.azs.is_empty() || c.azs.contains(&h.info.az))
        .filter(|h| c.tags.iter().all(|t| h.info.tags.contains(t)))
        .map(|h| {
            let (cpu, memory_mb) = usage.taken.get(&h.info.id).copied().unwrap_or_default();
            let az = azs.iter().position(|a| *a == h.info.az).unwrap_or_else(|| {
                azs.push(h.info.az.as_str());
                azs.len() - 1
            });
            Candidate {
                host: h,
                az,
                free: Free {
                    cpu: (f64::from(h.info.cpu_cores) - cpu) as f32,
                    memory_mb: h.info.memory_total_mb.saturating_sub(memory_mb),
                },
                mine: mine.and_then(|m| m.get(&h.info.id)).copied().unwrap_or(0),
            }
        })
        .collect();
    // The app's instances per AZ, counted over every host it runs on (eligible or not).
    let mut per_az = vec![0u32; azs.len()];
    for (host, n) in mine.into_iter().flatten() {
        if let Some(i) = fleet.hosts.get(host).and_then(|h| azs.iter().position(|a| *a == h.info.az)) {
            per_az[i] += n;
        }
    }

    let mut chosen = Vec::with_capacity(req.count as usize);
    for placed in 0..req.count {
        let best = candidates
            .iter_mut()
            .filter(|k| k.free.cpu + 1e-6 >= c.cpu && k.free.memory_mb >= c.memory_mb)
            .min_by(|a, b| {
                let key = |k: &Candidate<'_>| (per_az[k.az], k.mine, std::cmp::Reverse(k.free.memory_mb));
                key(a).cmp(&key(b)).then_with(|| a.host.info.id.cmp(&b.host.info.id))
            });
        let Some(best) = best else {
            return Err(PlacementError {
                app: req.app.to_string(),
                wanted: req.count,
                placed,
                reason: explain(fleet, req, &candidates),
            });
        };
        best.free.cpu -= c.cpu;
        best.free.memory_mb = best.free.memory_mb.saturating_sub(c.memory_mb);
        best.mine += 1;
        per_az[best.az] += 1;
        chosen.push(best.host.info.id.clone());
    }
    Ok(chosen)
}

/// An eligible host as placement weighs it: its AZ (an index), what it has free, and how
/// many of the app's instances it runs.
struct Candidate<'a> {
    host: &'a Host,
    az: usize,
    free: Free,
    mine: u32,
}

/// Up, and not a host the request leaves out.
fn usable(h: &Host, req: &PlacementRequest<'_>) -> bool {
    h.state == HostState::Up && !req.exclude.contains(&h.info.id)
}

/// Names the first rule that left no host standing.
fn explain(fleet: &Fleet, req: &PlacementRequest<'_>, eligible: &[Candidate<'_>]) -> NoFit {
    let c = req.constraints;
    let up: Vec<&Host> = fleet.hosts.values().filter(|h| usable(h, req)).collect();
    if up.is_empty() {
        return NoFit::NoHostUp;
    }
    if !c.azs.is_empty() && !up.iter().any(|h| c.azs.contains(&h.info.az)) {
        return NoFit::NoHostInAz(c.azs.join(","));
    }
    // The constraints' hosts, cordoned or not: a cordon is named only when it is what
    // leaves none.
    let matching = up
        .iter()
        .filter(|h| c.azs.is_empty() || c.azs.contains(&h.info.az))
        .filter(|h| c.tags.iter().all(|t| h.info.tags.contains(t)));
    if matching.clone().next().is_none() {
        return NoFit::NoHostWithTags(c.tags.join(","));
    }
    if eligible.is_empty() {
        return NoFit::NoHostOpen;
    }
    let best_cpu = eligible.iter().map(|k| k.free.cpu).fold(f32::MIN, f32::max);
    if best_cpu + 1e-6 < c.cpu {
        return NoFit::NotEnoughCpu { need: c.cpu, best: best_cpu.max(0.0) };
    }
    let best_mem =
        eligible.iter().filter(|k| k.free.cpu + 1e-6 >= c.cpu).map(|k| k.free.memory_mb).max().unwrap_or(0);
    NoFit::NotEnoughMemory { need: c.memory_mb, best: best_mem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Instance, InstanceState};

    fn host(id: &str, az: &str, tags: &[&str], cores: u32, mem: u64) -> Host {
        let mut h = Host::for_test(id, az, cores, mem);
        h.info.tags = tags.iter().map(|t| t.to_string()).collect();
        h
    }

    fn fleet(hosts: Vec<Host>) -> Fleet {
        let mut f = Fleet::default();
        for h in hosts {
            f.hosts.insert(h.info.id.clone(), h);
        }
        f
    }

    fn instance(id: &str, app: &str, host: &str, state: InstanceState, cpu: f32, mem: u64) -> Instance {
        Instance {
            id: id.into(),
            app: app.into(),
            version: "1".into(),
            index: 0,
            host: host.into(),
            ip: String::new(),
            port: 80,
            endpoint: String::new(),
            container_id: String::new(),
            state,
            started_at: None,
            restarts: 0,
            cpu_pct: 0.0,
            mem_used_mb: 0,
            mem_limit_mb: mem,
            cpu_limit: cpu,
            last_exit: None,
        }
    }

    fn add_instance(f: &mut Fleet, app: &str, host: &str, cpu: f32, mem: u64) {
        let id = format!("{app}-{}", f.instances.len());
        f.instances.insert(id.clone(), instance(&id, app, host, InstanceState::Running, cpu, mem));
    }

    #[test]
    fn usage_kept_change_by_change_equals_usage_worked_out_from_the_fleet() {
        let mut fleet = Fleet::default();
        let mut usage = Usage::default();
        let steps = [
            ("a-0", "a", "h1", InstanceState::New),
            ("a-1", "a", "h2", InstanceState::Running),
            ("a-0", "a", "h1", InstanceState::Running),
            ("b-0", "b", "h1", InstanceState::Starting),
            ("a-1", "a", "h2", InstanceState::Stopped),
            ("b-0", "b", "h1", InstanceState::Crashed),
        ];
        for (id, app, host, state) in steps {
            let next = instance(id, app, host, state, 0.5, 256);
            if let Some(before) = fleet.instances.get(&next.id) {
                usage.remove(before);
            }
            usage.add(&next);
            fleet.instances.insert(next.id.clone(), next);
            assert_eq!(usage, Usage::of(&fleet));
        }
        let gone = fleet.instances.remove("a-0").unwrap();
        usage.remove(&gone);
        assert_eq!(usage, Usage::of(&fleet));
    }

    fn need(cpu: f32, mem: u64) -> Constraints {
        Constraints { azs: vec![], tags: vec![], cpu, memory_mb: mem }
    }

    fn req<'a>(count: u32, c: &'a Constraints) -> PlacementRequest<'a> {
        PlacementRequest { app: "web", count, constraints: c, exclude: &[] }
    }

    #[test]
    fn spreads_across_azs_before_hosts() {
        let f = fleet(vec![
            host("a1", "az1", &[], 4, 8192),
            host("a2", "az1", &[], 4, 8192),
            host("b1", "az2", &[], 4, 8192),
        ]);
        let c = need(0.5, 512);
        let placed = place(&f, &req(2, &c)).unwrap();
        let azs: Vec<&str> = placed.iter().map(|h| f.hosts[h].info.az.as_str()).collect();
        assert!(azs.contains(&"az1") && azs.contains(&"az2"), "{placed:?}");
        // A third and fourth go to the az1 host that has none yet, then az2.
        let placed = place(&f, &req(4, &c)).unwrap();
        let mut sorted = placed.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["a1", "a2", "b1", "b1"]);
    }

    #[test]
    fn counts_existing_instances_when_spreading() {
        let mut f = fleet(vec![host("a1", "az1", &[], 4, 8192), host("b1", "az2", &[], 4, 8192)]);
        add_instance(&mut f, "web", "a1", 0.5, 512);
        let c = need(0.5, 512);
        assert_eq!(place(&f, &req(1, &c)).unwrap(), vec!["b1"]);
    }

    #[test]
    fn honours_az_and_tag_constraints() {
        let f = fleet(vec![
            host("a1", "az1", &["ssd"], 4, 8192),
            host("b1", "az2", &[], 4, 8192),
            host("b2", "az2", &["ssd", "gpu"], 4, 8192),
        ]);
        let mut c = need(0.5, 512);
        c.tags = vec!["ssd".into()];
        c.azs = vec!["az2".into()];
        assert_eq!(place(&f, &req(2, &c)).unwrap(), vec!["b2", "b2"]);
    }

    #[test]
    fn places_by_free_memory_and_cpu() {
        let mut f = fleet(vec![host("a1", "az1", &[], 4, 4096), host("a2", "az1", &[], 4, 4096)]);
        add_instance(&mut f, "other", "a1", 3.0, 3072);
        let c = need(1.5, 1024);
        // a1 has 1 core and 1 GB left: only a2 fits, twice (4 cores, 4 GB).
        assert_eq!(place(&f, &req(2, &c)).unwrap(), vec!["a2", "a2"]);
    }

    #[test]
    fn skips_hosts_that_are_not_up_or_excluded() {
        let mut f = fleet(vec![host("a1", "az1", &[], 4, 8192), host("a2", "az1", &[], 4, 8192)]);
        f.hosts.get_mut("a1").unwrap().state = HostState::Stale;
        let c = need(0.5, 512);
        assert_eq!(place(&f, &req(1, &c)).unwrap(), vec!["a2"]);
        let exclude = vec!["a2".to_string()];
        let r = PlacementRequest { exclude: &exclude, ..req(1, &c) };
        assert_eq!(place(&f, &r).unwrap_err().reason, NoFit::NoHostUp);
    }

    /// A cordoned or draining host gets no new instance, and when only such hosts are
    /// up the refusal says so.
    #[test]
    fn skips_cordoned_and_draining_hosts() {
        use crate::protocol::HostSchedule;
        let mut f = fleet(vec![host("a1", "az1", &[], 4, 8192), host("b1", "az2", &[], 4, 8192)]);
        f.hosts.get_mut("b1").unwrap().schedule = HostSchedule::Cordoned;
        let c = need(0.5, 512);
        assert_eq!(place(&f, &req(2, &c)).unwrap(), vec!["a1", "a1"], "the spread would have used b1");
        f.hosts.get_mut("a1").unwrap().schedule = HostSchedule::Draining { done: 0, total: 2 };
        let err = place(&f, &req(1, &c)).unwrap_err();
        assert_eq!(err.reason, NoFit::NoHostOpen);
        assert!(err.to_string().contains("cordoned or draining"), "{err}");
        f.hosts.get_mut("b1").unwrap().schedule = HostSchedule::Open;
        assert_eq!(place(&f, &req(1, &c)).unwrap(), vec!["b1"], "uncordoned, it takes them again");
    }

    #[test]
    fn refusals_name_the_constraint() {
        let f = fleet(vec![host("a1", "az1", &["ssd"], 2, 2048)]);
        let mut c = need(0.5, 512);
        c.azs = vec!["az9".into()];
        assert_eq!(place(&f, &req(1, &c)).unwrap_err().reason, NoFit::NoHostInAz("az9".into()));

        let mut c = need(0.5, 512);
        c.tags = vec!["gpu".into()];
        let err = place(&f, &req(1, &c)).unwrap_err();
        assert_eq!(err.reason, NoFit::NoHostWithTags("gpu".into()));

        let c = need(4.0, 512);
        assert!(matches!(place(&f, &req(1, &c)).unwrap_err().reason, NoFit::NotEnoughCpu { .. }));

        let c = need(0.5, 1536);
        let err = place(&f, &req(2, &c)).unwrap_err();
        assert_eq!(err.placed, 1);
        assert_eq!(err.reason, NoFit::NotEnoughMemory { need: 1536, best: 512 });
        assert!(err.to_string().contains("not enough memory"), "{err}");

        let empty = Fleet::default();
        assert_eq!(place(&empty, &req(1, &c)).unwrap_err().reason, NoFit::NoHostUp);
    }
}
