//! The router: it follows the controller's route table (snapshot, then events, a fresh
//! snapshot after every reconnect) and applies it to the load balancer. Bursts of changes
//! are coalesced into one apply. Routes are kept by the controller; the router only applies
//! them, so restarting it rebuilds the same configuration.

pub mod access_log;
pub mod apply;
pub mod config;
pub mod nginx;
pub mod traffic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::bus::{self, Bus};
use crate::client::{self, ClientOptions, Feed, Replica, Sync};
use crate::protocol::clock::now_ms;
use crate::protocol::{Change, Envelope, RouterStatus, subjects};
use access_log::TrafficFeed;
use config::{AccessLog, Rendered, Target};

/// Where a rendered route table goes: nginx, or nowhere (the sandbox's simulated router).
#[async_trait]
pub trait Applier: Send {
    /// Where the load balancer listens, for the status.
    fn listen(&self) -> String;
    /// Checks and applies a configuration. On failure the last good one stays in force.
    async fn apply(&mut self, rendered: &Rendered) -> Result<(), String>;
}

/// The sandbox's router: applies nothing, but keeps a generation like a real one.
pub struct SimApplier;

#[async_trait]
impl Applier for SimApplier {
    fn listen(&self) -> String {
        "simulated".into()
    }

    async fn apply(&mut self, _: &Rendered) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub id: String,
    pub listen: String,
    pub state_dir: PathBuf,
    /// How long to wait for more changes before applying: a burst becomes one reload.
    pub coalesce: Duration,
    /// The least time between two reloads: a long stream of changes (a rolling deploy of
    /// many instances) becomes a few reloads, not one per change.
    pub min_interval: Duration,
    pub status_period: Duration,
    /// The Prometheus metrics each status and apply updates (`--metrics-listen`), when any.
    pub metrics: Option<Arc<crate::plane::metrics::router::RouterMetrics>>,
}

impl RouterConfig {
    fn target(&self, traffic: Option<&TrafficFeed>) -> Target<'_> {
        let log = traffic.map_or(AccessLog::File, |_| AccessLog::Traffic);
        Target { listen: &self.listen, dir: &self.state_dir, log }
    }
}

/// Runs the router until the bus closes. With `traffic`, nginx logs each request to it
/// and every status carries the traffic of the last window.
pub async fn run(
    bus: Arc<dyn Bus>,
    config: RouterConfig,
    mut applier: Box<dyn Applier>,
    traffic: Option<TrafficFeed>,
) {
    let source = format!("router/{}", config.id);
    let mut handle =
        client::spawn(bus.clone(), source.clone(), ClientOptions { history: false, heartbeats: false });
    let mut replica = Replica::default();
    let mut status = RouterStatus {
        id: config.id.clone(),
        generation: 0,
        last_reload: None,
        last_error: None,
        backends: 0,
        listen: applier.listen(),
        revision: 0,
        traffic: None,
    };
    let mut applied: Option<String> = None;
    let mut due: Option<tokio::time::Instant> = None;
    let mut last_apply: Option<tokio::time::Instant> = None;
    let mut ticker = tokio::time::interval(config.status_period);
    loop {
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            update = handle.updates.recv() => {
                let Some(update) = update else { return };
                if take(&mut replica, update, &handle.resync) && due.is_none() {
                    due = Some(tokio::time::Instant::now() + config.coalesce);
                }
            }
            _ = wait => {
                due = None;
                if replica.sync != Sync::Live {
                    continue;
                }
                if let Some(last) = last_apply
                    && last.elapsed() < config.min_interval
                {
                    due = Some(last + config.min_interval);
                    continue;
                }
                let target = config.target(traffic.as_ref());
                let wanted = config::render(&replica.fleet, target);
                for refused in &wanted.refused {
                    log::warn!("route left out: {refused}");
                }
                // Compared with what was wanted, not what went in with apps left out: the
                // same table is not tried again.
                if applied.as_deref() == Some(wanted.config.as_str()) {
                    continue;
                }
                last_apply = Some(tokio::time::Instant::now());
                if apply_to(applier.as_mut(), &replica, target, &mut status).await {
                    applied = Some(wanted.config);
                    if let Some(t) = &traffic {
                        t.set_domains(domains(&replica.fleet));
                    }
                } else if let Some(m) = &config.metrics {
                    m.apply_failed();
                }
                publish_status(bus.as_ref(), &source, &mut status, traffic.as_ref(), config.metrics.as_deref()).await;
            }
            _ = ticker.tick() => publish_status(bus.as_ref(), &source, &mut status, traffic.as_ref(), config.metrics.as_deref()).await,
        }
    }
}
/// Takes one message of the follow into the replica; true when it may change the routes
/// nginx gets (a snapshot, or an event changing a route or an app).
fn take(replica: &mut Replica, feed: Feed, resync: &client::Resyncer) -> bool {
    let now = now_ms();
    match feed {
        Feed::Snapshot(fleet) => {
            replica.apply_snapshot(fleet, now);
            true
        }
        Feed::Event(event) => {
            let relevant = event.changes.iter().any(|c| {
                matches!(
                    c,
                    Change::Route(_)
                        | Change::RouteRemoved { .. }
                        | Change::App(_)
                        | Change::AppRemoved { .. }
                )
            });
            if replica.apply_event(event, now).is_err() {
                resync.resync();
            }
            relevant
        }
        Feed::Beacon(rev) => {
            if replica.note_beacon(rev) {
                resync.resync();
            }
            false
        }
        Feed::Connection(c) => {
            if !c.is_connected() {
                // Cut off: keep serving what we have; never prune on silence.
                replica.mark_resyncing();
            }
            false
        }
        // A router behind a flood is late, not lost: the beacon rule reads it.
        Feed::Pending(n) => {
            replica.note_pending(n);
            false
        }
        _ => false,
    }
}

/// Applies the replica's routes to nginx and notes the outcome in the status; true when
/// they went in.
async fn apply_to(
    applier: &mut dyn Applier,
    replica: &Replica,
    target: Target<'_>,
    status: &mut RouterStatus,
) -> bool {
    let done = apply::apply(applier, &replica.fleet, target).await;
    status.last_error = done.error();
    match &done.result {
        Ok(()) => {
            status.generation += 1;
            status.last_reload = Some(now_ms());
            status.backends = done.rendered.backends;
            status.revision = replica.fleet.revision;
            log::info!(
                "applied generation {} ({} backends, revision {})",
                status.generation,
                status.backends,
                status.revision
            );
            true
        }
        Err(e) => {
            log::error!("{e}");
            false
        }
    }
}

/// Each app's domain (lower case, as the traffic reading looks it up), to its app.
fn domains(fleet: &crate::protocol::Fleet) -> std::collections::HashMap<String, String> {
    fleet.apps.values().map(|a| (a.domain.to_ascii_lowercase(), a.name.clone())).collect()
}

async fn publish_status(
    bus: &dyn Bus,
    source: &str,
    status: &mut RouterStatus,
    traffic: Option<&TrafficFeed>,
    metrics: Option<&crate::plane::metrics::router::RouterMetrics>,
) {
    status.traffic = traffic.map(TrafficFeed::traffic);
    if let Some(m) = metrics {
        m.observe(status);
    }
    let env = Envelope::new(source, status.clone());
    if let Err(e) = bus::publish(bus, &subjects::router_status(&status.id), &env).await {
        log::debug!("router status not sent: {e}");
    }
}
