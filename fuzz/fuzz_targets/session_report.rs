//! `qd.v1.agent.<host>.session`: a session's start or end report as the controller reads
//! it (`plane/controller/sessions.rs`). One that passes its check becomes an `AUDIT`
//! record that stays bounded whatever it held, and reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::controller::session_record;
use quarterdeck::protocol::exec::{SessionKindWire, SessionReport};
use quarterdeck::protocol::{audit, decode, validate};
use quarterdeck_fuzz::{AUDIT_RECORD_MAX, envelope_round_trip, round_trip};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = decode::<SessionReport>(data) else { return };
    envelope_round_trip(&env);
    round_trip(&env.body);
    let report = env.body;
    if report.check().is_err() {
        return;
    }
    assert!(validate::instance_id(&report.instance).is_ok());
    for app in [None, Some("shop-web".to_string())] {
        let record = session_record("h1", app, &report);
        let bytes = serde_json::to_vec(&record).expect("a record encodes");
        assert!(bytes.len() <= AUDIT_RECORD_MAX, "an audit record of {} bytes", bytes.len());
        let verb = match report.kind {
            SessionKindWire::Exec => "exec",
            SessionKindWire::Forward => "port-forward",
        };
        assert_eq!(record.verb, verb);
        assert_eq!(record.by.as_deref(), Some(report.user.as_str()), "the user is a token: never cut");
        assert_eq!(record.command_id, report.session);
        let _ = (record.what(), record.who(), record.user(), record.via(), record.result());
        let _ = audit::describe_request(&record.verb, &record.request);
        round_trip(&record);
    }
});
