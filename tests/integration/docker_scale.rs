//! Issue 19, scale: `ctl scale` 2 -> 5 -> 1 -> 0 and `ctl app remove` on a real
//! nats-server, three docker hosts in three AZs and a router running nginx. At each step
//! the app's instances keep the AZ spread (max - min <= 1 over the AZs), the route table is
//! exactly the running instances, and nginx serves exactly those backends; a client
//! through nginx sees no failed request while the app scales down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::nats_support::{ctl, eventually, snapshot};
use crate::stack_support::{Stack, StackConfig, get};

const AZS: [&str; 3] = ["az1", "az2", "az3"];

/// An instance as (endpoint, AZ, state).
type Placed = (String, String, String);

/// The app's instances as (endpoint, AZ, state), and its routes as (backend, state).
fn app_state(s: &Value) -> (Vec<Placed>, Vec<(String, String)>) {
    let az_of: BTreeMap<&str, &str> = s["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| (h["id"].as_str().unwrap_or(""), h["az"].as_str().unwrap_or("")))
        .collect();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let instances = s["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["app"] == "site")
        .map(|i| {
            let az = az_of.get(i["host"].as_str().unwrap_or("")).copied().unwrap_or("?").to_string();
            (text(&i["endpoint"]), az, text(&i["state"]))
        })
        .collect();
    let routes = s["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["app"] == "site")
        .map(|r| (text(&r["backend"]), text(&r["state"])))
        .collect();
    (instances, routes)
}

/// The app's instance ids.
fn site_ids(s: &Value) -> BTreeSet<String> {
    let site = s["instances"].as_array().into_iter().flatten().filter(|i| i["app"] == "site");
    site.map(|i| i["id"].as_str().unwrap_or("").to_string()).collect()
}

/// `n` instances, all running and spread over the AZs; the routes exactly their endpoints,
/// enabled; and nginx serving each of them and nothing else.
fn check_scaled(stack: &Stack, n: usize) {
    let url = stack.url();
    let running: BTreeSet<String> =
        eventually(Duration::from_secs(60), &format!("{n} running, routed"), || {
            let (instances, routes) = app_state(&snapshot(&url));
            if instances.len() != n || instances.iter().any(|(_, _, state)| state != "running") {
                return Err(format!("instances {instances:?}"));
            }
            let endpoints: BTreeSet<String> = instances.iter().map(|(e, _, _)| e.clone()).collect();
            let routed: BTreeSet<String> = routes.iter().map(|(b, _)| b.clone()).collect();
            if routed != endpoints || routes.len() != n || routes.iter().any(|(_, s)| s != "enabled") {
                return Err(format!("routes {routes:?} for instances {instances:?}"));
            }
            let per_az: Vec<usize> =
                AZS.iter().map(|az| instances.iter().filter(|(_, a, _)| a == az).count()).collect();
            let (max, min) =
                (per_az.iter().max().copied().unwrap_or(0), per_az.iter().min().copied().unwrap_or(0));
            // Checked at once, not waited for: a spread broken now is broken.
            assert!(max - min <= 1, "x{n}: the AZ spread {per_az:?} ({instances:?})");
            Ok(endpoints)
        });
    if n == 0 {
        eventually(Duration::from_secs(20), "nginx has no backend for the app", || {
            let (status, _, _) = get(stack.port, "site.test")?;
            if status == 200 { Err("still served".to_string()) } else { Ok(()) }
        });
        return;
    }
    // Every backend answers through nginx, and only those: a removed one would answer
    // (its container may still run) or fail over, so each answer names a running backend.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    eventually(Duration::from_secs(30), &format!("nginx serves exactly the {n} backends"), || {
        let (status, backend, body) = get(stack.port, "site.test")?;
        if status != 200 || body != "site v1" {
            return Err(format!("{status} {body}"));
        }
        if !running.contains(&backend) {
            // The router may not have applied the last change yet: start over.
            seen.clear();
            return Err(format!("{backend} answered, not one of {running:?}"));
        }
        seen.insert(backend);
        if seen == running { Ok(()) } else { Err(format!("seen {seen:?} of {running:?}")) }
    });
}

/// Requests through nginx in a loop until stopped; returns (requests, failures).
fn client_loop(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut sent, mut failed) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            sent += 1;
            match get(port, "site.test") {
                Ok((200, _, body)) if body == "site v1" => {}
                other => failed.push(format!("{other:?}")),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (sent, failed)
    })
}

#[test]
fn scale_2_5_1_0_keeps_the_az_spread_and_the_routes_then_app_remove() {
    let name = "scale_2_5_1_0_keeps_the_az_spread_and_the_routes_then_app_remove";
    let Some(stack) = Stack::start_config(name, StackConfig { agents: 3, ..StackConfig::default() }) else {
        return;
    };
    let url = stack.url();
    let out = stack.deploy("1", "2", "site v1", &[]);
    assert!(out.ok(), "{out}");
    check_scaled(&stack, 2);

    let started = std::time::Instant::now();
    let up = ctl(&url, &["scale", "site", "5", "--wait"]);
    eprintln!("scale 2 -> 5 (3 new docker instances, healthy and routed): {:?}", started.elapsed());
    assert!(up.ok(), "{up}");
    assert!(up.stdout.contains("NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST"), "{up}");
    assert!(!up.stdout.contains("INSTANCE_REMOVED"), "a scale-up retires nothing: {up}");
    check_scaled(&stack, 5);
    let before = site_ids(&snapshot(&url));

    // Down to 1 while a client goes through nginx: each victim leaves the load balancer
    // before it stops, so no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let client = client_loop(stack.port, stop.clone());
    let started = std::time::Instant::now();
    let down = ctl(&url, &["scale", "site", "1", "--wait"]);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = client.join().expect("the client loop");
    assert!(down.ok(), "{down}");
    assert!(
        !down.stdout.contains("NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST"),
        "a scale-down starts nothing: {down}"
    );
    assert!(sent > 0 && failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    eprintln!(
        "scale 5 -> 1 (routes first, one router apply, 4 containers removed): {took:?}, {sent} requests through nginx, 0 failed"
    );
    // Each victim: its route removed before its instance.
    let after = site_ids(&snapshot(&url));
    let victims: Vec<&String> = before.difference(&after).collect();
    assert_eq!(victims.len(), 4, "{before:?} -> {after:?}");
    let lines: Vec<&str> = down.stdout.lines().collect();
    for id in victims {
        let at = |kind: &str| {
            let mine = format!("{id}: ");
            lines.iter().position(|l| l.contains(kind) && l.contains(&mine))
        };
        let (route, removed) = (at("REMOVE_ROUTE_REQUEST"), at("INSTANCE_REMOVED"));
        assert!(route.is_some() && route < removed, "{id}: route {route:?}, instance {removed:?}\n{down}");
    }
    check_scaled(&stack, 1);

    // The same count again, an unknown app, a count past the bound: refused, clearly.
    let same = ctl(&url, &["scale", "site", "1"]);
    assert!(!same.ok() && same.stderr.contains("already has 1 instance(s) desired"), "{same}");
    let unknown = ctl(&url, &["scale", "nope", "2"]);
    assert!(!unknown.ok() && unknown.stderr.contains("no app \"nope\""), "{unknown}");
    let past = ctl(&url, &["scale", "site", "501"]);
    assert!(!past.ok() && past.stderr.contains("501"), "{past}");

    // 0 keeps the app, desired 0, nothing running or routed.
    let zero = ctl(&url, &["scale", "site", "0", "--wait"]);
    assert!(zero.ok(), "{zero}");
    check_scaled(&stack, 0);
    let s = snapshot(&url);
    let app = s["apps"].as_array().into_iter().flatten().find(|a| a["name"] == "site").cloned();
    assert_eq!(app.map(|a| a["instances"].clone()), Some(Value::from(0)), "the app is kept at 0");
    let scales: Vec<&Value> =
        s["operations"].as_array().into_iter().flatten().filter(|o| o["kind"] == "scale").collect();
    assert_eq!(scales.len(), 3, "each scale an operation: {scales:?}");
    assert!(scales.iter().all(|o| o["state"] == "succeeded"), "{scales:?}");

    // Audited like a deploy: who, what, and how the operation ended; refusals too.
    let audit = ctl(&url, &["audit", "--json"]);
    assert!(audit.ok(), "{audit}");
    let records: Vec<Value> = audit.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let scales: Vec<&Value> = records.iter().filter(|r| r["verb"] == "scale").collect();
    let ended: Vec<&str> = scales.iter().filter_map(|r| r["verdict"].as_str()).collect();
    assert_eq!(ended.iter().filter(|v| **v == "ok").count(), 3, "three scales succeeded: {scales:?}");
    assert!(
        scales.iter().any(|r| r["message"].as_str().is_some_and(|m| m.contains("scale site to 0"))),
        "{scales:?}"
    );
    assert!(
        scales
            .iter()
            .any(|r| r["verdict"] == "failed"
                && r["result"].as_str().is_some_and(|m| m.contains("already has 1"))),
        "{scales:?}"
    );

    // Removal: without a terminal, --yes is required; with it the app goes.
    let asked = ctl(&url, &["app", "remove", "site"]);
    assert!(!asked.ok() && asked.stderr.contains("--yes"), "{asked}");
    let removed = ctl(&url, &["app", "remove", "site", "--yes", "--wait"]);
    assert!(removed.ok(), "{removed}");
    let s = snapshot(&url);
    assert!(!s["apps"].as_array().into_iter().flatten().any(|a| a["name"] == "site"), "{}", s["apps"]);
    let (instances, routes) = app_state(&s);
    assert!(instances.is_empty() && routes.is_empty(), "{instances:?} {routes:?}");
    eventually(Duration::from_secs(30), "no container of the app is left", || {
        let left = stack.containers(&["label=quarterdeck.app=site"]);
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    });
    let again = ctl(&url, &["app", "remove", "site", "--yes"]);
    assert!(!again.ok() && again.stderr.contains("no app"), "{again}");
}
