//! Pure rendering from the frame context (`app::FrameContext`): one file per panel or
//! dialog. Views read what the context worked out before the draw; they do no I/O, change
//! no state and build rows for the visible window only. The one exception is the cockpit's
//! own log under the Events panel: tui-logger's widget reads its buffer behind a lock.

mod alerts;
mod apps;
mod audit;
mod confirm;
mod detail;
mod events;
mod footer;
mod header;
mod help;
mod hosts;
mod instances;
mod logs;
mod palette;
mod releases;
mod routes;
mod table;
mod text;

mod wizard;

pub use table::{Column, TableArea};

#[cfg(test)]
pub(crate) mod harness;
#[cfg(test)]
mod tests;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};

use crate::actions::Panel;
use crate::app::{FrameContext, Overlay};

/// Rows of the screen that are not table body: header, tabs, footer, the panel's borders
/// and its column header.
const CHROME_ROWS: u16 = 6;

pub use crate::app::cells::silence_age;

/// What a frame drew where, for mouse hit-testing (television's `UiState`): the tabs and
/// the table's rows, or nothing when a dialog is over them (a click then does nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drawn {
    pub tabs: Option<Tabs>,
    pub table: Option<TableArea>,
}

/// The tabs' screen row, and each tab's panel and columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tabs {
    pub row: u16,
    pub spans: Vec<(Panel, std::ops::Range<u16>)>,
}

impl Drawn {
    /// The panel whose tab is drawn at this cell.
    pub fn tab_at(&self, column: u16, row: u16) -> Option<Panel> {
        let tabs = self.tabs.as_ref().filter(|t| t.row == row)?;
        tabs.spans.iter().find(|(_, xs)| xs.contains(&column)).map(|(panel, _)| *panel)
    }

    /// The current panel's row drawn at this screen row.
    pub fn row_at(&self, row: u16) -> Option<usize> {
        self.table.and_then(|t| t.row_at(row))
    }
}

/// How many table rows fit on a screen of this height.
pub fn body_rows(height: u16) -> usize {
    height.saturating_sub(CHROME_ROWS).max(1) as usize
}

/// Draws the whole screen and says where the tabs and rows went.
pub fn render(app: &FrameContext, frame: &mut Frame) -> Drawn {
    let area = frame.area();
    let [head, tabs, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(app, frame, head);
    let tab_spans = header::render_tabs(app, frame, tabs);
    let table = match app.panel {
        Panel::Hosts => hosts::render(app, frame, body),
        Panel::Instances => instances::render(app, frame, body),
        Panel::Routes => routes::render(app, frame, body),
        Panel::Events => events::render(app, frame, body),
        Panel::Audit => audit::render(app, frame, body),
        Panel::Apps => apps::render(app, frame, body),
        Panel::Alerts => alerts::render(app, frame, body),
    };
    footer::render(app, frame, foot);
    for overlay in &app.overlays {
        match overlay {
            // The keys need the rows: the tabs and the footer are not read while it is open.
            Overlay::Help => {
                help::render(app, frame, Rect { y: tabs.y, height: area.height - head.height, ..area })
            }
            Overlay::Detail => detail::render(app, frame, body),
            Overlay::Confirm(pending) => confirm::render(app, pending, frame, area),
            Overlay::Palette(p) => palette::render_palette(app, p, frame, body),
            Overlay::Filter(text) => palette::render_filter(app, text, frame, body),
            Overlay::Form(form) => palette::render_form(app, form, frame, body),
            Overlay::Logs => logs::render(app, frame, body),
            Overlay::Wizard(w) => wizard::render(app, w, frame, body),
        }
    }
    match app.overlays.is_empty() {
        true => Drawn { tabs: Some(Tabs { row: tabs.y, spans: tab_spans }), table: Some(table) },
        false => Drawn::default(),
    }
}

/// A rectangle of at most `w` x `h`, centred in `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}
