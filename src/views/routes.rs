//! The Routes panel: app domain to backends, as the load balancer has them.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Cell;

use super::table::{self, Column, PanelSpec, col, styled, wide};
use crate::actions::Panel;
use crate::app::App;
use crate::protocol::{InstanceState, Route, RouteState};

const COLUMNS: [Column; 6] = [
    wide("APP", 13, 0),
    wide("DOMAIN", 24, 1),
    col("BACKEND", 17, 0),
    col("STATE", 10, 0),
    col("WEIGHT", 6, 2),
    col("INSTANCE", 12, 1),
];

const SPEC: PanelSpec = PanelSpec { panel: Panel::Routes, columns: &COLUMNS, empty_text: "no routes" };

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let routes = app.replica.fleet.routes.values();
    table::render_panel(app, frame, area, &SPEC, routes, cells);
}

fn cells(app: &App, r: &Route) -> Vec<Cell<'static>> {
    let t = &app.theme;
    let (state, style) = match r.state {
        RouteState::Enabled => ("● enabled", t.ok),
        RouteState::Disabled => ("○ disabled", t.muted),
    };
    let backing = app.replica.fleet.instances.values().find(|i| i.app == r.app && i.endpoint == r.backend);
    let (inst, inst_style) = match backing {
        Some(i) if i.state == InstanceState::Running => (i.state.as_str().to_string(), t.text),
        Some(i) => (format!("⚠ {}", i.state.as_str()), t.warn),
        None => ("⚠ none".to_string(), t.warn),
    };
    vec![
        Cell::from(r.app.clone()),
        Cell::from(r.domain.clone()),
        Cell::from(r.backend.clone()),
        styled(state, style),
        Cell::from(format!("{:>6}", r.weight)),
        styled(inst, inst_style),
    ]
}
