//! Images from a registry, on real services: Debian's docker-registry on 127.0.0.1, the
//! real dockerd, a controller, a docker agent and a router with nginx. The agent pulls an
//! image its host lacks (PULL_IMAGE, with bytes); every instance of a deploy runs the
//! digest the controller resolved at deploy time, even when the tag moves mid-roll; a tag
//! the registry does not have fails the deploy before any old instance stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::nats_support::{check, eventually, instances_of, snapshot, str_of};
use crate::registry_support::{Registry, image_id, images_of_host};
use crate::stack_support::{Stack, deploy_site_image, get};

const WAIT: Duration = Duration::from_secs(90);

/// The bytes a `PULL_IMAGE` line says were pulled (`... N of M bytes ...`), if any.
fn bytes_pulled(line: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(4).find(|w| w[1] == "of" && w[3].starts_with("bytes")).and_then(|w| w[0].parse().ok())
}

fn app_digest(url: &str) -> String {
    let snap = snapshot(url);
    let app = snap["apps"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "site")).cloned();
    app.and_then(|a| a["digest"].as_str().map(str::to_string)).unwrap_or_default()
}

/// Version `version` of `site` runs `n` instances, all running.
fn running(url: &str, version: &str) -> usize {
    let snap = snapshot(url);
    instances_of(&snap, "site").iter().filter(|i| i["version"] == version && i["state"] == "running").count()
}

#[test]
fn registry_image_is_pulled_with_its_bytes_and_every_instance_runs_the_digest_resolved_at_deploy() {
    let test =
        "registry_image_is_pulled_with_its_bytes_and_every_instance_runs_the_digest_resolved_at_deploy";
    let Some(registry) = Registry::start(test) else { return };
    let Some(stack) = Stack::start(test) else { return };
    let name = registry.name("qd-test/app:1");
    registry.build(&name, 2 << 20);
    let built = image_id(&name);
    let digest = registry.push(&name);
    registry.forget(&name);

    let artifact = stack.artifact("site-1", "v1 from the registry");
    let out = deploy_site_image(&stack.url(), &name, "1", "2", &artifact, &[]);
    assert!(out.ok(), "{out}");
    let pulls: Vec<&str> = out.stdout.lines().filter(|l| l.contains("PULL_IMAGE")).collect();
    assert!(pulls.iter().any(|l| l.contains(&format!("is {digest}"))), "the controller's resolution: {out}");
    let most = pulls.iter().filter_map(|l| bytes_pulled(l)).max().unwrap_or(0);
    assert!(most > 1 << 20, "a pull of the 2 MiB layer shows its bytes (most: {most}): {out}");
    assert_eq!(app_digest(&stack.url()), digest);
    // Progress is bounded in time, not one event per message of Docker's stream: per
    // instance, the start, at most one a second, and the end.
    for inst in instances_of(&snapshot(&stack.url()), "site") {
        let id = format!("{}:", str_of(inst, "id"));
        let lines: Vec<&&str> = pulls.iter().filter(|l| l.contains(&id)).collect();
        let secs = lines
            .iter()
            .find_map(|l| l.split(" in ").nth(1).and_then(|t| t.split('s').next()?.parse::<f64>().ok()))
            .unwrap_or_else(|| panic!("{id} says how long its pull took: {lines:#?}"));
        assert!(
            lines.len() as f64 <= 3.0 + secs,
            "{} PULL_IMAGE events in {secs}s for {id}: {lines:#?}",
            lines.len()
        );
    }

    let pinned = format!("{}/qd-test/app@{digest}", registry.addr);
    let images = images_of_host(&stack.host);
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(images.iter().all(|(r, id)| *r == pinned && *id == built), "{images:?}, want {pinned} = {built}");
    eventually(WAIT, "v1 serves through nginx", || match get(stack.port, "site.test") {
        Ok((200, _, body)) if body == "v1 from the registry" => Ok(()),
        other => Err(format!("{other:?}")),
    });
}

#[test]
fn a_tag_moved_during_a_rolling_deploy_changes_no_instance_of_it() {
    let test = "a_tag_moved_during_a_rolling_deploy_changes_no_instance_of_it";
    let Some(registry) = Registry::start(test) else { return };
    let Some(stack) = Stack::start(test) else { return };
    let out = stack.deploy("1", "2", "v1", &[]);
    assert!(out.ok(), "{out}");

    let name = registry.name("qd-test/app:2");
    registry.build(&name, 1 << 20);
    let first = image_id(&name);
    let first_digest = registry.push(&name);
    registry.forget(&name);
    let other = registry.name("qd-test/other:1");
    registry.build(&other, 1 << 20);
    let second = image_id(&other);

    let url = stack.url();
    let artifact = stack.artifact("site-2", "v2");
    let roll = {
        let (url, name, artifact) = (url.clone(), name.clone(), artifact.clone());
        std::thread::spawn(move || deploy_site_image(&url, &name, "2", "3", &artifact, &[]))
    };
    eventually(WAIT, "the first v2 instance runs", || {
        let n = running(&url, "2");
        check(n >= 1, || format!("{n} running"))
    });
    // The tag moves, here and in the registry, as a `docker push` of a new build does.
    crate::docker_support::docker(&["tag", &other, &name]);
    let second_digest = registry.push(&name);
    assert_ne!(first_digest, second_digest);
    let started = instances_of(&snapshot(&url), "site").iter().filter(|i| i["version"] == "2").count();
    assert!(started < 3, "the tag moved after every v2 instance had started ({started}): nothing was tested");

    let out = roll.join().expect("the deploy's thread");
    assert!(out.ok(), "{out}");
    let images = images_of_host(&stack.host);
    assert_eq!(images.len(), 3, "{images:?}");
    assert!(
        images.iter().all(|(_, id)| *id == first),
        "every v2 instance runs the first build {first}, none the second {second}: {images:?}"
    );
    assert_eq!(app_digest(&url), first_digest);
}

#[test]
fn a_tag_missing_from_the_registry_fails_the_deploy_before_any_old_instance_stops() {
    let test = "a_tag_missing_from_the_registry_fails_the_deploy_before_any_old_instance_stops";
    let Some(registry) = Registry::start(test) else { return };
    let Some(stack) = Stack::start(test) else { return };
    let out = stack.deploy("1", "2", "v1", &[]);
    assert!(out.ok(), "{out}");
    let url = stack.url();
    eventually(WAIT, "v1 serves through nginx", || match get(stack.port, "site.test") {
        Ok((200, _, body)) if body == "v1" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let containers_before = images_of_host(&stack.host);
    let mut before: Vec<(String, String)> = instances_of(&snapshot(&url), "site")
        .iter()
        .map(|i| (str_of(i, "id").to_string(), str_of(i, "container_id").to_string()))
        .collect();
    before.sort();

    // Requests go on through nginx while the deploy fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, sent, failed, port) = (stop.clone(), sent.clone(), failed.clone(), stack.port);
        std::thread::spawn(move || {
            let mut last = String::new();
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                match get(port, "site.test") {
                    Ok((200, _, body)) if body == "v1" => {}
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        last = format!("{other:?}");
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            last
        })
    };
    let missing = registry.name("qd-test/app:never-pushed");
    let artifact = stack.artifact("site-2", "v2");
    let out = deploy_site_image(&url, &missing, "2", "2", &artifact, &[]);
    // And after it: 50 more requests.
    let at_end = sent.load(Ordering::Relaxed);
    eventually(WAIT, "50 requests after the failed deploy", || {
        let n = sent.load(Ordering::Relaxed);
        check(n >= at_end + 50, || format!("{} since", n - at_end))
    });
    stop.store(true, Ordering::Relaxed);
    let last_failure = load.join().expect("the load's thread");

    assert!(!out.ok(), "{out}");
    // The registry's answer, through dockerd, in the reason.
    assert!(out.stderr.contains(&missing) && out.stderr.contains("manifest unknown"), "{out}");
    for kind in ["NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST", "REMOVE_ROUTE_REQUEST", "INSTANCE_REMOVED"] {
        assert!(!out.stdout.contains(kind), "{kind} before the image was known: {out}");
    }
    let mut after: Vec<(String, String)> = instances_of(&snapshot(&url), "site")
        .iter()
        .map(|i| (str_of(i, "id").to_string(), str_of(i, "container_id").to_string()))
        .collect();
    after.sort();
    assert_eq!(after, before, "the old instances, untouched");
    assert_eq!(running(&url, "1"), 2);
    assert_eq!(images_of_host(&stack.host), containers_before, "the same containers");
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{sent} requests through nginx during and after the failed deploy, {failed} failed");
    assert!(
        sent > 0 && failed == 0,
        "{failed} of {sent} requests failed during the deploy; last: {last_failure}"
    );
    let snap = snapshot(&url);
    let app = snap["apps"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "site")).cloned();
    assert_eq!(app.map(|a| a["version"].clone()), Some(serde_json::json!("1")), "desired back to v1");
}
