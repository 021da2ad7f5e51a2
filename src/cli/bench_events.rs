//! The synthetic event stream both benches feed the cockpit: instance state changes in
//! revision order, as the controller publishes them, and the fleet at any point of the
//! stream (what the controller would answer to a snapshot request).

use crate::plane::fixture::T0;
use crate::protocol::{Change, Envelope, Event, EventKind, Fleet, InstanceState, encode, subjects};

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
        fleet.revision = self.base + count;
        fleet
    }
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
