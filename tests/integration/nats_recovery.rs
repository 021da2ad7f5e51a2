//! A controller killed with -9 in the middle of a deploy, on a real nats-server with two sim
//! agents. Before, the operation stayed `running` forever and the app refused every later
//! deploy as busy. Now the restarted controller fails what nobody carries on, and the
//! health manager puts right what it left: within 30 s no operation runs, the app has its
//! instances, each index once, routes equal to the running instances, and the next deploy
//! is accepted and runs.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::nats_support::{
    PlaneConfig, ctl, ctl_ok, deploy_args, eventually, list, plane_or_skip, str_of, try_snapshot,
};

/// When the controller is killed, after the deploy was accepted.
const KILL_AFTER_MS: [u64; 5] = [50, 300, 800, 1_500, 3_000];
const INSTANCES: usize = 4;

#[test]
fn nats_a_controller_killed_mid_deploy_leaves_nothing_running_and_the_app_deployable() {
    let mut plane = plane_or_skip!(
        "nats_a_controller_killed_mid_deploy_leaves_nothing_running_and_the_app_deployable",
        PlaneConfig::default()
    );
    let url = plane.url();
    let n = INSTANCES.to_string();
    for (k, after_ms) in KILL_AFTER_MS.iter().enumerate() {
        let app = format!("cut{k}");
        // Accepted, not waited for: the kill lands in the middle of the steps.
        let args: Vec<&str> = deploy_args(&app, "1.0.0", &n)
            .into_iter()
            .filter(|a| !matches!(*a, "--wait" | "--wait-timeout" | "60s"))
            .collect();
        let out = ctl(&url, &args);
        assert!(out.ok(), "{app}: deploy accepted: {out}");
        std::thread::sleep(Duration::from_millis(*after_ms));
        plane.restart_controller("c1");

        let what = format!("{app} (controller killed {after_ms} ms into its deploy) is put right");
        eventually(Duration::from_secs(30), &what, || {
            let s = try_snapshot(&url)?;
            settled(&s, &app)
        });
        let next = deploy_args(&app, "1.0.1", &n);
        let out = ctl_ok(&url, &next);
        assert!(out.contains("INSTANCE_DEPLOYED"), "{app}: the next deploy runs: {out}");
        eventually(Duration::from_secs(30), &format!("{app} settled after its next deploy"), || {
            settled(&try_snapshot(&url)?, &app)
        });
    }
}

/// No operation running; every instance of `app` running, each index once, as many as it
/// wants; routes exactly the running instances' endpoints.
fn settled(s: &Value, app: &str) -> Result<(), String> {
    let open: Vec<&Value> = list(s, "operations").iter().filter(|o| o["state"] == "running").collect();
    if !open.is_empty() {
        return Err(format!("operations still running: {open:?}"));
    }
    let instances: Vec<&Value> = list(s, "instances").iter().filter(|i| i["app"] == app).collect();
    let indexes: BTreeSet<u64> = instances.iter().filter_map(|i| i["index"].as_u64()).collect();
    let running = instances.iter().all(|i| i["state"] == "running");
    if instances.len() != INSTANCES || indexes.len() != INSTANCES || !running {
        return Err(format!("instances of {app}: {instances:?}"));
    }
    let endpoints: BTreeSet<&str> = instances.iter().map(|i| str_of(i, "endpoint")).collect();
    let routes: Vec<&str> =
        list(s, "routes").iter().filter(|r| r["app"] == app).map(|r| str_of(r, "backend")).collect();
    let routed: BTreeSet<&str> = routes.iter().copied().collect();
    if routed != endpoints || routes.len() != endpoints.len() {
        return Err(format!("routes of {app} {routes:?}, running at {endpoints:?}"));
    }
    Ok(())
}
