//! `/`: the filter as it is typed, applied at each key.

use super::rows::Filter;
use super::{App, Overlay};
use crate::actions::{Action, Effect};

impl App {
    pub(super) fn update_filter(&mut self, action: Action) -> Vec<Effect> {
        let Some(Overlay::Filter(text)) = self.overlays.last_mut() else { return vec![] };
        match action {
            Action::Input(c) => text.push(c),
            Action::Backspace => {
                text.pop();
            }
            Action::ClearInput => text.clear(),
            Action::Submit => {
                self.overlays.pop();
                return vec![];
            }
            Action::Back | Action::Cancelled | Action::Quit => {
                self.overlays.pop();
                self.views[self.panel.index()].set_filter(None);
                return vec![];
            }
            _ => return vec![],
        }
        // The filter applies as it is typed.
        let filter = Filter::parse(text);
        self.views[self.panel.index()].set_filter(filter);
        vec![]
    }
}
