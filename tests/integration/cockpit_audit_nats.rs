//! The audit trail on a real nats-server: commands from the cockpit's backend (with an
//! operator identity) and from `ctl` are recorded by the controller as `AUDIT` events in
//! the JetStream stream, and `ctl audit --json` lists them after a controller kill -9 and
//! restart.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::backend::{self, BackendRequest, Identity, Inbound};
use quarterdeck::protocol::ControlCommand;
use quarterdeck::protocol::{Operator, RestartBody, RestartRequest};
use serde_json::Value;

use crate::nats_support::{
    Mode, PlaneConfig, assert_audited_as_harness_user, block_on, connect, ctl_json_lines, ctl_ok,
    plane_or_skip, snapshot,
};

fn alice() -> Operator {
    Operator::from_parts("alice", "bastion-1", Some("10.0.0.5 52344 10.0.0.1 22"), Some("ops".into()))
}

/// Sends commands through the cockpit's backend and returns each answer, in order.
fn cockpit_sends(url: &str, commands: Vec<ControlCommand>) -> Vec<Result<String, String>> {
    block_on(async {
        let bus = Arc::new(connect(url, "cockpit/alice@bastion-1").await);
        let identity = Identity { operator: Some(alice()), read_only: false, repository: None };
        let mut handle = backend::spawn_cockpit(bus, "cockpit/alice@bastion-1".into(), identity);
        let mut answers = Vec::new();
        for cmd in commands {
            handle.commands.send(BackendRequest::Send(cmd)).expect("backend running");
            let answer = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    match handle.updates.recv().await {
                        Some(Inbound::CommandDone { result, .. }) => {
                            return result
                                .map(|a| a.operation_id.unwrap_or_default())
                                .map_err(|e| e.to_string());
                        }
                        Some(_) => continue,
                        None => return Err("backend closed".into()),
                    }
                }
            })
            .await
            .expect("an answer in time");
            answers.push(answer);
        }
        answers
    })
}

fn find(lines: &[Value], pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    lines.iter().find(|l| pred(l))
}

#[test]
fn cockpit_audit_entries_survive_a_controller_restart_on_nats() {
    audit_entries_survive_a_controller_restart(
        Mode::Open,
        "cockpit_audit_entries_survive_a_controller_restart_on_nats",
    );
}

/// The same with roles on: the cockpit and ctl are the operator alice, the controller (and
/// the one that replaces it) and the agents each their own user.
#[test]
fn cockpit_audit_entries_survive_a_controller_restart_on_nats_with_roles() {
    audit_entries_survive_a_controller_restart(
        Mode::Roles,
        "cockpit_audit_entries_survive_a_controller_restart_on_nats_with_roles",
    );
}

fn audit_entries_survive_a_controller_restart(mode: Mode, test: &str) {
    let mut plane = plane_or_skip!(test, PlaneConfig { mode, ..PlaneConfig::default() });
    plane.deploy("shop-web", "1.0.0", 2);
    let url = plane.url();

    let answers = cockpit_sends(
        &url,
        vec![
            ControlCommand::Restart(RestartBody {
                target: RestartRequest::App("shop-web".into()),
                batch: Some(2),
            }),
            ControlCommand::Restart(RestartBody::from(RestartRequest::Instance("nope-0-0000".into()))),
        ],
    );
    let op = answers[0].clone().expect("the restart is accepted");
    assert!(op.starts_with("op-"), "{op}");
    assert!(answers[1].as_ref().is_err_and(|e| e.contains("no instance")), "{answers:?}");
    // And one from ctl, which names itself ctl/user@host.
    let snap = snapshot(&url);
    let backend = snap["routes"][0]["backend"].as_str().expect("a route").to_string();
    ctl_ok(&url, &["route", "weight", "--app", "shop-web", "--backend", &backend, "--weight", "3"]);

    // The controller dies hard and comes back: the trail is in the stream.
    plane.restart_controller("c1");
    plane.controller.wait_for_log("is serving");

    let lines = ctl_json_lines(&url, &["audit", "--since", "1h"]);
    let restart = find(&lines, |l| l["verb"] == "restart" && l["outcome"]["accepted"] == true)
        .unwrap_or_else(|| panic!("no accepted restart in {lines:#?}"));
    assert_eq!(restart["source"], "cockpit/alice@bastion-1");
    assert_eq!(restart["operator"]["user"], "alice@bastion-1");
    assert_eq!(restart["operator"]["ssh_client"], "10.0.0.5:52344");
    assert_eq!(restart["operator"]["nats_user"], "ops");
    assert_eq!(restart["request"], serde_json::json!({"app": "shop-web", "batch": 2}));
    assert_eq!(restart["outcome"]["operation_id"], op.as_str());
    assert_eq!(restart["app"], "shop-web");
    assert!(restart["rev"].as_u64().is_some() && restart["ts"].as_u64().is_some(), "{restart}");

    let refused = find(&lines, |l| l["verb"] == "restart" && l["outcome"]["accepted"] == false)
        .unwrap_or_else(|| panic!("no refused restart in {lines:#?}"));
    assert_eq!(refused["outcome"]["error"]["code"], "not_found");
    assert_eq!(refused["operator"]["user"], "alice@bastion-1");

    let from_ctl = find(&lines, |l| l["verb"] == "route.weight").unwrap_or_else(|| panic!("{lines:#?}"));
    let source = from_ctl["source"].as_str().unwrap_or_default();
    assert!(source.starts_with("ctl/") && source.contains('@'), "{from_ctl}");
    assert_eq!(from_ctl["operator"]["user"].as_str(), source.strip_prefix("ctl/"));
    assert!(from_ctl["message"].as_str().is_some_and(|m| m.contains("route.weight shop-web")), "{from_ctl}");
    // The deploy that set the plane up was recorded too, oldest first.
    assert_eq!(lines[0]["verb"], "deploy", "{lines:#?}");

    // The table form says the same, for people.
    let table = ctl_ok(&url, &["audit", "--since", "1h"]);
    assert!(table.contains("alice@bastion-1") && table.contains("restart app shop-web (batch 2)"), "{table}");
    // The user is the one the controller saw (the server-checked alice with roles on), for
    // the cockpit's commands and ctl's alike.
    assert_audited_as_harness_user(&url, mode, "restart", |r| r["batch"] == 2);
    assert_audited_as_harness_user(&url, mode, "route.weight", |r| r["weight"] == 3);
    plane.nats.assert_no_violations();
}
