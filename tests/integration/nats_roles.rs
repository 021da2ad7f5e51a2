//! Roles on the bus (issue 15), enforced by a real nats-server started with the config
//! `quarterdeck auth init` writes. Each attempt below is one the server must refuse, after
//! which the plane keeps working.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use quarterdeck::bus::{self, Bus, NatsBus};
use quarterdeck::protocol::subjects::{self, CtlVerb};
use quarterdeck::protocol::{Accepted, DeployRequest, Envelope};

use crate::nats_support::{
    BIN, HOSTS, NatsServer, Proc, WAIT, check, deploy_args, eventually, host_state, unique_dir,
};

/// A plane whose every process has its own user: controller c1, agents h1 and h2, router
/// r1, operator alice, viewer carol.
struct RolePlane {
    auth: PathBuf,
    nats: NatsServer,
    _procs: Vec<Proc>,
}

impl RolePlane {
    fn start(test: &str) -> Option<RolePlane> {
        let auth = unique_dir(&format!("{test}-auth"));
        let out = Command::new(BIN)
            .args(["auth", "init", "--dir"])
            .arg(&auth)
            .args(["--controllers", "c1", "--hosts", "h1,h2", "--routers", "r1"])
            .args(["--operators", "alice,bob", "--viewers", "carol"])
            .output()
            .expect("quarterdeck auth init");
        assert!(out.status.success(), "auth init: {}", String::from_utf8_lossy(&out.stderr));
        // nats-server resolves `include` relative to its config file, which the harness
        // writes in the server's own directory: the block goes in as it is.
        let block = std::fs::read_to_string(auth.join("nats-auth.conf")).expect("nats-auth.conf");
        let nats = NatsServer::start_with_config(test, Some(&block))?;
        let seed = |who: &str| auth.join(format!("{who}.nk")).display().to_string();
        let mut procs = vec![Proc::controller_with_nkey(&nats, "c1", &seed("controller/c1"))];
        for (h, az, ip) in HOSTS {
            procs.push(Proc::agent_with(&nats, h, az, ip, &["--nkey", &seed(&format!("agent/{h}"))]));
        }
        let plane = RolePlane { auth, nats, _procs: procs };
        let url = plane.nats.url();
        eventually(WAIT, "both hosts up, seen by the operator", || {
            let snap = ctl_json(&url, &plane.seed("operator/alice"), &["snapshot"])?;
            let up = HOSTS.iter().all(|(h, _, _)| host_state(&snap, h) == Some("up"));
            check(up, || format!("hosts: {}", snap["hosts"]))
        });
        Some(plane)
    }

    fn seed(&self, who: &str) -> String {
        self.auth.join(format!("{who}.nk")).display().to_string()
    }

    /// A library client logged in as `who`.
    async fn client(&self, who: &str) -> NatsBus {
        crate::nats_log_scope::nkey_client(&self.nats.url(), &self.seed(who)).await
    }

    /// Whether the server logged a permissions violation on `subject`.
    fn violation(&self, kind: &str, subject: &str) -> Result<(), String> {
        let logs = server_logs(self.nats.dir());
        let wanted = format!("{kind} Violation - Subject \"{subject}\"");
        check(logs.contains(&wanted), || format!("no {wanted:?} in the server's log"))
    }
}

pub(crate) fn server_logs(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("nats-server") && name.ends_with(".log") {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default()));
        }
    }
    all
}

pub(crate) fn ctl_json(url: &str, seed: &str, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new(BIN)
        .arg("ctl")
        .args(args)
        .arg("--json")
        .env("NATS_URL", url)
        .env("NATS_NKEY", seed)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

pub(crate) fn ctl_as(url: &str, seed: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("ctl").args(args).env("NATS_URL", url).env("NATS_NKEY", seed).output().expect("ctl")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

/// The operator deploys, and the plane answers: the check after every refused attempt.
fn operator_deploys(plane: &RolePlane, app: &str) {
    let out = ctl_as(&plane.nats.url(), &plane.seed("operator/alice"), &deploy_args(app, "1.0.0", "1"));
    assert!(out.status.success(), "the operator's deploy: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn nats_roles_a_viewer_cannot_deploy_and_the_operator_still_can() {
    let test = "nats_roles_a_viewer_cannot_deploy_and_the_operator_still_can";
    let Some(plane) = RolePlane::start(test) else { return };
    let url = plane.nats.url();
    let mut args = deploy_args("sneaky", "1.0.0", "1");
    args.extend(["--timeout", "3s"]);
    let out = ctl_as(&url, &plane.seed("viewer/carol"), &args);
    assert!(!out.status.success(), "the viewer's deploy succeeded");
    eventually(WAIT, "the server refused the viewer's deploy", || {
        plane.violation("Publish", &subjects::command("carol", CtlVerb::Deploy))
    });
    // The viewer still reads.
    let snap = ctl_json(&url, &plane.seed("viewer/carol"), &["snapshot"]).expect("the viewer reads");
    assert!(snap["apps"].as_array().is_some_and(|a| a.iter().all(|x| x["name"] != "sneaky")), "{snap}");
    operator_deploys(&plane, "web");
}

#[test]
fn nats_roles_an_agent_cannot_speak_for_or_listen_to_another_host() {
    let test = "nats_roles_an_agent_cannot_speak_for_or_listen_to_another_host";
    let Some(plane) = RolePlane::start(test) else { return };
    let rt = rt();
    rt.block_on(async {
        let h1 = plane.client("agent/h1").await;
        let _ = h1.publish(&subjects::heartbeat("h2"), Bytes::from_static(b"{}")).await;
        let _ = h1.subscribe("qd.v1.agent.h2.cmd.>").await;
        let _ = h1.publish(&subjects::command("h1", CtlVerb::Deploy), Bytes::from_static(b"{}")).await;
        let _ = h1.flush().await;
    });
    eventually(WAIT, "the server refused h1 as h2", || {
        plane.violation("Publish", &subjects::heartbeat("h2"))?;
        plane.violation("Subscription", "qd.v1.agent.h2.cmd.>")?;
        plane.violation("Publish", &subjects::command("h1", CtlVerb::Deploy))
    });
    operator_deploys(&plane, "web");
}

/// The user in a command's subject is the one the audit records, and the server lets
/// each operator publish only under its own name: alice cannot send as bob, and what
/// alice's client claims about itself (its login) is context, not the user.
#[test]
fn nats_roles_an_operator_cannot_send_under_another_name_and_the_audit_names_the_checked_user() {
    let test = "nats_roles_an_operator_cannot_send_under_another_name_and_the_audit_names_the_checked_user";
    let Some(plane) = RolePlane::start(test) else { return };
    let url = plane.nats.url();
    let rt = rt();
    rt.block_on(async {
        let alice = plane.client("operator/alice").await;
        let as_bob = subjects::command("bob", CtlVerb::Deploy);
        let env = Envelope::new("ctl/bob@forged", deploy_request("forged"));
        let sent: Result<Accepted, _> = bus::request(&alice, &as_bob, &env, Duration::from_secs(2)).await;
        assert!(sent.is_err(), "alice's command under bob's name was answered: {sent:?}");
        let _ = alice.flush().await;
    });
    eventually(WAIT, "the server refused alice as bob", || {
        plane.violation("Publish", &subjects::command("bob", CtlVerb::Deploy))
    });
    // alice's ctl runs as login "mallory": the claim travels as context only.
    let out = Command::new(BIN)
        .arg("ctl")
        .args(deploy_args("web", "1.0.0", "1"))
        .env("NATS_URL", &url)
        .env("NATS_NKEY", plane.seed("operator/alice"))
        .env("USER", "mallory")
        .output()
        .expect("ctl");
    assert!(out.status.success(), "alice's deploy: {}", String::from_utf8_lossy(&out.stderr));
    let audit = ctl_lines(&url, &plane.seed("operator/alice"), &["audit", "--since", "1h"]);
    let deploys: Vec<&serde_json::Value> = audit.iter().filter(|r| r["verb"] == "deploy").collect();
    assert_eq!(deploys.len(), 1, "one deploy on record, not the forged one: {audit:?}");
    assert_eq!(deploys[0]["by"], "alice", "{}", deploys[0]);
    assert!(
        deploys[0]["operator"]["user"].as_str().is_some_and(|u| u.starts_with("mallory@")),
        "the client's claim is kept as context: {}",
        deploys[0]
    );
    let table = String::from_utf8_lossy(
        &ctl_as(&url, &plane.seed("operator/alice"), &["audit", "--since", "1h"]).stdout,
    )
    .into_owned();
    assert!(table.contains("alice (ctl/mallory@"), "{table}");
    let me = ctl_as(&url, &plane.seed("operator/alice"), &["whoami"]);
    assert_eq!(String::from_utf8_lossy(&me.stdout).trim(), "alice (may send commands)");
    let viewer = ctl_as(&url, &plane.seed("viewer/carol"), &["whoami", "--timeout", "3s"]);
    assert!(!viewer.status.success(), "a viewer may not act: {}", String::from_utf8_lossy(&viewer.stdout));
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

fn ctl_lines(url: &str, seed: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let out = ctl_as(url, seed, &[args, &["--json"]].concat());
    assert!(out.status.success(), "ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn nats_roles_an_operator_cannot_write_the_history_or_command_an_agent() {
    let test = "nats_roles_an_operator_cannot_write_the_history_or_command_an_agent";
    let Some(plane) = RolePlane::start(test) else { return };
    let url = plane.nats.url();
    let before = try_snapshot_as(&url, &plane.seed("operator/alice"));
    let rt = rt();
    rt.block_on(async {
        let alice = plane.client("operator/alice").await;
        let forged = Bytes::from_static(br#"{"v":1,"id":"f","ts":0,"source":"x","body":{}}"#);
        let _ = alice.publish("qd.v1.evt.app_updated.web", forged.clone()).await;
        let _ = alice.publish("qd.v1.agent.h1.cmd.remove", forged).await;
        let _ = alice.subscribe(subjects::CTL_ALL).await;
        let _ = alice.flush().await;
    });
    eventually(WAIT, "the server refused the operator's writes", || {
        plane.violation("Publish", "qd.v1.evt.app_updated.web")?;
        plane.violation("Publish", "qd.v1.agent.h1.cmd.remove")?;
        plane.violation("Subscription", subjects::CTL_ALL)
    });
    operator_deploys(&plane, "web");
    let after = try_snapshot_as(&url, &plane.seed("operator/alice"));
    assert!(after > before, "the plane moved on: revision {before} then {after}");
}

fn try_snapshot_as(url: &str, seed: &str) -> u64 {
    let snap = ctl_json(url, seed, &["snapshot"]).expect("snapshot");
    snap["revision"].as_u64().expect("a revision")
}

/// Without a seed the server lets nobody in: the roles are the only way onto the bus.
#[test]
fn nats_roles_a_client_without_a_user_is_refused() {
    let test = "nats_roles_a_client_without_a_user_is_refused";
    let Some(plane) = RolePlane::start(test) else { return };
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
    assert!(server_logs(plane.nats.dir()).contains("authentication error"), "no refusal logged");
}
