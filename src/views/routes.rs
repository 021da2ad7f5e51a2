//! The Routes panel: app domain to backends, as the load balancer has them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::cells::{RowSource, route_row};
use crate::app::columns;
use crate::app::rows::RowKey;
use crate::protocol::clock::{age, ago_coarse};

// The 5xx share carries a state (red above the threshold) and outlasts RPS, which
// outlasts P99, on a narrow terminal.
pub(crate) const COLUMNS: [Column; 9] = table::titled(
    columns::ROUTES,
    [
        wide(16, 0),
        wide(24, 1),
        col(21, 0),
        col(11, 0),
        col(6, 2),
        col(17, 3),
        col(6, 3),
        col(5, 4),
        col(6, 2),
    ],
);

const SPEC: PanelSpec =
    PanelSpec { panel: Panel::Routes, columns: &COLUMNS, empty_text: "no routes", markable: true };

/// A router that has not reported for this long is called silent.
const ROUTER_SILENT_MS: u64 = 6_000;

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let mut lines = vec![router_line(app)];
    lines.extend(unrouted_line(app));
    let [status, table_area] =
        Layout::vertical([Constraint::Length(lines.len() as u16), Constraint::Min(3)]).areas(area);
    frame.render_widget(Paragraph::new(lines), status);
    let routes = &app.replica.fleet.routes;
    let lookup = |k: &RowKey| match k {
        RowKey::Route(a, b) => routes.get(&(a.clone(), b.clone())),
        _ => None,
    };
    let facts = app.facts();
    let src = RowSource { replica: &app.replica, facts, traffic: &app.traffic, now: app.now };
    table::render_panel(app, frame, table_area, &SPEC, lookup, |app, r| {
        table::row_cells(&app.theme, route_row(src, r))
    })
}

/// Whether the route table is applied anywhere, and how recently.
fn router_line(app: &FrameContext) -> Line<'static> {
    let t = &app.theme;
    if app.routers.is_empty() {
        return Line::from(Span::styled(
            " ⚠ no router has reported: the route table is not applied anywhere",
            t.warn,
        ));
    }
    let mut spans = Vec::new();
    for (id, (st, seen)) in &app.routers {
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        let silent = app.now.saturating_sub(*seen);
        let (text, style) = if silent > ROUTER_SILENT_MS {
            (format!(" ✕ router {id} silent for {}", age(silent)), t.bad)
        } else if let Some(err) = &st.last_error {
            (format!(" ✕ router {id} gen {}: {err}", st.generation), t.bad)
        } else {
            let reload = st
                .last_reload
                .map(|r| format!("reloaded {} ago", ago_coarse(app.now.saturating_sub(r))))
                .unwrap_or_else(|| "not applied yet".into());
            (
                format!(
                    " ● router {id} up · {} · gen {} · {} backends · {reload}",
                    st.listen, st.generation, st.backends
                ),
                t.ok,
            )
        };
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

/// Running instances that no route reaches: they take no traffic.
fn unrouted_line(app: &FrameContext) -> Option<Line<'static>> {
    let n = app.facts().unrouted;
    (n > 0).then(|| {
        Line::from(Span::styled(
            format!(" ⚠ {n} running instance(s) unrouted: a in Instances (2) adds a route"),
            app.theme.warn,
        ))
    })
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
