//! Crash reasons on a real nats-server + dockerd (issue 12, fault 6): a container that
//! exits 3, is killed, or runs out of memory says so in the INSTANCE_CRASHED event, in the
//! instance's `last_exit` (`ctl instances --json`) and on the cockpit's screen; a log view
//! that follows the instance goes on across the health manager's restart, with a marker.
//!
//! The app runs `/app/run.sh` from its artifact: it counts its runs in the container's own
//! /tmp (which a restart keeps), serves with busybox httpd, and ends when the test drops a
//! file into /tmp: `crash` exits 3, `oom` fills memory past the 64 MB limit.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::App;
use quarterdeck::backend::{self, BackendHandle, BackendRequest, Identity};
use quarterdeck::protocol::EventKind;
use quarterdeck::protocol::clock::now_ms;
use serde_json::{Value, json};

use crate::cockpit_support::cockpit_app;
use crate::docker_support::{docker, site};
use crate::nats_support::{block_on, connect, ctl, ctl_json, ctl_json_lines, eventually};
use crate::stack_support::{Stack, site_cmd_deploy_args};

const RUN_SH: &str = r#"n=$(cat /tmp/runs 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > /tmp/runs
echo "run-$n started"
httpd -p 8080 -h /app
while true; do
  if [ -e /tmp/crash ]; then rm /tmp/crash; echo "run-$n exits 3"; exit 3; fi
  if [ -e /tmp/oom ]; then rm /tmp/oom; echo "run-$n fills its memory"; x=$(head -c 300000000 /dev/zero | tr '\0' a); fi
  sleep 0.2
done
"#;

/// Waits this long for a crash, its restart and the log lines that follow, on a loaded
/// machine.
const SLOW: Duration = Duration::from_secs(90);

/// Deploys the crashing app `site` (one instance, 64 MB) and returns its container id.
pub(crate) fn deploy_crasher(stack: &Stack) -> String {
    let artifact = stack.nats.dir().join("crasher.tar.gz");
    std::fs::write(&artifact, site(&[("index.html", "<h1>crasher</h1>"), ("run.sh", RUN_SH)]))
        .expect("artifact");
    let image = crate::docker_support::image();
    let args = site_cmd_deploy_args(&image, "sh /app/run.sh", "1.0.0", "1", &artifact, &[]);
    let out = ctl(&stack.url(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.ok(), "deploy: {out:?}");
    let ids = docker(&["ps", "-q", "--filter", &format!("label=quarterdeck.host={}", stack.host)]);
    ids.split_whitespace().next().expect("the app's container").to_string()
}

/// The one instance of `site` as `ctl instances --json` shows it.
fn the_instance(stack: &Stack) -> Value {
    let all = ctl_json(&stack.url(), &["instances"]);
    all.as_array().and_then(|a| a.first()).cloned().expect("one instance")
}

/// Waits until the INSTANCE_CRASHED event with this message is in the stream; its record.
fn crash_event(stack: &Stack, message: &str) -> Value {
    eventually(SLOW, &format!("an INSTANCE_CRASHED event saying {message:?}"), || {
        let events = ctl_json_lines(&stack.url(), &["events", "--since", "10m"]);
        let crashes: Vec<&Value> = events.iter().filter(|e| e["kind"] == "INSTANCE_CRASHED").collect();
        crashes
            .iter()
            .find(|e| e["message"].as_str().is_some_and(|m| m.ends_with(message)))
            .map(|e| (*e).clone())
            .ok_or_else(|| format!("{crashes:?}"))
    })
}

/// Running again after its restart, with this exit kept as its last.
fn running_after(stack: &Stack, exit: impl Fn(&Value) -> bool) -> Value {
    eventually(SLOW, "the instance restarted and running, its last exit kept", || {
        let i = the_instance(stack);
        if i["state"] == "running" && exit(&i["last_exit"]) { Ok(i) } else { Err(i.to_string()) }
    })
}

fn carry(handle: &BackendHandle, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::Logs(start) => handle.commands.send(BackendRequest::Logs(start)).expect("backend open"),
            Effect::LogsStop => handle.commands.send(BackendRequest::LogsStop).expect("backend open"),
            other => crate::support::carry_out(handle, other),
        }
    }
}

/// Feeds the backend's updates to the app until `done`, for at most `SLOW`.
async fn pump(app: &mut App, handle: &mut BackendHandle, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = tokio::time::Instant::now() + SLOW;
    while !done(app) {
        let update = tokio::time::timeout_at(deadline, handle.updates.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}; log: {:?}", log_texts(app)))
            .expect("backend open");
        app.now = now_ms();
        let effects = app.apply(update);
        carry(handle, effects);
    }
}

fn log_texts(app: &App) -> Vec<String> {
    app.logs.as_ref().map(|l| l.lines.iter().map(|x| x.text.clone()).collect()).unwrap_or_default()
}

fn position(app: &App, text: &str) -> Option<usize> {
    log_texts(app).iter().position(|l| l == text)
}

#[test]
fn docker_crash_exit_3_is_in_the_event_the_instance_and_a_log_followed_across_the_restart() {
    let Some(stack) = Stack::start("docker_crash_exit_3") else { return };
    let container = deploy_crasher(&stack);
    block_on(async {
        let bus = Arc::new(connect(&stack.url(), "cockpit/test@here").await);
        let mut handle = backend::spawn_cockpit(bus, "cockpit/test@here".into(), Identity::default());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "the running instance", |a| {
            a.replica
                .fleet
                .instances
                .values()
                .any(|i| i.state == quarterdeck::protocol::InstanceState::Running)
        })
        .await;
        app.update(Action::ShowPanel(Panel::Instances));
        carry(&handle, app.update(Action::Logs));
        pump(&mut app, &mut handle, "the first run's log", |a| position(a, "run-1 started").is_some()).await;

        docker(&["exec", &container, "touch", "/tmp/crash"]);
        pump(&mut app, &mut handle, "the marker and the second run's lines", |a| {
            position(a, "run-2 started").is_some()
        })
        .await;
        let lines = log_texts(&app);
        let at = |text: &str| position(&app, text).unwrap_or_else(|| panic!("{text:?} missing: {lines:?}"));
        assert!(at("run-1 started") < at("run-1 exits 3"), "{lines:?}");
        assert!(at("run-1 exits 3") < at("── restarted (exit 3) ──"), "{lines:?}");
        assert!(at("── restarted (exit 3) ──") < at("run-2 started"), "{lines:?}");
        assert_eq!(lines.iter().filter(|l| *l == "run-1 started").count(), 1, "no line twice: {lines:?}");

        // The event on the wire carries the exit in its instance change.
        let crashed = app.replica.events.iter().find(|e| e.kind == EventKind::InstanceCrashed).cloned();
        let crashed = crashed.unwrap_or_else(|| panic!("no INSTANCE_CRASHED in {:?}", app.replica.events));
        assert!(crashed.message.ends_with("crashed: exit 3"), "{}", crashed.message);
        // Read as JSON: the wire form is what other clients see.
        let changes = serde_json::to_value(&crashed.changes).expect("changes as JSON");
        let exit = changes.as_array().and_then(|c| c.iter().find(|c| c["type"] == "instance"));
        let exit = exit.map(|c| c["last_exit"].clone()).unwrap_or_default();
        assert_eq!(
            (&exit["code"], &exit["signal"], &exit["oom"]),
            (&json!(3), &Value::Null, &json!(false)),
            "{changes}"
        );
        carry(&handle, app.update(Action::Back));
    });
    // The stream and the controller's state say the same.
    let event = crash_event(&stack, "crashed: exit 3");
    assert!(event["message"].as_str().unwrap_or("").starts_with("site-0-"), "{event}");
    let inst = running_after(&stack, |x| x["code"] == 3);
    assert_eq!(inst["last_exit"]["signal"], Value::Null, "{inst}");
    assert_eq!(inst["last_exit"]["oom"], false, "{inst}");
    assert!(inst["last_exit"]["at"].as_u64().unwrap_or(0) > now_ms() - 600_000, "{inst}");
}

#[test]
fn docker_crash_a_kill_and_an_oom_give_their_reason() {
    let Some(stack) = Stack::start("docker_crash_kill_and_oom") else { return };
    let container = deploy_crasher(&stack);

    docker(&["kill", &container]);
    crash_event(&stack, "crashed: killed by SIGKILL");
    running_after(&stack, |x| x["code"] == 137 && x["signal"] == 9 && x["oom"] == false);

    docker(&["exec", &container, "touch", "/tmp/oom"]);
    crash_event(&stack, "crashed: OOM killed");
    let inst = running_after(&stack, |x| x["oom"] == true);
    assert_eq!(inst["last_exit"]["code"], 137, "{inst}");
}
