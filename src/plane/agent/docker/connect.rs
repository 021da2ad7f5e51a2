//! Reaching the Docker engine: `DOCKER_HOST` or the local socket, then the API version
//! negotiated down to what the engine speaks (Debian's dockerd 20.10 speaks 1.41, older
//! than bollard's default).

use std::time::Duration;

use bollard::Docker;
use bollard::models::SystemInfo;

use super::Engine;

/// How long the first contact may take before the agent gives up with a clear error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn engine_address() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

pub(super) async fn connect() -> Result<(Docker, Engine, SystemInfo), String> {
    let address = engine_address();
    let unreachable = |e: &dyn std::fmt::Display| {
        format!(
            "cannot reach the Docker engine at {address}: {e} \
             (is dockerd running? DOCKER_HOST selects another engine)"
        )
    };
    let docker = Docker::connect_with_defaults().map_err(|e| unreachable(&e))?;
    let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| unreachable(&format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| unreachable(&e))?;
    let info = tokio::time::timeout(CONNECT_TIMEOUT, docker.info())
        .await
        .map_err(|_| unreachable(&format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| unreachable(&e))?;
    let version = docker.client_version();
    let engine = Engine {
        cpu_cores: info.ncpu.unwrap_or(1).clamp(1, u32::MAX as i64) as u32,
        memory_mb: info.mem_total.unwrap_or(0).max(0) as u64 / (1024 * 1024),
        storage_driver: info.driver.clone().unwrap_or_default(),
        root_dir: info.docker_root_dir.clone().unwrap_or_else(|| "/var/lib/docker".into()),
        api_version: format!("{}.{}", version.major_version, version.minor_version),
        server_version: info.server_version.clone().unwrap_or_default(),
    };
    Ok((docker, engine, info))
}

/// Docker's "no such ..." answer, which some callers treat as "already gone".
pub(super) fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(err, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

/// The engine's own message without bollard's wrapping, for errors people read.
pub(super) fn message(err: &bollard::errors::Error) -> String {
    match err {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
