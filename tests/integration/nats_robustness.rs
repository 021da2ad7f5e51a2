//! Malformed and unknown messages on every subject the services listen on: each is logged
//! and refused (requests get a `bad_request` answer), and the services keep serving.

use std::time::Duration;

use bytes::Bytes;
use quarterdeck::bus::{Bus, NatsBus};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{ErrorCode, Fleet, HostState, Reply, decode, subjects};
use serde_json::{Value, json};

use crate::nats_support::{
    Plane, PlaneConfig, WAIT, check, connect, ctl_async, deploy_args, eventually_async, library_snapshot,
};

fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A v1 envelope around any body, with a fresh id.
fn envelope(body: Value) -> Vec<u8> {
    let id = format!("malformed-{}", NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    json!({"v": 1, "id": id, "ts": now_ms(), "source": "test/fuzz", "body": body}).to_string().into_bytes()
}

/// Payloads no service may accept, whatever the subject: not JSON, not an envelope, a
/// future version, bodies of the wrong type or shape.
/// A version this build does not speak.
const NEWER: u32 = quarterdeck::protocol::PROTOCOL_VERSION + 1;

fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", vec![]),
        ("garbage bytes", b"\xff\xfe\x00garbage{{{".to_vec()),
        ("not an object", b"[1, 2, 3]".to_vec()),
        ("truncated", br#"{"v": 1, "id": "x", "ts": 1, "source": "t", "bo"#.to_vec()),
        ("no body", br#"{"v": 1, "id": "no-body", "ts": 1, "source": "t"}"#.to_vec()),
        ("v as a string", br#"{"v": "1", "id": "v-str", "ts": 1, "source": "t", "body": {}}"#.to_vec()),
        (
            "newer envelope",
            json!({"v": NEWER, "id": "v-newer", "ts": 1, "source": "t", "body": {"app": "web", "future": true}})
                .to_string()
                .into_bytes(),
        ),
        ("body of the wrong type", envelope(json!("a string"))),
        (
            "fields of the wrong types",
            envelope(json!({"app": 5, "version": [], "instances": "three", "id": 7})),
        ),
        ("empty body", envelope(json!({}))),
        ("huge number", envelope(json!({"instances": 1e300, "weight": -1}))),
    ]
}

/// Sends a request with raw bytes; the answer's body as a `Reply` of anything.
async fn raw_request(bus: &NatsBus, subject: &str, payload: &[u8]) -> Result<Reply<Value>, String> {
    let answer = bus
        .request(subject, Bytes::copy_from_slice(payload), Duration::from_secs(5))
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    decode::<Reply<Value>>(&answer)
        .map(|env| env.body)
        .map_err(|e| format!("undecodable answer ({e}): {}", String::from_utf8_lossy(&answer)))
}

/// Every command subject that takes a body (all but `whoami`), as user "robot" sends it.
fn ctl_commands() -> Vec<String> {
    subjects::CtlVerb::ALL
        .into_iter()
        .filter(|v| *v != subjects::CtlVerb::Whoami)
        .map(|v| subjects::command("robot", v))
        .collect()
}

/// Sends every malformed payload as a request on `subject`; each must be refused with
/// `bad_request`. Returns what went wrong instead.
async fn expect_bad_request(bus: &NatsBus, subject: &str, extra: &[(&'static str, Vec<u8>)]) -> Vec<String> {
    expect_bad_request_except(bus, subject, extra, &[]).await
}

/// The malformed payloads that are valid for a body whose fields are all optional.
const OPTIONAL_BODY: [&str; 3] = ["empty body", "fields of the wrong types", "huge number"];

async fn expect_bad_request_except(
    bus: &NatsBus,
    subject: &str,
    extra: &[(&'static str, Vec<u8>)],
    except: &[&str],
) -> Vec<String> {
    let mut wrong = Vec::new();
    let generic = malformed().into_iter().filter(|(what, _)| !except.contains(what));
    for (what, payload) in generic.chain(extra.iter().cloned()) {
        match raw_request(bus, subject, &payload).await {
            Ok(Reply::Error(e)) if e.code == ErrorCode::BadRequest => {
                // An unknown verb is refused for that; a known one names the version.
                if what == "newer envelope"
                    && !e.reason.contains(&format!("version {NEWER}"))
                    && !e.reason.contains("unknown")
                {
                    wrong.push(format!(
                        "{subject} / {what}: the reason does not name the version: {}",
                        e.reason
                    ));
                }
            }
            other => wrong.push(format!("{subject} / {what}: expected bad_request, got {other:?}")),
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_malformed_messages_are_rejected_and_services_keep_serving() {
    let name = "nats_malformed_messages_are_rejected_and_services_keep_serving";
    let Some(mut plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let url = plane.url();
    let bus = connect(&url, "test/fuzz").await;
    let mut wrong: Vec<String> = Vec::new();

    // The controller's commands, and its reads.
    for subject in ctl_commands() {
        wrong.extend(expect_bad_request(&bus, &subject, &[]).await);
    }
    // Every field of a history request is optional, so only broken envelopes and fields of
    // the wrong type are malformed there.
    let history_extra =
        [("fields of the wrong types", envelope(json!({"since_ts": "yesterday", "limit": -1})))];
    wrong
        .extend(expect_bad_request_except(&bus, subjects::CTL_HISTORY, &history_extra, &OPTIONAL_BODY).await);
    let unknown_verb = [("valid envelope", envelope(json!({})))];
    wrong.extend(expect_bad_request(&bus, "qd.v1.ctl.nonsense", &unknown_verb).await);
    wrong.extend(expect_bad_request(&bus, "qd.v1.ctl.robot.deploy.extra", &unknown_verb).await);
    // A command without a user (the subjects before users were named) is refused.
    wrong.extend(expect_bad_request(&bus, "qd.v1.ctl.deploy", &unknown_verb).await);
    // The snapshot takes no arguments and does not read its payload: whatever is sent,
    // the answer is the snapshot (docs/protocol.md, open point 2).
    for (what, payload) in malformed() {
        match raw_request(&bus, subjects::CTL_SNAPSHOT, &payload).await {
            Ok(Reply::Ok(v)) if serde_json::from_value::<Fleet>(v.clone()).is_ok() => {}
            other => wrong.push(format!("snapshot / {what}: expected the snapshot, got {other:?}")),
        }
    }

    // The agent's commands. Valid envelopes with invalid values are refused too.
    let bad_spec = envelope(json!({
        "id": "x-1", "app": "NOT A NAME", "version": "1", "index": 0, "image": "tomcat:8.5",
        "port": 8080, "cpu": 0.5, "memory_mb": 64, "operation_id": "op-x"
    }));
    let agent_deploy_extra = [("invalid app name", bad_spec)];
    for verb in ["deploy", "restart", "remove"] {
        let subject = format!("qd.v1.agent.h1.cmd.{verb}");
        let extra: &[(&str, Vec<u8>)] = if verb == "deploy" { &agent_deploy_extra } else { &[] };
        wrong.extend(expect_bad_request(&bus, &subject, extra).await);
    }
    let bogus_extra = [("valid envelope", envelope(json!({"id": "shop-web-0"})))];
    wrong.extend(expect_bad_request(&bus, "qd.v1.agent.h1.cmd.bogus", &bogus_extra).await);

    // Publishes: commands without a reply subject, heartbeats, statuses and events that
    // make no sense. Nobody answers them; they must not hurt.
    let mut published = 0;
    let mut targets: Vec<String> = ctl_commands();
    targets.push(subjects::CTL_SNAPSHOT.into());
    targets.push("qd.v1.agent.h1.cmd.deploy".into());
    for host in ["h1", "h2", "ghost"] {
        targets.push(subjects::heartbeat(host));
        targets.push(subjects::status(host));
    }
    targets.push("qd.v1.evt.garbage._".into());
    for subject in &targets {
        for (_, payload) in malformed() {
            bus.publish(subject, Bytes::from(payload)).await.expect("publish");
            published += 1;
        }
    }
    // A heartbeat whose shape is right but whose host id is not a name.
    let bad_host = envelope(json!({
        "host": {"id": "NOT A HOST", "hostname": "x", "ip": "127.0.9.1", "az": "az-1", "cpu_cores": 1,
                 "memory_total_mb": 1024, "agent_version": "x"},
        "metrics": {"mem_used_mb": 0, "mem_total_mb": 0, "disk_used_mb": 0, "disk_total_mb": 0,
                    "net_rx_bps": 0, "net_tx_bps": 0},
        "instances": [], "period_ms": 300
    }));
    bus.publish(&subjects::heartbeat("h1"), Bytes::from(bad_host)).await.expect("publish");
    bus.flush().await.expect("flush");
    let after_garbage = now_ms();
    assert!(wrong.is_empty(), "{} refusals were wrong:\n{}", wrong.len(), wrong.join("\n"));

    // Still serving: snapshots, agents heartbeating, the same fleet, a new deploy end to end.
    let fleet = library_snapshot(&bus).await.expect("the controller still answers snapshots");
    assert!(
        !fleet.hosts.contains_key("ghost") && !fleet.hosts.contains_key("NOT A HOST"),
        "{:?}",
        fleet.hosts
    );
    eventually_async(WAIT, "both agents still heartbeat", || async {
        let f = library_snapshot(&bus).await?;
        let ok = f.hosts.len() == 2
            && f.hosts.values().all(|h| h.state == HostState::Up && h.last_heartbeat > after_garbage);
        check(ok, || format!("{:?}", f.hosts))
    })
    .await;
    // The garbage event in the stream is another writer's: the controller's next commit
    // finds it, and the controller stops leading and reloads (docs/protocol.md, "One writer
    // on the stream"). A command caught by that gets no answer; its client asks again.
    let deployed = eventually_async(Duration::from_secs(90), "a deploy after the garbage", || async {
        let out = ctl_async(&url, &deploy_args("api", "2.0.0", "2")).await;
        check(out.ok(), || format!("{out}")).map(|()| out)
    })
    .await;
    assert!(deployed.stdout.contains("INSTANCE_DEPLOYED"), "{deployed}");
    let events = ctl_async(&url, &["events", "--since", "1h", "--json"]).await;
    assert!(events.ok(), "history still reads (a garbage event is in the stream): {events}");
    assert!(events.stdout.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{events}");
    assert!(events.stdout.contains("\"api\""), "{events}");

    // Every process is alive and logged its rejections.
    for p in std::iter::once(&mut plane.controller).chain(plane.agents.iter_mut()) {
        assert!(p.running(), "{} died:\n{}", p.name, p.stderr_text());
    }
    let controller_log = plane.controller.stderr_text();
    let mut expected: Vec<String> =
        ctl_commands().iter().map(|s| format!("rejected malformed request on {s}")).collect();
    expected.push("refused request on unknown subject qd.v1.ctl.nonsense".into());
    expected.push("without a reply subject".into());
    for host in ["h1", "h2", "ghost"] {
        expected.push(format!("rejected heartbeat on {}", subjects::heartbeat(host)));
        expected.push(format!("rejected instance status on {}", subjects::status(host)));
    }
    expected.push("rejected heartbeat: ".into());
    let missing: Vec<&String> = expected.iter().filter(|e| !controller_log.contains(e.as_str())).collect();
    assert!(missing.is_empty(), "controller log lacks {missing:?}:\n{controller_log}");
    let h1 = &plane.agents[0];
    let agent_log = h1.stderr_text();
    for verb in ["deploy", "restart", "remove", "bogus"] {
        let line = format!("refused qd.v1.agent.h1.cmd.{verb}");
        assert!(agent_log.contains(&line), "agent log lacks {line:?}:\n{agent_log}");
    }
    eprintln!("{published} malformed publishes and every malformed request refused; services kept serving");
}

/// A malformed `ctl.history` request is refused and logged, like every other refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_malformed_history_request_is_logged() {
    let name = "nats_malformed_history_request_is_logged";
    let Some(plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    let bus = connect(&plane.url(), "test/fuzz").await;
    let answer = raw_request(&bus, subjects::CTL_HISTORY, b"garbage").await;
    assert!(matches!(&answer, Ok(Reply::Error(e)) if e.code == ErrorCode::BadRequest), "{answer:?}");
    // Anything sent after it is logged after it: wait for a later line we know comes.
    let marker = raw_request(&bus, "qd.v1.ctl.marker-after-history", b"{}").await;
    assert!(marker.is_ok(), "{marker:?}");
    let log = plane.controller.stderr_text();
    assert!(log.contains("qd.v1.ctl.marker-after-history"), "{log}");
    assert!(log.contains(subjects::CTL_HISTORY), "no log line for the refused history request:\n{log}");
}
