//! A host cut off the network while a client loop GETs through nginx: the host goes stale,
//! then lost; its instances run again on the other hosts and nginx drops its backends,
//! the client meanwhile seeing latency, not failed requests (nginx tries the next
//! backend). Healed, the host's agent removes its superseded containers: every daemon then
//! holds exactly what the snapshot places, once each, and the unmanaged container on the
//! partitioned host and every container elsewhere are untouched.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab_support::{Container, Lab, placement_mismatches};
use crate::nats_support::{check, eventually, host_state, instances_of, str_of};

/// (app, instances): `site` on every host, `other` on one host per AZ.
const APPS: [(&str, u32); 2] = [("site", 4), ("other", 2)];

/// Longer than anything nginx may spend on one request (its read timeout, 60 s), so a
/// slow answer is counted as slow, not as failed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// What the client loop saw: each request's latency, and the failures with their reason.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    failures: Vec<String>,
}

/// One GET of `site.test` through nginx: `Err` unless it is a 200 with site's page.
fn get_site(port: u16) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(|e| e.to_string())?;
    write!(s, "GET /index.html HTTP/1.0\r\nHost: site.test\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| format!("read: {e}"))?;
    let status = raw.split_whitespace().nth(1).unwrap_or_default();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
    if status == "200" && body == "site v1" { Ok(()) } else { Err(format!("{status}: {body:?}")) }
}

fn client_loop(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let result = get_site(port);
            seen.latencies.push(t.elapsed());
            if let Err(e) = result {
                seen.failures.push(e);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

/// Every app at its count, all running, none on `host`.
fn moved_off(snap: &Value, host: &str) -> Result<(), String> {
    for (app, n) in APPS {
        let elsewhere = instances_of(snap, app)
            .iter()
            .filter(|i| str_of(i, "host") != host && str_of(i, "state") == "running")
            .count();
        check(elsewhere >= n as usize, || format!("{app}: {elsewhere} of {n} running off {host}"))?;
    }
    Ok(())
}

/// Routes whose backend is on `ip`.
fn routes_to(snap: &Value, ip: &str) -> Vec<String> {
    let prefix = format!("{ip}:");
    snap["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["backend"].as_str())
        .filter(|b| b.starts_with(&prefix))
        .map(String::from)
        .collect()
}

#[test]
fn lab_partition_moves_instances_with_no_failed_request_and_the_heal_leaves_no_duplicate() {
    let started = Instant::now();
    let Some(lab) = Lab::up("lab-partition", 4) else { return };
    let image = lab.push_test_image();
    for (app, n) in APPS {
        let out = lab.deploy(app, "v1", n, &image);
        assert!(out.ok(), "deploy of {app}: {out}");
    }
    let snap = lab.snapshot();
    let victim = str_of(instances_of(&snap, "other")[0], "host").to_string();
    let victim_ip = snap["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["id"] == victim.as_str())
        .map(|h| str_of(h, "ip").to_string())
        .expect("the victim in the snapshot");

    // An unmanaged container on the host to be cut off: nothing may touch it.
    let bystander = lab.run_ok(&["docker", &victim, "run", "-d", "--name", "bystander", &image]);
    // What the other hosts run: all of it must still run after the heal.
    let before: Vec<(String, Vec<Container>)> =
        lab.hosts().into_iter().filter(|h| *h != victim).map(|h| (h.clone(), lab.containers(&h))).collect();

    let port = lab.router_port();
    eventually(Duration::from_secs(60), "nginx serves site", || get_site(port));
    let stop = Arc::new(AtomicBool::new(false));
    let client = client_loop(port, stop.clone());
    std::thread::sleep(Duration::from_secs(2));

    let cut = Instant::now();
    lab.run_ok(&["partition", &victim]);
    let (mut stale_at, mut lost_at, mut moved_at, mut unrouted_at) = (None, None, None, None);
    let deadline = Duration::from_secs(240);
    while moved_at.is_none() || unrouted_at.is_none() {
        assert!(cut.elapsed() < deadline, "not moved off {victim} and unrouted within {deadline:?}");
        let snap = lab.snapshot();
        let state = host_state(&snap, &victim).map(String::from);
        if stale_at.is_none() && matches!(state.as_deref(), Some("stale" | "lost")) {
            stale_at = Some(cut.elapsed());
        }
        if lost_at.is_none() && state.as_deref() == Some("lost") {
            lost_at = Some(cut.elapsed());
        }
        if moved_at.is_none() && moved_off(&snap, &victim).is_ok() {
            moved_at = Some(cut.elapsed());
        }
        if unrouted_at.is_none() && moved_at.is_some() && routes_to(&snap, &victim_ip).is_empty() {
            unrouted_at = Some(cut.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The client goes on a little on the new table, then stops.
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let seen = client.join().expect("the client loop");
    let mut sorted = seen.latencies.clone();
    sorted.sort();
    eprintln!(
        "lab_partition: {victim} cut off; stale after {:?}, lost after {:?}, instances running elsewhere \
         after {:?}, its backends out of nginx after {:?}",
        stale_at.unwrap_or_default(),
        lost_at.unwrap_or_default(),
        moved_at.unwrap_or_default(),
        unrouted_at.unwrap_or_default()
    );
    eprintln!(
        "lab_partition: {} requests through nginx, {} failed; latency p50 {:?}, p99 {:?}, max {:?}",
        seen.latencies.len(),
        seen.failures.len(),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or_default()
    );
    assert!(seen.latencies.len() > 100, "the client loop hardly ran: {} requests", seen.latencies.len());
    assert!(seen.failures.is_empty(), "requests failed during the partition: {:?}", seen.failures);

    // Healed: the host is up again, and its superseded containers go.
    let healed = Instant::now();
    lab.run_ok(&["heal", &victim]);
    eventually(Duration::from_secs(60), "the host up after the heal", || {
        let state = host_state(&lab.snapshot(), &victim).map(String::from);
        check(state.as_deref() == Some("up"), || format!("{victim} is {state:?}"))
    });
    eventually(Duration::from_secs(120), "every daemon holds what the snapshot places, once", || {
        let snap = lab.snapshot();
        let mismatches = placement_mismatches(&lab, &snap);
        check(mismatches.is_empty(), || mismatches.join("\n"))?;
        for (app, n) in APPS {
            let held: usize =
                lab.hosts().iter().map(|h| lab.containers(h).iter().filter(|c| c.app == app).count()).sum();
            let placed = instances_of(&snap, app).len();
            check(held == n as usize && placed == n as usize, || {
                format!("{app}: {held} containers on the daemons, {placed} instances, want {n}")
            })?;
        }
        Ok(())
    });
    eprintln!("lab_partition: superseded containers gone {:?} after the heal", healed.elapsed());

    let on_victim = lab.containers(&victim);
    assert!(
        on_victim.iter().any(|c| c.id == bystander && c.running && c.name == "bystander"),
        "the unmanaged container on {victim} was touched: {on_victim:?}"
    );
    for (host, was) in before {
        let now = lab.containers(&host);
        for c in was {
            assert!(
                now.iter().any(|n| n.id == c.id && n.running == c.running),
                "{host}: {} ({}) was touched: now {now:?}",
                c.name,
                c.instance
            );
        }
    }
    eventually(Duration::from_secs(60), "nginx serves site after the heal", || get_site(port));
    eprintln!("lab_partition: {:.0}s in all (lab up included)", started.elapsed().as_secs_f64());
}
