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
        instances: 0,
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

/// Feeds backend updates into the app, carrying out its effects, until `done` holds.
pub async fn pump(
    app: &mut quarterdeck::app::App,
    handle: &mut quarterdeck::backend::BackendHandle,
    what: &str,
    mut done: impl FnMut(&quarterdeck::app::App) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(app) {
        let update = tokio::time::timeout_at(deadline, handle.updates.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
            .expect("backend open");
        app.now = quarterdeck::protocol::clock::now_ms();
        for effect in app.apply(update) {
            carry_out(handle, effect);
        }
    }
}

/// Does what the event loop does with an effect that concerns the backend; the others
/// (quit, clipboard, files) have no backend side.
pub fn carry_out(handle: &quarterdeck::backend::BackendHandle, effect: quarterdeck::actions::Effect) {
    use quarterdeck::actions::Effect;
    use quarterdeck::backend::BackendRequest;
    match effect {
        Effect::Send(cmd) => handle.commands.send(BackendRequest::Send(cmd)).expect("backend open"),
        Effect::Resync => handle.commands.send(BackendRequest::Resync).expect("backend open"),
        Effect::Upload(req) => handle.commands.send(BackendRequest::Upload(req)).expect("backend open"),
        Effect::Forward(start) => handle.commands.send(BackendRequest::Forward(start)).expect("backend open"),
        Effect::ForwardStop(s) => handle.commands.send(BackendRequest::ForwardStop(s)).expect("backend open"),
        Effect::Export(req) => handle.commands.send(BackendRequest::Export(req)).expect("backend open"),
        _ => {}
    }
}
