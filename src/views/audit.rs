//! The Audit panel: every operator command the controller recorded, newest first, with
//! who sent it (user@host, SSH client, NATS user), what it asked and how it ended: a
//! command that started an operation shows how the operation ended, not its acceptance.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::table::{self, Column, PanelSpec, col, wide};
use crate::actions::Panel;
use crate::app::FrameContext;
use crate::app::cells::{RowSource, audit_row, verdict_tone};
use crate::app::columns;
use crate::app::rows::{RowKey, event_by_rev};
use crate::protocol::{AuditRecord, OperationEnd, Verdict};
use crate::theme::Theme;
use ratatui::style::Style;

pub(crate) const COLUMNS: [Column; 6] =
    table::titled(columns::AUDIT, [col(8, 2), col(24, 0), col(48, 1), wide(26, 0), wide(30, 0), col(16, 3)]);

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
    let facts = app.facts();
    let src = RowSource { replica: &app.replica, facts, traffic: &app.traffic, now: app.now };
    table::render_panel(app, frame, area, &SPEC, lookup, |app, e| {
        table::row_cells(&app.theme, audit_row(src, e))
    })
}

/// How the operation a recorded command started stands, from the replica's operations
/// (running ones and the newest finished ones; an older one shows as unknown).
pub(crate) fn operation_end(app: &FrameContext, record: &AuditRecord) -> Option<OperationEnd> {
    record.operation_end(&app.replica.fleet.operations)
}

pub(crate) fn verdict_style(t: &Theme, verdict: Verdict) -> Style {
    table::tone_style(t, verdict_tone(verdict))
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
