//! The cockpit's state and `update(action) -> effects`, plus the event loop that feeds it.
//! Views read this state; nothing here draws.

mod run;
pub mod terminal;
mod update;

pub use run::run;

use crate::actions::keymap::Keymap;
use crate::actions::{Panel, Pending};
use crate::backend::Replica;
use crate::bus::Connection;
use crate::views::theme::Theme;

/// What sits over the panels, topmost wins.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help,
    Detail,
    Confirm(Box<Pending>),
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
}

pub struct App {
    pub replica: Replica,
    pub panel: Panel,
    pub selections: [Selection; 4],
    pub overlays: Vec<Overlay>,
    pub status: Option<Status>,
    /// `sandbox` or the bus URL.
    pub bus_label: String,
    pub connection: Connection,
    pub theme: Theme,
    pub keymap: Keymap,
    /// The clock the views use for ages (ms since epoch); tests fix it.
    pub now: u64,
    pub should_quit: bool,
    /// Rows that fit in the panel body, learned from the last draw; paging uses it.
    pub page_rows: usize,
    /// Whether the Events panel shows the cockpit's own log under the events.
    pub show_log: bool,
    /// The routers' latest statuses and when each arrived (ms since epoch).
    pub routers: std::collections::BTreeMap<String, (crate::protocol::RouterStatus, u64)>,
}

impl App {
    pub fn new(bus_label: impl Into<String>, theme: Theme, keymap: Keymap, now: u64) -> App {
        App {
            replica: Replica::default(),
            panel: Panel::Hosts,
            selections: [Selection::default(); 4],
            overlays: Vec::new(),
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
        }
    }

    pub fn selection(&self) -> Selection {
        self.selections[self.panel.index()]
    }

    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlays.last()
    }

    /// How many rows the panel shows.
    pub fn row_count(&self, panel: Panel) -> usize {
        let f = &self.replica.fleet;
        match panel {
            Panel::Hosts => f.hosts.len(),
            Panel::Instances => f.instances.len(),
            Panel::Routes => f.routes.len(),
            Panel::Events => self.replica.events.len(),
        }
    }

    /// Why the data on screen may be out of date, if it may.
    pub fn staleness(&self) -> Option<&'static str> {
        if !self.connection.is_connected() {
            return Some("not live: reconnecting");
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
}
