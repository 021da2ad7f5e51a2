//! Commits in batches, with one writer on the event stream, on a real nats-server.
//!
//! - nats-server drops a repeated `Nats-Msg-Id` before it checks
//!   `Nats-Expected-Last-Sequence`: a retried publish whose first copy landed is acked as a
//!   duplicate, not refused as a wrong sequence. The controller's retries rely on it.
//! - Another writer on `qd.v1.evt.>` (a superseded leader, a forger): before, the controller
//!   did not notice, and a replica that applied the other event ignored the controller's
//!   own at that revision, for good. Now the controller's next publish fails its expected
//!   last sequence, it stops leading, loads the stream afresh, and everyone converges.
//! - kill -9 of the controller in the middle of a 200-instance deploy: after the restart
//!   every instance exists once, routes equal running instances, the operation ended with a
//!   reason, and the next deploy is accepted and runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quarterdeck::bus::Bus;
use quarterdeck::plane::controller::store::{Fault, JetStreamConfig, JetStreamStore, Outgoing, Store};
use quarterdeck::protocol::{AppSpec, Change, Envelope, Event, EventKind, InstanceState, encode};
use serde_json::Value;

use crate::nats_support::{
    Follower, HOSTS, NatsServer, Plane, PlaneConfig, Proc, agent_reports, block_on, check, connect, ctl,
    ctl_async, deploy_args, eventually, eventually_async, library_snapshot, list, plane_or_skip, str_of,
    try_snapshot,
};

/// nats-server (2.15) checks `Nats-Expected-Last-Sequence` before its duplicate window: a
/// retried publish whose first copy landed is refused as a wrong sequence, not acked as a
/// duplicate. The store tells its own copies (same message id) from another writer's.
#[test]
fn nats_a_retried_commit_whose_first_copy_landed_is_not_taken_for_another_writer() {
    let test = "nats_a_retried_commit_whose_first_copy_landed_is_not_taken_for_another_writer";
    let Some(nats) = NatsServer::start(test) else { return };
    block_on(async {
        use async_nats::jetstream::context::PublishErrorKind;
        use async_nats::jetstream::message::PublishMessage;
        let bus = connect(&nats.url(), "test/store").await;
        let js = bus.jetstream();
        let store = JetStreamStore::open(&bus, &JetStreamConfig::default()).await.expect("open the store");
        store.load().await.expect("load");
        let out = |rev: u64| {
            let event = Event {
                rev,
                ts: quarterdeck::protocol::clock::now_ms(),
                kind: EventKind::RouterError,
                app: None,
                host: None,
                instance: None,
                operation_id: None,
                message: format!("event {rev}"),
                changes: vec![],
                audit: None,
            };
            let envelope = Envelope::new("controller", event);
            let bytes = Bytes::from(encode(&envelope).expect("encode"));
            Outgoing { subject: "qd.v1.evt.router_error".into(), envelope, bytes }
        };
        let raw = |o: &Outgoing, expect: Option<u64>| {
            let mut message = PublishMessage::build().payload(o.bytes.clone()).message_id(&o.envelope.id);
            if let Some(expect) = expect {
                message = message.expected_last_sequence(expect);
            }
            let (js, subject) = (js.clone(), o.subject.clone());
            async move { js.send_publish(subject, message).await?.await }
        };
        let (one, two, three, four) = (out(1), out(2), out(3), out(4));
        store.commit(&[one.clone(), two]).await.expect("a first batch");

        // The server's order, checked: the same message id with its old expectation is
        // refused; without one it is dropped as a duplicate of the first copy.
        let again = raw(&one, Some(0)).await.expect_err("refused before the duplicate check");
        assert_eq!(again.kind(), PublishErrorKind::WrongLastSequence, "{again}");
        let dup = raw(&one, None).await.expect("a duplicate is acked");
        assert_eq!((dup.sequence, dup.duplicate), (1, true));

        // Event 3 landed but its ack was lost: the commit of 3 and 4 adopts it.
        raw(&three, None).await.expect("the first copy of 3");
        store.commit(&[three, four]).await.expect("3 is recognised as ours, 4 stored after it");
        let revs: Vec<u64> = store.history(0, 100).await.expect("history").iter().map(|e| e.rev).collect();
        assert_eq!(revs, vec![1, 2, 3, 4], "each event once, in order");

        // Anything else after the last sequence is another writer's, and nothing of a
        // batch is stored after it: not even the event whose expected sequence it meets.
        raw(&out(5), None).await.expect("another writer's event");
        let err = store.commit(&[out(5), out(6)]).await.expect_err("the stream moved on without this store");
        assert_eq!((err.fault, err.stored), (Fault::Superseded, 0), "{err}");
        let revs: Vec<u64> = store.history(0, 100).await.expect("history").iter().map(|e| e.rev).collect();
        assert_eq!(revs, vec![1, 2, 3, 4, 5], "only the other writer's event after 4");
    });
}

#[test]
fn nats_another_writer_on_the_stream_deposes_the_controller_which_reloads_and_converges() {
    let test = "nats_another_writer_on_the_stream_deposes_the_controller_which_reloads_and_converges";
    let plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    plane.deploy("web", "1.0.0", 2);
    block_on(async {
        let bus: Arc<dyn Bus> = Arc::new(connect(&url, "test/cockpit").await);
        let follower = Follower::start(bus.clone());
        let fleet = follower.wait_in_step(bus.as_ref(), "the cockpit follows the plane").await;

        // The next revision, written by someone else on an event subject.
        let app = AppSpec {
            name: "forged".into(),
            version: "6.6.6".into(),
            instances: 0,
            image: "forged:1".into(),
            port: 80,
            constraints: Default::default(),
            domain: "forged.example".into(),
            tags: vec![],
            run: Default::default(),
            shortfall: None,
            digest: None,
        };
        let forged = Event {
            rev: fleet.revision + 1,
            ts: quarterdeck::protocol::clock::now_ms(),
            kind: EventKind::AppUpdated,
            app: Some("forged".into()),
            host: None,
            instance: None,
            operation_id: None,
            message: "written by another writer".into(),
            changes: vec![Change::App(app)],
            audit: None,
        };
        let bytes = encode(&Envelope::new("someone-else", forged)).expect("encode");
        bus.publish("qd.v1.evt.x", Bytes::from(bytes)).await.expect("publish");

        // The controller's next commit finds the stream moved on without it.
        eventually_async(Duration::from_secs(60), "a deploy accepted after the other writer", || async {
            let out = ctl_async(&url, &without_wait(deploy_args("after", "1.0.0", "1"))).await;
            check(out.ok(), || format!("{out}"))
        })
        .await;
        // It reloaded the history as the stream has it: the other writer's event included.
        let fleet = follower.wait_in_step(bus.as_ref(), "the cockpit and the controller agree again").await;
        assert!(fleet.apps.contains_key("forged"), "the stream is the truth: {:?}", fleet.apps.keys());
        let log = plane.controller.stderr_text();
        assert!(
            log.contains("another writer published on the event stream"),
            "the controller says why:\n{log}"
        );
        assert!(log.contains("stopped leading"), "it stopped leading:\n{log}");
        eventually_async(Duration::from_secs(60), "both apps run", || async {
            let fleet = library_snapshot(bus.as_ref()).await?;
            let running =
                |app: &str| fleet.instances_of(app).filter(|i| i.state == InstanceState::Running).count();
            check(running("web") == 2 && running("after") == 1, || {
                format!("web {} of 2, after {} of 1 running", running("web"), running("after"))
            })
        })
        .await;
        follower.wait_in_step(bus.as_ref(), "the cockpit follows the plane to the end").await;
    });
}

/// The deploy's size, and when the controller is killed after it was accepted.
const BIG: usize = 200;
const KILL_AFTER: Duration = Duration::from_millis(1_500);

#[test]
fn nats_a_controller_killed_mid_200_instance_deploy_leaves_every_instance_once() {
    let test = "nats_a_controller_killed_mid_200_instance_deploy_leaves_every_instance_once";
    let Some(nats) = NatsServer::start(test) else { return };
    let config = PlaneConfig::default();
    let controller = Proc::controller(&nats, "c1", &config.controller);
    // Room for the whole deploy (and the next one beside it) on two hosts.
    let big = ["--sim-cores", "512", "--sim-memory", "1024G"];
    let agents = HOSTS.iter().map(|(h, az, ip)| Proc::agent_with(&nats, h, az, ip, &big)).collect();
    let mut plane = Plane { agents, controller, config, nats };
    plane.wait_hosts_up();
    let url = plane.url();
    let n = BIG.to_string();

    let out = ctl(&url, &without_wait(deploy_args("big", "1.0.0", &n)));
    assert!(out.ok(), "deploy accepted: {out}");
    let accepted = Instant::now();
    eventually(Duration::from_secs(60), "the deploy under way", || {
        let s = try_snapshot(&url)?;
        let placed = list(&s, "instances").iter().filter(|i| i["app"] == "big").count();
        check(placed > 0, || "nothing placed yet".into())
    });
    std::thread::sleep(KILL_AFTER.saturating_sub(accepted.elapsed()));
    let before = try_snapshot(&url).ok();
    plane.restart_controller("c1");
    if let Some(s) = before {
        let placed = list(&s, "instances").iter().filter(|i| i["app"] == "big").count();
        eprintln!("killed with {placed} of {BIG} instances placed");
    }

    let s = eventually(Duration::from_secs(120), "the deploy's operation ended after the restart", || {
        let s = try_snapshot(&url)?;
        ended(&s, "big")?;
        Ok(s)
    });
    eventually(Duration::from_secs(120), "big settled after the restart", || {
        let s = try_snapshot(&url)?;
        once_and_routed(&s, "big", None)
    });
    drop(s);

    // Accepted: the answer waits until the command is durable, which a loaded machine may
    // take longer for than the client waits; a client then asks again, as a user would.
    eventually(Duration::from_secs(120), "the next deploy accepted", || {
        let s = try_snapshot(&url)?;
        let started =
            list(&s, "operations").iter().any(|o| o["app"] == "big" && str_of(o, "target").contains("1.0.1"));
        if started {
            return Ok(());
        }
        let out = ctl(&url, &without_wait(deploy_args("big", "1.0.1", &n)));
        check(out.ok(), || format!("{out}"))
    });
    eventually(Duration::from_secs(180), "the next deploy runs to the end", || {
        let s = try_snapshot(&url)?;
        ended(&s, "big")?;
        once_and_routed(&s, "big", Some(BIG))?;
        let versions: BTreeSet<&str> = list(&s, "instances")
            .iter()
            .filter(|i| i["app"] == "big")
            .map(|i| str_of(i, "version"))
            .collect();
        check(versions == BTreeSet::from(["1.0.1"]), || format!("versions {versions:?}"))
    });
    // The agents run each instance once: what they report is what the controller has.
    let s = try_snapshot(&url).expect("snapshot");
    let known: BTreeSet<String> = list(&s, "instances")
        .iter()
        .filter(|i| i["app"] == "big")
        .map(|i| str_of(i, "id").to_string())
        .collect();
    let mut reported: BTreeMap<String, usize> = BTreeMap::new();
    for report in agent_reports(&url).values().flatten().filter(|r| r.app == "big") {
        *reported.entry(report.id.clone()).or_default() += 1;
    }
    let twice: Vec<&String> = reported.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(twice.is_empty(), "containers reported twice: {twice:?}");
    let reported: BTreeSet<String> = reported.into_keys().collect();
    assert_eq!(reported, known, "the agents run exactly the controller's instances");
}

/// Commit throughput of the store, reported, not asserted: the same small events (each
/// an app update, 100 apps) committed one at a time as before, then in batches of 256 as
/// the publisher does now. Both keep every event once, in order, and the same state.
#[test]
fn nats_commit_throughput_one_at_a_time_and_in_batches() {
    let test = "nats_commit_throughput_one_at_a_time_and_in_batches";
    const EVENTS: u64 = 3_000;
    let mut rates = Vec::new();
    for batch in [1usize, 256] {
        let Some(nats) = NatsServer::start(test) else { return };
        let rate = block_on(async {
            let bus = connect(&nats.url(), "test/store").await;
            let store =
                JetStreamStore::open(&bus, &JetStreamConfig::default()).await.expect("open the store");
            store.load().await.expect("load");
            let events: Vec<Outgoing> = (1..=EVENTS).map(|rev| app_update(rev, rev % 100)).collect();
            let started = Instant::now();
            for chunk in events.chunks(batch) {
                store.commit(chunk).await.expect("commit");
            }
            let rate = EVENTS as f64 / started.elapsed().as_secs_f64();
            let revs: Vec<u64> =
                store.history(0, 10_000).await.expect("history").iter().map(|e| e.rev).collect();
            assert_eq!(revs, (1..=EVENTS).collect::<Vec<u64>>(), "batch {batch}: each once, in order");
            let fleet = store.load().await.expect("load again");
            assert_eq!((fleet.revision, fleet.apps.len()), (EVENTS, 100), "batch {batch}");
            assert_eq!(fleet.apps["a7"].version, format!("{}", EVENTS - 93), "the last change of a key wins");
            rate
        });
        rates.push((batch, rate));
    }
    eprintln!("commit throughput, {EVENTS} events: {rates:?} (batch size, events/s)");
}

fn app_update(rev: u64, n: u64) -> Outgoing {
    let name = format!("a{n}");
    let app = AppSpec {
        name: name.clone(),
        version: rev.to_string(),
        instances: 1,
        image: "img:1".into(),
        port: 80,
        constraints: Default::default(),
        domain: format!("{name}.local"),
        tags: vec![],
        run: Default::default(),
        shortfall: None,
        digest: None,
    };
    let event = Event {
        rev,
        ts: quarterdeck::protocol::clock::now_ms(),
        kind: EventKind::AppUpdated,
        app: Some(name.clone()),
        host: None,
        instance: None,
        operation_id: None,
        message: format!("{name} updated"),
        changes: vec![Change::App(app)],
        audit: None,
    };
    let subject = format!("qd.v1.evt.app_updated.{name}");
    let envelope = Envelope::new("controller", event);
    let bytes = Bytes::from(encode(&envelope).expect("encode"));
    Outgoing { subject, envelope, bytes }
}

fn without_wait(args: Vec<&str>) -> Vec<&str> {
    args.into_iter().filter(|a| !matches!(*a, "--wait" | "--wait-timeout" | "60s")).collect()
}

/// No operation of `app` running; each that ended failed with a reason or succeeded.
fn ended(s: &Value, app: &str) -> Result<(), String> {
    let ops: Vec<&Value> = list(s, "operations").iter().filter(|o| o["app"] == app).collect();
    check(!ops.is_empty(), || format!("no operation of {app}"))?;
    for op in ops {
        match op["state"].as_str() {
            Some("succeeded") => {}
            Some("failed") => {
                let reason = op["error"].as_str().unwrap_or_default();
                check(!reason.is_empty(), || format!("failed without a reason: {}", op["id"]))?;
            }
            other => return Err(format!("operation {} is {other:?}", op["id"])),
        }
    }
    Ok(())
}

/// Every instance of `app` running, each index once (and `count` of them if given);
/// routes exactly the running instances' endpoints.
fn once_and_routed(s: &Value, app: &str, count: Option<usize>) -> Result<(), String> {
    let instances: Vec<&Value> = list(s, "instances").iter().filter(|i| i["app"] == app).collect();
    let indexes: BTreeSet<u64> = instances.iter().filter_map(|i| i["index"].as_u64()).collect();
    check(indexes.len() == instances.len(), || {
        format!("{} instances on {} indexes", instances.len(), indexes.len())
    })?;
    if let Some(count) = count {
        check(instances.len() == count, || format!("{} instances of {count}", instances.len()))?;
    }
    let not_running: Vec<&str> =
        instances.iter().filter(|i| i["state"] != "running").map(|i| str_of(i, "id")).collect();
    check(not_running.is_empty(), || format!("not running: {not_running:?}"))?;
    let endpoints: BTreeSet<&str> = instances.iter().map(|i| str_of(i, "endpoint")).collect();
    let routes: Vec<&str> =
        list(s, "routes").iter().filter(|r| r["app"] == app).map(|r| str_of(r, "backend")).collect();
    let routed: BTreeSet<&str> = routes.iter().copied().collect();
    check(routed == endpoints && routes.len() == endpoints.len(), || {
        format!("{} routes, {} running endpoints", routes.len(), endpoints.len())
    })
}
