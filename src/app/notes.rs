//! `n` and `:note`: a line for the incident's timeline; `:export`: the handover timeline
//! written to a file (by the backend, which asks the controller for the history).

use std::path::PathBuf;

use super::{App, Level, Overlay, PaletteState};
use crate::actions::Effect;
use crate::protocol::{ControlCommand, NoteRequest, TimelineExport};

impl App {
    /// `n`: the palette, opened on `note `, so the note is typed on one line with the
    /// palette's editing; Enter sends it, Esc drops it. (Read-only refused it already.)
    pub(super) fn open_note(&mut self) -> Vec<Effect> {
        let mut state = Box::<PaletteState>::default();
        state.input = "note ".into();
        self.overlays.push(Overlay::Palette(state));
        vec![]
    }

    /// Sends a checked note. No confirm dialog: a note changes nothing in the plane (it
    /// only adds a line to the history), and asking would slow the one writing it down
    /// mid-incident.
    pub(super) fn send_note(&mut self, text: String) -> Vec<Effect> {
        self.overlays.clear();
        let cmd = ControlCommand::Note(NoteRequest { text });
        self.outgoing("note", vec![Effect::Send(cmd)]).unwrap_or_default()
    }

    /// `:export [WINDOW] [FILE]`: the window back from now, to `path` or to
    /// `./quarterdeck-timeline-<UTC time>.md`. A read: allowed read-only.
    pub(super) fn export(&mut self, window_ms: u64, path: Option<String>) -> Vec<Effect> {
        self.overlays.clear();
        let path = path.map_or_else(|| PathBuf::from(default_export_name(self.now)), PathBuf::from);
        self.say(Level::Info, format!("exporting the timeline to {} ...", path.display()));
        vec![Effect::Export(TimelineExport {
            since: self.now.saturating_sub(window_ms),
            until: self.now,
            path,
            plane: self.bus_label.clone(),
        })]
    }

    /// What the backend said of an export.
    pub(super) fn exported(&mut self, path: PathBuf, result: Result<usize, String>) {
        match result {
            Ok(n) => self.say(Level::Info, format!("timeline written to {} ({n} entries)", path.display())),
            Err(why) => self.say(Level::Error, format!("timeline not written: {why}")),
        }
    }
}

/// `quarterdeck-timeline-20261206T101500Z.md`: sorts by time, and has no `:` (which some
/// file systems and `scp` read otherwise).
pub fn default_export_name(now: u64) -> String {
    let stamp: String = crate::protocol::clock::datetime(now).chars().filter(char::is_ascii_digit).collect();
    let (date, time) = stamp.split_at(stamp.len().min(8));
    format!("quarterdeck-timeline-{date}T{time}Z.md")
}

#[cfg(test)]
#[path = "notes_tests.rs"]
mod tests;
