//! Issue 20, notes and the handover: a scripted incident on real nats-server and dockerd
//! with roles on (a crash, a restart by the operator alice, a note, an exec session), then
//! `ctl timeline` lists them in that order with who and how each ended, as JSON and as
//! Markdown; the note is one NOTE event (no AUDIT echo), a viewer's note is refused by the
//! server, an empty or oversize one by the controller with its reason; the cockpit sends a
//! note with `n` and writes the timeline with `:export`.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::{Action, Effect};
use quarterdeck::app::App;
use quarterdeck::backend::{self, BackendHandle, Identity};
use quarterdeck::protocol::clock::now_ms;
use serde_json::Value;

use crate::cockpit_support::cockpit_app;
use crate::docker_crash::deploy_crasher;
use crate::docker_support::docker;
use crate::nats_support::{
    Mode, Users, block_on, connect, ctl, ctl_as, ctl_json, ctl_json_lines, eventually,
};
use crate::stack_support::{Stack, StackConfig};

/// A crash, its restart by the health manager and an operator's restart, on a loaded
/// machine.
const SLOW: Duration = Duration::from_secs(90);

const NOTE: &str = "rolled shop back by hand | see INC-42";

fn events(url: &str) -> Vec<Value> {
    ctl_json_lines(url, &["events", "--since", "10m"])
}

/// The instance of `site`, once running.
fn running_instance(url: &str) -> String {
    eventually(SLOW, "the instance running", || {
        let all = ctl_json(url, &["instances"]);
        let i = all.as_array().and_then(|a| a.first()).cloned().ok_or("no instance")?;
        if i["state"] == "running" {
            Ok(i["id"].as_str().unwrap_or_default().to_string())
        } else {
            Err(i.to_string())
        }
    })
}

/// The kind of each entry, with the detail the test checks.
fn kinds(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| e["kind"].as_str().unwrap_or("?").to_string()).collect()
}

fn position(entries: &[Value], what: &str, found: impl Fn(&Value) -> bool) -> usize {
    entries.iter().position(found).unwrap_or_else(|| panic!("no {what} in the timeline: {entries:#?}"))
}

#[test]
fn docker_timeline_lists_a_crash_a_restart_and_a_note_in_order_with_who() {
    let test = "docker_timeline_lists_a_crash_a_restart_and_a_note";
    let config = StackConfig { mode: Mode::Roles, ..StackConfig::default() };
    let Some(stack) = Stack::start_config(test, config) else { return };
    let url = stack.url();
    let container = deploy_crasher(&stack);
    let instance = running_instance(&url);

    // The crash: the app exits 3.
    docker(&["exec", &container, "touch", "/tmp/crash"]);
    eventually(SLOW, "INSTANCE_CRASHED with exit 3", || {
        let all = events(&url);
        all.iter()
            .any(|e| {
                e["kind"] == "INSTANCE_CRASHED" && e["message"].as_str().is_some_and(|m| m.contains("exit 3"))
            })
            .then_some(())
            .ok_or_else(|| format!("{} events", all.len()))
    });
    running_instance(&url);

    // The operator's restart, followed to its end.
    let out = ctl(&url, &["restart", "--instance", &instance, "--wait"]);
    assert!(out.ok(), "restart: {out}");

    // The note, and its repeat by command id, which adds nothing.
    let words: Vec<&str> = NOTE.split(' ').collect();
    let args = [&["note", "--command-id", "note-1"][..], &words[..]].concat();
    for _ in 0..2 {
        let out = ctl(&url, &args);
        assert!(out.ok() && out.stdout.starts_with("ok (revision "), "note: {out}");
    }

    // An exec session: its recording is linked.
    let out = ctl(&url, &["exec", &instance, "--", "true"]);
    assert!(out.ok(), "exec: {out}");

    // Refusals: a viewer by the server, empty and oversize notes by the controller.
    let viewer = ctl_as(&stack.nats, "viewer/carol", &["note", "from", "a", "viewer"]);
    assert!(!viewer.ok(), "a viewer's note must be refused: {viewer}");
    assert!(viewer.stderr.contains("permission denied"), "{viewer}");
    let empty = ctl(&url, &["note", "   "]);
    assert!(
        !empty.ok() && empty.stderr.contains("a note needs some text: it is empty (bad_request)"),
        "{empty}"
    );
    let long = "x".repeat(2001);
    let oversize = ctl(&url, &["note", &long]);
    assert!(
        !oversize.ok() && oversize.stderr.contains("at most 2000 characters; this one has 2001"),
        "{oversize}"
    );

    // One NOTE event, with who; no AUDIT event repeats it.
    let all = events(&url);
    let notes: Vec<&Value> = all.iter().filter(|e| e["kind"] == "NOTE").collect();
    assert_eq!(notes.len(), 1, "one note, its repeat answered from the cache: {notes:#?}");
    assert_eq!(notes[0]["message"], NOTE);
    let audited_notes = ctl_json_lines(&url, &["audit", "--since", "10m"])
        .into_iter()
        .filter(|r| r["verb"] == "note" && r["result"].as_str().is_some_and(|s| s.starts_with("accepted")))
        .count();
    assert_eq!(audited_notes, 0, "an accepted note is its NOTE event, not an AUDIT one too");

    // The timeline, as JSON: crash, restart (alice, succeeded), note (alice), exec with its
    // recording, in that order.
    let out = ctl(&url, &["timeline", "--since", "10m", "--format", "json"]);
    assert!(out.ok(), "timeline: {out}");
    let t: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    let entries = t["entries"].as_array().cloned().unwrap_or_default();
    let crash = position(&entries, "crash", |e| e["kind"] == "crash" && e["exit_code"] == 3);
    assert_eq!(entries[crash]["instance"], instance.as_str());
    let restart = position(&entries, "restart", |e| e["kind"] == "action" && e["verb"] == "restart");
    let r = &entries[restart];
    assert!(r["who"].as_str().is_some_and(|w| w.starts_with(Users::OPERATOR_NAME)), "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["outcome"].as_str().is_some_and(|o| o.starts_with("succeeded")), "{r}");
    let note = position(&entries, "note", |e| e["kind"] == "note");
    assert_eq!(entries[note]["text"], NOTE);
    assert!(
        entries[note]["who"].as_str().is_some_and(|w| w.starts_with(Users::OPERATOR_NAME)),
        "{}",
        entries[note]
    );
    let exec = position(&entries, "exec", |e| {
        e["kind"] == "action" && e["verb"] == "exec" && e["recording"].is_string()
    });
    assert!(crash < restart && restart < note && note < exec, "out of order: {:?}", kinds(&entries));
    assert!(t["summary"]["notes"] == 1 && t["summary"]["crashes"].as_u64() >= Some(1), "{}", t["summary"]);
    let deploy = position(&entries, "deploy", |e| e["kind"] == "deploy" && e["state"] == "succeeded");
    assert!(deploy < crash, "{:?}", kinds(&entries));

    // As Markdown: the same order, the note's `|` escaped, the recording's replay command.
    let out = ctl(&url, &["timeline", "--since", "10m", "--format", "md"]);
    assert!(out.ok(), "timeline md: {out}");
    let md = out.stdout;
    assert!(md.starts_with("# Incident timeline: "), "{md}");
    let at = |needle: &str| md.find(needle).unwrap_or_else(|| panic!("{needle:?} not in:\n{md}"));
    let crash_at = at("exit 3");
    let restart_at = at(&format!("restart instance {instance} → succeeded"));
    let note_at = at("rolled shop back by hand \\| see INC-42");
    let replay_at = at("`quarterdeck ctl exec-replay ");
    assert!(crash_at < restart_at && restart_at < note_at && note_at < replay_at, "{md}");

    // To a file; bad windows refused with what to give.
    let file = stack.nats.dir().join("handover.md");
    let out = ctl(&url, &["timeline", "--since", "10m", "--output", file.to_str().unwrap_or_default()]);
    assert!(out.ok() && out.stderr.contains("timeline written to"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&file).map(|s| s.contains(NOTE.split('|').next().unwrap_or(NOTE))).ok(),
        Some(true)
    );
    let bad = ctl(&url, &["timeline", "--since", "yesterday"]);
    assert!(!bad.ok() && bad.stderr.contains("not a duration"), "{bad}");

    cockpit_note_and_export(&stack);
}

/// The cockpit on the same plane: `n`, a line, Enter sends the note (accepted); `:export
/// 10m FILE` writes the Markdown, which holds both notes.
fn cockpit_note_and_export(stack: &Stack) {
    let url = stack.url();
    let file = stack.nats.dir().join("export.md");
    block_on(async {
        let bus = Arc::new(connect(&url, "cockpit/alice@here").await);
        let mut handle = backend::spawn_cockpit(bus, "cockpit/alice@here".into(), Identity::default());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "the snapshot", |a| !a.replica.fleet.instances.is_empty()).await;
        app.update(Action::Note);
        for c in "from the cockpit".chars() {
            app.update(Action::Input(c));
        }
        carry(&handle, app.update(Action::Submit));
        pump(&mut app, &mut handle, "the note accepted", |a| status(a).starts_with("accepted: note")).await;
        app.update(Action::Palette);
        for c in format!("export 10m {}", file.display()).chars() {
            app.update(Action::Input(c));
        }
        let effects = app.update(Action::Submit);
        assert!(matches!(effects.as_slice(), [Effect::Export(_)]), "{effects:?}");
        carry(&handle, effects);
        pump(&mut app, &mut handle, "the export written", |a| status(a).starts_with("timeline written to"))
            .await;
    });
    let md = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let first = md.find("rolled shop back by hand").unwrap_or_else(|| panic!("{md}"));
    let second = md.find("from the cockpit").unwrap_or_else(|| panic!("{md}"));
    assert!(first < second, "{md}");
}

fn status(app: &App) -> String {
    app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default()
}

fn carry(handle: &BackendHandle, effects: Vec<Effect>) {
    for effect in effects {
        crate::support::carry_out(handle, effect);
    }
}

/// Feeds the backend's updates to the app until `done`, for at most `SLOW`.
async fn pump(app: &mut App, handle: &mut BackendHandle, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = tokio::time::Instant::now() + SLOW;
    while !done(app) {
        let update = tokio::time::timeout_at(deadline, handle.updates.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}; status: {}", status(app)))
            .expect("backend open");
        app.now = now_ms();
        let effects = app.apply(update);
        carry(handle, effects);
    }
}
