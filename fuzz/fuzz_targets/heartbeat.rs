//! `qd.v1.agent.<host>.hb`: a heartbeat as the controller reads it. One the controller
//! accepts (a valid host name, on that host's subject) names exactly the host whose
//! subject it came on: `subjects::token` must never make two names share a subject.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::{Change, Fleet, Heartbeat, decode, subjects, validate};
use quarterdeck_fuzz::{envelope_round_trip, round_trip};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = decode::<Heartbeat>(data) else { return };
    envelope_round_trip(&env);
    let hb = env.body;
    round_trip(&hb);
    let subject = subjects::heartbeat(&hb.host.id);
    assert_eq!(subject.split('.').count(), 5, "a heartbeat subject of one host token: {subject:?}");
    if validate::name("host", &hb.host.id).is_ok() {
        assert_eq!(subject, format!("qd.v1.agent.{}.hb", hb.host.id), "a valid name changed in its subject");
        assert_eq!(subjects::status(&hb.host.id), format!("qd.v1.agent.{}.status", hb.host.id));
    }
    let _ = validate::names("tag", &hb.host.tags);
    let _ = hb.metrics.mem_pct();
    // The host as the controller keeps it (`intake.rs`, `host_draft`).
    let host = hb.host_at(1);
    let mut fleet = Fleet::default();
    fleet.apply_change(&Change::Host(host));
    round_trip(&fleet);
});
