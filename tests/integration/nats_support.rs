//! Real services for the NATS integration tests: a nats-server with JetStream on a free
//! loopback port and a temporary store, the built `quarterdeck` binary as child processes,
//! `ctl`, a headless cockpit backend that keeps a replica, and pollers.
//!
//! Every resource is released by `Drop`, so a failing test still stops its processes and
//! removes its directory. A failing test also prints the tail of every log it collected.
//! Without `QD_NATS_SERVER` a test skips (and says so), unless `CI=true`, where it fails.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use quarterdeck::backend::{self, BackendHandle, BackendRequest, Feed, Inbound, Replica, Sync};
use quarterdeck::bus::{Bus, BusError, Connection, NatsBus, NatsOptions, Subscription};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{Event, Fleet, Gap, Heartbeat, InstanceReport, decode, subjects};
use serde_json::Value;
use tokio::sync::watch;

/// The built binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_quarterdeck");

/// How long a poll waits before it fails: generous, for a loaded 2-core CI machine. No
/// test asserts on timing; this only bounds a hang.
pub const WAIT: Duration = Duration::from_secs(30);

/// The heartbeat period the tests run agents (and controllers) with.
pub const HEARTBEAT: &str = "300ms";

/// How often the pollers look again.
const POLL: Duration = Duration::from_millis(100);

/// The nats-server to run, from `QD_NATS_SERVER` (set by ./scripts/test). `None` means
/// the test should skip: it has printed why. With `CI=true` a missing server fails.
pub fn nats_server_bin(test: &str) -> Option<PathBuf> {
    match std::env::var_os("QD_NATS_SERVER").filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but QD_NATS_SERVER is not set: run ./scripts/test")
        }
        None => {
            eprintln!("skipped: {test}: no nats-server (run ./scripts/test)");
            None
        }
    }
}

/// `let plane = plane_or_skip!("name", PlaneConfig::default());`: nats-server, controller
/// and two agents, or a skip.
macro_rules! plane_or_skip {
    ($test:expr, $config:expr) => {
        match $crate::nats_support::Plane::start($test, $config) {
            Some(plane) => plane,
            None => return,
        }
    };
}
pub(crate) use plane_or_skip;

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique() -> u64 {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn unique_dir(test: &str) -> PathBuf {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name: String = test.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let dir = std::env::temp_dir().join(format!("qd-{name}-{}-{}-{nanos}", std::process::id(), unique()));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn read_lossy(path: &Path) -> String {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends SIGTERM through kill(1): the crate forbids unsafe code, so no libc here.
fn sigterm(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}

/// Waits for a child to exit, up to `timeout`; kills it (SIGKILL) if it has not.
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                return child.wait().expect("wait for a killed child");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// nats-server

/// A nats-server with JetStream on 127.0.0.1, its store and every test log in one
/// temporary directory. Stop it and start it again on the same port and store to test
/// reconnects. Dropping it kills the server and removes the directory.
pub struct NatsServer {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
    test: String,
    /// Lines of a config file given with `-c`, for settings that have no flag
    /// (`max_payload`); the flags still set listen address, port and JetStream store.
    config: Option<String>,
    /// In `Mode::Roles`, the directory `quarterdeck auth init` wrote the users to.
    auth: Option<PathBuf>,
}

impl NatsServer {
    /// Starts a server for `test`, or `None` (after printing why) when there is none.
    pub fn start(test: &str) -> Option<NatsServer> {
        Self::start_with_config(test, None)
    }

    /// Like `start`, with `config` (nats-server config lines, e.g. `max_payload: 65536`)
    /// in a config file.
    pub fn start_with_config(test: &str, config: Option<&str>) -> Option<NatsServer> {
        Self::start_full(test, config, Mode::Open, &[])
    }

    /// A server in `mode`; in `Mode::Roles` its users are the test's (`Users`), with an
    /// agent user for each of `hosts`.
    pub fn start_mode(test: &str, mode: Mode, hosts: &[&str]) -> Option<NatsServer> {
        Self::start_full(test, None, mode, hosts)
    }

    fn start_full(test: &str, config: Option<&str>, mode: Mode, hosts: &[&str]) -> Option<NatsServer> {
        let bin = nats_server_bin(test)?;
        let mut server = NatsServer {
            bin,
            port: 0,
            dir: unique_dir(test),
            child: None,
            starts: 0,
            test: test.to_string(),
            config: config.map(str::to_string),
            auth: None,
        };
        if mode == Mode::Roles {
            let auth = server.dir.join("auth");
            let block = auth_init(&auth, hosts);
            // nats-server resolves `include` relative to its config file, which the harness
            // writes in the server's own directory: the block goes in as it is.
            server.config = Some(format!("{}\n{block}", server.config.take().unwrap_or_default()));
            server.auth = Some(auth);
        }
        // The port is free when picked but may be taken before the server binds it; pick
        // another then.
        let mut errors = Vec::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.launch() {
                Ok(()) => {
                    if server.auth.is_some() {
                        let seed = server.seed(&format!("operator/{}", Users::OPERATOR_NAME)).expect("roles");
                        lock(&OPERATOR_SEEDS).insert(server.url(), seed);
                    }
                    return Some(server);
                }
                Err(e) => errors.push(e),
            }
        }
        panic!("nats-server did not start:\n{}", errors.join("\n---\n"));
    }

    fn launch(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = self.dir.join(format!("nats-server.{}.log", self.starts));
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let store = self.dir.join("jetstream");
        let mut command = Command::new(&self.bin);
        if let Some(config) = &self.config {
            let file = self.dir.join("nats-server.conf");
            fs::write(&file, config).map_err(|e| format!("{}: {e}", file.display()))?;
            command.arg("-c").arg(&file);
        }
        let mut child = command
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nats-server exited ({status}):\n{}", tail(&read_lossy(&log), 20)));
            }
            // "Server is ready" comes after JetStream has started and the listener is up.
            if read_lossy(&log).contains("Server is ready")
                && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "nats-server not ready after {WAIT:?}:\n{}",
                    tail(&read_lossy(&log), 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The temporary directory: JetStream store and every log of the test.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The seed file of `who` (`role/name`, e.g. `agent/h1`) in `Mode::Roles`; `None` on
    /// an open server, where every client is anonymous.
    pub fn seed(&self, who: &str) -> Option<PathBuf> {
        self.auth.as_ref().map(|auth| auth.join(format!("{who}.nk")))
    }

    /// Whether the server logged a permissions violation of `kind` (`Publish`,
    /// `Subscription`) on `subject`.
    pub fn violation(&self, kind: &str, subject: &str) -> Result<(), String> {
        let wanted = format!("{kind} Violation - Subject \"{subject}\"");
        check(self.log().contains(&wanted), || format!("no {wanted:?} in the server's log"))
    }

    /// Every permissions violation the server logged, one line each.
    pub fn violations(&self) -> Vec<String> {
        self.log().lines().filter(|l| l.contains("Violation")).map(str::to_string).collect()
    }

    /// Fails if the server refused anything: with roles on, every process of a working
    /// plane has each permission it uses.
    pub fn assert_no_violations(&self) {
        let refused = self.violations();
        assert!(refused.is_empty(), "the server refused:\n{}", refused.join("\n"));
    }

    /// The server's log, over all its starts.
    pub fn log(&self) -> String {
        (1..=self.starts).map(|n| read_lossy(&self.dir.join(format!("nats-server.{n}.log")))).collect()
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigterm(child.id());
            wait_or_kill(&mut child, Duration::from_secs(15));
        }
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered, and what
    /// clients send meanwhile is handled when it is resumed.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a server frozen by `pause` (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().map(|c| c.id()).expect("nats-server runs");
        let status = Command::new("kill").arg(sig).arg(pid.to_string()).status().expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// Starts the server again on the same port with the same store.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: the server is still running");
        let mut errors = Vec::new();
        // The old listener may linger for a moment; retry on the same port.
        for _ in 0..20 {
            match self.launch() {
                Ok(()) => return,
                Err(e) => errors.push(e),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("nats-server did not start again on port {}:\n{}", self.port, errors.join("\n---\n"));
    }

    /// Prints the tail of every log in the test directory.
    fn dump_logs(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        let mut logs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        eprintln!("==== logs of {} (in {}) ====", self.test, self.dir.display());
        for log in logs {
            let name = log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            eprintln!("---- {name} (last 60 lines) ----\n{}", tail(&read_lossy(&log), 60));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        lock(&OPERATOR_SEEDS).remove(&self.url());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Roles: the harness with every process its own NKey user

/// How the bus is run. `Open`: anyone may do anything (the sandbox, a dev server).
/// `Roles`: the server takes its users from `quarterdeck auth init` (issue 15), and every
/// process of the harness logs in as its own user; the harness's `ctl` and library clients
/// act as the operator `Users::OPERATOR_NAME`. A test body written against the harness runs
/// unchanged in either mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Open,
    Roles,
}

/// The users of a server in `Mode::Roles`, besides an agent per host the test names.
pub struct Users;

impl Users {
    /// Controllers: the plane's `c1` and a standby.
    pub const CONTROLLERS: &'static str = "c1,c2";
    pub const ROUTERS: &'static str = "r1";
    /// Whom the harness's `ctl` and library clients act as: the operator's user name, as
    /// the controller records it (its seed file is `operator/alice.nk`).
    pub const OPERATOR_NAME: &'static str = "alice";
    /// alice holds both grants (`exec`, `port-forward`); bob holds none, so a test can see
    /// the server refuse a session to an operator without the grant.
    pub const OPERATORS: &'static str = "alice,bob";
    pub const UNGRANTED_OPERATOR: &'static str = "bob";
    pub const VIEWERS: &'static str = "carol";
}

/// The operator seed of each server running in `Mode::Roles`, by its URL (unique: each
/// server has its own port). `ctl` and `connect` take only a URL, as every test calls
/// them; this is how they know whom to act as.
static OPERATOR_SEEDS: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The seed the harness's clients of the server at `url` log in with, if it runs roles.
pub fn operator_seed(url: &str) -> Option<PathBuf> {
    lock(&OPERATOR_SEEDS).get(url).cloned()
}

/// A process of the binary logs in with `seed`, or as nobody (whatever the test's own
/// environment holds).
fn login(command: &mut Command, seed: Option<PathBuf>) -> &mut Command {
    match seed {
        Some(seed) => command.env("NATS_NKEY", seed),
        None => command.env_remove("NATS_NKEY"),
    }
}

/// Runs `quarterdeck auth init` into `dir` for the harness's users and an agent per host;
/// returns the `authorization` block it wrote.
fn auth_init(dir: &Path, hosts: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["auth", "init", "--dir"])
        .arg(dir)
        .args(["--controllers", Users::CONTROLLERS, "--routers", Users::ROUTERS])
        .args(["--operators", Users::OPERATORS, "--viewers", Users::VIEWERS])
        .args(["--hosts", &hosts.join(",")])
        .output()
        .expect("quarterdeck auth init");
    assert!(out.status.success(), "auth init: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN)
        .args(["auth", "grant", "--dir"])
        .arg(dir)
        .args([Users::OPERATOR_NAME, "exec", "port-forward"])
        .output()
        .expect("quarterdeck auth grant");
    assert!(out.status.success(), "auth grant: {}", String::from_utf8_lossy(&out.stderr));
    let conf = dir.join("nats-auth.conf");
    fs::read_to_string(&conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display()))
}

// ---------------------------------------------------------------------------------------
// Processes of the built binary

/// A child process of the `quarterdeck` binary, its stdout and stderr in files in the test
/// directory. Dropping it kills it.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub stderr: PathBuf,
}

impl Proc {
    /// Runs `quarterdeck ARGS` with `NATS_URL` pointing at the server, as nobody: on a
    /// server with roles the server refuses it.
    pub fn spawn(nats: &NatsServer, name: &str, args: &[&str]) -> Proc {
        Proc::spawn_env(nats, name, None, args)
    }

    /// `spawn`, logged in as `who` (`role/name`) when the server runs roles.
    pub fn spawn_as(nats: &NatsServer, name: &str, who: &str, args: &[&str]) -> Proc {
        Proc::spawn_env(nats, name, nats.seed(who), args)
    }

    fn spawn_env(nats: &NatsServer, name: &str, seed: Option<PathBuf>, args: &[&str]) -> Proc {
        let n = unique();
        let stdout = nats.dir().join(format!("{name}.{n}.stdout.log"));
        let stderr = nats.dir().join(format!("{name}.{n}.stderr.log"));
        let out = fs::File::create(&stdout).expect("stdout log");
        let err = fs::File::create(&stderr).expect("stderr log");
        let child = login(&mut Command::new(BIN), seed)
            .args(args)
            .env("NATS_URL", nats.url())
            .env("QUARTERDECK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
        Proc { name: name.to_string(), child: Some(child), stderr }
    }

    /// `quarterdeck controller --id ID --heartbeat 300ms EXTRA...`.
    pub fn controller(nats: &NatsServer, id: &str, extra: &[&str]) -> Proc {
        let mut args = vec!["controller", "--id", id, "--heartbeat", HEARTBEAT];
        args.extend_from_slice(extra);
        Proc::spawn_as(nats, &format!("controller-{id}"), &format!("controller/{id}"), &args)
    }

    /// A sim agent with a fast heartbeat and fast container lifecycles.
    pub fn agent(nats: &NatsServer, host: &str, az: &str, ip: &str) -> Proc {
        Proc::agent_with(nats, host, az, ip, &[])
    }

    /// `agent` with extra flags (`--sim-cores 64`, ...).
    pub fn agent_with(nats: &NatsServer, host: &str, az: &str, ip: &str, extra: &[&str]) -> Proc {
        let mut args = vec![
            "agent",
            "--host-id",
            host,
            "--az",
            az,
            "--driver",
            "sim",
            "--ip",
            ip,
            "--heartbeat",
            HEARTBEAT,
            "--sim-speed",
            "20",
            "--sim-crash-rate",
            "0",
        ];
        args.extend_from_slice(extra);
        Proc::spawn_as(nats, &format!("agent-{host}"), &format!("agent/{host}"), &args)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to stop (SIGTERM) and waits for it.
    pub fn term(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        sigterm(child.id());
        Some(wait_or_kill(&mut child, Duration::from_secs(15)))
    }

    pub fn stderr_text(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// Waits until the process's stderr contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str) {
        let what = format!("{} logs {needle:?}", self.name);
        eventually(WAIT, &what, || {
            let text = self.stderr_text();
            if text.contains(needle) {
                return Ok(());
            }
            let alive = self.running();
            Err(format!("alive: {alive}; stderr:\n{}", tail(&text, 15)))
        });
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------------------
// ctl

#[derive(Debug)]
pub struct CtlOut {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CtlOut {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for CtlOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `quarterdeck ctl ARGS` against `url` and returns its exit status and output. A
/// `ctl` that hangs is killed after two minutes (its own timeouts are shorter). On a server
/// with roles it acts as the harness's operator.
pub fn ctl(url: &str, args: &[&str]) -> CtlOut {
    ctl_with_seed(url, operator_seed(url), args)
}

/// `ctl` as `who` (`role/name`) on `nats`, for a test of what another user may do.
pub fn ctl_as(nats: &NatsServer, who: &str, args: &[&str]) -> CtlOut {
    ctl_with_seed(&nats.url(), nats.seed(who), args)
}

/// `ctl` logged in with the seed file `seed`, or as nobody.
pub fn ctl_with_seed(url: &str, seed: Option<PathBuf>, args: &[&str]) -> CtlOut {
    let mut cmd = Command::new(BIN);
    login(&mut cmd, seed).arg("ctl").args(args).env("NATS_URL", url);
    run_captured(&mut cmd, Duration::from_secs(120))
}

/// Runs `cmd` with no input and its output captured, killed past `timeout`.
pub fn run_captured(cmd: &mut Command, timeout: Duration) -> CtlOut {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout pipe")));
    let err = reader(Box::new(child.stderr.take().expect("stderr pipe")));
    let status = wait_or_kill(&mut child, timeout);
    CtlOut { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// `ctl ARGS`, which must succeed; its stdout.
pub fn ctl_ok(url: &str, args: &[&str]) -> String {
    let out = ctl(url, args);
    assert!(out.ok(), "ctl {args:?} failed: {out}");
    out.stdout
}

/// `ctl ARGS --json`, which must succeed with one JSON document.
pub fn ctl_json(url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let stdout = ctl_ok(url, &all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("ctl {all:?}: not JSON ({e}): {stdout}"))
}

/// The alert `id` (`<rule>:<subject>`) as `ctl alerts --all --json` lists it, resolved ones
/// included.
pub fn alert_of(url: &str, id: &str) -> Option<Value> {
    let all = ctl_json(url, &["alerts", "--all"]);
    all["alerts"].as_array()?.iter().find(|a| a["id"] == id).cloned()
}

/// `ctl ARGS --json` for commands that print one JSON object per line (`events`).
pub fn ctl_json_lines(url: &str, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    ctl_ok(url, &all)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("ctl {all:?}: line not JSON ({e}): {l}")))
        .collect()
}

/// `ctl snapshot --json`, or the reason it failed (no controller yet, ...).
pub fn try_snapshot(url: &str) -> Result<Value, String> {
    let out = ctl(url, &["snapshot", "--json"]);
    if !out.ok() {
        return Err(out.to_string());
    }
    serde_json::from_str(&out.stdout).map_err(|e| format!("not JSON ({e}): {}", out.stdout))
}

pub fn snapshot(url: &str) -> Value {
    try_snapshot(url).unwrap_or_else(|e| panic!("ctl snapshot failed: {e}"))
}

/// `ctl` from async tests, off the runtime's worker threads.
pub async fn ctl_async(url: &str, args: &[&str]) -> CtlOut {
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ctl(&url, &args)
    })
    .await
    .expect("ctl task")
}

pub async fn ctl_ok_async(url: &str, args: &[&str]) -> String {
    let out = ctl_async(url, args).await;
    assert!(out.ok(), "ctl {args:?} failed: {out}");
    out.stdout
}

/// Fails unless the audit trail holds a `verb` command whose request `matches`, recorded
/// under the user the harness's clients act as (`ctl whoami`): with roles on, the operator
/// the server checked.
pub fn assert_audited_as_harness_user(url: &str, mode: Mode, verb: &str, matches: impl Fn(&Value) -> bool) {
    let me = ctl_json(url, &["whoami"]);
    let user = me["user"].as_str().unwrap_or_else(|| panic!("whoami: {me}")).to_string();
    if mode == Mode::Roles {
        assert_eq!(user, Users::OPERATOR_NAME, "who the controller sees with roles on");
    }
    let audit = ctl_json_lines(url, &["audit", "--since", "1h"]);
    assert!(
        audit.iter().any(|r| r["verb"] == verb && r["by"] == user.as_str() && matches(&r["request"])),
        "no {verb} by {user} in the audit: {audit:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Reading snapshots (JSON, as `ctl snapshot --json` prints them)

pub fn revision(snap: &Value) -> u64 {
    snap["revision"].as_u64().unwrap_or_else(|| panic!("no revision in {snap}"))
}

pub fn list<'a>(snap: &'a Value, key: &str) -> &'a Vec<Value> {
    snap[key].as_array().unwrap_or_else(|| panic!("no {key} list in {snap}"))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// The instances of one app.
pub fn instances_of<'a>(snap: &'a Value, app: &str) -> Vec<&'a Value> {
    list(snap, "instances").iter().filter(|i| i["app"] == app).collect()
}

/// `(id, state)` of every instance of one app, sorted.
pub fn instance_states(snap: &Value, app: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = instances_of(snap, app)
        .iter()
        .map(|i| (str_of(i, "id").to_string(), str_of(i, "state").to_string()))
        .collect();
    v.sort();
    v
}

pub fn running_count(snap: &Value, app: &str) -> usize {
    instances_of(snap, app).iter().filter(|i| i["state"] == "running").count()
}

pub fn host_state<'a>(snap: &'a Value, host: &str) -> Option<&'a str> {
    list(snap, "hosts").iter().find(|h| h["id"] == host).and_then(|h| h["state"].as_str())
}

/// The parts of a snapshot that move only with revisions: everything but metrics and
/// heartbeat times.
pub fn without_metrics(snap: &Value) -> Value {
    let mut v = snap.clone();
    if let Some(hosts) = v["hosts"].as_array_mut() {
        for h in hosts {
            if let Some(o) = h.as_object_mut() {
                for k in ["metrics", "cpu_pct", "mem_pct", "last_heartbeat"] {
                    o.remove(k);
                }
            }
        }
    }
    if let Some(instances) = v["instances"].as_array_mut() {
        for i in instances {
            if let Some(o) = i.as_object_mut() {
                o.remove("cpu_pct");
                o.remove("mem_used_mb");
            }
        }
    }
    v
}

/// A fleet without the values that carry no revision (metrics, heartbeat times), for
/// comparing a replica with a snapshot.
pub fn fleet_without_metrics(fleet: &Fleet) -> Fleet {
    let mut f = fleet.clone();
    for h in f.hosts.values_mut() {
        h.metrics = Default::default();
        h.last_heartbeat = 0;
    }
    for i in f.instances.values_mut() {
        i.cpu_pct = 0.0;
        i.mem_used_mb = 0;
    }
    f
}

// ---------------------------------------------------------------------------------------
// Pollers

/// Polls `check` until it returns `Ok`, or panics after `timeout` with what it last said.
pub fn eventually<T>(timeout: Duration, what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    match try_eventually(timeout, check) {
        Ok(v) => v,
        Err(last) => panic!("timed out after {timeout:?} waiting for: {what}\nlast seen: {last}"),
    }
}

/// `eventually`, giving back the last failure instead of panicking, for a caller that has
/// more to say first.
pub fn try_eventually<T>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() > deadline => return Err(last),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// The async `eventually`.
pub async fn eventually_async<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if tokio::time::Instant::now() > deadline => {
                panic!("timed out after {timeout:?} waiting for: {what}\nlast seen: {last}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Turns a condition into the `Result` the pollers take.
pub fn check(ok: bool, otherwise: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(otherwise()) }
}

// ---------------------------------------------------------------------------------------
// The plane: nats-server, a controller and two sim agents

/// How to start the plane.
#[derive(Debug, Clone)]
pub struct PlaneConfig {
    /// Extra controller flags. The default keeps hosts from going lost on a loaded machine
    /// (the heartbeat is 300 ms); tests of liveness set their own thresholds.
    pub controller: Vec<&'static str>,
    /// Open, or every process its own user.
    pub mode: Mode,
}

impl Default for PlaneConfig {
    fn default() -> Self {
        PlaneConfig { controller: vec!["--stale-after", "5", "--lost-after", "100"], mode: Mode::Open }
    }
}

/// The hosts of the plane: id, AZ, address (sim containers get .31 and up in its /24; no
/// packet is ever sent to them).
pub const HOSTS: [(&str, &str, &str); 2] = [("h1", "az-1", "127.0.1.1"), ("h2", "az-2", "127.0.2.1")];

/// A nats-server, a controller (`c1`) and two sim agents (`h1`, `h2`), with both hosts up.
/// Fields drop in order: agents and controller are killed before the server.
pub struct Plane {
    pub agents: Vec<Proc>,
    pub controller: Proc,
    pub config: PlaneConfig,
    pub nats: NatsServer,
}

impl Plane {
    pub fn start(test: &str, config: PlaneConfig) -> Option<Plane> {
        let hosts: Vec<&str> = HOSTS.iter().map(|(h, _, _)| *h).collect();
        let nats = NatsServer::start_mode(test, config.mode, &hosts)?;
        let controller = Proc::controller(&nats, "c1", &config.controller);
        let agents = HOSTS.iter().map(|(h, az, ip)| Proc::agent(&nats, h, az, ip)).collect();
        let plane = Plane { agents, controller, config, nats };
        plane.wait_hosts_up();
        Some(plane)
    }

    pub fn url(&self) -> String {
        self.nats.url()
    }

    /// Kills the controller with SIGKILL (if it still runs) and starts it again, with the
    /// plane's flags.
    pub fn restart_controller(&mut self, id: &str) {
        self.controller.kill9();
        self.controller = Proc::controller(&self.nats, id, &self.config.controller);
    }

    /// Waits until the controller answers and both hosts are up.
    pub fn wait_hosts_up(&self) -> Value {
        eventually(WAIT, "a snapshot with both hosts up", || {
            let snap = try_snapshot(&self.url())?;
            let up = HOSTS.iter().all(|(h, _, _)| host_state(&snap, h) == Some("up"));
            check(up, || format!("hosts: {}", snap["hosts"]))?;
            Ok(snap)
        })
    }

    /// `ctl deploy --wait` of a new app; returns ctl's output, after checking it succeeded.
    pub fn deploy(&self, app: &str, version: &str, instances: u32) -> String {
        let n = instances.to_string();
        ctl_ok(&self.url(), &deploy_args(app, version, &n))
    }

    pub async fn deploy_async(&self, app: &str, version: &str, instances: u32) -> String {
        let n = instances.to_string();
        ctl_ok_async(&self.url(), &deploy_args(app, version, &n)).await
    }

    pub fn snapshot(&self) -> Value {
        snapshot(&self.url())
    }
}

/// The `ctl` arguments of a waited deploy with the tests' usual image and port.
pub fn deploy_args<'a>(app: &'a str, version: &'a str, instances: &'a str) -> Vec<&'a str> {
    vec![
        "deploy",
        "--app",
        app,
        "--version",
        version,
        "--instances",
        instances,
        "--image",
        "tomcat:8.5",
        "--port",
        "8080",
        "--cpu",
        "0.5",
        "--memory",
        "512M",
        "--wait",
        "--wait-timeout",
        "60s",
    ]
}

// ---------------------------------------------------------------------------------------
// Library clients

/// A NATS client of the library, connected (it waits for the server if needed). On a
/// server with roles it logs in as the harness's operator.
pub async fn connect(url: &str, name: &str) -> NatsBus {
    connect_with_seed(url, operator_seed(url), name).await
}

/// A library client logged in as `who` (`role/name`) on `nats`.
pub async fn connect_as(nats: &NatsServer, who: &str) -> NatsBus {
    connect_with_seed(&nats.url(), nats.seed(who), &format!("test/{who}")).await
}

async fn connect_with_seed(url: &str, nkey: Option<PathBuf>, name: &str) -> NatsBus {
    let opts = NatsOptions { url: url.to_string(), name: name.to_string(), nkey, ..NatsOptions::default() };
    let bus = NatsBus::connect(&opts).await.expect("NatsBus::connect");
    let mut conn = bus.connection();
    tokio::time::timeout(WAIT, conn.wait_for(Connection::is_connected))
        .await
        .expect("connected to nats-server in time")
        .expect("connection watch open");
    bus
}

/// A snapshot through the library, as the cockpit asks for it.
pub async fn library_snapshot(bus: &dyn Bus) -> Result<Fleet, String> {
    quarterdeck::client::snapshot::fetch_fleet(bus, "test", Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())
}

/// What each agent of the plane reports running, from its next heartbeat: the truth about
/// containers, whatever the controller believes.
pub fn agent_reports(url: &str) -> BTreeMap<String, Vec<InstanceReport>> {
    block_on(async {
        let bus = connect(url, "test/heartbeats").await;
        let mut sub = bus.subscribe(subjects::HB_ALL).await.expect("subscribe to heartbeats");
        let mut reports = BTreeMap::new();
        let collect = async {
            while reports.len() < HOSTS.len() {
                let Some(msg) = sub.next().await else { break };
                if let Ok(env) = decode::<Heartbeat>(&msg.payload) {
                    reports.insert(env.body.host.id.clone(), env.body.instances);
                }
            }
        };
        let heard = tokio::time::timeout(WAIT, collect).await;
        assert!(heard.is_ok(), "no heartbeat from every agent within {WAIT:?}: {:?}", reports.keys());
        reports
    })
}

/// Runs a future on a fresh runtime, for library calls from the sync tests.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

// ---------------------------------------------------------------------------------------
// A headless cockpit backend

/// What the follower saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Snapshot(u64),
    History(usize),
    /// `apply_event` said the replica missed an event.
    Gap(Gap),
    /// A `BackendRequest::Resync` sent to the backend, and why.
    Resync(&'static str),
    Connected,
    Disconnected,
    Problem(String),
}

#[derive(Default)]
pub struct Followed {
    pub replica: Replica,
    pub notes: Vec<Note>,
    /// When each note was taken.
    pub times: Vec<Instant>,
    /// The most events the backend's follow said were waiting behind the replica.
    pub max_pending: u64,
}

impl Followed {
    fn note(&mut self, note: Note) {
        self.notes.push(note);
        self.times.push(Instant::now());
    }

    /// Index of the first note at or after `from` that matches.
    pub fn find(&self, from: usize, pred: impl Fn(&Note) -> bool) -> Option<usize> {
        self.notes.iter().enumerate().skip(from).find(|(_, n)| pred(n)).map(|(i, _)| i)
    }
}

/// The cockpit's backend (`backend::spawn`) feeding a `Replica` the way `App::update` does:
/// snapshot, history, events (a gap sends `BackendRequest::Resync`), heartbeats, beacons and
/// connection changes. Runs on its own task; tests read it with `with`.
pub struct Follower {
    state: Arc<Mutex<Followed>>,
    task: tokio::task::JoinHandle<()>,
    /// Held by `hold`: the follower takes no update while it is (a cockpit busy elsewhere).
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Follower {
    pub fn start(bus: Arc<dyn Bus>) -> Follower {
        let BackendHandle { commands, mut updates, .. } = backend::spawn(bus, "cockpit/test@headless".into());
        let state = Arc::new(Mutex::new(Followed::default()));
        // The task owns the command sender: the backend runs as long as the task does.
        let (shared, resync) = (state.clone(), commands);
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let open = gate.clone();
        let task = tokio::spawn(async move {
            while let Some(update) = updates.recv().await {
                drop(open.lock().await);
                let now = now_ms();
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                match update {
                    Inbound::Feed(Feed::Snapshot(fleet)) => {
                        s.note(Note::Snapshot(fleet.revision));
                        s.replica.apply_snapshot(fleet, now);
                    }
                    Inbound::Feed(Feed::History(events)) => {
                        s.note(Note::History(events.len()));
                        s.replica.apply_history(events);
                    }
                    Inbound::Feed(Feed::Event(event)) => {
                        let resyncing = s.replica.sync == Sync::Resyncing;
                        if let Err(gap) = s.replica.apply_event(event, now) {
                            s.note(Note::Gap(gap));
                            if !resyncing {
                                s.note(Note::Resync("gap"));
                                let _ = resync.send(BackendRequest::Resync);
                            }
                        }
                    }
                    Inbound::Feed(Feed::Heartbeat(hb)) => s.replica.apply_heartbeat(&hb, now),
                    Inbound::Feed(Feed::Pending(pending)) => {
                        s.max_pending = s.max_pending.max(pending);
                        s.replica.note_pending(pending);
                    }
                    Inbound::Feed(Feed::Beacon(revision)) => {
                        // Behind at two beacons in a row: the last event was lost.
                        let lost_last = s.replica.note_beacon_at(revision, now);
                        if lost_last {
                            s.note(Note::Resync("beacon"));
                            let _ = resync.send(BackendRequest::Resync);
                        }
                    }
                    Inbound::Feed(Feed::Connection(state)) => {
                        if state.is_connected() {
                            s.note(Note::Connected);
                        } else {
                            s.replica.mark_resyncing();
                            s.note(Note::Disconnected);
                        }
                    }
                    Inbound::Feed(Feed::Problem(text)) => s.note(Note::Problem(text)),
                    // Command results and anything newer say nothing about the replica.
                    _ => {}
                }
            }
        });
        Follower { state, task, gate }
    }

    /// Stops the follower taking updates until the guard is dropped: the backend's queue
    /// fills and the backend must hold back, as behind a cockpit busy drawing.
    pub async fn hold(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.gate.clone().lock_owned().await
    }

    fn lock(&self) -> MutexGuard<'_, Followed> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn with<R>(&self, f: impl FnOnce(&Followed) -> R) -> R {
        f(&self.lock())
    }

    pub fn notes(&self) -> Vec<Note> {
        self.lock().notes.clone()
    }

    /// Whether the replica is live and equal to `fleet` (metrics aside); if not, why.
    pub fn matches(&self, fleet: &Fleet) -> Result<(), String> {
        let s = self.lock();
        if s.replica.sync != Sync::Live {
            return Err(format!("replica is {:?} at revision {}", s.replica.sync, s.replica.fleet.revision));
        }
        let (mine, theirs) = (fleet_without_metrics(&s.replica.fleet), fleet_without_metrics(fleet));
        if mine != theirs {
            return Err(format!(
                "replica at revision {} differs from the snapshot at {}:\nreplica:  {}\nsnapshot: {}",
                mine.revision,
                theirs.revision,
                serde_json::to_string(&mine).unwrap_or_default(),
                serde_json::to_string(&theirs).unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// Waits until the replica is live and equal to a fresh snapshot taken through `bus`;
    /// returns that snapshot.
    pub async fn wait_in_step(&self, bus: &dyn Bus, what: &str) -> Fleet {
        eventually_async(WAIT, what, || async {
            let fleet = library_snapshot(bus).await?;
            self.matches(&fleet)?;
            Ok(fleet)
        })
        .await
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// A bus that loses one event

/// Wraps a `NatsBus`; once armed, the `nth` message of its `qd.v1.evt.>` subscription is
/// dropped (never delivered), and its revision recorded. Everything else passes through.
pub struct DropOneEvent {
    inner: NatsBus,
    nth: usize,
    pub armed: Arc<AtomicBool>,
    seen: Arc<AtomicUsize>,
    pub dropped: Arc<Mutex<Option<u64>>>,
}

impl DropOneEvent {
    pub fn new(inner: NatsBus, nth: usize) -> DropOneEvent {
        DropOneEvent {
            inner,
            nth,
            armed: Arc::new(AtomicBool::new(false)),
            seen: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(Mutex::new(None)),
        }
    }

    /// From now on, count event messages and drop the `nth`.
    pub fn arm(&self) {
        self.seen.store(0, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn dropped_rev(&self) -> Option<u64> {
        *self.dropped.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Bus for DropOneEvent {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.inner.publish(subject, payload).await
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        let sub = self.inner.subscribe(pattern).await?;
        if pattern != subjects::EVT_ALL {
            return Ok(sub);
        }
        let (armed, seen, dropped, nth) =
            (self.armed.clone(), self.seen.clone(), self.dropped.clone(), self.nth);
        Ok(Subscription::new(sub.filter(move |msg| {
            let mut keep = true;
            if armed.load(Ordering::SeqCst) && seen.fetch_add(1, Ordering::SeqCst) + 1 == nth {
                keep = false;
                let rev = decode::<Event>(&msg.payload).map(|e| e.body.rev).ok();
                *dropped.lock().unwrap_or_else(|p| p.into_inner()) = rev;
            }
            futures_util::future::ready(keep)
        })))
    }

    async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<Bytes, BusError> {
        self.inner.request(subject, payload, timeout).await
    }

    fn connection(&self) -> watch::Receiver<Connection> {
        self.inner.connection()
    }

    fn max_payload(&self) -> usize {
        self.inner.max_payload()
    }

    fn user(&self) -> String {
        self.inner.user()
    }

    fn describe(&self) -> String {
        format!("{} (dropping event #{})", self.inner.describe(), self.nth)
    }
}
