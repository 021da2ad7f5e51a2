//! Following the newest row (Events, Audit): after each of the operator's actions, whether
//! the panel still follows like `tail -f` or is paused on the row the operator chose.

use super::App;
use crate::actions::{Action, Panel};

impl App {
    /// After the operator's action: a panel that follows its newest row keeps following
    /// while its selection is on that row, and pauses once it is elsewhere.
    pub(super) fn note_follow(&mut self) {
        let panel = self.panel;
        if !super::follows_newest(panel) {
            return;
        }
        let sorted = self.view(panel).sort.is_some();
        let on_newest = super::newest_row(&self.rows(panel), sorted)
            .is_none_or(|n| n == self.selections[panel.index()].index);
        self.selections[panel.index()].paused = !on_newest;
    }

    /// Whether a following panel follows its newest row now (`None` for other panels),
    /// and the key that goes back to it when it is the first or the last row (a sort
    /// whose ties put it elsewhere has none).
    pub fn follow_state(&self, panel: Panel) -> Option<(bool, Option<&str>)> {
        if !super::follows_newest(panel) {
            return None;
        }
        let rows = self.rows(panel);
        let back = match super::newest_row(&rows, self.view(panel).sort.is_some()) {
            Some(0) | None => Some(Action::Top),
            Some(n) if n + 1 == rows.len() => Some(Action::Bottom),
            Some(_) => None,
        };
        let key = back.and_then(|b| self.keymap.label_for(b).split('/').next());
        Some((!self.selections[panel.index()].paused, key))
    }
}

#[cfg(test)]
#[path = "following_tests.rs"]
mod tests;
