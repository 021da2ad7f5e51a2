//! The logs view's state (`l` on an instance): a bounded buffer of lines streamed from the
//! instance's agent, follow mode, a search with `n`/`N`, and saving to a file. The stream
//! itself is the backend's (`Effect::Logs` / `Effect::LogsStop`); the file is written by the
//! event loop (`Effect::SaveLog`). Nothing here does I/O.

use std::collections::VecDeque;

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, LogKey};
use crate::backend::LogsEvent;
use crate::protocol::LogLine;
use crate::protocol::LogsStart;

/// The most lines the view keeps; older ones are dropped (the title says so).
pub const LOG_LINES_KEPT: usize = 10_000;
/// How many past lines are asked for when the view opens.
pub const LOG_TAIL: u32 = 500;
/// Lines kept above a match when jumping to it, so its context shows.
pub const MATCH_CONTEXT: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum LogState {
    Connecting,
    Streaming,
    Ended(String),
    /// The stream did not start: what the status line said (`refused: …`, `no answer: …`).
    Refused(String),
}

#[derive(Debug, Clone)]
pub struct LogView {
    pub session: u64,
    pub host: String,
    pub instance: String,
    /// Oldest first; at most `LOG_LINES_KEPT`.
    pub lines: VecDeque<LogLine>,
    /// Lines dropped from the front since the view opened.
    pub dropped: u64,
    /// Batches that never arrived (a gap in `seq`).
    pub lost_batches: u64,
    next_seq: u64,
    /// Auto-scroll to the newest line.
    pub follow: bool,
    /// The first line shown when not following.
    pub top: usize,
    pub state: LogState,
    /// The search in use (`/` then Enter).
    pub search: Option<String>,
    /// The search being typed, while `/` is open.
    pub typing: Option<String>,
    /// The line of the match `n`/`N` last jumped to.
    pub current: Option<usize>,
}

impl LogView {
    pub fn new(session: u64, host: String, instance: String) -> LogView {
        LogView {
            session,
            host,
            instance,
            lines: VecDeque::new(),
            dropped: 0,
            lost_batches: 0,
            next_seq: 0,
            follow: true,
            top: 0,
            state: LogState::Connecting,
            search: None,
            typing: None,
            current: None,
        }
    }

    /// Appends lines, dropping the oldest beyond the bound; a view that is not following
    /// keeps showing the same lines.
    pub fn push(&mut self, lines: impl IntoIterator<Item = LogLine>) {
        for line in lines {
            self.lines.push_back(line);
        }
        let over = self.lines.len().saturating_sub(LOG_LINES_KEPT);
        if over > 0 {
            self.lines.drain(..over);
            self.dropped += over as u64;
            self.top = self.top.saturating_sub(over);
            self.current = self.current.and_then(|c| c.checked_sub(over));
        }
    }

    /// Whether a line holds the search (case-insensitive).
    pub fn is_match(&self, line: &LogLine) -> bool {
        self.search.as_deref().is_some_and(|q| contains_ci(&line.text, q))
    }

    /// How many lines match the search.
    pub fn match_count(&self) -> usize {
        match &self.search {
            Some(_) => self.lines.iter().filter(|l| self.is_match(l)).count(),
            None => 0,
        }
    }

    /// The first line shown in a window of `rows` lines.
    pub fn first_shown(&self, rows: usize) -> usize {
        let last_page = self.lines.len().saturating_sub(rows);
        if self.follow { last_page } else { self.top.min(last_page) }
    }

    /// Jumps to the next (or previous) match after the current one, wrapping around, and
    /// keeps `MATCH_CONTEXT` lines above it. Returns whether there was one.
    fn jump(&mut self, forward: bool, rows: usize) -> bool {
        let n = self.lines.len();
        if self.search.is_none() || n == 0 {
            return false;
        }
        let from = self.current.unwrap_or(if forward { self.first_shown(rows).wrapping_sub(1) } else { n });
        let found = (1..=n)
            .map(|k| if forward { from.wrapping_add(k) % n } else { (from + n * 2 - k) % n })
            .find(|&i| self.is_match(&self.lines[i]));
        let Some(i) = found else { return false };
        self.current = Some(i);
        self.follow = false;
        self.top = i.saturating_sub(MATCH_CONTEXT.min(rows.saturating_sub(1) / 2));
        true
    }

    fn scroll(&mut self, by: i64, rows: usize) {
        let start = self.first_shown(rows) as i64;
        let last_page = self.lines.len().saturating_sub(rows) as i64;
        let top = (start + by).clamp(0, last_page.max(0));
        self.top = top as usize;
        // Scrolling to the end follows again; anything above stops following.
        self.follow = top >= last_page;
    }

    /// The whole buffer as text, for saving.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            if l.ts > 0 {
                out.push_str(&crate::protocol::clock::datetime(l.ts));
                out.push(' ');
            }
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }
}

/// Case-insensitive substring test without allocating for ASCII queries.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    find_ci(hay, needle, 0).is_some()
}

/// The byte range of the first case-insensitive (ASCII) match of `needle` in `hay` at or
/// after `from`.
pub fn find_ci(hay: &str, needle: &str, from: usize) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (from..=h.len().checked_sub(n.len())?)
        .filter(|&i| hay.is_char_boundary(i) && hay.is_char_boundary(i + n.len()))
        .find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
        .map(|i| (i, i + n.len()))
}

/// `./<instance>-<YYYYMMDD-HHMMSS>.log`.
pub fn save_path(instance: &str, now: u64) -> String {
    let stamp: String = crate::protocol::clock::datetime(now)
        .chars()
        .map(|c| if c == ' ' { '-' } else { c })
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    // `2026-11-25-10:12:01` became `2026-11-25-101201`; keep `YYYYMMDD-HHMMSS`.
    let stamp: String = match stamp.rsplit_once('-') {
        Some((date, time)) => format!("{}-{time}", date.replace('-', "")),
        None => stamp,
    };
    format!("./{instance}-{stamp}.log")
}

/// The logs view's own keys (`f`, `n`, `N`, `w`), when it is on top and no search is
/// being typed; other keys go through the keymap as usual.
pub fn key_action(app: &App, key: &crossterm::event::KeyEvent) -> Option<Action> {
    use crossterm::event::{KeyCode, KeyModifiers};
    if !matches!(app.overlay(), Some(Overlay::Logs)) || app.logs.as_ref().is_none_or(|l| l.typing.is_some()) {
        return None;
    }
    if key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) {
        return None;
    }
    match key.code {
        KeyCode::Char('f') => Some(Action::LogView(LogKey::Follow)),
        KeyCode::Char('n') => Some(Action::LogView(LogKey::NextMatch)),
        KeyCode::Char('N') => Some(Action::LogView(LogKey::PrevMatch)),
        KeyCode::Char('w') => Some(Action::LogView(LogKey::Save)),
        _ => None,
    }
}

impl App {
    /// `l`: open the selected instance's logs.
    pub(super) fn open_logs(&mut self) -> Vec<Effect> {
        let Some(inst) =
            (self.panel == crate::actions::Panel::Instances).then(|| self.selected_instance()).flatten()
        else {
            self.say(Level::Warn, "logs: select an instance first (2: Instances)".into());
            return vec![];
        };
        let (host, instance) = (inst.host.clone(), inst.id.clone());
        self.log_sessions += 1;
        let session = self.log_sessions;
        self.logs = Some(LogView::new(session, host.clone(), instance.clone()));
        self.overlays.retain(|o| !matches!(o, Overlay::Detail | Overlay::Help | Overlay::Logs));
        self.overlays.push(Overlay::Logs);
        vec![Effect::Logs(LogsStart { session, host, instance, tail: LOG_TAIL, follow: true })]
    }

    /// Keys while the logs view is on top.
    pub(super) fn update_logs(&mut self, action: Action) -> Vec<Effect> {
        // The view's border takes one row less than a table's border and column header.
        let rows = self.page_rows.max(1) + 1;
        let Some(view) = self.logs.as_mut() else {
            self.overlays.retain(|o| !matches!(o, Overlay::Logs));
            return vec![];
        };
        if let Some(typed) = view.typing.as_mut() {
            match action {
                Action::Input(c) => typed.push(c),
                Action::Backspace => {
                    typed.pop();
                }
                Action::ClearInput => typed.clear(),
                Action::Submit => {
                    let q = view.typing.take().unwrap_or_default();
                    view.current = None;
                    view.search = (!q.is_empty()).then_some(q);
                    if view.search.is_some() && !view.jump(true, rows) {
                        let q = view.search.clone().unwrap_or_default();
                        self.say(Level::Warn, format!("no line matches {q:?}"));
                    }
                }
                Action::Back | Action::Cancelled | Action::Quit => view.typing = None,
                _ => {}
            }
            return vec![];
        }
        match action {
            Action::Back | Action::Quit | Action::Cancelled | Action::Logs => return self.close_logs(),
            Action::Up => view.scroll(-1, rows),
            Action::Down => view.scroll(1, rows),
            Action::PageUp => view.scroll(-(rows as i64), rows),
            Action::PageDown => view.scroll(rows as i64, rows),
            Action::Top => view.scroll(i64::MIN / 2, rows),
            Action::Bottom => view.follow = true,
            Action::Filter => view.typing = Some(String::new()),
            Action::LogView(LogKey::Follow) => {
                view.follow = !view.follow;
                if !view.follow {
                    view.top = view.lines.len().saturating_sub(rows);
                }
            }
            Action::LogView(key @ (LogKey::NextMatch | LogKey::PrevMatch)) => {
                if view.search.is_none() {
                    self.say(Level::Info, "search first with /".into());
                } else if !view.jump(key == LogKey::NextMatch, rows) {
                    self.say(Level::Warn, "no match in the buffer".into());
                }
            }
            Action::LogView(LogKey::Save) | Action::Weight => {
                let path = save_path(&view.instance, self.now);
                return vec![Effect::SaveLog { path, text: view.text(), lines: view.lines.len() }];
            }
            Action::Scroll(by) => view.scroll(i64::from(by), rows),
            Action::Help => self.overlays.push(Overlay::Help),
            _ => {}
        }
        vec![]
    }

    pub(super) fn close_logs(&mut self) -> Vec<Effect> {
        self.overlays.retain(|o| !matches!(o, Overlay::Logs));
        match self.logs.take() {
            Some(_) => vec![Effect::LogsStop],
            None => vec![],
        }
    }

    /// News of a log stream from the backend; news of an older stream is ignored.
    pub(super) fn apply_logs(&mut self, session: u64, event: LogsEvent) -> Vec<Effect> {
        let Some(view) = self.logs.as_mut().filter(|v| v.session == session) else { return vec![] };
        match event {
            LogsEvent::Streaming => view.state = LogState::Streaming,
            LogsEvent::Refused(err) => {
                // Worded by kind, so a stream that timed out is not called refused.
                let text = super::failures::failed(&format!("logs of {}", view.instance), &err);
                view.state = LogState::Refused(text.clone());
                self.say(Level::Error, text);
            }
            LogsEvent::Batch(batch) => {
                if batch.seq > view.next_seq {
                    view.lost_batches += batch.seq - view.next_seq;
                }
                view.next_seq = batch.seq + 1;
                view.push(batch.lines);
                if let Some(end) = batch.end {
                    view.state = LogState::Ended(end);
                }
            }
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Panel;

    use crate::backend::{CommandError, Inbound};
    use crate::plane::fixture::T0;
    use crate::protocol::{ErrorCode, LogBatch, LogSource, WireError};

    fn app() -> App {
        let mut app = crate::views::harness::fixture_app(0);
        app.page_rows = 10;
        app
    }

    fn batch(seq: u64, texts: &[&str], end: Option<&str>) -> Inbound {
        let lines = texts
            .iter()
            .map(|t| LogLine { ts: T0 + seq * 1000, source: LogSource::Stdout, text: t.to_string() })
            .collect();
        let body = LogBatch { instance: "x".into(), seq, lines, end: end.map(Into::into) };
        Inbound::Logs { session: 1, event: LogsEvent::Batch(body) }
    }

    #[test]
    fn logs_open_stream_search_save_and_close() {
        let mut app = app();
        // Not on an instance: a clear message, no stream.
        assert!(app.update(Action::Logs).is_empty());
        assert!(app.logs.is_none());
        app.update(Action::ShowPanel(Panel::Instances));
        let inst = app.selected_instance().cloned().expect("an instance");
        let effects = app.update(Action::Logs);
        assert_eq!(
            effects,
            vec![Effect::Logs(LogsStart {
                session: 1,
                host: inst.host.clone(),
                instance: inst.id.clone(),
                tail: LOG_TAIL,
                follow: true
            })]
        );
        assert!(matches!(app.overlay(), Some(Overlay::Logs)));
        app.apply(Inbound::Logs { session: 1, event: LogsEvent::Streaming });
        let many: Vec<String> = (0..40).map(|k| format!("GET /item/{k} 200")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        app.apply(batch(0, &many, None));
        app.apply(batch(1, &["ERROR pool exhausted", "retrying"], None));
        app.apply(batch(2, &["error again"], None));
        let v = app.logs.as_ref().expect("open");
        assert_eq!((v.lines.len(), v.state.clone(), v.follow), (43, LogState::Streaming, true));
        // A batch from an older stream is ignored.
        let stale = LogBatch { instance: "x".into(), seq: 0, lines: vec![], end: Some("old".into()) };
        app.apply(Inbound::Logs { session: 7, event: LogsEvent::Batch(stale) });
        assert_eq!(app.logs.as_ref().map(|v| v.state.clone()), Some(LogState::Streaming));
        // `/error` Enter: typed as text (a `q` would be text too), jumps to the first match.
        app.update(Action::Filter);
        assert_eq!(app.input_mode(), crate::actions::prompt::InputMode::Text);
        for c in "error".chars() {
            app.update(Action::Input(c));
        }
        app.update(Action::Submit);
        let v = app.logs.as_ref().expect("open");
        assert_eq!(v.search.as_deref(), Some("error"));
        assert_eq!(v.current, Some(40));
        assert!(!v.follow, "a match stops following");
        assert_eq!(v.top, 40 - MATCH_CONTEXT, "lines before the match stay visible");
        let first = v.first_shown(11);
        assert!(first <= 40 - MATCH_CONTEXT && 40 + 2 < first + 11, "the match and its context show");
        app.update(Action::LogView(LogKey::NextMatch));
        assert_eq!(app.logs.as_ref().and_then(|v| v.current), Some(42));
        app.update(Action::LogView(LogKey::PrevMatch));
        assert_eq!(app.logs.as_ref().and_then(|v| v.current), Some(40));
        app.update(Action::LogView(LogKey::Follow));
        assert!(app.logs.as_ref().is_some_and(|v| v.follow));
        // `w` saves through the event loop.
        let saved = app.update(Action::LogView(LogKey::Save));
        match saved.as_slice() {
            [Effect::SaveLog { path, text, lines }] => {
                assert!(path.starts_with(&format!("./{}-", inst.id)) && path.ends_with(".log"), "{path}");
                assert_eq!(*lines, 43);
                assert!(text.contains("ERROR pool exhausted\n"));
            }
            other => panic!("expected a save, got {other:?}"),
        }
        // The stream ends: said in the state.
        app.apply(batch(3, &[], Some("the log ended")));
        assert_eq!(app.logs.as_ref().map(|v| v.state.clone()), Some(LogState::Ended("the log ended".into())));
        // Esc closes the view and stops the stream.
        assert_eq!(app.update(Action::Back), vec![Effect::LogsStop]);
        assert!(app.logs.is_none() && app.overlay().is_none());
    }

    #[test]
    fn a_refused_stream_says_why() {
        let mut app = app();
        app.update(Action::ShowPanel(Panel::Instances));
        app.update(Action::Logs);
        let refused = LogsEvent::Refused(CommandError::Refused(WireError::new(
            ErrorCode::BadRequest,
            "the sim runtime driver cannot stream logs",
        )));
        app.apply(Inbound::Logs { session: 1, event: refused });
        let Some(LogState::Refused(said)) = app.logs.as_ref().map(|v| v.state.clone()) else {
            panic!("not refused: {:?}", app.logs.as_ref().map(|v| &v.state))
        };
        assert!(said.starts_with("refused: logs of "), "{said}");
        assert!(said.ends_with("cannot stream logs (bad_request)"), "{said}");
        assert!(app.status.as_ref().is_some_and(|s| s.text == said));
        // A stream the agent did not answer is no refusal.
        app.update(Action::Back);
        app.update(Action::Logs);
        let session = app.logs.as_ref().map(|v| v.session).expect("open");
        let subject = "qd.v1.agent.h1.logs.alice.start".to_string();
        let late = CommandError::Timeout { subject, timeout: std::time::Duration::from_secs(5) };
        app.apply(Inbound::Logs { session, event: LogsEvent::Refused(late) });
        let state = app.logs.as_ref().map(|v| v.state.clone());
        assert!(
            matches!(&state, Some(LogState::Refused(s)) if s.starts_with("no answer: logs of ")),
            "{state:?}"
        );
    }

    fn line(text: &str) -> LogLine {
        LogLine { ts: 0, source: LogSource::Stdout, text: text.into() }
    }

    #[test]
    fn the_buffer_is_bounded_and_keeps_the_view_on_its_lines() {
        let mut v = LogView::new(1, "h".into(), "i".into());
        v.push((0..LOG_LINES_KEPT).map(|k| line(&format!("line {k}"))));
        v.follow = false;
        v.top = 100;
        v.push((0..10).map(|k| line(&format!("new {k}"))));
        assert_eq!(v.lines.len(), LOG_LINES_KEPT);
        assert_eq!(v.dropped, 10);
        assert_eq!(v.top, 90);
        assert_eq!(v.lines[v.top].text, "line 100");
    }

    #[test]
    fn search_is_case_insensitive_and_wraps() {
        let mut v = LogView::new(1, "h".into(), "i".into());
        v.push(["a", "ERROR one", "b", "c", "error two", "d"].map(line));
        v.search = Some("error".into());
        assert_eq!(v.match_count(), 2);
        assert!(v.jump(true, 10));
        assert_eq!(v.current, Some(1));
        assert!(v.jump(true, 10));
        assert_eq!(v.current, Some(4));
        assert!(v.jump(true, 10));
        assert_eq!(v.current, Some(1), "wraps");
        assert!(v.jump(false, 10));
        assert_eq!(v.current, Some(4), "wraps backwards");
        assert_eq!(find_ci("x Error y", "error", 0), Some((2, 7)));
        assert_eq!(find_ci("é", "x", 0), None);
    }

    #[test]
    fn save_path_names_instance_and_time() {
        assert_eq!(save_path("shop-web-0-aaaa", 1_795_601_521_123), "./shop-web-0-aaaa-20261125-101201.log");
    }
}
