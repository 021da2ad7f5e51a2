//! What the rules need beyond the fleet's state: the revisions of the events that cause
//! alerts (crashes, a host going stale, a failed operation), seen as each event is
//! committed, and the routers' latest traffic. Kept in the controller's core; bounded by
//! the fleet (entries of what the fleet forgot are dropped) and by the rules' windows.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::protocol::alert::ALERT_CAUSES_KEPT;
use crate::protocol::{Event, EventKind, Fleet, Traffic};

#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Per instance: when it crashed and the event's revision, oldest first.
    pub crashes: HashMap<String, VecDeque<(u64, u64)>>,
    /// Per host: the revision of its last HOST_STALE or HOST_LOST.
    pub host_down: HashMap<String, u64>,
    /// Per operation id: the revision of its OPERATION_FAILED.
    pub op_failed: HashMap<String, u64>,
    /// Per app: the revisions of its last route events (disabled, stale, removed).
    pub route_events: HashMap<String, VecDeque<u64>>,
    /// Per router: when its status came (ms) and the traffic it carried.
    pub traffic: HashMap<String, (u64, Traffic)>,
}

/// Crashes remembered per instance at most, whatever the window.
const CRASHES_KEPT: usize = 1000;

impl Seen {
    /// Notes what an event committed at `rev` means to the rules.
    pub fn observe(&mut self, event: &Event) {
        match event.kind {
            EventKind::InstanceCrashed => {
                if let Some(id) = &event.instance {
                    let log = self.crashes.entry(id.clone()).or_default();
                    log.push_back((event.ts, event.rev));
                    if log.len() > CRASHES_KEPT {
                        log.pop_front();
                    }
                }
            }
            EventKind::HostStale | EventKind::HostLost => {
                if let Some(h) = &event.host {
                    self.host_down.insert(h.clone(), event.rev);
                }
            }
            EventKind::OperationFailed => {
                if let Some(op) = &event.operation_id {
                    self.op_failed.insert(op.clone(), event.rev);
                }
            }
            EventKind::RouteDisabled | EventKind::RouteStale | EventKind::RouteRemoved => {
                if let Some(app) = &event.app {
                    let revs = self.route_events.entry(app.clone()).or_default();
                    revs.push_back(event.rev);
                    if revs.len() > ALERT_CAUSES_KEPT {
                        revs.pop_front();
                    }
                }
            }
            _ => {}
        }
    }

    /// A router's status, as it came at `now` (ms).
    pub fn router_traffic(&mut self, router: &str, traffic: Option<Traffic>, now: u64) {
        match traffic {
            Some(t) => {
                self.traffic.insert(router.to_string(), (now, t));
            }
            None => {
                self.traffic.remove(router);
            }
        }
    }

    /// The traffic of the routers heard within three status periods; older numbers are
    /// left out (and dropped by `prune`), so a dead router neither keeps an alert firing
    /// nor resolves one.
    pub fn fresh_traffic(&self, period: Duration, now: u64) -> Vec<&Traffic> {
        let max_age = 3 * period.as_millis() as u64;
        let mut fresh: Vec<(&String, &Traffic)> = self
            .traffic
            .iter()
            .filter(|(_, (at, _))| now.saturating_sub(*at) <= max_age)
            .map(|(r, (_, t))| (r, t))
            .collect();
        fresh.sort_by(|a, b| a.0.cmp(b.0));
        fresh.into_iter().map(|(_, t)| t).collect()
    }

    /// Forgets what the fleet no longer has, crashes older than `window` and traffic older
    /// than three status `period`s.
    pub fn prune(&mut self, fleet: &Fleet, window: Duration, period: Duration, now: u64) {
        let max_age = 3 * period.as_millis() as u64;
        self.traffic.retain(|_, (at, _)| now.saturating_sub(*at) <= max_age);
        let oldest = now.saturating_sub(window.as_millis() as u64);
        self.crashes.retain(|id, log| {
            while log.front().is_some_and(|(ts, _)| *ts < oldest) {
                log.pop_front();
            }
            !log.is_empty() && fleet.instances.contains_key(id)
        });
        self.host_down.retain(|h, _| fleet.hosts.contains_key(h));
        self.op_failed.retain(|op, _| fleet.operations.contains_key(op));
        self.route_events.retain(|app, _| fleet.apps.contains_key(app));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_s_traffic_is_dropped_after_three_status_periods() {
        let mut seen = Seen::default();
        let period = Duration::from_secs(2);
        seen.router_traffic("r1", Some(Traffic { at: 1, ..Traffic::default() }), 10_000);
        seen.router_traffic("r2", Some(Traffic { at: 2, ..Traffic::default() }), 15_000);
        assert_eq!(seen.fresh_traffic(period, 16_000).len(), 2);
        let fresh: Vec<u64> = seen.fresh_traffic(period, 16_001).iter().map(|t| t.at).collect();
        assert_eq!(fresh, vec![2], "r1's numbers are 6.001 s old");
        seen.prune(&Fleet::default(), period, period, 16_001);
        assert_eq!(seen.traffic.len(), 1, "pruned");
        seen.router_traffic("r2", None, 16_002);
        assert!(seen.fresh_traffic(period, 16_002).is_empty(), "a status without traffic drops it");
    }
}
