//! Faults of the bus and of the controller's lease (issue 12, fault 1): a leader that
//! cannot renew its lease because nats-server is down is fenced, not ended, and leads again
//! when the bus returns; one whose lease another controller took becomes a standby.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::nats_support::{
    PlaneConfig, Proc, WAIT, check, ctl, ctl_json_lines, eventually, list, plane_or_skip, try_snapshot,
};

const LEASE_TTL: &str = "2s";

fn config() -> PlaneConfig {
    // Hosts are never judged lost here: the subject is the controller.
    PlaneConfig {
        controller: vec!["--lease-ttl", LEASE_TTL, "--stale-after", "5", "--lost-after", "100"],
        ..PlaneConfig::default()
    }
}

/// A backend of `app` from a snapshot, for a command that changes little (a weight).
fn a_backend(snap: &Value, app: &str) -> String {
    list(snap, "routes")
        .iter()
        .find(|r| r["app"] == app)
        .and_then(|r| r["backend"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("a route of {app}: {}", snap["routes"]))
}

/// Sends `route weight` until the controller carries it out; how long that took.
fn command_accepted(url: &str, backend: &str, weight: &str, within: Duration) -> Duration {
    let start = Instant::now();
    eventually(within, "the controller carries out a command", || {
        let out =
            ctl(url, &["route", "weight", "--app", "shop-web", "--backend", backend, "--weight", weight]);
        check(out.ok(), || format!("{out}"))
    });
    start.elapsed()
}

/// The revisions in the durable history are 1, 2, 3 ... with none missing or twice.
fn assert_contiguous_history(url: &str) -> u64 {
    let events = ctl_json_lines(url, &["events", "--since", "1h"]);
    let revs: Vec<u64> = events.iter().filter_map(|e| e["rev"].as_u64()).collect();
    assert!(!revs.is_empty(), "no events in the history");
    let first = revs[0];
    for (n, rev) in revs.iter().enumerate() {
        assert_eq!(*rev, first + n as u64, "revision {n} of the history: {revs:?}");
    }
    assert_eq!(first, 1, "the history starts at revision 1: {revs:?}");
    *revs.last().unwrap_or(&0)
}

#[test]
fn nats_outage_of_three_lease_ttls_fences_the_leader_which_leads_again() {
    let name = "nats_outage_of_three_lease_ttls_fences_the_leader_which_leads_again";
    let mut plane = plane_or_skip!(name, config());
    plane.deploy("shop-web", "1.0.0", 2);
    let url = plane.url();
    let snap = eventually(WAIT, "shop-web routed", || {
        let snap = try_snapshot(&url)?;
        check(list(&snap, "routes").len() == 2, || format!("routes: {}", snap["routes"]))?;
        Ok(snap)
    });
    let backend = a_backend(&snap, "shop-web");
    command_accepted(&url, &backend, "2", WAIT);
    let before = assert_contiguous_history(&url);

    // Two outages of three lease TTLs each: the server frozen (what the controller sent
    // meanwhile, a lease renewal it gave up on, is applied when it thaws), then stopped
    // and started again on the same store. The fixed waits are the outages themselves.
    let outage = Duration::from_secs(6);
    plane.nats.pause();
    std::thread::sleep(outage);
    plane.nats.resume();
    let took_frozen = command_accepted(&url, &backend, "3", Duration::from_secs(30));
    plane.nats.stop();
    std::thread::sleep(outage);
    assert!(
        plane.controller.running(),
        "the controller exited during the outage:\n{}",
        plane.controller.stderr_text()
    );
    plane.nats.start_again();
    let took = command_accepted(&url, &backend, "4", Duration::from_secs(30));

    let log = plane.controller.stderr_text();
    assert!(plane.controller.running(), "the controller exited:\n{log}");
    assert!(log.contains("fenced"), "the controller did not say it was fenced:\n{log}");
    assert!(!log.contains("stopped leading") && !log.contains("stopping"), "{log}");
    eprintln!(
        "the controller carried out a command {took_frozen:?} after the frozen server thawed, {took:?} after it was started again"
    );
    for (what, took) in [("thawed", took_frozen), ("started again", took)] {
        assert!(
            took <= Duration::from_secs(5),
            "led again {took:?} after the bus was {what}, not within 5 s:\n{log}"
        );
    }

    let after = assert_contiguous_history(&url);
    assert!(after > before, "the command after the outage is in the history: {before} -> {after}");
    let snap = try_snapshot(&url).expect("a snapshot");
    assert_eq!(snap["revision"].as_u64(), Some(after), "the snapshot is at the history's last revision");
}

#[test]
fn nats_a_leader_whose_lease_was_taken_becomes_a_standby() {
    let name = "nats_a_leader_whose_lease_was_taken_becomes_a_standby";
    let mut plane = plane_or_skip!(name, config());
    plane.deploy("shop-web", "1.0.0", 2);
    let url = plane.url();
    let mut c2 = Proc::controller(&plane.nats, "c2", &config().controller);
    c2.wait_for_log("standby");

    // c1 is paused past its lease: c2 takes it. Woken, c1 must find itself fenced (its
    // lease has run out) and then superseded, and wait as a standby instead of exiting.
    let pid = plane.controller.pid().expect("c1 runs");
    signal(pid, "-STOP");
    c2.wait_for_log("is serving");
    signal(pid, "-CONT");
    plane.controller.wait_for_log("stopped leading");
    std::thread::sleep(Duration::from_secs(2));
    let log = plane.controller.stderr_text();
    assert!(plane.controller.running(), "c1 exited instead of waiting:\n{log}");
    assert!(log.matches("is serving").count() == 1, "c1 leads again while c2 holds the lease:\n{log}");

    // c2 serves; c1 takes over when c2 is gone, with c2's changes (it reloads the state).
    let snap = try_snapshot(&url).expect("c2 answers");
    let backend = a_backend(&snap, "shop-web");
    command_accepted(&url, &backend, "7", WAIT);
    c2.kill9();
    eventually(WAIT, "c1 leads again", || {
        let log = plane.controller.stderr_text();
        check(log.matches("is serving").count() == 2, || log.clone())
    });
    let snap = eventually(WAIT, "c1 answers", || try_snapshot(&url));
    let weight =
        list(&snap, "routes").iter().find(|r| r["backend"] == backend.as_str()).map(|r| r["weight"].clone());
    assert_eq!(weight, Some(Value::from(7)), "c1 reloaded the state c2 left: {}", snap["routes"]);
    command_accepted(&url, &backend, "8", WAIT);
    assert_contiguous_history(&url);
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill").arg(sig).arg(pid.to_string()).status().expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}
