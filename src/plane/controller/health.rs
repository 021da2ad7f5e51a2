//! The health manager: host liveness from heartbeats (stale after 3 missed periods, lost
//! after 10), restarts of crashed instances with backoff, and placing what a fault left
//! missing (`repair.rs`). Nothing is judged while the bus is down or the controller is
//! fenced: silence then proves nothing.

use std::time::{Duration, Instant};

use super::core::{Controller, CrashRecord, Draft};
use super::{deploy, repair};
use crate::protocol::{Change, ControllerBeacon, EventKind, HostState, Instance, InstanceState, subjects};

const TICK: Duration = Duration::from_millis(250);

pub(crate) async fn run(ctl: Controller) {
    let mut connection = ctl.bus().connection();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_connected = true;
    let mut last_beacon = Instant::now() - ctl.config().heartbeat_period;
    loop {
        ticker.tick().await;
        // No judgement adds events while the store is behind.
        ctl.room().await;
        // Fenced, the controller may no longer be the leader: no beacon says otherwise.
        // The connection's guard is let go before the lease is read: a guard held while
        // another lock is taken is how two tasks can wait on each other.
        let on_bus = connection.borrow_and_update().is_connected();
        let connected = on_bus && !ctl.fenced();
        if !connected {
            was_connected = false;
            continue;
        }
        if last_beacon.elapsed() >= ctl.config().heartbeat_period {
            last_beacon = Instant::now();
            beacon(&ctl).await;
        }
        if !was_connected {
            // Back on the bus (or unfenced): every host gets a fresh grace period before it
            // is judged, as heartbeats were not heard meanwhile.
            ctl.mutate(|core| {
                let now = Instant::now();
                for seen in core.host_seen.values_mut() {
                    seen.0 = now;
                }
                (vec![], ())
            });
            was_connected = true;
        }
        check_hosts(&ctl);
        check_routes(&ctl);
        place_missing(&ctl);
        restart_crashed(&ctl).await;
    }
}

async fn beacon(ctl: &Controller) {
    let body = ControllerBeacon { id: ctl.config().source.clone(), revision: ctl.revision() };
    let env = crate::protocol::Envelope::new(ctl.config().source.clone(), body);
    if let Err(e) = crate::bus::publish(ctl.bus(), subjects::CONTROLLER_HB, &env).await {
        log::debug!("beacon not sent: {e}");
    }
}

fn check_hosts(ctl: &Controller) {
    let cfg = ctl.config().clone();
    ctl.mutate(|core| {
        let now = Instant::now();
        let mut drafts = Vec::new();
        let mut ids: Vec<String> = core.fleet.hosts.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let (seen, period) = core.host_seen.get(&id).copied().unwrap_or((now, cfg.heartbeat_period));
            let missed = (now.duration_since(seen).as_millis() / period.as_millis().max(1)) as u32;
            let Some(host) = core.fleet.hosts.get(&id) else { continue };
            let next = if missed >= cfg.lost_after {
                HostState::Lost
            } else if missed >= cfg.stale_after {
                HostState::Stale
            } else {
                continue;
            };
            if host.state == next || (host.state == HostState::Lost && next == HostState::Stale) {
                continue;
            }
            let mut changed = host.clone();
            changed.state = next;
            let (kind, msg) = match next {
                HostState::Lost => (
                    EventKind::HostLost,
                    format!(
                        "{id} lost: {missed} heartbeats missed; its instances will be placed again, \
                         and their routes are kept, unverified, until the replacements serve"
                    ),
                ),
                _ => (EventKind::HostStale, format!("{id} stale: {missed} heartbeats missed")),
            };
            drafts.push(Draft::new(kind, msg).host(id.clone()).change(Change::Host(changed)));
        }
        (drafts, ())
    });
}

/// Places what apps are missing because of a fault (see `repair.rs`).
fn place_missing(ctl: &Controller) {
    let starts = ctl.mutate(|core| repair::plan(core, Instant::now()));
    for work in starts {
        match work {
            repair::Work::Place { op_id, app, missing } => {
                ctl.spawn(repair::run(ctl.clone(), op_id, app, missing))
            }
            repair::Work::Trim { op_id, surplus } => ctl.spawn(repair::trim(ctl.clone(), op_id, surplus)),
        }
    }
}

/// Backends whose instance has been gone or not running past the TTL are marked stale
/// (the router leaves them out), and restored once the instance runs again, as gorouter
/// prunes stale routes.
fn check_routes(ctl: &Controller) {
    let ttl = ctl.config().route_stale_after;
    ctl.mutate(|core| {
        let now = Instant::now();
        let mut drafts = Vec::new();
        let mut serving_keys = Vec::new();
        // One pass over the instances, not one per route: 20,000 routes times 20,000
        // instances every tick would be the controller's whole CPU.
        let running: std::collections::HashSet<(&str, &str)> = core
            .fleet
            .instances
            .values()
            .filter(|i| i.state == InstanceState::Running)
            .map(|i| (i.app.as_str(), i.endpoint.as_str()))
            .collect();
        for route in core.fleet.routes.values() {
            let key = route.key();
            let serving = running.contains(&(route.app.as_str(), route.backend.as_str()));
            if serving {
                serving_keys.push(key.clone());
                if route.stale {
                    let mut r = route.clone();
                    r.stale = false;
                    drafts.push(
                        Draft::new(
                            EventKind::RouteRestored,
                            format!("{} -> {} serves again", r.domain, r.backend),
                        )
                        .app(r.app.clone())
                        .change(Change::Route(r)),
                    );
                }
                continue;
            }
            let since = *core.not_serving_since.entry(key).or_insert(now);
            if !route.stale && now.duration_since(since) >= ttl {
                let mut r = route.clone();
                r.stale = true;
                drafts.push(
                    Draft::new(
                        EventKind::RouteStale,
                        format!(
                            "{} -> {} stale: no running instance for {}s",
                            r.domain,
                            r.backend,
                            ttl.as_secs()
                        ),
                    )
                    .app(r.app.clone())
                    .change(Change::Route(r)),
                );
            }
        }
        for key in serving_keys {
            core.not_serving_since.remove(&key);
        }
        let routes = &core.fleet.routes;
        core.not_serving_since.retain(|k, _| routes.contains_key(k));
        (drafts, ())
    })
}

/// The wait before the n-th restart in a row: 1 s, 2 s, 4 s ... capped.
pub(crate) fn backoff(consecutive: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << consecutive.min(16)).min(max)
}

async fn restart_crashed(ctl: &Controller) {
    let cfg = ctl.config().clone();
    let due = ctl.mutate(|core| {
        let now = Instant::now();
        let now_ms = crate::protocol::clock::now_ms();
        let mut due = Vec::new();
        let mut drafts = Vec::new();
        let ids: Vec<String> = core.fleet.instances.keys().cloned().collect();
        for id in ids {
            let Some(inst) = core.fleet.instances.get(&id) else { continue };
            let host_up = core.fleet.hosts.get(&inst.host).is_some_and(|h| h.state == HostState::Up);
            match inst.state {
                InstanceState::Crashed if host_up => {
                    let record = core
                        .crashes
                        .entry(id.clone())
                        .or_insert(CrashRecord { consecutive: 0, next_attempt: None });
                    let (draft, restart) = crash_step(record, inst, now, cfg.max_backoff);
                    drafts.extend(draft);
                    due.extend(restart);
                }
                InstanceState::Running => {
                    let stable = inst
                        .started_at
                        .is_some_and(|s| now_ms.saturating_sub(s) >= cfg.stable_after.as_millis() as u64);
                    if stable {
                        core.crashes.remove(&id);
                    }
                }
                _ => {}
            }
        }
        (drafts, due)
    });
    for inst in due {
        if let Err(reason) = deploy::send_restart(ctl, &inst, None).await {
            log::warn!("health manager could not restart {}: {reason}", inst.id);
            let mut back = inst.clone();
            back.state = InstanceState::Crashed;
            ctl.commit(vec![
                Draft::new(EventKind::InstanceCrashed, reason)
                    .app(inst.app.clone())
                    .instance(inst.id.clone())
                    .change(Change::Instance(back)),
            ]);
        }
    }
}

/// One crashed instance at one tick: a restart is scheduled after the backoff (and said),
/// or, once it is due, the instance is counted as restarting and returned to be restarted.
fn crash_step(
    record: &mut CrashRecord,
    inst: &Instance,
    now: Instant,
    max_backoff: Duration,
) -> (Option<Draft>, Option<Instance>) {
    let id = &inst.id;
    match record.next_attempt {
        None => {
            let wait = backoff(record.consecutive, max_backoff);
            record.next_attempt = Some(now + wait);
            let message = format!(
                "{id} crashed; restarting in {}s (crash {} in a row)",
                wait.as_secs(),
                record.consecutive + 1
            );
            let draft = Draft::new(EventKind::InstanceState, message)
                .app(inst.app.clone())
                .host(inst.host.clone())
                .instance(id.clone());
            (Some(draft), None)
        }
        Some(at) if at <= now => {
            record.consecutive += 1;
            record.next_attempt = None;
            let mut counted = inst.clone();
            counted.restarts += 1;
            counted.state = InstanceState::Starting;
            let message = format!("health manager restarts {id} (restart {})", counted.restarts);
            let draft = Draft::new(EventKind::Restart, message)
                .app(inst.app.clone())
                .host(inst.host.clone())
                .instance(id.clone())
                .change(Change::Instance(counted.clone()));
            (Some(draft), Some(counted))
        }
        Some(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
        assert_eq!(backoff(3, max), Duration::from_secs(8));
        assert_eq!(backoff(10, max), max);
        assert_eq!(backoff(u32::MAX, max), max);
    }
}
