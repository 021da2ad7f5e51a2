//! What a probe of the open bus found (issue 15, hardening), each with the crafted input,
//! on a real nats-server. The bad input is refused with a clear reason and nothing is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quarterdeck::bus::Bus;
use quarterdeck::protocol::{Envelope, Heartbeat, decode, encode, subjects};

use crate::nats_support::{
    PlaneConfig, WAIT, check, connect, ctl, deploy_args, eventually, host_state, plane_or_skip, try_snapshot,
};

/// A fake host "ghost" published on h1's heartbeat subject won placement, and forged
/// heartbeats for a killed host kept it "up". A report speaks only for its subject's host.
#[test]
fn nats_a_heartbeat_that_names_another_host_than_its_subject_is_rejected() {
    let test = "nats_a_heartbeat_that_names_another_host_than_its_subject_is_rejected";
    let mut plane = plane_or_skip!(
        test,
        PlaneConfig {
            controller: vec!["--stale-after", "3", "--lost-after", "100"],
            ..PlaneConfig::default()
        }
    );
    let url = plane.url();
    // h2 dies: from now on only forged heartbeats speak for it.
    plane.agents[1].kill9();
    let forging = Arc::new(AtomicBool::new(true));
    let forged = Arc::new(AtomicU32::new(0));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let forger = {
        let (url, forging, count) = (url.clone(), forging.clone(), forged.clone());
        rt.spawn(async move {
            let bus = connect(&url, "test/forger").await;
            let mut sub = bus.subscribe(&subjects::heartbeat("h1")).await.expect("subscribe");
            let msg = sub.next().await.expect("h1's heartbeat");
            let real: Heartbeat = decode(&msg.payload).expect("a heartbeat").body;
            let forged = |id: &str| {
                let mut hb = real.clone();
                hb.host.id = id.into();
                hb.instances.clear();
                Bytes::from(encode(&Envelope::new(format!("agent/{id}"), hb)).expect("encode"))
            };
            let (ghost, as_h2) = (forged("ghost"), forged("h2"));
            let on = subjects::heartbeat("h1");
            let mut sent = 0u32;
            while forging.load(Ordering::SeqCst) {
                bus.publish(&on, ghost.clone()).await.expect("publish");
                bus.publish(&on, as_h2.clone()).await.expect("publish");
                sent += 2;
                count.store(sent, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sent
        })
    };
    // Long enough for the controller to have judged many forged heartbeats, and for h2's
    // silence to be noticed.
    let snap = eventually(WAIT, "h2, whose agent is dead, no longer up after 40 forged heartbeats", || {
        let snap = try_snapshot(&url)?;
        let sent = forged.load(Ordering::SeqCst);
        check(sent >= 40, || format!("{sent} forged so far"))?;
        check(host_state(&snap, "h2") != Some("up"), || format!("hosts: {}", snap["hosts"]))?;
        Ok(snap)
    });
    forging.store(false, Ordering::SeqCst);
    let sent = rt.block_on(forger).expect("the forger");
    assert!(sent > 10, "{sent} forged heartbeats");
    assert_eq!(host_state(&snap, "ghost"), None, "a forged host joined: {}", snap["hosts"]);
    assert_eq!(host_state(&snap, "h1"), Some("up"), "{}", snap["hosts"]);
}

/// A new app deployed with another app's domain took that domain in nginx (the router
/// keeps whichever app sorts first). A domain already held is refused as a conflict.
#[test]
fn nats_a_domain_held_by_another_app_is_refused_as_a_conflict() {
    let test = "nats_a_domain_held_by_another_app_is_refused_as_a_conflict";
    let plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    let with_domain = |app: &'static str, domain: &'static str| {
        let mut args = deploy_args(app, "1.0.0", "1");
        args.extend(["--domain", domain]);
        ctl(&url, &args)
    };
    let first = with_domain("zshop", "shop.example.test");
    assert!(first.ok(), "{first}");
    // "ashop" sorts first: before, it took the domain from zshop.
    let squat = with_domain("ashop", "shop.example.test");
    assert!(!squat.ok(), "the squatting deploy was accepted: {squat}");
    assert!(squat.stderr.contains("conflict") && squat.stderr.contains("held by app zshop"), "{squat}");
    let snap = plane.snapshot();
    let apps = snap["apps"].as_array().expect("apps");
    assert!(apps.iter().all(|a| a["name"] != "ashop"), "the squatter exists: {}", snap["apps"]);
    // The holder may still redeploy with its own domain, and another domain is free.
    assert!(with_domain("zshop", "shop.example.test").ok());
    assert!(with_domain("ashop", "other.example.test").ok());
}

/// `ctl audit` and `ctl events` printed escape sequences from the bus raw: a command whose
/// source and request carry them changed the terminal's title, set its clipboard (OSC 52)
/// and cleared lines. Every human-readable line is printed with them escaped.
#[test]
fn nats_ctl_never_prints_control_characters_from_the_bus() {
    let test = "nats_ctl_never_prints_control_characters_from_the_bus";
    let plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    let nasty = "\u{1b}]0;owned\u{7}\u{1b}]52;c;Y3VybA==\u{1b}\\\u{1b}[2J\u{9b}2J";
    let answer = crate::nats_support::block_on(async {
        let bus = connect(&url, "test/escapes").await;
        let req = quarterdeck::protocol::RouteRequest {
            app: "web".into(),
            backend: format!("10.0.0.1:80{nasty}"),
            weight: Some(1),
        };
        quarterdeck::bus::command::<_, quarterdeck::protocol::Accepted>(
            &bus as &dyn Bus,
            subjects::CtlVerb::Route(subjects::RouteVerb::Add),
            &Envelope::new(format!("cockpit/{nasty}"), req),
            Duration::from_secs(10),
        )
        .await
    });
    assert!(answer.is_err(), "a backend with escapes was accepted: {answer:?}");
    for args in [&["audit", "--since", "1h"][..], &["events", "--since", "1h"][..]] {
        let out = ctl(&url, args);
        assert!(out.ok(), "{out}");
        assert!(out.stdout.contains("cockpit/") || args[0] == "events", "the record is listed: {out}");
        for (i, c) in out.stdout.chars().chain(out.stderr.chars()).enumerate() {
            assert!(!c.is_control() || c == '\n', "ctl {} printed {c:?} at {i}: {:?}", args[0], out.stdout);
        }
        if args[0] == "audit" {
            assert!(out.stdout.contains("\\u{1b}]0;owned"), "shown escaped: {out}");
        }
    }
}

/// One valid 72-character domain failed `nginx -t` (its server names hash kept the
/// default 64-byte buckets), and from then on no change reached nginx for any app.
#[test]
fn nats_long_domains_reach_nginx_and_later_changes_too() {
    use crate::stack_support::{NginxGuard, free_port, nginx_bin, spawn_router};
    let test = "nats_long_domains_reach_nginx_and_later_changes_too";
    let Some(nginx) = nginx_bin(test) else { return };
    let plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    let router_dir = plane.nats.dir().join("router");
    let _nginx = NginxGuard(router_dir.clone());
    let _router = spawn_router(&plane.nats, free_port(), &router_dir, &nginx);
    let label = "a".repeat(63);
    let long72 = format!("{}.example.test", "b".repeat(59));
    let long253 = format!("{label}.{label}.{label}.{}.test", "c".repeat(56));
    assert_eq!((long72.len(), long253.len()), (72, 253));
    for (app, domain) in [("long", long72.as_str()), ("longest", long253.as_str())] {
        let mut args = deploy_args(app, "1.0.0", "1");
        args.extend(["--domain", domain]);
        let out = ctl(&url, &args);
        assert!(out.ok(), "{out}");
    }
    ctl(&url, &deploy_args("after", "1.0.0", "1"));
    eventually(WAIT, "both long domains and the app after them in nginx.conf", || {
        let conf = std::fs::read_to_string(router_dir.join("nginx.conf")).map_err(|e| e.to_string())?;
        let all = conf.contains(&format!("server_name {long72};"))
            && conf.contains(&format!("server_name {long253};"))
            && conf.contains("qd_after");
        check(all, || conf)
    });
}

/// A deploy sent straight to an agent bypassed the controller and ran a container with no
/// CPU or memory limit. The agent refuses a spec without limits, whoever sent it (with
/// roles on, only the controller may send it at all).
#[test]
fn nats_an_agent_refuses_an_instance_without_limits() {
    use quarterdeck::protocol::subjects::{AgentVerb, agent_cmd};
    use quarterdeck::protocol::{AgentAck, ErrorCode, InstanceSpec};
    let test = "nats_an_agent_refuses_an_instance_without_limits";
    let plane = plane_or_skip!(test, PlaneConfig::default());
    let url = plane.url();
    let refusals = crate::nats_support::block_on(async {
        let bus = connect(&url, "test/direct").await;
        let mut refusals = Vec::new();
        for (cpu, memory_mb) in [(0.0, 512), (f32::NAN, 512), (1.0, 0), (1000.0, 512)] {
            let spec = InstanceSpec {
                id: "rogue-0-aaaa".into(),
                app: "rogue".into(),
                version: "1".into(),
                index: 0,
                image: "tomcat:8.5".into(),
                port: 8080,
                cpu,
                memory_mb,
                operation_id: "op-rogue".into(),
                run: Default::default(),
            };
            let answer = quarterdeck::bus::request::<_, AgentAck>(
                &bus as &dyn Bus,
                &agent_cmd("h1", AgentVerb::Deploy),
                &Envelope::new("controller", spec),
                Duration::from_secs(10),
            )
            .await;
            refusals.push(answer);
        }
        refusals
    });
    for answer in refusals {
        match answer {
            Err(quarterdeck::bus::RequestError::Refused(e)) => {
                assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
                assert!(e.reason.contains("cpu must") || e.reason.contains("memory must"), "{e:?}");
            }
            other => panic!("a spec without limits was answered {other:?}"),
        }
    }
    let reports = crate::nats_support::agent_reports(&url);
    assert!(reports["h1"].iter().all(|r| r.app != "rogue"), "{:?}", reports["h1"]);
}
