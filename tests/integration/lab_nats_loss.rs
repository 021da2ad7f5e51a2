//! The lab's NATS cluster loses the node that leads JetStream's meta group in the middle of
//! a 20-instance rolling deploy: the deploy succeeds, every instance runs once, the event
//! stream has no gap, and a headless cockpit that followed it all equals a fresh snapshot.

use std::sync::Arc;
use std::time::Duration;

use crate::lab_support::{Lab, placement_mismatches, streams};
use crate::nats_support::{Follower, check, eventually, instances_of, str_of};

/// The event stream's (first_seq, last_seq, messages) as node `n` has it.
fn event_stream(lab: &Lab, n: usize) -> Result<(u64, u64, u64), String> {
    let all = streams(&lab.jsz(n)?);
    let state = &all.get("QD_EVENTS").ok_or("no QD_EVENTS on this node")?["state"];
    let num = |k: &str| state[k].as_u64().ok_or_else(|| format!("no {k} in {state}"));
    Ok((num("first_seq")?, num("last_seq")?, num("messages")?))
}

#[test]
fn lab_nats_cluster_survives_losing_its_meta_leader() {
    const N: usize = 20;
    let Some(lab) = Lab::up("lab-nats-loss", 2) else { return };
    let image = lab.push_test_image();
    let out = lab.deploy("site", "v1", N as u32, &image);
    assert!(out.ok(), "deploy of v1: {out}");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bus = rt.block_on(lab.connect("test/lab-cockpit"));
    let follower = {
        let _in = rt.enter();
        Follower::start(Arc::new(bus.clone()))
    };
    rt.block_on(follower.wait_in_step(&bus, "the cockpit in step before the kill"));

    let leader = eventually(Duration::from_secs(30), "a JetStream meta leader", || lab.meta_leader(1));
    let (_, last_before, _) =
        eventually(Duration::from_secs(30), "the event stream's state", || event_stream(&lab, leader));
    // The rolling deploy of v2 runs; the meta leader dies once its first v2 instances run.
    let out = std::thread::scope(|s| {
        let rolling = s.spawn(|| lab.deploy("site", "v2", N as u32, &image));
        eventually(Duration::from_secs(120), "the rolling deploy under way", || {
            let snap = lab.snapshot();
            let v2 = instances_of(&snap, "site").iter().filter(|i| str_of(i, "version") == "v2").count();
            check((1..N).contains(&v2), || format!("{v2} of {N} instances at v2"))
        });
        lab.run_ok(&["kill-nats", &leader.to_string()]);
        eprintln!("figure: meta leader node {leader} killed during the rolling deploy of {N} instances");
        rolling.join().expect("the deploy's thread")
    });
    assert!(out.ok(), "the rolling deploy during the meta leader's death: {out}");
    let other = (1..=3).find(|n| *n != leader).expect("another node");
    let new_leader =
        eventually(Duration::from_secs(60), "a new meta leader", || match lab.meta_leader(other) {
            Ok(n) if n != leader => Ok(n),
            Ok(n) => Err(format!("node {other} still names node {n}")),
            Err(e) => Err(e),
        });
    eprintln!("meta leader: node {leader} killed, node {new_leader} leads now");
    let snap = lab.snapshot();
    let versions: Vec<&str> = instances_of(&snap, "site").iter().map(|i| str_of(i, "version")).collect();
    assert_eq!(versions, vec!["v2"; N], "site after the deploy: {snap}");
    // Every instance exists once: each host's daemon holds exactly what the snapshot places.
    let mismatches = placement_mismatches(&lab, &snap);
    assert!(mismatches.is_empty(), "daemons and snapshot differ: {mismatches:#?}");

    // No event lost: the stream holds every sequence from its first to its last, past
    // where it stood before the kill, and the revisions in it follow one another.
    let (first, last, messages) =
        eventually(Duration::from_secs(30), "the event stream's state", || event_stream(&lab, new_leader));
    assert!(last > last_before, "the stream did not grow after the kill: {last} <= {last_before}");
    assert_eq!(messages, last - first + 1, "the stream has a gap: {messages} messages in {first}..={last}");
    // Each node left holds the whole stream (a copy of one replica would be on one node
    // only, and gone with it when that node is the one killed).
    for n in (1..=3).filter(|n| *n != leader) {
        let (_, node_last, node_messages) =
            eventually(Duration::from_secs(30), "every node caught up", || {
                let state = event_stream(&lab, n)?;
                if state.1 < last { Err(format!("node {n} at {} of {last}", state.1)) } else { Ok(state) }
            });
        assert_eq!(node_messages, node_last - first + 1, "node {n}'s copy has a gap");
    }
    let events: Vec<serde_json::Value> = lab
        .ctl_ok(&["events", "--json", "--limit", "100000", "--since", "24h"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("ctl events: not JSON ({e}): {l}")))
        .collect();
    let revs: Vec<u64> = events.iter().filter_map(|e| e["rev"].as_u64()).collect();
    assert_eq!(revs.len(), events.len(), "an event without a revision");
    assert!(revs.windows(2).all(|w| w[1] == w[0] + 1), "revisions in the stream skip: {revs:?}");

    // The cockpit that followed it all equals a fresh snapshot.
    rt.block_on(follower.wait_in_step(&bus, "the cockpit equals a fresh snapshot after the kill"));
}
