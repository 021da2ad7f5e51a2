//! A controller that starts on a store which lost its events continues at a lower
//! revision: a new epoch. The router and
//! a headless cockpit, which lived through it, must see the lower revision, take a fresh
//! snapshot and follow the new epoch; before, the router stayed at its higher revision and
//! ignored every new event, so an app deployed afterwards never reached nginx.

use std::sync::Arc;
use std::time::Duration;

use crate::nats_support::{
    Follower, PlaneConfig, ctl_ok, deploy_args, eventually, plane_or_skip, revision, try_snapshot,
};
use crate::stack_support::{NginxGuard, free_port, nginx_bin, spawn_router};

#[test]
fn nats_a_controller_on_a_store_that_lost_its_events_is_a_new_epoch_that_router_and_cockpit_follow() {
    let test =
        "nats_a_controller_on_a_store_that_lost_its_events_is_a_new_epoch_that_router_and_cockpit_follow";
    let Some(nginx) = nginx_bin(test) else { return };
    let mut plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    let router_dir = plane.nats.dir().join("router");
    let _nginx = NginxGuard(router_dir.clone());
    let _router = spawn_router(&plane.nats, free_port(), &router_dir, &nginx);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let follower = rt.block_on(async {
        Follower::start(Arc::new(crate::nats_support::connect(&url, "test/epoch-cockpit").await))
    });

    ctl_ok(&url, &deploy_args("first", "1.0.0", "1"));
    ctl_ok(&url, &deploy_args("second", "1.0.0", "2"));
    let high = eventually(Duration::from_secs(30), "the router at the newer revision", || {
        let conf = std::fs::read_to_string(router_dir.join("nginx.conf")).map_err(|e| e.to_string())?;
        let s = try_snapshot(&url)?;
        if conf.contains("qd_second") { Ok(revision(&s)) } else { Err(conf) }
    });

    // The store loses its events while the bus stays up (so the router and the cockpit
    // are not reconnected, which would take a fresh snapshot anyway): the controller's
    // stream and state bucket are deleted, and it starts again from nothing.
    plane.controller.kill9();
    rt.block_on(async {
        let bus = crate::nats_support::connect(&url, "test/epoch-wipe").await;
        let js = bus.jetstream();
        js.delete_stream("QD_EVENTS").await.expect("delete the event stream");
        js.delete_key_value("qd_state").await.expect("delete the state bucket");
    });
    plane.restart_controller("c1");
    let low = revision(&plane.wait_hosts_up());
    assert!(low < high, "the new epoch starts lower: {low} < {high}");

    ctl_ok(&url, &deploy_args("third", "1.0.0", "1"));
    eventually(Duration::from_secs(30), "the app deployed in the new epoch reaches nginx", || {
        let conf = std::fs::read_to_string(router_dir.join("nginx.conf")).map_err(|e| e.to_string())?;
        if conf.contains("qd_third") && !conf.contains("qd_second") { Ok(()) } else { Err(conf) }
    });
    rt.block_on(async {
        let bus = crate::nats_support::connect(&url, "test/epoch-check").await;
        follower.wait_in_step(&bus, "the headless cockpit follows the new epoch").await;
    });
}

/// The acceptance's own words: an older copy of the store directory is restored. The bus
/// restarts with it, so the router and the cockpit reconnect (which takes a fresh
/// snapshot anyway); the test above is the one that keeps the bus up.
#[test]
fn nats_a_controller_on_an_older_copy_of_the_store_is_followed_by_router_and_cockpit() {
    let test = "nats_a_controller_on_an_older_copy_of_the_store_is_followed_by_router_and_cockpit";
    let Some(nginx) = nginx_bin(test) else { return };
    let mut plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    let router_dir = plane.nats.dir().join("router");
    let _nginx = NginxGuard(router_dir.clone());
    let _router = spawn_router(&plane.nats, free_port(), &router_dir, &nginx);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let follower = rt.block_on(async {
        Follower::start(Arc::new(crate::nats_support::connect(&url, "test/restore-cockpit").await))
    });

    ctl_ok(&url, &deploy_args("first", "1.0.0", "1"));
    // The copy: taken with the server stopped, as a backup of its directory would be.
    plane.nats.stop();
    let store = plane.nats.dir().join("jetstream");
    let copy = plane.nats.dir().join("jetstream-copy");
    copy_dir(&store, &copy);
    plane.nats.start_again();
    plane.wait_hosts_up();

    ctl_ok(&url, &deploy_args("second", "1.0.0", "2"));
    let high = eventually(Duration::from_secs(30), "the router at the newer revision", || {
        let conf = std::fs::read_to_string(router_dir.join("nginx.conf")).map_err(|e| e.to_string())?;
        let s = try_snapshot(&url)?;
        if conf.contains("qd_second") { Ok(revision(&s)) } else { Err(conf) }
    });

    plane.controller.kill9();
    plane.nats.stop();
    std::fs::remove_dir_all(&store).expect("remove the store");
    copy_dir(&copy, &store);
    plane.nats.start_again();
    plane.restart_controller("c1");
    let low = revision(&plane.wait_hosts_up());
    assert!(low < high, "the restored store is older: {low} < {high}");

    ctl_ok(&url, &deploy_args("third", "1.0.0", "1"));
    eventually(Duration::from_secs(30), "the app deployed on the restored store reaches nginx", || {
        let conf = std::fs::read_to_string(router_dir.join("nginx.conf")).map_err(|e| e.to_string())?;
        if conf.contains("qd_third") && !conf.contains("qd_second") { Ok(()) } else { Err(conf) }
    });
    rt.block_on(async {
        let bus = crate::nats_support::connect(&url, "test/restore-check").await;
        follower.wait_in_step(&bus, "the headless cockpit follows the restored store").await;
    });
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}
