//! The Hosts panel: every Docker host with its AZ, address, load, heartbeat and the image
//! pulls in progress on it.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::cells::{RowSource, host_row};
use crate::app::columns;
use crate::app::rows::RowKey;

pub use crate::app::cells::host_state_label as state_label;

// The state a host is in (STATE, HB, PULL) outranks where it is (IP, TAGS).
pub(crate) const COLUMNS: [Column; 10] = table::titled(
    columns::HOSTS,
    [
        col(16, 0),
        col(6, 2),
        col(15, 1),
        col(4, 0),
        col(4, 0),
        col(5, 3),
        col(7, 4),
        col(16, 0),
        col(12, 4),
        wide(24, 1),
    ],
);

const SPEC: PanelSpec = PanelSpec {
    panel: Panel::Hosts,
    columns: &COLUMNS,
    empty_text: "no hosts have sent a heartbeat yet",
    markable: true,
};

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let hosts = &app.replica.fleet.hosts;
    let lookup = |k: &RowKey| match k {
        RowKey::Id(id) => hosts.get(id),
        _ => None,
    };
    // Once per frame, not per row: a pass over the running operations, and the facts.
    let pulls = crate::app::pulls::by_host(&app.replica.fleet);
    let facts = app.facts();
    let src = RowSource { replica: &app.replica, facts, traffic: &app.traffic, now: app.now };
    table::render_panel(app, frame, area, &SPEC, lookup, |app, h| {
        table::row_cells(&app.theme, host_row(src, h, pulls.get(h.info.id.as_str())))
    })
}

#[cfg(test)]
#[path = "hosts_tests.rs"]
mod tests;
