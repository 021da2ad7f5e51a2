//! Mouse input: a click selects the table row under it, the wheel scrolls. The screen
//! layout is the views' (`views::TABLE_FIRST_ROW`), so a click maps to the row drawn there.

use super::{App, Overlay};
use crate::actions::Effect;

impl App {
    /// A left click at a screen cell: on a table row, selects it; a second click on the
    /// selected row opens its detail, like Enter.
    /// A click on a tab shows its panel.
    pub(super) fn click(&mut self, column: u16, row: u16) -> Vec<Effect> {
        if self.overlay().is_some() {
            return vec![];
        }
        if row == crate::views::TABS_ROW {
            return match crate::views::tab_at(column) {
                Some(panel) => self.update(crate::actions::Action::ShowPanel(panel)),
                None => vec![],
            };
        }
        let Some(on_screen) = row.checked_sub(crate::views::TABLE_FIRST_ROW).map(usize::from) else {
            return vec![];
        };
        let count = self.row_count(self.panel);
        let page = self.page_rows.max(1);
        if on_screen >= page {
            return vec![];
        }
        let sel = &mut self.selections[self.panel.index()];
        let start = crate::views::window_start(sel.index, sel.offset, page, count);
        let index = start + on_screen;
        if index >= count {
            return vec![];
        }
        if sel.index == index {
            self.overlays.push(Overlay::Detail);
        } else {
            sel.index = index;
            sel.offset = start;
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {

    use crate::actions::{Action, Panel};
    use crate::app::{App, Overlay};

    use crate::views::TABLE_FIRST_ROW;

    fn app() -> App {
        let mut app = crate::app::fixture_app(20);
        app.page_rows = 5;
        app
    }

    #[test]
    fn a_click_selects_the_row_under_it_and_a_second_opens_its_detail() {
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Instances));
        app.update(Action::Click(10, TABLE_FIRST_ROW + 3));
        assert_eq!(app.selection().index, 3);
        // After scrolling the window down, a click maps through the window's start.
        app.update(Action::Scroll(3));
        app.update(Action::Scroll(3));
        let sel = app.selection();
        assert_eq!(sel.index, 9);
        let start = crate::views::window_start(sel.index, sel.offset, 5, app.row_count(Panel::Instances));
        app.update(Action::Click(10, TABLE_FIRST_ROW));
        assert_eq!(app.selection().index, start);
        assert!(app.overlay().is_none());
        app.update(Action::Click(10, TABLE_FIRST_ROW));
        assert!(matches!(app.overlay(), Some(Overlay::Detail)));
        // The header, tabs and below the table are not rows.
        app.update(Action::Back);
        app.update(Action::Click(10, 1));
        app.update(Action::Click(10, TABLE_FIRST_ROW + 5));
        assert_eq!(app.selection().index, start);
    }

    #[test]
    fn a_click_on_a_tab_shows_its_panel() {
        let mut app = app();
        // The tabs row reads " 1 Hosts  2 Instances ...": find each label where it is drawn.
        for (panel, at, label) in crate::views::tab_positions() {
            assert!(label.contains(panel.title()));
            app.update(Action::Click(at + 2, crate::views::TABS_ROW));
            assert_eq!(app.panel, panel);
        }
        // Between two tabs is no tab.
        app.update(Action::ShowPanel(Panel::Hosts));
        app.update(Action::Click(0, crate::views::TABS_ROW));
        assert_eq!(app.panel, Panel::Hosts);
    }

    #[test]
    fn m_toggles_mouse_capture() {
        let mut app = app();
        assert!(app.mouse);
        assert_eq!(app.update(Action::Mouse), vec![crate::actions::Effect::MouseCapture(false)]);
        assert!(!app.mouse);
        assert_eq!(app.update(Action::Mouse), vec![crate::actions::Effect::MouseCapture(true)]);
    }
}
