//! Issue 4 end to end: the original deploy flow on real dockerd and nats-server, driven
//! through `quarterdeck ctl` like an operator would. Endpoints are published on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use quarterdeck::bus::Bus;
use quarterdeck::protocol::subjects;
use serde_json::Value;

use crate::docker_support::{docker, docker_or_skip, inspect, site};
use crate::nats_support::{
    Mode, NatsServer, WAIT, assert_audited_as_harness_user, block_on, connect, ctl, ctl_json_lines,
    eventually, snapshot,
};
use crate::stack_support::{Stack, docker_agent_args, get, spawn_agent};

/// GET / from an instance's own endpoint (always 127.0.0.1:port here).
fn fetch(endpoint: &str) -> Result<String, String> {
    if !endpoint.starts_with("127.0.0.1:") {
        return Err(format!("refusing to send traffic to {endpoint}"));
    }
    let mut s = TcpStream::connect(endpoint).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(s, "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    match raw.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.trim().to_string()),
        _ => Err(raw),
    }
}

fn instances(url: &str) -> Vec<Value> {
    snapshot(url)["instances"].as_array().cloned().unwrap_or_default()
}

fn op_of(deploy_output: &str) -> String {
    deploy_output.lines().find_map(|l| l.strip_prefix("operation ")).unwrap_or_default().trim().to_string()
}

#[test]
fn docker_deploy_restart_adopt_and_crash() {
    deploy_restart_adopt_and_crash(Mode::Open, "docker_deploy_restart_adopt_and_crash");
}

/// The same with roles on: the controller, both agents and the router each their own user,
/// `ctl` as the operator.
#[test]
fn docker_deploy_restart_adopt_and_crash_with_roles() {
    deploy_restart_adopt_and_crash(Mode::Roles, "docker_deploy_restart_adopt_and_crash_with_roles");
}

/// Deploy, restart, agent restart (adoption) and a crash the health manager repairs, on two
/// docker hosts.
fn deploy_restart_adopt_and_crash(mode: Mode, name: &str) {
    let Some(mut stack) = Stack::start_two_hosts(name, mode) else { return };
    let url = stack.url();

    // First deploy: two labelled containers serving the artifact; every step, in order,
    // under one operation id.
    let out = stack.deploy("1", "2", "hello from v1", &[]);
    assert!(out.ok(), "{out}");
    let op = op_of(&out.stdout);
    let ids = stack.containers(&[]);
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in &ids {
        let labels = inspect(id, "{{json .Config.Labels}}");
        for key in [
            "quarterdeck.app",
            "quarterdeck.instance",
            "quarterdeck.index",
            "quarterdeck.version",
            "quarterdeck.host",
        ] {
            assert!(labels.contains(key), "{key} missing in {labels}");
        }
        assert!(labels.contains("\"quarterdeck.app\":\"site\""), "{labels}");
    }
    for inst in instances(&url) {
        assert_eq!(fetch(inst["endpoint"].as_str().unwrap()).unwrap(), "hello from v1");
    }
    let events = ctl_json_lines(&url, &["events", "--since", "10m"]);
    let kinds: Vec<String> = events
        .iter()
        .filter(|e| e["operation_id"] == op.as_str())
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect();
    let pos =
        |k: &str| kinds.iter().position(|x| x == k).unwrap_or_else(|| panic!("{k} missing in {kinds:?}"));
    let order = [
        "ALLOCATE_REPOSITORY_REQUEST",
        "UPLOAD",
        "NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST",
        "DOWNLOAD",
        "RESTART",
        "HEALTH_CHECK",
        "ADD_ROUTE_REQUEST",
        "INSTANCE_DEPLOYED",
        "OPERATION_SUCCEEDED",
    ];
    for pair in order.windows(2) {
        assert!(pos(pair[0]) < pos(pair[1]), "{} after {} in {kinds:?}", pair[0], pair[1]);
    }

    // Restart: StartedAt of that container changes.
    let victim = instances(&url)[0].clone();
    let id = victim["id"].as_str().unwrap().to_string();
    let container = victim["container_id"].as_str().unwrap().to_string();
    let before = inspect(&container, "{{.State.StartedAt}}");
    let out = ctl(&url, &["restart", "--instance", &id, "--wait"]);
    assert!(out.ok(), "{out}");
    let after = inspect(&container, "{{.State.StartedAt}}");
    assert_ne!(before, after, "StartedAt did not change");
    assert_audited_as_harness_user(&url, mode, "restart", |r| r["instance"] == id.as_str());

    // Agent restart (kill -9): the same containers remain, adopted, not duplicated.
    stack.restart_agent();
    eventually(Duration::from_secs(30), "the agent is back and reports both", || {
        let insts = instances(&url);
        let running = insts.iter().filter(|i| i["state"] == "running").count();
        if running == 2 && stack.agent.stderr_text().contains("serving") {
            Ok(())
        } else {
            Err(format!("{insts:?}"))
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut again = stack.containers(&[]);
    let mut first = ids.clone();
    again.sort();
    first.sort();
    assert_eq!(again, first, "the restarted agent changed the containers");

    // Crash: docker kill one; the instance shows crashed, then the health manager restarts it.
    let victim = instances(&url)[1].clone();
    docker(&["kill", victim["container_id"].as_str().unwrap()]);
    eventually(Duration::from_secs(40), "crashed, then running again", || {
        let events = ctl_json_lines(&url, &["events", "--since", "10m"]);
        let crashed = events.iter().any(|e| e["kind"] == "INSTANCE_CRASHED" && e["instance"] == victim["id"]);
        let running = instances(&url).iter().any(|i| i["id"] == victim["id"] && i["state"] == "running");
        if crashed && running { Ok(()) } else { Err(format!("crashed={crashed} running={running}")) }
    });
    assert_eq!(fetch(victim["endpoint"].as_str().unwrap()).unwrap(), "hello from v1");
    stack.nats.assert_no_violations();
}

/// With roles on, only the bucket's writers (controller, operators) may create the artifact
/// bucket. A docker agent that starts first, on a fresh bus, must still run: it looks the
/// bucket up when a deploy needs it. It used to create it at its start, was refused
/// (`Publish Violation - Subject "$JS.API.STREAM.CREATE.OBJ_qd_artifacts"`) and exited.
#[test]
fn docker_agent_with_roles_starts_before_anyone_made_the_artifact_bucket() {
    let name = "docker_agent_with_roles_starts_before_anyone_made_the_artifact_bucket";
    if !docker_or_skip(name) {
        return;
    }
    let host = format!("rb{}", std::process::id() % 100_000);
    let Some(nats) = NatsServer::start_mode(name, Mode::Roles, &[&host]) else { return };
    let mut agent =
        spawn_agent(&nats, &host, &docker_agent_args(&host, "az1", &nats.dir().join("agent-data")));
    block_on(async {
        let bus = connect(&nats.url(), "test/heartbeats").await;
        let mut sub = bus.subscribe(&subjects::heartbeat(&host)).await.expect("subscribe to its heartbeat");
        let beat = tokio::time::timeout(WAIT, sub.next()).await;
        assert!(matches!(beat, Ok(Some(_))), "no heartbeat from {host} within {WAIT:?}");
    });
    assert!(agent.running(), "the agent exited: {}", agent.stderr_text());
    nats.assert_no_violations();
}

#[test]
fn docker_rolling_update_health_failure_checksum_and_bad_input() {
    let name = "docker_rolling_update_health_failure_checksum_and_bad_input";
    let Some(stack) = Stack::start(name) else { return };
    let url = stack.url();
    assert!(stack.deploy("1", "2", "v1", &[]).ok());

    // Rolling v2: at every moment at least one instance serves (through the router), and
    // the end state is two containers serving v2.
    let port = stack.port;
    // Twenty in a row: nginx workers of a configuration from before the app existed may
    // still accept a connection or two while they shut down after a reload.
    eventually(Duration::from_secs(20), "v1 served through the router", || {
        for _ in 0..20 {
            match get(port, "site.test")? {
                (200, _, b) if b == "v1" => {}
                other => return Err(format!("{other:?}")),
            }
        }
        Ok(())
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let looper = std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut served = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match get(port, "site.test") {
                Ok((200, _, _)) => served += 1,
                other => failures.push(format!("{other:?}")),
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        (served, failures)
    });
    let out = stack.deploy("2", "2", "v2", &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (served, failures) = looper.join().unwrap();
    assert!(out.ok(), "{out}");
    if !failures.is_empty() {
        let events = crate::nats_support::ctl_ok(&url, &["events", "--since", "10m"]);
        let router = stack.router.as_ref().map(|r| r.stderr_text()).unwrap_or_default();
        panic!("{served} served, failures: {failures:?}\n{events}\n{router}");
    }
    let v2: Vec<_> = stack
        .containers(&[])
        .into_iter()
        .filter(|c| inspect(c, "{{index .Config.Labels \"quarterdeck.version\"}}") == "2")
        .collect();
    assert_eq!(v2.len(), 2);
    assert_eq!(stack.containers(&[]).len(), 2, "old containers left behind");

    // Health failure: v3 has no index.html, so its health check fails; the roll stops, v2
    // keeps serving and is the desired version again.
    let bad = stack.nats.dir().join("v3.tar.gz");
    std::fs::write(&bad, site(&[("other.html", "no index")])).unwrap();
    let out = stack.deploy_file("3", "2", &bad, &[]);
    assert!(!out.ok(), "v3 should fail: {out}");
    assert!(out.stderr.contains("failed"), "{out}");
    for _ in 0..5 {
        assert_eq!(get(port, "site.test").unwrap().2, "v2");
    }
    let snap = snapshot(&url);
    let app = snap["apps"].as_array().unwrap().iter().find(|a| a["name"] == "site").unwrap().clone();
    assert_eq!(app["version"], "2", "desired state rolled back");
    assert!(instances(&url).iter().all(|i| i["version"] == "2"));

    // Bad checksum: the slot holds other bytes than its checksum says; DOWNLOAD fails.
    let good = stack.artifact("v4", "v4 content");
    let data = std::fs::read(&good).unwrap();
    let sha = quarterdeck::repository::sha256_hex(&data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let store = js.get_object_store("qd_artifacts").await.unwrap();
        let meta = async_nats::jetstream::object_store::ObjectMetadata {
            name: quarterdeck::repository::slot("site", "4"),
            metadata: std::collections::HashMap::from([("sha256".to_string(), sha.clone())]),
            ..Default::default()
        };
        store.put(meta, &mut &b"corrupted bytes"[..]).await.unwrap();
    });
    let out = ctl(
        &url,
        &[
            "deploy",
            "--app",
            "site",
            "--version",
            "4",
            "--instances",
            "2",
            "--artifact",
            good.to_str().unwrap(),
            "--wait",
        ],
    );
    assert!(!out.ok(), "{out}");
    assert!(out.stdout.contains("checksum mismatch") || out.stderr.contains("checksum"), "{out}");
    assert_eq!(stack.containers(&[]).len(), 2, "a container was left behind");

    // Bad input: an unknown image fails clearly and leaves no container; a bad memory
    // value is refused before anything is sent.
    let out = ctl(
        &url,
        &[
            "deploy",
            "--app",
            "ghost",
            "--version",
            "1",
            "--image",
            "no-such-image:1",
            "--port",
            "80",
            "--wait",
        ],
    );
    assert!(!out.ok(), "{out}");
    assert!(out.stdout.contains("not found") || out.stderr.contains("not found"), "{out}");
    assert_eq!(stack.containers(&[]).len(), 2, "a container of the unknown image was left");
    let out = ctl(&url, &["deploy", "--app", "ghost", "--version", "1", "--memory", "lots"]);
    assert!(!out.ok() && out.stderr.contains("not a memory size"), "{out}");
    let out = ctl(&url, &["deploy", "--app", "ghost", "--version", "1", "--port", "0"]);
    assert!(!out.ok() && out.stderr.contains("port"), "{out}");
}
