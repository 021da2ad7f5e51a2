//! The Alerts panel's model: the controller's alerts from the replica, plus the one alert
//! the cockpit raises itself, `no_controller`, while the controller is silent. The panel's
//! rows, the header's count and `a`/Enter all read them here, so they agree.

use std::borrow::Cow;

use super::rows::RowKey;
use crate::backend::Replica;
use crate::protocol::{Alert, AlertRule, AlertState, AlertSubject};

/// The id of the cockpit's own `no_controller` alert.
pub fn no_controller_id() -> String {
    Alert::id_of(AlertRule::NoController, &AlertSubject::Controller)
}

/// The cockpit's `no_controller` alert while the controller is silent (judged at the last
/// tick, as the rows that show freshness are), firing since it was last heard. Never sent:
/// no controller is there to keep it.
pub fn no_controller(replica: &Replica) -> Option<Alert> {
    if !replica.silence.controller {
        return None;
    }
    let heard = replica.controller_heard;
    Some(Alert {
        id: no_controller_id(),
        rule: AlertRule::NoController,
        subject: AlertSubject::Controller,
        state: AlertState::Firing,
        since: heard,
        changed_at: heard,
        resolved_at: None,
        summary: "the controller's beacon stopped: the other alerts are as last heard".into(),
        causes: vec![],
        acked_by: None,
    })
}

/// An alert by id, the cockpit's own included.
pub fn by_id<'a>(replica: &'a Replica, id: &str) -> Option<Cow<'a, Alert>> {
    match replica.fleet.alerts.get(id) {
        Some(a) => Some(Cow::Borrowed(a)),
        None => no_controller(replica).filter(|a| a.id == id).map(Cow::Owned),
    }
}

/// Firing first, then acknowledged, then resolved.
fn rank(state: AlertState) -> u8 {
    match state {
        AlertState::Firing => 0,
        AlertState::Acknowledged => 1,
        AlertState::Resolved => 2,
    }
}

/// When an alert last became what it is: a resolved one when it resolved, an active one
/// when it began firing. Newer sorts first within its state.
fn newest(a: &Alert) -> u64 {
    match a.state {
        AlertState::Resolved => a.resolved_at.unwrap_or(a.changed_at),
        _ => a.since,
    }
}

/// The panel's natural order: by state, newest first within each, then by id.
pub fn natural(replica: &Replica) -> Vec<RowKey> {
    let own = no_controller(replica);
    let mut all: Vec<&Alert> = replica.fleet.alerts.values().chain(own.as_ref()).collect();
    all.sort_by(|a, b| {
        rank(a.state).cmp(&rank(b.state)).then(newest(b).cmp(&newest(a))).then(a.id.cmp(&b.id))
    });
    all.into_iter().map(|a| RowKey::Id(a.id.clone())).collect()
}

/// Rows of the panel: the stored alerts and the cockpit's own.
pub fn total(replica: &Replica) -> usize {
    replica.fleet.alerts.len() + usize::from(replica.silence.controller)
}

/// Active alerts for the header: firing and acknowledged, the cockpit's own included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Active {
    pub firing: usize,
    pub acknowledged: usize,
}

pub fn active(replica: &Replica) -> Active {
    let mut out = Active { firing: usize::from(replica.silence.controller), acknowledged: 0 };
    for a in replica.fleet.alerts.values() {
        match a.state {
            AlertState::Firing => out.firing += 1,
            AlertState::Acknowledged => out.acknowledged += 1,
            AlertState::Resolved => {}
        }
    }
    out
}

/// How long a silence on `subject` still runs at `now`, if one does.
pub fn silenced_for(replica: &Replica, subject: &AlertSubject, now: u64) -> Option<u64> {
    let s = replica.fleet.silences.get(&subject.to_string())?;
    (s.until > now).then(|| s.until - now)
}
