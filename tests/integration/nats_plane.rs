//! The control plane as real processes on a real nats-server: deploy, controller crash and
//! restart, standby takeover, lost hosts, history, idempotent commands. Each test starts
//! its own nats-server (see nats_support.rs) and skips, saying so, without one.

use std::collections::BTreeSet;

use quarterdeck::protocol::{Event, EventKind, HistoryRequest, subjects};
use serde_json::Value;

use crate::nats_support::{
    Mode, Plane, PlaneConfig, Proc, WAIT, agent_reports, block_on, check, connect, ctl, ctl_json,
    ctl_json_lines, deploy_args, eventually, host_state, instance_states, instances_of, list, plane_or_skip,
    revision, running_count, str_of, try_snapshot, without_metrics,
};

/// Every step of the original deploy flow, as `ctl deploy --wait` prints them.
const STEPS: [&str; 8] = [
    "ALLOCATE_REPOSITORY_REQUEST",
    "UPLOAD",
    "NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST",
    "DOWNLOAD",
    "RESTART",
    "HEALTH_CHECK",
    "ADD_ROUTE_REQUEST",
    "INSTANCE_DEPLOYED",
];

/// The ids of an app's instances.
fn ids(snap: &Value, app: &str) -> BTreeSet<String> {
    instances_of(snap, app).iter().map(|i| str_of(i, "id").to_string()).collect()
}

/// `(id, container_id, endpoint, host)` of an app's instances: what a duplicate or a
/// re-created container would change.
fn placements(snap: &Value, app: &str) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = instances_of(snap, app)
        .iter()
        .map(|i| {
            let s = |k| str_of(i, k).to_string();
            (s("id"), s("container_id"), s("endpoint"), s("host"))
        })
        .collect();
    v.sort();
    v
}

/// Route backends of an app, sorted.
fn backends(snap: &Value, app: &str) -> Vec<String> {
    let mut v: Vec<String> = list(snap, "routes")
        .iter()
        .filter(|r| r["app"] == app)
        .map(|r| str_of(r, "backend").to_string())
        .collect();
    v.sort();
    v
}

fn endpoints(snap: &Value, app: &str) -> Vec<String> {
    let mut v: Vec<String> =
        instances_of(snap, app).iter().map(|i| str_of(i, "endpoint").to_string()).collect();
    v.sort();
    v
}

/// The snapshot once an app has `n` running instances, each with its route.
fn wait_running(plane: &Plane, app: &str, n: usize) -> Value {
    eventually(WAIT, &format!("{n} running instances of {app}, each routed"), || {
        let snap = try_snapshot(&plane.url())?;
        let ok = running_count(&snap, app) == n
            && instances_of(&snap, app).len() == n
            && backends(&snap, app) == endpoints(&snap, app);
        check(ok, || format!("instances: {}\nroutes: {}", snap["instances"], snap["routes"]))?;
        Ok(snap)
    })
}

#[test]
fn nats_deploy_over_two_agents_runs_three_instances() {
    let plane = plane_or_skip!("nats_deploy_over_two_agents_runs_three_instances", PlaneConfig::default());
    let out = plane.deploy("shop-web", "1.0.0", 3);
    for step in STEPS {
        assert!(out.contains(step), "ctl deploy --wait did not show {step}:\n{out}");
    }
    assert_eq!(out.matches("INSTANCE_DEPLOYED").count(), 3, "one INSTANCE_DEPLOYED per instance:\n{out}");
    assert!(out.contains("OPERATION_SUCCEEDED"), "{out}");

    let snap = plane.snapshot();
    assert_eq!(running_count(&snap, "shop-web"), 3, "{snap}");
    assert_eq!(list(&snap, "instances").len(), 3, "{snap}");
    assert_eq!(list(&snap, "routes").len(), 3, "{snap}");
    assert_eq!(backends(&snap, "shop-web"), endpoints(&snap, "shop-web"), "one route per instance");
    // Spread over both hosts (and so both AZs).
    let hosts: BTreeSet<&str> = instances_of(&snap, "shop-web").iter().map(|i| str_of(i, "host")).collect();
    assert_eq!(hosts.len(), 2, "{snap}");

    // The JSON field names the issue promises to scripts.
    for h in list(&snap, "hosts") {
        for k in ["id", "az", "ip", "state", "cpu_pct", "mem_pct"] {
            assert!(h.get(k).is_some(), "host without {k}: {h}");
        }
        assert_eq!(h["state"], "up");
    }
    for i in list(&snap, "instances") {
        for k in ["id", "app", "version", "index", "host", "state", "endpoint", "container_id"] {
            assert!(i.get(k).is_some(), "instance without {k}: {i}");
        }
        assert!(!str_of(i, "container_id").is_empty(), "{i}");
    }
    for r in list(&snap, "routes") {
        for k in ["app", "domain", "backend", "state", "weight"] {
            assert!(r.get(k).is_some(), "route without {k}: {r}");
        }
        assert_eq!(r["state"], "enabled");
    }
    assert!(list(&snap, "apps").iter().any(|a| a["name"] == "shop-web" && a["instances"] == 3), "{snap}");
    assert!(list(&snap, "operations").iter().any(|o| o["state"] == "succeeded"), "{snap}");
}

#[test]
fn nats_controller_kill9_and_restart_loses_nothing() {
    let mut plane = plane_or_skip!("nats_controller_kill9_and_restart_loses_nothing", PlaneConfig::default());
    plane.deploy("shop-web", "1.0.0", 3);
    let before = wait_running(&plane, "shop-web", 3);
    let rev_before = revision(&before);

    plane.controller.kill9();
    let restarted_at = quarterdeck::protocol::clock::now_ms();
    plane.restart_controller("c1");
    plane.controller.wait_for_log("loaded state at revision");

    // Judge only once both agents have heartbeated to the new controller, so that any
    // duplicate or orphan would have shown up.
    let after = eventually(WAIT, "the restarted controller heard both agents", || {
        let snap = try_snapshot(&plane.url())?;
        let heard = list(&snap, "hosts")
            .iter()
            .all(|h| h["state"] == "up" && h["last_heartbeat"].as_u64().is_some_and(|t| t > restarted_at));
        check(heard, || format!("hosts: {}", snap["hosts"]))?;
        Ok(snap)
    });
    assert!(revision(&after) >= rev_before, "revision went back: {} < {rev_before}", revision(&after));
    assert_eq!(running_count(&after, "shop-web"), 3, "{after}");
    assert_eq!(list(&after, "instances").len(), 3, "no instance duplicated: {after}");
    assert_eq!(ids(&after, "shop-web"), ids(&before, "shop-web"), "the same 3 instances");
    assert_eq!(
        placements(&after, "shop-web"),
        placements(&before, "shop-web"),
        "same containers, same hosts"
    );
    assert_eq!(backends(&after, "shop-web"), backends(&before, "shop-web"));

    // The revision carries on from where it was: the next change is above it.
    let backend = backends(&after, "shop-web")[0].clone();
    let accepted = ctl_json(&plane.url(), &["route", "disable", "--app", "shop-web", "--backend", &backend]);
    let rev = accepted["rev"].as_u64().expect("rev in the answer");
    assert!(rev > revision(&after), "new change at {rev}, not above {}", revision(&after));
    let log = plane.controller.stderr_text();
    assert!(!log.contains("asking h1 to remove") && !log.contains("asking h2 to remove"), "{log}");
}

#[test]
fn nats_standby_controller_takes_over_after_kill9() {
    standby_takes_over_after_kill9(Mode::Open, "nats_standby_controller_takes_over_after_kill9");
}

/// The same with roles on: c1 and the standby c2 are each their own controller user.
#[test]
fn nats_standby_controller_takes_over_after_kill9_with_roles() {
    standby_takes_over_after_kill9(Mode::Roles, "nats_standby_controller_takes_over_after_kill9_with_roles");
}

fn standby_takes_over_after_kill9(mode: Mode, test: &str) {
    let config = PlaneConfig {
        controller: vec!["--lease-ttl", "2s", "--stale-after", "5", "--lost-after", "100"],
        mode,
    };
    let mut plane = plane_or_skip!(test, config.clone());
    plane.deploy("shop-web", "1.0.0", 2);
    let before = wait_running(&plane, "shop-web", 2);

    let mut standby = Proc::controller(&plane.nats, "c2", &config.controller);
    standby.wait_for_log("standby");
    // While the first serves, the standby neither loads state nor serves.
    let answered = try_snapshot(&plane.url()).expect("c1 still answers");
    assert_eq!(revision(&answered), revision(&before));
    let log = standby.stderr_text();
    assert!(!log.contains("is serving") && !log.contains("loaded state"), "standby acted as leader:\n{log}");

    let killed = std::time::Instant::now();
    plane.controller.kill9();
    standby.wait_for_log("is serving");
    let after = eventually(WAIT, "the standby serves snapshots", || try_snapshot(&plane.url()));
    eprintln!("standby c2 served snapshots {:?} after c1 was killed (lease TTL 2s)", killed.elapsed());
    assert!(standby.stderr_text().contains("controller c2 holds the lease"), "{}", standby.stderr_text());
    assert!(revision(&after) >= revision(&before));
    // Same state: apps, instances, routes, operations; metrics aside.
    let (b, a) = (without_metrics(&before), without_metrics(&after));
    for key in ["apps", "instances", "routes", "operations"] {
        assert_eq!(a[key], b[key], "{key} differ after takeover");
    }
    assert_eq!(instance_states(&after, "shop-web"), instance_states(&before, "shop-web"));

    // And it takes commands.
    let scaled = ctl(&plane.url(), &deploy_args("shop-web", "1.0.0", "3"));
    assert!(scaled.ok(), "deploy through the new leader: {scaled}");
    wait_running(&plane, "shop-web", 3);
    plane.nats.assert_no_violations();
}

#[test]
fn nats_lost_agent_instances_are_placed_on_the_other_host() {
    // Defaults scaled to the 300 ms heartbeat: stale after 3 missed periods, lost after 10.
    let config = PlaneConfig {
        controller: vec!["--stale-after", "3", "--lost-after", "10"],
        ..PlaneConfig::default()
    };
    let mut plane = plane_or_skip!("nats_lost_agent_instances_are_placed_on_the_other_host", config);
    plane.deploy("shop-web", "1.0.0", 3);
    let before = wait_running(&plane, "shop-web", 3);
    let on_h2: Vec<String> = instances_of(&before, "shop-web")
        .iter()
        .filter(|i| i["host"] == "h2")
        .map(|i| str_of(i, "id").to_string())
        .collect();
    assert!(!on_h2.is_empty(), "h2 runs something: {before}");

    let h2 = plane.agents.iter_mut().find(|a| a.name == "agent-h2").expect("agent h2");
    h2.kill9();

    let after = eventually(WAIT, "h2 lost and its instances running on h1", || {
        let snap = try_snapshot(&plane.url())?;
        let inst = instances_of(&snap, "shop-web");
        let ok = host_state(&snap, "h2") == Some("lost")
            && host_state(&snap, "h1") == Some("up")
            && inst.len() == 3
            && inst.iter().all(|i| i["state"] == "running" && i["host"] == "h1")
            && backends(&snap, "shop-web") == endpoints(&snap, "shop-web")
            && list(&snap, "operations").iter().any(|o| o["kind"] == "replace" && o["state"] != "running");
        check(ok, || {
            format!("hosts: {}\ninstances: {}\nroutes: {}", snap["hosts"], snap["instances"], snap["routes"])
        })?;
        Ok(snap)
    });
    assert_eq!(running_count(&after, "shop-web"), 3, "count unchanged");
    for id in &on_h2 {
        assert!(!ids(&after, "shop-web").contains(id), "{id} of the lost host was replaced: {after}");
    }
    let replace =
        list(&after, "operations").iter().find(|o| o["kind"] == "replace").expect("replace operation");
    assert_eq!(replace["state"], "succeeded", "{replace}");

    // Stale first, then lost, in revision order.
    let events = ctl_json_lines(&plane.url(), &["events", "--since", "1h"]);
    let rev_of = |kind: &str| {
        events.iter().find(|e| e["kind"] == kind && e["host"] == "h2").and_then(|e| e["rev"].as_u64())
    };
    let stale = rev_of("HOST_STALE").expect("a HOST_STALE event for h2");
    let lost = rev_of("HOST_LOST").expect("a HOST_LOST event for h2");
    assert!(stale < lost, "stale at {stale}, lost at {lost}");
    assert!(!events.iter().any(|e| e["kind"] == "HOST_LOST" && e["host"] == "h1"), "h1 was never lost");
}

#[test]
fn nats_events_history_survives_a_controller_restart() {
    let mut plane =
        plane_or_skip!("nats_events_history_survives_a_controller_restart", PlaneConfig::default());
    plane.deploy("shop-web", "1.0.0", 3);
    let snap = wait_running(&plane, "shop-web", 3);
    let op = list(&snap, "operations")[0]["id"].as_str().expect("operation id").to_string();

    // A clean stop this time (kill -9 is tested above), then a start.
    let status = plane.controller.term().expect("the controller was running");
    assert!(status.success(), "controller exit on SIGTERM: {status}");
    assert!(plane.controller.stderr_text().contains("controller c1 stopping"));
    plane.restart_controller("c1");
    plane.controller.wait_for_log("is serving");

    // `ctl events` reads the JetStream stream.
    let events = ctl_json_lines(&plane.url(), &["events", "--since", "1h"]);
    for e in &events {
        for k in ["rev", "ts", "kind", "app", "operation_id", "message"] {
            assert!(e.get(k).is_some(), "event line without {k}: {e}");
        }
    }
    let revs: Vec<u64> = events.iter().map(|e| e["rev"].as_u64().expect("rev")).collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "revisions rise, no repeats: {revs:?}");
    let deployed: Vec<&Value> = events.iter().filter(|e| e["kind"] == "INSTANCE_DEPLOYED").collect();
    assert_eq!(deployed.len(), 3, "{events:#?}");
    assert!(deployed.iter().all(|e| e["operation_id"] == op.as_str() && e["app"] == "shop-web"));
    let instances: BTreeSet<&str> = deployed.iter().filter_map(|e| e["instance"].as_str()).collect();
    assert_eq!(instances, ids(&snap, "shop-web").iter().map(String::as_str).collect(), "one per instance");

    // The cockpit's path: the restarted controller answers ctl.history from the stream too.
    let url = plane.url();
    let history: Vec<Event> = block_on(async {
        let bus = connect(&url, "test/history").await;
        let req = HistoryRequest {
            since_ts: Some(quarterdeck::protocol::clock::now_ms() - 3_600_000),
            limit: None,
        };
        quarterdeck::bus::request(
            &bus,
            subjects::CTL_HISTORY,
            &quarterdeck::protocol::Envelope::new("test", req),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("history answered")
    });
    let deployed_too = history.iter().filter(|e| e.kind == EventKind::InstanceDeployed).count();
    assert_eq!(deployed_too, 3, "{history:#?}");
    let from_controller: Vec<u64> = history.iter().map(|e| e.rev).collect();
    assert!(from_controller.starts_with(&revs), "same history both ways:\n{from_controller:?}\n{revs:?}");
}

#[test]
fn nats_same_deploy_command_id_gives_one_operation() {
    let plane = plane_or_skip!("nats_same_deploy_command_id_gives_one_operation", PlaneConfig::default());
    let url = plane.url();
    let args = [
        "deploy",
        "--app",
        "shop-web",
        "--version",
        "1.0.0",
        "--instances",
        "2",
        "--image",
        "tomcat:8.5",
        "--port",
        "8080",
        "--command-id",
        "same-id",
        "--json",
    ];
    // Twice at the same time, then once more after the operation has finished.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| ctl(&url, &args));
        let b = s.spawn(|| ctl(&url, &args));
        (a.join().expect("first ctl"), b.join().expect("second ctl"))
    });
    assert!(a.ok() && b.ok(), "both accepted:\n{a}\n{b}");
    let parse = |s: &str| -> Value { serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}")) };
    let (first, second) = (parse(&a.stdout), parse(&b.stdout));
    assert!(first["operation_id"].is_string(), "{first}");
    assert_eq!(first, second, "the same answer, operation id and revision");

    let snap = wait_running(&plane, "shop-web", 2);
    let third = parse(&ctl(&url, &args).stdout);
    assert_eq!(third, first, "a late repeat gets the first answer");

    let snap_after = try_snapshot(&url).expect("snapshot");
    for s in [&snap, &snap_after] {
        let deploys: Vec<&Value> = list(s, "operations")
            .iter()
            .filter(|o| o["kind"] == "deploy" && o["app"] == "shop-web")
            .collect();
        assert_eq!(deploys.len(), 1, "exactly one deploy operation: {:#?}", s["operations"]);
        assert_eq!(deploys[0]["id"], first["operation_id"]);
        assert_eq!(instances_of(s, "shop-web").len(), 2, "no second set of instances");
    }
    assert_eq!(revision(&snap_after), revision(&snap), "the repeat changed nothing");

    // The operation remembers its command id durably: after a kill -9 and a restart the
    // same id is answered with the same operation, and nothing starts.
    let mut plane = plane;
    plane.restart_controller("c1");
    plane.controller.wait_for_log("is serving");
    let again = ctl(&url, &args);
    assert!(again.ok(), "{again}");
    let again = parse(&again.stdout);
    assert_eq!(again["operation_id"], first["operation_id"], "after a restart: {again}");
    let snap_restarted = try_snapshot(&url).expect("snapshot");
    let deploys = list(&snap_restarted, "operations").iter().filter(|o| o["kind"] == "deploy").count();
    assert_eq!(deploys, 1, "{:#?}", snap_restarted["operations"]);
    assert_eq!(instances_of(&snap_restarted, "shop-web").len(), 2);
    // Nothing ran twice on the agents either: their heartbeats list each instance once.
    let reported = agent_reports(&url);
    let mut running: Vec<String> =
        reported.values().flatten().filter(|r| r.app == "shop-web").map(|r| r.id.clone()).collect();
    running.sort();
    assert_eq!(running, ids(&snap_restarted, "shop-web").into_iter().collect::<Vec<_>>(), "{reported:#?}");
}

#[test]
fn nats_bus_outage_longer_than_lost_after_prunes_nothing() {
    // Lost after 12 missed 300 ms periods (3.6 s); the bus stays down longer than that.
    let config = PlaneConfig {
        controller: vec!["--stale-after", "3", "--lost-after", "12"],
        ..PlaneConfig::default()
    };
    let mut plane = plane_or_skip!("nats_bus_outage_longer_than_lost_after_prunes_nothing", config);
    plane.deploy("shop-web", "1.0.0", 3);
    let before = wait_running(&plane, "shop-web", 3);

    plane.nats.stop();
    eventually(WAIT, "every service noticed the outage", || {
        let procs = std::iter::once(&plane.controller).chain(plane.agents.iter());
        let unaware: Vec<&str> = procs
            .filter(|p| !p.stderr_text().contains("disconnected from"))
            .map(|p| p.name.as_str())
            .collect();
        check(unaware.is_empty(), || format!("not yet disconnected: {unaware:?}"))
    });
    // The one fixed wait: the outage itself must outlast the lost threshold.
    std::thread::sleep(std::time::Duration::from_millis(4_500));
    plane.nats.start_again();
    let back = quarterdeck::protocol::clock::now_ms();

    let after = eventually(WAIT, "both agents heard again after the outage", || {
        let snap = try_snapshot(&plane.url())?;
        let heard = list(&snap, "hosts")
            .iter()
            .all(|h| h["state"] == "up" && h["last_heartbeat"].as_u64().is_some_and(|t| t > back));
        check(heard, || format!("hosts: {}", snap["hosts"]))?;
        Ok(snap)
    });
    assert_eq!(placements(&after, "shop-web"), placements(&before, "shop-web"), "nothing replaced");
    assert_eq!(running_count(&after, "shop-web"), 3);
    let events = ctl_json_lines(&plane.url(), &["events", "--since", "1h"]);
    let lost: Vec<&Value> = events.iter().filter(|e| e["kind"] == "HOST_LOST").collect();
    assert!(lost.is_empty(), "a host was judged lost because the bus was down: {lost:#?}");
    assert!(!list(&after, "operations").iter().any(|o| o["kind"] == "replace"), "{}", after["operations"]);
}

/// A service's stderr names its speaker once, by role and id, as it connects to the bus
/// under that name: `controller/c1: connected to ...`, never `controller: controller/c1: ...`.
#[test]
fn nats_service_log_lines_name_their_speaker_once() {
    let plane = plane_or_skip!("nats_service_log_lines_name_their_speaker_once", PlaneConfig::default());
    for (log, who) in
        [(plane.controller.stderr_text(), "controller/c1"), (plane.agents[0].stderr_text(), "agent/h1")]
    {
        assert!(log.contains(&format!("INFO  {who}: connected to nats://")), "{who}:\n{log}");
        for line in log.lines() {
            // `2026-11-25 08:35:49 INFO  who: message`; a message's own next lines have no level.
            let Some(said) = ["ERROR ", "WARN  ", "INFO  ", "DEBUG ", "TRACE "]
                .iter()
                .find_map(|level| line.split_once(level).map(|(_, said)| said))
            else {
                continue;
            };
            let message = said.strip_prefix(&format!("{who}: ")).unwrap_or_else(|| panic!("{who}: {line}"));
            let role = who.split('/').next().unwrap_or(who);
            assert!(
                !message.starts_with(&format!("{role}/")) && !message.starts_with(&format!("{role}: ")),
                "{who}: the speaker named twice: {line}"
            );
        }
    }
}
