//! The synthetic event stream both benches feed the cockpit: instance state changes in
//! revision order, as the controller publishes them, and the fleet at any point of the
//! stream (what the controller would answer to a snapshot request). `StandIn` plays the
//! controller over a real nats-server with it: events into the JetStream event stream,
//! snapshots and beacons, for `bench --nats` and the flood tests.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bus::{self, Bus, NatsBus};
use crate::plane::controller::paging;
use crate::plane::controller::store::{JetStreamConfig, JetStreamStore};
use crate::plane::fixture::T0;
use crate::protocol::{
    Change, ControllerBeacon, Envelope, Event, EventKind, Fleet, InstanceState, Reply, SnapshotRequest,
    decode, encode, subjects,
};

/// Event `n` (from 0) of a stream that starts after a fleet's revision.
pub struct EventStream {
    /// The instances the events go round, in id order.
    ids: Vec<String>,
    base: u64,
}

impl EventStream {
    pub fn new(fleet: &Fleet) -> EventStream {
        EventStream { ids: fleet.instances.keys().cloned().collect(), base: fleet.revision }
    }

    /// The revision event `n` moves the fleet to.
    pub fn rev(&self, n: u64) -> u64 {
        self.base + n + 1
    }

    /// Which instance event `n` is about, and the state it gives it.
    fn target(&self, n: u64) -> Option<(&str, InstanceState)> {
        let id = self.ids.get((n % self.ids.len().max(1) as u64) as usize)?;
        let state = if n.is_multiple_of(2) { InstanceState::Starting } else { InstanceState::Running };
        Some((id, state))
    }

    /// Event `n`, built on the instance as `fleet` has it. `None` for a fleet with no
    /// instances.
    pub fn event(&self, fleet: &Fleet, n: u64) -> Option<Event> {
        let (id, state) = self.target(n)?;
        let mut inst = fleet.instances.get(id)?.clone();
        inst.state = state;
        Some(Event {
            rev: self.rev(n),
            ts: T0 + n,
            kind: EventKind::InstanceState,
            app: Some(inst.app.clone()),
            host: Some(inst.host.clone()),
            instance: Some(inst.id.clone()),
            operation_id: None,
            message: format!("{} is {}", inst.id, state.as_str()),
            changes: vec![Change::Instance(inst)],
            audit: None,
        })
    }

    /// Event `n`'s subject and wire bytes.
    pub fn wire(&self, fleet: &Fleet, n: u64) -> Option<(String, Vec<u8>)> {
        let ev = self.event(fleet, n)?;
        let subject = subjects::event(&ev.kind.subject_token(), ev.app.as_deref());
        let bytes = encode(&Envelope::new("bench", ev)).ok()?;
        Some((subject, bytes))
    }

    /// The revision of the fleet after the stream's first `count` events.
    pub fn fleet_after_revision(&self, count: u64) -> u64 {
        self.base + count
    }

    /// The fleet after the stream's first `count` events, from the fleet it started on.
    pub fn fleet_after(&self, start: &Fleet, count: u64) -> Fleet {
        let mut fleet = start.clone();
        let len = self.ids.len() as u64;
        // Only the last event on each instance counts: the events only set states.
        for n in count.saturating_sub(len)..count {
            if let Some((id, state)) = self.target(n)
                && let Some(inst) = fleet.instances.get_mut(id)
            {
                inst.state = state;
            }
        }
        fleet.revision = self.fleet_after_revision(count);
        fleet
    }
}

/// Publishes acknowledged this far behind the newest: the publisher waits for the oldest
/// ack past it, as the controller's commits do in windows.
const ACK_WINDOW: usize = 4_096;

/// How often the stand-in says its revision, as the controller's beacon does.
const BEACON_PERIOD: Duration = Duration::from_secs(1);

/// A stand-in controller on a real nats-server: it stores events in the JetStream event
/// stream (made as the controller makes it), answers `ctl.snapshot` with the synthetic
/// fleet at the revision published so far (paged as the controller pages it) and
/// `ctl.history` with nothing, and sends a beacon with its revision every second.
pub struct StandIn {
    bus: Arc<NatsBus>,
    start: Arc<Fleet>,
    stream: Arc<EventStream>,
    /// Events handed to the client so far: each may be in the stream, so a snapshot
    /// counts it.
    sent: Arc<AtomicU64>,
    /// Snapshot reads served (a paged read counts once).
    snapshots: Arc<AtomicU64>,
    /// Whether the stand-in made the stream, and so deletes it (and the state bucket) at
    /// `stop`.
    made: bool,
    serving: tokio::task::JoinHandle<()>,
}

impl StandIn {
    pub async fn start(bus: Arc<NatsBus>, start: Fleet) -> Result<StandIn, String> {
        // Connected (the client connects in the background), so the server's limits (the
        // max_payload that sizes snapshot pages) are known.
        bus.flush().await.map_err(|e| e.to_string())?;
        let config = JetStreamConfig::default();
        let made = bus.jetstream().get_stream(&config.stream).await.is_err();
        JetStreamStore::open(&bus, &config).await.map_err(|e| format!("event stream: {e}"))?;
        let sent = Arc::new(AtomicU64::new(0));
        let snapshots = Arc::new(AtomicU64::new(0));
        let stream = Arc::new(EventStream::new(&start));
        let start = Arc::new(start);
        let serving =
            serve(bus.clone(), start.clone(), stream.clone(), sent.clone(), snapshots.clone()).await?;
        Ok(StandIn { bus, start, stream, sent, snapshots, made, serving })
    }

    /// Snapshot reads served so far.
    pub fn snapshots(&self) -> u64 {
        self.snapshots.load(Ordering::Relaxed)
    }

    /// Events handed to the client so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stores the next `count` events of the stream in order, as fast as the server
    /// acknowledges them (acks awaited in windows). Each is encoded as it goes, so the
    /// stand-in holds a window of events, not the flood: the process's memory is the
    /// cockpit's. Returns how long that took, up to the last ack.
    pub async fn publish(&self, count: u64) -> Result<f64, String> {
        let js = self.bus.jetstream();
        let started = Instant::now();
        let mut acks = VecDeque::with_capacity(ACK_WINDOW);
        let from = self.sent.load(Ordering::Relaxed);
        for n in from..from + count {
            let (subject, bytes) = self.stream.wire(&self.start, n).ok_or("the fleet has no instances")?;
            // Counted first: from now on a snapshot must hold this event, since a follower
            // that starts after it reaches the stream will not be given it.
            self.sent.fetch_add(1, Ordering::Relaxed);
            let ack =
                js.publish(subject, Bytes::from(bytes)).await.map_err(|e| format!("event publish: {e}"))?;
            acks.push_back(ack);
            if acks.len() >= ACK_WINDOW
                && let Some(oldest) = acks.pop_front()
            {
                oldest.await.map_err(|e| format!("event ack: {e}"))?;
            }
        }
        for ack in acks {
            ack.await.map_err(|e| format!("event ack: {e}"))?;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// Stops serving; deletes the stream and the state bucket if the stand-in made them.
    pub async fn stop(self) {
        self.serving.abort();
        if self.made {
            let config = JetStreamConfig::default();
            let js = self.bus.jetstream();
            if let Err(e) = js.delete_stream(&config.stream).await {
                log::warn!("could not delete the stand-in's stream {}: {e}", config.stream);
            }
            if let Err(e) = js.delete_key_value(&config.bucket).await {
                log::warn!("could not delete the stand-in's bucket {}: {e}", config.bucket);
            }
        }
    }
}

/// Answers snapshot and history requests as the controller would, and beacons.
async fn serve(
    bus: Arc<NatsBus>,
    start: Arc<Fleet>,
    stream: Arc<EventStream>,
    sent: Arc<AtomicU64>,
    snapshots: Arc<AtomicU64>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let mut snapshot_requests = bus.subscribe(subjects::CTL_SNAPSHOT).await.map_err(|e| e.to_string())?;
    let mut history_requests = bus.subscribe(subjects::CTL_HISTORY).await.map_err(|e| e.to_string())?;
    // The subscriptions must reach the server before the cockpit asks.
    bus.flush().await.map_err(|e| e.to_string())?;
    let pages = paging::Pages::default();
    let mut beacon = tokio::time::interval(BEACON_PERIOD);
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(msg) = snapshot_requests.next() => {
                    let fleet = || stream.fleet_after(&start, sent.load(Ordering::Relaxed));
                    let req = decode::<SnapshotRequest>(&msg.payload).map(|env| env.body).unwrap_or_default();
                    // A read starts with an unpaged request or page 0; the other pages are
                    // the same snapshot.
                    if req.rev.is_none() {
                        snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = if req.page.is_none() {
                        bus::respond(bus.as_ref(), &msg, "controller", &Reply::Ok(fleet())).await
                    } else {
                        // Paged as the controller pages it, so a fleet over max_payload gets through.
                        let max_part = paging::part_size(bus.max_payload());
                        let answer = pages.page(&req, max_part, |reusable| {
                            let fleet = fleet();
                            if Some(fleet.revision) == reusable {
                                return Ok((fleet.revision, None));
                            }
                            paging::fleet_text(&fleet).map(|text| (fleet.revision, Some(text)))
                        });
                        bus::respond(bus.as_ref(), &msg, "controller", &Reply::from(answer)).await
                    };
                }
                Some(msg) = history_requests.next() => {
                    let none: Vec<Event> = Vec::new();
                    let _ = bus::respond(bus.as_ref(), &msg, "controller", &Reply::Ok(none)).await;
                }
                _ = beacon.tick() => {
                    let revision = stream.fleet_after_revision(sent.load(Ordering::Relaxed));
                    let body = ControllerBeacon { id: "controller/stand-in".into(), revision };
                    let _ = bus::publish(bus.as_ref(), subjects::CONTROLLER_HB, &Envelope::new("controller", body)).await;
                }
                else => return,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::fixture::fixture;

    #[test]
    fn the_fleet_after_n_events_is_the_fleet_that_applied_them() {
        let (start, _) = fixture(3, 4, 10);
        let stream = EventStream::new(&start);
        let mut applied = start.clone();
        for n in 0..45 {
            let ev = stream.event(&applied, n).expect("an event");
            assert_eq!(applied.apply(&ev), Ok(true));
            assert_eq!(stream.fleet_after(&start, n + 1), applied, "after {} events", n + 1);
        }
    }

    #[test]
    fn wires_decode_to_the_events() {
        let (start, _) = fixture(3, 2, 3);
        let stream = EventStream::new(&start);
        let (subject, bytes) = stream.wire(&start, 4).expect("a wire");
        assert!(subject.starts_with("qd.v1.evt.instance_state."), "{subject}");
        let env = crate::protocol::decode::<Event>(&bytes).expect("decodes");
        assert_eq!(Some(env.body), stream.event(&start, 4));
    }
}
