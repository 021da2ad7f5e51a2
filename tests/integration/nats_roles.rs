//! Roles on the bus (issue 15), enforced by a real nats-server started with the config
//! `quarterdeck auth init` writes. Each attempt below is one the server must refuse, after
//! which the plane keeps working.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use quarterdeck::bus::{self, Bus};
use quarterdeck::protocol::subjects::{self, CtlVerb};
use quarterdeck::protocol::{Accepted, DeployRequest, Envelope};

use crate::nats_support::{BIN, Mode, Plane, PlaneConfig, WAIT, connect_as, ctl_as, deploy_args, eventually};

/// The plane (controller c1, agents h1 and h2) with roles on: every process its own user;
/// operators alice and bob and viewer carol besides.
fn role_plane(test: &str) -> Option<Plane> {
    Plane::start(test, PlaneConfig { mode: Mode::Roles, ..PlaneConfig::default() })
}

/// `ctl ARGS --json` as `who`, or why it failed.
fn ctl_json_as(plane: &Plane, who: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = ctl_as(&plane.nats, who, &[args, &["--json"]].concat());
    if !out.ok() {
        return Err(out.stderr);
    }
    serde_json::from_str(&out.stdout).map_err(|e| e.to_string())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

fn seed(plane: &Plane, who: &str) -> std::path::PathBuf {
    plane.nats.seed(who).expect("a plane with roles")
}

/// The operator deploys, and the plane answers: the check after every refused attempt.
fn operator_deploys(plane: &Plane, app: &str) {
    let out = ctl_as(&plane.nats, "operator/alice", &deploy_args(app, "1.0.0", "1"));
    assert!(out.ok(), "the operator's deploy: {out}");
}

#[test]
fn nats_roles_a_viewer_cannot_deploy_and_the_operator_still_can() {
    let test = "nats_roles_a_viewer_cannot_deploy_and_the_operator_still_can";
    let Some(plane) = role_plane(test) else { return };
    let mut args = deploy_args("sneaky", "1.0.0", "1");
    args.extend(["--timeout", "3s"]);
    let out = ctl_as(&plane.nats, "viewer/carol", &args);
    assert!(!out.ok(), "the viewer's deploy succeeded");
    eventually(WAIT, "the server refused the viewer's deploy", || {
        plane.nats.violation("Publish", &subjects::command("carol", CtlVerb::Deploy))
    });
    // The viewer still reads.
    let snap = ctl_json_as(&plane, "viewer/carol", &["snapshot"]).expect("the viewer reads");
    assert!(snap["apps"].as_array().is_some_and(|a| a.iter().all(|x| x["name"] != "sneaky")), "{snap}");
    operator_deploys(&plane, "web");
}

#[test]
fn nats_roles_an_agent_cannot_speak_for_or_listen_to_another_host() {
    let test = "nats_roles_an_agent_cannot_speak_for_or_listen_to_another_host";
    let Some(plane) = role_plane(test) else { return };
    let rt = rt();
    rt.block_on(async {
        let h1 = connect_as(&plane.nats, "agent/h1").await;
        let _ = h1.publish(&subjects::heartbeat("h2"), Bytes::from_static(b"{}")).await;
        let _ = h1.subscribe("qd.v1.agent.h2.cmd.>").await;
        let _ = h1.publish(&subjects::command("h1", CtlVerb::Deploy), Bytes::from_static(b"{}")).await;
        let _ = h1.flush().await;
    });
    eventually(WAIT, "the server refused h1 as h2", || {
        plane.nats.violation("Publish", &subjects::heartbeat("h2"))?;
        plane.nats.violation("Subscription", "qd.v1.agent.h2.cmd.>")?;
        plane.nats.violation("Publish", &subjects::command("h1", CtlVerb::Deploy))
    });
    operator_deploys(&plane, "web");
}

/// The user in a command's subject is the one the audit records, and the server lets
/// each operator publish only under its own name: alice cannot send as bob, and what
/// alice's client claims about itself (its login) is context, not the user.
#[test]
fn nats_roles_an_operator_cannot_send_under_another_name_and_the_audit_names_the_checked_user() {
    let test = "nats_roles_an_operator_cannot_send_under_another_name_and_the_audit_names_the_checked_user";
    let Some(plane) = role_plane(test) else { return };
    let url = plane.nats.url();
    let rt = rt();
    rt.block_on(async {
        let alice = connect_as(&plane.nats, "operator/alice").await;
        let as_bob = subjects::command("bob", CtlVerb::Deploy);
        let env = Envelope::new("ctl/bob@forged", deploy_request("forged"));
        let sent: Result<Accepted, _> = bus::request(&alice, &as_bob, &env, Duration::from_secs(2)).await;
        assert!(sent.is_err(), "alice's command under bob's name was answered: {sent:?}");
        let _ = alice.flush().await;
    });
    eventually(WAIT, "the server refused alice as bob", || {
        plane.nats.violation("Publish", &subjects::command("bob", CtlVerb::Deploy))
    });
    // alice's ctl runs as login "mallory": the claim travels as context only.
    let out = Command::new(BIN)
        .arg("ctl")
        .args(deploy_args("web", "1.0.0", "1"))
        .env("NATS_URL", &url)
        .env("NATS_NKEY", seed(&plane, "operator/alice"))
        .env("USER", "mallory")
        .output()
        .expect("ctl");
    assert!(out.status.success(), "alice's deploy: {}", String::from_utf8_lossy(&out.stderr));
    let audit = ctl_lines(&plane, "operator/alice", &["audit", "--since", "1h"]);
    let deploys: Vec<&serde_json::Value> = audit.iter().filter(|r| r["verb"] == "deploy").collect();
    assert_eq!(deploys.len(), 1, "one deploy on record, not the forged one: {audit:?}");
    assert_eq!(deploys[0]["by"], "alice", "{}", deploys[0]);
    assert!(
        deploys[0]["operator"]["user"].as_str().is_some_and(|u| u.starts_with("mallory@")),
        "the client's claim is kept as context: {}",
        deploys[0]
    );
    let table = ctl_as(&plane.nats, "operator/alice", &["audit", "--since", "1h"]).stdout;
    assert!(table.contains("alice (ctl/mallory@"), "{table}");
    let me = ctl_as(&plane.nats, "operator/alice", &["whoami"]);
    assert_eq!(me.stdout.trim(), "alice (may send commands)");
    let viewer = ctl_as(&plane.nats, "viewer/carol", &["whoami", "--timeout", "3s"]);
    assert!(!viewer.ok(), "a viewer may not act: {viewer}");
}

fn deploy_request(app: &str) -> DeployRequest {
    DeployRequest {
        app: app.into(),
        version: "1.0.0".into(),
        instances: 1,
        image: Some("tomcat:8.5".into()),
        port: Some(8080),
        ..DeployRequest::default()
    }
}

fn ctl_lines(plane: &Plane, who: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let out = ctl_as(&plane.nats, who, &[args, &["--json"]].concat());
    assert!(out.ok(), "ctl {args:?}: {out}");
    out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn nats_roles_an_operator_cannot_write_the_history_or_command_an_agent() {
    let test = "nats_roles_an_operator_cannot_write_the_history_or_command_an_agent";
    let Some(plane) = role_plane(test) else { return };
    let before = try_snapshot_as(&plane, "operator/alice");
    let rt = rt();
    rt.block_on(async {
        let alice = connect_as(&plane.nats, "operator/alice").await;
        let forged = Bytes::from_static(br#"{"v":1,"id":"f","ts":0,"source":"x","body":{}}"#);
        let _ = alice.publish("qd.v1.evt.app_updated.web", forged.clone()).await;
        let _ = alice.publish("qd.v1.agent.h1.cmd.remove", forged).await;
        let _ = alice.subscribe(subjects::CTL_ALL).await;
        let _ = alice.flush().await;
    });
    eventually(WAIT, "the server refused the operator's writes", || {
        plane.nats.violation("Publish", "qd.v1.evt.app_updated.web")?;
        plane.nats.violation("Publish", "qd.v1.agent.h1.cmd.remove")?;
        plane.nats.violation("Subscription", subjects::CTL_ALL)
    });
    operator_deploys(&plane, "web");
    let after = try_snapshot_as(&plane, "operator/alice");
    assert!(after > before, "the plane moved on: revision {before} then {after}");
}

fn try_snapshot_as(plane: &Plane, who: &str) -> u64 {
    let snap = ctl_json_as(plane, who, &["snapshot"]).expect("snapshot");
    snap["revision"].as_u64().expect("a revision")
}

/// Without a seed the server lets nobody in: the roles are the only way onto the bus.
#[test]
fn nats_roles_a_client_without_a_user_is_refused() {
    let test = "nats_roles_a_client_without_a_user_is_refused";
    let Some(plane) = role_plane(test) else { return };
    let url = plane.nats.url();
    let out = Command::new(BIN)
        .args(["ctl", "snapshot", "--timeout", "3s"])
        .env("NATS_URL", &url)
        .env_remove("NATS_NKEY")
        .output()
        .expect("ctl");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("authorization violation"), "{stderr}");
    assert!(plane.nats.log().contains("authentication error"), "no refusal logged");
}

/// Readers of the history open the stream as it is: with roles on an operator may not
/// change it, and a controller with limits of its own (`--history-max-age`) must not make
/// `ctl events` or `ctl audit` fail for them.
#[test]
fn nats_roles_an_operator_reads_the_history_of_a_controller_with_limits_of_its_own() {
    let test = "nats_roles_an_operator_reads_the_history_of_a_controller_with_limits_of_its_own";
    let mut config = PlaneConfig { mode: Mode::Roles, ..PlaneConfig::default() };
    config.controller.extend(["--history-max-age", "2h"]);
    let Some(plane) = Plane::start(test, config) else { return };
    operator_deploys(&plane, "web");
    for (who, args) in [
        ("operator/alice", &["events", "--since", "1h"][..]),
        ("operator/alice", &["audit", "--since", "1h"][..]),
        ("viewer/carol", &["events", "--since", "1h"][..]),
    ] {
        let out = ctl_as(&plane.nats, who, args);
        assert!(out.ok(), "{who} ctl {args:?}: {out}");
        assert!(out.stdout.contains("web"), "{who} ctl {args:?} shows the deploy: {out}");
    }
    plane.nats.assert_no_violations();
}
