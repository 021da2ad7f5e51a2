//! Which plane the cockpit shows (the header's name, its colour, production or not), the
//! `:context` command, and the live switch: the event loop connects to the new plane, and
//! only once it has does the app drop everything of the old one, so two planes' rows are
//! never mixed and the header never names a plane the rows are not from.

use ratatui::style::Color;

use super::{App, Level};
use crate::actions::Effect;
use crate::backend::{Connection, Replica};
use crate::context::Context;

/// What the header says the cockpit is connected to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaneLabel {
    /// The context's name, `sandbox`, or a bare URL's host.
    pub name: String,
    /// The context's colour (already fitted to the terminal's colours); `None`: the theme's.
    pub colour: Option<Color>,
    /// A production plane: marked in the header, and every change needs a typed name.
    pub production: bool,
}

impl PlaneLabel {
    /// A plane with no context: the sandbox, or a bare `--nats` URL.
    pub fn plain(name: impl Into<String>) -> PlaneLabel {
        PlaneLabel { name: name.into(), colour: None, production: false }
    }

    /// A context's label, its colour drawn as `fit` makes it (`theme::in_mode`).
    pub fn of(context: &Context, fit: impl Fn(Color) -> Option<Color>) -> PlaneLabel {
        PlaneLabel {
            name: context.name.clone(),
            colour: context.colour.and_then(fit),
            production: context.production,
        }
    }
}

impl App {
    /// The plane the header names, and whether it is production.
    pub fn set_plane(&mut self, plane: PlaneLabel) {
        self.bus_label = plane.name;
        self.plane_colour = plane.colour;
        self.production = plane.production;
    }

    /// `:context` alone lists the contexts; `:context NAME` asks the event loop to switch.
    pub(super) fn ask_context(&mut self, name: Option<String>) -> Vec<Effect> {
        self.overlays.clear();
        let Some(name) = name else {
            let list = self.contexts_listed();
            self.say(Level::Info, list);
            return vec![];
        };
        if name == self.bus_label {
            self.say(Level::Info, format!("already on {name}"));
            return vec![];
        }
        if !self.contexts.iter().any(|c| c.name == name) {
            let known = self.contexts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
            let known = if known.is_empty() { "none are defined".to_string() } else { known.join(", ") };
            self.say(Level::Error, format!("no context {name:?}; contexts: {known}"));
            return vec![];
        }
        self.say(Level::Info, format!("connecting to {name} ..."));
        vec![Effect::SwitchContext(name)]
    }

    /// `contexts: staging (current), prod ⚠ production`, or how to define some.
    fn contexts_listed(&self) -> String {
        if self.contexts.is_empty() {
            return "no contexts: define them in ~/.config/quarterdeck/contexts.toml".into();
        }
        let items: Vec<String> = self
            .contexts
            .iter()
            .map(|c| {
                let here = if c.name == self.bus_label { " (current)" } else { "" };
                let prod = if c.production { " ⚠ production" } else { "" };
                format!("{}{here}{prod}", c.name)
            })
            .collect();
        format!("contexts: {} — :context NAME switches", items.join(", "))
    }

    /// The event loop connected to another plane: everything of the old one goes (its rows,
    /// marks, filters, selections, logs, forwards, dialogs, the answer to whether this user
    /// may act there), and the new plane's snapshot fills the fleet afresh.
    pub fn switched(&mut self, plane: PlaneLabel, connection: Connection) {
        let name = plane.name.clone();
        self.set_plane(plane);
        self.replica = Replica::default();
        self.facts = Default::default();
        self.events_since_frame = 0;
        self.flood = false;
        self.views = Default::default();
        self.selections = Default::default();
        self.overlays.clear();
        self.parked_wizard = None;
        self.logs = None;
        self.forwards = Default::default();
        self.routers.clear();
        self.traffic = Default::default();
        // Read-only by the old server's refusal is that server's word; the new plane's
        // probe says again. Read-only by flag or config stays.
        if self.read_only_reason.take().is_some() {
            self.read_only = false;
        }
        self.connection = connection;
        self.say(Level::Info, format!("switched to {name}"));
    }

    /// The switch failed: the cockpit stays on the plane it was on, and says why.
    pub fn switch_failed(&mut self, name: &str, why: &str) {
        let here = self.bus_label.clone();
        self.say(Level::Error, format!("cannot switch to {name}: {why}; still on {here}"));
    }
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
