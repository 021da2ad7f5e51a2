//! The Events panel: the controller's event stream, newest first, with the cockpit's own
//! log (tui-logger) beneath it when running in a terminal.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, BorderType};

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::cells::event_row;
use crate::app::columns;
use crate::app::rows::{RowKey, event_by_rev};

// KIND fits `NEW_INSTANCE_AND_DEPLOY…`; the message takes what is left.
pub(crate) const COLUMNS: [Column; 5] =
    table::titled(columns::EVENTS, [col(8, 2), col(7, 1), col(24, 0), col(16, 3), wide(24, 0)]);

const SPEC: PanelSpec =
    PanelSpec { panel: Panel::Events, columns: &COLUMNS, empty_text: "no events yet", markable: false };

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let (events_area, log_area) = if app.show_log && area.height > 30 {
        let [a, b] = Layout::vertical([Constraint::Min(8), Constraint::Length(8)]).areas(area);
        (a, Some(b))
    } else {
        (area, None)
    };
    // Newest first, unless sorted otherwise.
    let events = &app.replica.events;
    let lookup = |k: &RowKey| match k {
        RowKey::Rev(rev) => event_by_rev(events, *rev),
        _ => None,
    };
    let drawn = table::render_panel(app, frame, events_area, &SPEC, lookup, |app, e| {
        table::row_cells(&app.theme, event_row(e))
    });
    if let Some(log_area) = log_area {
        let t = &app.theme;
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(t.border)
            .title(" Cockpit log ")
            .title_style(t.title);
        let widget = tui_logger::TuiLoggerWidget::default()
            .block(block)
            .style(t.text)
            .style_error(t.bad)
            .style_warn(t.warn)
            .style_info(t.muted)
            // Spaces, as the services' stderr: `09:43:22 INFO  applied ...`.
            .output_separator(' ')
            .output_target(false)
            .output_file(false)
            .output_line(false);
        frame.render_widget(widget, log_area);
    }
    drawn
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
