//! An agent away past `lost_after` (issue 12, fault 2), on real nats-server, dockerd and
//! nginx: the app keeps its desired count, its routes keep serving (the containers still
//! run), and when the agent returns the same containers are adopted again, none removed.

use std::time::Duration;

use serde_json::Value;

use crate::docker_support::docker;
use crate::nats_support::{check, eventually, list, try_snapshot};
use crate::stack_support::{Stack, get};

const WAIT: Duration = Duration::from_secs(60);

fn containers(host: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("label=quarterdeck.host={host}")])
            .split_whitespace()
            .map(str::to_string)
            .collect();
    ids.sort();
    ids
}

/// The app's instances as (id, state, container), sorted.
fn instances(snap: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = list(snap, "instances")
        .iter()
        .filter(|i| i["app"] == "site")
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("state"), s("container_id"))
        })
        .collect();
    out.sort();
    out
}

fn site(snap: &Value) -> Value {
    list(snap, "apps").iter().find(|a| a["name"] == "site").cloned().unwrap_or(Value::Null)
}

fn serves(port: u16) -> Result<(), String> {
    match get(port, "site.test")? {
        (200, _, body) if body == "v1" => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[test]
fn docker_agent_away_past_lost_after_keeps_serving_and_its_containers_are_adopted_back() {
    let name = "docker_agent_away_past_lost_after_keeps_serving_and_its_containers_are_adopted_back";
    // The agent beats every 300 ms: stale after 3 missed, lost after 10 (3 s).
    let Some(mut stack) = Stack::start_opts(name, "2s", &["--stale-after", "3", "--lost-after", "10"]) else {
        return;
    };
    let url = stack.url();
    let out = stack.deploy("1", "2", "v1", &["--az", "az1"]);
    assert!(out.ok(), "{out}");
    let port = stack.port;
    eventually(WAIT, "site serves through nginx", || serves(port));
    let before = instances(&try_snapshot(&url).expect("a snapshot"));
    let before_containers = containers(&stack.host);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before_containers.len(), 2, "{before_containers:?}");

    stack.agent.kill9();
    let lost = eventually(WAIT, "the host lost and site short of capacity", || {
        let snap = try_snapshot(&url)?;
        let host_lost =
            list(&snap, "hosts").iter().any(|h| h["id"] == stack.host.as_str() && h["state"] == "lost");
        check(host_lost && site(&snap)["shortfall"].is_string(), || {
            format!("hosts: {}\napp: {}", snap["hosts"], site(&snap))
        })?;
        Ok(snap)
    });
    let app = site(&lost);
    assert_eq!(app["instances"], 2, "the desired count is kept: {app}");
    assert_eq!(app["shortfall"], "waiting for capacity: no host is up", "{app}");
    // The containers still run: their routes are kept and nginx keeps sending to them.
    assert_eq!(list(&lost, "routes").len(), 2, "routes kept while nothing replaces them: {}", lost["routes"]);
    for _ in 0..5 {
        serves(port).unwrap_or_else(|e| panic!("site no longer served while its host is lost: {e}"));
    }

    // Away for well past lost_after, as in the report (25 s there, 3 s threshold here).
    std::thread::sleep(Duration::from_secs(5));
    stack.start_agent();
    let after = eventually(WAIT, "site back at 2 running instances, not short", || {
        let snap = try_snapshot(&url)?;
        let inst = instances(&snap);
        let ok = inst.len() == 2
            && inst.iter().all(|(_, state, _)| state == "running")
            && site(&snap)["shortfall"].is_null();
        check(ok, || format!("instances: {inst:?}\napp: {}", site(&snap)))?;
        Ok(snap)
    });
    let ids = |v: &[(String, String, String)]| {
        v.iter().map(|(id, _, c)| (id.clone(), c.clone())).collect::<Vec<_>>()
    };
    assert_eq!(ids(&instances(&after)), ids(&before), "the same instances, in the same containers");
    assert_eq!(containers(&stack.host), before_containers, "no container removed or added");
    eventually(WAIT, "site serves through nginx again", || serves(port));
    let log = stack._controller.stderr_text();
    assert!(!log.contains("to remove"), "the controller had a container removed:\n{log}");
}

/// The chaos run's outage that never healed (seed 1796531780234071119): an agent that came
/// back without an instance's container was asked to restart it, redeployed it instead
/// (it no longer had it) on a new port, and the route stayed at the old address: stale
/// there, and the new address got no traffic, for good. The route now follows the
/// instance to its new address.
#[test]
fn docker_an_instance_its_agent_lost_comes_back_on_a_new_port_and_its_route_follows() {
    let name = "docker_an_instance_its_agent_lost_comes_back_on_a_new_port_and_its_route_follows";
    let Some(mut stack) = Stack::start_with(name, "2s") else { return };
    let url = stack.url();
    let out = stack.deploy("1", "1", "v1", &[]);
    assert!(out.ok(), "{out}");
    let port = stack.port;
    eventually(WAIT, "site serves through nginx", || serves(port));
    let snap = try_snapshot(&url).expect("a snapshot");
    let inst = list(&snap, "instances").iter().find(|i| i["app"] == "site").cloned().expect("an instance");
    let old = inst["endpoint"].as_str().expect("an endpoint").to_string();

    // The agent goes, and its container with it; the old port is held, so the instance
    // cannot come back on it.
    stack.agent.kill9();
    for c in containers(&stack.host) {
        docker(&["rm", "-f", &c]);
    }
    let _held = std::net::TcpListener::bind(&old).expect("hold the old port");
    stack.start_agent();

    let healed = eventually(WAIT, "site running on a new address with its route there", || {
        let snap = try_snapshot(&url)?;
        let now =
            list(&snap, "instances").iter().find(|i| i["id"] == inst["id"]).cloned().unwrap_or_default();
        let endpoint = now["endpoint"].as_str().unwrap_or_default().to_string();
        let routes: Vec<(String, bool)> = list(&snap, "routes")
            .iter()
            .filter(|r| r["app"] == "site")
            .map(|r| (r["backend"].as_str().unwrap_or_default().to_string(), r["stale"] == true))
            .collect();
        let ok = now["state"] == "running" && endpoint != old && routes == [(endpoint.clone(), false)];
        check(ok, || format!("instance {now}\nroutes {routes:?} (it was at {old})"))?;
        Ok(endpoint)
    });
    assert_ne!(healed, old);
    eventually(WAIT, "site serves through nginx from the new address", || serves(port));
}
