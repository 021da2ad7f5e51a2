//! `qd.v1.router.<id>.status`: what a router applied. Its error becomes a `ROUTER_ERROR`
//! event and a line in `ctl`, so it is shown with control characters escaped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::cli::printable::printable;
use quarterdeck::protocol::{RouterStatus, decode, subjects};
use quarterdeck_fuzz::{envelope_round_trip, round_trip};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = decode::<RouterStatus>(data) else { return };
    envelope_round_trip(&env);
    let status = env.body;
    round_trip(&status);
    let subject = subjects::router_status(&status.id);
    assert_eq!(subject.split('.').count(), 5, "a router status subject of one id token: {subject:?}");
    if let Some(err) = &status.last_error {
        let line = format!("router {}: {err}", status.id);
        assert!(!printable(&line).chars().any(char::is_control), "a control character printed");
    }
});
