//! The envelope every message comes in: `decode` (all of it kept) and `decode_body` (the
//! broadcast reader), over any bytes; what decodes must encode and decode the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::{ProtocolError, decode, decode_body, validate};
use quarterdeck_fuzz::envelope_round_trip;
use serde::de::IgnoredAny;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let whole = decode::<Value>(data);
    let body = decode_body::<Value>(data);
    let ignored = decode::<IgnoredAny>(data);
    // What decodes as JSON decodes when only its head is read (`IgnoredAny`, as the
    // controller and the agents read a command's id and deadline first). Not the other
    // way: `IgnoredAny` skips a number without checking its range (`1e999`), which the
    // body's own type then refuses.
    assert!(whole.is_err() || ignored.is_ok(), "a message read as JSON but not by its head");
    if let (Ok(w), Ok(b)) = (&whole, &body) {
        assert_eq!(&w.body, b, "decode and decode_body read different bodies");
    }
    if let Err(ProtocolError::UnsupportedVersion { found }) = &whole {
        assert!(
            !(quarterdeck::protocol::OLDEST_READABLE_VERSION..=quarterdeck::protocol::PROTOCOL_VERSION)
                .contains(found),
            "a readable version {found} refused as unsupported"
        );
    }
    if let Ok(env) = whole {
        let _ = env.check_deadline(0);
        let _ = env.check_deadline(u64::MAX);
        let _ = validate::command_id(&env.id);
        if let Some(op) = &env.operator {
            let _ = op.describe();
        }
        envelope_round_trip(&env);
        // A sender's stamp never extends a deadline.
        let stamped = env.stamped(env.ts);
        assert!(stamped.deadline.is_some_and(|d| d <= env.ts && env.deadline.is_none_or(|e| d <= e)));
    }
});
