//! `qd.v1.ctl.<user>.note`: an operator's line for the incident's timeline. Accepted, it
//! commits one `NOTE` event whose message is the text and whose `audit` is the command's
//! record (who, from where, as which NATS user), instead of the `AUDIT` event other
//! commands make: the note is its own record, so the trail and the timeline show it once.
//! A refused note is an `AUDIT` event like any refused command.

use super::core::{Controller, Draft};
use crate::protocol::timeline::check_note;
use crate::protocol::{Accepted, AuditRecord, EventKind, NoteRequest, WireError};

/// Checks the note; it changes nothing but the history, so it is accepted at the
/// revision it arrived at (its event is committed with the command's record).
pub(super) fn accept(ctl: &Controller, req: &NoteRequest) -> Result<Accepted, WireError> {
    check_note(&req.text).map_err(WireError::bad_request)?;
    Ok(Accepted { operation_id: None, rev: ctl.revision() })
}

/// The text of an accepted note's request, whole: the record keeps a bounded copy (512
/// bytes a string), which a long note outgrows.
pub(super) fn text_of(request: &serde_json::Value) -> Option<String> {
    let text = request.get("text")?.as_str()?;
    check_note(text).ok().map(str::to_string)
}

/// The `NOTE` event of an accepted note: the text, and the command's record for who.
pub(super) fn draft_of(text: String, record: AuditRecord) -> Draft {
    let mut d = Draft::new(EventKind::Note, text);
    d.audit = Some(Box::new(record));
    d
}
