//! The cockpit's state, `update(action) -> effects`, and the frame context the views read
//! (`frame`). Nothing here draws or touches the terminal: the event loop, the terminal and
//! the frames are `crate::tui`'s.

mod alert_ops;
pub mod alerts;
pub mod cells;
mod click;
mod clipboard;
pub mod columns;
mod confirm;
mod context;
pub mod facts;
pub mod failures;
mod filter;
mod following;
mod forms;
pub mod forwards;
pub mod frame;
mod host_ops;
pub mod logs;
mod marks;
mod navigation;
mod notes;
mod palette;
pub mod pulls;
mod read_only;
pub mod releases;
mod restart;
mod routes;
pub mod row_cache;
pub mod rows;
mod scale;
#[cfg(test)]
pub(crate) mod scratch;
mod shell;
pub mod sort_key;
mod sorting;
pub mod traffic;
mod update;
mod window;
pub mod wizard;

#[cfg(test)]
mod tests;

pub use context::PlaneLabel;
pub use forms::{PaletteState, RouteForm};
pub use frame::{FrameContext, Link};
pub use window::window_start;
pub use wizard::Wizard;

use std::borrow::Cow;

use crate::actions::keymap::Keymap;
use crate::actions::prompt::InputMode;
use crate::actions::{Panel, Pending};
use crate::backend::{Connection, Replica};
use crate::protocol::{AppSpec, Event, Host, Instance, Route};
use crate::theme::Theme;
use facts::FleetFacts;
use rows::{PanelView, RowKey};

/// What sits over the panels, topmost wins.
#[derive(Debug, Clone)]
pub enum Overlay {
    Help,
    Detail,
    Confirm(Box<Pending>),
    /// `:` the command palette.
    Palette(Box<PaletteState>),
    /// `/` the filter being typed; it applies as it is typed.
    Filter(String),
    /// `a` / `w`: the route form.
    Form(Box<RouteForm>),
    /// `l`: the logs view; its state is `App::logs`.
    Logs,
    /// `d`: the guided deploy, from the form to the end of the operation.
    Wizard(Box<Wizard>),
}

/// A line for the status bar, with how long to keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub text: String,
    pub level: Level,
    pub until: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A table's selection, kept per panel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub index: usize,
    /// The first visible row; views keep the selection on screen.
    pub offset: usize,
    /// In a panel that follows its newest row (`follows_newest`): the operator moved off
    /// the newest row, so new rows no longer move the selection. Going back to the
    /// newest row follows again.
    pub paused: bool,
}

/// The panels that list a stream and follow its newest row like `tail -f`.
pub fn follows_newest(panel: Panel) -> bool {
    matches!(panel, Panel::Events | Panel::Audit)
}

/// Where a following panel's newest row is among `keys`: the first in natural order
/// (newest first), else the highest revision the sort put somewhere.
pub fn newest_row(keys: &[RowKey], sorted: bool) -> Option<usize> {
    if !sorted {
        return (!keys.is_empty()).then_some(0);
    }
    let revs = keys.iter().enumerate().filter_map(|(i, k)| match k {
        RowKey::Rev(rev) => Some((*rev, i)),
        _ => None,
    });
    revs.max().map(|(_, i)| i)
}

/// Events per frame the fleet facts follow one at a time (a few µs each); past that, a
/// burst is counted afresh once before the frame (about 7 ms at 20,000 instances), and
/// so is each frame after it while the flood lasts. A busy fleet's trickle is followed.
const FACTS_BUDGET: usize = 256;

/// How many palette lines are remembered.
const HISTORY_KEPT: usize = 100;

pub struct App {
    pub replica: Replica,
    pub panel: Panel,
    pub selections: [Selection; 7],
    /// Filter, sort, marks and the row index of each panel.
    pub views: [PanelView; 7],
    pub overlays: Vec<Overlay>,
    /// The wizard of a deploy still running after Esc; `d` shows it again.
    pub parked_wizard: Option<Box<Wizard>>,
    pub status: Option<Status>,
    /// The plane's name in the header: the context's, `sandbox`, or a bare URL's host.
    pub bus_label: String,
    pub connection: Connection,
    pub theme: Theme,
    pub keymap: Keymap,
    /// The clock the views use for ages (ms since epoch); tests fix it.
    pub now: u64,
    pub should_quit: bool,
    /// Rows that fit in the panel body, set before each draw (`frame_context`); paging uses it.
    pub page_rows: usize,
    /// Whether the Events panel shows the cockpit's own log under the events.
    pub show_log: bool,
    /// The routers' latest statuses and when each arrived (ms since epoch).
    pub routers: std::collections::BTreeMap<String, (crate::protocol::RouterStatus, u64)>,
    /// The fresh routers' traffic summed per route and app, with its recent history.
    pub traffic: traffic::TrafficBook,
    /// Read-only: every key that would change the fleet is refused, and no command is
    /// ever sent (the backend refuses too).
    pub read_only: bool,
    /// Why read-only was turned on while running (the server refused this user a command),
    /// or `None` when the cockpit was started read-only (or is not).
    pub read_only_reason: Option<String>,
    /// Palette lines, oldest first.
    pub history: Vec<String>,
    /// The open logs view, if any.
    pub logs: Option<logs::LogView>,
    /// Log streams opened so far; numbers each one.
    pub log_sessions: u64,
    /// Whether the terminal captures the mouse (`m` toggles, so text can be selected).
    pub mouse: bool,
    /// The running port-forwards (`F`), by instance.
    pub forwards: forwards::Forwards,
    /// The instance a shell is opening or open in (`shell.rs`): from its `Effect::Exec`
    /// until the event loop says how it ended.
    pub shell: Option<String>,
    /// The releases of the app whose detail pane is open (`releases.rs`).
    pub releases: releases::Releases,
    /// The header draws the plane's name in this colour (the context's); `None`: the theme's.
    pub plane_colour: Option<ratatui::style::Color>,
    /// A production context: every change needs a typed name (`confirm::typed_name`).
    pub production: bool,
    /// The contexts `:context` lists and switches to.
    pub contexts: Vec<crate::context::Context>,
    /// Fleet-wide counts, counted after a snapshot and kept up event by event (see `facts`).
    facts: FleetFacts,
    /// Events since the last frame, and whether the frame before had more than
    /// `FACTS_BUDGET`: the facts follow events one by one only while neither is so.
    events_since_frame: usize,
    flood: bool,
}

impl App {
    pub fn new(bus_label: impl Into<String>, theme: Theme, keymap: Keymap, now: u64) -> App {
        App {
            replica: Replica::default(),
            panel: Panel::Hosts,
            selections: [Selection::default(); 7],
            views: Default::default(),
            overlays: Vec::new(),
            parked_wizard: None,
            status: None,
            bus_label: bus_label.into(),
            connection: Connection::Connected,
            theme,
            keymap,
            now,
            should_quit: false,
            page_rows: 20,
            show_log: false,
            routers: std::collections::BTreeMap::new(),
            traffic: Default::default(),
            read_only: false,
            read_only_reason: None,
            history: Vec::new(),
            logs: None,
            log_sessions: 0,
            mouse: true,
            forwards: Default::default(),
            shell: None,
            releases: Default::default(),
            plane_colour: None,
            production: false,
            contexts: Vec::new(),
            facts: FleetFacts::default(),
            events_since_frame: 0,
            flood: false,
        }
    }

    pub fn selection(&self) -> Selection {
        self.selections[self.panel.index()]
    }

    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlays.last()
    }

    pub fn view(&self, panel: Panel) -> &PanelView {
        &self.views[panel.index()]
    }

    /// What a key means now: the keymap, or text entry, or a dialog's answer.
    pub fn input_mode(&self) -> InputMode {
        match self.overlay() {
            Some(Overlay::Confirm(p)) if p.typed.is_some() => InputMode::TypedConfirm,
            Some(Overlay::Confirm(_)) => InputMode::Confirm,
            Some(Overlay::Logs) if self.logs.as_ref().is_some_and(|l| l.typing.is_some()) => InputMode::Text,
            Some(Overlay::Palette(_) | Overlay::Filter(_) | Overlay::Form(_) | Overlay::Wizard(_)) => {
                InputMode::Text
            }
            _ => InputMode::Normal,
        }
    }

    /// The panel's rows in order: the cached index when it is current, else built now
    /// (the event loop refreshes the cache before each frame, so this is for tests and
    /// for actions between frames).
    pub fn rows(&self, panel: Panel) -> Cow<'_, [RowKey]> {
        let view = self.view(panel);
        match &view.index {
            Some(ix) if ix.stamp == self.stamp(panel) => Cow::Borrowed(&ix.keys),
            _ => Cow::Owned(
                rows::build(&self.replica, &self.facts(), &self.traffic, self.now, panel, view).keys,
            ),
        }
    }

    /// What a panel's cached index must have been built for to be current.
    fn stamp(&self, panel: Panel) -> (u64, u64, usize) {
        rows::stamp_of(&self.replica, panel, self.view(panel), self.total_rows(panel))
    }

    /// Fleet-wide counts: the cached ones when current, else counted now (the event loop
    /// refreshes the cache before each frame, so this is for tests).
    pub fn facts(&self) -> Cow<'_, FleetFacts> {
        if self.facts.stamp == facts::stamp_of(&self.replica) {
            Cow::Borrowed(&self.facts)
        } else {
            Cow::Owned(FleetFacts::of(&self.replica))
        }
    }

    /// Rows before the filter.
    pub fn total_rows(&self, panel: Panel) -> usize {
        rows::total(&self.replica, panel)
    }

    /// How many rows the panel shows (after the filter).
    pub fn row_count(&self, panel: Panel) -> usize {
        self.rows(panel).len()
    }

    /// Rebuilds the current panel's index if the data or its settings changed, keeping
    /// the selection on the same row when it is still there. Called before each frame and
    /// after each key, never per backend event: a burst of events costs one rebuild.
    pub fn refresh_views(&mut self) {
        if self.facts.stamp != facts::stamp_of(&self.replica) {
            self.facts = FleetFacts::of(&self.replica);
        }
        // While a flood lasts, each frame counts afresh once and no event is followed.
        self.flood = self.events_since_frame > FACTS_BUDGET;
        self.events_since_frame = 0;
        let panel = self.panel;
        let i = panel.index();
        let stamp = self.stamp(panel);
        let due = |ix: &rows::RowIndex| ix.resort_pending && self.now >= ix.ordered_at + rows::RESORT_MS;
        if self.views[i].index.as_ref().is_some_and(|ix| ix.stamp == stamp && !due(ix)) {
            return;
        }
        let following = follows_newest(panel) && !self.selections[i].paused;
        // The row selected in the old order, so the selection follows it into the new one.
        let selected =
            self.views[i].index.as_ref().and_then(|ix| ix.keys.get(self.selections[i].index).cloned());
        rows::refresh(&self.replica, &self.facts, &self.traffic, self.now, panel, &mut self.views[i]);
        let keys = self.views[i].index.as_ref().map(|ix| ix.keys.as_slice()).unwrap_or_default();
        let count = keys.len();
        let newest = if following { newest_row(keys, self.views[i].sort.is_some()) } else { None };
        let sel = &mut self.selections[i];
        if let Some(n) = newest {
            sel.index = n;
        } else if let Some(k) = selected
            && keys.get(sel.index) != Some(&k)
            && let Some(pos) = keys.iter().position(|x| *x == k)
        {
            sel.index = pos;
        }
        sel.index = sel.index.min(count.saturating_sub(1));
        sel.offset = window_start(sel.index, sel.offset, self.page_rows, count);
    }

    pub fn selected_key(&self, panel: Panel) -> Option<RowKey> {
        self.rows(panel).get(self.selections[panel.index()].index).cloned()
    }

    pub fn selected_host(&self) -> Option<&Host> {
        match self.selected_key(Panel::Hosts)? {
            RowKey::Id(id) => self.replica.fleet.hosts.get(&id),
            _ => None,
        }
    }

    pub fn selected_instance(&self) -> Option<&Instance> {
        match self.selected_key(Panel::Instances)? {
            RowKey::Id(id) => self.replica.fleet.instances.get(&id),
            _ => None,
        }
    }

    pub fn selected_route(&self) -> Option<&Route> {
        match self.selected_key(Panel::Routes)? {
            RowKey::Route(a, b) => self.replica.fleet.routes.get(&(a, b)),
            _ => None,
        }
    }

    /// Events are listed newest first (unless sorted otherwise).
    pub fn selected_event(&self) -> Option<&Event> {
        match self.selected_key(Panel::Events)? {
            RowKey::Rev(rev) => rows::event_by_rev(&self.replica.events, rev),
            _ => None,
        }
    }

    pub fn selected_audit(&self) -> Option<&Event> {
        match self.selected_key(Panel::Audit)? {
            RowKey::Rev(rev) => rows::event_by_rev(&self.replica.audit, rev),
            _ => None,
        }
    }

    /// The selected alert, the cockpit's own `no_controller` included.
    pub fn selected_alert(&self) -> Option<Cow<'_, crate::protocol::Alert>> {
        match self.selected_key(Panel::Alerts)? {
            RowKey::Id(id) => alerts::by_id(&self.replica, &id),
            _ => None,
        }
    }

    pub fn selected_app(&self) -> Option<&AppSpec> {
        match self.selected_key(Panel::Apps)? {
            RowKey::Id(name) => self.replica.fleet.apps.get(&name),
            _ => None,
        }
    }

    /// Why the data on screen may be out of date, if it may.
    pub fn staleness(&self) -> Option<&'static str> {
        if !self.connection.is_connected() {
            return Some("not live: reconnecting");
        }
        // Without the controller's beacon nothing here is followed, whatever the replica
        // last applied: said before loading or resyncing, which wait for it.
        if self.replica.controller_silence(self.now).is_some() {
            return Some("not live: no controller");
        }
        match self.replica.sync {
            crate::backend::Sync::Loading => Some("loading"),
            crate::backend::Sync::Resyncing => Some("not live: resyncing"),
            crate::backend::Sync::Live => None,
        }
    }

    /// Milliseconds since the replica last heard from the plane.
    pub fn data_age(&self) -> Option<u64> {
        (self.replica.last_update > 0).then(|| self.now.saturating_sub(self.replica.last_update))
    }

    fn remember_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || self.history.last().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() >= HISTORY_KEPT {
            self.history.remove(0);
        }
        self.history.push(line.to_string());
    }
}
