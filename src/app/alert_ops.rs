//! The Alerts panel's keys: `a` acknowledges the selected (or marked) alerts through the
//! confirm dialog, Enter jumps to an alert's subject in its own panel.

use std::collections::BTreeSet;

use super::marks::named;
use super::rows::RowKey;
use super::{App, Level, alerts};
use crate::actions::{Effect, Panel};
use crate::protocol::clock::age;
use crate::protocol::{AlertAckRequest, AlertRule, AlertState, AlertSubject, ControlCommand, SilenceRequest};

/// What the status line says of the cockpit's own alert: what it means, and that only the
/// controller's return ends it.
pub const NO_CONTROLLER_MEANS: &str = "no_controller is the cockpit's own alert: no beacon from the \
     controller, so nothing shown is live; it goes when the controller is heard again";

impl App {
    /// `a`: acknowledge the marked alerts, or the selected one. The cockpit's own alert and
    /// those already acknowledged or resolved are left out; nothing left, nothing sent.
    pub(super) fn ask_ack(&mut self) -> Vec<Effect> {
        if self.panel != Panel::Alerts {
            self.say(Level::Warn, "a acknowledges alerts: on the Alerts panel (7)".into());
            return vec![];
        }
        let marks = &self.view(Panel::Alerts).marks;
        let keys: Vec<RowKey> = match marks.is_empty() {
            true => self.selected_key(Panel::Alerts).into_iter().collect(),
            false => marks.iter().cloned().collect(),
        };
        let mut ids = Vec::new();
        let mut left_out = Vec::new();
        for key in keys {
            let RowKey::Id(id) = key else { continue };
            match alerts::by_id(&self.replica, &id) {
                Some(a) if a.rule == AlertRule::NoController => left_out.push(NO_CONTROLLER_MEANS.into()),
                Some(a) if a.state == AlertState::Firing => ids.push(id),
                Some(a) => left_out.push(format!("{id} is {} already", a.state.as_str())),
                None => left_out.push(format!("{id} is gone")),
            }
        }
        if ids.is_empty() {
            let why = match left_out.as_slice() {
                [] => "no alert to acknowledge".to_string(),
                [one] => format!("nothing sent: {one}"),
                many => format!("nothing sent: the {} alerts are not firing", many.len()),
            };
            self.say(Level::Warn, why);
            return vec![];
        }
        let question = match (ids.as_slice(), left_out.len()) {
            ([one], 0) => format!("Acknowledge {one}? It is recorded as yours."),
            (many, 0) => format!("Acknowledge {} alerts ({})?", many.len(), named(many.iter().cloned())),
            (many, skipped) => format!(
                "Acknowledge {} alert(s) ({})? {skipped} marked not firing are left out.",
                many.len(),
                named(many.iter().cloned())
            ),
        };
        let commands = ids.into_iter().map(|id| ControlCommand::AlertAck(AlertAckRequest { id })).collect();
        // An acknowledgment names no app: a production context types its own name.
        self.confirm(question, commands, &BTreeSet::new())
    }

    /// `:ack ID`, checked by the palette: the confirm dialog for that one alert.
    pub(super) fn ask_ack_id(&mut self, id: String) -> Vec<Effect> {
        let question = format!("Acknowledge {id}? It is recorded as yours.");
        let commands = vec![ControlCommand::AlertAck(AlertAckRequest { id })];
        self.confirm(question, commands, &BTreeSet::new())
    }

    /// `:silence SUBJECT DURATION [REASON]`: the confirm dialog, saying what fires on it.
    pub(super) fn ask_silence(&mut self, req: SilenceRequest) -> Vec<Effect> {
        let subject = req.subject.to_string();
        let firing = self
            .replica
            .fleet
            .alerts
            .values()
            .filter(|a| a.subject == req.subject && a.state.is_active())
            .count();
        let question = match req.for_ms {
            0 => format!("Lift the silence on {subject}? Its alerts reach the webhooks again."),
            ms => format!(
                "Silence {subject} for {}? {firing} active alert(s) on it; they still show, webhooks wait.",
                age(ms)
            ),
        };
        self.confirm(question, vec![ControlCommand::AlertSilence(req)], &BTreeSet::new())
    }

    /// Enter on the Alerts panel: the subject's panel with the subject selected; a filter
    /// that would hide it is cleared, and said. A subject gone, or the controller, is said.
    pub(super) fn jump_to_subject(&mut self) -> Vec<Effect> {
        let Some(alert) = self.selected_alert() else { return vec![] };
        let subject = alert.subject.clone();
        let f = &self.replica.fleet;
        let target = match &subject {
            AlertSubject::Host(h) => f.hosts.contains_key(h).then(|| (Panel::Hosts, RowKey::Id(h.clone()))),
            AlertSubject::Instance(i) => {
                f.instances.contains_key(i).then(|| (Panel::Instances, RowKey::Id(i.clone())))
            }
            AlertSubject::App(a) => f.apps.contains_key(a).then(|| (Panel::Apps, RowKey::Id(a.clone()))),
            AlertSubject::Route { app, backend } => f
                .routes
                .contains_key(&(app.clone(), backend.clone()))
                .then(|| (Panel::Routes, RowKey::Route(app.clone(), backend.clone()))),
            AlertSubject::Controller => {
                self.say(Level::Info, NO_CONTROLLER_MEANS.into());
                return vec![];
            }
        };
        let Some((panel, key)) = target else {
            self.say(Level::Warn, format!("{subject} is gone from the fleet: nothing to show"));
            return vec![];
        };
        self.select_row(panel, &key, &subject.to_string());
        vec![]
    }

    /// Shows `panel` with the row `key` selected, clearing a filter that hides it.
    fn select_row(&mut self, panel: Panel, key: &RowKey, name: &str) {
        self.show(panel);
        self.refresh_views();
        let mut note = String::new();
        if !self.rows(panel).contains(key) {
            if let Some(filter) = self.view(panel).filter.as_ref() {
                note = format!(" (filter {} cleared: it hid it)", filter.label());
            }
            self.views[panel.index()].set_filter(None);
            self.refresh_views();
        }
        let Some(pos) = self.rows(panel).iter().position(|k| k == key) else {
            self.say(Level::Warn, format!("{name} is not in {}", panel.title()));
            return;
        };
        let page = self.page_rows;
        let count = self.row_count(panel);
        let sel = &mut self.selections[panel.index()];
        sel.index = pos;
        sel.offset = super::window_start(pos, sel.offset, page, count);
        self.say(Level::Info, format!("{name} in {}{note}", panel.title()));
    }
}

#[cfg(test)]
#[path = "alert_ops_tests.rs"]
mod tests;
