//! Reading one container's inspect answer: whether it runs, how it ended, when it started,
//! and where it is reached. Used after a start and once per adopted container, never per
//! period.

use std::net::Ipv4Addr;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt;

use super::{connect, network};
use crate::protocol::ExitInfo;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspected {
    pub id: String,
    pub running: bool,
    /// Docker's own word: created, running, exited ...
    pub status: String,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    /// The host port bound for the container port (running), or asked for (pinned).
    pub host_port: Option<u16>,
    /// The container's address on the VLAN network.
    pub vlan_ip: Option<Ipv4Addr>,
    pub image: String,
    pub cmd: Option<Vec<String>>,
    pub labels: std::collections::HashMap<String, String>,
}

pub async fn inspect(
    docker: &Docker,
    container: &str,
    container_port: u16,
    vlan: Option<&str>,
) -> Result<Inspected, bollard::errors::Error> {
    docker.inspect_container(container, None).await.map(|r| read(&r, container_port, vlan))
}

pub fn read(r: &ContainerInspectResponse, container_port: u16, vlan: Option<&str>) -> Inspected {
    let state = r.state.clone().unwrap_or_default();
    let settings = r.network_settings.as_ref();
    // A running container shows the bound port; a stopped one only what was asked for,
    // which is the same port since the agent pins it.
    let host_port =
        network::published_port(settings.and_then(|s| s.ports.as_ref()), container_port).or_else(|| {
            network::published_port(
                r.host_config.as_ref().and_then(|h| h.port_bindings.as_ref()),
                container_port,
            )
        });
    let vlan_ip = vlan.and_then(|name| {
        let ep = settings?.networks.as_ref()?.get(name)?;
        let assigned = ep.ip_address.as_deref().filter(|a| !a.is_empty());
        let asked = ep.ipam_config.as_ref().and_then(|c| c.ipv4_address.as_deref());
        assigned.or(asked)?.parse().ok()
    });
    let config = r.config.clone().unwrap_or_default();
    Inspected {
        id: r.id.clone().unwrap_or_default(),
        running: state.running.unwrap_or(false),
        status: state.status.map(|s| s.to_string()).unwrap_or_default(),
        exit_code: state.exit_code.unwrap_or(0),
        oom_killed: state.oom_killed.unwrap_or(false),
        started_at: state.started_at.as_deref().and_then(rfc3339_ms),
        finished_at: state.finished_at.as_deref().and_then(rfc3339_ms),
        host_port,
        vlan_ip,
        image: config.image.unwrap_or_default(),
        cmd: config.cmd,
        labels: config.labels.unwrap_or_default(),
    }
}

impl Inspected {
    /// How the container last ended: `None` while it runs or before it ever ran.
    pub fn exit(&self) -> Option<ExitInfo> {
        let ended = !self.running && matches!(self.status.as_str(), "exited" | "dead");
        ended.then(|| ExitInfo::new(self.exit_code as i32, self.oom_killed, self.finished_at.unwrap_or(0)))
    }
}

/// The exit code in the status `docker ps` shows: `Exited (3) 5 seconds ago`.
pub fn exit_code_of_status(status: &str) -> Option<i32> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

/// Why a container is not running, in words, with the last lines it printed.
pub async fn exit_reason(docker: &Docker, container: &str, i: &Inspected) -> String {
    let mut reason = format!("container {} (exit code {})", i.status, i.exit_code);
    if i.oom_killed {
        reason.push_str(", killed for running out of memory");
    }
    let opts = LogsOptions { stdout: true, stderr: true, tail: "5".into(), ..Default::default() };
    let lines = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        docker
            .logs(container, Some(opts))
            .filter_map(|l| async move { l.ok() })
            .map(|l| String::from_utf8_lossy(&l.into_bytes()).trim().to_string())
            .collect::<Vec<_>>()
            .await
    })
    .await
    .unwrap_or_default();
    let lines: Vec<String> = lines.into_iter().filter(|l| !l.is_empty()).collect();
    if !lines.is_empty() {
        reason.push_str(&format!("; last output: {}", lines.join(" | ")));
    }
    reason
}

/// A wrapper that maps Docker's "no such container" to `None`.
pub async fn inspect_opt(
    docker: &Docker,
    container: &str,
    container_port: u16,
    vlan: Option<&str>,
) -> Result<Option<Inspected>, String> {
    match inspect(docker, container, container_port, vlan).await {
        Ok(i) => Ok(Some(i)),
        Err(e) if connect::is_not_found(&e) => Ok(None),
        Err(e) => Err(connect::message(&e)),
    }
}

// One reader of RFC 3339 times for Docker's and the command line's (`ctl logs --since`).
pub use crate::protocol::clock::rfc3339_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_timestamps() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(rfc3339_ms("2026-11-25T09:30:00.123456789Z"), Some(1_795_599_000_123));
        assert_eq!(rfc3339_ms("2026-11-25T10:30:00.5+01:00"), Some(1_795_599_000_500));
        assert_eq!(rfc3339_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339_ms("garbage"), None);
    }

    #[test]
    fn how_a_container_ended() {
        let mut i = Inspected {
            status: "exited".into(),
            exit_code: 137,
            oom_killed: true,
            finished_at: Some(9),
            ..Inspected::default()
        };
        assert_eq!(i.exit(), Some(ExitInfo { code: 137, signal: Some(9), oom: true, at: 9 }));
        i.status = "created".into();
        assert_eq!(i.exit(), None, "never ran");
        i.status = "running".into();
        i.running = true;
        assert_eq!(i.exit(), None);
        assert_eq!(exit_code_of_status("Exited (3) 5 seconds ago"), Some(3));
        assert_eq!(exit_code_of_status("Up 2 minutes"), None);
    }
}
