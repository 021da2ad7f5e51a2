//! The lab (`scripts/lab`) for the integration tests: `up` into a temporary directory,
//! the script's other commands, the NATS cluster's monitoring, and `down` on drop. One lab
//! runs at a time on a machine (its bridge, namespaces and addresses have fixed names), so
//! the lab tests take turns, across test processes too (a lock file in /run).
//!
//! Needs root, nats-server, dockerd with the test image, nginx, docker-registry, ip and
//! nsenter. Without one a test skips and says why, unless `CI=true`, where it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use quarterdeck::bus::{Bus, Connection, NatsBus, NatsOptions};
use serde_json::Value;

use crate::nats_support::{BIN, CtlOut, WAIT, ctl_with_seed, unique_dir};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lab");

/// The lab's address ranges, as `scripts/lab` numbers them: az1, az2.
pub const RANGES: [&str; 2] = ["198.51.100.", "203.0.113."];

/// Held while a lab is up: flock(2) locks belong to an open file, so two tests of one
/// process wait for each other as two processes do.
const TURN: &str = "/run/quarterdeck-lab-test.lock";

/// Why the lab cannot run here, if it cannot.
fn missing() -> Option<String> {
    for (var, what) in [("QD_NATS_SERVER", "nats-server"), ("QD_DOCKER", "dockerd"), ("QD_NGINX", "nginx")] {
        if std::env::var(var).map_or(true, |v| v.is_empty()) {
            return Some(format!("no {what} ({var} unset; run ./scripts/test)"));
        }
    }
    let uid =
        Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.ok().as_deref() != Some("0") {
        return Some("not root (network namespaces and dockerd need it)".into());
    }
    for tool in ["docker-registry", "ip", "nsenter", "curl", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("no {tool} (scripts/test installs docker-registry and iproute2)"));
        }
    }
    None
}

/// A lab that is up; `down` on drop, then its directory goes.
pub struct Lab {
    pub dir: PathBuf,
    /// What `scripts/lab env` exported.
    pub env: BTreeMap<String, String>,
    down: bool,
    /// Locked for the lab's life; dropped (unlocked) after `down`.
    _turn: std::fs::File,
}

impl Lab {
    /// `scripts/lab up --hosts N`, or `None` (having said why) where the lab cannot run.
    pub fn up(test: &str, hosts: usize) -> Option<Lab> {
        if let Some(why) = missing() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but the lab cannot run: {why}");
            }
            eprintln!("skipped: {test}: {why}");
            return None;
        }
        let turn = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(TURN)
            .unwrap_or_else(|e| panic!("cannot open {TURN}: {e}"));
        turn.lock().unwrap_or_else(|e| panic!("cannot lock {TURN}: {e}"));
        let dir = unique_dir(test);
        let mut lab = Lab { dir, env: BTreeMap::new(), down: false, _turn: turn };
        let out = lab.run(&["up", "--hosts", &hosts.to_string(), "--dir", lab.dir.to_str().unwrap()]);
        assert!(out.status.success(), "scripts/lab up failed:\n{}", text(&out));
        let env = lab.run(&["env"]);
        assert!(env.status.success(), "scripts/lab env failed:\n{}", text(&env));
        lab.env = parse_exports(&String::from_utf8_lossy(&env.stdout));
        Some(lab)
    }

    /// `scripts/lab --dir DIR ARGS...` with this checkout's binary.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(SCRIPT)
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .env("QD_BIN", BIN)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"))
    }

    /// `run`, which must succeed; its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "scripts/lab {args:?} failed:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn nats_url(&self) -> &str {
        &self.env["NATS_URL"]
    }

    /// The seed of the lab's operator (roles are on in the lab).
    pub fn operator_nkey(&self) -> PathBuf {
        PathBuf::from(&self.env["NATS_NKEY"])
    }

    /// `quarterdeck ctl ARGS` as the lab's operator.
    pub fn ctl(&self, args: &[&str]) -> CtlOut {
        ctl_with_seed(self.nats_url(), Some(self.operator_nkey()), args)
    }

    /// `ctl ARGS`, which must succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(out.ok(), "ctl {args:?} failed: {out}");
        out.stdout
    }

    /// `ctl snapshot --json`.
    pub fn snapshot(&self) -> Value {
        let out = self.ctl_ok(&["snapshot", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl snapshot: not JSON ({e}): {out}"))
    }

    /// A client of the library on the lab's bus, as the operator.
    pub async fn connect(&self, name: &str) -> NatsBus {
        self.connect_as(&self.operator_nkey(), name).await
    }

    /// A client of the library on the lab's bus with the seed `nkey` (one of
    /// `QD_LAB_AUTH`'s: `controller/c2.nk`, ...).
    pub async fn connect_as(&self, nkey: &Path, name: &str) -> NatsBus {
        let opts = NatsOptions {
            url: self.nats_url().to_string(),
            nkey: Some(nkey.to_path_buf()),
            name: name.to_string(),
            ..NatsOptions::default()
        };
        let bus = NatsBus::connect(&opts).await.expect("NatsBus::connect");
        let mut conn = bus.connection();
        tokio::time::timeout(WAIT, conn.wait_for(Connection::is_connected))
            .await
            .expect("connected to the lab's NATS in time")
            .expect("connection watch open");
        bus
    }

    pub fn hosts(&self) -> Vec<String> {
        self.env["QD_LAB_HOSTS"].split_whitespace().map(String::from).collect()
    }

    /// The monitoring address (127.0.0.1:PORT) of NATS node `n` (1-3).
    pub fn monitor(&self, n: usize) -> String {
        self.env["QD_LAB_NATS_MONITOR"].split(',').nth(n - 1).expect("three monitors").to_string()
    }

    /// `/jsz` of node `n`, with every stream's config and state.
    pub fn jsz(&self, n: usize) -> Result<Value, String> {
        http_json(&self.monitor(n), "/jsz?accounts=true&streams=true&config=true")
    }

    /// The node (1-3) that leads the JetStream meta group, as node `ask` sees it.
    pub fn meta_leader(&self, ask: usize) -> Result<usize, String> {
        let jsz = self.jsz(ask)?;
        let name = jsz["meta_cluster"]["leader"].as_str().unwrap_or_default();
        name.strip_prefix("qdlab-n")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no meta leader in node {ask}'s /jsz (leader '{name}')"))
    }

    /// `scripts/lab down`, checked; the drop does not run it again.
    pub fn down(&mut self) -> Output {
        self.down = true;
        self.run(&["down"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let out = self.run(&["down"]);
            if !out.status.success() {
                eprintln!("scripts/lab down failed:\n{}", text(&out));
            }
        }
        if std::thread::panicking() {
            print_logs(&self.dir.join("logs"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tail of every lab log, for a failing test.
fn print_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let lines: Vec<&str> = body.lines().collect();
        eprintln!("--- {} (last 30 lines)", entry.path().display());
        for line in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("{line}");
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `export NAME=VALUE` lines (bash's %q quoting of plain values) as a map.
fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\\ ", " ").replace('\\', "")))
        .collect()
}

/// GET http://ADDR/PATH (a 127.0.0.1 monitoring port) as JSON.
pub fn http_json(addr: &str, path: &str) -> Result<Value, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).map_err(|e| format!("read {addr}{path}: {e}"))?;
    let body =
        raw.split_once("\r\n\r\n").map(|(_, b)| b).ok_or_else(|| format!("no body from {addr}{path}"))?;
    serde_json::from_str(body).map_err(|e| format!("{addr}{path}: {e}"))
}

/// Each stream's name, replicas and state (`first_seq`, `last_seq`, `messages`), from a
/// `/jsz` with streams.
pub fn streams(jsz: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for account in jsz["account_details"].as_array().into_iter().flatten() {
        for stream in account["stream_detail"].as_array().into_iter().flatten() {
            if let Some(name) = stream["name"].as_str() {
                out.insert(name.to_string(), stream.clone());
            }
        }
    }
    out
}

/// What is left of any lab on this machine: namespaces, links, routes for the lab's
/// ranges, processes naming `dir` or /run/qdlab. Empty when `down` did its job.
pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for line in ip(&["netns", "list"]).lines() {
        if line.starts_with("qdlab-") {
            left.push(format!("namespace: {line}"));
        }
    }
    for line in ip(&["-o", "link", "show"]).lines() {
        if line.contains(" qdlab0") || line.contains(" qdl-") {
            left.push(format!("link: {line}"));
        }
    }
    for line in ip(&["route", "show"]).lines() {
        if RANGES.iter().any(|r| line.contains(r)) {
            left.push(format!("route: {line}"));
        }
    }
    let dir = dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // This test process and the script it ran name the directory too.
        if cmdline.contains("scripts/lab") || name == std::process::id().to_string() {
            continue;
        }
        if cmdline.contains(&format!("{dir}/")) || cmdline.contains("/run/qdlab/") {
            left.push(format!("process {name}: {cmdline}"));
        }
    }
    if Path::new("/run/qdlab").exists() {
        left.push("directory /run/qdlab".into());
    }
    left
}

/// One container as a lab host's own daemon lists it (`docker ps -a` on that host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `quarterdeck.app` and `quarterdeck.instance`: empty on a container not of the plane.
    pub app: String,
    pub instance: String,
    pub running: bool,
}

impl Lab {
    /// Every container of host `host`, from its own daemon (not the plane's word).
    pub fn containers(&self, host: &str) -> Vec<Container> {
        let format = "{{.ID}}\t{{.Names}}\t{{.Label \"quarterdeck.app\"}}\t{{.Label \"quarterdeck.instance\"}}\t{{.State}}";
        self.run_ok(&["docker", host, "ps", "-a", "--no-trunc", "--format", format])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 5, "docker ps on {host}: {l:?}");
                Container {
                    id: f[0].into(),
                    name: f[1].into(),
                    app: f[2].into(),
                    instance: f[3].into(),
                    running: f[4] == "running",
                }
            })
            .collect()
    }

    /// The router's nginx port on 127.0.0.1 (`QD_LAB_ROUTER`).
    pub fn router_port(&self) -> u16 {
        let addr = &self.env["QD_LAB_ROUTER"];
        assert!(addr.starts_with("127.0.0.1:"), "the lab's router is not on 127.0.0.1: {addr}");
        addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("QD_LAB_ROUTER {addr}"))
    }

    /// `scripts/lab push` of the local test image as `lab/httpd:v1`: the name the hosts
    /// pull it by.
    pub fn push_test_image(&self) -> String {
        let image = std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into());
        self.run_ok(&["push", &image, "lab/httpd:v1"])
    }

    /// `ctl deploy --wait` of `app` (httpd from `image` serving an artifact whose index.html
    /// says `app version`, on the domain `APP.test`) with `instances` instances.
    pub fn deploy(&self, app: &str, version: &str, instances: u32, image: &str) -> CtlOut {
        let artifact = self.dir.join(format!("{app}-{version}.tar.gz"));
        let body = format!("{app} {version}");
        std::fs::write(&artifact, crate::docker_support::site(&[("index.html", &body)]))
            .expect("write the artifact");
        let (instances, domain) = (instances.to_string(), format!("{app}.test"));
        self.ctl(&[
            "deploy",
            "--app",
            app,
            "--version",
            version,
            "--instances",
            &instances,
            "--image",
            image,
            "--port",
            "8080",
            "--cmd",
            "httpd -f -p 8080 -h /app",
            "--artifact",
            artifact.to_str().expect("a UTF-8 path"),
            "--health",
            "http:/index.html",
            "--domain",
            &domain,
            "--cpu",
            "0.1",
            "--memory",
            "64M",
            "--wait",
        ])
    }
}

/// Each host's plane containers against the snapshot: for every host, the instance ids
/// its daemon holds (running or not) and those the snapshot places on it, when they
/// differ; empty when every daemon holds exactly what the plane says, once each.
pub fn placement_mismatches(lab: &Lab, snap: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for host in lab.hosts() {
        let mut held: Vec<String> = lab
            .containers(&host)
            .into_iter()
            .filter(|c| !c.instance.is_empty())
            .map(|c| c.instance)
            .collect();
        held.sort();
        let mut placed: Vec<String> = snap["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["host"] == host.as_str())
            .filter_map(|i| i["id"].as_str().map(String::from))
            .collect();
        placed.sort();
        if held != placed {
            out.push(format!("{host}: its daemon holds {held:?}, the snapshot places {placed:?}"));
        }
    }
    out
}
