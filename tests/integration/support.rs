//! Shared helpers for the integration tests.

use std::time::Duration;

use quarterdeck::plane::sandbox::{Sandbox, SandboxConfig};

/// A fast, quiet sandbox: no seed apps, no random crashes, quick heartbeats.
pub async fn fast_sandbox(hosts: usize) -> Sandbox {
    Sandbox::start(SandboxConfig {
        seed: 7,
        hosts,
        speed: 25.0,
        heartbeat_period: Duration::from_millis(200),
        crashes_per_hour: 0.0,
        seed_apps: false,
    })
    .await
    .expect("sandbox starts")
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
