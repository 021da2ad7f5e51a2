//! A click on a row of the current panel (the terminal layer found which row was drawn
//! under the pointer): the first selects it, a second on the selected row opens its detail,
//! like Enter.

use super::{App, Overlay};
use crate::actions::Effect;

impl App {
    pub(super) fn click_row(&mut self, index: usize) -> Vec<Effect> {
        if self.overlay().is_some() || index >= self.row_count(self.panel) {
            return vec![];
        }
        let sel = &mut self.selections[self.panel.index()];
        if sel.index == index {
            self.overlays.push(Overlay::Detail);
        } else {
            // The window stays where it was drawn: the row clicked is on it.
            sel.index = index;
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use crate::actions::{Action, Effect, Panel};
    use crate::app::Overlay;

    #[test]
    fn a_click_selects_a_second_opens_and_a_row_past_the_end_is_nothing() {
        let mut app = crate::views::harness::fixture_app(20);
        app.update(Action::ShowPanel(Panel::Instances));
        app.update(Action::ClickRow(3));
        assert_eq!(app.selection().index, 3);
        assert!(app.overlay().is_none());
        app.update(Action::ClickRow(3));
        assert!(matches!(app.overlay(), Some(Overlay::Detail)));
        // Under a dialog, and past the last row, a click changes nothing.
        app.update(Action::ClickRow(4));
        assert_eq!(app.selection().index, 3);
        app.update(Action::Back);
        let count = app.row_count(Panel::Instances);
        app.update(Action::ClickRow(count));
        assert_eq!(app.selection().index, 3);
    }

    #[test]
    fn m_toggles_mouse_capture() {
        let mut app = crate::views::harness::fixture_app(0);
        assert!(app.mouse);
        assert_eq!(app.update(Action::Mouse), vec![Effect::MouseCapture(false)]);
        assert!(!app.mouse);
        assert_eq!(app.update(Action::Mouse), vec![Effect::MouseCapture(true)]);
    }
}
