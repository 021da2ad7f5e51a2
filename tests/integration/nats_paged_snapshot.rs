//! A fleet whose snapshot is larger than the server's max_payload: nats-server runs with
//! `max_payload: 65536`, and the fleet's JSON is well over 64 KiB. `ctl snapshot` and a
//! headless cockpit backend still get all of it, by pages; a client that asks for the whole
//! fleet in one message gets a clear refusal instead of a timeout, and the event history,
//! too large as well, comes with its oldest events left out.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use quarterdeck::bus::{self, Bus};
use quarterdeck::protocol::{Envelope, ErrorCode, Fleet, SnapshotRequest, subjects};
use serde_json::Value;

use crate::nats_support::{
    Follower, NatsServer, Proc, WAIT, check, connect, ctl_async, ctl_ok_async, deploy_args, eventually_async,
    host_state, library_snapshot, list, try_snapshot,
};

const MAX_PAYLOAD: usize = 65_536;

/// Sim hosts large enough for every instance; addresses in distinct /24s, never contacted.
const HOSTS: [(&str, &str, &str); 3] =
    [("p1", "az-1", "127.0.11.1"), ("p2", "az-2", "127.0.12.1"), ("p3", "az-3", "127.0.13.1")];
const APPS: [&str; 3] = ["paged-a", "paged-b", "paged-c"];
const PER_APP: usize = 60;

fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

fn instance_ids(snap: &Value) -> BTreeSet<String> {
    list(snap, "instances").iter().filter_map(|i| i["id"].as_str().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_paged_snapshot_larger_than_max_payload() {
    let name = "nats_paged_snapshot_larger_than_max_payload";
    let config = format!("max_payload: {MAX_PAYLOAD}\n");
    let Some(nats) = blocking(|| NatsServer::start_with_config(name, Some(&config))) else { return };
    let url = nats.url();
    let controller = Proc::controller(&nats, "c1", &["--stale-after", "5", "--lost-after", "100"]);
    let _agents: Vec<Proc> = HOSTS
        .iter()
        .map(|(h, az, ip)| Proc::agent_with(&nats, h, az, ip, &["--sim-cores", "64", "--sim-memory", "64G"]))
        .collect();
    eventually_async(WAIT, "every host up", || async {
        let snap = blocking(|| try_snapshot(&url))?;
        check(HOSTS.iter().all(|(h, _, _)| host_state(&snap, h) == Some("up")), || {
            format!("hosts: {}", snap["hosts"])
        })
    })
    .await;

    let per_app = PER_APP.to_string();
    for app in APPS {
        // All at once: the instances need not come up one by one for this test.
        let mut args = deploy_args(app, "1.0.0", &per_app);
        args.extend(["--strategy", "all"]);
        ctl_ok_async(&url, &args).await;
    }

    let probe = connect(&url, "test/probe").await;
    assert_eq!(probe.max_payload(), MAX_PAYLOAD, "the server's max_payload reached the client");
    let fleet: Fleet = library_snapshot(&probe).await.expect("a paged snapshot through the library");
    let size = serde_json::to_vec(&fleet).expect("encode the fleet").len();
    assert!(size > MAX_PAYLOAD, "the fleet's snapshot ({size} bytes) must exceed max_payload");
    eprintln!("{name}: the fleet's snapshot is {size} bytes, max_payload {MAX_PAYLOAD}");
    assert_eq!(fleet.instances.len(), APPS.len() * PER_APP, "every instance in the paged snapshot");

    // An old client's request (no page) cannot get the whole fleet in one message: it is
    // refused, saying why, rather than left to time out.
    let whole = bus::request::<_, Fleet>(
        &probe,
        subjects::CTL_SNAPSHOT,
        &Envelope::new("test/old-client", SnapshotRequest::default()),
        Duration::from_secs(5),
    )
    .await;
    match whole {
        Err(bus::RequestError::Refused(w)) => {
            assert_eq!(w.code, ErrorCode::Unavailable, "{w}");
            assert!(w.reason.contains("max_payload"), "{w}");
        }
        other => panic!("a whole snapshot over max_payload should be refused: {other:?}"),
    }

    // `ctl snapshot --json` gets every instance.
    let out = ctl_async(&url, &["snapshot", "--json"]).await;
    assert!(out.ok(), "ctl snapshot failed: {out}");
    let snap: Value = serde_json::from_str(&out.stdout).expect("ctl snapshot --json is JSON");
    let ids = instance_ids(&snap);
    assert_eq!(ids.len(), APPS.len() * PER_APP, "ctl snapshot lists every instance");
    assert_eq!(ids, fleet.instances.keys().cloned().collect::<BTreeSet<_>>());
    for app in APPS {
        assert!(list(&snap, "apps").iter().any(|a| a["name"] == app), "app {app} in ctl snapshot");
    }

    // A cockpit backend takes the paged snapshot, then follows the event stream, and its
    // replica equals a fresh snapshot.
    let cockpit: Arc<dyn Bus> = Arc::new(connect(&url, "cockpit/test").await);
    let follower = Follower::start(cockpit);
    let followed = follower.wait_in_step(&probe, "the backend's replica equals the paged snapshot").await;
    assert_eq!(followed.instances.len(), APPS.len() * PER_APP);
    let notes = follower.notes();
    assert!(
        notes.iter().any(|n| matches!(n, crate::nats_support::Note::Snapshot(_))),
        "the backend took a snapshot: {notes:?}"
    );
    // The history of 180 deploys is larger than one message too: the controller sent the
    // newest events that fit, and said so, rather than nothing.
    assert!(
        notes.iter().any(|n| matches!(n, crate::nats_support::Note::History(k) if *k > 0)),
        "the backend got a history: {notes:?}"
    );
    let log = controller.stderr_text();
    assert!(log.contains("history answer: left out the"), "the controller says it cut the history:\n{log}");
}
