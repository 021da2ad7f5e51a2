//! Chaos on the whole stack, on real services: nats-server, a controller, two docker
//! agents (az1 and az2) and a router with nginx. Random faults, bounded in count and time:
//! nats-server stopped or killed and started again on its store, the controller and the
//! agents killed with -9 and started again, containers killed. A client loop GETs through
//! nginx all along, and a headless cockpit follows from the start. During each bus outage a
//! command is sent with a 2 s timeout: it must never run.
//!
//! At the end the fleet must have healed: the app back to its desired count, every instance
//! once (in the fleet and in Docker), routes equal to the running instances, nginx serving,
//! no operation left running, and the headless cockpit equal to a fresh snapshot.
//!
//! `QD_CHAOS_SECS` (default 40) is how long faults are injected; `scripts/lab chaos` runs
//! it for minutes. `QD_CHAOS_SEED` repeats a run. The faults and the failed requests are
//! printed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarterdeck::bus::Bus;
use quarterdeck::protocol::subjects::CtlVerb;
use quarterdeck::protocol::{Accepted, Envelope, RestartRequest};
use serde_json::Value;

use crate::docker_support::{docker, docker_or_skip, site};
use crate::nats_support::{
    Follower, NatsServer, Proc, ctl_json_lines, eventually, try_eventually, try_snapshot,
};
use crate::stack_support::{
    NginxGuard, deploy_site, docker_agent_args, free_port, get, nginx_bin, remove_host_containers,
    spawn_router,
};

const DEFAULT_SECS: u64 = 40;
const CONTROLLER_ARGS: [&str; 8] =
    ["--route-stale-after", "2s", "--stale-after", "3", "--lost-after", "10", "--lease-ttl", "3s"];
/// How long the fleet may take to heal once the faults stop.
const HEAL: Duration = Duration::from_secs(120);

/// A small deterministic generator, so a seed repeats a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A whole number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

enum Fault {
    BusOutage { down_ms: u64, killed: bool },
    ControllerKill { down_ms: u64 },
    AgentKill { host: String, down_ms: u64 },
    ContainerKill { container: String },
}

impl Fault {
    fn kind(&self) -> &'static str {
        match self {
            Fault::BusOutage { .. } => "nats-server down",
            Fault::ControllerKill { .. } => "controller kill -9",
            Fault::AgentKill { .. } => "agent kill -9",
            Fault::ContainerKill { .. } => "container killed",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::BusOutage { down_ms, killed } => {
                let how = if *killed { "kill -9" } else { "SIGTERM" };
                write!(f, "nats-server stopped ({how}) for {down_ms} ms")
            }
            Fault::ControllerKill { down_ms } => {
                write!(f, "controller kill -9, started again {down_ms} ms later")
            }
            Fault::AgentKill { host, down_ms } => {
                write!(f, "agent {host} kill -9, started again {down_ms} ms later")
            }
            Fault::ContainerKill { container } => {
                write!(f, "container {} killed", &container[..12.min(container.len())])
            }
        }
    }
}

/// Removes what the test started in Docker and nginx, whatever happens.
struct Cleanup {
    hosts: Vec<String>,
    _nginx: NginxGuard,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for host in &self.hosts {
            remove_host_containers(host);
        }
    }
}

/// What the client loop saw through nginx.
#[derive(Default)]
struct Traffic {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The first failures, with when they happened (s since the start).
    samples: Mutex<Vec<(f64, String)>>,
}

#[test]
fn chaos_the_stack_heals_from_random_kills_and_outages() {
    let test = "chaos";
    if !docker_or_skip(test) {
        return;
    }
    let Some(nginx) = nginx_bin(test) else { return };
    let Some(mut nats) = NatsServer::start(test) else { return };
    let secs = std::env::var("QD_CHAOS_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_SECS);
    let seed = std::env::var("QD_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }) | 1;
    eprintln!("chaos: {secs} s of faults, QD_CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let url = nats.url();

    let pid = std::process::id() % 100_000;
    let hosts = vec![format!("cha{pid}"), format!("chb{pid}")];
    let router_dir = nats.dir().join("router");
    for host in &hosts {
        remove_host_containers(host);
    }
    let _cleanup = Cleanup { hosts: hosts.clone(), _nginx: NginxGuard(router_dir.clone()) };
    let mut controller = Proc::controller(&nats, "c1", &CONTROLLER_ARGS);
    let agent_args: Vec<Vec<String>> = hosts
        .iter()
        .zip(["az1", "az2"])
        .map(|(h, az)| docker_agent_args(h, az, &nats.dir().join(format!("data-{h}"))))
        .collect();
    let spawn_agent = |nats: &NatsServer, i: usize| {
        let args: Vec<&str> = agent_args[i].iter().map(String::as_str).collect();
        Proc::spawn(nats, &format!("agent-{}", hosts[i]), &args)
    };
    let mut agents: Vec<Proc> = (0..hosts.len()).map(|i| spawn_agent(&nats, i)).collect();
    let port = free_port();
    let _router = spawn_router(&nats, port, &router_dir, &nginx);
    eventually(Duration::from_secs(30), "both docker hosts are up", || {
        let s = try_snapshot(&url)?;
        let up = s["hosts"].as_array().map_or(0, |h| h.iter().filter(|h| h["state"] == "up").count());
        if up == hosts.len() { Ok(()) } else { Err(format!("{}", s["hosts"])) }
    });

    let artifact = nats.dir().join("site.tar.gz");
    std::fs::write(&artifact, site(&[("index.html", "chaos")])).unwrap();
    let out = deploy_site(&url, "1", "2", &artifact, &[]);
    assert!(out.ok(), "first deploy: {out}");
    eventually(Duration::from_secs(30), "nginx serves the app", || match get(port, "site.test") {
        Ok((200, _, _)) => Ok(()),
        other => Err(format!("{other:?}")),
    });

    // A headless cockpit that lives through every fault, and a client for late commands.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (follower, commands) = rt.block_on(async {
        let follower =
            Follower::start(Arc::new(crate::nats_support::connect(&url, "test/chaos-cockpit").await));
        let commands: Arc<dyn Bus> =
            Arc::new(crate::nats_support::connect(&url, "test/chaos-commands").await);
        (follower, commands)
    });

    let start = Instant::now();
    let traffic = Arc::new(Traffic::default());
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (traffic, stop) = (traffic.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match get(port, "site.test") {
                    Ok((200, _, _)) => traffic.ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        let mut samples = traffic.samples.lock().unwrap();
                        if samples.len() < 20 {
                            let what = match other {
                                Ok((status, backend, _)) => format!("{status} from {backend:?}"),
                                Err(e) => e,
                            };
                            samples.push((start.elapsed().as_secs_f64(), what));
                        }
                        traffic.failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let mut faults: Vec<(f64, Fault)> = Vec::new();
    let mut late_commands: Vec<String> = Vec::new();
    let mut first = [0u64, 1, 2, 3];
    for i in (1..first.len()).rev() {
        first.swap(i, rng.between(0, i as u64) as usize);
    }
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(rng.between(1_000, 4_000)));
        let at = start.elapsed().as_secs_f64();
        // Every kind of fault at least once, in a seeded order, then at random.
        let kind = match faults.len() {
            n if n < first.len() => first[n],
            _ => rng.between(0, 3),
        };
        let fault = match kind {
            0 => {
                let (down_ms, killed) = (rng.between(2_000, 8_000), rng.between(0, 1) == 1);
                if killed {
                    nats.kill9()
                } else {
                    nats.stop()
                }
                // A command sent while the bus is down, with a 2 s timeout: whatever the
                // client library buffers, it must never run.
                let env = Envelope::new("test/chaos", RestartRequest::App("site".into()));
                late_commands.push(env.id.clone());
                let bus = commands.clone();
                rt.spawn(async move {
                    let _ = quarterdeck::bus::command::<_, Accepted>(
                        bus.as_ref(),
                        CtlVerb::Restart,
                        &env,
                        Duration::from_secs(2),
                    )
                    .await;
                });
                std::thread::sleep(Duration::from_millis(down_ms));
                nats.start_again();
                Fault::BusOutage { down_ms, killed }
            }
            1 => {
                let down_ms = rng.between(0, 2_000);
                controller.kill9();
                std::thread::sleep(Duration::from_millis(down_ms));
                controller = Proc::controller(&nats, "c1", &CONTROLLER_ARGS);
                Fault::ControllerKill { down_ms }
            }
            2 => {
                let (i, down_ms) = (rng.between(0, 1) as usize, rng.between(1_000, 6_000));
                agents[i].kill9();
                std::thread::sleep(Duration::from_millis(down_ms));
                agents[i] = spawn_agent(&nats, i);
                Fault::AgentKill { host: hosts[i].clone(), down_ms }
            }
            _ => {
                let running = our_containers(&hosts);
                let Some(container) = running.keys().nth(rng.between(0, 10) as usize % running.len().max(1))
                else {
                    continue;
                };
                let container = container.clone();
                let _ = std::process::Command::new("docker").args(["kill", &container]).output();
                Fault::ContainerKill { container }
            }
        };
        faults.push((at, fault));
    }
    let chaos_s = start.elapsed().as_secs_f64();
    // The faults first: a run that does not heal says what it went through.
    eprintln!("chaos report (seed {seed}): {} faults in {chaos_s:.0} s", faults.len());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (at, fault) in &faults {
        *counts.entry(fault.kind()).or_default() += 1;
        eprintln!("  {at:6.1}s {fault}");
    }
    eprintln!("  by kind: {counts:?}");

    // Healed: the app at its desired count, each instance once, routes equal to the
    // running instances, nothing left running, nginx serving.
    let healed = try_eventually(HEAL, || {
        let s = try_snapshot(&url)?;
        let desired = s["apps"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == "site"))
            .map(|a| a["instances"].clone());
        if desired != Some(Value::from(2)) {
            return Err(format!("desired count of site is {desired:?}"));
        }
        let instances: Vec<&Value> =
            s["instances"].as_array().into_iter().flatten().filter(|i| i["app"] == "site").collect();
        let running: BTreeSet<String> = instances
            .iter()
            .filter(|i| i["state"] == "running")
            .map(|i| i["id"].as_str().unwrap_or("").to_string())
            .collect();
        if instances.len() != 2 || running.len() != 2 {
            return Err(format!(
                "instances of site: {}",
                Value::from(instances.into_iter().cloned().collect::<Vec<_>>())
            ));
        }
        let endpoints: BTreeSet<&str> = instances.iter().filter_map(|i| i["endpoint"].as_str()).collect();
        let serving: BTreeSet<&str> = s["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["app"] == "site" && r["state"] == "enabled" && r["stale"] != true)
            .filter_map(|r| r["backend"].as_str())
            .collect();
        let all_routes =
            s["routes"].as_array().map_or(0, |r| r.iter().filter(|r| r["app"] == "site").count());
        if serving != endpoints || all_routes != endpoints.len() {
            return Err(format!("routes {} but endpoints {endpoints:?}", s["routes"]));
        }
        let open: Vec<&Value> =
            s["operations"].as_array().into_iter().flatten().filter(|o| o["state"] == "running").collect();
        if !open.is_empty() {
            return Err(format!("operations still running: {open:?}"));
        }
        let in_docker = our_containers(&hosts);
        let ids: BTreeSet<String> = in_docker.values().cloned().collect();
        if in_docker.len() != 2 || ids != running {
            return Err(format!("docker runs {in_docker:?}, the fleet {running:?}"));
        }
        match get(port, "site.test") {
            Ok((200, _, _)) => Ok(s),
            other => Err(format!("nginx: {other:?}")),
        }
    });
    let healed = healed.unwrap_or_else(|last| {
        // A process that stopped answering says where it is stuck.
        for (name, pid) in
            [("controller", controller.pid())].into_iter().chain(agents.iter().map(|a| ("agent", a.pid())))
        {
            if let Some(pid) = pid {
                eprintln!("==== threads of the {name} (pid {pid}) ====\n{}", stacks(pid));
            }
        }
        panic!("timed out after {HEAL:?} waiting for the fleet to heal\nlast seen: {last}")
    });
    let healed_s = start.elapsed().as_secs_f64() - chaos_s;
    stop.store(true, Ordering::Relaxed);
    let _ = client.join();

    rt.block_on(async {
        let bus = crate::nats_support::connect(&url, "test/chaos-check").await;
        follower.wait_in_step(&bus, "the headless cockpit equals a fresh snapshot").await;
    });

    // No late command ran: the controller refused it as expired, or never saw it.
    let audit = ctl_json_lines(&url, &["audit", "--since", "1h"]);
    let ran: Vec<&Value> = audit
        .iter()
        .filter(|r| late_commands.iter().any(|id| r["command_id"] == id.as_str()))
        .filter(|r| r["outcome"]["accepted"] == true)
        .collect();

    eprintln!("chaos: healed {healed_s:.1} s after the last fault");
    eprintln!(
        "  requests through nginx: {} ok, {} failed; first failures: {:?}",
        traffic.ok.load(Ordering::Relaxed),
        traffic.failed.load(Ordering::Relaxed),
        traffic.samples.lock().unwrap()
    );
    eprintln!("  late commands sent during outages: {}, run: {}", late_commands.len(), ran.len());
    eprintln!("  final revision {}", healed["revision"]);
    assert!(ran.is_empty(), "commands sent during an outage ran after their deadline: {ran:?}");
    assert!(traffic.ok.load(Ordering::Relaxed) > 0, "no request through nginx ever succeeded");
}

/// The running containers on our hosts: container id to instance id (its label).
fn our_containers(hosts: &[String]) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for host in hosts {
        let label = format!("label=quarterdeck.host={host}");
        let format = "{{.ID}} {{.Label \"quarterdeck.instance\"}}";
        for line in docker(&["ps", "--no-trunc", "--filter", &label, "--format", format]).lines() {
            if let Some((id, instance)) = line.split_once(' ') {
                found.insert(id.to_string(), instance.to_string());
            }
        }
    }
    found
}

/// Every thread's stack of a live process, by gdb, when it is there.
fn stacks(pid: u32) -> String {
    let out = std::process::Command::new("gdb")
        .args(["-p", &pid.to_string(), "-batch", "-ex", "thread apply all bt 30"])
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("(no gdb: {e})"),
    }
}
