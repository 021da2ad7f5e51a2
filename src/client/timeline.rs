//! The history a handover timeline is built from, asked of the controller
//! (`qd.v1.ctl.history`): shared by `ctl timeline` and the cockpit's `:export`.

use std::time::Duration;

use crate::bus::{self, Bus, RequestError};
use crate::protocol::clock::datetime;
use crate::protocol::{Envelope, Event, HistoryRequest, subjects};

/// The most events one timeline is built from: the controller's cap on one history
/// answer. Past it (or past what fits in one bus message, which the controller fills with
/// the newest events) the oldest events of the window are left out, and [`cut_warning`]
/// says from when the timeline really starts.
pub const HISTORY_LIMIT: usize = 10_000;

/// The newest events stamped at or after `since` (at most [`HISTORY_LIMIT`]), oldest first.
pub async fn history(
    bus: &dyn Bus,
    source: &str,
    since: u64,
    timeout: Duration,
) -> Result<Vec<Event>, RequestError> {
    let req = HistoryRequest { since_ts: Some(since), limit: Some(HISTORY_LIMIT) };
    bus::request(bus, subjects::CTL_HISTORY, &Envelope::new(source, req), timeout).await
}

/// What to say when the answer may have left out the window's oldest events: it is as
/// long as the cap allows, and starts after `since`.
pub fn cut_warning(events: &[Event], since: u64) -> Option<String> {
    let first = events.first()?;
    (events.len() >= HISTORY_LIMIT && first.ts > since).then(|| {
        format!(
            "the window holds more than {HISTORY_LIMIT} events: the timeline starts at {} UTC, \
             not at its start; narrow the window to see earlier events",
            datetime(first.ts)
        )
    })
}
