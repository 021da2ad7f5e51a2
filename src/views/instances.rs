//! The Instances panel: every app instance with its host, endpoint, state and metrics.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::cells::{INSTANCE_STATE_WIDTH, RowSource, instance_row, instance_state};
use crate::app::columns;
use crate::app::rows::RowKey;
use crate::protocol::Instance;

// What an instance is doing (STATE, RST, ROUTE, its load) outranks where it came from
// (VERSION, ENDPOINT, ID): at 80 columns the decoration goes first. ENDPOINT goes before
// ID, which names the instance (for `y`, `ctl`, the logs) and shows again at 120 columns.
pub(crate) const COLUMNS: [Column; 12] = table::titled(
    columns::INSTANCES,
    [
        wide(16, 0),
        col(12, 2),
        col(3, 3),
        col(12, 0),
        wide(21, 1),
        col(INSTANCE_STATE_WIDTH as u16, 0),
        col(7, 2),
        col(3, 5),
        col(4, 4),
        col(10, 4),
        col(10, 5),
        col(24, 2),
    ],
);

const SPEC: PanelSpec = PanelSpec {
    panel: Panel::Instances,
    columns: &COLUMNS,
    empty_text: "no instances: deploy an app to see it here",
    markable: true,
};

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let instances = &app.replica.fleet.instances;
    let lookup = |k: &RowKey| match k {
        RowKey::Id(id) => instances.get(id),
        _ => None,
    };
    // Counted once per frame, not per row.
    let facts = app.facts();
    let src = RowSource { replica: &app.replica, facts, traffic: &app.traffic, now: app.now };
    table::render_panel(app, frame, area, &SPEC, lookup, |app, i| {
        table::row_cells(&app.theme, instance_row(src, i))
    })
}

/// An instance's state cell, as the table shows it (`cells::instance_state`).
pub fn state_cell<'a>(app: &FrameContext, i: &Instance) -> Cell<'a> {
    let (text, tone) = instance_state(&app.replica, app.now, i);
    Cell { text, style: table::tone_style(&app.theme, tone), right: false }
}

#[cfg(test)]
#[path = "instances_tests.rs"]
mod tests;
