//! The Apps panel: each app's desired state against what runs, with its image, domain,
//! tags and routes.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, styled, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::facts::AppHealth;
use crate::app::rows::RowKey;
use crate::protocol::App as AppSpec;

pub(crate) const COLUMNS: [Column; 8] = [
    wide("APP", 13, 0),
    col("VERSION", 9, 0),
    col("RUNNING", 9, 0),
    wide("IMAGE", 16, 2),
    wide("DOMAIN", 20, 1),
    col("TAGS", 8, 1),
    col("ROUTES", 6, 3),
    col("STATE", 12, 0),
];

const SPEC: PanelSpec =
    PanelSpec { panel: Panel::Apps, columns: &COLUMNS, empty_text: "no apps deployed", markable: true };

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let apps = &app.replica.fleet.apps;
    let lookup = |k: &RowKey| match k {
        RowKey::Id(name) => apps.get(name),
        _ => None,
    };
    table::render_panel(app, frame, area, &SPEC, lookup, cells)
}

fn cells<'a>(app: &'a FrameContext<'a>, a: &'a AppSpec) -> Vec<Cell<'a>> {
    let t = &app.theme;
    // Counted per change of the fleet, not per row per frame: 20,000 instances and
    // routes would be read for each app on screen.
    let facts = app.facts();
    let counts = facts.app(&a.name);
    let st = facts.app_state(&app.replica, a, app.now);
    // Other versions still running, e.g. during a rolling update.
    let others: Vec<&str> = counts.versions.keys().map(String::as_str).filter(|v| *v != a.version).collect();
    let version = match others.as_slice() {
        [] => a.version.clone(),
        o => format!("{} (+{})", a.version, o.join(",")),
    };
    let (state, style): (std::borrow::Cow<'static, str>, _) = match (st.waiting_for(a), st.health) {
        // The controller is waiting to place them: say why, not just that they are missing.
        (Some(why), _) => (format!("⚠ {why}").into(), t.warn),
        (None, AppHealth::Changing) => ("◌ changing".into(), t.warn),
        (None, AppHealth::Unknown) => (format!("? {} unknown", st.unknown).into(), t.warn),
        (None, AppHealth::Down) => ("✕ down".into(), t.bad),
        (None, AppHealth::NoTraffic) => ("✕ no traffic".into(), t.bad),
        (None, AppHealth::Degraded) => ("◐ degraded".into(), t.warn),
        (None, AppHealth::Ok) => ("● ok".into(), t.ok),
    };
    let count_style = if (st.running as u32) < a.instances { t.warn } else { t.text };
    let routes_style = if st.serving == 0 && st.routes > 0 { t.warn } else { t.text };
    vec![
        Cell::from(a.name.as_str()),
        Cell::from(version),
        styled(format!("{}/{}", st.running, a.instances), count_style),
        styled(a.image.clone(), t.muted),
        Cell::from(a.domain.as_str()),
        styled(a.tags.join(","), if a.tags.iter().any(|t| t == "prod") { t.warn } else { t.muted }),
        // Serving of all: a disabled or unbacked route is not counted as one that serves.
        styled(format!("{:>6}", format!("{}/{}", st.serving, st.routes)), routes_style),
        styled(state, style),
    ]
}
