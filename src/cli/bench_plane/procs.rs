//! The processes the plane bench runs besides itself: a nats-server of its own (unless it
//! was given one) and the controller. Both are child processes, killed when their guard
//! drops, so every way out of the bench (an error, a timeout, Ctrl-C) stops them.

use std::ffi::OsString;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::BusArgs;

/// How long a nats-server may take to say it is ready.
const NATS_READY: Duration = Duration::from_secs(30);

/// A directory of the bench's own under the system temp dir (the nats-server's store and
/// the logs), removed when dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn create() -> Result<WorkDir, String> {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("qd-bench-plane-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(WorkDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Kills a child and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a log file, for an error message.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// CPU seconds (user and system) a process has used, from /proc/<pid>/stat: `self` for
/// this one. 0 where there is no /proc. The kernel counts them in USER_HZ ticks, 100 a
/// second on every Linux this runs on.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name in parentheses may hold spaces: the fields follow its last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime: the 14th and 15th fields, the 12th and 13th after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The nats-server to start: `$NATS_SERVER_BIN`, else `nats-server` on `PATH`.
pub fn nats_server_bin() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        return match bin.is_file() {
            true => Ok(bin),
            false => Err(format!("NATS_SERVER_BIN is {}, which is not a file", bin.display())),
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no nats-server: give --nats URL, put nats-server (2.10 or newer) on PATH, or set NATS_SERVER_BIN"
                .to_string()
        })
}

/// A nats-server with JetStream on 127.0.0.1, its store in the bench's work dir.
pub struct LocalNats {
    child: Child,
    url: String,
}

impl LocalNats {
    pub async fn start(bin: &Path, dir: &Path) -> Result<LocalNats, String> {
        // A port picked free may be taken before the server binds it: try another then.
        let mut errors = Vec::new();
        for attempt in 1..=3 {
            match Self::launch(bin, dir, attempt).await {
                Ok(nats) => return Ok(nats),
                Err(e) => errors.push(e),
            }
        }
        Err(format!("nats-server did not start:\n{}", errors.join("\n---\n")))
    }

    async fn launch(bin: &Path, dir: &Path, attempt: u32) -> Result<LocalNats, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let log = dir.join(format!("nats-server.{attempt}.log"));
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("jetstream"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        // Owned from here: an early return kills it.
        let mut nats = LocalNats { child, url: format!("nats://127.0.0.1:{port}") };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + NATS_READY;
        loop {
            if let Ok(Some(status)) = nats.child.try_wait() {
                return Err(format!("nats-server exited ({status}):\n{}", log_tail(&log, 20)));
            }
            // "Server is ready" comes once JetStream has started and the listener is up.
            let ready = fs::read_to_string(&log).is_ok_and(|t| t.contains("Server is ready"));
            if ready && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return Ok(nats);
            }
            if Instant::now() > deadline {
                return Err(format!("nats-server not ready after {NATS_READY:?}:\n{}", log_tail(&log, 20)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// How the controller is started: this very binary's `quarterdeck controller`, the code
/// path an operator runs, in a process of its own so that its memory is its own and a
/// restart is a real kill -9.
pub struct ControllerSpec {
    pub exe: PathBuf,
    pub url: String,
    /// The bus flags the bench was given (credentials, TLS), passed on.
    pub bus_flags: Vec<OsString>,
    /// Secrets go through the environment, not the command line `ps` shows.
    pub bus_env: Vec<(&'static str, String)>,
    pub extra: Vec<String>,
    pub log: PathBuf,
}

impl ControllerSpec {
    pub fn new(bus: &BusArgs, url: &str, extra: Vec<String>, log: PathBuf) -> Result<ControllerSpec, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
        let mut bus_flags: Vec<OsString> = Vec::new();
        let paths = [
            ("--creds", &bus.creds),
            ("--tls-ca", &bus.tls_ca),
            ("--tls-cert", &bus.tls_cert),
            ("--tls-key", &bus.tls_key),
        ];
        for (flag, path) in paths {
            if let Some(p) = path {
                bus_flags.push(flag.into());
                bus_flags.push(p.clone().into_os_string());
            }
        }
        if let Some(user) = &bus.user {
            bus_flags.push("--user".into());
            bus_flags.push(user.into());
        }
        let mut bus_env = Vec::new();
        if let Some(p) = &bus.password {
            bus_env.push(("NATS_PASSWORD", p.clone()));
        }
        if let Some(t) = &bus.token {
            bus_env.push(("NATS_TOKEN", t.clone()));
        }
        Ok(ControllerSpec { exe, url: url.to_string(), bus_flags, bus_env, extra, log })
    }
}

/// The controller process, and the peak of its resident memory over every sample.
pub struct ControllerProc {
    child: Child,
    peak_kb: u64,
}

impl ControllerProc {
    pub fn spawn(spec: &ControllerSpec) -> Result<ControllerProc, String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|e| format!("{}: {e}", spec.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&spec.exe)
            .arg("controller")
            .arg("--nats")
            .arg(&spec.url)
            .args(&spec.bus_flags)
            .args(&spec.extra)
            .envs(spec.bus_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {} controller: {e}", spec.exe.display()))?;
        Ok(ControllerProc { child, peak_kb: 0 })
    }

    /// Takes the process's own peak (VmHWM) into the running maximum; returns it in MB.
    pub fn sample_peak_mb(&mut self) -> f64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0);
        self.peak_kb = self.peak_kb.max(kb);
        self.peak_kb as f64 / 1024.0
    }

    /// Kills the process (SIGKILL, as a crash would) and starts a new one on the same
    /// store; the peak is the new process's from then on.
    pub fn restart(&mut self, spec: &ControllerSpec) -> Result<(), String> {
        kill(&mut self.child);
        *self = ControllerProc::spawn(spec)?;
        Ok(())
    }

    /// CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.child.id().to_string())
    }

    /// `Some(why)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("the controller exited ({status})")),
            Ok(None) => None,
            Err(e) => Some(format!("cannot watch the controller: {e}")),
        }
    }
}

impl Drop for ControllerProc {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_and_a_missing_one_none() {
        // Spin until the kernel has counted a tick (10 ms), however loaded the machine.
        let started = Instant::now();
        while cpu_seconds("self") == 0.0 && started.elapsed() < Duration::from_secs(30) {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        assert!(cpu_seconds("self") > 0.0);
        assert_eq!(cpu_seconds("0"), 0.0);
    }
}
