//! `qd.v1.agent.<host>.cmd.<verb>`, the verb chosen by the first byte: the bodies an agent
//! decodes, with the checks it makes before it runs anything (`plane/agent`: a deploy's
//! id, names, image and limits; a log stream's subject and `since`).
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::agent::check_spec;
use quarterdeck::protocol::{
    InstanceRef, InstanceSpec, LogsRequest, LogsStreamRef, clock, decode, subjects, validate,
};
use quarterdeck_fuzz::{envelope_round_trip, round_trip, split};
use serde::de::IgnoredAny;

/// A log stream subject the agent accepts for user alice is one token under
/// `qd.v1.logs.alice.`: it can never make the agent publish into events, commands or
/// another user's streams.
fn stream_checks(stream: &str) {
    if subjects::is_logs_stream_of("alice", stream) {
        assert!(stream.starts_with("qd.v1.logs.alice.") && stream.split('.').count() == 5, "{stream:?}");
        assert!(!stream.contains(['*', '>', ' ']), "{stream:?}");
        assert!(!subjects::is_logs_stream_of("bob", stream), "{stream:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = split(data) else { return };
    // The command id and deadline come first, read from any body.
    if let Ok(head) = decode::<IgnoredAny>(payload) {
        let _ = head.check_deadline(u64::MAX / 2);
    }
    match selector % 4 {
        0 => {
            let Ok(env) = decode::<InstanceSpec>(payload) else { return };
            envelope_round_trip(&env);
            round_trip(&env.body);
            // The agent's own checks (`plane::agent::check_spec`). A spec they let through
            // runs in a container of its limits, in a directory named by its id, which a
            // failed deploy removes: the id must be one plain path component.
            if check_spec(&env.body).is_ok() {
                let spec = &env.body;
                assert!(spec.cpu > 0.0 && spec.cpu <= 256.0 && spec.memory_mb >= 4, "limits let through");
                let parts: Vec<Component> = Path::new(&spec.id).components().collect();
                assert!(
                    matches!(parts[..], [Component::Normal(p)] if p == spec.id.as_str()),
                    "instance id {:?} is not one directory name",
                    spec.id
                );
            }
            let _ = validate::run(&env.body.run);
        }
        1 => {
            let Ok(env) = decode::<InstanceRef>(payload) else { return };
            envelope_round_trip(&env);
        }
        2 => {
            let Ok(env) = decode::<LogsRequest>(payload) else { return };
            envelope_round_trip(&env);
            round_trip(&env.body);
            stream_checks(&env.body.stream);
            // A `since` too far ahead is refused with the time in words, whatever the number.
            if let Some(since) = env.body.since {
                let when = clock::datetime(since);
                assert!(when.len() <= 40 && when.contains(':'), "{since} as {when:?}");
            }
        }
        _ => {
            let Ok(env) = decode::<LogsStreamRef>(payload) else { return };
            envelope_round_trip(&env);
            stream_checks(&env.body.stream);
        }
    }
});
