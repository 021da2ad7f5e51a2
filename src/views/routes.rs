//! The Routes panel: app domain to backends, as the load balancer has them.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::Cell;

use super::table::{self, Column, TableView, col, styled, wide};
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

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let sel = app.selections[Panel::Routes.index()];
    let total = app.replica.fleet.routes.len();
    let start = table::window_start(sel.index, sel.offset, area.height.saturating_sub(3) as usize, total);
    let visible: Vec<&Route> =
        app.replica.fleet.routes.values().skip(start).take(area.height as usize).collect();
    let view = TableView {
        title: "Routes".into(),
        columns: &COLUMNS,
        total,
        selected: sel.index,
        offset: sel.offset,
        empty_text: "no routes",
    };
    table::render(app, frame, area, view, |i| {
        visible.get(i - start).map(|r| cells(app, r)).unwrap_or_default()
    });
}

fn cells<'a>(app: &App, r: &Route) -> Vec<Cell<'a>> {
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
