//! Sorting a panel: the next or previous column, or the column a letter names, and the
//! status line that says which.

use super::rows::SortStep;
use super::{App, Level};
use crate::actions::Effect;

impl App {
    pub(super) fn sort(&mut self, step: SortStep) -> Vec<Effect> {
        let panel = self.panel;
        let titles = super::columns::titles(panel);
        let view = &mut self.views[panel.index()];
        let next = match super::rows::next_sort(view.sort, titles, step) {
            Ok(next) => next,
            Err(why) => {
                self.say(Level::Warn, why);
                return vec![];
            }
        };
        view.set_sort(next);
        let text = match next {
            Some(s) => {
                format!("sorted by {} {}", titles[s.column], if s.descending { "↓" } else { "↑" })
            }
            None => "natural order".into(),
        };
        self.say(Level::Info, text);
        vec![]
    }
}
