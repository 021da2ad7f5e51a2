//! The cockpit that follows the plane during the bench: the cockpit's own backend
//! (`backend::spawn`, snapshot then events, heartbeats, beacons) feeding a `Replica` the
//! way the cockpit's `App::update` does, headless. It notes how late each event was
//! applied after the controller stamped it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::{self, BackendHandle, BackendRequest, Feed, Inbound, Replica, Sync};
use crate::bus::{Bus, NatsBus};
use crate::protocol::clock::now_ms;
use crate::protocol::{HostState, InstanceState, OperationState};

#[derive(Default)]
pub struct Followed {
    pub replica: Replica,
    /// Milliseconds from an event's `ts` (stamped by the controller) to its apply here,
    /// for the events applied since `measure` was called.
    pub lags_ms: Vec<u32>,
    measuring: bool,
    /// Snapshots taken: the first, then one per resync.
    pub snapshots: u64,
}

/// Where the fleet stands, as the following cockpit sees it.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub live: bool,
    pub revision: u64,
    pub hosts_up: usize,
    /// Instances of the bench's apps, and how many of them run.
    pub instances: usize,
    pub running: usize,
    /// The bench's operations by state.
    pub operations_running: usize,
    pub operations_failed: Vec<String>,
}

pub struct Follower {
    state: Arc<Mutex<Followed>>,
    task: tokio::task::JoinHandle<()>,
    bus: NatsBus,
}

impl Follower {
    pub fn start(bus: NatsBus) -> Follower {
        let BackendHandle { commands, mut updates, .. } =
            backend::spawn(Arc::new(bus.clone()) as Arc<dyn Bus>, "cockpit/bench-plane".into());
        let state = Arc::new(Mutex::new(Followed::default()));
        let shared = state.clone();
        // The task owns the command sender: the backend runs as long as the task does.
        let task = tokio::spawn(async move {
            while let Some(update) = updates.recv().await {
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                if s.feed(update, now_ms()) {
                    let _ = commands.send(BackendRequest::Resync);
                }
            }
        });
        Follower { state, task, bus }
    }

    fn lock(&self) -> MutexGuard<'_, Followed> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// From now on, note each applied event's lag (and forget the ones before).
    pub fn measure(&self) {
        let mut s = self.lock();
        s.lags_ms.clear();
        s.measuring = true;
    }

    pub fn with<R>(&self, f: impl FnOnce(&Followed) -> R) -> R {
        f(&self.lock())
    }

    /// Closes the connection (every subscription of the backend with it).
    pub async fn close(&self) {
        let _ = self.bus.client().drain().await;
    }

    /// Messages the NATS client dropped because the backend's subscriptions were full.
    pub fn slow_consumer_drops(&self) -> u64 {
        self.bus.slow_consumers()
    }

    pub fn progress(&self, apps: &BTreeSet<String>, operations: &BTreeSet<String>) -> Progress {
        let s = self.lock();
        let fleet = &s.replica.fleet;
        let mut p = Progress {
            live: s.replica.sync == Sync::Live,
            revision: fleet.revision,
            hosts_up: fleet.hosts.values().filter(|h| h.state == HostState::Up).count(),
            ..Progress::default()
        };
        for i in fleet.instances.values().filter(|i| apps.contains(&i.app)) {
            p.instances += 1;
            p.running += usize::from(i.state == InstanceState::Running);
        }
        for op in operations.iter().filter_map(|id| fleet.operations.get(id)) {
            match op.state {
                OperationState::Running => p.operations_running += 1,
                OperationState::Failed => p.operations_failed.push(format!(
                    "{} ({}): {}",
                    op.id,
                    op.app,
                    op.error.as_deref().unwrap_or("no reason given")
                )),
                OperationState::Succeeded => {}
            }
        }
        p
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Followed {
    /// Applies one update as the cockpit does; true when a fresh snapshot must be taken.
    fn feed(&mut self, update: Inbound, now: u64) -> bool {
        match update {
            Inbound::Feed(Feed::Snapshot(fleet)) => {
                self.snapshots += 1;
                self.replica.apply_snapshot(fleet, now);
                false
            }
            Inbound::Feed(Feed::History(events)) => {
                self.replica.apply_history(events);
                false
            }
            Inbound::Feed(Feed::Event(event)) => {
                let (was_live, before, ts) =
                    (self.replica.sync == Sync::Live, self.replica.fleet.revision, event.ts);
                let resyncing = self.replica.sync == Sync::Resyncing;
                let gap = self.replica.apply_event(event, now).is_err();
                if self.measuring && was_live && self.replica.fleet.revision > before {
                    self.lags_ms.push(u32::try_from(now.saturating_sub(ts)).unwrap_or(u32::MAX));
                }
                gap && !resyncing
            }
            Inbound::Feed(Feed::Heartbeat(hb)) => {
                self.replica.apply_heartbeat(&hb, now);
                false
            }
            // Behind at two beacons in a row: the last event was lost.
            Inbound::Feed(Feed::Beacon(revision)) => self.replica.note_beacon_at(revision, now),
            Inbound::Feed(Feed::Connection(state)) => {
                if !state.is_connected() {
                    self.replica.mark_resyncing();
                }
                false
            }
            // Command results, routers and problems say nothing about the replica.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::fixture::fixture;
    use crate::protocol::{Event, EventKind};

    fn event(rev: u64, ts: u64) -> Event {
        Event {
            rev,
            ts,
            kind: EventKind::Audit,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            message: String::new(),
            changes: vec![],
            audit: None,
        }
    }

    #[test]
    fn lag_is_noted_for_events_applied_while_measuring_and_a_gap_asks_for_a_snapshot() {
        let (fleet, _) = fixture(7, 3, 0);
        let rev = fleet.revision;
        let mut f = Followed::default();
        assert!(!f.feed(Inbound::Feed(Feed::Snapshot(fleet)), 1_000));
        assert!(!f.feed(Inbound::Feed(Feed::Event(event(rev + 1, 900))), 1_000));
        assert!(f.lags_ms.is_empty(), "not measuring yet");
        f.measuring = true;
        assert!(!f.feed(Inbound::Feed(Feed::Event(event(rev + 2, 1_000))), 1_250));
        assert_eq!(f.lags_ms, vec![250]);
        // Already applied: no lag, no resync.
        assert!(!f.feed(Inbound::Feed(Feed::Event(event(rev + 2, 1_000))), 1_300));
        assert_eq!(f.lags_ms.len(), 1);
        assert!(f.feed(Inbound::Feed(Feed::Event(event(rev + 9, 1_000))), 1_300), "a gap resyncs once");
        assert!(!f.feed(Inbound::Feed(Feed::Event(event(rev + 10, 1_000))), 1_300), "not twice");
        assert_eq!((f.lags_ms.len(), f.snapshots), (1, 1));
    }
}
