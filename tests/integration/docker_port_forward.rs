//! Port-forward (issue 18) on a real dockerd and nats-server with roles on: `ctl
//! port-forward` serves the app's HTTP response on 127.0.0.1, carries two connections at
//! once, and a connection closed on either side closes its tunnel; an operator without the
//! `port-forward` grant is refused by the server, and a port other than the app's by the
//! agent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use quarterdeck::bus::{self, RequestError};
use quarterdeck::protocol::forward::{FwdOpen, FwdOpened, FwdVerb};
use quarterdeck::protocol::subjects::{self, SessionKind};
use quarterdeck::protocol::{Envelope, ErrorCode};
use serde_json::Value;

use crate::nats_support::{
    BIN, Mode, NatsServer, Users, WAIT, connect_as, ctl_as, ctl_json_lines, eventually, instances_of,
    try_snapshot, wait_or_kill,
};
use crate::stack_support::{Stack, StackConfig};

/// A running `ctl port-forward`: where it listens, and its stderr line by line.
struct Forward {
    child: Child,
    local: SocketAddr,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Forward {
    fn start(nats: &NatsServer, who: &str, instance: &str, ports: &str) -> Forward {
        let mut cmd = Command::new(BIN);
        if let Some(seed) = nats.seed(who) {
            cmd.env("NATS_NKEY", seed);
        }
        let mut child = cmd
            .args(["ctl", "port-forward", instance, ports])
            .env("NATS_URL", nats.url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctl port-forward");
        let lines = |pipe: Box<dyn Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().expect("stdout")));
        let stderr = lines(Box::new(child.stderr.take().expect("stderr")));
        let first = stdout.recv_timeout(WAIT).unwrap_or_else(|_| {
            let _ = child.kill();
            let err: Vec<String> = stderr.try_iter().collect();
            panic!("ctl port-forward printed nothing: {err:?}")
        });
        let local = first
            .strip_prefix("forwarding ")
            .and_then(|rest| rest.split(" -> ").next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not a forwarding line: {first:?}"));
        assert!(
            first.ends_with(&format!(" -> {instance}:{}", ports.rsplit(':').next().unwrap_or(ports))),
            "{first}"
        );
        Forward { child, local, stderr, seen: Vec::new() }
    }

    /// Waits for `n` stderr lines containing `needle`.
    fn wait_for(&mut self, needle: &str, n: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.seen.iter().filter(|l| l.contains(needle)).count() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no {n} lines with {needle:?} from ctl port-forward: {:#?}", self.seen),
            }
        }
    }

    /// SIGTERM, and it exits 0.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success()));
        let status = wait_or_kill(&mut self.child, WAIT);
        assert!(status.success(), "ctl port-forward on SIGTERM: {status}");
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running instance of `site`: its id and host.
fn site_instance(url: &str) -> (String, String) {
    let snap: Value = try_snapshot(url).expect("a snapshot");
    let i = instances_of(&snap, "site").into_iter().find(|i| i["state"] == "running").cloned();
    let i = i.unwrap_or_else(|| panic!("a running site instance: {}", snap["instances"]));
    (i["id"].as_str().expect("id").to_string(), i["host"].as_str().expect("host").to_string())
}

fn connect(local: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(local).expect("connect to the forward");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

/// Reads to the end: the response, then the tunnel's end of the data.
fn read_all(mut s: TcpStream) -> String {
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("the response and its end");
    raw
}

#[test]
fn docker_port_forward_serves_the_apps_http_on_loopback_two_at_once_and_closes_from_either_side() {
    let test = "docker_port_forward_serves_the_apps_http_on_loopback_two_at_once_and_closes_from_either_side";
    let Some(stack) = Stack::start_config(test, StackConfig { mode: Mode::Roles, ..StackConfig::default() })
    else {
        return;
    };
    let out = stack.deploy("1.0.0", "1", "<h1>through the tunnel</h1>", &[]);
    assert!(out.ok(), "deploy: {out}");
    let (instance, _) = site_instance(&stack.url());
    let mut fwd =
        Forward::start(&stack.nats, &format!("operator/{}", Users::OPERATOR_NAME), &instance, "8080");
    assert!(fwd.local.ip().is_loopback(), "{}", fwd.local);

    // Two at once: both open before either asks, answered in the other order.
    let (mut a, mut b) = (connect(fwd.local), connect(fwd.local));
    fwd.wait_for("opened", 2);
    write!(b, "GET /index.html HTTP/1.0\r\nHost: b\r\n\r\n").expect("b asks");
    let b = read_all(b);
    write!(a, "GET /index.html HTTP/1.0\r\nHost: a\r\n\r\n").expect("a asks");
    let a = read_all(a);
    for (name, raw) in [("a", &a), ("b", &b)] {
        if !raw.contains(" 200 ") {
            std::thread::sleep(Duration::from_secs(1));
            fwd.seen.extend(fwd.stderr.try_iter());
        }
        assert!(raw.starts_with("HTTP/1.") && raw.contains(" 200 "), "{name}: {raw}: {:#?}", fwd.seen);
        assert!(raw.contains("<h1>through the tunnel</h1>"), "{name}: {raw}");
    }
    // httpd closed each after its answer; the client's side ended too (the streams
    // above were dropped after their end): both tunnels closed, both ways.
    fwd.wait_for("closed: closed by both sides", 2);

    // A client that closes first, having sent nothing: its end reaches httpd, which closes
    // too, and the tunnel ends.
    drop(connect(fwd.local));
    fwd.wait_for("opened", 3);
    fwd.wait_for("closed: closed by both sides", 3);
    let closed: Vec<&String> = fwd.seen.iter().filter(|l| l.contains("closed:")).collect();
    assert!(closed.iter().all(|l| l.contains("closed by both sides")), "{closed:#?}");
    fwd.stop();

    // Each connection is in the audit trail: who, which instance and port, when, how
    // long, the bytes each way, and how it ended.
    let url = stack.url();
    let ends = eventually(WAIT, "three forwards' ends in the audit trail", || {
        let ends: Vec<Value> = ctl_json_lines(&url, &["audit"])
            .into_iter()
            .filter(|r| r["verb"] == "port-forward" && !r["request"]["ended_at"].is_null())
            .collect();
        if ends.len() == 3 { Ok(ends) } else { Err(format!("{} ends: {ends:#?}", ends.len())) }
    });
    for r in &ends {
        assert_eq!(r["by"], Users::OPERATOR_NAME, "{r}");
        assert_eq!(r["request"]["instance"], instance.as_str(), "{r}");
        assert_eq!(r["request"]["command"], "port 8080", "{r}");
        assert_eq!(r["request"]["reason"], "closed", "{r}");
        assert!(r["request"]["duration_ms"].as_u64().is_some(), "{r}");
    }
    let asked = ends.iter().filter(|r| {
        let detail = r["request"]["detail"].as_str().unwrap_or_default();
        // The request line went in; the page came back.
        detail.starts_with(&format!(
            "{} bytes to the instance",
            "GET /index.html HTTP/1.0\r\nHost: a\r\n\r\n".len()
        )) && !detail.contains(", 0 from it")
    });
    assert_eq!(asked.count(), 2, "{ends:#?}");
}

#[test]
fn docker_port_forward_is_refused_without_the_grant_by_the_server_and_to_another_port_by_the_agent() {
    let test =
        "docker_port_forward_is_refused_without_the_grant_by_the_server_and_to_another_port_by_the_agent";
    let Some(stack) = Stack::start_config(test, StackConfig { mode: Mode::Roles, ..StackConfig::default() })
    else {
        return;
    };
    let out = stack.deploy("1.0.0", "1", "<h1>guarded</h1>", &[]);
    assert!(out.ok(), "deploy: {out}");
    let (instance, host) = site_instance(&stack.url());
    let bob = Users::UNGRANTED_OPERATOR;

    // bob, an operator without the grant: the server refuses him before anything listens.
    let out = ctl_as(&stack.nats, &format!("operator/{bob}"), &["port-forward", &instance, "8080"]);
    assert!(!out.ok(), "bob forwarded: {out}");
    assert!(out.stderr.contains("permission denied on qd.v1.fwd.bob."), "{out}");
    assert!(out.stderr.contains("for user bob"), "{out}");
    assert!(out.stdout.is_empty(), "bob's ctl said it was forwarding: {out}");

    // alice, to a port the app does not serve: ctl says so before it listens.
    let alice = format!("operator/{}", Users::OPERATOR_NAME);
    let out = ctl_as(&stack.nats, &alice, &["port-forward", &instance, "0:9999"]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains(&format!("{instance} publishes only port 8080, not 9999")), "{out}");

    crate::nats_support::block_on(async {
        // The agent holds to the rule itself, whatever the client checked.
        let alice = connect_as(&stack.nats, &alice).await;
        let user = Users::OPERATOR_NAME;
        let open = |port: u16, stream: String| FwdOpen { instance: instance.clone(), port, stream };
        let subject = subjects::session_request(SessionKind::Forward, &host, user, FwdVerb::Open.as_str());
        let ask = |body: FwdOpen| {
            let alice = &alice;
            let subject = subject.clone();
            async move {
                let env = Envelope::new("test/alice", body);
                bus::request::<_, FwdOpened>(alice, &subject, &env, Duration::from_secs(10)).await
            }
        };
        let own = subjects::session_stream(SessionKind::Forward, user, "ctest1");
        match ask(open(9999, own.clone())).await {
            Err(RequestError::Refused(e)) => {
                assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
                assert_eq!(e.reason, format!("{instance} publishes only port 8080, not 9999"));
            }
            other => panic!("the agent opened port 9999: {other:?}"),
        }
        // Nor onto another user's stream.
        let bobs = subjects::session_stream(SessionKind::Forward, bob, "ctest2");
        match ask(open(8080, bobs)).await {
            Err(RequestError::Refused(e)) => assert!(e.reason.contains("a stream of alice's own"), "{e:?}"),
            other => panic!("the agent streamed to bob's subject: {other:?}"),
        }
        let opened = ask(open(8080, own)).await.expect("alice's own tunnel to the app's port");
        assert!(opened.addr.starts_with("127.0.0.1:"), "{opened:?}");
    });
    eventually(WAIT, "the server refused bob's stream", || {
        match stack.nats.log().contains("Subscription Violation - Subject \"qd.v1.fwd.bob.") {
            true => Ok(()),
            false => Err("no subscription violation on qd.v1.fwd.bob.* yet".into()),
        }
    });
}

/// The cockpit's `F` on a real instance: its backend runs the forwarder, the address it
/// listens on serves the app's page, and `F` again closes the listener.
#[test]
fn docker_port_forward_from_the_cockpit_f_serves_the_app_and_f_again_stops_it() {
    use quarterdeck::actions::{Action, Panel};
    use quarterdeck::backend::{self, Identity};
    use quarterdeck::protocol::InstanceState;
    let test = "docker_port_forward_from_the_cockpit_f_serves_the_app_and_f_again_stops_it";
    let Some(stack) = Stack::start_config(test, StackConfig { mode: Mode::Roles, ..StackConfig::default() })
    else {
        return;
    };
    let out = stack.deploy("1.0.0", "1", "<h1>from the cockpit</h1>", &[]);
    assert!(out.ok(), "deploy: {out}");
    let (instance, _) = site_instance(&stack.url());
    crate::nats_support::block_on(async {
        let alice =
            std::sync::Arc::new(connect_as(&stack.nats, &format!("operator/{}", Users::OPERATOR_NAME)).await);
        let mut handle = backend::spawn_cockpit(alice, "cockpit/alice@test".into(), Identity::default());
        let mut app = crate::cockpit_support::cockpit_app("nats");
        crate::support::pump(&mut app, &mut handle, "the running site instance", |a| {
            a.replica.fleet.instances.get(&instance).is_some_and(|i| i.state == InstanceState::Running)
        })
        .await;
        app.update(Action::ShowPanel(Panel::Instances));
        assert_eq!(app.selected_instance().map(|i| i.id.clone()), Some(instance.clone()));
        for effect in app.update(Action::Forward) {
            crate::support::carry_out(&handle, effect);
        }
        crate::support::pump(&mut app, &mut handle, "the forward listening", |a| {
            a.forwards.by_instance.get(&instance).is_some_and(|f| f.local.is_some())
        })
        .await;
        let local = app.forwards.by_instance[&instance].local.expect("listening");
        let status = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
        assert_eq!(status, format!("forwarding {local} -> {instance}:8080 (F again stops)"));
        let raw = tokio::task::spawn_blocking(move || {
            let mut s = connect(local);
            write!(s, "GET /index.html HTTP/1.0\r\nHost: f\r\n\r\n").expect("ask");
            read_all(s)
        })
        .await
        .expect("the request");
        assert!(raw.contains(" 200 ") && raw.contains("<h1>from the cockpit</h1>"), "{raw}");
        for effect in app.update(Action::Forward) {
            crate::support::carry_out(&handle, effect);
        }
        assert!(app.forwards.by_instance.is_empty());
        let deadline = tokio::time::Instant::now() + WAIT;
        while TcpStream::connect(local).is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "{local} still listens after F stopped it");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Figures, not assertions: 100 MB echoed through a forward and directly (MB/s), and the
/// round trip of 64 bytes through each (p50, p99), against an echo server in a container
/// (`nc -ll -e cat`). Run with `cargo test --test integration port_forward_figures --
/// --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: prints figures"]
fn docker_port_forward_figures() {
    let test = "docker_port_forward_figures";
    let Some(stack) = Stack::start_config(test, StackConfig { mode: Mode::Roles, ..StackConfig::default() })
    else {
        return;
    };
    let image = std::env::var("QD_TEST_IMAGE").unwrap_or_else(|_| "quarterdeck-test/httpd".into());
    let out = crate::nats_support::ctl(
        &stack.url(),
        &[
            "deploy",
            "--app",
            "echo",
            "--version",
            "1",
            "--instances",
            "1",
            "--image",
            &image,
            "--port",
            "8080",
            "--cmd",
            "nc -ll -p 8080 -e cat",
            "--health",
            "tcp",
            "--cpu",
            "1",
            "--memory",
            "64M",
            "--wait",
        ],
    );
    assert!(out.ok(), "deploy: {out}");
    let snap: Value = try_snapshot(&stack.url()).expect("a snapshot");
    let i = instances_of(&snap, "echo").into_iter().find(|i| i["state"] == "running").cloned().expect("echo");
    let instance = i["id"].as_str().expect("id").to_string();
    let direct: SocketAddr = i["endpoint"].as_str().expect("endpoint").parse().expect("an address");
    let fwd = Forward::start(&stack.nats, &format!("operator/{}", Users::OPERATOR_NAME), &instance, "8080");
    for (name, addr) in [("direct", direct), ("forward", fwd.local)] {
        let (mbps, p50, p99) = measure(addr);
        println!("{name:>8}: 100 MB echoed at {mbps:.1} MB/s; 64-byte round trip p50 {p50:?}, p99 {p99:?}");
    }
    fwd.stop();
}

/// 100 MB written and read back, then 1000 round trips of 64 bytes, on one connection each.
fn measure(addr: SocketAddr) -> (f64, Duration, Duration) {
    const TOTAL: usize = 100 * 1024 * 1024;
    let s = connect(addr);
    s.set_nodelay(true).expect("nodelay");
    let mut writer = s.try_clone().expect("clone");
    let started = std::time::Instant::now();
    let sending = std::thread::spawn(move || {
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..TOTAL / chunk.len() {
            writer.write_all(&chunk).expect("write");
        }
    });
    let mut reader = s.try_clone().expect("clone");
    let (mut got, mut buf) = (0, vec![0u8; 64 * 1024]);
    while got < TOTAL {
        let n = reader.read(&mut buf).expect("read");
        assert!(n > 0, "ended after {got} bytes");
        got += n;
    }
    let secs = started.elapsed().as_secs_f64();
    sending.join().expect("writer");
    let mut times = Vec::new();
    let mut s = s;
    let ping = [1u8; 64];
    let mut pong = [0u8; 64];
    for _ in 0..1000 {
        let t = std::time::Instant::now();
        s.write_all(&ping).expect("ping");
        s.read_exact(&mut pong).expect("pong");
        times.push(t.elapsed());
    }
    times.sort();
    (TOTAL as f64 / 1024.0 / 1024.0 / secs, times[times.len() / 2], times[times.len() * 99 / 100])
}
