//! Marks: rows marked for a bulk action, the instances behind them, and how a bulk
//! confirmation names its targets.

use std::collections::BTreeSet;

use super::rows::RowKey;
use super::{App, Level};
use crate::actions::{Effect, Panel};

impl App {
    pub(super) fn mark(&mut self) -> Vec<Effect> {
        if matches!(self.panel, Panel::Events | Panel::Audit) {
            self.say(
                Level::Warn,
                format!("nothing to mark in {}: marks are for bulk actions", self.panel.title()),
            );
            return vec![];
        }
        let Some(key) = self.selected_key(self.panel) else { return vec![] };
        let marks = &mut self.views[self.panel.index()].marks;
        if !marks.remove(&key) {
            marks.insert(key);
        }
        let n = marks.len();
        let what = match self.panel {
            Panel::Routes => "r restarts, e enables/disables, x removes them",
            Panel::Alerts => "a acknowledges them",
            _ => "r restarts them",
        };
        self.say(Level::Info, format!("{n} marked ({what}; Esc clears)"));
        self.move_by(1)
    }

    /// The instance ids behind the marked rows of the current panel.
    pub(super) fn marked_instances(&self) -> Vec<String> {
        let f = &self.replica.fleet;
        let marks = &self.view(self.panel).marks;
        let mut ids: Vec<String> = Vec::new();
        for key in marks {
            match (self.panel, key) {
                (Panel::Instances, RowKey::Id(id)) if f.instances.contains_key(id) => ids.push(id.clone()),
                (Panel::Hosts, RowKey::Id(h)) => ids.extend(f.instances_on(h).map(|i| i.id.clone())),
                (Panel::Apps, RowKey::Id(a)) => ids.extend(f.instances_of(a).map(|i| i.id.clone())),
                (Panel::Routes, RowKey::Route(a, b)) => {
                    ids.extend(f.instances_of(a).filter(|i| i.endpoint == *b).map(|i| i.id.clone()))
                }
                _ => {}
            }
        }
        let mut seen = BTreeSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        ids
    }
}

/// How many targets a bulk confirmation names before it cuts the list with `…`.
const NAMED_TARGETS: usize = 3;

/// The targets of a bulk action for its confirmation: the first few, then `…`.
pub(super) fn named(targets: impl Iterator<Item = String>) -> String {
    let mut shown: Vec<String> = Vec::with_capacity(NAMED_TARGETS + 1);
    for (n, t) in targets.enumerate() {
        if n == NAMED_TARGETS {
            shown.push("…".into());
            break;
        }
        shown.push(t);
    }
    shown.join(", ")
}

#[cfg(test)]
#[path = "marks_tests.rs"]
mod tests;
