//! Read-only: the one place the rule is applied to command effects (`outgoing`), the early
//! refusal of what would lead to a command, and read-only turned on or off by what the
//! server allows.

use super::{App, Level, Overlay};
use crate::actions::palette::{self, PaletteCommand};
use crate::actions::{Action, Effect};

impl App {
    /// Every command effect the app makes (`Effect::Send`, and the upload a deploy starts
    /// with) leaves through here: the one place read-only is enforced. Refused: said on the
    /// status line, and the reason returned.
    pub(super) fn outgoing(&mut self, what: &str, effects: Vec<Effect>) -> Result<Vec<Effect>, String> {
        if self.refused_read_only(what) {
            return Err(format!("read-only: {what} refused"));
        }
        Ok(effects)
    }

    /// What `action` asks for that would end in a command, in the state the app is in
    /// now: the key that opens a confirm dialog, a form or the deploy wizard, or a
    /// palette line or form that makes a command. `None` for anything that only looks.
    pub(super) fn asks_to_act(&self, action: &Action) -> Option<String> {
        let word = |w: &str| Some(w.to_string());
        match (self.overlay(), action) {
            (None | Some(Overlay::Detail | Overlay::Help), a) => match a {
                Action::Restart => word("restart"),
                Action::Remove => word("remove"),
                Action::ToggleRoute => word("enable/disable"),
                Action::AddRoute => word("add route"),
                Action::Ack => word("ack"),
                Action::Weight => word("weight"),
                Action::Cordon => word("cordon/uncordon"),
                Action::Drain => word("drain"),
                Action::Rollback => word("rollback"),
                Action::ScaleUp | Action::ScaleDown => word("scale"),
                Action::Note => word("note"),
                // `F` on a forwarded instance only stops it.
                Action::Forward if !self.forwarding_selected() => word("port-forward"),
                // `d` with a deploy parked only shows how it goes.
                Action::Deploy if self.parked_wizard.is_none() => word("deploy"),
                _ => None,
            },
            (Some(Overlay::Palette(p)), Action::Submit) => {
                match palette::parse(p.input.trim(), &self.replica.fleet) {
                    Ok(PaletteCommand::Restart(_)) => word("restart"),
                    Ok(PaletteCommand::Route(verb, _)) => Some(format!("route {}", verb.word())),
                    Ok(PaletteCommand::Deploy { .. }) => word("deploy"),
                    Ok(PaletteCommand::Scale { .. }) => word("scale"),
                    Ok(PaletteCommand::Ack(_)) => word("ack"),
                    Ok(PaletteCommand::Silence(_)) => word("silence"),
                    Ok(PaletteCommand::Note(_)) => word("note"),
                    _ => None,
                }
            }
            (Some(Overlay::Form(_)), Action::Submit) => word("route change"),
            _ => None,
        }
    }

    /// In read-only mode, says so and returns true: the rule itself, which `outgoing`
    /// and `asks_to_act`'s caller apply.
    pub(super) fn refused_read_only(&mut self, what: &str) -> bool {
        if self.read_only {
            let why =
                self.read_only_reason.as_deref().unwrap_or("started with --read-only or read_only = true");
            self.say(Level::Warn, format!("read-only: {what} refused ({why})"));
        }
        self.read_only
    }

    /// What the `whoami` probe found. Refused: read-only, before anything is tried. Allowed
    /// after the server had refused (its permissions changed): the cockpit may act again;
    /// a cockpit started `--read-only` stays so.
    pub(super) fn learn_may_act(&mut self, may: Result<String, crate::backend::CommandError>) {
        match may {
            Err(crate::backend::CommandError::Denied { subject, user }) => {
                if !self.read_only {
                    let reason = self.refused_by_server(&subject, &user);
                    self.say(Level::Warn, format!("read-only: {reason}"));
                }
            }
            Ok(user) if self.read_only_reason.is_some() => {
                self.read_only = false;
                self.read_only_reason = None;
                self.say(Level::Info, format!("{user} may send commands again: read-only is off"));
            }
            Ok(_) | Err(_) => {}
        }
    }

    /// The NATS server refused this user a command: the cockpit turns read-only, the state
    /// `--read-only` starts in, so that nothing more appears to act. Returns the reason.
    pub(super) fn refused_by_server(&mut self, subject: &str, user: &str) -> String {
        let reason = format!("the server refused {subject} for user {user}");
        if !self.read_only {
            self.read_only = true;
            self.read_only_reason = Some(reason.clone());
        }
        reason
    }
}

#[cfg(test)]
#[path = "read_only_tests.rs"]
mod tests;
