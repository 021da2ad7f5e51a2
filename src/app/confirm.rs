//! The confirm round trip: commands wait behind the dialog (typed names for prod apps, a
//! batch size for rolling restarts) until confirmed while live, then leave through
//! `outgoing`.

use std::collections::BTreeSet;

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, Pending};
use crate::protocol::{AppSpec, ControlCommand};

impl App {
    pub(super) fn update_confirm(&mut self, action: Action) -> Vec<Effect> {
        let not_live = self.not_live();
        let Some(Overlay::Confirm(pending)) = self.overlays.last_mut() else { return vec![] };
        match action {
            // Not live: a command sent now could be held by the bus client and run long
            // after the operator gave up on it. The dialog stays open, to be confirmed once
            // live again or cancelled.
            Action::Confirmed | Action::Submit if not_live.is_some() => {
                let why = not_live.unwrap_or_default();
                pending.error = Some(format!("not sent: {why}; confirm again once live, or Esc"));
                vec![]
            }
            Action::Confirmed if pending.typed.is_none() => self.send_pending(),
            Action::Submit => match &pending.typed {
                Some(want) if pending.input.trim() == want => self.send_pending(),
                Some(want) => {
                    pending.error = Some(format!("type {want} exactly to confirm, or Esc"));
                    vec![]
                }
                None => vec![],
            },
            Action::Input(c) if pending.typed.is_some() => {
                pending.input.push(c);
                pending.error = None;
                vec![]
            }
            Action::Input(d) => {
                // Digits set the batch size in a `[y/N]` dialog.
                if let (Some(batch), Some(v)) = (pending.batch.as_mut(), d.to_digit(10)) {
                    let typed = batch.value * 10 + v;
                    batch.value =
                        if (1..=batch.max).contains(&typed) { typed } else { v.clamp(1, batch.max) };
                }
                vec![]
            }
            Action::Backspace => {
                if pending.typed.is_some() {
                    pending.input.pop();
                } else if let Some(batch) = pending.batch.as_mut() {
                    batch.value = (batch.value / 10).max(1);
                }
                vec![]
            }
            Action::ClearInput => {
                pending.input.clear();
                vec![]
            }
            Action::Adjust(d) => {
                if let Some(batch) = pending.batch.as_mut() {
                    batch.value = (batch.value as i64 + d as i64).clamp(1, batch.max as i64) as u32;
                }
                vec![]
            }
            Action::Cancelled | Action::Back | Action::Quit => {
                self.overlays.pop();
                self.say(Level::Info, "cancelled".to_string());
                vec![]
            }
            _ => vec![],
        }
    }

    /// Why commands may not be sent now (`reconnecting`, `resyncing`, `loading` ...), or
    /// `None` while the cockpit is live. The confirm dialog shows it and refuses.
    pub fn not_live(&self) -> Option<String> {
        self.staleness().map(|s| s.trim_start_matches("not live: ").to_string())
    }

    fn send_pending(&mut self) -> Vec<Effect> {
        let Some(Overlay::Confirm(pending)) = self.overlays.pop() else { return vec![] };
        let mut commands = pending.commands;
        if let Some(batch) = pending.batch {
            for c in &mut commands {
                if let ControlCommand::Restart(body) = c {
                    body.batch = (batch.value > 1).then_some(batch.value);
                }
            }
        }
        let what: Vec<String> = commands.iter().map(ControlCommand::describe).collect();
        let Ok(effects) = self.outgoing("command", commands.into_iter().map(Effect::Send).collect()) else {
            return vec![];
        };
        self.say(Level::Info, format!("sent: {}", what.join("; ")));
        effects
    }

    /// Puts commands behind the confirm dialog, with a typed name when `typed_name` asks
    /// for one.
    pub(super) fn confirm(
        &mut self,
        question: String,
        commands: Vec<ControlCommand>,
        apps: &BTreeSet<String>,
    ) -> Vec<Effect> {
        let fleet = &self.replica.fleet;
        let apps: Vec<(&str, bool)> =
            apps.iter().map(|a| (a.as_str(), fleet.apps.get(a).is_some_and(AppSpec::is_prod))).collect();
        let mut pending = Pending::new(question, commands);
        pending.typed = typed_name(self.production, &self.bus_label, &apps);
        // The dialog replaces whatever led to it (palette, form, detail).
        self.overlays.clear();
        self.overlays.push(Overlay::Confirm(Box::new(pending)));
        vec![]
    }
}

/// The one rule for typing a name before a change leaves: on a production context, every
/// change; elsewhere, a change to an app labelled prod. What is typed is the target's name,
/// as k9s and kubectl users expect: the apps' (`apps`: each name and whether it is
/// labelled prod), comma-separated; a production change that names no app (a host's)
/// types the context's name. `None`: a `[y/N]` question.
pub(crate) fn typed_name(production: bool, context: &str, apps: &[(&str, bool)]) -> Option<String> {
    let names: Vec<&str> = apps.iter().filter(|(_, prod)| production || *prod).map(|(a, _)| *a).collect();
    match (production, names.is_empty()) {
        (_, false) => Some(names.join(",")),
        (true, true) => Some(context.to_string()),
        (false, true) => None,
    }
}

#[cfg(test)]
#[path = "confirm_tests.rs"]
mod tests;
