//! The generation rule on a real daemon: an instance id names one placement on one host.
//! A host that runs a container under an id the fleet now places on another host (what a
//! host cut off while its instance was placed again would hold, had the id been given
//! again) has that container removed as superseded, while the current one runs on.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::docker_support::{docker, image, inspect};
use crate::nats_support::{Mode, check, eventually, instances_of, snapshot, str_of};
use crate::stack_support::Stack;

#[test]
fn docker_a_container_whose_instance_is_placed_on_another_host_is_removed_there() {
    let name = "docker_a_container_whose_instance_is_placed_on_another_host_is_removed_there";
    let Some(stack) = Stack::start_two_hosts(name, Mode::Open) else { return };
    let url = stack.url();
    let out = stack.deploy("1", "1", "current", &[]);
    assert!(out.ok(), "{out}");
    let snap = snapshot(&url);
    let inst = instances_of(&snap, "site")[0].clone();
    let (id, placed) = (str_of(&inst, "id").to_string(), str_of(&inst, "host").to_string());
    let other = stack.hosts.iter().find(|h| **h != placed).cloned().expect("a second host");
    let current =
        docker(&["ps", "-q", "--no-trunc", "--filter", &format!("label=quarterdeck.instance={id}")]);
    assert_eq!(current.lines().count(), 1, "one container of {id}: {current:?}");

    // The same labels on the other host: its agent adopts the container as its own {id}.
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&inspect(&current, "{{json .Config.Labels}}")).expect("labels as JSON");
    let mut args: Vec<String> =
        vec!["run".into(), "-d".into(), "--name".into(), format!("qd-superseded-{}", std::process::id())];
    for (k, v) in &labels {
        let v = if k == "quarterdeck.host" { other.as_str() } else { v.as_str() };
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    args.extend([image(), "httpd".into(), "-f".into(), "-p".into(), "8080".into()]);
    let stale = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());

    eventually(Duration::from_secs(60), "the superseded container removed from the other host", || {
        let left = docker(&["ps", "-aq", "--no-trunc", "--filter", &format!("id={stale}")]);
        check(left.is_empty(), || format!("{other} still holds {id} in {}", &stale[..12]))
    });
    // The current one is untouched, and still the fleet's.
    let running = inspect(&current, "{{.State.Running}}");
    assert_eq!(running, "true", "the current container of {id} on {placed}");
    let snap = snapshot(&url);
    let now: Vec<(String, String, String)> = instances_of(&snap, "site")
        .iter()
        .map(|i| (str_of(i, "id").into(), str_of(i, "host").into(), str_of(i, "state").into()))
        .collect();
    assert_eq!(now, [(id, placed, "running".to_string())], "{snap}");
}
