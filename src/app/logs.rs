//! The logs view's state: one instance's log (`l` on an instance), or the logs of every
//! instance of an app merged in time order (`l` on an app or a route). One buffer type
//! serves both: a bounded buffer of lines, each from one of the view's feeds (one
//! stream per instance), follow mode, a search with `n`/`N`, a filter to one instance
//! (merged view: `i` cycles, a digit picks), and saving to a file. The streams are the
//! backend's (`Effect::Logs` / `Effect::LogsStop`); the file is written by the event loop
//! (`Effect::SaveLog`). Nothing here does I/O.

use std::collections::VecDeque;
use std::ops::Deref;

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, LogKey, Panel};
use crate::backend::LogsEvent;
use crate::protocol::{InstanceState, LogLine, LogSource, LogsStart};

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

/// One instance's stream in a view.
#[derive(Debug, Clone)]
pub struct LogFeed {
    /// Tells this stream's updates from any other's.
    pub session: u64,
    pub host: String,
    pub instance: String,
    /// The instance's index in its app: the merged view's prefix (`#3`), its colour and
    /// its digit key.
    pub index: u32,
    pub state: LogState,
    next_seq: u64,
    /// Batches that never arrived (a gap in `seq`).
    pub lost_batches: u64,
    /// The merge key of this feed's newest line: its next line never sorts before it.
    last_key: u64,
}

impl LogFeed {
    pub fn new(session: u64, host: String, instance: String, index: u32) -> LogFeed {
        LogFeed {
            session,
            host,
            instance,
            index,
            state: LogState::Connecting,
            next_seq: 0,
            lost_batches: 0,
            last_key: 0,
        }
    }

    /// The prefix's word, so an instance is told apart without colour.
    pub fn word(&self) -> String {
        format!("#{}", self.index)
    }
}

/// A line of the buffer and the feed it came from; reads as its `LogLine`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub line: LogLine,
    /// Which of the view's feeds.
    pub feed: usize,
    /// Where it merges: its time, never before its feed's previous line, so a feed's
    /// lines keep their order whatever their clock says.
    key: u64,
}

impl Deref for Logged {
    type Target = LogLine;
    fn deref(&self) -> &LogLine {
        &self.line
    }
}

#[derive(Debug, Clone)]
pub struct LogView {
    /// The app of a merged view, whose lines carry their instance's prefix; `None` for
    /// one instance's view.
    pub app: Option<String>,
    /// One per instance streamed, in the order they joined; a feed stays after its
    /// stream ends, for the lines it left.
    pub feeds: Vec<LogFeed>,
    /// In merge order (oldest first); at most `LOG_LINES_KEPT`.
    pub lines: VecDeque<Logged>,
    /// Lines dropped from the front since the view opened.
    pub dropped: u64,
    /// Auto-scroll to the newest line.
    pub follow: bool,
    /// The first line shown when not following (a position in `lines`).
    pub top: usize,
    /// The view's state, from its feeds' (`LogView::settle`).
    pub state: LogState,
    /// The search in use (`/` then Enter).
    pub search: Option<String>,
    /// The search being typed, while `/` is open.
    pub typing: Option<String>,
    /// The line (a position in `lines`) of the match `n`/`N` last jumped to.
    pub current: Option<usize>,
    /// Only the lines of the instances of this index are shown (merged view).
    pub only: Option<u32>,
}

impl LogView {
    /// One instance's view.
    pub fn new(session: u64, host: String, instance: String) -> LogView {
        LogView::of(None, vec![LogFeed::new(session, host, instance, 0)])
    }

    /// The merged view of `app`'s instances, one feed each.
    pub fn merged(app: String, feeds: Vec<LogFeed>) -> LogView {
        LogView::of(Some(app), feeds)
    }

    /// The merged view of `app` (`Some`), or one instance's view (one feed, `None`).
    pub fn of(app: Option<String>, feeds: Vec<LogFeed>) -> LogView {
        LogView {
            app,
            feeds,
            lines: VecDeque::new(),
            dropped: 0,
            follow: true,
            top: 0,
            state: LogState::Connecting,
            search: None,
            typing: None,
            current: None,
            only: None,
        }
    }

    pub fn is_merged(&self) -> bool {
        self.app.is_some()
    }

    /// The feed a stream's news is for.
    pub fn feed_of(&self, session: u64) -> Option<usize> {
        self.feeds.iter().position(|f| f.session == session)
    }

    /// Batches lost over all feeds.
    pub fn lost_batches(&self) -> u64 {
        self.feeds.iter().map(|f| f.lost_batches).sum()
    }

    /// Adds a feed's lines in merge order (by time; a feed's own lines keep their order),
    /// dropping the oldest beyond the bound. A view that is not following keeps showing
    /// the same lines, and the current match stays on its line.
    pub fn push(&mut self, feed: usize, lines: impl IntoIterator<Item = LogLine>) {
        let mut newest = self.lines.back().map_or(0, |l| l.key);
        let mut floor = self.feeds.get(feed).map_or(0, |f| f.last_key);
        // Keys never fall within a feed, so the batch is in merge order by itself.
        let batch: Vec<Logged> = lines
            .into_iter()
            .map(|line| {
                // A line of unknown time goes after everything there.
                let key = if line.ts == 0 { newest.max(floor) } else { line.ts.max(floor) };
                (floor, newest) = (key, newest.max(key));
                Logged { line, feed, key }
            })
            .collect();
        if let Some(f) = self.feeds.get_mut(feed) {
            f.last_key = floor;
        }
        if let Some(first) = batch.first().map(|l| l.key) {
            self.merge(first, batch);
        }
        let over = self.lines.len().saturating_sub(LOG_LINES_KEPT);
        if over > 0 {
            self.lines.drain(..over);
            self.dropped += over as u64;
            self.top = self.top.saturating_sub(over);
            self.current = self.current.and_then(|c| c.checked_sub(over));
        }
    }

    /// Merges a batch in merge order, whose first key is `first`, with the buffer's lines
    /// after it: one pass over that tail (the last moments of the other feeds), not one
    /// shift of it per line. Lines already there go first on equal keys.
    fn merge(&mut self, first: u64, batch: Vec<Logged>) {
        let from = self.lines.partition_point(|l| l.key <= first);
        let tail: Vec<Logged> = self.lines.drain(from..).collect();
        let (top, current) = (self.top, self.current);
        let mut old = tail.into_iter().enumerate().peekable();
        let mut new = batch.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (Some((_, o)), Some(n)) => o.key <= n.key,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            match (take_old, take_old.then(|| old.next()).flatten()) {
                (true, Some((k, line))) => {
                    // A line that moved keeps the view's window and match on it.
                    let (was, now) = (from + k, self.lines.len());
                    if was == top {
                        self.top = now;
                    }
                    if current == Some(was) {
                        self.current = Some(now);
                    }
                    self.lines.push_back(line);
                }
                _ => self.lines.extend(new.next()),
            }
        }
    }

    /// Takes the lines up to `key` (a time, inclusive) out of the front of the buffer, in
    /// merge order: what a follower that prints (`ctl logs --follow`) may print once no
    /// older line is still to come.
    pub fn take_until(&mut self, key: u64) -> Vec<Logged> {
        let n = self.lines.partition_point(|l| l.key <= key);
        self.top = self.top.saturating_sub(n);
        self.current = self.current.and_then(|c| c.checked_sub(n));
        self.lines.drain(..n).collect()
    }

    /// A line of the view's own about a feed (joined, ended, refused), at `now`.
    fn mark(&mut self, feed: usize, text: String, now: u64) {
        self.push(feed, [LogLine { ts: now, source: LogSource::Stdout, text: format!("── {text} ──") }]);
    }

    /// The view's state from its feeds': streaming while any is, and an end or refusal
    /// only once none is left to come.
    fn settle(&mut self) {
        let any = |f: fn(&LogState) -> bool| self.feeds.iter().any(|x| f(&x.state));
        self.state = if any(|s| *s == LogState::Streaming) {
            LogState::Streaming
        } else if any(|s| *s == LogState::Connecting) || self.feeds.is_empty() {
            LogState::Connecting
        } else if let [one] = self.feeds.as_slice() {
            one.state.clone()
        } else if self.feeds.iter().all(|f| matches!(f.state, LogState::Refused(_))) {
            LogState::Refused(format!("no instance's log could be read ({} refused)", self.feeds.len()))
        } else {
            LogState::Ended("no instance's log is streaming".into())
        };
    }

    /// The prefix of the feed's lines: its word (`#3`), or nothing in one instance's view.
    pub fn prefix(&self, feed: usize) -> Option<String> {
        self.is_merged().then(|| self.feeds.get(feed).map(LogFeed::word).unwrap_or_default())
    }

    /// The widest prefix, so the text of every line starts in one column.
    pub fn prefix_width(&self) -> usize {
        match self.is_merged() {
            true => self.feeds.iter().map(|f| f.word().chars().count()).max().unwrap_or(0),
            false => 0,
        }
    }

    /// Whether the line at `i` is shown (the filter to one instance).
    pub fn visible(&self, i: usize) -> bool {
        let Some(k) = self.only else { return i < self.lines.len() };
        self.lines.get(i).and_then(|l| self.feeds.get(l.feed)).is_some_and(|f| f.index == k)
    }

    /// The first shown line at or after `from`.
    pub fn next_shown(&self, from: usize) -> Option<usize> {
        (from..self.lines.len()).find(|&i| self.visible(i))
    }

    /// The last shown line before `before`.
    pub fn prev_shown(&self, before: usize) -> Option<usize> {
        (0..before.min(self.lines.len())).rev().find(|&i| self.visible(i))
    }

    /// How many lines are shown.
    pub fn shown_count(&self) -> usize {
        match self.only {
            None => self.lines.len(),
            Some(_) => (0..self.lines.len()).filter(|&i| self.visible(i)).count(),
        }
    }

    /// Where the last `rows` shown lines start.
    fn last_page(&self, rows: usize) -> usize {
        let mut at = self.lines.len();
        for _ in 0..rows {
            match self.prev_shown(at) {
                Some(p) => at = p,
                None => break,
            }
        }
        at
    }

    /// Whether a line holds the search (case-insensitive).
    pub fn is_match(&self, line: &LogLine) -> bool {
        self.search.as_deref().is_some_and(|q| contains_ci(&line.text, q))
    }

    /// How many shown lines match the search.
    pub fn match_count(&self) -> usize {
        match &self.search {
            Some(_) => {
                (0..self.lines.len()).filter(|&i| self.visible(i) && self.is_match(&self.lines[i])).count()
            }
            None => 0,
        }
    }

    /// The first line shown in a window of `rows` lines.
    pub fn first_shown(&self, rows: usize) -> usize {
        let last = self.last_page(rows);
        if self.follow { last } else { self.next_shown(self.top).unwrap_or(last).min(last) }
    }

    /// Jumps to the next (or previous) shown match after the current one, wrapping
    /// around, and keeps `MATCH_CONTEXT` lines above it. Returns whether there was one.
    fn jump(&mut self, forward: bool, rows: usize) -> bool {
        let n = self.lines.len();
        if self.search.is_none() || n == 0 {
            return false;
        }
        let from = self.current.unwrap_or(if forward { self.first_shown(rows).wrapping_sub(1) } else { n });
        let found = (1..=n)
            .map(|k| if forward { from.wrapping_add(k) % n } else { (from + n * 2 - k) % n })
            .find(|&i| self.visible(i) && self.is_match(&self.lines[i]));
        let Some(i) = found else { return false };
        self.current = Some(i);
        self.follow = false;
        self.top = i;
        for _ in 0..MATCH_CONTEXT.min(rows.saturating_sub(1) / 2) {
            match self.prev_shown(self.top) {
                Some(p) => self.top = p,
                None => break,
            }
        }
        true
    }

    /// Moves the window by `by` shown lines.
    fn scroll(&mut self, by: i64, rows: usize) {
        let last = self.last_page(rows);
        let mut at = self.first_shown(rows);
        // Past the buffer's length every step would stop at an end anyway.
        for _ in 0..by.unsigned_abs().min(self.lines.len() as u64) {
            let step =
                if by < 0 { self.prev_shown(at) } else { self.next_shown(at + 1).filter(|&p| p <= last) };
            match step {
                Some(p) => at = p,
                None => break,
            }
        }
        self.top = at;
        // Scrolling to the end follows again; anything above stops following.
        self.follow = at >= last;
    }

    /// Shows one instance's lines only (`Some(index)`), or every instance's.
    fn show_only(&mut self, only: Option<u32>) {
        self.only = only;
        self.current = None;
    }

    /// The next instance index after the one shown (`i`): all, then each in turn, then
    /// all again.
    fn next_only(&self) -> Option<u32> {
        let mut indexes: Vec<u32> = self.feeds.iter().map(|f| f.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        match self.only {
            None => indexes.first().copied(),
            Some(k) => indexes.into_iter().find(|&i| i > k),
        }
    }

    /// The shown lines as text, for saving: time, the prefix in a merged view, the text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in (0..self.lines.len()).filter(|&i| self.visible(i)).map(|i| &self.lines[i]) {
            if l.ts > 0 {
                out.push_str(&crate::protocol::clock::datetime(l.ts));
                out.push(' ');
            }
            if let Some(p) = self.prefix(l.feed) {
                out.push_str(&p);
                out.push(' ');
            }
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }

    /// The name saved files take: the instance, or the app of a merged view.
    pub fn name(&self) -> &str {
        match (&self.app, self.feeds.first()) {
            (Some(app), _) => app,
            (None, Some(f)) => &f.instance,
            (None, None) => "logs",
        }
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

/// The logs view's own keys (`f`, `n`, `N`, `w`; in a merged view also `i` and the
/// digits), when it is on top and no search is being typed; other keys go through the
/// keymap as usual.
pub fn key_action(app: &App, key: &crossterm::event::KeyEvent) -> Option<Action> {
    use crossterm::event::{KeyCode, KeyModifiers};
    let view = app.logs.as_ref().filter(|l| l.typing.is_none())?;
    if !matches!(app.overlay(), Some(Overlay::Logs)) {
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
        KeyCode::Char('i') if view.is_merged() => Some(Action::LogView(LogKey::NextInstance)),
        KeyCode::Char(c @ '0'..='9') if view.is_merged() => {
            Some(Action::LogView(LogKey::Only(c as u8 - b'0')))
        }
        _ => None,
    }
}

/// Whether an instance in this state has a container whose log can be read.
fn has_log(state: InstanceState) -> bool {
    !matches!(state, InstanceState::New | InstanceState::Deploying | InstanceState::Removed)
}

fn start_of(feed: &LogFeed) -> Effect {
    Effect::Logs(LogsStart {
        session: feed.session,
        host: feed.host.clone(),
        instance: feed.instance.clone(),
        tail: LOG_TAIL,
        follow: true,
        since: None,
    })
}

impl App {
    /// `l`: the selected instance's logs (Instances), or every instance's of the selected
    /// app (Apps) or route's app (Routes), merged.
    pub(super) fn open_logs(&mut self) -> Vec<Effect> {
        let app = match self.panel {
            Panel::Instances => return self.open_instance_logs(),
            Panel::Apps => self.selected_app().map(|a| a.name.clone()),
            Panel::Routes => self.selected_route().map(|r| r.app.clone()),
            _ => None,
        };
        let Some(app) = app else {
            self.say(
                Level::Warn,
                "logs: select an instance (2: Instances), or an app (6: Apps) or a route (3: Routes) for all its instances".into(),
            );
            return vec![];
        };
        let mut instances: Vec<(u32, String, String)> = self
            .replica
            .fleet
            .instances
            .values()
            .filter(|i| i.app == app && has_log(i.state))
            .map(|i| (i.index, i.id.clone(), i.host.clone()))
            .collect();
        // None may have a container yet (a deploy in progress): the view opens anyway, and
        // they join as they start.
        instances.sort();
        let feeds = instances
            .into_iter()
            .map(|(index, id, host)| LogFeed::new(self.next_log_session(), host, id, index))
            .collect();
        self.show_logs(LogView::merged(app, feeds))
    }

    fn open_instance_logs(&mut self) -> Vec<Effect> {
        let Some(inst) = self.selected_instance() else {
            self.say(Level::Warn, "logs: select an instance first (2: Instances)".into());
            return vec![];
        };
        let (host, instance) = (inst.host.clone(), inst.id.clone());
        let session = self.next_log_session();
        self.show_logs(LogView::new(session, host, instance))
    }

    fn next_log_session(&mut self) -> u64 {
        self.log_sessions += 1;
        self.log_sessions
    }

    /// Puts the view on top and asks for its streams (after stopping an earlier view's).
    fn show_logs(&mut self, view: LogView) -> Vec<Effect> {
        let mut effects = match self.logs.is_some() {
            true => vec![Effect::LogsStop],
            false => vec![],
        };
        effects.extend(view.feeds.iter().map(start_of));
        self.logs = Some(view);
        self.overlays.retain(|o| !matches!(o, Overlay::Detail | Overlay::Help | Overlay::Logs));
        self.overlays.push(Overlay::Logs);
        effects
    }

    /// A merged view follows its app's instances (the event loop asks at the clock's
    /// tick, once a second, not per event: a pass over the fleet's instances): an
    /// instance that got a container since (a deploy, a replacement) joins with a line
    /// saying so. One that goes ends by itself: its agent ends the stream, which the view
    /// says.
    pub fn follow_log_instances(&mut self) -> Vec<Effect> {
        let Some(view) = self.logs.as_ref() else { return vec![] };
        let Some(app) = view.app.as_deref() else { return vec![] };
        let joining: Vec<(u32, String, String, String)> = self
            .replica
            .fleet
            .instances
            .values()
            .filter(|i| i.app == app && has_log(i.state) && !view.feeds.iter().any(|f| f.instance == i.id))
            .map(|i| (i.index, i.id.clone(), i.host.clone(), i.version.clone()))
            .collect();
        let mut effects = Vec::new();
        for (index, id, host, version) in joining {
            let feed = LogFeed::new(self.next_log_session(), host.clone(), id.clone(), index);
            effects.push(start_of(&feed));
            let now = self.now;
            let Some(view) = self.logs.as_mut() else { break };
            view.feeds.push(feed);
            let k = view.feeds.len() - 1;
            view.mark(k, format!("#{index} {id} joined ({version} on {host})"), now);
            view.settle();
        }
        effects
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
                    view.top = view.last_page(rows);
                }
            }
            Action::LogView(key @ (LogKey::NextMatch | LogKey::PrevMatch)) => {
                if view.search.is_none() {
                    self.say(Level::Info, "search first with /".into());
                } else if !view.jump(key == LogKey::NextMatch, rows) {
                    self.say(Level::Warn, "no match in the buffer".into());
                }
            }
            Action::LogView(LogKey::NextInstance) if view.is_merged() => {
                let next = view.next_only();
                view.show_only(next);
            }
            Action::LogView(LogKey::Only(k)) if view.is_merged() => {
                let k = u32::from(k);
                if view.only == Some(k) {
                    view.show_only(None);
                } else if view.feeds.iter().any(|f| f.index == k) {
                    view.show_only(Some(k));
                } else {
                    self.say(Level::Warn, format!("no instance #{k} in this view (i cycles through them)"));
                }
            }
            Action::LogView(LogKey::Save) | Action::Weight => {
                let path = save_path(view.name(), self.now);
                let lines = view.shown_count();
                return vec![Effect::SaveLog { path, text: view.text(), lines }];
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

    /// News of a log stream from the backend; news of a stream no longer in the view is
    /// ignored.
    pub(super) fn apply_logs(&mut self, session: u64, event: LogsEvent) -> Vec<Effect> {
        let now = self.now;
        let Some(view) = self.logs.as_mut() else { return vec![] };
        let Some(k) = view.feed_of(session) else { return vec![] };
        let merged = view.is_merged();
        let feed = &mut view.feeds[k];
        match event {
            LogsEvent::Streaming => feed.state = LogState::Streaming,
            LogsEvent::Refused(err) => {
                // Worded by kind, so a stream that timed out is not called refused.
                let text = super::failures::failed(&format!("logs of {}", feed.instance), &err);
                feed.state = LogState::Refused(text.clone());
                if merged {
                    let word = feed.word();
                    view.mark(k, format!("{word} {text}"), now);
                }
                view.settle();
                self.say(Level::Error, text);
                return vec![];
            }
            LogsEvent::Batch(batch) => {
                if batch.seq > feed.next_seq {
                    feed.lost_batches += batch.seq - feed.next_seq;
                }
                feed.next_seq = batch.seq + 1;
                let ended = batch.end.map(|end| {
                    feed.state = LogState::Ended(end.clone());
                    format!("{} {} ended: {end}", feed.word(), feed.instance)
                });
                view.push(k, batch.lines);
                if let Some(text) = ended.filter(|_| merged) {
                    view.mark(k, text, now);
                }
            }
        }
        view.settle();
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
                follow: true,
                since: None,
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
        let session = app.logs.as_ref().map(|v| v.feeds[0].session).expect("open");
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
        v.push(0, (0..LOG_LINES_KEPT).map(|k| line(&format!("line {k}"))));
        v.follow = false;
        v.top = 100;
        v.push(0, (0..10).map(|k| line(&format!("new {k}"))));
        assert_eq!(v.lines.len(), LOG_LINES_KEPT);
        assert_eq!(v.dropped, 10);
        assert_eq!(v.top, 90);
        assert_eq!(v.lines[v.top].text, "line 100");
    }

    #[test]
    fn search_is_case_insensitive_and_wraps() {
        let mut v = LogView::new(1, "h".into(), "i".into());
        v.push(0, ["a", "ERROR one", "b", "c", "error two", "d"].map(line));
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

#[cfg(test)]
#[path = "logs_tests.rs"]
mod headless_tests;
