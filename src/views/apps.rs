//! The Apps panel: each app's desired state against what runs, with its image, domain,
//! tags and routes.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::cells::{RowSource, app_row};
use crate::app::columns;
use crate::app::rows::RowKey;

// The 5xx share carries a state (red above the threshold) and outlasts RPS, which
// outlasts P99, on a narrow terminal; the state word, `✕ no route (N rps)` among them,
// is never dropped.
pub(crate) const COLUMNS: [Column; 11] = table::titled(
    columns::APPS,
    [
        wide(16, 0),
        col(20, 0),
        col(7, 0),
        wide(20, 2),
        wide(24, 1),
        col(16, 1),
        col(7, 3),
        col(6, 3),
        col(5, 4),
        col(6, 2),
        col(32, 0),
    ],
);

const SPEC: PanelSpec =
    PanelSpec { panel: Panel::Apps, columns: &COLUMNS, empty_text: "no apps deployed", markable: true };

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let apps = &app.replica.fleet.apps;
    let lookup = |k: &RowKey| match k {
        RowKey::Id(name) => apps.get(name),
        _ => None,
    };
    // Counted per change of the fleet, not per row per frame: 20,000 instances and
    // routes would be read for each app on screen.
    let facts = app.facts();
    let src = RowSource { replica: &app.replica, facts, traffic: &app.traffic, now: app.now };
    table::render_panel(app, frame, area, &SPEC, lookup, |app, a| {
        table::row_cells(&app.theme, app_row(src, a))
    })
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
