//! The Docker runtime driver against a real dockerd: needs `QD_DOCKER` (./scripts/test).
//! Each test has its own host id, so its containers, network and directories are its own
//! and its `Scene` removes them even when it fails. All traffic goes to 127.0.0.1.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use quarterdeck::plane::agent::docker::{NetworkMode, PublishMode, VlanConfig};
use quarterdeck::plane::agent::driver::{DriverError, RuntimeDriver};
use quarterdeck::protocol::{ArtifactRef, HealthCheck, InstanceState, StepName};

use crate::docker_support::{
    Scene, Steps, docker, docker_or_skip, http_get, inspect, report, spec, wait_report,
};

fn steps_of(all: &[(StepName, InstanceState, String)]) -> Vec<StepName> {
    all.iter().map(|(s, _, _)| *s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_deploy_serves_the_artifact_then_restarts_redeploys_and_removes() {
    if !docker_or_skip("docker_deploy_serves_the_artifact_then_restarts_redeploys_and_removes") {
        return;
    }
    let scene = Scene::new("deploy");
    let driver = scene.driver().await;
    eprintln!("engine API {} (negotiated), storage {}", driver.api_version(), driver.storage_driver());
    assert!(!driver.api_version().is_empty());
    let v1 = scene.upload("site", "1.0", &[("index.html", "hello from v1\n")]).await;

    let mut steps = Steps::new();
    let ids = ["site-0-aaaa", "site-1-bbbb"];
    for id in ids {
        driver.deploy(spec(id, "site", "1.0", Some(v1.clone())), steps.tx.clone()).await.expect("deploy");
        let s = steps.drain();
        assert_eq!(steps_of(&s), [StepName::Download, StepName::Restart, StepName::HealthCheck], "{s:?}");
        assert!(s[0].2.contains("checksum ok"), "{s:?}");
        assert_eq!((s[1].1, s[2].1), (InstanceState::Starting, InstanceState::Running), "{s:?}");
    }
    assert_eq!(scene.containers().len(), 2, "two labelled containers");

    for id in ids {
        let r = report(&driver, id).await.expect("listed");
        assert_eq!(r.state, InstanceState::Running);
        assert_eq!(r.ip, "127.0.0.1", "published on the advertise IP");
        assert_ne!(r.port, 8080, "the endpoint is the host port, not the container's");
        assert_eq!(r.container_id.len(), 12);
        assert_eq!(http_get(r.port, "/index.html").await.expect("GET"), (200, "hello from v1\n".to_string()));

        let name = format!("qd-{id}");
        let labels: serde_json::Value =
            serde_json::from_str(&inspect(&name, "{{json .Config.Labels}}")).unwrap();
        assert_eq!(labels["quarterdeck.app"], "site");
        assert_eq!(labels["quarterdeck.instance"], id);
        assert_eq!(labels["quarterdeck.index"], id.split('-').nth(1).unwrap());
        assert_eq!(labels["quarterdeck.version"], "1.0");
        assert_eq!(labels["quarterdeck.host"], scene.host.as_str());
        assert_eq!(inspect(&name, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}"), "67108864 500000000");
        assert_eq!(inspect(&name, "{{range .Mounts}}{{.Destination}} rw={{.RW}}{{end}}"), "/app rw=false");
        assert!(r.container_id.starts_with(&inspect(&name, "{{.Id}}")[..12]));
    }

    // Metrics come from the container's cgroup (or stats): the limit is the container's.
    driver.refresh().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    driver.refresh().await.unwrap();
    let r = report(&driver, ids[0]).await.unwrap();
    assert_eq!(r.mem_limit_mb, 64, "{r:?}");
    assert!(r.mem_used_mb < 64, "{r:?}");
    let (cgroup, stats) = driver.metric_sources();
    eprintln!("container samples: {cgroup} from cgroup files, {stats} from one-shot stats");
    // Other tests' containers come and go between the list and the read, so a few may
    // fall back to stats; the cgroup files of this host are readable.
    if std::path::Path::new("/sys/fs/cgroup/memory/docker").is_dir() {
        assert!(cgroup > stats, "cgroup files are the main source: {cgroup} / {stats}");
    }

    // Idempotent on the instance id: no second container, no steps.
    assert!(driver.has(ids[0]).await);
    driver.deploy(spec(ids[0], "site", "1.0", Some(v1.clone())), steps.tx.clone()).await.unwrap();
    assert!(steps.drain().is_empty());
    assert_eq!(scene.containers().len(), 2);

    // Restart in place: a new start time, the same endpoint.
    let name = format!("qd-{}", ids[0]);
    let started_before = inspect(&name, "{{.State.StartedAt}}");
    let before = report(&driver, ids[0]).await.unwrap();
    driver.restart(ids[0], steps.tx.clone()).await.expect("restart");
    let s = steps.drain();
    assert_eq!(steps_of(&s), [StepName::HealthCheck], "{s:?}");
    assert_eq!(s[0].1, InstanceState::Running);
    assert_ne!(inspect(&name, "{{.State.StartedAt}}"), started_before, "StartedAt changes");
    let after = report(&driver, ids[0]).await.unwrap();
    assert_eq!((after.ip.as_str(), after.port), (before.ip.as_str(), before.port), "the endpoint survives");
    assert!(after.started_at > before.started_at, "{before:?} -> {after:?}");
    assert_eq!(http_get(after.port, "/index.html").await.unwrap().1, "hello from v1\n");
    assert_eq!(
        driver.restart("site-9-zzzz", steps.tx.clone()).await,
        Err(DriverError::NotFound("site-9-zzzz".into()))
    );

    // A redeploy of the same instance swaps the directory and restarts the container.
    let v2 = scene.upload("site", "2.0", &[("index.html", "hello from v2\n")]).await;
    let container = before.container_id.clone();
    driver.deploy(spec(ids[0], "site", "2.0", Some(v2)), steps.tx.clone()).await.expect("redeploy");
    let s = steps.drain();
    assert_eq!(steps_of(&s), [StepName::Download, StepName::Restart, StepName::HealthCheck], "{s:?}");
    let r = report(&driver, ids[0]).await.unwrap();
    assert_eq!(
        (r.version.as_str(), r.container_id.as_str(), r.port),
        ("2.0", container.as_str(), before.port)
    );
    assert_eq!(http_get(r.port, "/index.html").await.unwrap().1, "hello from v2\n");
    let dir = scene.dir.join("data/instances").join(ids[0]);
    assert!(dir.join("2.0").is_dir() && !dir.join("1.0").exists(), "the old version is pruned");

    // Remove: the container and the directory go; an unknown id is fine.
    driver.remove(ids[0]).await.expect("remove");
    assert!(report(&driver, ids[0]).await.is_none());
    assert!(!dir.exists());
    assert_eq!(scene.containers().len(), 1);
    driver.remove("site-7-nope").await.expect("removing an unknown instance is ok");
    driver.remove(ids[1]).await.unwrap();
    assert!(scene.containers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_a_restarted_agent_adopts_its_containers_and_touches_no_other() {
    if !docker_or_skip("docker_a_restarted_agent_adopts_its_containers_and_touches_no_other") {
        return;
    }
    let scene = Scene::new("adopt");
    let art = scene.upload("shop", "3.1", &[("index.html", "shop\n")]).await;
    let first = scene.driver().await;
    let mut steps = Steps::new();
    let mut s = spec("shop-0-cafe", "shop", "3.1", Some(art.clone()));
    s.run.health = HealthCheck::Http { path: "/index.html".into() };
    first.deploy(s.clone(), steps.tx.clone()).await.expect("deploy");
    assert_eq!(steps.drain().len(), 3);
    let original = report(&first, "shop-0-cafe").await.unwrap();
    // A container of another host on the same engine: never ours.
    let foreign = scene.run_by_hand(
        "foreign",
        &["--label", "quarterdeck.host=some-other-host", "--label", "quarterdeck.instance=shop-0-cafe"],
    );
    drop(first); // the agent dies; its container keeps running

    let second = scene.driver().await;
    let adopted = report(&second, "shop-0-cafe").await.expect("adopted at once, before any deploy");
    assert_eq!(adopted.state, InstanceState::Running);
    assert_eq!(adopted.container_id, original.container_id, "the same container");
    assert_eq!((adopted.ip.as_str(), adopted.port), (original.ip.as_str(), original.port));
    assert_eq!((adopted.app.as_str(), adopted.version.as_str(), adopted.index), ("shop", "3.1", 0));
    assert_eq!(adopted.started_at, original.started_at);
    assert_eq!(second.list().await.unwrap().len(), 1, "the other host's container is not adopted");
    let unmanaged = second.unmanaged().await;
    assert!(unmanaged.iter().any(|c| foreign.starts_with(&c.container_id)), "{unmanaged:?}");

    // The controller deploys it again (a retry): nothing new starts.
    assert!(second.has("shop-0-cafe").await);
    second.deploy(s, steps.tx.clone()).await.unwrap();
    assert!(steps.drain().is_empty());
    assert_eq!(scene.containers().len(), 2, "our one container and the foreign one");

    // The adopted instance restarts with its labelled health check.
    second.restart("shop-0-cafe", steps.tx.clone()).await.expect("restart adopted");
    let s = steps.drain();
    assert!(
        s.last().is_some_and(|(step, st, d)| *step == StepName::HealthCheck
            && *st == InstanceState::Running
            && d.contains("GET /index.html")),
        "{s:?}"
    );

    second.remove("shop-0-cafe").await.unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &foreign]),
        "true",
        "the foreign container is untouched"
    );
    assert_eq!(scene.containers(), vec![foreign]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_a_checksum_mismatch_fails_the_download_and_leaves_nothing() {
    if !docker_or_skip("docker_a_checksum_mismatch_fails_the_download_and_leaves_nothing") {
        return;
    }
    let scene = Scene::new("checksum");
    let driver = scene.driver().await;
    let good = scene.upload("site", "1.0", &[("index.html", "fine\n")]).await;
    let bad = ArtifactRef { sha256: "0".repeat(64), ..good.clone() };
    let mut steps = Steps::new();
    let err =
        driver.deploy(spec("site-0-bad0", "site", "1.0", Some(bad)), steps.tx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    let s = steps.drain();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].0, s[0].1), (StepName::Download, InstanceState::Crashed));
    assert!(s[0].2.contains("checksum mismatch") && s[0].2.contains(&good.sha256), "{s:?}");
    let r = report(&driver, "site-0-bad0").await.expect("the failure stays visible");
    assert_eq!((r.state, r.container_id.as_str()), (InstanceState::Crashed, ""));
    assert!(!driver.has("site-0-bad0").await, "a failed instance may be deployed again");
    assert!(scene.containers().is_empty(), "no container");
    assert!(!scene.dir.join("data/instances/site-0-bad0").exists(), "nothing unpacked");

    // Deployed again with the right checksum, it runs.
    driver.deploy(spec("site-0-bad0", "site", "1.0", Some(good)), steps.tx.clone()).await.expect("deploy");
    assert_eq!(report(&driver, "site-0-bad0").await.unwrap().state, InstanceState::Running);
    driver.remove("site-0-bad0").await.unwrap();
    assert!(report(&driver, "site-0-bad0").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_bad_input_fails_clearly_and_leaves_no_container() {
    if !docker_or_skip("docker_bad_input_fails_clearly_and_leaves_no_container") {
        return;
    }
    let scene = Scene::new("badinput");
    let mut config = scene.config();
    config.publish = PublishMode::Same;
    let driver = scene.driver_with(config).await;
    let art = scene.upload("site", "1.0", &[("index.html", "x\n")]).await;
    let mut steps = Steps::new();

    let mut unknown = spec("site-0-0001", "site", "1.0", Some(art.clone()));
    unknown.image = "quarterdeck-test/no-such-image:never".into();
    let err = driver.deploy(unknown, steps.tx.clone()).await.unwrap_err();
    assert_eq!(err.to_string(), "image quarterdeck-test/no-such-image:never not found on this host");
    let s = steps.drain();
    assert_eq!((s[0].0, s[0].1), (StepName::Restart, InstanceState::Crashed), "{s:?}");

    let mut tiny = spec("site-1-0002", "site", "1.0", Some(art.clone()));
    tiny.memory_mb = 4;
    let err = driver.deploy(tiny, steps.tx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("below Docker's minimum of 6 MB"), "{err}");

    // A host port already taken (published on the container's own port).
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let mut busy = spec("site-2-0003", "site", "1.0", Some(art.clone()));
    busy.port = taken;
    busy.run.cmd = Some(["httpd", "-f", "-p", &taken.to_string(), "-h", "/app"].map(String::from).to_vec());
    let err = driver.deploy(busy, steps.tx.clone()).await.unwrap_err();
    assert_eq!(err.to_string(), format!("port {taken} on 127.0.0.1 is already in use"));

    // A command the image does not have: Docker refuses to start it.
    let mut nocmd = spec("site-3-0004", "site", "1.0", Some(art));
    nocmd.run.cmd = Some(vec!["/no/such/binary".into()]);
    let err = driver.deploy(nocmd, steps.tx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("cannot start container qd-site-3-0004"), "{err}");

    let s = steps.drain();
    assert_eq!(
        steps_of(&s),
        [StepName::Restart, StepName::Restart, StepName::Download, StepName::Restart],
        "{s:?}"
    );
    let failed: Vec<_> = s.iter().filter(|(step, _, _)| *step != StepName::Download).collect();
    assert!(
        failed.iter().all(|(step, st, _)| *step == StepName::Restart && *st == InstanceState::Crashed),
        "{s:?}"
    );
    assert!(scene.containers().is_empty(), "no container left behind: {:?}", scene.containers());
    for r in driver.list().await.unwrap() {
        assert_eq!((r.state, r.container_id.as_str()), (InstanceState::Crashed, ""), "{r:?}");
    }
    drop(squatter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_health_check_failures_report_unhealthy_or_crashed_with_the_reason() {
    if !docker_or_skip("docker_health_check_failures_report_unhealthy_or_crashed_with_the_reason") {
        return;
    }
    let scene = Scene::new("health");
    let mut config = scene.config();
    config.health_timeout = Duration::from_secs(3);
    let driver = scene.driver_with(config).await;
    let art = scene.upload("site", "1.0", &[("index.html", "x\n")]).await;
    let mut steps = Steps::new();

    let mut missing = spec("site-0-4040", "site", "1.0", Some(art.clone()));
    missing.run.health = HealthCheck::Http { path: "/missing".into() };
    let err = driver.deploy(missing, steps.tx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("not healthy after 3s") && err.to_string().contains("404"), "{err}");
    let s = steps.drain();
    let last = s.last().unwrap();
    assert_eq!((last.0, last.1), (StepName::HealthCheck, InstanceState::Unhealthy), "{s:?}");
    assert_eq!(report(&driver, "site-0-4040").await.unwrap().state, InstanceState::Unhealthy);
    // The failed container stays for a look until the controller removes the instance.
    assert_eq!(scene.containers().len(), 1);
    driver.remove("site-0-4040").await.unwrap();

    let mut dies = spec("site-1-dead", "site", "1.0", Some(art.clone()));
    dies.run.cmd = Some(["sh", "-c", "echo boom; exit 3"].map(String::from).to_vec());
    let err = driver.deploy(dies, steps.tx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("exit code 3") && err.to_string().contains("boom"), "{err}");
    let last = steps.drain().pop().unwrap();
    assert_eq!((last.0, last.1), (StepName::HealthCheck, InstanceState::Crashed));

    let mut silent = spec("site-2-5eed", "site", "1.0", Some(art));
    silent.run.cmd = Some(["sleep", "300"].map(String::from).to_vec());
    silent.run.health = HealthCheck::Tcp;
    let err = driver.deploy(silent, steps.tx.clone()).await.unwrap_err();
    assert!(err.to_string().contains("not healthy after 3s"), "{err}");
    assert_eq!(report(&driver, "site-2-5eed").await.unwrap().state, InstanceState::Unhealthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_a_killed_container_shows_crashed_at_once_and_restarts() {
    if !docker_or_skip("docker_a_killed_container_shows_crashed_at_once_and_restarts") {
        return;
    }
    let scene = Scene::new("crash");
    let mut config = scene.config();
    // A slow reconcile: the crash must come from the event stream.
    config.refresh_period = Duration::from_secs(60);
    let driver = scene.driver_with(config).await;
    let art = scene.upload("site", "1.0", &[("index.html", "x\n")]).await;
    let steps = Steps::new();
    driver.deploy(spec("site-0-c0de", "site", "1.0", Some(art)), steps.tx.clone()).await.unwrap();
    let before = report(&driver, "site-0-c0de").await.unwrap();

    let killed = Instant::now();
    docker(&["kill", "qd-site-0-c0de"]);
    wait_report(&driver, "site-0-c0de", "crashed", |r| r.state == InstanceState::Crashed).await;
    assert!(killed.elapsed() < Duration::from_secs(5), "seen through events, not the reconcile");

    driver.restart("site-0-c0de", steps.tx.clone()).await.expect("restart after a crash");
    let after = report(&driver, "site-0-c0de").await.unwrap();
    assert_eq!(after.state, InstanceState::Running);
    assert!(after.started_at > before.started_at);
    assert_eq!(http_get(after.port, "/index.html").await.unwrap().0, 200);

    // Removed behind the agent's back: crashed, and a restart is "not found" so the
    // controller deploys it again with the full spec.
    docker(&["rm", "-f", "qd-site-0-c0de"]);
    wait_report(&driver, "site-0-c0de", "gone", |r| r.container_id.is_empty()).await;
    assert!(!driver.has("site-0-c0de").await);
    assert!(matches!(driver.restart("site-0-c0de", steps.tx.clone()).await, Err(DriverError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_vlan_mode_gives_static_addresses_from_31_and_skips_those_in_use() {
    if !docker_or_skip("docker_vlan_mode_gives_static_addresses_from_31_and_skips_those_in_use") {
        return;
    }
    let scene = Scene::new("vlan");
    let mut config = scene.config();
    let subnet = "10.213.77.0/24".parse().unwrap();
    config.network = NetworkMode::Vlan(VlanConfig::new(subnet, Ipv4Addr::new(10, 213, 77, 1)).unwrap());
    let driver = scene.driver_with(config).await;
    let net = format!("qd-vlan-{}", scene.host);
    assert_eq!(
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{.Driver}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
            &net
        ]),
        "bridge 10.213.77.0/24 10.213.77.1"
    );
    // Someone else's container already holds .32 on the network.
    let squatter = scene.run_by_hand("squatter", &["--network", &net, "--ip", "10.213.77.32"]);

    let art = scene.upload("site", "1.0", &[("index.html", "vlan\n")]).await;
    let steps = Steps::new();
    for id in ["site-0-0a0a", "site-1-1b1b", "site-2-2c2c"] {
        driver.deploy(spec(id, "site", "1.0", Some(art.clone())), steps.tx.clone()).await.expect("deploy");
    }
    let address = |id: &str| {
        inspect(
            &format!("qd-{id}"),
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        )
    };
    assert_eq!(address("site-0-0a0a"), "10.213.77.31");
    assert_eq!(address("site-1-1b1b"), "10.213.77.33", ".32 is in use");
    assert_eq!(address("site-2-2c2c"), "10.213.77.34");
    let r = report(&driver, "site-1-1b1b").await.unwrap();
    assert_eq!((r.ip.as_str(), r.port), ("10.213.77.33", 8080), "the endpoint is the VLAN address");
    // The health check went to the port published on 127.0.0.1, never to the VLAN.
    let published = docker(&["port", "qd-site-1-1b1b", "8080/tcp"]);
    assert!(published.starts_with("127.0.0.1:"), "{published}");

    // A freed address may be used again once nothing holds it; a held one never.
    driver.remove("site-0-0a0a").await.unwrap();
    driver.deploy(spec("site-3-3d3d", "site", "1.0", Some(art)), steps.tx.clone()).await.unwrap();
    assert_eq!(address("site-3-3d3d"), "10.213.77.31");
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", &squatter]), "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_unmanaged_containers_are_reported_with_metrics_and_never_touched() {
    if !docker_or_skip("docker_unmanaged_containers_are_reported_with_metrics_and_never_touched") {
        return;
    }
    let scene = Scene::new("unmanaged");
    let driver = scene.driver().await;
    let by_hand = scene.run_by_hand("byhand", &["--memory", "32m"]);
    driver.refresh().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    driver.refresh().await.unwrap();
    let found = driver.unmanaged().await.into_iter().find(|c| by_hand.starts_with(&c.container_id));
    let c = found.expect("reported as unmanaged");
    assert_eq!(c.name, format!("{}-byhand", scene.host));
    assert_eq!(
        (c.image.as_str(), c.state.as_str(), c.mem_limit_mb),
        (crate::docker_support::image().as_str(), "running", 32)
    );
    assert!(driver.list().await.unwrap().is_empty(), "not an instance");
    let host_metrics = driver.host_metrics().await;
    assert!(host_metrics.mem_total_mb > 0 && host_metrics.disk_total_mb > 0, "{host_metrics:?}");

    // Never touched: removing by any name the agent could be asked for does nothing.
    driver.remove(&c.name).await.unwrap();
    driver.remove(&c.container_id).await.unwrap();
    drop(driver);
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", &by_hand]), "true");
}
