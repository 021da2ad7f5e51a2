//! Transitions: which findings fire (after their rule's threshold), which alerts resolve
//! (once their condition has stayed clear for `resolve_after`, or at once when their
//! subject is gone), and which resolved alerts are forgotten beyond `RESOLVED_KEPT`.

use std::collections::{HashMap, HashSet};

use super::config::AlertConfig;
use super::rules::{Evaluation, Finding};
use crate::protocol::{Alert, AlertRule, AlertState, AlertSubject, Change, EventKind, Fleet};

/// How many resolved alerts the fleet keeps; active ones are always kept.
pub(crate) const RESOLVED_KEPT: usize = 100;

/// Since when each condition has held without firing yet, and since when each active
/// alert's condition has been clear. Reset when the controller was off the bus or fenced:
/// what it did not see proves nothing.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pending: HashMap<String, u64>,
    clear: HashMap<String, u64>,
}

impl Tracker {
    pub fn reset(&mut self) {
        self.pending.clear();
        self.clear.clear();
    }
}

/// One transition: the event's kind and message, and the alert as it now is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transition {
    pub kind: EventKind,
    pub message: String,
    pub alert: Alert,
    /// Resolved alerts forgotten with this transition.
    pub removed: Vec<String>,
}

pub(crate) fn decide(
    fleet: &Fleet,
    eval: Evaluation,
    tracker: &mut Tracker,
    cfg: &AlertConfig,
    now: u64,
) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut holding: HashSet<String> = HashSet::new();
    for f in eval.findings {
        let id = Alert::id_of(f.rule, &f.subject);
        holding.insert(id.clone());
        tracker.clear.remove(&id);
        let existing = fleet.alerts.get(&id);
        if existing.is_some_and(|a| a.state.is_active()) {
            tracker.pending.remove(&id);
            continue;
        }
        let first = *tracker.pending.entry(id.clone()).or_insert(now);
        if now.saturating_sub(first) >= f.after.as_millis() as u64 {
            tracker.pending.remove(&id);
            out.push(fire(id, f, now));
        }
    }
    tracker.pending.retain(|id, _| holding.contains(id));
    for alert in fleet.alerts.values().filter(|a| a.state.is_active()) {
        if holding.contains(&alert.id) || !judged_here(alert.rule) || eval.unjudged.contains(&alert.rule) {
            continue;
        }
        let clear_since = *tracker.clear.entry(alert.id.clone()).or_insert(now);
        let held = now.saturating_sub(clear_since) >= cfg.resolve_after.as_millis() as u64;
        if held || !subject_exists(fleet, &alert.subject) {
            tracker.clear.remove(&alert.id);
            out.push(resolve(alert, now));
        }
    }
    let active: HashSet<&String> =
        fleet.alerts.values().filter(|a| a.state.is_active()).map(|a| &a.id).collect();
    tracker.clear.retain(|id, _| active.contains(id));
    bound_resolved(fleet, &mut out);
    out
}

/// The rules this controller raises: `no_controller` is the cockpit's, and a rule from a
/// newer controller is left as it is.
fn judged_here(rule: AlertRule) -> bool {
    !matches!(rule, AlertRule::NoController | AlertRule::Unknown)
}

fn fire(id: String, f: Finding, now: u64) -> Transition {
    let message = format!("{} firing on {}: {}", f.rule.as_str(), f.subject, f.summary);
    let alert = Alert {
        id,
        rule: f.rule,
        subject: f.subject,
        state: AlertState::Firing,
        since: now,
        changed_at: now,
        resolved_at: None,
        summary: f.summary,
        causes: f.causes,
        acked_by: None,
    };
    Transition { kind: EventKind::AlertFiring, message, alert, removed: vec![] }
}

fn resolve(alert: &Alert, now: u64) -> Transition {
    let mut a = alert.clone();
    a.state = AlertState::Resolved;
    a.changed_at = now;
    a.resolved_at = Some(now);
    let message = format!("{} resolved on {} (was: {})", a.rule.as_str(), a.subject, a.summary);
    Transition { kind: EventKind::AlertResolved, message, alert: a, removed: vec![] }
}

pub(crate) fn subject_exists(fleet: &Fleet, subject: &AlertSubject) -> bool {
    match subject {
        AlertSubject::Host(h) => fleet.hosts.contains_key(h),
        AlertSubject::App(a) => fleet.apps.contains_key(a),
        AlertSubject::Instance(i) => fleet.instances.contains_key(i),
        AlertSubject::Route { app, backend } => fleet.routes.contains_key(&(app.clone(), backend.clone())),
        AlertSubject::Controller => true,
    }
}

/// Past `RESOLVED_KEPT` resolved alerts (counting this tick's), the oldest are removed by
/// the last resolving transition; an active alert, or one firing again now, never is.
fn bound_resolved(fleet: &Fleet, out: &mut [Transition]) {
    let changed: HashMap<&str, &Alert> = out.iter().map(|t| (t.alert.id.as_str(), &t.alert)).collect();
    let mut resolved: Vec<(u64, &str)> = fleet
        .alerts
        .values()
        .filter(|a| !changed.contains_key(a.id.as_str()) && !a.state.is_active())
        .map(|a| (a.resolved_at.unwrap_or(a.changed_at), a.id.as_str()))
        .chain(changed.values().filter(|a| !a.state.is_active()).map(|a| (a.changed_at, a.id.as_str())))
        .collect();
    if resolved.len() <= RESOLVED_KEPT {
        return;
    }
    resolved.sort();
    let excess: Vec<String> =
        resolved[..resolved.len() - RESOLVED_KEPT].iter().map(|(_, id)| id.to_string()).collect();
    let Some(last) = out.iter_mut().rev().find(|t| t.kind == EventKind::AlertResolved) else { return };
    last.removed = excess;
}

/// The changes a transition's event carries.
pub(crate) fn changes(t: &Transition) -> Vec<Change> {
    let mut changes = vec![Change::Alert(t.alert.clone())];
    changes.extend(
        t.removed.iter().filter(|id| **id != t.alert.id).map(|id| Change::AlertRemoved { id: id.clone() }),
    );
    changes
}
