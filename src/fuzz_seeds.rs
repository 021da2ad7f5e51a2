//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/`), written from the real types
//! so that each seed is a message the system sends. Regenerate after a wire change:
//! `cargo test --lib write_fuzz_seeds -- --ignored`. Seeds of targets that take a
//! selector byte (`ctl_request`, `agent_command`, `snapshot_page`) start with it.

use std::path::{Path, PathBuf};

use crate::plane::fixture::{T0, fixture};
use crate::protocol::subjects::{self, SessionKind};
use crate::protocol::{
    AuditOutcome, AuditRecord, Change, Constraints, Envelope, ErrorCode, Event, EventKind, Fleet,
    HealthCheck, Heartbeat, HistoryRequest, InstanceRef, InstanceReport, InstanceSpec, InstanceStatus,
    LogsRequest, LogsStreamRef, Operation, OperationEnded, OperationKind, OperationState, OperationStep,
    Operator, Reply, RestartBody, RestartRequest, RouteRequest, RouterStatus, RunPatch, RunSpec,
    SnapshotPage, SnapshotRequest, StepCounts, StepDelta, StepName, StepState, Strategy, WireError, encode,
};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// Writes `seeds` as `<target>/seed-<n>`, replacing the target's earlier seeds.
fn write(target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let dir = corpus().join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (n, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{n:02}")), seed)?;
    }
    Ok(())
}

fn env<T: serde::Serialize>(source: &str, body: T) -> Vec<u8> {
    let mut e = Envelope::with_id("c0ffee0123456789", source, body);
    e.ts = T0;
    encode(&e).expect("a seed of the protocol's own types encodes")
}

/// A command as ctl sends it: with the operator and a deadline.
fn command<T: serde::Serialize>(body: T) -> Vec<u8> {
    let mut e = Envelope::with_id("c0ffee0123456789", "ctl/alice@bastion-1", body).with_operator(Some(
        Operator::from_parts("alice", "bastion-1", Some("10.0.0.5 52344 10.0.0.1 22"), Some("alice".into())),
    ));
    e.ts = T0;
    e.deadline = Some(T0 + 3_000);
    encode(&e).expect("a seed of the protocol's own types encodes")
}

fn selected(selector: u8, bytes: Vec<u8>) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend(bytes);
    out
}

fn operation() -> Operation {
    Operation {
        id: "op-7f3a".into(),
        kind: OperationKind::Deploy,
        app: "shop-web".into(),
        target: "shop-web@1.4.2 x2".into(),
        steps: vec![],
        state: OperationState::Running,
        error: None,
        started_at: T0,
        finished_at: None,
        command_id: Some("c0ffee0123456789".into()),
        compacted: None,
    }
}

fn deploy() -> crate::protocol::DeployRequest {
    crate::protocol::DeployRequest {
        app: "shop-web".into(),
        version: "1.4.2".into(),
        instances: 2,
        image: Some("quarterdeck-test/httpd".into()),
        port: Some(8080),
        constraints: Some(Constraints {
            azs: vec!["az1".into()],
            tags: vec!["ssd".into()],
            cpu: 0.5,
            memory_mb: 256,
        }),
        domain: Some("shop.local".into()),
        tags: Some(vec!["prod".into()]),
        run: Some(RunPatch {
            replace: false,
            cmd: Some(vec!["httpd".into(), "-f".into()]),
            mount: Some("/srv".into()),
            health: Some(HealthCheck::Http { path: "/health".into() }),
            artifact: Some(crate::protocol::ArtifactRef {
                name: "shop-web-1.4.2".into(),
                sha256: "ab".repeat(32),
                size: 1024,
            }),
            env: Some([("JAVA_OPTS".to_string(), "-Xmx256m".to_string())].into()),
            secrets: None,
        }),
        strategy: Strategy::Rolling,
    }
}

fn events(fleet: &Fleet, fixture_events: &[Event]) -> Vec<Event> {
    // One event of each kind the fixture makes, and the operation's life.
    let mut out: Vec<Event> = Vec::new();
    for e in fixture_events {
        if !out.iter().any(|o| o.kind == e.kind) {
            out.push(e.clone());
        }
    }
    let mut rev = fleet.revision;
    let mut next = |kind: EventKind, changes: Vec<Change>| {
        rev += 1;
        Event {
            rev,
            ts: T0 + rev,
            kind,
            app: Some("shop-web".into()),
            host: None,
            instance: None,
            operation_id: Some("op-7f3a".into()),
            message: format!("{} of shop-web", kind.as_str()),
            changes,
            audit: None,
        }
    };
    out.push(next(EventKind::OperationStarted, vec![Change::Operation(operation())]));
    let step = OperationStep {
        name: StepName::NewInstanceAndDeployWarRequest,
        instance: Some("shop-web-0-1a2b".into()),
        state: StepState::Done,
        started_at: T0,
        finished_at: Some(T0 + 10),
        detail: "sent to h1".into(),
    };
    out.push(next(
        EventKind::NewInstanceAndDeployWarRequest,
        vec![Change::OperationStep(StepDelta { op: "op-7f3a".into(), index: 0, step })],
    ));
    out.push(next(
        EventKind::OperationFailed,
        vec![Change::OperationEnded(OperationEnded {
            id: "op-7f3a".into(),
            state: OperationState::Failed,
            error: Some("no capacity".into()),
            finished_at: T0 + 99,
            steps: StepCounts { total: 1, done: 1, failed: 0 },
        })],
    ));
    out.push(next(
        EventKind::RouteRemoved,
        vec![
            Change::RouteRemoved { app: "shop-web".into(), backend: "10.101.1.31:8080".into() },
            Change::InstanceRemoved { id: "shop-web-0-1a2b".into() },
            Change::AppRemoved { name: "shop-web".into() },
            Change::OperationRemoved { id: "op-7f3a".into() },
        ],
    ));
    let mut audit = next(EventKind::Audit, vec![]);
    audit.audit = Some(Box::new(AuditRecord {
        verb: "deploy".into(),
        by: Some("alice".into()),
        command_id: "c0ffee0123456789".into(),
        source: "ctl/alice@bastion-1".into(),
        operator: Some(Operator::from_parts("alice", "bastion-1", None, Some("alice".into()))),
        request: serde_json::to_value(deploy()).unwrap_or_default(),
        outcome: AuditOutcome {
            accepted: false,
            operation_id: None,
            detail: None,
            error: Some(WireError::new(ErrorCode::Conflict, "domain shop.local is held by api")),
        },
        repeated: None,
    }));
    out.push(audit);
    out
}

fn heartbeat(fleet: &Fleet) -> Option<Heartbeat> {
    let host = fleet.hosts.values().next()?;
    Some(Heartbeat {
        host: crate::protocol::HostInfo {
            warnings: vec!["overlay2 on xfs without d_type".into()],
            ..host.info.clone()
        },
        metrics: host.metrics.clone(),
        instances: fleet.instances_on(&host.info.id).take(2).map(InstanceReport::of).collect(),
        period_ms: 2_000,
        unmanaged: vec![],
    })
}

fn tar(gzip: bool) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    dir.set_cksum();
    builder.append_data(&mut dir, "site", &[][..])?;
    let mut file = tar::Header::new_gnu();
    file.set_size(5);
    file.set_mode(0o644);
    file.set_cksum();
    builder.append_data(&mut file, "site/index.html", &b"hello"[..])?;
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_cksum();
    builder.append_link(&mut link, "site/home.html", "index.html")?;
    let bytes = builder.into_inner()?;
    if !gzip {
        return Ok(bytes);
    }
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes)?;
    gz.finish()
}

/// The exec messages, by the `exec_message` target's selector: start, input, resize,
/// keepalive/stop, and the frames on the viewer's stream.
fn exec_seeds() -> Vec<Vec<u8>> {
    use crate::protocol::exec::{
        ExecEnd, ExecEndReason, ExecFd, ExecFrame, ExecInput, ExecPayload, ExecRef, ExecRequest, ExecResize,
        encode_chunk,
    };
    let stream = subjects::session_stream(SessionKind::Exec, "alice", "x1a2b");
    let viewer = "ctl/alice@bastion-1";
    let frame = |seq, what| selected(4, env("agent/h1", ExecFrame { seq, what }));
    vec![
        selected(
            0,
            env(
                viewer,
                ExecRequest {
                    instance: "shop-web-0-1a2b".into(),
                    cmd: vec![],
                    tty: true,
                    cols: 80,
                    rows: 24,
                    stream: stream.clone(),
                },
            ),
        ),
        selected(
            0,
            env(
                viewer,
                ExecRequest {
                    instance: "shop-web-0-1a2b".into(),
                    cmd: vec!["sh".into(), "-c".into(), "cat /app/index.html; exit 3".into()],
                    tty: false,
                    cols: 0,
                    rows: 0,
                    stream: stream.clone(),
                },
            ),
        ),
        selected(
            1,
            env(
                viewer,
                ExecInput { stream: stream.clone(), seq: 0, data: encode_chunk(b"ls -l\r"), eof: false },
            ),
        ),
        selected(
            1,
            env(viewer, ExecInput { stream: stream.clone(), seq: 1, data: String::new(), eof: true }),
        ),
        selected(2, env(viewer, ExecResize { stream: stream.clone(), cols: 132, rows: 43 })),
        selected(3, env(viewer, ExecRef { stream })),
        frame(
            0,
            ExecPayload::Out {
                fd: ExecFd::Stdout,
                data: encode_chunk(b"total 4\r\n-rw-r--r-- index.html\r\n"),
            },
        ),
        frame(1, ExecPayload::Out { fd: ExecFd::Stderr, data: encode_chunk(&[0x1b, b'[', b'H', 0xff]) }),
        frame(2, ExecPayload::Alive),
        frame(
            3,
            ExecPayload::End(ExecEnd {
                exit_code: Some(3),
                reason: ExecEndReason::Exited,
                detail: String::new(),
            }),
        ),
        frame(
            4,
            ExecPayload::End(ExecEnd {
                exit_code: None,
                reason: ExecEndReason::ViewerLost,
                detail: "no keep-alive from the viewer for 10 s: the process was killed".into(),
            }),
        ),
    ]
}

/// The port-forward messages, by the `forward_frame` target's selector: an open, the
/// frames, and two scripts for the credit window (an honest sender, a hostile peer).
fn forward_seeds() -> Vec<Vec<u8>> {
    use crate::protocol::forward::{Chunk, Frame, FwdOpen, FwdPacket};
    let stream = subjects::session_stream(SessionKind::Forward, "alice", "c1a2b");
    let packet = |frame| selected(1, env("ctl/alice@bastion-1", FwdPacket { stream: stream.clone(), frame }));
    let request = b"GET / HTTP/1.0\r\n\r\n";
    let mut seeds = vec![
        selected(
            0,
            env(
                "ctl/alice@bastion-1",
                FwdOpen { instance: "shop-web-0-1a2b".into(), port: 8080, stream: stream.clone() },
            ),
        ),
        packet(Frame::Data { seq: 0, data: Chunk(bytes::Bytes::from_static(request)), fin: false }),
        packet(Frame::Data { seq: 1, data: Chunk(bytes::Bytes::new()), fin: true }),
        packet(Frame::Ack { bytes: 65_536, frames: 2 }),
        packet(Frame::Close { reason: "closed by both sides".into() }),
        packet(Frame::Keepalive),
    ];
    // Window scripts: each step a byte (its value mod 5 or 4 is the move), then its numbers.
    let full_chunks: Vec<u8> =
        std::iter::repeat_n([0u8, 0xff, 0x7f], 12).flatten().chain([2, 2, 3, 4, 0, 1, 0]).collect();
    seeds.push(selected(2, full_chunks));
    seeds.push(selected(2, (0..=255).collect()));
    seeds.push(selected(
        3,
        vec![
            0, 1, 0x00, 0x80, 2, 0xff, 0x7f, 3, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 5,
        ],
    ));
    seeds
}

/// Session reports as agents send them: exec and port-forward, at their start and end.
fn session_seeds() -> Vec<Vec<u8>> {
    use crate::protocol::exec::{SessionEnd, SessionReport};
    let exec = SessionReport {
        kind: SessionKind::Exec.into(),
        user: "alice".into(),
        session: "x1a2b".into(),
        instance: "shop-web-0-1a2b".into(),
        what: "sh -c 'cat /app/index.html; exit 3'".into(),
        started_at: T0,
        end: None,
    };
    let forward = SessionReport {
        kind: SessionKind::Forward.into(),
        session: "c1a2b".into(),
        what: "port 8080".into(),
        ..exec.clone()
    };
    let exec_end = SessionReport {
        end: Some(SessionEnd {
            ended_at: T0 + 2_500,
            exit_code: Some(3),
            reason: "exited".into(),
            detail: String::new(),
            recording: Some("x1a2b".into()),
        }),
        ..exec.clone()
    };
    let forward_end = SessionReport {
        end: Some(SessionEnd {
            ended_at: T0 + 61_000,
            exit_code: None,
            reason: "closed_by_user".into(),
            detail: "18 bytes to the instance, 612 from it; closed by the user".into(),
            recording: None,
        }),
        ..forward.clone()
    };
    [exec, exec_end, forward, forward_end].iter().map(|r| env("agent/h1", r)).collect()
}

/// Two specs as a JSON array: an app against itself, and against a new version with
/// another command, env, CPU and an artifact.
fn release_diff_seeds(fleet: &Fleet) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let a = fleet.apps.values().next().ok_or("the fixture has no app")?.clone();
    let mut b = a.clone();
    b.version = "2".into();
    b.constraints.cpu = 0.75;
    b.run.cmd = Some(vec!["serve".into(), "--port=8080".into()]);
    b.run.env.insert("JAVA_OPTS".into(), "-Xmx256m".into());
    b.run.artifact =
        Some(crate::protocol::ArtifactRef { name: "shop-web-2".into(), sha256: "ab".repeat(32), size: 1024 });
    b.shortfall = Some("waiting for capacity".into());
    Ok(vec![serde_json::to_vec(&(&a, &a))?, serde_json::to_vec(&(&a, &b))?, serde_json::to_vec(&(&b, &a))?])
}

/// The drain_plan target's bytes (read one at a time, see its source): host, app and
/// instance counts, then each host (tags, state, schedule, AZ, cores, memory), each app
/// (AZs, tags, CPU, memory), each instance (app, CPU, host, state, memory), the drained host.
fn drain_plan_seeds() -> Vec<Vec<u8>> {
    let open = |az: u8| [0, 0, 2, 2, az, 4, 8];
    let cordoned = |az: u8| [0, 0, 2, 0, az, 4, 8];
    let apps = [1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1];
    let instances =
        [0, 1, 0, 0, 2, 1, 1, 0, 0, 2, 0, 1, 1, 0, 2, 1, 1, 1, 0, 2, 0, 1, 2, 0, 2, 1, 1, 0, 0, 2];
    let fleet = |hosts: [[u8; 7]; 3], drained: u8| {
        let mut out = vec![2, 1, 6];
        out.extend(hosts.concat());
        out.extend(apps);
        out.extend(instances);
        out.push(drained);
        out
    };
    vec![
        // Three open hosts in two AZs; h0 drained.
        fleet([open(0), open(1), open(0)], 0),
        // h2 cordoned: h0's instances may only go to h1.
        fleet([open(0), open(1), cordoned(1)], 0),
        // The drained host cordoned already, the others too: no room.
        fleet([cordoned(0), cordoned(1), cordoned(0)], 0),
    ]
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after a wire change"]
fn write_fuzz_seeds() -> Result<(), Box<dyn std::error::Error>> {
    let (fleet, fixture_events) = fixture(3, 2, 0);
    let events = events(&fleet, &fixture_events);

    let hb = heartbeat(&fleet).ok_or("the fixture has no host")?;
    write(
        "envelope",
        &[
            env("controller", &events[0]),
            command(deploy()),
            env("cockpit/alice@bastion-1", SnapshotRequest::default()),
            env("controller", Reply::<()>::Error(WireError::new(ErrorCode::NotReady, "loading"))),
            // A v1 sender's message, still read.
            String::from_utf8(env("agent/h1", &hb))?.replacen(r#""v":2"#, r#""v":1"#, 1).into_bytes(),
            // Found by the target: a number out of f64's range, which `IgnoredAny` skips
            // and a `Value` refuses.
            br#"{"v":1,"id":"c0ffee0123456789","ts":1,"source":"agent/h1","body":{"ts":17950095e01232280}}"#
                .to_vec(),
        ],
    )?;
    write(
        "ctl_request",
        &[
            selected(0, command(SnapshotRequest { page: Some(1), rev: Some(42), encoding: Some(3) })),
            selected(1, command(HistoryRequest { since_ts: Some(T0), limit: Some(50) })),
            selected(
                2,
                command(crate::protocol::AllocateRequest { app: "shop-web".into(), version: "1.4.2".into() }),
            ),
            selected(3, command(deploy())),
            selected(
                4,
                command(RestartBody { target: RestartRequest::App("shop-web".into()), batch: Some(2) }),
            ),
            selected(
                4,
                command(RestartBody::from(RestartRequest::Instances(vec!["shop-web-0-1a2b".into()]))),
            ),
            selected(
                5,
                command(RouteRequest {
                    app: "shop-web".into(),
                    backend: "10.101.1.31:8080".into(),
                    weight: Some(3),
                }),
            ),
            selected(
                9,
                command(RouteRequest { app: "api".into(), backend: "10.0.0.1:80".into(), weight: None }),
            ),
            selected(10, command(crate::protocol::ScaleRequest { app: "shop-web".into(), instances: 3 })),
            selected(11, command(crate::protocol::AppRemoveRequest { app: "shop-web".into() })),
            selected(12, command(crate::protocol::HostRequest { host: "h1".into() })),
            selected(13, command(crate::protocol::HostRequest { host: "h2".into() })),
            selected(14, command(crate::protocol::HostRequest { host: "h1".into() })),
            selected(
                15,
                command(crate::protocol::SecretSetRequest {
                    app: "shop-web".into(),
                    name: "DB_PASSWORD".into(),
                    value: "s3cr3t-\"value\"-\u{e9}".into(),
                }),
            ),
            selected(16, command(crate::protocol::release::ReleasesRequest { app: "shop-web".into() })),
            selected(
                17,
                command(crate::protocol::release::RollbackRequest {
                    app: "shop-web".into(),
                    release: Some(2),
                }),
            ),
            selected(
                17,
                command(crate::protocol::release::RollbackRequest { app: "api".into(), release: None }),
            ),
            selected(
                18,
                command(crate::protocol::AlertAckRequest { id: "crash_loop:instance/shop-web-1".into() }),
            ),
            selected(
                19,
                command(crate::protocol::SilenceRequest {
                    subject: crate::protocol::AlertSubject::Route {
                        app: "shop-web".into(),
                        backend: "10.0.0.1:8080".into(),
                    },
                    for_ms: 1_800_000,
                    reason: Some("deploying".into()),
                }),
            ),
            selected(
                20,
                command(crate::protocol::NoteRequest { text: "rolled back shop-web, watching 5xx".into() }),
            ),
        ],
    )?;
    write("release_diff", &release_diff_seeds(&fleet)?)?;
    write("drain_plan", &drain_plan_seeds())?;
    write("event", &events.iter().map(|e| env("controller", e)).collect::<Vec<_>>())?;
    let mut changes: Vec<Vec<u8>> =
        events.iter().flat_map(|e| &e.changes).map(serde_json::to_vec).collect::<Result<_, _>>()?;
    changes.push(br#"{"app":"shop-web","backend":"10.0.0.1:8080","type":"route_removed"}"#.to_vec());
    // Found by the target: bytes that are not UTF-8 in an unknown field, which serde_json
    // skips unchecked (`protocol::decode` checks the whole text first).
    changes.push(b"{\"type\":\"instance_removed\",\"id\":\"a\",\"x\":\"s\xfe\xff\"}".to_vec());
    write("change", &changes)?;
    write("heartbeat", &[env("agent/h1", &hb)])?;
    let report = hb.instances[0].clone();
    write(
        "instance_status",
        &[env(
            "agent/h1",
            InstanceStatus {
                host: hb.host.id.clone(),
                instance: report,
                step: Some(StepName::HealthCheck),
                operation_id: Some("op-7f3a".into()),
                detail: "GET /health 200".into(),
                step_state: None,
            },
        )],
    )?;
    write(
        "router_status",
        &[env(
            "router/r1",
            RouterStatus {
                id: "r1".into(),
                generation: 12,
                last_reload: Some(T0),
                last_error: Some("app api left out of nginx: [emerg] bad in /x/nginx.conf.new:40".into()),
                backends: 4,
                listen: "127.0.0.1:8080".into(),
                revision: 77,
                traffic: None,
            },
        )],
    )?;
    let spec = InstanceSpec {
        id: "shop-web-0-1a2b".into(),
        app: "shop-web".into(),
        version: "1.4.2".into(),
        index: 0,
        image: "quarterdeck-test/httpd".into(),
        port: 8080,
        cpu: 0.5,
        memory_mb: 256,
        operation_id: "op-7f3a".into(),
        run: RunSpec::default(),
    };
    write(
        "agent_command",
        &[
            selected(0, env("controller", spec)),
            selected(1, env("controller", InstanceRef { id: "shop-web-0-1a2b".into(), operation_id: None })),
            selected(
                2,
                env(
                    "cockpit/alice@bastion-1",
                    LogsRequest {
                        instance: "shop-web-0-1a2b".into(),
                        tail: 200,
                        follow: true,
                        stream: crate::protocol::subjects::logs_stream("alice", "cockpit-1a2b"),
                        since: None,
                    },
                ),
            ),
            selected(
                2,
                env(
                    "ctl/alice@bastion-1",
                    LogsRequest {
                        instance: "shop-web-0-1a2b".into(),
                        tail: 10_000,
                        follow: false,
                        stream: crate::protocol::subjects::logs_stream("alice", "ctl-9f8e"),
                        since: Some(T0 - 3_600_000),
                    },
                ),
            ),
            selected(
                3,
                env(
                    "cockpit/alice@bastion-1",
                    LogsStreamRef { stream: crate::protocol::subjects::logs_stream("alice", "cockpit-1a2b") },
                ),
            ),
        ],
    )?;
    write("exec_message", &exec_seeds())?;
    write("forward_frame", &forward_seeds())?;
    write("session_report", &session_seeds())?;
    let (small, _) = fixture(5, 1, 0);
    let text = serde_json::to_string(&small)?;
    let page = SnapshotPage { rev: small.revision, encoding: 1, page: 0, pages: 1, part: text.clone() };
    let mut at_7 = small.clone();
    at_7.revision = 7;
    let mut cut = 300u16.to_le_bytes().to_vec();
    cut.extend(text.as_bytes().iter().take(900));
    write(
        "snapshot_page",
        &[
            selected(0, env("controller", Reply::Ok(page))),
            selected(0, env("controller", Reply::Ok(&small))),
            selected(1, serde_json::to_vec(&at_7)?),
            selected(2, cut),
        ],
    )?;
    write("cockpit_config", &[b"read_only = true\n".to_vec(), b"# no keys\nreadonly = false\n".to_vec()])?;
    write(
        "contexts",
        &[
            b"current = \"a\"\n[contexts.a]\nnats = \"nats://127.0.0.1:4222\"\ncolour = \"yellow\"\n".to_vec(),
            b"[contexts.p]\nnats = \"tls://h:1,tls://g:2\"\nnkey = \"~/k.seed\"\ncreds = \"p.creds\"\ncolor = \"#ff0000\"\nproduction = true\n".to_vec(),
        ],
    )?;
    write(
        "keymap",
        &[
            include_bytes!("actions/keymap.toml").to_vec(),
            b"[keys]\nquit = [\"x\", \"ctrl-q\"]\nhelp = [\"f1\"]\n".to_vec(),
        ],
    )?;
    write(
        "theme",
        &[
            include_bytes!("../themes/default.toml").to_vec(),
            include_bytes!("../themes/light.toml").to_vec(),
            b"base = \"light\"\n[colors]\nok = \"#00ff00\"\nbad = \"red\"\n".to_vec(),
        ],
    )?;
    // Structured input (arbitrary's format): any bytes are a route table.
    write(
        "router_render",
        &[
            b"\x05\x00\x00\x00\x00\x00\x00\x00\x90\x1f\x01shop-web\x00shop.local\x00".to_vec(),
            (0u8..=255).collect(),
            b"aaaa;{}\nbbbb.local 10.0.0.1:80".repeat(4),
        ],
    )?;
    write("artifact_unpack", &[tar(true)?, tar(false)?])?;
    Ok(())
}
