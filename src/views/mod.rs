//! Pure rendering from the app's state: one file per panel or dialog. Views never do I/O
//! and never take locks; they build rows for the visible window only.

mod apps;
mod audit;
mod confirm;
mod detail;
mod events;
mod footer;
mod header;
pub use header::{tab_at, tab_positions};
mod help;
mod hosts;
mod instances;
mod logs;
mod palette;
mod routes;
mod table;
mod text;
pub mod theme;
mod wizard;

pub use table::{Column, window_start};

#[cfg(test)]
pub(crate) mod tests;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use crate::actions::Panel;
use crate::app::{App, Overlay};

/// Rows of the screen that are not table body: header, tabs, footer, the panel's borders
/// and its column header.
const CHROME_ROWS: u16 = 6;

pub use crate::app::cells::silence_age;

/// The columns of a panel's table, for the sort (`s`) and its title.
pub fn columns(panel: Panel) -> &'static [table::Column] {
    match panel {
        Panel::Hosts => &hosts::COLUMNS,
        Panel::Instances => &instances::COLUMNS,
        Panel::Routes => &routes::COLUMNS,
        Panel::Events => &events::COLUMNS,
        Panel::Audit => &audit::COLUMNS,
        Panel::Apps => &apps::COLUMNS,
    }
}

/// The screen row of a table's first data row: under the header, the tabs, the panel's
/// top border and its column header. Mouse clicks are mapped with it.
pub const TABLE_FIRST_ROW: u16 = 4;

/// The screen row of the panel tabs, under the header.
pub const TABS_ROW: u16 = 1;

/// How many table rows fit on a screen of this height.
pub fn body_rows(height: u16) -> usize {
    height.saturating_sub(CHROME_ROWS).max(1) as usize
}

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let [head, tabs, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(app, frame, head);
    header::render_tabs(app, frame, tabs);
    match app.panel {
        Panel::Hosts => hosts::render(app, frame, body),
        Panel::Instances => instances::render(app, frame, body),
        Panel::Routes => routes::render(app, frame, body),
        Panel::Events => events::render(app, frame, body),
        Panel::Audit => audit::render(app, frame, body),
        Panel::Apps => apps::render(app, frame, body),
    }
    footer::render(app, frame, foot);
    for overlay in &app.overlays {
        match overlay {
            Overlay::Help => help::render(app, frame, body),
            Overlay::Detail => detail::render(app, frame, body),
            Overlay::Confirm(pending) => confirm::render(app, pending, frame, area),
            Overlay::Palette(p) => palette::render_palette(app, p, frame, body),
            Overlay::Filter(text) => palette::render_filter(app, text, frame, body),
            Overlay::Form(form) => palette::render_form(app, form, frame, body),
            Overlay::Logs => logs::render(app, frame, body),
            Overlay::Wizard(w) => wizard::render(app, w, frame, body),
        }
    }
}

/// A rectangle of at most `w` x `h`, centred in `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}
