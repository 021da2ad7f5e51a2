//! Applying a configuration to a real nginx: write it aside, check it with `nginx -t`,
//! move it into place atomically, then reload. A configuration that fails the check is
//! never loaded; the last good one keeps serving.
//!
//! By default the router runs nginx itself (`-p DIR -c DIR/nginx.conf`, daemonized, pid and
//! logs inside DIR), and adopts the nginx it finds running from DIR after a restart of the
//! router. With a reload command it reloads an nginx the host already manages instead.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::process::Command;

use super::Applier;
use super::config::Rendered;

pub struct NginxApplier {
    dir: PathBuf,
    nginx: PathBuf,
    reload_cmd: Option<String>,
    listen: String,
}

impl NginxApplier {
    pub fn new(dir: &Path, nginx: &Path, reload_cmd: Option<String>, listen: &str) -> Result<Self, String> {
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("cannot create {}/{sub}: {e}", dir.display()))?;
        }
        let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(NginxApplier { dir, nginx: nginx.to_path_buf(), reload_cmd, listen: listen.to_string() })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    /// `nginx -p DIR -e DIR/logs/error.log` plus `args`; `-e` keeps nginx away from the
    /// distribution's log paths.
    async fn nginx(&self, args: &[&str]) -> Result<(), String> {
        let error_log = self.dir.join("logs/error.log");
        let out = Command::new(&self.nginx)
            .arg("-p")
            .arg(&self.dir)
            .arg("-e")
            .arg(&error_log)
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.nginx.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join(" | "))
        }
    }

    /// The pid of the nginx master running from this directory, if one is.
    pub fn running_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.join("nginx.pid")).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline).contains("nginx").then_some(pid)
    }

    /// What asks the nginx running from this directory to reopen its log files (`nginx -s
    /// reopen`, which finds the master by the configuration's pid file), for the traffic
    /// log's rotation. Blocking: the tailer calls it from its blocking pass. Nothing to do
    /// when no nginx runs from here: the next one opens the new file itself.
    pub fn log_reopener(&self) -> impl FnMut() -> Result<(), String> + Send + 'static {
        let (dir, nginx) = (self.dir.clone(), self.nginx.clone());
        move || {
            if !dir.join("nginx.pid").exists() {
                return Ok(());
            }
            let out = std::process::Command::new(&nginx)
                .arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(dir.join("logs/error.log"))
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .args(["-s", "reopen"])
                .output()
                .map_err(|e| format!("cannot run {}: {e}", nginx.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("nginx -s reopen: {}", String::from_utf8_lossy(&out.stderr).trim()))
            }
        }
    }

    /// Stops the nginx this router started (graceful: in-flight requests finish).
    pub async fn stop(&self) {
        if self.reload_cmd.is_none() && self.running_pid().is_some() {
            let conf = self.config_path();
            let conf = conf.to_string_lossy();
            let _ = self.nginx(&["-c", &conf, "-s", "quit"]).await;
        }
    }
}

#[async_trait]
impl Applier for NginxApplier {
    fn listen(&self) -> String {
        self.listen.clone()
    }

    async fn apply(&mut self, rendered: &Rendered) -> Result<(), String> {
        let candidate = self.dir.join("nginx.conf.new");
        tokio::fs::write(&candidate, &rendered.config)
            .await
            .map_err(|e| format!("cannot write {}: {e}", candidate.display()))?;
        let candidate_s = candidate.to_string_lossy().to_string();
        if let Err(e) = self.nginx(&["-t", "-q", "-c", &candidate_s]).await {
            let _ = tokio::fs::remove_file(&candidate).await;
            return Err(format!("nginx -t refused the new configuration, keeping the last good one: {e}"));
        }
        let conf = self.config_path();
        tokio::fs::rename(&candidate, &conf)
            .await
            .map_err(|e| format!("cannot move the config into place: {e}"))?;
        let conf_s = conf.to_string_lossy().to_string();
        if let Some(cmd) = &self.reload_cmd {
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .output()
                .await
                .map_err(|e| format!("reload command: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "reload command failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            return Ok(());
        }
        if self.running_pid().is_some() {
            self.nginx(&["-c", &conf_s, "-s", "reload"])
                .await
                .map_err(|e| format!("nginx reload failed: {e}"))
        } else {
            self.nginx(&["-c", &conf_s]).await.map_err(|e| format!("nginx did not start: {e}"))
        }
    }
}
