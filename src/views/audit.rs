//! The Audit panel: every operator command the controller recorded, newest first, with
//! who sent it (user@host, SSH client, NATS user), what it asked and how it ended.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, styled, wide};
use crate::actions::Panel;
use crate::app::App;
use crate::app::rows::{RowKey, event_by_rev};
use crate::protocol::Event;
use crate::protocol::clock::hms;

pub(crate) const COLUMNS: [Column; 6] = [
    col("TIME", 8, 2),
    col("WHO", 16, 0),
    col("VIA", 40, 1),
    wide("COMMAND", 26, 0),
    wide("RESULT", 22, 0),
    col("ID", 16, 3),
];

const SPEC: PanelSpec = PanelSpec {
    panel: Panel::Audit,
    columns: &COLUMNS,
    empty_text: "no operator commands recorded in the loaded history",
    markable: false,
};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let audit = &app.replica.audit;
    let lookup = |k: &RowKey| match k {
        RowKey::Rev(rev) => event_by_rev(audit, *rev),
        _ => None,
    };
    table::render_panel(app, frame, area, &SPEC, lookup, cells);
}

fn cells<'a>(app: &'a App, e: &'a Event) -> Vec<Cell<'a>> {
    let t = &app.theme;
    let Some(a) = e.audit.as_deref() else {
        return vec![styled(hms(e.ts), t.muted), Cell::from(""), Cell::from(e.message.clone())];
    };
    let (mark, style) = if a.outcome.accepted { ("✓", t.ok) } else { ("✕", t.bad) };
    vec![
        styled(hms(e.ts), t.muted),
        Cell::from(a.user()),
        styled(a.via(), t.muted),
        Cell::from(a.what()),
        styled(format!("{mark} {}", a.result()), style),
        styled(a.command_id.clone(), t.muted),
    ]
}
