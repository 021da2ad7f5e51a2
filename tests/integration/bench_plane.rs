//! `quarterdeck bench plane` at a small size: the controller, sim hosts and a following
//! cockpit on a real nats-server the bench starts itself. Every figure is reported and the
//! deploy converged; nothing about time is asserted (a shared CI machine's speed proves
//! nothing), and the figures are the bench's to report.

use std::process::{Command, Output};

use serde_json::Value;

use crate::nats_support::{BIN, nats_server_bin};

fn bench_plane(args: &[&str], nats_server: Option<&std::path::Path>) -> Output {
    let mut command = Command::new(BIN);
    command.args(["bench", "plane"]).args(args).env_remove("NATS_URL");
    match nats_server {
        Some(bin) => command.env("NATS_SERVER_BIN", bin),
        None => command.env_remove("NATS_SERVER_BIN").env("PATH", "/nonexistent"),
    };
    command.output().expect("run quarterdeck bench plane")
}

#[test]
fn bench_plane_reports_every_figure_of_a_converged_deploy() {
    let Some(server) = nats_server_bin("bench_plane_reports_every_figure_of_a_converged_deploy") else {
        return;
    };
    let out = bench_plane(
        &["--hosts", "20", "--instances", "200", "--apps", "4", "--json", "--timeout", "300s"],
        Some(&server),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench plane failed ({}):\n{stdout}\n{stderr}", out.status);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    eprintln!("bench plane: {report}");
    let number =
        |key: &str| report[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {report}"));
    for key in [
        "converge_s",
        "instances_per_s",
        "events_per_s",
        "event_bytes_p50",
        "event_bytes_max",
        "stream_bytes_per_instance",
        "controller_rss_mb",
        "replica_lag_ms_p99",
        "restart_ready_s",
        "dropped",
    ] {
        number(key);
    }
    assert_eq!(report["converged"], Value::Bool(true), "{report}");
    assert_eq!(number("running"), 200.0, "every instance running: {report}");
    // What was stored was read back, and it is what the figures are of.
    assert!(number("events") > 0.0 && number("events_read") > 0.0, "{report}");
    assert!(
        number("event_bytes_p50") > 0.0 && number("event_bytes_p50") <= number("event_bytes_max"),
        "{report}"
    );
    assert!(number("stream_bytes_per_instance") > 0.0 && number("controller_rss_mb") > 0.0, "{report}");
    // Progress went to stderr, the figures alone to stdout.
    assert!(stderr.contains("200/200 running") || stderr.contains("deploying 200 instances"), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn bench_plane_refuses_bad_flags_and_a_missing_nats_server_clearly() {
    let refused = |args: &[&str], server: Option<&std::path::Path>, says: &str| {
        let out = bench_plane(args, server);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should be refused");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
    };
    refused(&["--hosts", "0"], None, "0 is not in 1..=10000");
    refused(&["--instances", "0"], None, "0 is not in 1..=1000000");
    refused(&["--instances", "10", "--apps", "20"], None, "--apps 20 is more than --instances 10");
    refused(&["--instances", "20000", "--apps", "10"], None, "use --apps 40 or more");
    refused(&["--hosts", "10", "--instances", "5000", "--apps", "10"], None, "use --hosts 25 or more");
    refused(&["--hosts", "2", "--instances", "4", "--apps", "2"], None, "no nats-server");
}
