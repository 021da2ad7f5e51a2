//! The handover timeline: from the event history of a window, what an on-call engineer
//! writes down at the end of an incident (alerts, operator actions with who and how they
//! ended, notes, deploys, crash reasons, links to exec recordings), in time order, as
//! Markdown for a ticket or as JSON. Pure: `ctl timeline` and the cockpit's `:export`
//! fetch the events and write the result. Also the one rule for a note's text.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::audit::{AuditRecord, OperationEnd, Verdict};
use super::clock::datetime;
use super::event::{Change, Event, EventKind};
use super::model::{Operation, OperationKind, OperationState};

/// The most characters a note keeps, after trimming.
pub const NOTE_MAX_CHARS: usize = 2000;

/// The most bytes of a note's UTF-8: an event's message is cut past 4 KiB, and a note is
/// kept whole or refused, never cut.
pub const NOTE_MAX_BYTES: usize = 4000;

/// A note's text as it is kept: trimmed, 1 to [`NOTE_MAX_CHARS`] characters, one line
/// (a note is a line of the timeline, and a table row in its Markdown), without control
/// characters (they would reach terminals through `ctl events`).
pub fn check_note(text: &str) -> Result<&str, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("a note needs some text: it is empty".into());
    }
    let n = t.chars().count();
    if n > NOTE_MAX_CHARS {
        return Err(format!("a note is at most {NOTE_MAX_CHARS} characters; this one has {n}"));
    }
    if t.len() > NOTE_MAX_BYTES {
        return Err(format!("a note is at most {NOTE_MAX_BYTES} bytes of UTF-8; this one has {}", t.len()));
    }
    if t.contains(['\n', '\r']) {
        return Err("a note is one line: it may not contain a line break".into());
    }
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(format!("a note may not contain control characters (found {:?})", c));
    }
    Ok(t)
}

/// Who wrote a note or sent a command, short: the user the subject named, with the
/// client's login@host when it says more (`alice (alice@jump)`, `alice@jump`).
pub fn author(record: &AuditRecord) -> String {
    let login = record.operator.as_ref().map(|o| o.user.as_str()).filter(|u| !u.is_empty());
    match (record.by.as_deref().filter(|b| !b.is_empty()), login) {
        (Some(by), Some(login)) if login.split('@').next() != Some(by) => format!("{by} ({login})"),
        (_, Some(login)) => login.to_string(),
        _ => record.user(),
    }
}

/// The handover: a window of the history, summed up and listed in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The plane it covers (a context name or the NATS URL).
    pub plane: String,
    /// The window, ms since the Unix epoch.
    pub since: u64,
    pub until: u64,
    pub summary: Summary,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub alerts: usize,
    pub actions: usize,
    pub notes: usize,
    pub deploys: usize,
    pub crashes: usize,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// ms since the Unix epoch, and the same as `YYYY-MM-DD HH:MM:SS` UTC.
    pub ts: u64,
    pub time: String,
    /// The event's revision.
    pub rev: u64,
    #[serde(flatten)]
    pub what: What,
}

/// What happened; `kind` in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// `state`: firing, acknowledged or resolved.
    /// `by`: who acknowledged it.
    Alert {
        state: String,
        rule: String,
        subject: String,
        summary: String,
        by: Option<String>,
    },
    /// An operator command: `outcome` in words, `ok` false when refused or its operation
    /// failed (absent while unknown), `recording` the exec session to replay.
    Action {
        who: String,
        verb: String,
        what: String,
        outcome: String,
        ok: Option<bool>,
        operation_id: Option<String>,
        recording: Option<String>,
    },
    Note {
        who: String,
        text: String,
    },
    /// A deploy (a rollback is one too) started or ended: `state` started, succeeded or
    /// failed; `target` is `app@version xN`.
    Deploy {
        operation_id: String,
        app: String,
        target: String,
        state: String,
        error: Option<String>,
    },
    /// `reason` as the controller said it; exit code, signal and OOM when the runtime told.
    Crash {
        instance: String,
        app: Option<String>,
        reason: String,
        exit_code: Option<i32>,
        signal: Option<u8>,
        oom: bool,
    },
}

/// Builds the timeline of `events` (oldest first) within `since..=until`.
pub fn build(plane: &str, since: u64, until: u64, events: &[Event]) -> Timeline {
    let in_window = || events.iter().filter(|e| e.ts >= since && e.ts <= until);
    // How each operation ended, for the actions that started one.
    let ends: BTreeMap<String, OperationEnd> =
        events.iter().filter_map(OperationEnd::from_event).map(|end| (end.id.clone(), end)).collect();
    let ended = ended_sessions(events);
    let mut deploys: BTreeMap<&str, &Operation> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut summary = Summary::default();
    for e in in_window() {
        if started_session(e).is_some_and(|s| ended.contains(s)) {
            continue;
        }
        let Some(what) = entry_of(e, &ends, &mut deploys) else { continue };
        match &what {
            What::Alert { .. } => summary.alerts += 1,
            What::Action { .. } => summary.actions += 1,
            What::Note { .. } => summary.notes += 1,
            What::Deploy { state, .. } if state == "started" => summary.deploys += 1,
            What::Deploy { .. } => {}
            What::Crash { .. } => summary.crashes += 1,
        }
        entries.push(Entry { ts: e.ts, time: format!("{} UTC", datetime(e.ts)), rev: e.rev, what });
    }
    Timeline { plane: plane.to_string(), since, until, summary, entries }
}

/// The sessions (exec, port-forward) whose end is on record: their end's entry says it
/// all (how it ended, the recording), so their start's is left out.
fn ended_sessions(events: &[Event]) -> BTreeSet<&str> {
    events
        .iter()
        .filter_map(|e| {
            let req = &e.audit.as_deref()?.request;
            req.get("ended_at").filter(|v| !v.is_null())?;
            req.get("session")?.as_str()
        })
        .collect()
}

/// The session a session's start record names (an `AUDIT` event without `ended_at`).
fn started_session(e: &Event) -> Option<&str> {
    let req = &e.audit.as_deref()?.request;
    if req.get("ended_at").is_some_and(|v| !v.is_null()) {
        return None;
    }
    req.get("session")?.as_str()
}

/// The entry one event makes, if it is one the handover lists.
fn entry_of<'a>(
    e: &'a Event,
    ends: &BTreeMap<String, OperationEnd>,
    deploys: &mut BTreeMap<&'a str, &'a Operation>,
) -> Option<What> {
    match e.kind {
        EventKind::AlertFiring | EventKind::AlertAcknowledged | EventKind::AlertResolved => Some(alert(e)),
        EventKind::Audit => {
            let r = e.audit.as_deref()?;
            let end = r.outcome.operation_id.as_deref().and_then(|op| ends.get(op));
            let (verdict, outcome) = r.conclusion(end);
            let ok = match verdict {
                Verdict::Good => Some(true),
                Verdict::Bad => Some(false),
                Verdict::Pending | Verdict::Unknown => None,
            };
            let recording = r.request.get("recording").and_then(|v| v.as_str()).map(str::to_string);
            Some(What::Action {
                who: author(r),
                verb: r.verb.clone(),
                what: r.what(),
                outcome,
                ok,
                operation_id: r.outcome.operation_id.clone(),
                recording,
            })
        }
        EventKind::Note => {
            let who = e.audit.as_deref().map_or_else(|| "unknown".to_string(), author);
            Some(What::Note { who, text: e.message.clone() })
        }
        EventKind::OperationStarted => {
            let op = e.changes.iter().find_map(|c| match c {
                Change::Operation(op) if op.kind == OperationKind::Deploy => Some(op),
                _ => None,
            })?;
            deploys.insert(op.id.as_str(), op);
            Some(deploy(op, "started", None))
        }
        EventKind::OperationSucceeded | EventKind::OperationFailed => {
            let end = OperationEnd::from_event(e)?;
            let op = deploys.get(end.id.as_str())?;
            let state = if end.state == OperationState::Succeeded { "succeeded" } else { "failed" };
            Some(deploy(op, state, end.error))
        }
        EventKind::InstanceCrashed => Some(crash(e)),
        _ => None,
    }
}

fn deploy(op: &Operation, state: &str, error: Option<String>) -> What {
    What::Deploy {
        operation_id: op.id.clone(),
        app: op.app.clone(),
        target: op.target.clone(),
        state: state.to_string(),
        error,
    }
}

fn alert(e: &Event) -> What {
    let state = match e.kind {
        EventKind::AlertFiring => "firing",
        EventKind::AlertAcknowledged => "acknowledged",
        _ => "resolved",
    };
    let found = e.changes.iter().find_map(|c| match c {
        Change::Alert(a) => Some(a),
        _ => None,
    });
    match found {
        Some(a) => What::Alert {
            state: state.into(),
            rule: a.rule.as_str().into(),
            subject: a.subject.to_string(),
            // What the rule saw; the event's message for an alert that says nothing.
            summary: if a.summary.is_empty() { e.message.clone() } else { a.summary.clone() },
            by: a.acked_by.clone().filter(|_| e.kind == EventKind::AlertAcknowledged),
        },
        None => What::Alert {
            state: state.into(),
            rule: "?".into(),
            subject: "?".into(),
            summary: e.message.clone(),
            by: None,
        },
    }
}

fn crash(e: &Event) -> What {
    let inst = e.changes.iter().find_map(|c| match c {
        Change::Instance(i) => Some(i),
        _ => None,
    });
    let exit = inst.and_then(|i| i.last_exit);
    What::Crash {
        instance: e.instance.clone().or_else(|| inst.map(|i| i.id.clone())).unwrap_or_else(|| "?".into()),
        app: e.app.clone(),
        reason: e.message.clone(),
        exit_code: exit.map(|x| x.code),
        signal: exit.and_then(|x| x.signal),
        oom: exit.is_some_and(|x| x.oom),
    }
}

/// Text for a Markdown table cell: `|` and the characters Markdown acts on escaped, line
/// breaks as spaces, so whatever an operator typed stays in its cell and reads as typed.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl Timeline {
    /// The Markdown to paste into an incident ticket: a title with the window and the
    /// plane, a summary line, and a table in time order (UTC).
    pub fn markdown(&self) -> String {
        let s = &self.summary;
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let mut out = format!(
            "# Incident timeline: {} to {} UTC\n\nPlane: {}\n\n{}, {}, {}, {}, {}.\n\n",
            datetime(self.since),
            datetime(self.until),
            md_escape(&self.plane),
            plural(s.alerts, "alert"),
            plural(s.actions, "action"),
            plural(s.notes, "note"),
            plural(s.deploys, "deploy"),
            plural(s.crashes, "crash").replace("crashs", "crashes"),
        );
        if self.entries.is_empty() {
            out.push_str("Nothing happened in this window.\n");
            return out;
        }
        out.push_str("| Time (UTC) | What | Who | Details |\n|---|---|---|---|\n");
        for e in &self.entries {
            let (what, who, details) = e.what.cells();
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                datetime(e.ts),
                md_escape(&what),
                md_escape(&who),
                details
            ));
        }
        out
    }
}

impl What {
    /// The table's What, Who (plain text) and Details (Markdown, escaped here) cells.
    fn cells(&self) -> (String, String, String) {
        match self {
            What::Alert { state, rule, subject, summary, by } => (
                format!("alert {state}"),
                by.clone().unwrap_or_default(),
                format!("`{}` on `{}`: {}", code(rule), code(subject), md_escape(summary)),
            ),
            What::Action { who, what, outcome, recording, .. } => {
                let link = recording
                    .as_ref()
                    .map(|r| format!(" (recording: `quarterdeck ctl exec-replay {}`)", code(r)))
                    .unwrap_or_default();
                ("action".into(), who.clone(), format!("{} → {}{link}", md_escape(what), md_escape(outcome)))
            }
            What::Note { who, text } => ("note".into(), who.clone(), md_escape(text)),
            What::Deploy { target, state, error, operation_id, .. } => {
                let why = error.as_ref().map(|e| format!(": {}", md_escape(e))).unwrap_or_default();
                (
                    format!("deploy {state}"),
                    String::new(),
                    format!("{} ({}){why}", md_escape(target), md_escape(operation_id)),
                )
            }
            // The controller's messages name the instance first; one that does not gets it.
            What::Crash { instance, reason, .. } if reason.starts_with(instance.as_str()) => {
                ("crash".into(), String::new(), md_escape(reason))
            }
            What::Crash { instance, reason, .. } => {
                ("crash".into(), String::new(), format!("{}: {}", md_escape(instance), md_escape(reason)))
            }
        }
    }
}

/// Text inside a Markdown code span: backticks would end it and `|` the table cell.
fn code(s: &str) -> String {
    s.replace('`', "'").replace('|', "\\|")
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
