//! `+` / `-` and `:scale APP N`: a scale of an app, through the confirm dialog (the app's
//! name typed for a prod app, as every command on one).

use std::collections::BTreeSet;

use super::{App, Level};
use crate::actions::{Effect, Panel};
use crate::protocol::{ControlCommand, ScaleRequest, validate};

impl App {
    /// `+` (`by` 1) or `-` (`by` -1) on the Apps panel's app, or the app of the selected
    /// instance.
    pub(super) fn ask_scale_by(&mut self, by: i64) -> Vec<Effect> {
        let app = match self.panel {
            Panel::Apps => self.selected_app().map(|a| (a.name.clone(), a.instances)),
            Panel::Instances => self
                .selected_instance()
                .and_then(|i| self.replica.fleet.apps.get(&i.app))
                .map(|a| (a.name.clone(), a.instances)),
            _ => None,
        };
        let Some((name, desired)) = app else {
            self.say(
                Level::Warn,
                format!("nothing to scale in {}: select an app or an instance", self.panel.title()),
            );
            return vec![];
        };
        let Some(to) =
            u32::try_from(i64::from(desired) + by).ok().filter(|n| validate::scale_instances(*n).is_ok())
        else {
            let bound = if by < 0 { "0".to_string() } else { validate::MAX_INSTANCES.to_string() };
            self.say(
                Level::Warn,
                format!("{name} has {desired} instance(s) desired: it cannot go past {bound}"),
            );
            return vec![];
        };
        self.ask_scale(name, to)
    }

    /// Asks to scale `app` to `to` instances.
    pub(super) fn ask_scale(&mut self, app: String, to: u32) -> Vec<Effect> {
        let Some(desired) = self.replica.fleet.apps.get(&app).map(|a| a.instances) else {
            self.say(Level::Warn, format!("no app {app}"));
            return vec![];
        };
        let how = if to > desired { "up" } else { "down" };
        let mut question = format!("Scale {app} {how} from {desired} to {to} instance(s)?");
        if to == 0 {
            question.push_str(" Nothing of it will run; the app is kept.");
        }
        let apps = BTreeSet::from([app.clone()]);
        self.confirm(question, vec![ControlCommand::Scale(ScaleRequest { app, instances: to })], &apps)
    }
}

#[cfg(test)]
#[path = "scale_tests.rs"]
mod tests;
