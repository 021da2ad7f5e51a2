//! #20's Prometheus endpoints on a real plane: nats-server, a controller, a docker agent on
//! dockerd and a router running nginx, each with `--metrics-listen` on 127.0.0.1. Each
//! `/metrics` is scraped over HTTP and parsed with `prometheus-parse`; the documented names
//! are there with the values the deploy and a restart give them. Also: a bad address and a
//! port in use stop a service at its start, with the address in the message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::docker_support::site;
use crate::nats_support::{BIN, WAIT, ctl, eventually, snapshot};
use crate::stack_support::{Stack, StackConfig, free_port, site_cmd_deploy_args};

/// The app's command: it holds 8 MB of its own (the agent reports whole megabytes, and a
/// bare httpd uses less than one) while httpd serves, and ends on a restart's TERM.
const RUN_SH: &str = r#"x=$(head -c 8000000 /dev/zero | tr '\0' a)
trap 'exit 0' TERM
httpd -f -p 8080 -h /app &
wait
"#;

/// One scrape of `http://127.0.0.1:port/metrics`, parsed; or why not.
fn scrape(port: u16) -> Result<prometheus_parse::Scrape, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| format!("no body in {raw:?}"))?;
    if !head.starts_with("HTTP/1.1 200") || !head.contains("application/openmetrics-text") {
        return Err(format!("unexpected answer: {head}"));
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).map_err(|e| e.to_string())
}

/// The value of sample `name` with `labels` among its labels, if there is one.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => Some(*v),
        _ => None,
    }
}

/// Polls `port`'s scrape until `check` passes; the scrape it passed on.
fn scraped_until(
    port: u16,
    what: &str,
    check: impl Fn(&prometheus_parse::Scrape) -> Result<(), String>,
) -> prometheus_parse::Scrape {
    eventually(WAIT, what, || {
        let s = scrape(port)?;
        check(&s)?;
        Ok(s)
    })
}

/// `value` is `Some` and `test` holds for it.
fn expect(
    s: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
    test: impl Fn(f64) -> bool,
) -> Result<f64, String> {
    match value(s, name, labels) {
        Some(v) if test(v) => Ok(v),
        other => Err(format!("{name}{labels:?} = {other:?}")),
    }
}

#[test]
fn each_service_serves_its_documented_metrics_and_a_restart_moves_them() {
    let test = "each_service_serves_its_documented_metrics_and_a_restart_moves_them";
    let Some(stack) = Stack::start_config(test, StackConfig { metrics: true, ..StackConfig::default() })
    else {
        return;
    };
    let ports = stack.metrics.expect("metrics ports");
    let artifact = stack.nats.dir().join("metrics.tar.gz");
    std::fs::write(&artifact, site(&[("index.html", "metrics"), ("run.sh", RUN_SH)])).expect("artifact");
    let image = crate::docker_support::image();
    let args = site_cmd_deploy_args(&image, "sh /app/run.sh", "1.0.0", "1", &artifact, &[]);
    let deployed = ctl(&stack.url(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(deployed.ok(), "{deployed}");

    let controller = scraped_until(ports.controller, "the controller counts the deployed instance", |s| {
        expect(s, "quarterdeck_instances", &[("state", "running")], |v| v == 1.0)?;
        let deploy = [("kind", "deploy"), ("outcome", "succeeded")];
        expect(s, "quarterdeck_operation_duration_seconds_count", &deploy, |v| v == 1.0)?;
        Ok(())
    });
    expect(&controller, "quarterdeck_hosts", &[("state", "up")], |v| v == 1.0).expect("hosts");
    expect(&controller, "quarterdeck_apps", &[], |v| v == 1.0).expect("apps");
    expect(&controller, "quarterdeck_routes", &[("state", "serving")], |v| v == 1.0).expect("routes");
    expect(&controller, "quarterdeck_leader", &[], |v| v == 1.0).expect("leader");
    expect(&controller, "quarterdeck_event_commit_seconds_count", &[], |v| v > 0.0).expect("commits");
    expect(&controller, "quarterdeck_bus_reconnects_total", &[], |v| v == 0.0).expect("reconnects");
    let crash_loops = [("rule", "crash_loop"), ("state", "firing")];
    expect(&controller, "quarterdeck_alerts", &crash_loops, |v| v == 0.0).expect("alerts");
    let revision = expect(&controller, "quarterdeck_revision", &[], |v| v > 0.0).expect("revision");

    let instance = snapshot(&stack.url())["instances"][0]["id"].as_str().expect("an instance").to_string();
    let labels = [("app", "site"), ("instance", instance.as_str())];
    let agent = scraped_until(ports.agent, "the agent reports the instance's memory", |s| {
        expect(s, "quarterdeck_instance_memory_bytes", &labels, |v| v >= 4.0 * 1024.0 * 1024.0)?;
        Ok(())
    });
    expect(&agent, "quarterdeck_instance_cpu_ratio", &labels, |v| v >= 0.0).expect("cpu");
    expect(&agent, "quarterdeck_host_memory_total_bytes", &[], |v| v > 0.0).expect("host memory");
    expect(&agent, "quarterdeck_host_disk_total_bytes", &[], |v| v > 0.0).expect("host disk");
    let heartbeats =
        expect(&agent, "quarterdeck_heartbeats_sent_total", &[], |v| v > 0.0).expect("heartbeats");

    let router = scraped_until(ports.router, "the router counts its reload", |s| {
        expect(s, "quarterdeck_router_reloads_total", &[], |v| v >= 1.0)?;
        expect(s, "quarterdeck_router_revision", &[], |v| v > 0.0)?;
        Ok(())
    });
    expect(&router, "quarterdeck_router_last_reload_timestamp_seconds", &[], |v| v > 1.0e9)
        .expect("reload time");
    expect(&router, "quarterdeck_router_apply_errors_total", &[], |v| v == 0.0).expect("apply errors");

    let restarted = ctl(&stack.url(), &["restart", "--instance", &instance, "--wait"]);
    assert!(restarted.ok(), "{restarted}");
    scraped_until(ports.controller, "the controller observed the restart", |s| {
        let restart = [("kind", "restart"), ("outcome", "succeeded")];
        expect(s, "quarterdeck_operation_duration_seconds_count", &restart, |v| v == 1.0)?;
        expect(s, "quarterdeck_revision", &[], |v| v > revision)?;
        expect(s, "quarterdeck_instances", &[("state", "running")], |v| v == 1.0)?;
        Ok(())
    });
    scraped_until(ports.agent, "the agent keeps reporting the restarted instance", |s| {
        expect(s, "quarterdeck_heartbeats_sent_total", &[], |v| v > heartbeats)?;
        expect(s, "quarterdeck_instance_memory_bytes", &labels, |v| v > 0.0)?;
        Ok(())
    });
}

/// Runs the binary with `args` against a bus nobody serves; it must fail at once.
fn fails_at_start(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("NATS_URL", format!("nats://127.0.0.1:{}", free_port()))
        .output()
        .expect("run quarterdeck");
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_metrics_address_or_a_port_in_use_stops_the_service_with_the_address() {
    let bad = fails_at_start(&["controller", "--metrics-listen", "localhost:9100"]);
    assert!(bad.contains("\"localhost:9100\" is not an address to listen on: use IP:PORT"), "{bad}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let router_dir = std::env::temp_dir().join(format!("qd-metrics-busy-{}", std::process::id()));
    let dir = router_dir.to_str().expect("utf-8 path");
    std::fs::create_dir_all(dir).expect("router dir");
    for args in [
        vec!["agent", "--host-id", "busy", "--az", "az1", "--metrics-listen", &addr],
        vec![
            "router",
            "--listen",
            "127.0.0.1:1",
            "--state-dir",
            dir,
            "--nginx",
            "true",
            "--metrics-listen",
            &addr,
        ],
        vec!["controller", "--metrics-listen", &addr],
    ] {
        let err = fails_at_start(&args);
        assert!(err.contains(&format!("--metrics-listen {addr}: cannot listen")), "{args:?}: {err}");
        assert!(err.contains("in use"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&router_dir);
}
