//! The controller: desired plus actual state, the scheduler, deploy orchestration and the
//! health manager. It owns the fleet's revision: every change is one event with the next
//! `rev`, published in order.

pub mod alerts;
mod audit;
mod commands;
mod core;
mod deploy;
mod drain;
mod health;
mod image;
mod intake;
pub mod lease;
mod notes;
mod ops;
/// Also used by `bench --nats`, which plays the controller.
pub(crate) mod paging;
mod refusals;
pub mod releases;
mod repair;
mod router_wait;
mod scale;
mod secrets;
mod sessions;
/// The scheduler is pure and lives in `protocol`, so the cockpit can preview a placement.
pub use crate::protocol::scheduler;
pub mod store;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use crate::bus::Bus;
use crate::protocol::{Fleet, subjects};
use store::Store;

pub use self::audit::{decode_error as audit_decode_error, record as audit_record};
pub use self::commands::{build_app, check_route};
pub use self::core::{Controller, LeaseHold};
pub use self::sessions::record as session_record;

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The `source` stamped on every envelope the controller sends.
    pub source: String,
    /// The heartbeat period agents use unless their heartbeat says otherwise.
    pub heartbeat_period: Duration,
    /// Missed periods before a host is `stale`.
    pub stale_after: u32,
    /// Missed periods before a host is `lost` and its instances are placed again.
    pub lost_after: u32,
    /// How long one deploy step may take before the operation fails.
    pub step_timeout: Duration,
    /// How long an agent may take to accept a command.
    pub agent_timeout: Duration,
    /// The longest wait between restarts of a crashing instance.
    pub max_backoff: Duration,
    /// How long an instance must run before its crash backoff starts again from the bottom.
    pub stable_after: Duration,
    /// How long a route's backend may have no running instance before it is stale.
    pub route_stale_after: Duration,
    /// The alert rules' thresholds and the webhooks (`alerts/`).
    pub alerts: alerts::AlertConfig,
    /// The Prometheus metrics it keeps up to date (`--metrics-listen`), when any. Shared
    /// across terms: each term counts its loaded fleet afresh.
    pub metrics: Option<Arc<crate::plane::metrics::controller::ControllerMetrics>>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            source: "controller".into(),
            heartbeat_period: Duration::from_secs(2),
            stale_after: 3,
            lost_after: 10,
            step_timeout: Duration::from_secs(60),
            agent_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            stable_after: Duration::from_secs(30),
            route_stale_after: Duration::from_secs(10),
            alerts: alerts::AlertConfig::default(),
            metrics: None,
        }
    }
}

/// A started controller, which owns its tasks: `stop` ends them and waits until they have
/// ended; dropped, it aborts them. It reads as the `Controller` it started (a clone of
/// that is for sharing, and does not own the tasks).
pub struct ControllerHandle {
    controller: Controller,
}

impl std::ops::Deref for ControllerHandle {
    type Target = Controller;
    fn deref(&self) -> &Controller {
        &self.controller
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

impl Controller {
    /// Starts the controller's loops on the current tokio runtime: the request handler, the
    /// heartbeat and status intake, the event publisher and the health manager.
    pub async fn start(
        bus: Arc<dyn Bus>,
        config: ControllerConfig,
        initial: Fleet,
        store: Arc<dyn Store>,
        repository: Option<Arc<dyn crate::repository::Repository>>,
    ) -> Result<ControllerHandle, crate::bus::BusError> {
        Controller::start_with_secrets(bus, config, initial, store, repository, None).await
    }

    /// `start`, with the store `secret.set` writes values to (without one it is refused).
    pub async fn start_with_secrets(
        bus: Arc<dyn Bus>,
        config: ControllerConfig,
        initial: Fleet,
        store: Arc<dyn Store>,
        repository: Option<Arc<dyn crate::repository::Repository>>,
        secrets: Option<crate::secrets::Secrets>,
    ) -> Result<ControllerHandle, crate::bus::BusError> {
        let (ctl, events) = Controller::new(bus.clone(), config, initial, store, repository);
        if let Some(s) = secrets {
            ctl.set_secrets(s);
        }
        // Loaded before any task starts, so a failed load leaves nothing running.
        releases::start(&ctl).await.map_err(|e| crate::bus::BusError::Other(format!("releases: {e}")))?;
        // Subscribe before anything is published so that nothing is missed.
        let requests = bus.subscribe(subjects::CTL_ALL).await?;
        let heartbeats = bus.subscribe(subjects::HB_ALL).await?;
        let statuses = bus.subscribe(subjects::STATUS_ALL).await?;
        let routers = bus.subscribe(subjects::ROUTER_STATUS_ALL).await?;
        let sessions = bus.subscribe(subjects::SESSION_ALL).await?;
        ctl.spawn(core::publish_events(ctl.clone(), events));
        // Before any command: what a killed controller left running is closed first, so
        // no app stays busy with an operation nobody carries on.
        ctl.mutate(|core| (repair::recover(core), ()));
        ctl.mutate(|core| (drain::recover(core), ()));
        ctl.spawn(commands::serve(ctl.clone(), requests));
        ctl.spawn(intake::serve_heartbeats(ctl.clone(), heartbeats));
        ctl.spawn(intake::serve_statuses(ctl.clone(), statuses));
        ctl.spawn(intake::serve_router_statuses(ctl.clone(), routers));
        ctl.spawn(sessions::serve(ctl.clone(), sessions));
        ctl.spawn(health::run(ctl.clone()));
        ctl.spawn(alerts::run(ctl.clone()));
        for sender in ctl.webhooks().senders() {
            ctl.spawn(sender);
        }
        Ok(ControllerHandle { controller: ctl })
    }
}
