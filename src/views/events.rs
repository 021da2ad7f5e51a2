//! The Events panel: the controller's event stream, newest first, with the cockpit's own
//! log (tui-logger) beneath it when running in a terminal.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Block, BorderType};

use super::table::{self, Column, PanelSpec, col, styled, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::rows::{RowKey, event_by_rev};
use crate::protocol::Event;
use crate::protocol::clock::hms;

pub(crate) const COLUMNS: [Column; 5] =
    [col("TIME", 8, 2), col("REV", 6, 1), col("KIND", 22, 0), col("APP", 13, 3), wide("MESSAGE", 30, 0)];

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
    let drawn = table::render_panel(app, frame, events_area, &SPEC, lookup, cells);
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
            .output_target(false)
            .output_file(false)
            .output_line(false);
        frame.render_widget(widget, log_area);
    }
    drawn
}

fn cells<'a>(app: &'a FrameContext<'a>, e: &'a Event) -> Vec<Cell<'a>> {
    let t = &app.theme;
    let bad = e.kind.is_bad();
    let kind = if bad { format!("✕ {}", e.kind.as_str()) } else { e.kind.as_str().to_string() };
    vec![
        styled(hms(e.ts), t.muted),
        styled(format!("{:>6}", e.rev), t.muted),
        styled(kind, if bad { t.bad } else { t.accent }),
        Cell::from(e.app.clone().unwrap_or_else(|| "-".into())),
        Cell::from(e.message.as_str()),
    ]
}
