//! The Audit panel: every operator command the controller recorded, newest first, with
//! who sent it (user@host, SSH client, NATS user), what it asked and how it ended: a
//! command that started an operation shows how the operation ended, not its acceptance.

use super::table::Cell;
use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, styled, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::rows::{RowKey, event_by_rev};
use crate::protocol::clock::hms;
use crate::protocol::{AuditRecord, Event, OperationEnd, Verdict};
use crate::theme::Theme;
use ratatui::style::Style;

pub(crate) const COLUMNS: [Column; 6] = [
    col("TIME", 8, 2),
    col("WHO", 16, 0),
    col("VIA", 48, 1),
    wide("COMMAND", 26, 0),
    wide("RESULT", 30, 0),
    col("ID", 16, 3),
];

const SPEC: PanelSpec = PanelSpec {
    panel: Panel::Audit,
    columns: &COLUMNS,
    empty_text: "no operator commands recorded in the loaded history",
    markable: false,
};

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) -> table::TableArea {
    let audit = &app.replica.audit;
    let lookup = |k: &RowKey| match k {
        RowKey::Rev(rev) => event_by_rev(audit, *rev),
        _ => None,
    };
    table::render_panel(app, frame, area, &SPEC, lookup, cells)
}

fn cells<'a>(app: &'a FrameContext<'a>, e: &'a Event) -> Vec<Cell<'a>> {
    let t = &app.theme;
    let Some(a) = e.audit.as_deref() else {
        return vec![styled(hms(e.ts), t.muted), Cell::from(""), Cell::from(e.message.clone())];
    };
    let (verdict, result) = a.conclusion(operation_end(app, a).as_ref());
    vec![
        styled(hms(e.ts), t.muted),
        Cell::from(a.user()),
        styled(a.via(), t.muted),
        Cell::from(a.what()),
        styled(format!("{} {result}", verdict.mark()), verdict_style(&app.theme, verdict)),
        styled(a.command_id.clone(), t.muted),
    ]
}

/// How the operation a recorded command started stands, from the replica's operations
/// (running ones and the newest finished ones; an older one shows as unknown).
pub(crate) fn operation_end(app: &FrameContext, record: &AuditRecord) -> Option<OperationEnd> {
    record.operation_end(&app.replica.fleet.operations)
}

pub(crate) fn verdict_style(t: &Theme, verdict: Verdict) -> Style {
    match verdict {
        Verdict::Good => t.ok,
        Verdict::Bad => t.bad,
        Verdict::Pending => t.warn,
        Verdict::Unknown => t.muted,
    }
}
