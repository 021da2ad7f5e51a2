//! What the operator can ask for: the `Action` enum, the keymap that turns keys into
//! actions, and the commands that go through a confirm round trip.

pub mod keymap;

use crate::backend::ControlCommand;

/// The cockpit's panels, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Panel {
    Hosts,
    Instances,
    Routes,
    Events,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Hosts, Panel::Instances, Panel::Routes, Panel::Events];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Hosts => "Hosts",
            Panel::Instances => "Instances",
            Panel::Routes => "Routes",
            Panel::Events => "Events",
        }
    }

    pub fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn next(self) -> Panel {
        Panel::ALL[(self.index() + 1) % Panel::ALL.len()]
    }

    pub fn prev(self) -> Panel {
        Panel::ALL[(self.index() + Panel::ALL.len() - 1) % Panel::ALL.len()]
    }
}

/// Everything that can happen to the cockpit: keys become these, and so do backend updates
/// and the clock.
#[derive(Debug, Clone)]
pub enum Action {
    Quit,
    ShowPanel(Panel),
    NextPanel,
    PrevPanel,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Enter: the detail pane of the selected row.
    Detail,
    Help,
    /// Esc: close the topmost overlay.
    Back,
    Deploy,
    Restart,
    AddRoute,
    /// `x`: remove the selected route.
    Remove,
    /// `e`: enable or disable the selected route.
    ToggleRoute,
    /// An answer to the confirm dialog.
    Confirmed,
    Cancelled,
    /// The clock moved on (ms since epoch); ages on screen change.
    Tick(u64),
    Resize,
    Backend(Box<crate::backend::Update>),
}

/// A command waiting for the operator's `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The question, e.g. "Restart instance shop-web-1-ab12 on host-01?".
    pub question: String,
    pub command: ControlCommand,
}

/// Effects the app asks the outside world to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(ControlCommand),
    Resync,
    Quit,
}
