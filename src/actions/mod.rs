//! What the operator can ask for: the `Action` enum, the keymap that turns keys into
//! actions, the palette's commands with their validation, and the commands that go
//! through a confirm round trip.

pub mod keymap;
pub mod palette;
pub mod prompt;

use crate::protocol::{ControlCommand, ExecStart, ForwardStart, LogsStart, TimelineExport, UploadRequest};

/// The cockpit's panels, in tab order (and number-key order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Panel {
    Hosts,
    Instances,
    Routes,
    Events,
    Audit,
    Apps,
    Alerts,
}

impl Panel {
    pub const ALL: [Panel; 7] = [
        Panel::Hosts,
        Panel::Instances,
        Panel::Routes,
        Panel::Events,
        Panel::Audit,
        Panel::Apps,
        Panel::Alerts,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Hosts => "Hosts",
            Panel::Instances => "Instances",
            Panel::Routes => "Routes",
            Panel::Events => "Events",
            Panel::Audit => "Audit",
            Panel::Apps => "Apps",
            Panel::Alerts => "Alerts",
        }
    }

    /// The palette's name for the panel: `:hosts`.
    pub fn command(self) -> &'static str {
        match self {
            Panel::Hosts => "hosts",
            Panel::Instances => "instances",
            Panel::Routes => "routes",
            Panel::Events => "events",
            Panel::Audit => "audit",
            Panel::Apps => "apps",
            Panel::Alerts => "alerts",
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

/// Everything the operator (or the clock) can do to the cockpit: keys and the mouse
/// become these. What the backend reports goes to `App::apply` instead: it is no action,
/// and its types are the backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Esc: close the topmost overlay, or clear the panel's filter.
    Back,
    /// `:` the command palette.
    Palette,
    /// `/` filter the current table.
    Filter,
    Deploy,
    Restart,
    /// `i`: insert a route (the form).
    AddRoute,
    /// `a`: acknowledge the selected (or marked) alerts (confirmed).
    Ack,
    /// `x`: remove the selected (or marked) routes.
    Remove,
    /// `e`: enable or disable the selected (or marked) routes.
    ToggleRoute,
    /// `w`: change the selected route's weight.
    Weight,
    /// `l`: the selected instance's logs.
    Logs,
    /// `F`: port-forward the selected instance's app port to 127.0.0.1, or stop it.
    Forward,
    /// `s`: a shell in the selected instance.
    Shell,
    /// `>`: sort by the next column.
    Sort,
    /// `<`: sort by the previous column.
    SortPrev,
    /// Shift and a column's first letter (`C` for CPU, `#` for the index), as in k9s: sort
    /// by that column; again, the other way round.
    SortBy(char),
    /// Space: mark or unmark the selected row, for bulk actions.
    Mark,
    /// `y`: copy the selected row's id to the clipboard (OSC 52).
    Copy,
    /// `m`: mouse capture on/off.
    Mouse,
    /// A key of the logs view.
    LogView(LogKey),
    /// A click on the current panel's row at this index (the terminal layer maps the
    /// screen cell through the layout it drew).
    ClickRow(usize),
    /// The mouse wheel: rows to move, negative up.
    Scroll(i32),
    /// Text entry in the palette, the filter, a form or a typed confirmation.
    Input(char),
    Backspace,
    /// Ctrl-u: clear the text field.
    ClearInput,
    /// Enter in a text field.
    Submit,
    /// Tab in a text field: complete (palette), or next field (form).
    Complete,
    /// Shift-Tab in a text field: previous completion or field.
    CompletePrev,
    /// Up / Down in the palette: older / newer commands from its history.
    HistoryPrev,
    HistoryNext,
    /// Left / Right in a dialog with a number (the restart batch size).
    Adjust(i32),
    /// An answer to the confirm dialog.
    Confirmed,
    Cancelled,
    /// The clock moved on (ms since epoch); ages on screen change.
    Tick(u64),
    Resize,
    /// `c` on a host: cordon it, or uncordon a cordoned one (confirmed).
    Cordon,
    /// `o` on a host: drain it, moving every instance off (confirmed).
    Drain,
    /// `[` / `]` in an app's detail (its own keys, not the keymap's): the older / newer
    /// release.
    ReleasePrev,
    ReleaseNext,
    /// `b` in an app's detail: roll back to the selected release (confirmed).
    Rollback,
    /// `+` / `-`: one instance more or fewer of the selected app (the app of the selected
    /// instance), confirmed.
    ScaleUp,
    ScaleDown,
    /// `n`: a note for the incident's timeline, typed on one line.
    Note,
}

/// Keys of the logs view that the panels do not have: `f` follow, `n` / `N` next /
/// previous match, `w` save; in an app's merged view `i` (the next instance alone, then
/// all) and a digit (that instance index alone; again: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKey {
    Follow,
    NextMatch,
    PrevMatch,
    Save,
    NextInstance,
    Only(u8),
}

/// A number asked for in the confirm dialog: the rolling restart's batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub value: u32,
    pub max: u32,
}

/// Commands waiting for the operator's `y` (or, for a prod app, its typed name).
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The question, e.g. "Restart instance shop-web-1-ab12 on host-01?".
    pub question: String,
    /// Sent in order once confirmed; several for bulk route changes.
    pub commands: Vec<ControlCommand>,
    /// For apps tagged `prod`: what the operator must type (the app's name) before Enter
    /// confirms. `y` alone does nothing then.
    pub typed: Option<String>,
    /// What has been typed so far.
    pub input: String,
    /// For a rolling restart of several instances: how many at a time.
    pub batch: Option<Batch>,
    /// Why the last Enter did not confirm.
    pub error: Option<String>,
}

impl Pending {
    pub fn new(question: String, commands: Vec<ControlCommand>) -> Pending {
        Pending { question, commands, typed: None, input: String::new(), batch: None, error: None }
    }
}

/// Effects the app asks the outside world to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(ControlCommand),
    Resync,
    Quit,
    /// Put this text on the clipboard: an OSC 52 escape written to the terminal, which
    /// works over SSH. Views never write to the terminal; the event loop does.
    Copy(String),
    /// Stream an instance's logs into the logs view, beside its other streams (a view
    /// that opens stops the earlier view's streams first, with `LogsStop`).
    Logs(LogsStart),
    /// The logs view closed: stop its streams.
    LogsStop,
    /// Write the logs view's buffer to `path` (the event loop does, then says so).
    SaveLog {
        path: String,
        text: String,
        lines: usize,
    },
    /// Turn the terminal's mouse capture on or off.
    MouseCapture(bool),
    /// Upload an artifact file to the repository (the wizard's deploy waits for it).
    Upload(UploadRequest),
    /// Start a port-forward (a listener on 127.0.0.1, run by the backend).
    Forward(ForwardStart),
    /// Stop the port-forward of this session.
    ForwardStop(u64),
    /// Open a shell in an instance and hand it the terminal until it ends; the event loop
    /// then tells the app how it ended (`App::shell_ended`).
    Exec(ExecStart),
    /// Ask for an app's releases (a read: allowed read-only); the answer comes back as
    /// `Inbound::Releases`.
    Releases(String),
    /// Connect to the named context's plane; once connected, the event loop replaces the
    /// backend and tells the app (`App::switched`), or says why not (`App::switch_failed`).
    SwitchContext(String),
    /// Write the handover timeline to a file (`:export`): the backend asks the controller
    /// for the history and writes it; the answer comes back as `Inbound::Exported`.
    Export(TimelineExport),
}
