//! Answers to `qd.v1.ctl.snapshot` and the sizes of `qd.v1.ctl.history`, bounded by the
//! bus's max_payload. A whole fleet of 20 000 instances is ~9 MB, far above nats-server's
//! default 1 MB, so a paging client gets the fleet's JSON text in parts: it is encoded once
//! per revision and kept, so that every page of one read comes from the same text.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::protocol::{
    ErrorCode, Event, Fleet, SnapshotPage, SnapshotRequest, WireError, snapshot_cuts, snapshot_part,
};

/// The largest snapshot part, whatever the server allows: pages stay quick to send.
pub(crate) const MAX_PART: usize = 512 * 1024;

/// Room for the envelope and the reply around a part or a list of events.
const ENVELOPE_ROOM: usize = 4 * 1024;

/// How long a new read may reuse the newest encoding of the current revision. Metrics and
/// `last_heartbeat` change without a revision, so an encoding kept for as long as the
/// revision stands would show them ever older in a quiet fleet; within this, reads in a
/// burst (several cockpits after a reconnect) share one encoding.
const FRESH: Duration = Duration::from_secs(1);

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
    // `[a,b,c]`: two brackets and one comma fewer than events, so each event counts with a
    // comma and the start is one byte.
    let mut used: usize = 1;
    let mut keep = 0;
    for event in events.iter().rev() {
        // An event that cannot be encoded would not be sent either; count it as too big.
        let size = serde_json::to_vec(event).map(|b| b.len()).unwrap_or(usize::MAX);
        let size = size.saturating_add(1);
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

/// One encoding of the fleet: its text at `rev`, where it is cut, and when it was made.
struct Encoded {
    rev: u64,
    id: u64,
    at: Instant,
    text: Arc<str>,
    cuts: Vec<usize>,
}

/// The kept encodings, newest last, and the id the next one gets.
#[derive(Default)]
struct Kept {
    list: VecDeque<Encoded>,
    next_id: u64,
}

pub(crate) struct Pages {
    kept: Mutex<Kept>,
    /// `FRESH`, but for tests.
    fresh: Duration,
}

impl Default for Pages {
    fn default() -> Self {
        Pages { kept: Mutex::default(), fresh: FRESH }
    }
}

impl Pages {
    /// Answers a paged request. A request without `rev` starts a read: it gets the newest
    /// encoding when that is at the current revision and younger than `FRESH`, else a new
    /// one. `current` is called only then; given the revision of an encoding it may reuse,
    /// it returns the fleet's revision and, unless that is the one, the fleet's JSON text.
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
            Some(rev) => find(&kept.list, rev, req.encoding)?,
            None => {
                let reusable = kept.list.back().filter(|e| e.at.elapsed() < self.fresh).map(|e| e.rev);
                match current(reusable)? {
                    (rev, _) if Some(rev) == reusable => kept.list.len() - 1,
                    (rev, Some(text)) => {
                        let cuts = snapshot_cuts(&text, max_part);
                        let id = kept.next_id;
                        kept.next_id += 1;
                        kept.list.push_back(Encoded {
                            rev,
                            id,
                            at: Instant::now(),
                            text: Arc::from(text),
                            cuts,
                        });
                        while kept.list.len() > KEPT {
                            kept.list.pop_front();
                        }
                        kept.list.len() - 1
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
            kept.list.get(index).ok_or_else(|| WireError::new(ErrorCode::Internal, "lost an encoding"))?;
        let pages = encoded.cuts.len();
        let part = snapshot_part(&encoded.text, &encoded.cuts, page as usize).ok_or_else(|| {
            WireError::bad_request(format!("page {page} is past the last (the snapshot has {pages} pages)"))
        })?;
        Ok(SnapshotPage {
            rev: encoded.rev,
            encoding: encoded.id,
            page,
            pages: u32::try_from(pages).unwrap_or(u32::MAX),
            part: part.to_string(),
        })
    }
}

/// The kept encoding a read at `rev` (and `encoding`, when the client names it) is on.
/// Without `encoding` only an unambiguous `rev` will do: parts of two texts never mix.
fn find(list: &VecDeque<Encoded>, rev: u64, encoding: Option<u64>) -> Result<usize, WireError> {
    let mut at_rev = list.iter().enumerate().filter(|(_, e)| e.rev == rev);
    let found = match encoding {
        Some(id) => at_rev.find(|(_, e)| e.id == id).map(|(i, _)| i),
        None => match (at_rev.next(), at_rev.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        },
    };
    found.ok_or_else(|| {
        let newest = list.back().map(|e| e.rev.to_string()).unwrap_or_else(|| "none".into());
        WireError::new(
            ErrorCode::Conflict,
            format!(
                "the snapshot moved on from revision {rev} (newest kept: {newest}); start again from page 0"
            ),
        )
    })
}

/// The fleet's JSON text at its revision, as the paged snapshot carries it.
pub(crate) fn fleet_text(fleet: &Fleet) -> Result<String, WireError> {
    serde_json::to_string(fleet)
        .map_err(|e| WireError::new(ErrorCode::Internal, format!("cannot encode the fleet: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::snapshot::join;
    use crate::plane::fixture::fixture;

    /// A fleet with text that is not ASCII in it, so cuts land inside multi-byte characters.
    fn fleet() -> Fleet {
        let (mut fleet, _) = fixture(7, 12, 40);
        for (i, host) in fleet.hosts.values_mut().enumerate() {
            host.info.hostname = format!("hôte-{i}-東京-🚢");
            host.info.warnings = vec!["überlastet \"quoted\" \\ back".into()];
        }
        fleet
    }

    fn encoder(fleet: &Fleet) -> impl FnOnce(Option<u64>) -> Result<(u64, Option<String>), WireError> + '_ {
        move |newest| {
            if newest == Some(fleet.revision) {
                return Ok((fleet.revision, None));
            }
            fleet_text(fleet).map(|t| (fleet.revision, Some(t)))
        }
    }

    /// Reads every page the way the client does and joins them.
    fn read_all(pages: &Pages, fleet: &Fleet, max_part: usize) -> (u32, Fleet) {
        let first = pages
            .page(&SnapshotRequest { page: Some(0), ..Default::default() }, max_part, encoder(fleet))
            .unwrap();
        let mut text = first.part.clone();
        for n in 1..first.pages {
            let req = SnapshotRequest { page: Some(n), rev: Some(first.rev), encoding: Some(first.encoding) };
            let page = pages.page(&req, max_part, |_| panic!("a page at a known rev never encodes")).unwrap();
            assert_eq!((page.rev, page.page, page.pages), (first.rev, n, first.pages));
            assert!(page.part.len() <= max_part);
            text.push_str(&page.part);
        }
        (first.pages, join(&text, first.rev).unwrap())
    }

    #[test]
    fn pages_round_trip_a_fleet_with_non_ascii_text() {
        let fleet = fleet();
        let text = fleet_text(&fleet).unwrap();
        assert!(!text.is_ascii());
        // Small odd part sizes cut inside 2-, 3- and 4-byte characters somewhere.
        for max_part in [5, 7, 1000, 4099] {
            let (pages, back) = read_all(&Pages::default(), &fleet, max_part);
            assert!(pages > 1, "{max_part}: {pages} pages");
            assert_eq!(back, fleet, "max_part {max_part}");
        }
    }

    #[test]
    fn cuts_fall_on_char_boundaries_and_cover_the_text() {
        let text = "aé東🚢".repeat(50);
        for max_part in [1, 4, 5, 6, 9, 100, 10_000] {
            let cuts = snapshot_cuts(&text, max_part);
            let joined: String = (0..cuts.len()).map(|i| snapshot_part(&text, &cuts, i).unwrap()).collect();
            assert_eq!(joined, text);
            assert!(snapshot_part(&text, &cuts, cuts.len()).is_none());
        }
        assert_eq!(snapshot_cuts("", 10), vec![0]);
    }

    #[test]
    fn a_small_fleet_fits_in_one_page() {
        let (fleet, _) = fixture(3, 3, 0);
        let pages = Pages::default();
        let first = pages
            .page(
                &SnapshotRequest { page: Some(0), ..Default::default() },
                part_size(1024 * 1024),
                encoder(&fleet),
            )
            .unwrap();
        assert_eq!((first.page, first.pages, first.rev), (0, 1, fleet.revision));
        assert_eq!(join(&first.part, first.rev).unwrap(), fleet);
    }

    #[test]
    fn a_stale_rev_is_refused_and_a_past_page_is_a_bad_request() {
        let mut fleet = fleet();
        let pages = Pages::default();
        let start = SnapshotRequest { page: Some(0), ..Default::default() };
        let first = pages.page(&start, 100, encoder(&fleet)).unwrap();
        let old_rev = first.rev;
        // The fleet moves on twice and two reads start: the first encoding is dropped.
        for _ in 0..KEPT {
            fleet.revision += 1;
            pages.page(&start, 100, encoder(&fleet)).unwrap();
        }
        let err = pages.page(
            &SnapshotRequest { page: Some(1), rev: Some(old_rev), encoding: None },
            100,
            encoder(&fleet),
        );
        let err = err.unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(err.reason.contains("moved on"), "{err}");
        // The newer one a reader may still be on is kept.
        let kept = SnapshotRequest { page: Some(1), rev: Some(fleet.revision - 1), encoding: None };
        assert_eq!(pages.page(&kept, 100, encoder(&fleet)).unwrap().rev, fleet.revision - 1);
        let past =
            SnapshotRequest { page: Some(first.pages + 1000), rev: Some(fleet.revision), encoding: None };
        assert_eq!(pages.page(&past, 100, encoder(&fleet)).unwrap_err().code, ErrorCode::BadRequest);
    }

    /// However many reads start at new revisions, at most `KEPT` encodings are held.
    #[test]
    fn at_most_kept_encodings_are_held_whatever_the_reads() {
        let mut fleet = fleet();
        let pages = Pages::default();
        let start = SnapshotRequest { page: Some(0), ..Default::default() };
        for _ in 0..20 {
            fleet.revision += 1;
            pages.page(&start, 100, encoder(&fleet)).unwrap();
        }
        let kept = pages.kept.lock().unwrap();
        assert_eq!(kept.list.len(), KEPT);
        assert_eq!(kept.list.back().map(|e| e.rev), Some(fleet.revision));
    }

    #[test]
    fn a_revision_encoded_twice_is_told_apart_by_its_encoding() {
        // Metrics change without a revision, so an old enough encoding is made again.
        let pages = Pages { kept: Mutex::default(), fresh: Duration::ZERO };
        let mut fleet = fleet();
        let start = SnapshotRequest { page: Some(0), ..Default::default() };
        let first = pages.page(&start, 100, encoder(&fleet)).unwrap();
        fleet.hosts.values_mut().for_each(|h| h.last_heartbeat += 1);
        let second = pages.page(&start, 100, encoder(&fleet)).unwrap();
        assert_eq!(first.rev, second.rev);
        assert_ne!(first.encoding, second.encoding);
        // Each reader gets the rest of its own text.
        for (read, heartbeat_moved) in [(&first, false), (&second, true)] {
            let mut text = read.part.clone();
            for n in 1..read.pages {
                let req =
                    SnapshotRequest { page: Some(n), rev: Some(read.rev), encoding: Some(read.encoding) };
                text.push_str(&pages.page(&req, 100, |_| panic!("no encoding mid-read")).unwrap().part);
            }
            let back = join(&text, read.rev).unwrap();
            assert_eq!(back == fleet, heartbeat_moved);
        }
        // Without the encoding, the revision alone is ambiguous: refused, never mixed.
        let bare = SnapshotRequest { page: Some(1), rev: Some(first.rev), encoding: None };
        assert_eq!(pages.page(&bare, 100, encoder(&fleet)).unwrap_err().code, ErrorCode::Conflict);
    }

    #[test]
    fn parts_fit_the_payload_even_fully_escaped() {
        assert_eq!(part_size(1024 * 1024), 512 * 1024 - ENVELOPE_ROOM);
        assert!(part_size(64 * 1024) * 2 + ENVELOPE_ROOM <= 64 * 1024);
        assert_eq!(part_size(100 * 1024 * 1024), MAX_PART);
        assert_eq!(part_size(0), 4);
    }

    #[test]
    fn history_keeps_the_newest_events_that_fit() {
        let (_, events) = fixture(5, 6, 20);
        assert!(events.len() > 10);
        let size = serde_json::to_vec(&events).unwrap().len();
        let mut all = events.clone();
        assert_eq!(fit_history(&mut all, size), 0);
        let mut some = events.clone();
        let dropped = fit_history(&mut some, size / 2);
        assert!(dropped > 0 && !some.is_empty());
        assert!(serde_json::to_vec(&some).unwrap().len() <= size / 2);
        assert_eq!(some.last(), events.last());
        assert_eq!(some.len() + dropped, events.len());
    }
}
