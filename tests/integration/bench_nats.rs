//! `quarterdeck bench --nats`: events published through a real nats-server reach the
//! cockpit's backend and are all applied, none dropped. The rate is reported by the bench,
//! never asserted here: a shared CI machine's speed proves nothing.

use std::process::Command;

use serde_json::Value;

use crate::nats_support::{BIN, NatsServer};

#[test]
fn nats_bench_applies_every_event_without_drops() {
    let Some(nats) = NatsServer::start("nats_bench_applies_every_event_without_drops") else { return };
    let events = 200_000u64;
    let out = Command::new(BIN)
        .args(["bench", "--nats", &nats.url(), "--events", &events.to_string(), "--json"])
        // A smaller fleet than the default keeps the debug build's set-up short; the
        // events are what is measured.
        .args(["--hosts", "100", "--instances", "2000"])
        .env_remove("NATS_URL")
        .output()
        .expect("run quarterdeck bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    eprintln!("bench --nats: {report}");
    let n = |key: &str| report[key].as_u64().unwrap_or_else(|| panic!("no {key} in {report}"));
    assert_eq!(n("published"), events, "{report}");
    assert_eq!(n("applied"), events, "every event applied one by one: {report}");
    assert_eq!(n("dropped"), 0, "{report}");
    assert_eq!(n("slow_consumers"), 0, "{report}");
    assert_eq!(n("rev_gaps"), 0, "{report}");
    assert_eq!(n("resyncs"), 0, "{report}");
    assert_eq!(n("revision"), n("last_revision"), "{report}");
    assert_eq!(report["timed_out"], Value::Bool(false), "{report}");
    // Peak memory is reported, and its growth once the cockpit connected within it.
    let mb = |key: &str| report[key].as_f64().unwrap_or_else(|| panic!("no {key} in {report}"));
    assert!(mb("rss_mb") > 0.0 && mb("rss_growth_mb") > 0.0, "{report}");
    assert!(mb("rss_growth_mb") <= mb("rss_mb"), "{report}");
}
