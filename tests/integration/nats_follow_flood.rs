//! A flood past the cockpit's pace, on a real nats-server: the backend falls behind and
//! catches up, never loses an event and never resyncs. A stand-in controller stores the
//! events in the JetStream event stream as fast as the server acknowledges them (and
//! beacons its revision) while the headless backend's reader is held, as behind a cockpit
//! busy drawing; then the reader is let go. On a core subscription the flood overflows the
//! client's buffers (slow-consumer drops, then a gap and a resync) and the beacons, far
//! ahead of a late replica, call it lost; followed through a consumer it is only late.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::backend::Sync;
use quarterdeck::cli::bench_events::{EventStream, StandIn};
use quarterdeck::plane::fixture::fixture;

use crate::nats_support::{Follower, NatsServer, Note, check, connect, eventually_async, library_snapshot};

/// More than a core subscription buffers (262,144 messages in the client, 16,384 updates
/// in the backend's queue), so the old way had to drop some.
const FLOOD: u64 = 300_000;

/// Events before the flood, so the follow has delivered and holds its place.
const TRICKLE: u64 = 100;

/// Bounds a hang only: the debug build on a loaded 2-core machine is slow, and no time is
/// asserted.
const CATCH_UP: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_flood_makes_the_backend_late_never_lossy() {
    let name = "nats_flood_makes_the_backend_late_never_lossy";
    let Some(nats) = NatsServer::start(name) else { return };
    let url = nats.url();
    // A small fleet keeps each event small: the count is what floods.
    let (start, _) = fixture(7, 20, 200);
    let stream = EventStream::new(&start);
    let last = stream.rev(FLOOD + TRICKLE - 1);
    let stand_in =
        StandIn::start(Arc::new(connect(&url, "test/stand-in").await), start).await.expect("stand-in");

    let cockpit = Arc::new(connect(&url, "cockpit/test").await);
    let follower = Follower::start(cockpit.clone());
    let probe = connect(&url, "test/probe").await;
    follower.wait_in_step(&probe, "the replica follows the stand-in").await;
    stand_in.publish(TRICKLE).await.expect("the trickle is stored");
    let trickled = stream.rev(TRICKLE - 1);
    follower.wait_in_step(&probe, "the replica follows the trickle").await;
    assert_eq!(follower.with(|f| f.replica.fleet.revision), trickled);

    let held = follower.hold().await;
    let seconds = stand_in.publish(FLOOD).await.expect("the flood is stored");
    eprintln!("{FLOOD} events stored in {seconds:.1} s while the follower was held");
    drop(held);

    let fleet = eventually_async(CATCH_UP, "the replica catches up with the flood", || async {
        let at = follower.with(|f| (f.replica.sync, f.replica.fleet.revision));
        check(at == (Sync::Live, last), || format!("replica {at:?}, the flood ends at {last}"))?;
        library_snapshot(&probe).await
    })
    .await;
    follower.matches(&fleet).expect("the replica equals a fresh snapshot");

    let (notes, gaps, epochs, max_pending, lag) = follower
        .with(|f| (f.notes.clone(), f.replica.gaps, f.replica.epochs, f.max_pending, f.replica.lag()));
    let snapshots = notes.iter().filter(|n| matches!(n, Note::Snapshot(_))).count();
    let trouble: Vec<&Note> =
        notes.iter().filter(|n| matches!(n, Note::Gap(_) | Note::Resync(_) | Note::Problem(_))).collect();
    assert!(trouble.is_empty(), "no gap, resync or problem: {trouble:?}");
    // One snapshot, at the start: every event after it was applied one by one.
    assert_eq!(snapshots, 1, "{notes:?}");
    assert_eq!((gaps, epochs), (0, 0));
    assert_eq!(cockpit.slow_consumers(), 0, "no message dropped by the client");
    assert!(max_pending > 0, "the flood outran the follower, and the follow said how far behind it was");
    assert_eq!(lag, None, "caught up: nothing left behind");
    eprintln!("the follower was at most {max_pending} events behind");
    stand_in.stop().await;
}

/// A cockpit started before any controller made the event stream says why it cannot follow
/// yet, keeps trying, and follows once the stream is there: never a silent fallback to a
/// subscription that would drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_a_backend_started_before_the_event_stream_says_so_and_follows_once_it_exists() {
    let name = "nats_a_backend_started_before_the_event_stream_says_so_and_follows_once_it_exists";
    let Some(nats) = NatsServer::start(name) else { return };
    let url = nats.url();
    let cockpit = Arc::new(connect(&url, "cockpit/test").await);
    let follower = Follower::start(cockpit.clone());
    let problem = eventually_async(Duration::from_secs(30), "the backend says it cannot follow", || async {
        let notes = follower.notes();
        notes
            .iter()
            .find_map(|n| match n {
                Note::Problem(p) if p.contains("cannot follow the event stream QD_EVENTS") => Some(p.clone()),
                _ => None,
            })
            .ok_or_else(|| format!("notes: {notes:?}"))
    })
    .await;
    assert!(problem.ends_with("retrying"), "{problem}");
    assert_eq!(follower.with(|f| f.replica.sync), Sync::Loading, "no snapshot without a follow");

    let (start, _) = fixture(7, 4, 20);
    let stream = EventStream::new(&start);
    let stand_in =
        StandIn::start(Arc::new(connect(&url, "test/stand-in").await), start).await.expect("stand-in");
    let probe = connect(&url, "test/probe").await;
    follower.wait_in_step(&probe, "the replica follows once the stream exists").await;
    stand_in.publish(50).await.expect("events stored");
    let fleet = follower.wait_in_step(&probe, "the replica follows the events").await;
    assert_eq!(fleet.revision, stream.rev(49));
    let snapshots = follower.with(|f| f.notes.iter().filter(|n| matches!(n, Note::Snapshot(_))).count());
    assert_eq!(snapshots, 1, "the events came through the follow, not by snapshots");
    stand_in.stop().await;
}
