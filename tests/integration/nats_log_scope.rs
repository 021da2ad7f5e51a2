//! Log streams scoped to their viewer (issue 15, hardening): anyone could read or end
//! another operator's log stream. On a real nats-server started with the config `quarterdeck
//! auth init` writes, a user reads and acts on its own streams only: the server refuses a
//! subscription to another user's stream and a request under another user's name, and the
//! agent refuses a stream subject outside the requester's own and answers `not_found` for
//! another user's stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quarterdeck::actions::{Action, Panel};
use quarterdeck::backend::{self, Identity};
use quarterdeck::bus::{self, Bus, BusError, RequestError, Subscription};
use quarterdeck::protocol::subjects::{self, LogsVerb};
use quarterdeck::protocol::{
    AgentAck, Envelope, ErrorCode, InstanceState, LogBatch, LogsRequest, LogsStreamRef,
};

use crate::cockpit_support::cockpit_app;
use crate::nats_support::{Mode, Plane, PlaneConfig, WAIT, connect_as, eventually, instances_of};
use crate::stack_support::{Stack, StackConfig};

/// A log request as `user` to `host`'s agent, and its answer.
async fn ask(
    bus: &dyn Bus,
    host: &str,
    user: &str,
    verb: LogsVerb,
    body: impl serde::Serialize,
) -> Result<AgentAck, RequestError> {
    let subject = subjects::logs_request(host, user, verb);
    bus::request(bus, &subject, &Envelope::new(format!("test/{user}"), body), Duration::from_secs(10)).await
}

/// The next batch on `sub` within `within`.
async fn next_batch(sub: &mut Subscription, within: Duration) -> Option<LogBatch> {
    let msg = tokio::time::timeout(within, sub.next()).await.ok()??;
    quarterdeck::protocol::decode::<LogBatch>(&msg.payload).ok().map(|e| e.body)
}

/// Batches with lines on `sub` until `n` have come after `after` (a `seq`), none of them
/// the last.
async fn flowing(sub: &mut Subscription, after: u64, n: u64) -> u64 {
    let mut seq = after;
    while seq < after + n {
        let batch = next_batch(sub, WAIT).await.expect("the stream keeps flowing");
        assert_eq!(batch.end, None, "the stream ended: {batch:?}");
        seq = batch.seq;
    }
    seq
}

fn refused_as(answer: Result<AgentAck, RequestError>, code: ErrorCode) -> String {
    match answer {
        Err(RequestError::Refused(e)) if e.code == code => e.reason,
        other => panic!("wanted {code:?}, got {other:?}"),
    }
}

/// Operator alice knows operator bob's stream subject (a guess, a leak, a shoulder). She
/// cannot read it, stop it, keep it alive, or take it over; bob's lines keep coming.
#[test]
fn nats_log_scope_an_operator_cannot_read_stop_or_keep_alive_another_operators_stream() {
    let test = "nats_log_scope_an_operator_cannot_read_stop_or_keep_alive_another_operators_stream";
    let Some(plane) = Plane::start(test, PlaneConfig { mode: Mode::Roles, ..PlaneConfig::default() }) else {
        return;
    };
    plane.deploy("web", "1.0.0", 1);
    let snap = plane.snapshot();
    let running = instances_of(&snap, "web").into_iter().find(|i| i["state"] == "running").cloned();
    let running = running.unwrap_or_else(|| panic!("a running instance of web: {}", snap["instances"]));
    let (instance, host) =
        (running["id"].as_str().expect("an id"), running["host"].as_str().expect("a host"));
    crate::nats_support::block_on(async {
        let bob = connect_as(&plane.nats, "operator/bob").await;
        assert_eq!(bob.user(), "bob");
        let bobs = subjects::logs_stream("bob", "vbob1");
        let mut bob_sub = bob.subscribe(&bobs).await.expect("bob subscribes to his own stream");
        let req = LogsRequest {
            instance: instance.to_string(),
            tail: 5,
            follow: true,
            stream: bobs.clone(),
            since: None,
        };
        ask(&bob, host, "bob", LogsVerb::Start, &req).await.expect("bob's stream starts");
        let seq = flowing(&mut bob_sub, 0, 1).await;

        let r = LogsStreamRef { stream: bobs.clone() };
        let alice = connect_as(&plane.nats, "operator/alice").await;
        // Bob is there: his keep-alive now keeps the stream for 15 s more, however slow
        // this machine is between here and his next one.
        ask(&bob, host, "bob", LogsVerb::Keepalive, &r).await.expect("bob's keep-alive");
        // Reading: the server refuses the subscriptions, and the client says so.
        for pattern in ["qd.v1.logs.>".to_string(), subjects::logs_streams_of("bob")] {
            let refused = alice.subscribe(&pattern).await.err();
            assert_eq!(
                refused,
                Some(BusError::PermissionDenied { subject: pattern.clone(), user: "alice".into() }),
                "alice subscribed to {pattern}"
            );
        }
        // Acting in bob's name: the server refuses the publish.
        let stop = Envelope::new("test/alice", LogsStreamRef { stream: bobs.clone() });
        let encoded = Bytes::from(quarterdeck::protocol::encode(&stop).expect("encode"));
        for verb in [LogsVerb::Stop, LogsVerb::Keepalive] {
            alice.publish(&subjects::logs_request(host, "bob", verb), encoded.clone()).await.expect("sent");
        }
        alice.flush().await.expect("flush");
        // Acting in her own name on his stream: the agent knows no such stream of hers.
        for verb in [LogsVerb::Stop, LogsVerb::Keepalive] {
            let reason = refused_as(ask(&alice, host, "alice", verb, &r).await, ErrorCode::NotFound);
            assert!(reason.contains("alice has no log stream"), "{reason}");
        }
        // Taking it over: a start on his subject in her name is refused.
        let hijack = LogsRequest { stream: bobs.clone(), ..req.clone() };
        let reason =
            refused_as(ask(&alice, host, "alice", LogsVerb::Start, &hijack).await, ErrorCode::BadRequest);
        assert!(reason.contains("qd.v1.logs.alice.<viewer id>"), "{reason}");

        // Bob's stream is his still: it flows, and his own keep-alive and stop reach it.
        let seq = flowing(&mut bob_sub, seq, 3).await;
        ask(&bob, host, "bob", LogsVerb::Keepalive, &r).await.expect("bob's keep-alive");
        flowing(&mut bob_sub, seq, 1).await;
        ask(&bob, host, "bob", LogsVerb::Stop, &r).await.expect("bob's stop");
        let end = loop {
            let batch = next_batch(&mut bob_sub, WAIT).await.expect("batches until the end");
            if let Some(end) = batch.end {
                break end;
            }
        };
        assert_eq!(end, "stopped by the viewer");
    });
    eventually(WAIT, "the server refused alice's reads and her requests as bob", || {
        plane.nats.violation("Subscription", "qd.v1.logs.>")?;
        plane.nats.violation("Subscription", &subjects::logs_streams_of("bob"))?;
        plane.nats.violation("Publish", &subjects::logs_request(host, "bob", LogsVerb::Stop))?;
        plane.nats.violation("Publish", &subjects::logs_request(host, "bob", LogsVerb::Keepalive))
    });
}

/// Viewer carol's cockpit (headless, without `--read-only`) opens the logs of a real
/// container, under her own name; she reads no other user's streams.
#[test]
fn nats_log_scope_a_viewer_views_its_own_logs_of_a_real_container_and_no_one_elses() {
    use crate::cockpit_logs::{carry, has_line};
    use crate::docker_support::docker;
    use crate::support::pump;
    let test = "nats_log_scope_a_viewer_views_its_own_logs_of_a_real_container_and_no_one_elses";
    let Some(stack) = Stack::start_config(test, StackConfig { mode: Mode::Roles, ..StackConfig::default() })
    else {
        return;
    };
    // The operator's real upload path: ALLOCATE_REPOSITORY_REQUEST, the bytes into
    // qd_artifacts, the deploy; the agent reads the artifact with its own role.
    let out = stack.deploy("1.0.0", "1", "<h1>carol</h1>", &[]);
    assert!(out.ok(), "alice's upload and deploy: {out}");
    let container = docker(&["ps", "-q", "--filter", &format!("label=quarterdeck.host={}", stack.host)]);
    let container = container.split_whitespace().next().expect("a container").to_string();
    let say = |text: &str| {
        docker(&["exec", &container, "sh", "-c", &format!("echo '{text}' > /proc/1/fd/1")]);
    };
    say("before-carol-looked");
    crate::nats_support::block_on(async {
        let carol = Arc::new(connect_as(&stack.nats, "viewer/carol").await);
        assert_eq!(carol.user(), "carol");
        let mut handle =
            backend::spawn_cockpit(carol.clone(), "cockpit/carol@test".into(), Identity::default());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "the running site instance", |a| {
            a.replica.fleet.instances.values().any(|i| i.state == InstanceState::Running)
        })
        .await;
        app.update(Action::ShowPanel(Panel::Instances));
        carry(&handle, app.update(Action::Logs));
        pump(&mut app, &mut handle, "the tail of the real log", |a| has_line(a, "before-carol-looked")).await;
        say("while-carol-follows");
        pump(&mut app, &mut handle, "a followed line", |a| has_line(a, "while-carol-follows")).await;
        // Her own streams only: every stream, or alice's, is refused by the server.
        for pattern in ["qd.v1.logs.>".to_string(), subjects::logs_streams_of("alice")] {
            let refused = carol.subscribe(&pattern).await.err();
            assert!(matches!(refused, Some(BusError::PermissionDenied { .. })), "carol read {pattern}");
        }
        carol.flush().await.expect("flush");
        carry(&handle, app.update(Action::Back));
        assert!(app.logs.is_none());
    });
    eventually(WAIT, "the server refused carol's reads of others' streams", || {
        stack.nats.violation("Subscription", "qd.v1.logs.>")?;
        stack.nats.violation("Subscription", &subjects::logs_streams_of("alice"))
    });
    // Nothing else was refused: her own stream and requests, the upload, the agent's download.
    // (Her cockpit's question whether she may act is refused, as it should be: she may not.)
    let whoami = format!("\"{}\"", subjects::command("carol", subjects::CtlVerb::Whoami));
    let others: Vec<String> = stack
        .nats
        .violations()
        .into_iter()
        .filter(|l| !l.contains("\"qd.v1.logs.>\"") && !l.contains("\"qd.v1.logs.alice.>\""))
        .filter(|l| !l.contains(&whoami))
        .collect();
    assert!(others.is_empty(), "the server refused: {others:#?}");
}
