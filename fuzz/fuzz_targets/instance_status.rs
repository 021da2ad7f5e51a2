//! `qd.v1.agent.<host>.status`: one instance's change, sent at once. Accepted only on the
//! subject of the host it names, which must be that host's alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::{InstanceStatus, decode, subjects, validate};
use quarterdeck_fuzz::{envelope_round_trip, round_trip};

fuzz_target!(|data: &[u8]| {
    let Ok(env) = decode::<InstanceStatus>(data) else { return };
    envelope_round_trip(&env);
    let st = env.body;
    round_trip(&st);
    let subject = subjects::status(&st.host);
    assert_eq!(subject.split('.').count(), 5, "a status subject of one host token: {subject:?}");
    if validate::name("host", &st.host).is_ok() {
        assert_eq!(subject, format!("qd.v1.agent.{}.status", st.host));
    }
    let _ = (st.instance.state, st.step.map(|s| format!("{s:?}")));
    let _ = validate::quoted(&st.detail);
});
