//! Events that carry what changed (issue 14), on a real nats-server with two sim agents.
//!
//! Before, every step event carried the whole operation with every step of every
//! instance, so a deploy of N instances stored O(N²) bytes: the last step events of a
//! 50-instance deploy weighed tens of KB. Now a step event carries its step, and the end
//! its outcome: the largest stored event stays small whatever the deploy's size. The
//! ended operation is compacted (its steps dropped from the state and the KV, their counts
//! kept), and a controller killed with -9 and started again (state from KV, then replay)
//! and a fresh cockpit backend both show it ended, the same.

use std::sync::Arc;

use futures_util::StreamExt;
use quarterdeck::bus::NatsBus;
use quarterdeck::protocol::{Change, Event, Fleet, Operation, OperationState, StepState, decode};

use crate::nats_support::{
    Follower, HOSTS, NatsServer, Proc, WAIT, block_on, check, connect, ctl_ok, eventually, host_state,
    library_snapshot, try_snapshot,
};

const INSTANCES: usize = 50;
/// The stored size every event must stay under, whatever the deploy's size.
const MAX_EVENT_BYTES: usize = 4 * 1024;

/// Every event stored in `QD_EVENTS`, with its stored size, oldest first.
async fn stored_events(bus: &NatsBus) -> Vec<(usize, Event)> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    let js = bus.jetstream();
    let mut stream = js.get_stream("QD_EVENTS").await.expect("the event stream");
    let last = stream.info().await.expect("stream info").state.last_sequence;
    let consumer = stream.create_consumer(OrderedConfig::default()).await.expect("a reader");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(WAIT, messages.next()).await {
        let seq = msg.info().expect("message info").stream_sequence;
        let event = decode::<Event>(&msg.payload).expect("a stored event decodes").body;
        out.push((msg.payload.len(), event));
        if seq >= last {
            break;
        }
    }
    out
}

/// The keys of the state bucket.
async fn state_keys(bus: &NatsBus) -> Vec<String> {
    let kv = bus.jetstream().get_key_value("qd_state").await.expect("the state bucket");
    let keys = kv.keys().await.expect("keys");
    keys.filter_map(|k| async move { k.ok() }).collect().await
}

/// Sends a signal (`-STOP`, `-CONT`) to a process this test started.
fn signal(proc: &Proc, sig: &str) {
    let pid = proc.pid().expect("the process runs").to_string();
    let status = std::process::Command::new("kill").args([sig, &pid]).status().expect("kill runs");
    assert!(status.success(), "kill {sig} {pid}");
}

fn the_operation(fleet: &Fleet, app: &str) -> Operation {
    let ops: Vec<&Operation> = fleet.operations.values().filter(|o| o.app == app).collect();
    assert_eq!(ops.len(), 1, "one operation of {app}: {ops:?}");
    ops[0].clone()
}

#[test]
fn nats_step_events_stay_small_and_an_ended_deploy_reads_the_same_after_a_restart_and_to_a_new_cockpit() {
    let test =
        "nats_step_events_stay_small_and_an_ended_deploy_reads_the_same_after_a_restart_and_to_a_new_cockpit";
    let Some(nats) = NatsServer::start(test) else { return };
    let url = nats.url();
    let flags = ["--stale-after", "5", "--lost-after", "100"];
    let mut controller = Proc::controller(&nats, "c1", &flags);
    // Room for 50 instances of 0.5 CPU on two hosts.
    let agents: Vec<Proc> = HOSTS
        .iter()
        .map(|(h, az, ip)| Proc::agent_with(&nats, h, az, ip, &["--sim-cores", "64", "--sim-memory", "64G"]))
        .collect();
    eventually(WAIT, "both hosts up", || {
        let snap = try_snapshot(&url)?;
        check(HOSTS.iter().all(|(h, _, _)| host_state(&snap, h) == Some("up")), || {
            format!("{}", snap["hosts"])
        })
    });

    block_on(async {
        let probe = connect(&url, "test/probe").await;
        // A cockpit that follows the deploy event by event, from before it starts.
        let live = Follower::start(Arc::new(connect(&url, "cockpit/live").await));
        live.wait_in_step(&probe, "the live cockpit is in step before the deploy").await;

        let n = INSTANCES.to_string();
        let args = [
            "deploy",
            "--app",
            "wide",
            "--version",
            "1.0.0",
            "--instances",
            &n,
            "--image",
            "tomcat:8.5",
            "--port",
            "8080",
            "--cpu",
            "0.5",
            "--memory",
            "256M",
            "--strategy",
            "all",
            "--wait",
            "--wait-timeout",
            "180s",
        ];
        let url2 = url.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ctl_ok(&url2, &args)
        })
        .await
        .expect("ctl deploy ran");

        let before = library_snapshot(&probe).await.expect("a snapshot after the deploy");
        let op = the_operation(&before, "wide");
        assert_eq!(op.state, OperationState::Succeeded, "{op:?}");
        assert!(op.steps.is_empty(), "an ended operation keeps no steps: {} kept", op.steps.len());
        let counts = op.compacted.expect("an ended operation keeps its step counts");
        assert!(counts.total as usize >= INSTANCES * 5, "every instance's steps were counted: {counts:?}");
        assert_eq!(counts.failed, 0, "{counts:?}");

        // Every stored event is small, step events included, however many instances.
        let events = stored_events(&probe).await;
        let steps_of_op = |e: &Event| {
            e.changes.iter().filter(|c| matches!(c, Change::OperationStep(d) if d.op == op.id)).count()
        };
        let step_events = events.iter().filter(|(_, e)| steps_of_op(e) > 0).count();
        assert!(step_events >= INSTANCES * 5, "the steps were recorded as events: {step_events}");
        let (largest, biggest) = events.iter().max_by_key(|(len, _)| *len).expect("events");
        let mut sizes: Vec<usize> = events.iter().map(|(len, _)| *len).collect();
        sizes.sort_unstable();
        eprintln!(
            "{test}: {} events stored, {step_events} step events; bytes p50 {}, max {largest} ({:?})",
            events.len(),
            sizes[sizes.len() / 2],
            biggest.kind
        );
        assert!(
            *largest < MAX_EVENT_BYTES,
            "the largest stored event is {largest} bytes ({:?}, rev {})",
            biggest.kind,
            biggest.rev
        );

        // The state bucket holds no step of the ended operation: compacted there too.
        let keys = state_keys(&probe).await;
        let step_keys: Vec<&String> =
            keys.iter().filter(|k| k.starts_with(&format!("op.{}.step.", op.id))).collect();
        assert!(
            step_keys.is_empty(),
            "{} step keys left in the state: {:?}",
            step_keys.len(),
            &step_keys[..3.min(step_keys.len())]
        );

        // The cockpit that followed the deltas equals the controller.
        let followed =
            live.wait_in_step(&probe, "the live cockpit equals the controller after the deploy").await;
        assert_eq!(the_operation(&followed, "wide"), op);

        // kill -9, then the state from KV and the replay of the stream.
        controller.kill9();
        controller = Proc::controller(&nats, "c1", &flags);
        let after =
            crate::nats_support::eventually_async(WAIT, "the restarted controller answers", || async {
                library_snapshot(&probe).await
            })
            .await;
        assert_eq!(
            the_operation(&after, "wide"),
            op,
            "the restarted controller reads the ended deploy the same"
        );
        assert_eq!(after.operations, before.operations, "every operation the same after the restart");

        // A cockpit that starts now takes a snapshot of the compacted state and agrees.
        let fresh = Follower::start(Arc::new(connect(&url, "cockpit/fresh").await));
        let seen = fresh.wait_in_step(&probe, "a fresh cockpit is in step after the restart").await;
        assert_eq!(the_operation(&seen, "wide"), op);
        fresh.with(|f| assert_eq!(the_operation(&f.replica.fleet, "wide"), op));
        drop(live);

        // Killed in the middle of a deploy: the restarted controller rebuilds the running
        // operation's steps from the state bucket (`op.<id>.step.<n>`) and the replay, and
        // ends it with exactly the steps the stream holds. With h2 stopped, h2's steps stay
        // running while h1's end: their keys are written again after later steps' keys, so
        // the bucket lists them out of index order.
        signal(&agents[1], "-STOP");
        let args = [
            "deploy",
            "--app",
            "cut",
            "--version",
            "1.0.0",
            "--instances",
            &n,
            "--image",
            "tomcat:8.5",
            "--port",
            "8080",
            "--cpu",
            "0.5",
            "--memory",
            "256M",
            "--strategy",
            "all",
        ];
        let url2 = url.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ctl_ok(&url2, &args)
        })
        .await
        .expect("ctl deploy ran");
        let cut = the_operation(&library_snapshot(&probe).await.expect("a snapshot"), "cut");
        // Durable, not only decided: what the stream holds is what the state bucket holds.
        crate::nats_support::eventually_async(WAIT, "steps of cut ended out of order, durably", || async {
            let events: Vec<Event> = stored_events(&probe).await.into_iter().map(|(_, e)| e).collect();
            let steps = quarterdeck::protocol::steps_in_history(&cut, &events).ok_or("steps out of order")?;
            let ended_later = steps.iter().skip(2).filter(|s| s.state != StepState::Running).count();
            let running = steps.iter().any(|s| s.state == StepState::Running);
            check(ended_later >= 5 && running, || {
                format!("{} steps stored, {ended_later} ended", steps.len())
            })
        })
        .await;
        controller.kill9();
        controller = Proc::controller(&nats, "c1", &flags);
        signal(&agents[1], "-CONT");
        let ended = crate::nats_support::eventually_async(WAIT, "the cut deploy is ended", || async {
            // The health manager may start another operation of cut: this one, by id.
            let fleet = library_snapshot(&probe).await?;
            let op = fleet.operations.get(&cut.id).cloned().ok_or("the cut deploy is gone")?;
            check(op.finished_at.is_some(), || format!("{op:?}"))?;
            Ok(op)
        })
        .await;
        let events: Vec<Event> = stored_events(&probe).await.into_iter().map(|(_, e)| e).collect();
        let recorded =
            quarterdeck::protocol::steps_in_history(&cut, &events).expect("every step in the stream");
        let counts = ended.compacted.expect("the step counts");
        assert_eq!(
            counts.total as usize,
            recorded.len(),
            "the restarted controller had every step the stream recorded: {ended:?}"
        );
        assert!(ended.error.is_some(), "{ended:?}");
    });
    assert!(controller.running(), "the restarted controller runs:\n{}", controller.stderr_text());
}

/// The events of `ops` operations of `steps` instances each, as the controller makes them:
/// started, each instance's step started then ended (so later keys are written before an
/// earlier one is written again), ended with its counts, and the oldest ended ones removed
/// beyond the bound. The last operation is left running, half its steps ended.
fn operation_events(ops: usize, steps: usize) -> Vec<Event> {
    use quarterdeck::protocol::{EventKind, OperationEnded, OperationKind, StepCounts, StepName};
    let mut fleet = Fleet::default();
    let mut events = Vec::new();
    let mut commit = |fleet: &mut Fleet, kind: EventKind, op: &str, changes: Vec<Change>| {
        let event = Event {
            rev: fleet.revision + 1,
            ts: 1_000 + fleet.revision,
            kind,
            app: Some("kv".into()),
            host: None,
            instance: None,
            operation_id: Some(op.to_string()),
            message: String::new(),
            changes,
            audit: None,
        };
        fleet.apply(&event).expect("the next revision");
        events.push(event);
    };
    for n in 0..ops {
        let id = format!("op-{n:010}");
        let started = Operation {
            id: id.clone(),
            kind: OperationKind::Deploy,
            app: "kv".into(),
            target: format!("kv@1.0 x{steps}"),
            steps: vec![],
            state: OperationState::Running,
            error: None,
            started_at: 1_000,
            finished_at: None,
            command_id: None,
            compacted: None,
        };
        commit(&mut fleet, EventKind::OperationStarted, &id, vec![Change::Operation(started)]);
        let last = n + 1 == ops;
        for state in [StepState::Running, StepState::Done] {
            for i in 0..steps {
                if last && state == StepState::Done && i % 2 == 1 {
                    continue;
                }
                let inst = format!("kv-{i}");
                let op = &fleet.operations[&id];
                let delta = op.next_step(StepName::Download, Some(&inst), state, String::new(), 2_000);
                commit(&mut fleet, EventKind::Download, &id, vec![Change::OperationStep(delta)]);
            }
        }
        if !last {
            let counts = StepCounts::of(&fleet.operations[&id].steps);
            let end = OperationEnded {
                id: id.clone(),
                state: OperationState::Succeeded,
                error: None,
                finished_at: 3_000 + n as u64,
                steps: counts,
            };
            let mut changes = vec![Change::OperationEnded(end)];
            let removed = fleet.operations_beyond_bound(1);
            changes.extend(removed.into_iter().map(|id| Change::OperationRemoved { id }));
            commit(&mut fleet, EventKind::OperationSucceeded, &id, changes);
        }
    }
    events
}

#[test]
fn nats_the_state_bucket_rebuilds_the_fleet_the_events_build_and_forgets_trimmed_operations() {
    use quarterdeck::plane::controller::store::{JetStreamConfig, JetStreamStore, Outgoing, Store};
    use quarterdeck::protocol::fleet::FINISHED_OPERATIONS_KEPT;
    use quarterdeck::protocol::{Envelope, subjects};
    let test = "nats_the_state_bucket_rebuilds_the_fleet_the_events_build_and_forgets_trimmed_operations";
    let Some(nats) = NatsServer::start(test) else { return };
    let url = nats.url();
    block_on(async {
        let bus = connect(&url, "test/store").await;
        let store = JetStreamStore::open(&bus, &JetStreamConfig::default()).await.expect("the store");
        // Two more than kept end, the last still runs.
        let ops = FINISHED_OPERATIONS_KEPT + 3;
        let events = operation_events(ops, 4);
        let mut want = Fleet::default();
        for event in &events {
            want.apply(event).expect("the next revision");
            let subject = subjects::event(&event.kind.subject_token(), event.app.as_deref());
            let envelope = Envelope::new("test/store", event.clone());
            let bytes = bytes::Bytes::from(quarterdeck::protocol::encode(&envelope).expect("encode"));
            store.commit(&[Outgoing { subject, envelope, bytes }]).await.expect("committed");
        }
        assert_eq!(want.operations.len(), FINISHED_OPERATIONS_KEPT + 1, "the bound held while applying");
        let running = &want.operations[&format!("op-{:010}", ops - 1)];
        assert_eq!(running.steps.len(), 4, "{running:?}");

        let loaded = store.load().await.expect("the state loads");
        assert_eq!(loaded, want, "the state bucket rebuilds the fleet the events build");

        let keys = state_keys(&bus).await;
        let op_keys: Vec<&String> = keys.iter().filter(|k| k.starts_with("op.")).collect();
        // Each ended operation: itself and its end. The running one: itself and its 4 steps.
        assert_eq!(op_keys.len(), 2 * FINISHED_OPERATIONS_KEPT + 1 + 4, "{op_keys:?}");
        for trimmed in ["op-0000000000", "op-0000000001"] {
            assert!(!want.operations.contains_key(trimmed));
            assert!(!op_keys.iter().any(|k| k.contains(trimmed)), "{trimmed} is forgotten by the bucket");
        }
        // The bucket's stream holds the kept keys only: purges leave no markers.
        let kv = bus.jetstream().get_key_value("qd_state").await.expect("the state bucket");
        let mut stream = kv.stream.clone();
        let held = stream.info().await.expect("bucket stream info").state.messages;
        assert_eq!(held, keys.len() as u64, "one message per live key, nothing for what was forgotten");
    });
}
