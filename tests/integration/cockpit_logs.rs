//! Logs (`l`) end to end: the cockpit's backend asks the instance's agent for its log,
//! the lines stream into the logs view, and closing the view (or a viewer that goes
//! silent) ends the stream on the agent. In the sandbox (the sim driver's simulated lines)
//! and on a real nats-server + dockerd (a real container's output, through bollard).

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::logs::LogState;
use quarterdeck::app::{App, Overlay};
use quarterdeck::backend::{self, BackendHandle, BackendRequest, Identity};
use quarterdeck::bus::Bus;
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::subjects::{self, LogsVerb};
use quarterdeck::protocol::{
    AgentAck, Constraints, DeployRequest, Envelope, InstanceState, LogBatch, LogsRequest, decode,
};

use crate::cockpit_support::{cockpit_app, screen, type_text};
use crate::support::{fast_sandbox, pump};

/// What the event loop does with the effects, for those with a backend side.
pub(crate) fn carry(handle: &BackendHandle, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Logs(start) => handle.commands.send(BackendRequest::Logs(start)).expect("backend open"),
            Effect::LogsStop => handle.commands.send(BackendRequest::LogsStop).expect("backend open"),
            other => crate::support::carry_out(handle, other),
        }
    }
}

fn lines_of(app: &App) -> usize {
    app.logs.as_ref().map_or(0, |l| l.lines.len())
}

pub(crate) fn has_line(app: &App, needle: &str) -> bool {
    app.logs.as_ref().is_some_and(|l| l.lines.iter().any(|x| x.text.contains(needle)))
}

/// The next log batch seen on a raw subscription, within `within`.
async fn next_batch(sub: &mut quarterdeck::bus::Subscription, within: Duration) -> Option<LogBatch> {
    let msg = tokio::time::timeout(within, sub.next()).await.ok()??;
    decode::<LogBatch>(&msg.payload).ok().map(|e| e.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_logs_stream_simulated_lines_in_the_sandbox_and_stop_on_close() {
    let sb = fast_sandbox(1).await;
    sb.deploy(DeployRequest {
        app: "shop-web".into(),
        version: "1.0.0".into(),
        instances: 1,
        image: Some("tomcat:8.5".into()),
        port: Some(8080),
        constraints: Some(Constraints { azs: vec![], tags: vec![], cpu: 0.25, memory_mb: 256 }),
        ..DeployRequest::default()
    })
    .await
    .expect("deploy accepted");
    // Everything published on any viewer's stream, to see it end.
    let mut watch = sb.bus.subscribe("qd.v1.logs.>").await.expect("subscribe");
    let mut handle = backend::spawn_cockpit(sb.bus.clone(), "cockpit/test@here".into(), Identity::default());
    let mut app = cockpit_app("sandbox");
    pump(&mut app, &mut handle, "a running instance", |a| {
        a.replica.fleet.instances.values().any(|i| i.state == InstanceState::Running)
    })
    .await;
    app.update(Action::ShowPanel(Panel::Instances));
    let effects = app.update(Action::Logs);
    assert!(matches!(app.overlay(), Some(Overlay::Logs)));
    carry(&handle, effects);
    pump(&mut app, &mut handle, "the tail of the simulated log", |a| lines_of(a) >= 200).await;
    assert_eq!(app.logs.as_ref().map(|l| l.state.clone()), Some(LogState::Streaming));
    let tail = lines_of(&app);
    pump(&mut app, &mut handle, "new lines while following", |a| lines_of(a) > tail + 5).await;
    assert!(has_line(&app, "o.a.c.c."), "tomcat-like lines for a tomcat image");
    // A search highlights and jumps; the screen shows the view with its bound.
    app.update(Action::Filter);
    type_text(&mut app, "http-nio");
    app.update(Action::Submit);
    assert!(app.logs.as_ref().is_some_and(|l| l.current.is_some() && !l.follow));
    let shown = screen(&mut app, 160);
    assert!(shown.contains("Logs shop-web-0-"), "{shown}");
    assert!(shown.contains("last 10000 kept"), "{shown}");
    assert!(shown.contains("/http-nio match"), "{shown}");
    // Esc closes the view and stops the stream on the agent: its last batch says so.
    carry(&handle, app.update(Action::Back));
    assert!(app.logs.is_none());
    let ended = async {
        loop {
            match next_batch(&mut watch, Duration::from_secs(5)).await {
                Some(b) if b.end.is_some() => return b.end,
                Some(_) => continue,
                None => return None,
            }
        }
    }
    .await;
    assert_eq!(ended.as_deref(), Some("stopped by the viewer"));
    assert!(next_batch(&mut watch, Duration::from_millis(800)).await.is_none(), "nothing after the stop");
}

/// A viewer that never sends a keep-alive (it crashed, or its connection dropped) has its
/// stream ended by the agent after `LOGS_KEEPALIVE_TIMEOUT_MS`; a bad stream subject is
/// refused, so no request can make an agent publish outside `qd.v1.logs.`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_logs_end_when_the_viewer_goes_silent() {
    let sb = fast_sandbox(1).await;
    sb.deploy(DeployRequest {
        app: "cache".into(),
        version: "7.2".into(),
        instances: 1,
        image: Some("redis:7".into()),
        port: Some(6379),
        ..DeployRequest::default()
    })
    .await
    .expect("deploy accepted");
    let mut handle = backend::spawn_cockpit(sb.bus.clone(), "cockpit/test@here".into(), Identity::default());
    let mut app = cockpit_app("sandbox");
    pump(&mut app, &mut handle, "a running instance", |a| {
        a.replica.fleet.instances.values().any(|i| i.state == InstanceState::Running)
    })
    .await;
    let inst = app.replica.fleet.instances.values().next().cloned().expect("an instance");
    let bus: &dyn Bus = sb.bus.as_ref();
    let user = bus.user();
    let cmd = subjects::logs_request(&inst.host, &user, LogsVerb::Start);
    let bad = LogsRequest {
        instance: inst.id.clone(),
        tail: 5,
        follow: true,
        stream: "qd.v1.evt.x._".into(),
        since: None,
    };
    let refused =
        quarterdeck::bus::request::<_, AgentAck>(bus, &cmd, &Envelope::new("t", bad), Duration::from_secs(5))
            .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("qd.v1.logs.")));

    let stream = subjects::logs_stream(&user, "silent-viewer");
    let mut sub = sb.bus.subscribe(&stream).await.expect("subscribe");
    let req = LogsRequest { instance: inst.id.clone(), tail: 5, follow: true, stream, since: None };
    let started = tokio::time::Instant::now();
    quarterdeck::bus::request::<_, AgentAck>(bus, &cmd, &Envelope::new("t", req), Duration::from_secs(5))
        .await
        .expect("accepted");
    let mut lines = 0;
    let end = loop {
        let b = next_batch(&mut sub, Duration::from_secs(20)).await.expect("batches until the end");
        lines += b.lines.len();
        if let Some(end) = b.end {
            break end;
        }
    };
    let took = started.elapsed();
    assert!(end.contains("no keep-alive"), "{end}");
    assert!(took >= Duration::from_secs(14) && took < Duration::from_secs(20), "{took:?}");
    assert!(lines > 5, "redis-like lines streamed meanwhile: {lines}");
    drop(handle);
}

#[test]
fn cockpit_logs_stream_a_real_container_on_nats_and_docker() {
    use crate::docker_support::docker;
    use crate::nats_support::{block_on, connect};
    use crate::stack_support::Stack;
    let Some(stack) = Stack::start("cockpit_logs_stream_a_real_container_on_nats_and_docker") else { return };
    let out = stack.deploy("1.0.0", "1", "<h1>logs</h1>", &[]);
    assert!(out.ok(), "deploy: {out:?}");
    let container = docker(&["ps", "-q", "--filter", &format!("label=quarterdeck.host={}", stack.host)]);
    let container = container.split_whitespace().next().expect("a container").to_string();
    // Lines written to the container's own stdout and stderr, as its process would.
    let say = |text: &str, fd: u8| {
        docker(&["exec", &container, "sh", "-c", &format!("echo '{text}' > /proc/1/fd/{fd}")]);
    };
    say("before-the-viewer-opened", 1);
    block_on(async {
        let bus = Arc::new(connect(&stack.url(), "cockpit/test@here").await);
        let mut handle = backend::spawn_cockpit(bus, "cockpit/test@here".into(), Identity::default());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "the running site instance", |a| {
            a.replica.fleet.instances.values().any(|i| i.state == InstanceState::Running)
        })
        .await;
        app.update(Action::ShowPanel(Panel::Instances));
        carry(&handle, app.update(Action::Logs));
        pump(&mut app, &mut handle, "the tail of the real log", |a| has_line(a, "before-the-viewer-opened"))
            .await;
        // Follow: lines written now arrive while the view is open, stderr marked as such.
        say("written-while-following", 1);
        say("an-error-on-stderr", 2);
        pump(&mut app, &mut handle, "followed lines", |a| {
            has_line(a, "written-while-following") && has_line(a, "an-error-on-stderr")
        })
        .await;
        let logs = app.logs.as_ref().expect("open");
        let err = logs.lines.iter().find(|l| l.text.contains("an-error-on-stderr")).expect("the line");
        assert_eq!(err.source, quarterdeck::protocol::LogSource::Stderr);
        assert!(err.ts > now_ms() - 60_000, "docker's timestamp is read: {}", err.ts);
        let shown = screen(&mut app, 160);
        assert!(shown.contains("written-while-following"), "{shown}");
        assert!(shown.contains("● following"), "{shown}");
        carry(&handle, app.update(Action::Back));
        assert!(app.logs.is_none());
    });
}

/// In a real terminal, as a user would: `6` then `l` opens the merged logs of the first
/// app, lines carry their instance's word, `i` shows one instance alone and says which,
/// and `Esc` goes back to the panel.
#[test]
fn cockpit_logs_merged_view_in_a_real_terminal() {
    use crate::cockpit_support::Tmux;
    let bin = env!("CARGO_BIN_EXE_quarterdeck");
    let command = format!("{bin} --seed 42 --sandbox-crash-rate 0");
    let Some(t) = Tmux::start_sized("merged-logs", &command, 140, 30) else { return };
    t.wait_for(&["1 Hosts", "6 Apps"], "the cockpit's first frame");
    // Instances still being placed have no container to read yet.
    t.wait_for(&["instances 7/7 running"], "the sandbox's instances running");
    t.keys(&["6"]);
    t.wait_for(&["APP"], "the Apps panel");
    t.keys(&["l"]);
    let shown = t.wait_for(&["instances merged", "● following", " #0 "], "the merged view streaming");
    assert!(shown.contains("i/0-9 one instance"), "{shown}");
    t.keys(&["i"]);
    t.wait_for(&["only #0 (i: next)"], "i filters to the first instance");
    t.keys(&["Escape"]);
    let back = t.wait_for(&["APP"], "Esc closes the view");
    assert!(!back.contains("instances merged"), "{back}");
    t.keys(&["q"]);
}
