//! The Alerts panel: the controller's alerts, firing first, then acknowledged, then
//! resolved, with the cockpit's own `no_controller` alert while the controller is silent.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::alerts::no_controller;
use crate::app::cells::{RowSource, alert_row};
use crate::app::columns;
use crate::app::rows::RowKey;

// RULE fits `instance_unhealthy`; who acknowledged is cut before the rule or the subject.
// At 80 columns the summary goes first: the rule names what it is about.
pub(crate) const COLUMNS: [Column; 5] =
    table::titled(columns::ALERTS, [col(18, 0), col(18, 0), wide(20, 0), col(5, 2), wide(24, 1)]);

const SPEC: PanelSpec = PanelSpec {
    panel: Panel::Alerts,
    columns: &COLUMNS,
    empty_text: "no alerts: nothing is firing",
    markable: true,
};

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let alerts = &app.replica.fleet.alerts;
    let own = no_controller(&app.replica);
    let lookup = |k: &RowKey| match k {
        RowKey::Id(id) => alerts.get(id).or(own.as_ref().filter(|a| a.id == *id)),
        _ => None,
    };
    let facts = app.facts();
    let src = RowSource { replica: &app.replica, facts, traffic: &app.traffic, now: app.now };
    table::render_panel(app, frame, area, &SPEC, lookup, |app, a| {
        table::row_cells(&app.theme, alert_row(src, a))
    })
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
