//! The Hosts panel: every Docker host with its AZ, address, load, heartbeat and the image
//! pulls in progress on it.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, pct, styled, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::pulls::HostPulls;
use crate::app::rows::RowKey;
use crate::protocol::clock::heartbeat_age;
use crate::protocol::{Host, HostState};

pub(crate) const COLUMNS: [Column; 10] = [
    col("HOST", 9, 0),
    col("AZ", 4, 0),
    col("IP", 13, 3),
    col("CPU", 5, 0),
    col("MEM", 5, 0),
    col("INST", 5, 2),
    col("HB", 5, 1),
    col("STATE", 12, 0),
    col("PULL", 11, 1),
    wide("TAGS", 10, 1),
];

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
    // Once per frame, not per row: a pass over the running operations.
    let pulls = crate::app::pulls::by_host(&app.replica.fleet);
    table::render_panel(app, frame, area, &SPEC, lookup, |app, h| cells(app, h, pulls.get(h.id.as_str())))
}

/// `⇣ 12.3 MB`, `⇣2 24.6 MB` for two images: the bytes fetched so far, with a symbol.
pub fn pull_label(pulls: &HostPulls) -> String {
    let size = super::text::size(pulls.bytes.done);
    match pulls.count {
        1 => format!("⇣ {size}"),
        n => format!("⇣{n} {size}"),
    }
}

/// `● up`, `◐ stale`, `✕ lost`: a symbol and a word, never colour alone.
pub fn state_label(state: HostState) -> &'static str {
    match state {
        HostState::Up => "● up",
        HostState::Stale => "◐ stale",
        HostState::Lost => "✕ lost",
    }
}

fn cells<'a>(app: &'a FrameContext<'a>, h: &'a Host, pulls: Option<&HostPulls>) -> Vec<Cell<'a>> {
    let t = &app.theme;
    // Derived with the heartbeat's age: a silent host is never shown up.
    let (state, silent) = app.replica.host_state(h, app.now);
    let state_style = match state {
        HostState::Up => t.ok,
        HostState::Stale => t.warn,
        HostState::Lost => t.bad,
    };
    let state = match silent {
        Some(ms) => styled(format!("{} {}", state_label(state), super::silence_age(ms)), state_style),
        None => styled(state_label(state), state_style),
    };
    let level = |v: f32| {
        if v >= 90.0 {
            t.bad
        } else if v >= 75.0 {
            t.warn
        } else {
            t.text
        }
    };
    let mem = h.metrics.mem_pct();
    // A silent host's heartbeat age by the second, however short its period.
    let hb = match (silent, app.replica.heartbeat_age(&h.id, app.now)) {
        (Some(ms), _) => super::silence_age(ms),
        (None, Some(ms)) => heartbeat_age(ms),
        (None, None) => "-".into(),
    };
    let count = app.facts().instances_on(&h.id);
    // Containers no agent manages are counted apart and flagged.
    let count = match h.unmanaged.len() {
        0 => format!("{count:>4}"),
        n => format!("{count}+{n}⚠"),
    };
    let mut tags = h.tags.join(",");
    if !h.warnings.is_empty() {
        tags = format!("⚠ {tags}");
    }
    vec![
        Cell::from(h.id.as_str()),
        Cell::from(h.az.as_str()),
        Cell::from(h.ip.as_str()),
        styled(pct(h.metrics.cpu_pct), level(h.metrics.cpu_pct)),
        styled(pct(mem), level(mem)),
        styled(count, if h.unmanaged.is_empty() { t.text } else { t.warn }),
        styled(format!("{hb:>5}"), if silent.is_some() { t.warn } else { t.text }),
        state,
        pulls.map_or_else(|| Cell::from(""), |p| styled(pull_label(p), t.warn)),
        styled(tags, if h.warnings.is_empty() { t.muted } else { t.warn }),
    ]
}
