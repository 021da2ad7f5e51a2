//! `r` and `:restart`: what a restart targets (marks, the selected row, a palette
//! target) and its confirmation.

use std::collections::BTreeSet;

use super::marks::named;
use super::{App, Level, Overlay};
use crate::actions::palette::RestartTarget;
use crate::actions::{Batch, Effect, Panel};
use crate::protocol::{ControlCommand, RestartBody, RestartRequest};

impl App {
    /// `r` (target `None`: the marked rows, else the selected row) or `:restart`.
    pub(super) fn ask_restart(&mut self, target: Option<RestartTarget>) -> Vec<Effect> {
        let f = &self.replica.fleet;
        let has_marks = !self.view(self.panel).marks.is_empty();
        let target = match target {
            Some(t) => Some(t),
            None if has_marks && self.panel != Panel::Alerts => Some(RestartTarget::Marked),
            None => match self.panel {
                Panel::Instances => self.selected_instance().map(|i| RestartTarget::Instance(i.id.clone())),
                Panel::Hosts => self.selected_host().map(|h| RestartTarget::Host(h.info.id.clone())),
                Panel::Routes => self.selected_route().map(|r| RestartTarget::App(r.app.clone())),
                Panel::Apps => self.selected_app().map(|a| RestartTarget::App(a.name.clone())),
                Panel::Events => self.selected_event().and_then(|e| {
                    e.instance
                        .clone()
                        .filter(|i| f.instances.contains_key(i))
                        .map(RestartTarget::Instance)
                        .or_else(|| e.app.clone().filter(|a| f.apps.contains_key(a)).map(RestartTarget::App))
                }),
                // An alert's subject is Enter away; `r` there restarts it.
                Panel::Audit | Panel::Alerts => None,
            },
        };
        let Some(target) = target else {
            self.say(Level::Warn, format!("nothing to restart in {}", self.panel.title()));
            return vec![];
        };
        let (question, req, ids) = match target {
            RestartTarget::Instance(id) => {
                let Some(i) = f.instances.get(&id) else {
                    self.say(Level::Warn, format!("no instance {id}"));
                    return vec![];
                };
                let q = format!("Restart instance {} ({}@{}) on {}?", i.id, i.app, i.version, i.host);
                (q, RestartRequest::Instance(id.clone()), vec![id])
            }
            RestartTarget::App(name) => {
                let ids: Vec<String> = f.instances_of(&name).map(|i| i.id.clone()).collect();
                let q = format!("Restart every instance of {name} ({}), rolling?", ids.len());
                (q, RestartRequest::App(name), ids)
            }
            RestartTarget::Host(h) => {
                let ids: Vec<String> = f.instances_on(&h).map(|i| i.id.clone()).collect();
                let q = format!("Restart all {} instance(s) on {h}, rolling?", ids.len());
                (q, RestartRequest::Host(h), ids)
            }
            RestartTarget::Marked => {
                let ids = self.marked_instances();
                if ids.is_empty() {
                    self.say(Level::Warn, "no marked instances: mark rows with Space first".into());
                    return vec![];
                }
                let q = format!(
                    "Restart {} marked instance(s): {}, rolling?",
                    ids.len(),
                    named(ids.iter().cloned())
                );
                (q, RestartRequest::Instances(ids.clone()), ids)
            }
        };
        if ids.is_empty() {
            self.say(Level::Warn, "no instances to restart there".into());
            return vec![];
        }
        let apps: BTreeSet<String> =
            ids.iter().filter_map(|id| f.instances.get(id)).map(|i| i.app.clone()).collect();
        let batch = (ids.len() > 1).then_some(Batch { value: 1, max: ids.len() as u32 });
        let effects = self.confirm(question, vec![ControlCommand::Restart(RestartBody::from(req))], &apps);
        if let Some(Overlay::Confirm(p)) = self.overlays.last_mut() {
            p.batch = batch;
        }
        effects
    }
}
