//! The Instances panel: every app instance with its host, endpoint, state and metrics.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, pct, styled, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::rows::RowKey;
use crate::protocol::clock::uptime_coarse;
use crate::protocol::{Instance, InstanceState};
use crate::theme::Theme;

/// Room for `? running 40s old`: a state whose facts are old, with their age.
const STATE_WIDTH: u16 = 17;

pub(crate) const COLUMNS: [Column; 11] = [
    wide("APP", 13, 0),
    col("VERSION", 8, 2),
    col("#", 2, 1),
    col("HOST", 8, 0),
    wide("ENDPOINT", 16, 3),
    col("STATE", STATE_WIDTH, 0),
    col("UPTIME", 7, 2),
    col("RST", 3, 1),
    col("CPU", 5, 0),
    col("MEM", 10, 0),
    col("ROUTE", 10, 1),
];

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
    table::render_panel(app, frame, area, &SPEC, lookup, cells)
}

/// A symbol and a word for each state, and the style that goes with it.
pub fn state_label(state: InstanceState, t: &Theme) -> (&'static str, ratatui::style::Style) {
    // Whole labels, not formatted: the table shows one per row per frame.
    match state {
        InstanceState::Running => ("● running", t.ok),
        InstanceState::New => ("◌ new", t.warn),
        InstanceState::Deploying => ("◌ deploying", t.warn),
        InstanceState::Starting => ("◌ starting", t.warn),
        InstanceState::Unhealthy => ("◐ unhealthy", t.warn),
        InstanceState::Crashed => ("✕ crashed", t.bad),
        InstanceState::Stopped => ("○ stopped", t.muted),
        InstanceState::Removed => ("○ removed", t.muted),
    }
}

/// An instance's state cell: its label, or when its facts are old (its host or the
/// controller is silent) the state last known, marked unknown, with their age.
pub fn state_cell<'a>(app: &FrameContext, i: &Instance) -> Cell<'a> {
    let t = &app.theme;
    match app.replica.instance_age(&i.host, app.now) {
        Some(ms) => {
            let text = format!("? {} {} old", i.state.as_str(), super::silence_age(ms));
            // A long state word keeps its age and drops the "old".
            let text = if text.chars().count() > STATE_WIDTH as usize {
                format!("? {} {}", i.state.as_str(), super::silence_age(ms))
            } else {
                text
            };
            styled(text, t.warn)
        }
        None => {
            let (label, style) = state_label(i.state, t);
            match (i.state, i.last_exit) {
                (InstanceState::Crashed, Some(exit)) => styled(format!("✕ {}", exit.short()), style),
                _ => styled(label, style),
            }
        }
    }
}

fn cells<'a>(app: &'a FrameContext<'a>, i: &'a Instance) -> Vec<Cell<'a>> {
    let t = &app.theme;
    let up = match (i.state, i.started_at) {
        (InstanceState::Running | InstanceState::Unhealthy, Some(s)) => {
            format!("{:>7}", uptime_coarse(s, app.now))
        }
        _ => format!("{:>7}", "-"),
    };
    let mem_pct = crate::protocol::percent(i.mem_used_mb, i.mem_limit_mb);
    let mem_style = if mem_pct >= 90.0 {
        t.bad
    } else if mem_pct >= 75.0 {
        t.warn
    } else {
        t.text
    };
    vec![
        Cell::from(i.app.as_str()),
        Cell::from(i.version.as_str()),
        Cell::from(i.index.to_string()),
        Cell::from(i.host.as_str()),
        Cell::from(if i.endpoint.is_empty() { "-" } else { i.endpoint.as_str() }),
        state_cell(app, i),
        Cell::from(up),
        styled(format!("{:>3}", i.restarts), if i.restarts > 0 { t.warn } else { t.text }),
        Cell::from(pct(i.cpu_pct)),
        styled(format!("{}/{}M", i.mem_used_mb, i.mem_limit_mb), mem_style),
        {
            // A running instance no route sends traffic to is flagged.
            let word = app.facts().route_word(&i.app, &i.endpoint, i.state);
            let style = match word {
                "⚠ unrouted" => t.warn,
                "✓" => t.ok,
                _ => t.muted,
            };
            styled(word, style)
        },
    ]
}
