//! The original deploy flow end to end on real processes: nats-server, `quarterdeck
//! controller`, `quarterdeck agent --driver docker --advertise-ip 127.0.0.1` and `ctl`,
//! against the real dockerd. Needs `QD_NATS_SERVER` and `QD_DOCKER` (./scripts/test).
//! Traffic goes to 127.0.0.1 only; the `Scene` removes every container it made.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::docker_support::{Scene, docker, docker_or_skip, image, inspect, site};
use crate::nats_support::{
    CtlOut, NatsServer, Proc, ctl, ctl_json_lines, ctl_ok, eventually, instances_of, snapshot, str_of,
};

const WAIT: Duration = Duration::from_secs(60);

/// `GET /index.html` on a published endpoint (`127.0.0.1:port`): the body on 200.
fn get(endpoint: &str) -> Result<String, String> {
    assert!(endpoint.starts_with("127.0.0.1:"), "tests talk to 127.0.0.1 only, not {endpoint}");
    let mut s = TcpStream::connect(endpoint).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.contains(" 200 ") => Ok(body.to_string()),
        _ => Err(format!("not a 200: {text:?}")),
    }
}

fn agent(nats: &NatsServer, scene: &Scene) -> Proc {
    let data = scene.dir.join("data");
    let args = [
        "agent",
        "--host-id",
        &scene.host,
        "--az",
        "az-1",
        "--driver",
        "docker",
        "--advertise-ip",
        "127.0.0.1",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--heartbeat",
        "300ms",
        "--health-timeout",
        "5s",
    ];
    Proc::spawn(nats, &format!("agent-{}", scene.host), &args)
}

/// `(id, endpoint)` of the app's running instances.
fn running(url: &str, app: &str) -> Vec<(String, String)> {
    let snap = snapshot(url);
    let mut v: Vec<(String, String)> = instances_of(&snap, app)
        .iter()
        .filter(|i| i["state"] == "running")
        .map(|i| (str_of(i, "id").to_string(), str_of(i, "endpoint").to_string()))
        .collect();
    v.sort();
    v
}

/// `ctl deploy` of site@VERSION x2 from the test image serving the artifact.
fn deploy(url: &str, version: &str, artifact: &str, health: &str) -> CtlOut {
    let image = image();
    let args = [
        "deploy",
        "--app",
        "site",
        "--version",
        version,
        "--instances",
        "2",
        "--image",
        &image,
        "--port",
        "8080",
        "--artifact",
        artifact,
        "--cmd",
        "httpd -f -p 8080 -h /app",
        "--health",
        health,
        "--memory",
        "64M",
        "--cpu",
        "0.25",
        "--wait",
        "--wait-timeout",
        "2m",
    ];
    ctl(url, &args)
}

fn operation_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("op-"))
        .unwrap_or_else(|| panic!("no operation id in {stdout}"))
        .to_string()
}

#[test]
fn docker_e2e_deploy_restart_adopt_crash_roll_and_refuse() {
    let test = "docker_e2e_deploy_restart_adopt_crash_roll_and_refuse";
    if !docker_or_skip(test) {
        return;
    }
    let Some(nats) = NatsServer::start(test) else { return };
    let url = nats.url();
    let scene = Scene::new("e2e");
    let _controller = Proc::controller(&nats, "c1", &["--stale-after", "5", "--lost-after", "100"]);
    let mut agent_proc = agent(&nats, &scene);
    eventually(WAIT, "the docker host is up", || {
        let snap = crate::nats_support::try_snapshot(&url)?;
        crate::nats_support::check(crate::nats_support::host_state(&snap, &scene.host) == Some("up"), || {
            format!("hosts: {}", snap["hosts"])
        })
    });
    let write_site = |name: &str, body: &str| {
        let path = scene.dir.join(name);
        std::fs::write(&path, site(&[("index.html", body)])).unwrap();
        path.to_str().unwrap().to_string()
    };

    // First deploy: two labelled containers serving the artifact, every step in order.
    let v1 = write_site("v1.tgz", "site v1\n");
    let out = deploy(&url, "1.0", &v1, "http:/index.html");
    assert!(out.ok(), "{out}");
    let op = operation_id(&out.stdout);
    let first = running(&url, "site");
    assert_eq!(first.len(), 2, "{out}");
    for (_, endpoint) in &first {
        assert_eq!(get(endpoint).unwrap(), "site v1\n");
    }
    assert_eq!(scene.containers().len(), 2);
    for (id, _) in &first {
        assert_eq!(inspect(&format!("qd-{id}"), "{{index .Config.Labels \"quarterdeck.instance\"}}"), *id);
    }
    let events = ctl_json_lines(&url, &["events"]);
    let of_op: Vec<&Value> = events.iter().filter(|e| e["operation_id"] == op.as_str()).collect();
    for (id, _) in &first {
        let kinds: Vec<&str> =
            of_op.iter().filter(|e| e["instance"] == id.as_str()).map(|e| str_of(e, "kind")).collect();
        let mut flow = kinds.clone();
        flow.dedup();
        assert_eq!(
            flow,
            [
                "NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST",
                "DOWNLOAD",
                "RESTART",
                "HEALTH_CHECK",
                "ADD_ROUTE_REQUEST",
                "INSTANCE_DEPLOYED"
            ],
            "{id}: {kinds:?}"
        );
    }
    let kinds: Vec<&str> = of_op.iter().map(|e| str_of(e, "kind")).collect();
    assert_eq!(kinds.first(), Some(&"OPERATION_STARTED"));
    assert_eq!(kinds.last(), Some(&"OPERATION_SUCCEEDED"));

    // Restart: StartedAt changes.
    let (id0, _) = first[0].clone();
    let started = inspect(&format!("qd-{id0}"), "{{.State.StartedAt}}");
    ctl_ok(&url, &["restart", "--instance", &id0, "--wait", "--wait-timeout", "1m"]);
    assert_ne!(inspect(&format!("qd-{id0}"), "{{.State.StartedAt}}"), started);

    // Agent restart: killed with -9 and started again, it adopts the same two containers.
    let containers = scene.containers();
    agent_proc.kill9();
    agent_proc = agent(&nats, &scene);
    agent_proc.wait_for_log("adopted");
    eventually(WAIT, "both instances running after the agent restart", || {
        let now = running(&url, "site");
        crate::nats_support::check(now == first, || format!("{now:?}"))
    });
    assert_eq!(scene.containers(), containers, "adopted, not duplicated");

    // Crash: docker kill; the instance shows crashed, then the health manager restarts it.
    docker(&["kill", &format!("qd-{id0}")]);
    eventually(WAIT, "the instance shows crashed", || {
        let snap = snapshot(&url);
        let state =
            instances_of(&snap, "site").iter().find(|i| i["id"] == id0.as_str()).map(|i| i["state"].clone());
        crate::nats_support::check(state == Some(Value::from("crashed")), || format!("{state:?}"))
    });
    eventually(WAIT, "the health manager brought it back", || {
        let now = running(&url, "site");
        crate::nats_support::check(now.len() == 2, || format!("{now:?}"))
    });
    assert_eq!(get(&first[0].1).unwrap(), "site v1\n");

    // Rolling deploy of v2: at every moment at least one instance serves.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, dark) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let watcher = {
        let (stop, served, dark, url) = (stop.clone(), served.clone(), dark.clone(), url.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let up = running(&url, "site").iter().any(|(_, e)| get(e).is_ok());
                if up { &served } else { &dark }.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let v2 = write_site("v2.tgz", "site v2\n");
    let out = deploy(&url, "2.0", &v2, "http:/index.html");
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert!(out.ok(), "{out}");
    assert_eq!(
        dark.load(Ordering::Relaxed),
        0,
        "no moment without a serving instance ({} checks)",
        served.load(Ordering::Relaxed)
    );
    let second = running(&url, "site");
    assert_eq!(second.len(), 2);
    for (_, endpoint) in &second {
        assert_eq!(get(endpoint).unwrap(), "site v2\n");
    }
    eventually(WAIT, "the old containers are gone", || {
        let n = scene.containers().len();
        crate::nats_support::check(n == 2, || format!("{n} containers"))
    });

    // Health failure: v3's check fails, the roll stops and v2 keeps serving.
    let v3 = write_site("v3.tgz", "site v3\n");
    let out = deploy(&url, "3.0", &v3, "http:/missing");
    assert!(!out.ok(), "{out}");
    assert!(out.stdout.contains("HEALTH_CHECK") && out.stdout.contains("404"), "{out}");
    let after = running(&url, "site");
    assert_eq!(after, second, "v2 keeps serving");
    for (_, endpoint) in &after {
        assert_eq!(get(endpoint).unwrap(), "site v2\n");
    }

    // Bad input: an unknown image fails with a clear error and leaves no container.
    let out = ctl(
        &url,
        &[
            "deploy",
            "--app",
            "nope",
            "--version",
            "1",
            "--image",
            "quarterdeck-test/absent:1",
            "--port",
            "8080",
            "--wait",
            "--wait-timeout",
            "1m",
        ],
    );
    assert!(!out.ok(), "{out}");
    assert!(out.stdout.contains("image quarterdeck-test/absent:1 not found on this host"), "{out}");
    eventually(WAIT, "only v2's containers remain", || {
        let n = scene.containers().len();
        crate::nats_support::check(n == 2, || format!("{n} containers"))
    });
}

#[test]
fn docker_agent_without_an_engine_exits_with_a_clear_error() {
    let test = "docker_agent_without_an_engine_exits_with_a_clear_error";
    let Some(nats) = NatsServer::start(test) else { return };
    let out = std::process::Command::new(crate::nats_support::BIN)
        .args(["agent", "--host-id", "no-engine", "--az", "az-1", "--driver", "docker", "--data-dir"])
        .arg(nats.dir().join("data"))
        .env("NATS_URL", nats.url())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run the agent");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"), "{stderr}");
}
