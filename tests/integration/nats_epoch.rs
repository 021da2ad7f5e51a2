//! A controller that starts on a store which lost its events continues at a lower
//! revision: a new epoch. The router and
//! a headless cockpit, which lived through it, must see the lower revision, take a fresh
//! snapshot and follow the new epoch; before, the router stayed at its higher revision and
//! ignored every new event, so an app deployed afterwards never reached nginx.

use std::sync::Arc;
use std::time::Duration;

use crate::nats_support::{
    Follower, Plane, PlaneConfig, ctl_ok, deploy_args, eventually, revision, try_snapshot,
};
use crate::stack_support::{NginxGuard, free_port, nginx_bin, spawn_router};

/// A plane with a router on nginx and a headless cockpit, both living through what the
/// store loses.
/// Fields drop in order: the router and nginx go before the plane's server.
struct Scene {
    _router: crate::nats_support::Proc,
    _nginx: NginxGuard,
    follower: Follower,
    rt: tokio::runtime::Runtime,
    router_dir: std::path::PathBuf,
    url: String,
    plane: Plane,
}

impl Scene {
    fn start(test: &str) -> Option<Scene> {
        let nginx = nginx_bin(test)?;
        let plane = Plane::start(test, PlaneConfig::default())?;
        let url = plane.url();
        let router_dir = plane.nats.dir().join("router");
        let nginx_guard = NginxGuard(router_dir.clone());
        let router = spawn_router(&plane.nats, free_port(), &router_dir, &nginx);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let follower = rt.block_on(async {
            Follower::start(Arc::new(crate::nats_support::connect(&url, "test/cockpit").await))
        });
        Some(Scene { plane, url, router_dir, rt, follower, _nginx: nginx_guard, _router: router })
    }

    fn nginx_conf(&self) -> Result<String, String> {
        std::fs::read_to_string(self.router_dir.join("nginx.conf")).map_err(|e| e.to_string())
    }

    /// Deploys "second" and waits for it in nginx: the revision the store then has.
    fn second_reaches_nginx(&self) -> u64 {
        ctl_ok(&self.url, &deploy_args("second", "1.0.0", "2"));
        eventually(Duration::from_secs(30), "the router at the newer revision", || {
            let conf = self.nginx_conf()?;
            let s = try_snapshot(&self.url)?;
            if conf.contains("qd_second") { Ok(revision(&s)) } else { Err(conf) }
        })
    }

    /// After the controller restarted on a store that lost "second": it starts below
    /// `high`, and router and cockpit follow it.
    fn lower_and_followed(&mut self, high: u64, what: &str) {
        self.plane.restart_controller("c1");
        let low = revision(&self.plane.wait_hosts_up());
        assert!(low < high, "{what} starts lower: {low} < {high}");
        ctl_ok(&self.url, &deploy_args("third", "1.0.0", "1"));
        eventually(Duration::from_secs(30), &format!("the app deployed on {what} reaches nginx"), || {
            let conf = self.nginx_conf()?;
            if conf.contains("qd_third") && !conf.contains("qd_second") { Ok(()) } else { Err(conf) }
        });
        self.rt.block_on(async {
            let bus = crate::nats_support::connect(&self.url, "test/epoch-check").await;
            self.follower.wait_in_step(&bus, &format!("the headless cockpit follows {what}")).await;
        });
    }
}

#[test]
fn nats_a_controller_on_a_store_that_lost_its_events_is_a_new_epoch_that_router_and_cockpit_follow() {
    let test =
        "nats_a_controller_on_a_store_that_lost_its_events_is_a_new_epoch_that_router_and_cockpit_follow";
    let Some(mut scene) = Scene::start(test) else { return };
    ctl_ok(&scene.url, &deploy_args("first", "1.0.0", "1"));
    let high = scene.second_reaches_nginx();

    // The store loses its events while the bus stays up (so the router and the cockpit
    // are not reconnected, which would take a fresh snapshot anyway): the controller's
    // stream and state bucket are deleted, and it starts again from nothing.
    scene.plane.controller.kill9();
    scene.rt.block_on(async {
        let bus = crate::nats_support::connect(&scene.url, "test/epoch-wipe").await;
        let js = bus.jetstream();
        js.delete_stream("QD_EVENTS").await.expect("delete the event stream");
        js.delete_key_value("qd_state").await.expect("delete the state bucket");
    });
    scene.lower_and_followed(high, "the new epoch");
}

/// The acceptance's own words: an older copy of the store directory is restored. The bus
/// restarts with it, so the router and the cockpit reconnect (which takes a fresh
/// snapshot anyway); the test above is the one that keeps the bus up.
#[test]
fn nats_a_controller_on_an_older_copy_of_the_store_is_followed_by_router_and_cockpit() {
    let test = "nats_a_controller_on_an_older_copy_of_the_store_is_followed_by_router_and_cockpit";
    let Some(mut scene) = Scene::start(test) else { return };
    ctl_ok(&scene.url, &deploy_args("first", "1.0.0", "1"));
    // The copy: taken with the server stopped, as a backup of its directory would be.
    scene.plane.nats.stop();
    let store = scene.plane.nats.dir().join("jetstream");
    let copy = scene.plane.nats.dir().join("jetstream-copy");
    copy_dir(&store, &copy);
    scene.plane.nats.start_again();
    scene.plane.wait_hosts_up();
    let high = scene.second_reaches_nginx();

    scene.plane.controller.kill9();
    scene.plane.nats.stop();
    std::fs::remove_dir_all(&store).expect("remove the store");
    copy_dir(&copy, &store);
    scene.plane.nats.start_again();
    scene.lower_and_followed(high, "the restored store");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(status.success(), "cp -a {} {}", from.display(), to.display());
}
