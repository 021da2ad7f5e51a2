//! Mouse input, read against the layout the last frame drew (`views::Drawn`): a click on a
//! tab shows its panel, a click on a table row selects it (a second opens its detail), the
//! wheel scrolls. Nothing here knows where the views put things.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

use crate::actions::Action;
use crate::views::Drawn;

/// What a mouse event means on the screen last drawn; the rest of the mouse is ignored.
pub fn action(mouse: &MouseEvent, drawn: &Drawn) -> Option<Action> {
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => click(drawn, mouse.column, mouse.row),
        MouseEventKind::ScrollUp => Some(Action::Scroll(-3)),
        MouseEventKind::ScrollDown => Some(Action::Scroll(3)),
        _ => None,
    }
}

fn click(drawn: &Drawn, column: u16, row: u16) -> Option<Action> {
    if let Some(panel) = drawn.tab_at(column, row) {
        return Some(Action::ShowPanel(panel));
    }
    drawn.row_at(row).map(Action::ClickRow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Panel;
    use crate::app::{App, Overlay};

    fn app() -> App {
        crate::views::harness::fixture_app(20)
    }

    fn drawn(app: &mut App, w: u16, h: u16) -> (Drawn, String) {
        let (drawn, buf) = crate::views::harness::draw_layout(app, w, h);
        (drawn, crate::views::harness::text(&buf))
    }

    fn click_at(column: u16, row: u16) -> MouseEvent {
        MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: crossterm::event::KeyModifiers::NONE,
        }
    }

    /// Clicks on the screen row where `needle` is drawn.
    fn click_text(app: &mut App, needle: &str) {
        let (drawn, text) = drawn(app, 120, 12);
        let y = text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} not drawn"));
        if let Some(a) = action(&click_at(20, y as u16), &drawn) {
            app.update(a);
        }
    }

    #[test]
    fn a_click_selects_the_row_drawn_under_it_and_a_second_opens_its_detail() {
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Instances));
        let third = app.rows(Panel::Instances)[3].clone();
        let id = match &third {
            crate::app::rows::RowKey::Id(id) => id.clone(),
            other => panic!("not an instance row: {other:?}"),
        };
        click_text(&mut app, &id);
        assert_eq!(app.selection().index, 3);
        // After scrolling the window down, a click maps through the window drawn.
        for _ in 0..4 {
            app.update(Action::Scroll(3));
        }
        let (drawn, _) = drawn(&mut app, 120, 12);
        let table = drawn.table.expect("a table was drawn");
        assert!(table.start > 0, "the window moved: {table:?}");
        app.update(action(&click_at(20, table.first_row), &drawn).expect("a row"));
        assert_eq!(app.selection().index, table.start);
        assert!(app.overlay().is_none());
        app.update(action(&click_at(20, table.first_row), &drawn).expect("a row"));
        assert!(matches!(app.overlay(), Some(Overlay::Detail)));
        // With a dialog open, nothing on screen is a target.
        let (covered, _) = self::drawn(&mut app, 120, 12);
        assert!(action(&click_at(20, table.first_row), &covered).is_none());
        // The header, the tabs' gaps and below the table are not rows.
        app.update(Action::Back);
        assert!(action(&click_at(20, 0), &drawn).is_none());
        assert!(action(&click_at(20, table.first_row + table.height), &drawn).is_none());
    }

    #[test]
    fn routes_rows_are_read_where_they_are_drawn_under_the_router_line() {
        // The Routes panel draws a status line above its table: a fixed first row would
        // select the row above the one clicked.
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Routes));
        let keys = app.rows(Panel::Routes).into_owned();
        let crate::app::rows::RowKey::Route(_, backend) = &keys[2] else { panic!("not a route row") };
        click_text(&mut app, backend);
        assert_eq!(app.selection().index, 2);
    }

    #[test]
    fn a_click_on_a_tab_shows_its_panel() {
        let mut app = app();
        let (drawn, text) = drawn(&mut app, 120, 12);
        let tabs_row = text.lines().nth(1).expect("tabs row").to_string();
        for panel in Panel::ALL {
            let at = tabs_row.find(panel.title()).expect("tab drawn");
            let column = tabs_row[..at].chars().count() as u16;
            let shown = action(&click_at(column, 1), &drawn);
            assert!(matches!(shown, Some(Action::ShowPanel(p)) if p == panel), "{panel:?}: {shown:?}");
        }
        // Before the first tab is no tab.
        assert!(action(&click_at(0, 1), &drawn).is_none());
    }
}
