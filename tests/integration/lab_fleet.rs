//! A fleet on the lab: three apps over four hosts in two AZs, every one from an image the
//! hosts pull from the lab's registry. Each host's own daemon holds exactly the instances
//! the snapshot places on it, and each app is spread over both AZs and served by nginx.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::lab_support::{Lab, placement_mismatches};
use crate::nats_support::{check, eventually, instances_of, str_of};
use crate::stack_support::get;

/// (app, instances): 9 instances over 4 hosts, so some share a host and one app has
/// more instances than there are AZs.
const APPS: [(&str, u32); 3] = [("web", 4), ("api", 3), ("docs", 2)];

#[test]
fn lab_fleet_three_apps_over_four_hosts_each_daemon_holds_what_the_snapshot_places() {
    let started = Instant::now();
    let Some(lab) = Lab::up("lab-fleet", 4) else { return };
    let image = lab.push_test_image();
    for (app, n) in APPS {
        let out = lab.deploy(app, "v1", n, &image);
        assert!(out.ok(), "deploy of {app}: {out}");
    }

    let snap = lab.snapshot();
    let az_of = |host: &str| {
        snap["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|h| h["id"] == host)
            .map(|h| str_of(h, "az").to_string())
    };
    for (app, n) in APPS {
        let insts = instances_of(&snap, app);
        let running = insts.iter().filter(|i| str_of(i, "state") == "running").count();
        assert_eq!((insts.len(), running), (n as usize, n as usize), "{app}: {snap}");
        // Spread: both AZs, and no host holds two of an app while another holds none.
        let azs: BTreeSet<Option<String>> = insts.iter().map(|i| az_of(str_of(i, "host"))).collect();
        assert_eq!(azs.len(), 2, "{app} is not spread over both AZs: {azs:?}");
        let hosts: BTreeSet<&str> = insts.iter().map(|i| str_of(i, "host")).collect();
        assert_eq!(hosts.len(), (n as usize).min(4), "{app} doubles up on a host while another is free");
        // Every instance runs the image from the registry, pinned to the digest.
        for i in &insts {
            let on = lab.containers(str_of(i, "host"));
            let c = on.iter().find(|c| c.instance == str_of(i, "id"));
            assert!(c.is_some_and(|c| c.running && c.app == app), "{}: {on:?}", str_of(i, "id"));
        }
    }
    let mismatches = placement_mismatches(&lab, &snap);
    assert!(mismatches.is_empty(), "daemons and snapshot differ:\n{}", mismatches.join("\n"));
    // The images came from the registry: each host's copy is named by the registry.
    let registry = &lab.env["QD_LAB_REGISTRY"];
    for host in lab.hosts() {
        let images =
            lab.run_ok(&["docker", &host, "images", "--digests", "--format", "{{.Repository}}@{{.Digest}}"]);
        assert!(
            images.lines().all(|l| l.starts_with(registry.as_str())),
            "{host} holds an image not from the registry: {images}"
        );
    }

    // nginx serves each app from its backends on the hosts' own addresses.
    let port = lab.router_port();
    for (app, n) in APPS {
        let domain = format!("{app}.test");
        let seen = eventually(Duration::from_secs(60), &format!("nginx serves all of {app}"), || {
            let mut backends = BTreeSet::new();
            for _ in 0..(4 * n) {
                match get(port, &domain) {
                    Ok((200, backend, body)) if body == format!("{app} v1") => {
                        backends.insert(backend);
                    }
                    other => return Err(format!("{domain}: {other:?}")),
                }
            }
            check(backends.len() == n as usize, || format!("{domain} answered from {backends:?}"))
                .map(|()| backends)
        });
        assert!(
            seen.iter().all(|b| crate::lab_support::RANGES.iter().any(|r| b.starts_with(r))),
            "{app} served from outside the lab's hosts: {seen:?}"
        );
    }
    eprintln!("lab_fleet: {:.0}s in all (lab up included)", started.elapsed().as_secs_f64());
}
