//! A whole plane on real services for end-to-end tests: nats-server, a controller, docker
//! agents (one by default; each its own host on the one dockerd) publishing on 127.0.0.1,
//! and a router running nginx. In `Mode::Roles` every process is its own NKey user. Everything it started
//! (containers by host label, nginx by pid file, directories) goes on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::docker_support::{docker, docker_or_skip, site};
use crate::nats_support::{CtlOut, Mode, NatsServer, Proc, ctl, eventually, try_snapshot};

/// A plane with docker agents and a router, torn down (containers, nginx, dirs) on drop.
pub struct Stack {
    pub nats: NatsServer,
    pub _controller: Proc,
    agent_args: Vec<String>,
    /// The first host's agent: the one `restart_agent` restarts.
    pub agent: Proc,
    /// The agents of the other hosts.
    pub _more_agents: Vec<Proc>,
    pub router: Option<Proc>,
    /// The first host's id.
    pub host: String,
    /// Every host's id, the first's included.
    pub hosts: Vec<String>,
    /// The first host's agent state.
    pub data_dir: PathBuf,
    pub router_dir: PathBuf,
    pub port: u16,
    /// Where each service serves `/metrics`, when started with `StackConfig::metrics`.
    pub metrics: Option<MetricsPorts>,
}

/// The `--metrics-listen` ports of a stack's controller, first agent and router.
#[derive(Debug, Clone, Copy)]
pub struct MetricsPorts {
    pub controller: u16,
    pub agent: u16,
    pub router: u16,
}

impl MetricsPorts {
    fn free() -> MetricsPorts {
        MetricsPorts { controller: free_port(), agent: free_port(), router: free_port() }
    }
}

/// `--metrics-listen 127.0.0.1:PORT`.
fn metrics_flag(port: u16) -> [String; 2] {
    ["--metrics-listen".to_string(), format!("127.0.0.1:{port}")]
}

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Open, or every process its own user (the operator for `ctl`).
    pub mode: Mode,
    /// How many docker agents, each a host of its own on the one dockerd.
    pub agents: usize,
    /// The controller's `--route-stale-after`.
    pub route_ttl: &'static str,
    /// The controller's `--stale-after`/`--lost-after` flags.
    pub liveness: Vec<&'static str>,
    /// Whether the controller, the first agent and the router serve `/metrics`, each on a
    /// free port of 127.0.0.1 (`Stack::metrics`).
    pub metrics: bool,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            mode: Mode::Open,
            agents: 1,
            route_ttl: "2s",
            liveness: vec!["--stale-after", "5", "--lost-after", "100"],
            metrics: false,
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn nginx_bin(test: &str) -> Option<String> {
    match std::env::var("QD_NGINX").ok().filter(|v| !v.is_empty()) {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but QD_NGINX is not set: run ./scripts/test")
        }
        None => {
            eprintln!("skipped: {test}: no nginx (run ./scripts/test)");
            None
        }
    }
}

impl Stack {
    pub fn start(test: &str) -> Option<Stack> {
        Stack::start_config(test, StackConfig::default())
    }

    /// With the controller's `--route-stale-after` set to `route_ttl`.
    pub fn start_with(test: &str, route_ttl: &'static str) -> Option<Stack> {
        Stack::start_config(test, StackConfig { route_ttl, ..StackConfig::default() })
    }

    /// With the controller's `--route-stale-after` set to `route_ttl`, and `liveness` (its
    /// `--stale-after`/`--lost-after` flags).
    pub fn start_opts(test: &str, route_ttl: &'static str, liveness: &[&'static str]) -> Option<Stack> {
        Stack::start_config(
            test,
            StackConfig { route_ttl, liveness: liveness.to_vec(), ..StackConfig::default() },
        )
    }

    /// Two docker agents (two hosts, so placement crosses them) on a bus run in `mode`.
    pub fn start_two_hosts(test: &str, mode: Mode) -> Option<Stack> {
        Stack::start_config(test, StackConfig { mode, agents: 2, ..StackConfig::default() })
    }

    pub fn start_config(test: &str, config: StackConfig) -> Option<Stack> {
        if !docker_or_skip(test) {
            return None;
        }
        let nginx = nginx_bin(test)?;
        // One host id per test: tests run side by side in one process, and two agents with
        // one id would adopt each other's containers.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let first = format!("rt{}-{n}", std::process::id() % 100_000);
        let hosts: Vec<String> = (0..config.agents.max(1))
            .map(|i| if i == 0 { first.clone() } else { format!("{first}-{i}") })
            .collect();
        // A run killed before its cleanup, under the same process id, would leave
        // containers these hosts' agents adopt.
        for host in &hosts {
            remove_host_containers(host);
        }
        let nats =
            NatsServer::start_mode(test, config.mode, &hosts.iter().map(String::as_str).collect::<Vec<_>>())?;
        let data_dir = nats.dir().join("agent-data");
        let router_dir = nats.dir().join("router");
        let metrics = config.metrics.then(MetricsPorts::free);
        let mut controller_args = vec!["--route-stale-after", config.route_ttl];
        controller_args.extend_from_slice(&config.liveness);
        let controller_metrics = metrics.map(|m| metrics_flag(m.controller));
        controller_args.extend(controller_metrics.iter().flatten().map(String::as_str));
        let controller = Proc::controller(&nats, "c1", &controller_args);
        let mut agent_args = docker_agent_args(&first, "az1", &data_dir);
        agent_args.extend(metrics.map(|m| metrics_flag(m.agent)).into_iter().flatten());
        let agent = spawn_agent(&nats, &first, &agent_args);
        let more_agents = hosts[1..]
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let dir = nats.dir().join(format!("agent-data-{}", i + 1));
                spawn_agent(&nats, host, &docker_agent_args(host, &format!("az{}", i + 2), &dir))
            })
            .collect();
        let port = free_port();
        let mut stack = Stack {
            nats,
            _controller: controller,
            agent_args,
            agent,
            _more_agents: more_agents,
            router: None,
            host: first,
            hosts,
            data_dir,
            router_dir,
            port,
            metrics,
        };
        stack.start_router(&nginx);
        let url = stack.nats.url();
        let wanted = stack.hosts.len();
        eventually(Duration::from_secs(30), "every docker host is up", || {
            let s = try_snapshot(&url)?;
            let up = s["hosts"].as_array().map_or(0, |h| h.iter().filter(|h| h["state"] == "up").count());
            if up == wanted { Ok(()) } else { Err(format!("{}", s["hosts"])) }
        });
        Some(stack)
    }

    pub fn start_router(&mut self, nginx: &str) {
        let extra: Vec<String> = self.metrics.map(|m| metrics_flag(m.router)).into_iter().flatten().collect();
        self.router = Some(spawn_router_with(&self.nats, self.port, &self.router_dir, nginx, &extra));
    }

    /// Kills the agent with -9 and starts it again with the same flags.
    pub fn restart_agent(&mut self) {
        self.agent.kill9();
        self.start_agent();
    }

    /// Starts the agent (again) with the same flags.
    pub fn start_agent(&mut self) {
        self.agent = spawn_agent(&self.nats, &self.host, &self.agent_args);
    }

    /// Ids of the running containers of every host of the stack, with `filters` (docker's
    /// `--filter` values) besides the host.
    pub fn containers(&self, filters: &[&str]) -> Vec<String> {
        let mut ids = Vec::new();
        for host in &self.hosts {
            let label = format!("label=quarterdeck.host={host}");
            let mut args = vec!["ps", "-q", "--no-trunc", "--filter", &label];
            for f in filters {
                args.extend(["--filter", f]);
            }
            ids.extend(docker(&args).split_whitespace().map(str::to_string));
        }
        ids.sort();
        ids
    }

    pub fn url(&self) -> String {
        self.nats.url()
    }

    pub fn artifact(&self, name: &str, body: &str) -> PathBuf {
        let path = self.nats.dir().join(format!("{name}.tar.gz"));
        std::fs::write(&path, site(&[("index.html", body)])).expect("artifact");
        path
    }

    pub fn deploy(&self, version: &str, instances: &str, body: &str, extra: &[&str]) -> CtlOut {
        let artifact = self.artifact(&format!("site-{version}"), body);
        self.deploy_file(version, instances, &artifact, extra)
    }

    /// `ctl deploy --wait` of the app `site` with a given artifact file.
    pub fn deploy_file(
        &self,
        version: &str,
        instances: &str,
        artifact: &std::path::Path,
        extra: &[&str],
    ) -> CtlOut {
        deploy_site(&self.url(), version, instances, artifact, extra)
    }

    pub fn router_generation(&self) -> u64 {
        std::fs::read_to_string(self.router_dir.join("nginx.conf")).map(|_| 1).unwrap_or(0)
    }
}

/// Stops the nginx a router daemonized in `dir` (by its pid file) when dropped, so a
/// failing test leaves no nginx behind.
pub struct NginxGuard(pub PathBuf);

impl Drop for NginxGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("nginx.pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The router first: alive, it would start nginx again for a pending change.
        if let Some(router) = self.router.as_mut() {
            router.kill9();
        }
        drop(NginxGuard(self.router_dir.clone()));
        // Then the controller and the agents: alive, they would start a removed container
        // again (the health manager's restart), and it would outlive the test.
        self._controller.kill9();
        self.agent.kill9();
        self._more_agents.iter_mut().for_each(Proc::kill9);
        for host in &self.hosts {
            remove_host_containers(host);
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// One request through the router: status, the backend that answered, the body.
pub fn get(port: u16, host: &str) -> Result<(u16, String, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(s, "GET /index.html HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad answer {raw:?}"))?;
    let backend = raw
        .lines()
        .find_map(|l| l.strip_prefix("X-Quarterdeck-Backend: "))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string();
    Ok((status, backend, body))
}

/// `ctl deploy --wait` of the app `site` (the test image's httpd serving the artifact on
/// 8080, domain `site.test`) with a given artifact file.
pub fn deploy_site(
    url: &str,
    version: &str,
    instances: &str,
    artifact: &std::path::Path,
    extra: &[&str],
) -> CtlOut {
    let args = site_deploy_args(version, instances, artifact, extra);
    ctl(url, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `deploy_site` from another image (one with the test image's httpd).
pub fn deploy_site_image(
    url: &str,
    image: &str,
    version: &str,
    instances: &str,
    artifact: &std::path::Path,
    extra: &[&str],
) -> CtlOut {
    let args = site_image_deploy_args(image, version, instances, artifact, extra);
    ctl(url, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The `ctl` arguments of `deploy_site`.
pub fn site_deploy_args(
    version: &str,
    instances: &str,
    artifact: &std::path::Path,
    extra: &[&str],
) -> Vec<String> {
    let image = std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into());
    site_image_deploy_args(&image, version, instances, artifact, extra)
}

/// The `ctl` arguments of `deploy_site_image`.
pub fn site_image_deploy_args(
    image: &str,
    version: &str,
    instances: &str,
    artifact: &std::path::Path,
    extra: &[&str],
) -> Vec<String> {
    site_cmd_deploy_args(image, "httpd -f -p 8080 -h /app", version, instances, artifact, extra)
}

/// The `ctl` arguments of a `deploy --wait` of `site` with its own container command.
pub fn site_cmd_deploy_args(
    image: &str,
    cmd: &str,
    version: &str,
    instances: &str,
    artifact: &std::path::Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args = vec![
        "deploy",
        "--app",
        "site",
        "--version",
        version,
        "--instances",
        instances,
        "--image",
        image,
        "--port",
        "8080",
        "--cmd",
        cmd,
        "--artifact",
        artifact.to_str().unwrap(),
        "--health",
        "http:/index.html",
        "--domain",
        "site.test",
        "--cpu",
        "0.1",
        "--memory",
        "64M",
        "--wait",
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_string).collect()
}

/// The flags of a docker agent for `host` in `az`, publishing on 127.0.0.1, its state in
/// `data_dir`, with a fast heartbeat.
pub fn docker_agent_args(host: &str, az: &str, data_dir: &std::path::Path) -> Vec<String> {
    let data_dir = data_dir.to_str().unwrap();
    [
        "agent",
        "--host-id",
        host,
        "--az",
        az,
        "--driver",
        "docker",
        "--ip",
        "127.0.0.1",
        "--advertise-ip",
        "127.0.0.1",
        "--data-dir",
        data_dir,
        "--heartbeat",
        "300ms",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// A router `r1` running nginx on 127.0.0.1:`port`, its files in `dir`.
pub fn spawn_router(nats: &NatsServer, port: u16, dir: &std::path::Path, nginx: &str) -> Proc {
    spawn_router_with(nats, port, dir, nginx, &[])
}

/// `spawn_router` with `extra` flags.
pub fn spawn_router_with(
    nats: &NatsServer,
    port: u16,
    dir: &std::path::Path,
    nginx: &str,
    extra: &[String],
) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "router",
        "--id",
        "r1",
        "--listen",
        &listen,
        "--state-dir",
        dir.to_str().unwrap(),
        "--nginx",
        nginx,
    ];
    args.extend(extra.iter().map(String::as_str));
    Proc::spawn_as(nats, "router", "router/r1", &args)
}

/// The docker agent of `host`, logged in as that host's agent when the bus runs roles.
pub fn spawn_agent(nats: &NatsServer, host: &str, args: &[String]) -> Proc {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::spawn_as(nats, &format!("agent-{host}"), &format!("agent/{host}"), &args)
}

/// Removes every container labelled as `host`'s, running or not.
pub fn remove_host_containers(host: &str) {
    let ids = docker(&["ps", "-aq", "--filter", &format!("label=quarterdeck.host={host}")]);
    for id in ids.split_whitespace() {
        let _ = std::process::Command::new("docker").args(["rm", "-f", id]).output();
    }
}
