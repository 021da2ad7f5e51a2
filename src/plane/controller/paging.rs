//! Answers to `qd.v1.ctl.snapshot` and the sizes of `qd.v1.ctl.history`, bounded by the
//! bus's max_payload. A whole fleet of 20 000 instances is ~9 MB, far above nats-server's
//! default 1 MB, so a paging client gets the fleet's JSON text in parts: it is encoded once
//! per revision and kept, so that every page of one read comes from the same text.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::protocol::{
    ErrorCode, Event, Fleet, SnapshotPage, SnapshotRequest, WireError, snapshot_cuts, snapshot_part,
};

/// The largest snapshot part, whatever the server allows: pages stay quick to send.
pub(crate) const MAX_PART: usize = 512 * 1024;

/// Room for the envelope and the reply around a part or a list of events.
const ENVELOPE_ROOM: usize = 4 * 1024;

/// Encodings kept: the newest and the one before, so a client still reading the older one
/// is not sent back to page 0 the moment another client starts a read at a newer revision.
const KEPT: usize = 2;

/// The part size for a bus whose largest payload is `max_payload`. Half of it, because the
/// part travels as a JSON string inside the reply, and escaping can double it: every `"`
/// of the fleet's text becomes `\"` (control characters never appear raw in JSON text, so
/// nothing grows more than twofold).
pub(crate) fn part_size(max_payload: usize) -> usize {
    (max_payload / 2).saturating_sub(ENVELOPE_ROOM).clamp(4, MAX_PART)
}

/// The most bytes of events one history answer may carry on a bus with this max_payload.
pub(crate) fn history_budget(max_payload: usize) -> usize {
    max_payload.saturating_sub(ENVELOPE_ROOM)
}

/// Keeps the newest events whose encodings fit in `budget` bytes (with their commas and
/// brackets), oldest first as they came. Returns how many of the oldest were dropped.
pub(crate) fn fit_history(events: &mut Vec<Event>, budget: usize) -> usize {
    let mut used: usize = 2; // the list's brackets
    let mut keep = 0;
    for event in events.iter().rev() {
        // An event that cannot be encoded would not be sent either; count it as too big.
        let size = serde_json::to_vec(event).map(|b| b.len()).unwrap_or(usize::MAX);
        let size = size.saturating_add(1); // its comma
        if used.saturating_add(size) > budget {
            break;
        }
        used += size;
        keep += 1;
    }
    let dropped = events.len() - keep;
    events.drain(..dropped);
    dropped
}

/// One encoding of the fleet: its text at `rev` and where it is cut.
struct Encoded {
    rev: u64,
    text: Arc<str>,
    cuts: Vec<usize>,
}

/// The kept encodings, newest last.
#[derive(Default)]
pub(crate) struct Pages {
    kept: Mutex<VecDeque<Encoded>>,
}

impl Pages {
    /// Answers a paged request. `current` gives the fleet's revision and, when that is not
    /// the revision of the newest kept encoding, its JSON text; it is only called for a
    /// request without `rev`, which starts a read.
    pub(crate) fn page(
        &self,
        req: &SnapshotRequest,
        max_part: usize,
        current: impl FnOnce(Option<u64>) -> Result<(u64, Option<String>), WireError>,
    ) -> Result<SnapshotPage, WireError> {
        let page = req.page.unwrap_or(0);
        // A poisoned lock only means a panic while swapping encodings; the list is still
        // a list of whole encodings.
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let index = match req.rev {
            Some(rev) => kept.iter().position(|e| e.rev == rev).ok_or_else(|| {
                let now = kept.back().map(|e| e.rev.to_string()).unwrap_or_else(|| "none".into());
                WireError::new(
                    ErrorCode::Conflict,
                    format!(
                        "the snapshot moved on from revision {rev} (kept: {now}); start again from page 0"
                    ),
                )
            })?,
            None => {
                let newest = kept.back().map(|e| e.rev);
                match current(newest)? {
                    (rev, _) if Some(rev) == newest => kept.len() - 1,
                    (rev, Some(text)) => {
                        let cuts = snapshot_cuts(&text, max_part);
                        kept.push_back(Encoded { rev, text: Arc::from(text), cuts });
                        while kept.len() > KEPT {
                            kept.pop_front();
                        }
                        kept.len() - 1
                    }
                    (rev, None) => {
                        return Err(WireError::new(
                            ErrorCode::Internal,
                            format!("no encoding of the fleet at revision {rev}"),
                        ));
                    }
                }
            }
        };
        let encoded =
            kept.get(index).ok_or_else(|| WireError::new(ErrorCode::Internal, "lost an encoding"))?;
        let pages = encoded.cuts.len();
        let part = snapshot_part(&encoded.text, &encoded.cuts, page as usize).ok_or_else(|| {
            WireError::bad_request(format!("page {page} is past the last (the snapshot has {pages} pages)"))
        })?;
        Ok(SnapshotPage {
            rev: encoded.rev,
            page,
            pages: u32::try_from(pages).unwrap_or(u32::MAX),
            part: part.to_string(),
        })
    }
}

/// The fleet's JSON text at its revision, as the paged snapshot carries it.
pub(crate) fn fleet_text(fleet: &Fleet) -> Result<String, WireError> {
    serde_json::to_string(fleet)
        .map_err(|e| WireError::new(ErrorCode::Internal, format!("cannot encode the fleet: {e}")))
}
