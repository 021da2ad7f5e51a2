//! `c` and `o` on the Hosts panel: cordon or uncordon the selected host, or drain it, each
//! through the confirm dialog (and so through read-only's `outgoing`).

use std::collections::BTreeSet;

use super::{App, Level};
use crate::actions::{Effect, Panel};
use crate::protocol::subjects::HostVerb;
use crate::protocol::{ControlCommand, HostRequest, HostSchedule};

impl App {
    /// `c`: cordon an open host, uncordon a cordoned one. A draining host is left to its
    /// drain, which the controller would refuse anyway.
    pub(super) fn ask_cordon(&mut self) -> Vec<Effect> {
        let Some((host, schedule, apps)) = self.host_for("cordon") else { return vec![] };
        let (verb, question) = match schedule {
            HostSchedule::Open => {
                (HostVerb::Cordon, format!("Cordon {host}? No new instance will be placed there."))
            }
            HostSchedule::Cordoned => {
                (HostVerb::Uncordon, format!("Uncordon {host}? It takes new instances again."))
            }
            HostSchedule::Draining { .. } => {
                self.say(Level::Warn, format!("{host} is {}: wait for the drain to end", schedule.label()));
                return vec![];
            }
        };
        self.confirm(question, vec![ControlCommand::Host(verb, HostRequest { host })], &apps)
    }

    /// `o`: drain the selected host, moving its instances elsewhere one at a time.
    pub(super) fn ask_drain(&mut self) -> Vec<Effect> {
        let Some((host, schedule, apps)) = self.host_for("drain") else { return vec![] };
        if let HostSchedule::Draining { .. } = schedule {
            self.say(Level::Warn, format!("{host} is {} already", schedule.label()));
            return vec![];
        }
        let n = self.replica.fleet.instances_on(&host).count();
        let question = format!(
            "Drain {host}? It is cordoned, and its {n} instance(s) move to other hosts one at a time."
        );
        self.confirm(question, vec![ControlCommand::Host(HostVerb::Drain, HostRequest { host })], &apps)
    }

    /// The selected host, its schedule and the apps running on it (a prod app among them
    /// asks for its name typed); `None`, said, off the Hosts panel or with no host.
    fn host_for(&mut self, what: &str) -> Option<(String, HostSchedule, BTreeSet<String>)> {
        if self.panel != Panel::Hosts {
            self.say(Level::Warn, format!("{what} works on the Hosts panel (1)"));
            return None;
        }
        let Some(h) = self.selected_host() else {
            self.say(Level::Warn, format!("no host to {what}"));
            return None;
        };
        let id = h.info.id.clone();
        let schedule = h.schedule;
        let apps = self.replica.fleet.instances_on(&id).map(|i| i.app.clone()).collect();
        Some((id, schedule, apps))
    }
}

#[cfg(test)]
#[path = "host_ops_tests.rs"]
mod tests;
