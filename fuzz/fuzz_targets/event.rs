//! An event off the history or `qd.v1.evt.>`, as the cockpit, the router and a restarting
//! controller read it: the body-only decode and the full one agree, the event's changes
//! apply to a fleet (the one rule every replica follows), and its audit record shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::{Event, Fleet, OperationEnd, decode, decode_body, steps_in_history};
use quarterdeck_fuzz::{envelope_round_trip, round_trip};

fuzz_target!(|data: &[u8]| {
    let body = decode_body::<Event>(data);
    let whole = decode::<Event>(data);
    if let (Ok(b), Ok(w)) = (&body, &whole) {
        assert_eq!(b, &w.body, "decode and decode_body read different events");
    }
    let Ok(event) = body else { return };
    if let Ok(env) = &whole {
        envelope_round_trip(env);
    }
    round_trip(&event);
    let _ = (event.kind.as_str(), event.kind.subject_token(), event.kind.is_bad());
    if let Some(audit) = &event.audit {
        let _ = (audit.what(), audit.who(), audit.user(), audit.via(), audit.result());
        let end = OperationEnd::from_event(&event);
        let _ = audit.conclusion(end.as_ref());
    }
    // Applied at the revision before it, then again (ignored), then as a gap.
    let mut fleet = Fleet { revision: event.rev.saturating_sub(1), ..Fleet::default() };
    assert!(fleet.apply(&event).is_ok(), "the next revision is never a gap");
    assert_eq!(fleet.revision, event.rev);
    assert_eq!(fleet.apply(&event), Ok(false), "an event already applied is ignored");
    if fleet.revision < u64::MAX - 1 {
        let mut ahead = event.clone();
        ahead.rev = fleet.revision + 2;
        let before = fleet.clone();
        assert!(fleet.apply(&ahead).is_err(), "a revision gap is reported");
        assert_eq!(fleet, before, "a gap changes nothing");
    }
    // What the fleet became is a snapshot a replica can read.
    round_trip(&fleet);
    for op in fleet.operations.values() {
        let _ = steps_in_history(op, std::iter::once(&event));
    }
    let _ = fleet.operations_beyond_bound(1);
});
