//! A cordon is the controller's, kept in its state: a host that goes stale and comes back,
//! and a controller killed and started again, leave it cordoned. Real nats-server, sim
//! agents.

use std::time::Duration;

use serde_json::Value;

use crate::nats_support::{Plane, PlaneConfig, Proc, check, ctl, eventually, host_state, instances_of};

fn schedule(snap: &Value, host: &str) -> Value {
    let h = snap["hosts"].as_array().into_iter().flatten().find(|h| h["id"] == host).cloned();
    h.map(|h| h["schedule"].clone()).unwrap_or(Value::Null)
}

#[test]
fn a_cordon_survives_the_host_s_return_and_a_controller_restart() {
    let name = "a_cordon_survives_the_host_s_return_and_a_controller_restart";
    let Some(mut plane) = Plane::start(name, PlaneConfig::default()) else { return };
    let url = plane.url();
    let out = ctl(&url, &["host", "cordon", "h2"]);
    assert!(out.ok(), "{out}");
    assert_eq!(schedule(&plane.snapshot(), "h2"), serde_json::json!({"state": "cordoned"}));

    // The agent killed long enough for its host to go stale, then back: HOST_UP rebuilds
    // the host from its heartbeat, and the cordon must stay.
    plane.agents[1].kill9();
    eventually(Duration::from_secs(30), "h2 stale", || {
        let snap = plane.snapshot();
        check(host_state(&snap, "h2") != Some("up"), || format!("{}", snap["hosts"]))
    });
    plane.agents[1] = Proc::agent(&plane.nats, "h2", "az-2", "127.0.2.1");
    plane.wait_hosts_up();
    assert_eq!(
        schedule(&plane.snapshot(), "h2"),
        serde_json::json!({"state": "cordoned"}),
        "after its return"
    );

    // The controller's state, read back by a new controller.
    plane.restart_controller("c1");
    let snap = plane.wait_hosts_up();
    assert_eq!(schedule(&snap, "h2"), serde_json::json!({"state": "cordoned"}), "after a restart");

    // And it still holds: the AZ spread would put one instance on h2.
    plane.deploy("web", "1", 2);
    let snap = plane.snapshot();
    let hosts: Vec<&str> =
        instances_of(&snap, "web").iter().map(|i| i["host"].as_str().unwrap_or("")).collect();
    assert_eq!(hosts, vec!["h1", "h1"], "nothing on the cordoned h2");

    let out = ctl(&url, &["host", "uncordon", "h2"]);
    assert!(out.ok(), "{out}");
    assert_eq!(schedule(&plane.snapshot(), "h2"), Value::Null, "open again: the field is left out");
}
