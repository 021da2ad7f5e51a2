//! A headless cockpit backend on a real nats-server: it keeps a replica that is never
//! silently wrong. The bus restarts; an event is lost in the middle of a stream; the last
//! event of a quiet stream is lost. Each time the replica ends equal to a fresh snapshot.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use quarterdeck::bus::Bus;
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{EventKind, HostState, InstanceState, RouteState};

use crate::nats_support::{
    DropOneEvent, Follower, Note, Plane, PlaneConfig, WAIT, check, connect, ctl_ok_async, deploy_args,
    eventually_async, library_snapshot,
};

/// Runs blocking harness code (process spawning, polling ctl) from an async test.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

fn count_lines(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_bus_restart_backend_reconnects_and_resyncs() {
    let name = "nats_bus_restart_backend_reconnects_and_resyncs";
    let Some(mut plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 3).await;
    let url = plane.url();

    let cockpit: Arc<dyn Bus> = Arc::new(connect(&url, "cockpit/test").await);
    let follower = Follower::start(cockpit);
    let probe = connect(&url, "test/probe").await;
    let before = follower.wait_in_step(&probe, "the replica follows the controller").await;
    assert_eq!(before.instances.values().filter(|i| i.state == InstanceState::Running).count(), 3);
    let notes = follower.notes();
    assert!(notes.iter().any(|n| matches!(n, Note::History(k) if *k > 0)), "history loaded: {notes:?}");
    let mark = notes.len();

    let stopped = Instant::now();
    blocking(|| plane.nats.stop());
    eventually_async(WAIT, "the backend reports the disconnection", || async {
        check(follower.with(|f| f.find(mark, |n| *n == Note::Disconnected).is_some()), || {
            format!("{:?}", follower.notes())
        })
    })
    .await;
    blocking(|| plane.nats.start_again());
    let restarted = Instant::now();
    let restarted_ms = now_ms();

    // Disconnected, then Connected, then a fresh snapshot, and the replica equals the
    // controller's state.
    let after = eventually_async(WAIT, "the backend reconnects and resyncs", || async {
        let fleet = library_snapshot(&probe).await?;
        let sequence = follower.with(|f| {
            let down = f.find(mark, |n| *n == Note::Disconnected)?;
            let up = f.find(down, |n| *n == Note::Connected)?;
            let fresh = f.find(up, |n| matches!(n, Note::Snapshot(_)))?;
            Some((f.times[up], f.times[fresh]))
        });
        let Some((connected, fresh)) = sequence else {
            return Err(format!("notes: {:?}", follower.notes()));
        };
        follower.matches(&fleet)?;
        Ok((fleet, connected, fresh))
    })
    .await;
    let (after, connected, fresh) = after;
    eprintln!(
        "bus restart to resynced replica: nats-server ready -> backend connected {:?}, -> fresh snapshot \
         applied {:?} (equal to the controller's; checked {:?} after ready, polling every 100 ms); \
         {:?} from the stop",
        connected.saturating_duration_since(restarted),
        fresh.saturating_duration_since(restarted),
        restarted.elapsed(),
        fresh.saturating_duration_since(stopped),
    );

    // Nothing was pruned or replaced while the bus was down.
    let ids = |f: &quarterdeck::protocol::Fleet| f.instances.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(ids(&after), ids(&before), "the same instances");
    assert!(after.instances.values().all(|i| i.state == InstanceState::Running), "{:?}", after.instances);
    assert!(after.revision >= before.revision);
    let lost = follower.with(|f| f.replica.events.iter().any(|e| e.kind == EventKind::HostLost));
    assert!(!lost, "no host was judged lost because of the bus");

    // The controller and the agents reconnected (each logs its connection events) and the
    // agents heartbeat again.
    eventually_async(WAIT, "every service logged its reconnection", || async {
        let mut missing = Vec::new();
        for p in std::iter::once(&plane.controller).chain(plane.agents.iter()) {
            let log = p.stderr_text();
            if count_lines(&log, "disconnected from") == 0 || count_lines(&log, ": connected to") < 2 {
                missing.push(format!("{}:\n{log}", p.name));
            }
        }
        check(missing.is_empty(), || missing.join("\n"))
    })
    .await;
    eventually_async(WAIT, "both agents heartbeat to the controller again", || async {
        let fleet = library_snapshot(&probe).await?;
        let fresh = fleet.hosts.values().all(|h| h.state == HostState::Up && h.last_heartbeat > restarted_ms);
        check(fresh && fleet.hosts.len() == 2, || format!("{:?}", fleet.hosts))
    })
    .await;

    // The subscriptions survived: a change made now reaches the replica as an event.
    let backend = after.routes.values().next().expect("a route").backend.clone();
    let args = ["route", "disable", "--app", "shop-web", "--backend", &backend];
    ctl_ok_async(&url, &args).await;
    let fleet = follower.wait_in_step(&probe, "the replica follows the route change").await;
    assert!(fleet.routes.values().any(|r| r.backend == backend && r.state == RouteState::Disabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_rev_gap_makes_the_backend_take_a_fresh_snapshot() {
    let name = "nats_rev_gap_makes_the_backend_take_a_fresh_snapshot";
    let Some(plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let url = plane.url();

    let dropper = Arc::new(DropOneEvent::new(connect(&url, "cockpit/test").await, 3));
    let follower = Follower::start(dropper.clone());
    let probe = connect(&url, "test/probe").await;
    follower.wait_in_step(&probe, "the replica follows the controller").await;
    let mark = follower.notes().len();

    // Lose the third event of a scale-up from 2 to 4: many more follow it.
    dropper.arm();
    ctl_ok_async(&url, &deploy_args("shop-web", "1.0.0", "4")).await;
    let dropped = dropper.dropped_rev().expect("an event was dropped");

    let fleet = follower.wait_in_step(&probe, "the replica resyncs after the gap").await;
    assert_eq!(fleet.instances.values().filter(|i| i.state == InstanceState::Running).count(), 4);
    let notes = follower.notes();
    let after: Vec<&Note> = notes[mark..].iter().collect();
    let gaps: Vec<&Note> = after.iter().copied().filter(|n| matches!(n, Note::Gap(_))).collect();
    assert_eq!(gaps.len(), 1, "one gap: {after:?}");
    let Note::Gap(gap) = gaps[0] else { unreachable!() };
    assert_eq!((gap.have, gap.got), (dropped - 1, dropped + 1), "the gap is the dropped event");
    let g = notes.iter().position(|n| matches!(n, Note::Gap(_))).expect("gap");
    assert_eq!(notes.get(g + 1), Some(&Note::Resync("gap")), "a resync right after the gap: {after:?}");
    let fresh = notes[g..].iter().find_map(|n| match n {
        Note::Snapshot(rev) => Some(*rev),
        _ => None,
    });
    assert!(fresh.is_some_and(|rev| rev > dropped), "a fresh snapshot past the lost event: {after:?}");
    assert_eq!(follower.with(|f| f.replica.gaps), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_lost_last_event_is_found_by_the_controller_beacon() {
    let name = "nats_lost_last_event_is_found_by_the_controller_beacon";
    let Some(plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let url = plane.url();

    // A route command commits two events: the route change, then its AUDIT record. The
    // second, the last, is dropped.
    let dropper = Arc::new(DropOneEvent::new(connect(&url, "cockpit/test").await, 2));
    let follower = Follower::start(dropper.clone());
    let probe = connect(&url, "test/probe").await;
    let before = follower.wait_in_step(&probe, "the replica follows the controller").await;
    let mark = follower.notes().len();

    // One command, and its last event is lost: no later event reveals the gap.
    dropper.arm();
    let backend = before.routes.values().next().expect("a route").backend.clone();
    ctl_ok_async(&url, &["route", "disable", "--app", "shop-web", "--backend", &backend]).await;

    let fleet = follower.wait_in_step(&probe, "the replica resyncs after the beacon").await;
    let dropped = dropper.dropped_rev().expect("the audit event was dropped");
    assert_eq!(dropped, before.revision + 2);
    assert!(fleet.routes.values().any(|r| r.backend == backend && r.state == RouteState::Disabled));
    let notes = follower.notes();
    assert!(notes[mark..].contains(&Note::Resync("beacon")), "{:?}", &notes[mark..]);
    assert!(!notes[mark..].iter().any(|n| matches!(n, Note::Gap(_))), "{:?}", &notes[mark..]);
}
