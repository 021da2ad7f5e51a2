//! Identical refusals from one client are counted, not recorded one by one. A client that
//! sends the same bad command thousands of times a second would otherwise fill the event
//! history with copies of one refusal (and evict the real history within minutes).
//!
//! The first refusal is recorded at once. Identical ones that follow within the window are
//! counted; when the window ends, or the client is refused for something else, one summary
//! record says how many there were. "Identical": same verb, source, user (the subject's),
//! operator, error code and reason.

use std::collections::HashMap;

use crate::protocol::{AuditRecord, ErrorCode, Operator, Repeated};

/// How long identical refusals are counted before their summary is recorded.
pub(crate) const WINDOW_MS: u64 = 10_000;

/// The most clients with an open window; beyond it the oldest window is closed early, so
/// a flood from many sources costs memory in proportion to this, not to the flood.
const MAX_OPEN: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
struct Key {
    verb: String,
    by: Option<String>,
    operator: Option<Operator>,
    code: ErrorCode,
    reason: String,
}

impl Key {
    fn of(record: &AuditRecord) -> Option<Key> {
        let error = record.outcome.error.as_ref()?;
        Some(Key {
            verb: record.verb.clone(),
            by: record.by.clone(),
            operator: record.operator.clone(),
            code: error.code,
            reason: error.reason.clone(),
        })
    }
}

/// One client's open window: what is being counted and since when.
struct Window {
    key: Key,
    opened: u64,
    count: u64,
    first_ts: u64,
    /// The newest counted refusal: its command id and request stand for all of them.
    last: Option<(u64, AuditRecord)>,
}

impl Window {
    fn summary(self) -> Option<AuditRecord> {
        let (last_ts, mut record) = self.last?;
        record.repeated = Some(Repeated { count: self.count, first_ts: self.first_ts, last_ts });
        Some(record)
    }
}

/// The open windows, by client (the envelope's `source`).
pub(crate) struct Refusals {
    window_ms: u64,
    open: HashMap<String, Window>,
}

impl Default for Refusals {
    fn default() -> Self {
        Refusals::new(WINDOW_MS)
    }
}

impl Refusals {
    pub fn new(window_ms: u64) -> Self {
        Refusals { window_ms, open: HashMap::new() }
    }

    /// A refusal decided at `now` (ms): the records to commit now, in order. Empty when it
    /// was counted in an open window.
    pub fn refused(&mut self, record: AuditRecord, now: u64) -> Vec<AuditRecord> {
        let Some(key) = Key::of(&record) else { return vec![record] };
        let mut out = Vec::new();
        if let Some(w) = self.open.get_mut(&record.source) {
            if w.key == key && now < w.opened.saturating_add(self.window_ms) {
                if w.count == 0 {
                    w.first_ts = now;
                }
                w.count += 1;
                w.last = Some((now, record));
                return out;
            }
            // Something else, or the window is over: its summary comes first.
            out.extend(self.open.remove(&record.source).and_then(Window::summary));
        } else if self.open.len() >= MAX_OPEN {
            let oldest = self.open.iter().min_by_key(|(_, w)| w.opened).map(|(k, _)| k.clone());
            out.extend(oldest.and_then(|k| self.open.remove(&k)).and_then(Window::summary));
        }
        self.open
            .insert(record.source.clone(), Window { key, opened: now, count: 0, first_ts: now, last: None });
        out.push(record);
        out
    }

    /// Closes the windows that ended by `now`: the summaries of those that counted any.
    pub fn due(&mut self, now: u64) -> Vec<AuditRecord> {
        let window_ms = self.window_ms;
        let ended: Vec<String> = self
            .open
            .iter()
            .filter(|(_, w)| now >= w.opened.saturating_add(window_ms))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<(u64, AuditRecord)> = ended
            .iter()
            .filter_map(|k| self.open.remove(k))
            .filter_map(|w| {
                let opened = w.opened;
                w.summary().map(|r| (opened, r))
            })
            .collect();
        out.sort_by_key(|(opened, _)| *opened);
        out.into_iter().map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{AuditOutcome, WireError};

    fn refusal(source: &str, id: &str, reason: &str) -> AuditRecord {
        AuditRecord {
            verb: "deploy".into(),
            by: Some("alice".into()),
            command_id: id.into(),
            source: source.into(),
            operator: None,
            request: serde_json::json!({"app": "Bad"}),
            outcome: AuditOutcome {
                accepted: false,
                operation_id: None,
                detail: None,
                error: Some(WireError::bad_request(reason)),
            },
            repeated: None,
        }
    }

    fn count(records: &[AuditRecord]) -> u64 {
        records.iter().map(|r| r.repeated.map_or(1, |x| x.count)).sum()
    }

    #[test]
    fn identical_refusals_are_counted_in_one_summary_when_the_window_ends() {
        let mut r = Refusals::new(10_000);
        let first = r.refused(refusal("ctl/a", "c-0", "bad app"), 1_000);
        assert_eq!(first.len(), 1, "the first is recorded at once");
        assert_eq!(first[0].repeated, None);
        for i in 1..3412 {
            assert!(r.refused(refusal("ctl/a", &format!("c-{i}"), "bad app"), 1_000 + i).is_empty());
        }
        assert!(r.due(10_999).is_empty(), "the window is still open");
        let summary = r.due(11_000);
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].repeated, Some(Repeated { count: 3411, first_ts: 1_001, last_ts: 4_411 }));
        assert_eq!(summary[0].command_id, "c-3411", "the newest stands for them");
        assert_eq!(count(&first) + count(&summary), 3412);
        // A new window: the next one is recorded at once again.
        assert_eq!(r.refused(refusal("ctl/a", "c-x", "bad app"), 12_000).len(), 1);
    }

    #[test]
    fn a_different_refusal_closes_the_window_first_and_other_clients_count_apart() {
        let mut r = Refusals::new(10_000);
        assert_eq!(r.refused(refusal("ctl/a", "a-0", "bad app"), 0).len(), 1);
        assert_eq!(r.refused(refusal("ctl/b", "b-0", "bad app"), 1).len(), 1, "another client");
        assert!(r.refused(refusal("ctl/a", "a-1", "bad app"), 2).is_empty());
        assert!(r.refused(refusal("ctl/b", "b-1", "bad app"), 3).is_empty());
        let out = r.refused(refusal("ctl/a", "a-2", "bad version"), 4);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].repeated.map(|x| x.count), Some(1));
        assert_eq!(out[0].command_id, "a-1");
        assert_eq!(out[1].command_id, "a-2");
        assert_eq!(out[1].repeated, None);
        // A window with no repeats closes without a record.
        let due = r.due(20_000);
        assert_eq!(due.len(), 1, "only b's summary: {due:?}");
        assert_eq!(due[0].source, "ctl/b");
    }

    #[test]
    fn an_accepted_command_is_never_counted() {
        let mut r = Refusals::new(10_000);
        let mut ok = refusal("ctl/a", "c-1", "");
        ok.outcome = AuditOutcome { accepted: true, operation_id: None, detail: None, error: None };
        assert_eq!(r.refused(ok.clone(), 0).len(), 1);
        assert_eq!(r.refused(ok, 1).len(), 1);
    }

    #[test]
    fn many_clients_keep_a_bounded_number_of_windows() {
        let mut r = Refusals::new(10_000);
        let mut counted = 0;
        for i in 0..(MAX_OPEN as u64 + 10) {
            let source = format!("ctl/{i}");
            counted += count(&r.refused(refusal(&source, "x", "bad"), i));
            counted += count(&r.refused(refusal(&source, "y", "bad"), i));
        }
        assert!(r.open.len() <= MAX_OPEN);
        counted += count(&r.due(u64::MAX));
        assert_eq!(counted, 2 * (MAX_OPEN as u64 + 10), "every refusal is counted once");
    }
}
