//! Cordon, drain and uncordon a host, on real services: nats-server, a controller, docker
//! agents (each a host of its own) and a router running nginx.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::nats_support::{ctl, eventually, snapshot};
use crate::stack_support::{Stack, StackConfig, get, site_deploy_args};

fn three_hosts(name: &str) -> Option<Stack> {
    Stack::start_config(name, StackConfig { agents: 3, ..StackConfig::default() })
}

/// The site's instances as (id, host, state), in id order.
fn site_instances(s: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = s["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["app"] == "site")
        .map(|i| {
            let field = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (field("id"), field("host"), field("state"))
        })
        .collect();
    out.sort();
    out
}

/// A host's schedule state as the snapshot carries it (`open` when the field is absent).
fn schedule(s: &Value, host: &str) -> Value {
    let h = s["hosts"].as_array().into_iter().flatten().find(|h| h["id"] == host).cloned();
    let h = h.unwrap_or_else(|| panic!("no host {host} in {}", s["hosts"]));
    if h["schedule"].is_null() { serde_json::json!({"state": "open"}) } else { h["schedule"].clone() }
}

/// The site deployed with `instances` instances, each reserving `cpu` cores.
fn deploy(stack: &Stack, version: &str, instances: &str, cpu: &str) {
    let artifact = stack.artifact(&format!("site-{version}"), &format!("site {version}"));
    let mut args = site_deploy_args(version, instances, &artifact, &[]);
    if let Some(at) = args.iter().position(|a| a == "--cpu") {
        args[at + 1] = cpu.to_string();
    }
    let out = ctl(&stack.url(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.ok(), "deploy {version}: {out}");
}

/// Drained under load: a client GETs through nginx every ~20 ms the whole time, and no
/// request fails; afterwards the host is cordoned and empty, and the app runs its count
/// on the other hosts.
#[test]
fn a_drain_under_load_fails_no_request_and_leaves_the_host_cordoned_and_empty() {
    let name = "a_drain_under_load_fails_no_request_and_leaves_the_host_cordoned_and_empty";
    let Some(stack) = three_hosts(name) else { return };
    // Four on three hosts: one host runs two, and that one is drained (two moves).
    deploy(&stack, "1", "4", "0.1");
    let url = stack.url();
    let before = site_instances(&snapshot(&url));
    assert_eq!(before.len(), 4, "{before:?}");
    let on = |host: &str| before.iter().filter(|(_, h, _)| h == host).count();
    let drained = stack.hosts.iter().max_by_key(|h| on(h)).cloned().expect("a host");
    assert_eq!(on(&drained), 2, "{before:?}");
    let leaving: Vec<String> =
        before.iter().filter(|(_, h, _)| *h == drained).map(|(id, _, _)| id.clone()).collect();

    let port = stack.port;
    eventually(Duration::from_secs(30), "the site answers through nginx", || match get(port, "site.test") {
        Ok((200, _, _)) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match get(port, "site.test") {
                    Ok((200, _, _)) => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (ok, failed)
        })
    };

    let out = ctl(&url, &["host", "drain", &drained, "--wait"]);
    // A little traffic after the end too: the last removal must not show up late.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().expect("the client thread");
    assert!(out.ok(), "the drain: {out}");
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 10, "the client kept asking during the drain: {ok} answers");

    let s = snapshot(&url);
    assert_eq!(schedule(&s, &drained), serde_json::json!({"state": "cordoned"}));
    let after = site_instances(&s);
    assert_eq!(after.len(), 4, "the app keeps its count: {after:?}");
    for (id, host, state) in &after {
        assert_ne!(host, &drained, "{id} is still on the drained host");
        assert_eq!(state, "running", "{id}");
        assert!(!leaving.contains(id), "{id} was on the drained host: {after:?}");
    }
    // The progress was the host's, event by event: draining 0/2, 1/2, 2/2, then cordoned.
    let events = crate::nats_support::ctl_json_lines(&url, &["events"]);
    let progress: Vec<String> = events
        .iter()
        .filter(|e| e["host"] == drained.as_str())
        .filter(|e| e["kind"] == "HOST_DRAINING" || e["kind"] == "HOST_CORDONED")
        .map(|e| e["message"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_string())
        .collect();
    let want: Vec<String> = ["cordoned, draining 2 instance(s)", "draining 1/2", "draining 2/2", "cordoned"]
        .iter()
        .map(|m| format!("{drained} {m}"))
        .collect();
    assert_eq!(progress, want, "{events:?}");
    let op = s["operations"].as_array().into_iter().flatten().find(|o| o["kind"] == "drain").cloned();
    let op = op.unwrap_or_else(|| panic!("no drain operation in {}", s["operations"]));
    assert_eq!(op["state"], "succeeded", "{op}");

    // Cordoned already: a cordon is accepted and changes nothing. An unknown host is named.
    let again = ctl(&url, &["host", "cordon", &drained]);
    assert!(again.ok(), "{again}");
    let unknown = ctl(&url, &["host", "drain", "no-such-host"]);
    assert!(!unknown.ok() && unknown.stderr.contains("no host"), "{unknown}");
}

/// A drain the rest of the fleet cannot hold is refused before anything moves: same
/// instances, the host not cordoned, and the reason names the app.
#[test]
fn a_drain_that_cannot_fit_is_refused_before_anything_moves() {
    let name = "a_drain_that_cannot_fit_is_refused_before_anything_moves";
    let Some(stack) = Stack::start_config(name, StackConfig { agents: 2, ..StackConfig::default() }) else {
        return;
    };
    let url = stack.url();
    let cores: f64 = snapshot(&url)["hosts"][0]["cpu_cores"].as_f64().expect("cores");
    // Each instance takes more than half a host: one per host, and no room for a second.
    let cpu = format!("{:.2}", cores * 0.6);
    deploy(&stack, "1", "2", &cpu);
    let before = snapshot(&url);
    let placed = site_instances(&before);
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert_ne!(placed[0].1, placed[1].1, "one per host: {placed:?}");
    let host = placed[0].1.clone();

    let out = ctl(&url, &["host", "drain", &host]);
    assert!(!out.ok(), "the drain was accepted: {out}");
    assert!(out.stderr.contains("cannot hold") && out.stderr.contains("site"), "{out}");
    assert!(out.stderr.contains("not enough CPU"), "the reason: {out}");

    let after = snapshot(&url);
    assert_eq!(site_instances(&after), placed, "nothing moved");
    assert_eq!(schedule(&after, &host), serde_json::json!({"state": "open"}), "not cordoned");
    assert!(
        !after["operations"].as_array().into_iter().flatten().any(|o| o["kind"] == "drain"),
        "no drain operation: {}",
        after["operations"]
    );
}

/// Cordoned, a host gets nothing from a deploy; uncordoned, it does again.
#[test]
fn a_cordoned_host_gets_no_new_instance_until_uncordoned() {
    let name = "a_cordoned_host_gets_no_new_instance_until_uncordoned";
    let Some(stack) = Stack::start_config(name, StackConfig { agents: 2, ..StackConfig::default() }) else {
        return;
    };
    let url = stack.url();
    let cordoned = stack.hosts[1].clone();
    let out = ctl(&url, &["host", "cordon", &cordoned]);
    assert!(out.ok(), "{out}");
    assert_eq!(schedule(&snapshot(&url), &cordoned), serde_json::json!({"state": "cordoned"}));

    // The AZ spread would put one on each host: the cordon keeps both off it.
    deploy(&stack, "1", "2", "0.1");
    let placed = site_instances(&snapshot(&url));
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert!(placed.iter().all(|(_, h, _)| *h != cordoned), "placed on the cordoned host: {placed:?}");
    // Heartbeats keep coming: none of them opens the host again.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(schedule(&snapshot(&url), &cordoned), serde_json::json!({"state": "cordoned"}));

    let out = ctl(&url, &["host", "uncordon", &cordoned]);
    assert!(out.ok(), "{out}");
    deploy(&stack, "2", "2", "0.1");
    let placed = site_instances(&snapshot(&url));
    assert!(placed.iter().any(|(_, h, _)| *h == cordoned), "nothing on the uncordoned host: {placed:?}");
}
