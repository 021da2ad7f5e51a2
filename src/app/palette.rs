//! `:`: the command palette as it is typed (completion, history), and the commands it
//! and the route form carry out.

use super::rows::Filter;
use super::{App, Overlay};
use crate::actions::palette::{self, PaletteCommand};
use crate::actions::{Action, Effect};

impl App {
    pub(super) fn update_palette(&mut self, action: Action) -> Vec<Effect> {
        let fleet = &self.replica.fleet;
        let history = &self.history;
        let contexts: Vec<String> = self.contexts.iter().map(|c| c.name.clone()).collect();
        let Some(Overlay::Palette(p)) = self.overlays.last_mut() else { return vec![] };
        match action {
            Action::Input(c) => {
                p.input.push(c);
                p.edited();
                p.candidates.clear();
            }
            Action::Backspace => {
                p.input.pop();
                p.edited();
                p.candidates.clear();
            }
            Action::ClearInput => {
                p.input.clear();
                p.edited();
            }
            Action::Complete => p.complete(fleet, &contexts, 1),
            Action::CompletePrev => p.complete(fleet, &contexts, -1),
            Action::HistoryPrev => p.browse(history, true),
            Action::HistoryNext => p.browse(history, false),
            Action::Back | Action::Cancelled | Action::Quit => {
                self.overlays.pop();
            }
            Action::Submit => {
                let line = p.input.trim().to_string();
                let parsed = palette::parse(&line, fleet);
                self.remember_line(&line);
                match parsed {
                    Ok(cmd) => {
                        self.overlays.pop();
                        return self.run_command(cmd);
                    }
                    Err(e) => {
                        if let Some(Overlay::Palette(p)) = self.overlays.last_mut() {
                            p.error = Some(e);
                        }
                    }
                }
            }
            _ => {}
        }
        vec![]
    }

    /// Carries out a palette command (or the route form's).
    pub(super) fn run_command(&mut self, cmd: PaletteCommand) -> Vec<Effect> {
        match cmd {
            PaletteCommand::Panel(p) => {
                self.show(p);
                vec![]
            }
            PaletteCommand::Quit => {
                self.should_quit = true;
                vec![Effect::Quit]
            }
            PaletteCommand::Exec { instance, cmd } => self.open_shell(instance, cmd),
            PaletteCommand::Help => {
                self.overlays.clear();
                self.overlays.push(Overlay::Help);
                vec![]
            }
            PaletteCommand::Filter(text) => {
                self.overlays.clear();
                self.views[self.panel.index()].set_filter(Filter::parse(&text));
                vec![]
            }
            PaletteCommand::Restart(target) => {
                self.overlays.clear();
                self.ask_restart(Some(target))
            }
            PaletteCommand::Route(verb, req) => self.ask_route_command(verb, req),
            PaletteCommand::Scale { app, instances } => self.ask_scale(app, instances),
            PaletteCommand::Deploy { app, version, instances } => {
                // The wizard, prefilled: the same plan preview and confirmation as `d`.
                self.open_wizard_for(Some(&app), version, instances)
            }
            PaletteCommand::Context(name) => self.ask_context(name),
            PaletteCommand::Ack(id) => self.ask_ack_id(id),
            PaletteCommand::Silence(req) => self.ask_silence(req),
            PaletteCommand::Note(text) => self.send_note(text),
            PaletteCommand::Export { window_ms, path } => self.export(window_ms, path),
        }
    }
}

#[cfg(test)]
#[path = "palette_tests.rs"]
mod tests;
