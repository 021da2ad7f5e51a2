//! The failures of an on-call night, on the lab (`scripts/lab`), with images from the lab's
//! registry: the leader controller is killed during a deploy (the standby takes over and
//! the deploy ends, every instance exists once); a tag the registry does not have is
//! deployed (nothing old stops, nginx keeps serving); a host's dockerd restarts (its agent
//! adopts the containers, nothing is redeployed). Each prints its figures (`figure:`),
//! which `scripts/lab chaos` collects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::docker_support::site;
use crate::lab_support::{Lab, leftovers};
use crate::nats_support::{CtlOut, check, eventually, host_state, instances_of, list, str_of};
use crate::stack_support::{get, site_image_deploy_args};

const WAIT: Duration = Duration::from_secs(120);
/// The controllers' lease TTL (`quarterdeck controller --lease-ttl`, its default in the lab).
const LEASE_TTL: Duration = Duration::from_secs(10);

/// A lab with the test image in its registry as `lab/httpd:v1`; the pushed name.
fn lab_with_image(test: &str, hosts: usize) -> Option<(Lab, String)> {
    let lab = Lab::up(test, hosts)?;
    let image = std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into());
    let pushed = lab.run_ok(&["push", &image, "lab/httpd:v1"]);
    Some((lab, pushed))
}

/// `ctl deploy --wait` of `site` at `version` with `instances`, from `image`, serving
/// `version` as its page.
fn deploy(lab: &Lab, image: &str, version: &str, instances: &str) -> CtlOut {
    let artifact = lab.dir.join(format!("site-{version}.tar.gz"));
    std::fs::write(&artifact, site(&[("index.html", version)])).expect("artifact");
    let args = site_image_deploy_args(image, version, instances, &artifact, &[]);
    lab.ctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn router_port(lab: &Lab) -> u16 {
    let addr = &lab.env["QD_LAB_ROUTER"];
    addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("QD_LAB_ROUTER {addr}"))
}

/// The instance ids of `app` each host's own daemon runs (`docker ps` through
/// `scripts/lab docker`), by host; an id twice on one host is kept twice.
fn running_containers(lab: &Lab, app: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for host in lab.hosts() {
        let filter = format!("label=quarterdeck.app={app}");
        let ids = lab.run_ok(&[
            "docker",
            &host,
            "ps",
            "--filter",
            &filter,
            "--format",
            "{{.Label \"quarterdeck.instance\"}}",
        ]);
        let mut ids: Vec<String> = ids.lines().map(str::to_string).collect();
        ids.sort();
        out.insert(host, ids);
    }
    out
}

/// Every instance of `app` in the snapshot exists once: the snapshot names each id once,
/// each runs as one container on the host the snapshot places it on, and no host runs a
/// container of `app` the snapshot does not name.
fn each_instance_once(lab: &Lab, app: &str) -> Result<usize, String> {
    let snap = lab.snapshot();
    let mut placed: BTreeMap<String, Vec<String>> = lab.hosts().into_iter().map(|h| (h, vec![])).collect();
    let mut seen = BTreeSet::new();
    for inst in instances_of(&snap, app) {
        let id = str_of(inst, "id").to_string();
        if !seen.insert(id.clone()) {
            return Err(format!("the snapshot names {id} twice"));
        }
        if inst["state"] != "running" {
            return Err(format!("{id} is {}", inst["state"]));
        }
        placed.entry(str_of(inst, "host").to_string()).or_default().push(id);
    }
    for ids in placed.values_mut() {
        ids.sort();
    }
    let running = running_containers(lab, app);
    check(running == placed, || {
        format!("the hosts' daemons run {running:?}, the snapshot places {placed:?}")
    })?;
    Ok(seen.len())
}

/// The newest deploy operation of `app` in the snapshot.
fn last_deploy(snap: &Value, app: &str) -> Option<Value> {
    list(snap, "operations")
        .iter()
        .filter(|o| o["app"] == app && o["kind"] == "deploy")
        .max_by_key(|o| o["started_at"].as_u64().unwrap_or(0))
        .cloned()
}

#[test]
fn lab_leader_controller_killed_during_a_deploy_standby_takes_over() {
    let Some((lab, image)) = lab_with_image("lab-controller-loss", 2) else { return };
    let out = deploy(&lab, &image, "v1", "2");
    assert!(out.ok(), "deploy of v1: {out}");

    // A rolling deploy of four instances, followed by ctl --wait as an operator would.
    let roll = {
        let (dir, env, image) = (lab.dir.clone(), lab.env.clone(), image.clone());
        std::thread::spawn(move || {
            let artifact = dir.join("site-v2.tar.gz");
            std::fs::write(&artifact, site(&[("index.html", "v2")])).expect("artifact");
            let args = site_image_deploy_args(&image, "v2", "4", &artifact, &[]);
            crate::nats_support::ctl_with_seed(
                &env["NATS_URL"],
                Some(env["NATS_NKEY"].clone().into()),
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        })
    };
    eventually(WAIT, "the v2 deploy under way (a v2 instance placed)", || {
        let snap = lab.snapshot();
        let op = last_deploy(&snap, "site").ok_or("no deploy yet")?;
        let v2 = instances_of(&snap, "site").iter().filter(|i| i["version"] == "v2").count();
        check(
            op["state"] == "running" && op["target"].as_str().unwrap_or("").contains("v2") && v2 >= 1,
            || format!("deploy {} with {v2} v2 instance(s)", op["state"]),
        )
    });

    lab.run_ok(&["kill-controller", "c1"]);
    let killed = Instant::now();
    // c1 is gone: whoever answers now is c2, once it holds the lease and has the state.
    eventually(WAIT, "the standby answers", || {
        let out = lab.ctl(&["--timeout", "2s", "snapshot", "--json"]);
        check(out.ok(), || out.to_string())
    });
    let takeover = killed.elapsed();
    eprintln!(
        "figure: controller takeover {:.1}s after kill -9 of the leader (lease TTL {}s)",
        takeover.as_secs_f64(),
        LEASE_TTL.as_secs()
    );
    // The rule is TTL + 2 s; a loaded machine gets slack, the figure says the truth.
    assert!(takeover < LEASE_TTL * 4, "the standby took {takeover:?} to answer");

    // The deploy in progress ends, succeeded or failed with a reason, never left running.
    let out = roll.join().expect("the deploy's thread");
    eprintln!("ctl deploy --wait across the takeover: ok={} {}", out.ok(), out.stderr.trim());
    let op = eventually(WAIT, "the v2 deploy ended", || {
        let op = last_deploy(&lab.snapshot(), "site").ok_or("no deploy")?;
        match op["state"].as_str() {
            Some("succeeded") => Ok(op),
            Some("failed") if op["error"].as_str().is_some_and(|e| !e.is_empty()) => Ok(op),
            _ => Err(format!("{op}")),
        }
    });
    eprintln!(
        "figure: the deploy in progress {} ({}) in {:.1}s after the kill",
        op["state"],
        op["error"].as_str().unwrap_or("-"),
        killed.elapsed().as_secs_f64()
    );
    let n = eventually(WAIT, "every instance exists once", || each_instance_once(&lab, "site"));
    eprintln!("figure: {n} instance(s) of site, each once on the hosts' daemons");
}

#[test]
fn lab_missing_tag_fails_before_anything_stops_and_nginx_keeps_serving() {
    let Some((lab, image)) = lab_with_image("lab-missing-tag", 2) else { return };
    let out = deploy(&lab, &image, "v1", "2");
    assert!(out.ok(), "deploy of v1: {out}");
    let port = router_port(&lab);
    eventually(WAIT, "v1 serves through nginx", || match get(port, "site.test") {
        Ok((200, _, body)) if body == "v1" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let before = each_instance_once(&lab, "site").map(|_| running_containers(&lab, "site"));
    let before = before.unwrap_or_else(|e| panic!("before the deploy: {e}"));

    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                sent.fetch_add(1, Ordering::SeqCst);
                match get(port, "site.test") {
                    Ok((200, _, body)) if body == "v1" => {}
                    other => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        failures.push(format!("{other:?}"));
                    }
                }
            }
            failures
        })
    };

    let missing = image.replace(":v1", ":no-such-tag");
    let out = deploy(&lab, &missing, "v2", "2");
    assert!(!out.ok(), "a deploy of a tag the registry lacks succeeded: {out}");
    let said = format!("{}{}", out.stdout, out.stderr);
    let reason = said.lines().rev().find(|l| l.contains("no-such-tag")).unwrap_or_default();
    eprintln!("figure: missing tag: the deploy failed with: {}", reason.trim());
    assert!(said.contains("no-such-tag"), "the reason names the image: {out}");
    assert!(
        said.contains("not found") || said.contains("manifest unknown"),
        "the reason carries the registry's answer: {out}"
    );
    // Requests go on after the refusal too, until nginx has been asked a while longer.
    let after = sent.load(Ordering::SeqCst) + 50;
    eventually(WAIT, "50 more requests after the failed deploy", || {
        let n = sent.load(Ordering::SeqCst);
        check(n >= after, || format!("{n} sent"))
    });
    stop.store(true, Ordering::SeqCst);
    let failures = client.join().expect("the client's thread");
    let (sent, failed) = (sent.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!("figure: missing tag: {sent} requests through nginx, {failed} failed");
    assert_eq!(failed, 0, "requests failed while the deploy of a missing tag ran: {failures:?}");

    // Nothing old stopped: the same containers of v1 on the same hosts.
    let snap = lab.snapshot();
    let versions: BTreeSet<&str> = instances_of(&snap, "site").iter().map(|i| str_of(i, "version")).collect();
    assert_eq!(versions, BTreeSet::from(["v1"]), "{snap}");
    each_instance_once(&lab, "site").unwrap_or_else(|e| panic!("after the failed deploy: {e}"));
    assert_eq!(running_containers(&lab, "site"), before, "v1's containers changed");
}

#[test]
fn lab_dockerd_restart_agent_adopts_its_containers() {
    let Some((mut lab, image)) = lab_with_image("lab-dockerd-restart", 2) else { return };
    let out = deploy(&lab, &image, "v1", "2");
    assert!(out.ok(), "deploy of v1: {out}");
    each_instance_once(&lab, "site").unwrap_or_else(|e| panic!("before the restart: {e}"));
    let snap = lab.snapshot();
    let ids: BTreeSet<String> =
        instances_of(&snap, "site").iter().map(|i| str_of(i, "id").to_string()).collect();
    let host =
        instances_of(&snap, "site").first().map(|i| str_of(i, "host").to_string()).expect("an instance");
    // Each running container of the host with when it started: a container stopped and
    // started again keeps its id but not its start.
    let containers = |lab: &Lab| {
        let ids = lab.run_ok(&["docker", &host, "ps", "-q", "--no-trunc"]);
        let mut args = vec!["docker", host.as_str(), "inspect", "--format", "{{.Id}} {{.State.StartedAt}}"];
        args.extend(ids.split_whitespace());
        if ids.trim().is_empty() { String::new() } else { lab.run_ok(&args) }
    };
    let before = containers(&lab);
    assert!(!before.is_empty(), "{host} runs no container");
    let operations = |snap: &Value| -> BTreeSet<String> {
        list(snap, "operations").iter().map(|o| str_of(o, "id").to_string()).collect()
    };
    let ops_before = operations(&snap);

    let started = Instant::now();
    lab.run_ok(&["restart-docker", &host]);
    eventually(WAIT, "the host up and every instance running once again", || {
        let snap = lab.snapshot();
        check(host_state(&snap, &host) == Some("up"), || {
            format!("{host} is {:?}", host_state(&snap, &host))
        })?;
        let now: BTreeSet<String> =
            instances_of(&snap, "site").iter().map(|i| str_of(i, "id").to_string()).collect();
        check(now == ids, || format!("instances {now:?}, were {ids:?}"))?;
        each_instance_once(&lab, "site").map(|_| ())
    });
    let after = containers(&lab);
    eprintln!(
        "figure: dockerd restart on {host}: instances running again {:.1}s after the restart began, ids unchanged",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(after, before, "{host}'s containers were stopped or replaced (id and start time)");
    // Nothing was redeployed: no deploy or instance operation began after the restart.
    let later: BTreeSet<String> = operations(&lab.snapshot()).difference(&ops_before).cloned().collect();
    assert!(later.is_empty(), "operations began after the restart: {later:?}");

    // The agent watches the new daemon: a container killed now is seen and restarted.
    let first = after.split_whitespace().next().expect("a container id").to_string();
    lab.run_ok(&["docker", &host, "kill", &first]);
    eventually(WAIT, "the killed container restarted by the plane", || {
        let now = containers(&lab);
        check(!now.contains(&after) && now.contains(&first), || format!("{host} runs {now:?}"))?;
        each_instance_once(&lab, "site").map(|_| ())
    });

    // Containers that outlive their daemon must not outlive the lab.
    let dir = lab.dir.clone();
    let out = lab.down();
    assert!(out.status.success(), "scripts/lab down failed:\n{}", crate::lab_support::text(&out));
    assert_eq!(leftovers(&dir), Vec::<String>::new(), "scripts/lab down left these");
}
