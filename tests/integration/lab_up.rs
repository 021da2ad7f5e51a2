//! `scripts/lab up` gives a fleet of real hosts (each its own namespace, address, AZ and
//! dockerd), a registry they pull from, a NATS cluster with roles on keeping every
//! JetStream object at 3 replicas; `partition` and `heal` cut a host off and bring it
//! back; `down` leaves nothing behind, twice in a row.

use std::collections::BTreeSet;
use std::time::Duration;

use quarterdeck::plane::controller::store::{JetStreamConfig, JetStreamStore};

use crate::lab_support::{Lab, RANGES, leftovers, streams};
use crate::nats_support::{check, eventually, host_state, list, str_of};

#[test]
fn lab_up_gives_real_hosts_and_down_leaves_nothing() {
    let Some(mut lab) = Lab::up("lab-up", 4) else { return };
    let hosts = lab.hosts();
    assert_eq!(hosts, ["h1", "h2", "h3", "h4"]);

    // Every host is up in the plane's snapshot with its lab address and AZ: odd hosts in
    // az1 (198.51.100.0/24), even ones in az2 (203.0.113.0/24), host i at .1i.
    let snap = lab.snapshot();
    for (i, id) in hosts.iter().enumerate() {
        let n = i + 1;
        let host = list(&snap, "hosts")
            .iter()
            .find(|h| str_of(h, "id") == id)
            .unwrap_or_else(|| panic!("{id} is not in the snapshot: {snap}"));
        assert_eq!(str_of(host, "state"), "up", "{id}: {host}");
        assert_eq!(str_of(host, "ip"), format!("{}{}", RANGES[(n - 1) % 2], 10 + n), "{id}: {host}");
        assert_eq!(str_of(host, "az"), format!("az{}", (n - 1) % 2 + 1), "{id}: {host}");
    }

    // Each host answers through its own daemon, which keeps its data in the lab (engine
    // ids do not tell daemons apart: they come from the machine's /etc/docker/key.json).
    let mut roots = BTreeSet::new();
    for id in &hosts {
        let root = lab.run_ok(&["docker", id, "info", "--format", "{{.DockerRootDir}}"]);
        assert!(root.starts_with(lab.dir.to_str().unwrap()), "{id}'s daemon keeps its data in '{root}'");
        roots.insert(root);
    }
    assert_eq!(roots.len(), hosts.len(), "two hosts share a daemon: {roots:?}");

    // The registry: an image pushed into it is pulled by another host's daemon, which
    // trusts it as insecure; the host that pushed it keeps nothing of it.
    let image = std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into());
    let pushed = lab.run_ok(&["push", &image, "lab/httpd:v1"]);
    assert_eq!(pushed, format!("{}/lab/httpd:v1", lab.env["QD_LAB_REGISTRY"]));
    lab.run_ok(&["docker", "h2", "pull", &pushed]);
    let on_h2 = lab.run_ok(&["docker", "h2", "images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(on_h2, pushed, "h2's images after the pull");
    let on_h1 = lab.run_ok(&["docker", "h1", "images", "-q"]);
    assert_eq!(on_h1, "", "h1 kept the image it pushed");

    // A partition cuts the host off the plane (it goes stale) while its daemon runs on;
    // a heal brings it back.
    lab.run_ok(&["partition", "h3"]);
    eventually(Duration::from_secs(60), "h3 stale after the partition", || {
        let state = host_state(&lab.snapshot(), "h3").map(String::from);
        check(state.as_deref() == Some("stale"), || format!("h3 is {state:?}"))
    });
    lab.run_ok(&["docker", "h3", "info", "--format", "{{.ID}}"]);
    lab.run_ok(&["heal", "h3"]);
    eventually(Duration::from_secs(60), "h3 up after the heal", || {
        let state = host_state(&lab.snapshot(), "h3").map(String::from);
        check(state.as_deref() == Some("up"), || format!("h3 is {state:?}"))
    });

    // Roles are on: a client without a seed of the lab's is turned away by nats-server.
    let anonymous = crate::nats_support::ctl_with_seed(lab.nats_url(), None, &["--timeout", "3s", "hosts"]);
    assert!(!anonymous.ok(), "ctl without a seed was served: {anonymous}");

    // The history, the state and lease buckets and the artifact store: 3 copies each.
    eventually(Duration::from_secs(60), "every JetStream object at 3 replicas", || {
        let all = streams(&lab.jsz(1)?);
        for name in ["QD_EVENTS", "KV_qd_state", "KV_qd_leader", "KV_qd_releases", "OBJ_qd_artifacts"] {
            let replicas = all.get(name).map(|s| s["config"]["num_replicas"].clone());
            if replicas != Some(3.into()) {
                return Err(format!("{name}: replicas {replicas:?}"));
            }
        }
        Ok(())
    });

    // Copies are the controller's say alone. A client that opens the history with other
    // limits and no word on replicas (`ctl events` with the defaults) changes the limits
    // and keeps the 3 copies; a bucket made with one copy is scaled to three.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let seed = std::path::Path::new(&lab.env["QD_LAB_AUTH"]).join("controller/c2.nk");
        let bus = lab.connect_as(&seed, "test/lab-replicas").await;
        let config =
            JetStreamConfig { max_age: Duration::from_secs(12 * 3600), ..JetStreamConfig::default() };
        assert_eq!(config.replicas, None);
        JetStreamStore::open(&bus, &config).await.expect("open the history with other limits");
        let js = bus.jetstream();
        js.create_key_value(async_nats::jetstream::kv::Config {
            bucket: "qd_lab_scale".into(),
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .expect("a bucket with one copy");
        quarterdeck::bus::replicas::ensure(&js, "KV_qd_lab_scale", 3).await.expect("scale to 3");
    });
    eventually(Duration::from_secs(60), "new limits, same copies; the bucket scaled", || {
        let all = streams(&lab.jsz(1)?);
        let config = |name: &str| all.get(name).map(|s| s["config"].clone()).ok_or(format!("no {name}"));
        let events = config("QD_EVENTS")?;
        let hours = events["max_age"].as_u64().map(|ns| ns / 3_600_000_000_000);
        if hours != Some(12) || events["num_replicas"] != 3 {
            return Err(format!("QD_EVENTS: {events}"));
        }
        let scaled = config("KV_qd_lab_scale")?;
        if scaled["num_replicas"] != 3 {
            return Err(format!("KV_qd_lab_scale: {scaled}"));
        }
        Ok(())
    });

    let dir = lab.dir.clone();
    assert!(!leftovers(&dir).is_empty(), "the leftover check sees nothing of a lab that is up");
    let out = lab.down();
    assert!(out.status.success(), "scripts/lab down failed:\n{}", crate::lab_support::text(&out));
    assert_eq!(leftovers(&dir), Vec::<String>::new(), "scripts/lab down left these");
    let again = lab.run(&["down"]);
    assert!(
        again.status.success(),
        "a second scripts/lab down failed:\n{}",
        crate::lab_support::text(&again)
    );
    assert_eq!(leftovers(&dir), Vec::<String>::new(), "the second down left these");
}
