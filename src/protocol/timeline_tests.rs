use serde_json::json;

use super::*;
use crate::protocol::alert::{Alert, AlertRule, AlertState, AlertSubject};
use crate::protocol::audit::{AuditOutcome, Operator};
use crate::protocol::model::{ExitInfo, Instance, StepCounts};
use crate::protocol::{OperationEnded, WireError};

/// 2026-12-06 10:00:00 UTC.
const T0: u64 = 1_796_551_200_000;

fn event(rev: u64, secs: u64, kind: EventKind, message: &str) -> Event {
    Event {
        rev,
        ts: T0 + secs * 1000,
        kind,
        app: Some("shop".into()),
        host: None,
        instance: None,
        operation_id: None,
        message: message.into(),
        changes: vec![],
        audit: None,
    }
}

fn record(verb: &str, by: &str, request: serde_json::Value, outcome: AuditOutcome) -> Box<AuditRecord> {
    Box::new(AuditRecord {
        verb: verb.into(),
        by: Some(by.into()),
        command_id: "c-1".into(),
        source: format!("ctl/{by}@jump"),
        operator: Some(Operator::from_parts(by, "jump", None, Some(by.into()))),
        request,
        outcome,
        repeated: None,
    })
}

fn accepted(op: Option<&str>) -> AuditOutcome {
    AuditOutcome { accepted: true, operation_id: op.map(str::to_string), detail: None, error: None }
}

fn alert(state: AlertState, acked_by: Option<&str>) -> Change {
    let subject = AlertSubject::Instance("shop-1".into());
    Change::Alert(Alert {
        id: Alert::id_of(AlertRule::CrashLoop, &subject),
        rule: AlertRule::CrashLoop,
        subject,
        state,
        since: T0,
        changed_at: T0,
        resolved_at: None,
        summary: "3 crashes in 5m".into(),
        causes: vec![],
        acked_by: acked_by.map(str::to_string),
    })
}

fn crashed_instance() -> Change {
    let mut i: Instance = serde_json::from_value(json!({
        "id": "shop-1", "app": "shop", "version": "1.0.0", "index": 1, "host": "h1",
        "ip": "10.0.0.1", "port": 8080, "endpoint": "10.0.0.1:8080", "state": "crashed"
    }))
    .expect("instance");
    i.last_exit = Some(ExitInfo::new(137, true, T0));
    Change::Instance(i)
}

fn operation(id: &str, kind: OperationKind, target: &str) -> Change {
    serde_json::from_value::<Operation>(json!({
        "id": id, "kind": kind, "app": "shop", "target": target,
        "state": "running", "started_at": T0
    }))
    .map(Change::Operation)
    .unwrap_or_else(|e| panic!("operation: {e}"))
}

fn ended(id: &str, state: OperationState, error: Option<&str>) -> Change {
    Change::OperationEnded(OperationEnded {
        id: id.into(),
        state,
        error: error.map(str::to_string),
        finished_at: T0,
        steps: StepCounts::default(),
    })
}

/// A scripted incident: a deploy that fails, a crash, the alert, a restart, a note, an
/// exec with its recording, the alert resolved; and events the handover leaves out.
fn incident() -> Vec<Event> {
    let mut deploy = event(1, 0, EventKind::OperationStarted, "deploy shop@2.0.0 x1");
    deploy.operation_id = Some("op-d".into());
    deploy.changes = vec![operation("op-d", OperationKind::Deploy, "shop@2.0.0 x1")];
    let mut deploy_failed = event(2, 30, EventKind::OperationFailed, "deploy failed");
    deploy_failed.operation_id = Some("op-d".into());
    deploy_failed.changes = vec![ended("op-d", OperationState::Failed, Some("health check | timed out"))];
    let mut crash = event(3, 60, EventKind::InstanceCrashed, "shop-1 crashed: OOM killed");
    crash.instance = Some("shop-1".into());
    crash.changes = vec![crashed_instance()];
    let mut firing = event(4, 61, EventKind::AlertFiring, "crash_loop on instance/shop-1: 3 crashes in 5m");
    firing.changes = vec![alert(AlertState::Firing, None)];
    let mut acked = event(5, 90, EventKind::AlertAcknowledged, "acknowledged");
    acked.changes = vec![alert(AlertState::Acknowledged, Some("alice@jump"))];
    let mut restart = event(6, 120, EventKind::Audit, "alice: restart");
    restart.audit = Some(record("restart", "alice", json!({"instance": "shop-1"}), accepted(Some("op-r"))));
    let mut restart_op = event(7, 121, EventKind::OperationStarted, "restart shop-1");
    restart_op.operation_id = Some("op-r".into());
    restart_op.changes = vec![operation("op-r", OperationKind::Restart, "instance shop-1")];
    let mut restarted = event(8, 125, EventKind::OperationSucceeded, "restarted");
    restarted.operation_id = Some("op-r".into());
    restarted.changes = vec![ended("op-r", OperationState::Succeeded, None)];
    let mut note = event(9, 150, EventKind::Note, "rolled back by hand | see *INC-42*");
    note.audit = Some(record("note", "bob", json!({"text": "x"}), accepted(None)));
    let mut exec_start = event(10, 155, EventKind::Audit, "bob: exec started");
    let request = json!({"instance": "shop-1", "command": "sh", "session": "s-abc", "started_at": T0});
    exec_start.audit = Some(record("exec", "bob", request, accepted(None)));
    let mut exec = event(10, 160, EventKind::Audit, "bob: exec");
    let request = json!({"instance": "shop-1", "command": "sh", "session": "s-abc", "ended_at": T0, "recording": "s-abc"});
    exec.audit = Some(record("exec", "bob", request, accepted(None)));
    let mut refused = event(11, 170, EventKind::Audit, "bob: route");
    let no = AuditOutcome {
        accepted: false,
        operation_id: None,
        detail: None,
        error: Some(WireError::not_found("no app \"x\"")),
    };
    refused.audit = Some(record("route.disable", "bob", json!({"app": "x", "backend": "1.2.3.4:80"}), no));
    let mut resolved = event(12, 200, EventKind::AlertResolved, "resolved");
    resolved.changes = vec![alert(AlertState::Resolved, None)];
    let noise = event(13, 210, EventKind::HealthCheck, "healthy");
    vec![
        deploy,
        deploy_failed,
        crash,
        firing,
        acked,
        restart,
        restart_op,
        restarted,
        note,
        exec_start,
        exec,
        refused,
        resolved,
        noise,
    ]
}

#[test]
fn the_handover_lists_what_happened_in_time_order() {
    let t = build("prod", T0, T0 + 3_600_000, &incident());
    let kinds: Vec<&str> = t
        .entries
        .iter()
        .map(|e| match &e.what {
            What::Alert { .. } => "alert",
            What::Action { .. } => "action",
            What::Note { .. } => "note",
            What::Deploy { .. } => "deploy",
            What::Crash { .. } => "crash",
        })
        .collect();
    assert_eq!(
        kinds,
        ["deploy", "deploy", "crash", "alert", "alert", "action", "note", "action", "action", "alert"]
    );
    assert_eq!(t.summary, Summary { alerts: 3, actions: 3, notes: 1, deploys: 1, crashes: 1 });
    let restart = &t.entries[5].what;
    let What::Action { who, outcome, ok, .. } = restart else { panic!("{restart:?}") };
    assert_eq!((who.as_str(), outcome.as_str(), *ok), ("alice@jump", "succeeded (op-r)", Some(true)));
    let What::Crash { exit_code, signal, oom, .. } = &t.entries[2].what else { panic!() };
    assert_eq!((*exit_code, *signal, *oom), (Some(137), Some(9), true));
    let What::Note { who, text } = &t.entries[6].what else { panic!() };
    assert_eq!((who.as_str(), text.as_str()), ("bob@jump", "rolled back by hand | see *INC-42*"));
    // The window holds: nothing before `since` or after `until`.
    let late = build("prod", T0 + 100_000, T0 + 155_000, &incident());
    assert_eq!(late.entries.iter().map(|e| e.rev).collect::<Vec<_>>(), [6, 9]);
}

#[test]
fn the_json_has_stable_field_names() {
    let t = build("prod", T0, T0 + 3_600_000, &incident());
    let v = serde_json::to_value(&t).expect("json");
    assert_eq!(v["summary"]["notes"], 1);
    let note = &v["entries"][6];
    assert_eq!(note["kind"], "note");
    assert_eq!(note["who"], "bob@jump");
    assert_eq!(note["time"], "2026-12-06 10:02:30 UTC");
    let exec = &v["entries"][7];
    assert_eq!((exec["kind"].as_str(), exec["recording"].as_str()), (Some("action"), Some("s-abc")));
    let back: Timeline = serde_json::from_value(v).expect("reads back");
    assert_eq!(back, t);
}

#[test]
fn the_markdown_is_pasteable() {
    let t = build("nats://127.0.0.1:4222", T0, T0 + 3_600_000, &incident());
    insta::assert_snapshot!(t.markdown());
    let empty = build("prod", T0, T0 + 1000, &[]);
    assert!(
        empty.markdown().contains("0 alerts, 0 actions, 0 notes, 0 deploys, 0 crashes."),
        "{}",
        empty.markdown()
    );
}

#[test]
fn markdown_escapes_what_would_break_a_table() {
    assert_eq!(md_escape("a | b *c* <x>\nnext"), "a \\| b \\*c\\* \\<x\\> next");
}

#[test]
fn a_note_is_one_line_of_1_to_2000_characters() {
    assert_eq!(check_note("  db failover done  "), Ok("db failover done"));
    assert!(check_note("   ").unwrap_err().contains("empty"));
    assert!(check_note(&"é".repeat(2000)).is_ok(), "2000 characters of 2 bytes");
    assert!(
        check_note(&"€".repeat(1400)).unwrap_err().contains("at most 4000 bytes of UTF-8; this one has 4200")
    );
    assert!(
        check_note(&"é".repeat(2001)).unwrap_err().contains("at most 2000 characters; this one has 2001")
    );
    assert!(check_note("a\nb").unwrap_err().contains("one line"));
    assert!(check_note("a\u{1b}[2Jb").unwrap_err().contains("control"));
}

#[test]
fn the_author_is_the_user_with_the_login_when_it_differs() {
    let r = record("note", "alice", json!({}), accepted(None));
    assert_eq!(author(&r), "alice@jump");
    let mut r = r;
    r.by = Some("ops".into());
    assert_eq!(author(&r), "ops (alice@jump)");
    r.operator = None;
    assert_eq!(author(&r), "ops");
}
