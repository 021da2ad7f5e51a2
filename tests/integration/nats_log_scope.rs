//! Log streams scoped to their viewer (issue 15, hardening): anyone could read or end
//! another operator's log stream. On a real nats-server started with the config `quarterdeck
//! auth init` writes, a user reads and acts on its own streams only: the server refuses a
//! subscription to another user's stream and a request under another user's name, and the
//! agent refuses a stream subject outside the requester's own and answers `not_found` for
//! another user's stream.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quarterdeck::actions::keymap::Keymap;
use quarterdeck::actions::{Action, Panel};
use quarterdeck::app::App;
use quarterdeck::backend::{self, Identity};
use quarterdeck::bus::{self, Bus, NatsBus, NatsOptions, RequestError, Subscription};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::subjects::{self, LogsVerb};
use quarterdeck::protocol::{
    AgentAck, Envelope, ErrorCode, InstanceState, LogBatch, LogsRequest, LogsStreamRef,
};
use quarterdeck::views::theme::{ColorMode, Theme};

use crate::nats_roles::{ctl_as, ctl_json, server_logs};
use crate::nats_support::{
    BIN, NatsServer, Proc, WAIT, check, deploy_args, eventually, host_state, instances_of, unique_dir,
};

/// A plane with roles on: controller c1, one agent (sim, or docker when a test reads a
/// real container's log), operators alice and bob, viewer carol. The agent starts once the
/// controller answers, so the artifact bucket it only reads exists.
pub struct ScopedPlane {
    auth: PathBuf,
    pub nats: NatsServer,
    pub host: String,
    /// The docker agent's data directory, when the agent is a docker one.
    docker_data: Option<PathBuf>,
    _procs: Vec<Proc>,
}

/// Which agent the plane runs.
pub enum AgentKind {
    /// The simulated driver: for claims about the bus, not about Docker.
    Sim,
    Docker,
}

impl ScopedPlane {
    pub fn start(test: &str, kind: AgentKind) -> Option<ScopedPlane> {
        let host = match kind {
            AgentKind::Sim => "h1".to_string(),
            AgentKind::Docker => {
                if !crate::docker_support::docker_or_skip(test) {
                    return None;
                }
                // One host id per test: tests run side by side, and two agents with one id
                // would adopt each other's containers.
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("ls{}-{n}", std::process::id() % 100_000)
            }
        };
        let auth = unique_dir(&format!("{test}-auth"));
        let out = Command::new(BIN)
            .args(["auth", "init", "--dir"])
            .arg(&auth)
            .args(["--controllers", "c1", "--hosts", &host, "--operators", "alice,bob", "--viewers", "carol"])
            .output()
            .expect("quarterdeck auth init");
        assert!(out.status.success(), "auth init: {}", String::from_utf8_lossy(&out.stderr));
        let block = std::fs::read_to_string(auth.join("nats-auth.conf")).expect("nats-auth.conf");
        let nats = NatsServer::start_with_config(test, Some(&block))?;
        let mut plane = ScopedPlane { auth, nats, host, docker_data: None, _procs: Vec::new() };
        let controller = Proc::controller_with_nkey(&plane.nats, "c1", &plane.seed("controller/c1"));
        plane._procs.push(controller);
        let url = plane.nats.url();
        eventually(WAIT, "the controller answers", || {
            ctl_json(&url, &plane.seed("operator/alice"), &["snapshot"])
        });
        let agent_seed = plane.seed(&format!("agent/{}", plane.host));
        let agent = match kind {
            AgentKind::Sim => {
                Proc::agent_with(&plane.nats, "h1", "az-1", "127.0.1.1", &["--nkey", &agent_seed])
            }
            AgentKind::Docker => {
                crate::stack_support::remove_host_containers(&plane.host);
                let data = plane.nats.dir().join("agent-data");
                let mut args = crate::stack_support::docker_agent_args(&plane.host, "az1", &data);
                args.extend(["--nkey".to_string(), agent_seed]);
                plane.docker_data = Some(data);
                Proc::spawn(&plane.nats, "agent", &args.iter().map(String::as_str).collect::<Vec<_>>())
            }
        };
        plane._procs.push(agent);
        eventually(WAIT, "the host is up", || {
            let snap = ctl_json(&url, &plane.seed("operator/alice"), &["snapshot"])?;
            check(host_state(&snap, &plane.host) == Some("up"), || format!("hosts: {}", snap["hosts"]))
        });
        Some(plane)
    }

    pub fn seed(&self, who: &str) -> String {
        self.auth.join(format!("{who}.nk")).display().to_string()
    }

    /// A library client logged in as `who` (`operator/alice`, `viewer/carol`, `agent/h1`).
    pub async fn client(&self, who: &str) -> NatsBus {
        nkey_client(&self.nats.url(), &self.seed(who)).await
    }

    /// Whether the server logged a permissions violation of `kind` on `subject`.
    pub fn violation(&self, kind: &str, subject: &str) -> Result<(), String> {
        let wanted = format!("{kind} Violation - Subject \"{subject}\"");
        check(server_logs(self.nats.dir()).contains(&wanted), || format!("no {wanted:?} in the server's log"))
    }

    /// The id of the first running instance of `app`, as operator alice sees it.
    pub fn running_instance(&self, app: &str) -> String {
        let url = self.nats.url();
        eventually(WAIT, &format!("a running instance of {app}"), || {
            let snap = ctl_json(&url, &self.seed("operator/alice"), &["snapshot"])?;
            let running = instances_of(&snap, app).into_iter().find(|i| i["state"] == "running");
            running
                .and_then(|i| i["id"].as_str().map(str::to_string))
                .ok_or_else(|| format!("{}", snap["instances"]))
        })
    }
}

impl Drop for ScopedPlane {
    fn drop(&mut self) {
        // The agent first, so it adopts nothing while its containers go.
        self._procs.clear();
        if let Some(data) = &self.docker_data {
            crate::stack_support::remove_host_containers(&self.host);
            let _ = std::fs::remove_dir_all(data);
        }
        let _ = std::fs::remove_dir_all(&self.auth);
    }
}

/// A library client logged in with the NKey seed file `seed`, connected.
pub async fn nkey_client(url: &str, seed: &str) -> NatsBus {
    let opts = NatsOptions {
        url: url.to_string(),
        nkey: Some(PathBuf::from(seed)),
        name: format!("test/{seed}"),
        ..NatsOptions::default()
    };
    let bus = NatsBus::connect(&opts).await.expect("connect");
    let mut conn = bus.connection();
    tokio::time::timeout(WAIT, conn.wait_for(quarterdeck::bus::Connection::is_connected))
        .await
        .expect("connected in time")
        .expect("connection watch");
    bus
}

/// A log request as `user` to `host`'s agent, and its answer.
async fn ask(
    bus: &dyn Bus,
    host: &str,
    user: &str,
    verb: LogsVerb,
    body: impl serde::Serialize,
) -> Result<AgentAck, RequestError> {
    let subject = subjects::logs_request(host, user, verb);
    bus::request(bus, &subject, &Envelope::new(format!("test/{user}"), body), Duration::from_secs(10)).await
}

/// The next batch on `sub` within `within`.
async fn next_batch(sub: &mut Subscription, within: Duration) -> Option<LogBatch> {
    let msg = tokio::time::timeout(within, sub.next()).await.ok()??;
    quarterdeck::protocol::decode::<LogBatch>(&msg.payload).ok().map(|e| e.body)
}

/// Batches with lines on `sub` until `n` have come after `after` (a `seq`), none of them
/// the last.
async fn flowing(sub: &mut Subscription, after: u64, n: u64) -> u64 {
    let mut seq = after;
    while seq < after + n {
        let batch = next_batch(sub, WAIT).await.expect("the stream keeps flowing");
        assert_eq!(batch.end, None, "the stream ended: {batch:?}");
        seq = batch.seq;
    }
    seq
}

fn refused_as(answer: Result<AgentAck, RequestError>, code: ErrorCode) -> String {
    match answer {
        Err(RequestError::Refused(e)) if e.code == code => e.reason,
        other => panic!("wanted {code:?}, got {other:?}"),
    }
}

/// Operator alice knows operator bob's stream subject (a guess, a leak, a shoulder). She
/// cannot read it, stop it, keep it alive, or take it over; bob's lines keep coming.
#[test]
fn nats_log_scope_an_operator_cannot_read_stop_or_keep_alive_another_operators_stream() {
    let test = "nats_log_scope_an_operator_cannot_read_stop_or_keep_alive_another_operators_stream";
    let Some(plane) = ScopedPlane::start(test, AgentKind::Sim) else { return };
    let url = plane.nats.url();
    let out = ctl_as(&url, &plane.seed("operator/alice"), &deploy_args("web", "1.0.0", "1"));
    assert!(out.status.success(), "alice's deploy: {}", String::from_utf8_lossy(&out.stderr));
    let instance = plane.running_instance("web");
    crate::nats_support::block_on(async {
        let bob = plane.client("operator/bob").await;
        assert_eq!(bob.user(), "bob");
        let bobs = subjects::logs_stream("bob", "vbob1");
        let mut bob_sub = bob.subscribe(&bobs).await.expect("bob subscribes to his own stream");
        let req = LogsRequest { instance: instance.clone(), tail: 5, follow: true, stream: bobs.clone() };
        ask(&bob, "h1", "bob", LogsVerb::Start, &req).await.expect("bob's stream starts");
        let seq = flowing(&mut bob_sub, 0, 1).await;

        let r = LogsStreamRef { stream: bobs.clone() };
        let alice = plane.client("operator/alice").await;
        // Bob is there: his keep-alive now keeps the stream for 15 s more, however slow
        // this machine is between here and his next one.
        ask(&bob, "h1", "bob", LogsVerb::Keepalive, &r).await.expect("bob's keep-alive");
        // Reading: the server refuses the subscriptions.
        let mut alice_all = alice.subscribe("qd.v1.logs.>").await.expect("subscribe sent");
        let mut alice_bobs =
            alice.subscribe(&subjects::logs_streams_of("bob")).await.expect("subscribe sent");
        // Acting in bob's name: the server refuses the publish.
        let stop = Envelope::new("test/alice", LogsStreamRef { stream: bobs.clone() });
        let encoded = Bytes::from(quarterdeck::protocol::encode(&stop).expect("encode"));
        for verb in [LogsVerb::Stop, LogsVerb::Keepalive] {
            alice.publish(&subjects::logs_request("h1", "bob", verb), encoded.clone()).await.expect("sent");
        }
        alice.flush().await.expect("flush");
        // Acting in her own name on his stream: the agent knows no such stream of hers.
        for verb in [LogsVerb::Stop, LogsVerb::Keepalive] {
            let reason = refused_as(ask(&alice, "h1", "alice", verb, &r).await, ErrorCode::NotFound);
            assert!(reason.contains("alice has no log stream"), "{reason}");
        }
        // Taking it over: a start on his subject in her name is refused.
        let hijack = LogsRequest { stream: bobs.clone(), ..req.clone() };
        let reason =
            refused_as(ask(&alice, "h1", "alice", LogsVerb::Start, &hijack).await, ErrorCode::BadRequest);
        assert!(reason.contains("qd.v1.logs.alice.<viewer id>"), "{reason}");

        // Bob's stream is his still: it flows, and his own keep-alive and stop reach it.
        let seq = flowing(&mut bob_sub, seq, 3).await;
        ask(&bob, "h1", "bob", LogsVerb::Keepalive, &r).await.expect("bob's keep-alive");
        flowing(&mut bob_sub, seq, 1).await;
        for (what, sub) in [("every stream", &mut alice_all), ("bob's streams", &mut alice_bobs)] {
            let got = next_batch(sub, Duration::from_millis(500)).await;
            assert!(got.is_none(), "alice read {what}: {got:?}");
        }
        ask(&bob, "h1", "bob", LogsVerb::Stop, &r).await.expect("bob's stop");
        let end = loop {
            let batch = next_batch(&mut bob_sub, WAIT).await.expect("batches until the end");
            if let Some(end) = batch.end {
                break end;
            }
        };
        assert_eq!(end, "stopped by the viewer");
    });
    eventually(WAIT, "the server refused alice's reads and her requests as bob", || {
        plane.violation("Subscription", "qd.v1.logs.>")?;
        plane.violation("Subscription", &subjects::logs_streams_of("bob"))?;
        plane.violation("Publish", &subjects::logs_request("h1", "bob", LogsVerb::Stop))?;
        plane.violation("Publish", &subjects::logs_request("h1", "bob", LogsVerb::Keepalive))
    });
}

/// Viewer carol's cockpit (headless, without `--read-only`) opens the logs of a real
/// container, under her own name; she reads no other user's streams.
#[test]
fn nats_log_scope_a_viewer_views_its_own_logs_of_a_real_container_and_no_one_elses() {
    use crate::cockpit_logs::{carry, has_line};
    use crate::docker_support::docker;
    use crate::support::pump;
    let test = "nats_log_scope_a_viewer_views_its_own_logs_of_a_real_container_and_no_one_elses";
    let Some(plane) = ScopedPlane::start(test, AgentKind::Docker) else { return };
    let url = plane.nats.url();
    // The operator's real upload path: ALLOCATE_REPOSITORY_REQUEST, the bytes into
    // qd_artifacts, the deploy; the agent reads the artifact with its own role.
    let artifact = plane.nats.dir().join("site.tar.gz");
    std::fs::write(&artifact, crate::docker_support::site(&[("index.html", "<h1>carol</h1>")]))
        .expect("artifact");
    let args = crate::stack_support::site_deploy_args("1.0.0", "1", &artifact, &[]);
    let out =
        ctl_as(&url, &plane.seed("operator/alice"), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "alice's upload and deploy: {}", String::from_utf8_lossy(&out.stderr));
    let container = docker(&["ps", "-q", "--filter", &format!("label=quarterdeck.host={}", plane.host)]);
    let container = container.split_whitespace().next().expect("a container").to_string();
    let say = |text: &str| {
        docker(&["exec", &container, "sh", "-c", &format!("echo '{text}' > /proc/1/fd/1")]);
    };
    say("before-carol-looked");
    crate::nats_support::block_on(async {
        let carol = Arc::new(plane.client("viewer/carol").await);
        assert_eq!(carol.user(), "carol");
        let mut handle =
            backend::spawn_cockpit(carol.clone(), "cockpit/carol@test".into(), Identity::default());
        let mut app =
            App::new("nats", Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms());
        pump(&mut app, &mut handle, "the running site instance", |a| {
            a.replica.fleet.instances.values().any(|i| i.state == InstanceState::Running)
        })
        .await;
        app.update(Action::ShowPanel(Panel::Instances));
        carry(&handle, app.update(Action::Logs));
        pump(&mut app, &mut handle, "the tail of the real log", |a| has_line(a, "before-carol-looked")).await;
        say("while-carol-follows");
        pump(&mut app, &mut handle, "a followed line", |a| has_line(a, "while-carol-follows")).await;
        // Her own streams only: every stream, or alice's, is refused by the server.
        let _all = carol.subscribe("qd.v1.logs.>").await.expect("subscribe sent");
        let _alices = carol.subscribe(&subjects::logs_streams_of("alice")).await.expect("subscribe sent");
        carol.flush().await.expect("flush");
        carry(&handle, app.update(Action::Back));
        assert!(app.logs.is_none());
    });
    eventually(WAIT, "the server refused carol's reads of others' streams", || {
        plane.violation("Subscription", "qd.v1.logs.>")?;
        plane.violation("Subscription", &subjects::logs_streams_of("alice"))
    });
    let logs = server_logs(plane.nats.dir());
    assert!(!logs.contains(".logs.carol."), "her own stream or requests were refused:\n{logs}");
}
