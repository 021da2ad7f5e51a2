//! An event that reached the stream but whose state write was cut by a kill -9 is replayed
//! at the next start. Before, it was applied in memory only: the next event's `meta` then
//! said the state was past it, and the start after that lost it. Two restarts in a row.

use bytes::Bytes;
use quarterdeck::protocol::{AppSpec, Change, Envelope, Event, EventKind, subjects};

use crate::nats_support::{PlaneConfig, block_on, ctl_ok, deploy_args, plane_or_skip, revision};

#[test]
fn nats_a_replayed_event_is_stored_and_survives_two_restarts_in_a_row() {
    let mut plane = plane_or_skip!("nats_a_replayed_event_is_stored", PlaneConfig::default());
    let url = plane.url();
    ctl_ok(&url, &deploy_args("web", "1.0.0", "1"));
    let snap = plane.snapshot();
    let rev = revision(&snap);
    let mut ghost: AppSpec = serde_json::from_value(snap["apps"][0].clone()).expect("an app");
    ghost.name = "replayed".into();

    // What a controller killed between its publish and its state write leaves behind: the
    // next event in the stream, not in the state.
    plane.controller.kill9();
    let event = Event {
        rev: rev + 1,
        ts: quarterdeck::protocol::clock::now_ms(),
        kind: EventKind::AppUpdated,
        app: Some(ghost.name.clone()),
        host: None,
        instance: None,
        operation_id: None,
        message: "replayed: stored in the stream only".into(),
        changes: vec![Change::App(ghost.clone())],
        audit: None,
    };
    block_on(async {
        let bus = crate::nats_support::connect(&url, "test/replay").await;
        let bytes = quarterdeck::protocol::envelope::encode(&Envelope::new("controller", event)).unwrap();
        let subject = subjects::event(&EventKind::AppUpdated.subject_token(), Some("replayed"));
        bus.jetstream().publish(subject, Bytes::from(bytes)).await.unwrap().await.expect("stored");
    });

    // First start: replayed. Then something new is committed on top of it.
    plane.restart_controller("c1");
    let snap = plane.wait_hosts_up();
    assert!(has_app(&snap, "replayed"), "the first start replays it: {}", snap["apps"]);
    ctl_ok(&url, &deploy_args("after", "1.0.0", "1"));

    // Second start: still there.
    plane.restart_controller("c1");
    let snap = plane.wait_hosts_up();
    assert!(has_app(&snap, "replayed"), "the second start still has it: {}", snap["apps"]);
    assert!(has_app(&snap, "after"), "{}", snap["apps"]);
}

fn has_app(snap: &serde_json::Value, name: &str) -> bool {
    snap["apps"].as_array().is_some_and(|a| a.iter().any(|x| x["name"] == name))
}
