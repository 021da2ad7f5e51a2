//! `App::update`: every change to the cockpit's state goes through here, one action at a
//! time, and comes out as effects for the backend. Pure apart from the state itself, so
//! headless tests drive it directly.

use super::{App, Level, Overlay, Status};
use crate::actions::{Action, Effect, Panel, Pending};
use crate::backend::{ControlCommand, RouteVerb, Sync, Update};
use crate::protocol::{Event, Host, Instance, RestartRequest, Route, RouteRequest, RouteState};

/// How long a status line stays up.
const STATUS_MS: u64 = 6_000;

impl App {
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        // A confirm dialog takes every key until it is answered.
        if let Some(Overlay::Confirm(pending)) = self.overlay().cloned() {
            return match action {
                Action::Confirmed => {
                    self.overlays.pop();
                    self.say(Level::Info, format!("sent: {}", pending.command.describe()));
                    vec![Effect::Send(pending.command)]
                }
                Action::Cancelled | Action::Back => {
                    self.overlays.pop();
                    self.say(Level::Info, "cancelled".to_string());
                    vec![]
                }
                Action::Quit => {
                    self.overlays.pop();
                    vec![]
                }
                Action::Tick(_) | Action::Resize | Action::Backend(_) => self.update_background(action),
                _ => vec![],
            };
        }
        match action {
            Action::Quit => {
                if self.overlays.is_empty() {
                    self.should_quit = true;
                    vec![Effect::Quit]
                } else {
                    self.overlays.pop();
                    vec![]
                }
            }
            Action::Back => {
                self.overlays.pop();
                vec![]
            }
            Action::Help => {
                if self.overlay() == Some(&Overlay::Help) {
                    self.overlays.pop();
                } else {
                    self.overlays.push(Overlay::Help);
                }
                vec![]
            }
            Action::ShowPanel(p) => {
                self.overlays.clear();
                self.panel = p;
                vec![]
            }
            Action::NextPanel => {
                self.overlays.clear();
                self.panel = self.panel.next();
                vec![]
            }
            Action::PrevPanel => {
                self.overlays.clear();
                self.panel = self.panel.prev();
                vec![]
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page_rows.max(1) as i64)),
            Action::PageDown => self.move_by(self.page_rows.max(1) as i64),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Detail => {
                if self.row_count(self.panel) > 0 && self.overlay() != Some(&Overlay::Detail) {
                    self.overlays.push(Overlay::Detail);
                }
                vec![]
            }
            Action::Restart => self.ask_restart(),
            Action::Remove => self.ask_route(RouteVerb::Remove),
            Action::ToggleRoute => self.ask_route(RouteVerb::Enable),
            Action::Deploy | Action::AddRoute => {
                self.say(
                    Level::Warn,
                    "the guided form is not in this build yet; use the controller API (see README)".into(),
                );
                vec![]
            }
            Action::Confirmed | Action::Cancelled => vec![],
            Action::Tick(_) | Action::Resize | Action::Backend(_) => self.update_background(action),
        }
    }

    fn update_background(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Tick(now) => {
                self.now = now;
                if self.status.as_ref().is_some_and(|s| s.until <= now) {
                    self.status = None;
                }
                vec![]
            }
            Action::Resize => vec![],
            Action::Backend(update) => self.apply_update(*update),
            _ => vec![],
        }
    }

    fn apply_update(&mut self, update: Update) -> Vec<Effect> {
        let now = self.now;
        match update {
            Update::Snapshot(fleet) => {
                self.replica.apply_snapshot(fleet, now);
                self.clamp_selections();
                vec![]
            }
            Update::History(events) => {
                self.replica.apply_history(events);
                vec![]
            }
            Update::Event(event) => {
                let resyncing = self.replica.sync == Sync::Resyncing;
                let gap = self.replica.apply_event(event, now).is_err();
                self.clamp_selections();
                if gap && !resyncing {
                    self.say(Level::Warn, "missed an event: taking a fresh snapshot".into());
                    vec![Effect::Resync]
                } else {
                    vec![]
                }
            }
            Update::Heartbeat(hb) => {
                self.replica.apply_heartbeat(&hb, now);
                vec![]
            }
            Update::Router(status) => {
                self.routers.insert(status.id.clone(), (*status, now));
                vec![]
            }
            Update::Beacon(revision) => {
                if self.replica.note_beacon(revision) {
                    self.say(Level::Warn, "missed the latest event: taking a fresh snapshot".into());
                    vec![Effect::Resync]
                } else {
                    vec![]
                }
            }
            Update::Connection(state) => {
                if !state.is_connected() {
                    self.replica.mark_resyncing();
                }
                self.connection = state;
                vec![]
            }
            Update::CommandDone { what, result } => {
                match result {
                    Ok(accepted) => {
                        let op = accepted.operation_id.map(|o| format!(" as {o}")).unwrap_or_default();
                        self.say(Level::Info, format!("accepted: {what}{op}"));
                    }
                    Err(reason) => self.say(Level::Error, format!("refused: {what}: {reason}")),
                }
                vec![]
            }
            Update::Problem(text) => {
                self.say(Level::Error, text);
                vec![]
            }
        }
    }

    pub fn say(&mut self, level: Level, text: String) {
        self.status = Some(Status { text, level, until: self.now + STATUS_MS });
    }

    fn move_by(&mut self, delta: i64) -> Vec<Effect> {
        if self.overlay().is_some() {
            return vec![];
        }
        let count = self.row_count(self.panel);
        let sel = &mut self.selections[self.panel.index()];
        if count == 0 {
            sel.index = 0;
            return vec![];
        }
        let next = (sel.index as i64).saturating_add(delta).clamp(0, count as i64 - 1);
        sel.index = next as usize;
        sel.offset = crate::views::window_start(sel.index, sel.offset, self.page_rows, count);
        vec![]
    }

    fn clamp_selections(&mut self) {
        for panel in Panel::ALL {
            let count = self.row_count(panel);
            let sel = &mut self.selections[panel.index()];
            sel.index = sel.index.min(count.saturating_sub(1));
            sel.offset = crate::views::window_start(sel.index, sel.offset, self.page_rows, count);
        }
    }

    pub fn selected_host(&self) -> Option<&Host> {
        self.replica.fleet.hosts.values().nth(self.selections[Panel::Hosts.index()].index)
    }

    pub fn selected_instance(&self) -> Option<&Instance> {
        self.replica.fleet.instances.values().nth(self.selections[Panel::Instances.index()].index)
    }

    pub fn selected_route(&self) -> Option<&Route> {
        self.replica.fleet.routes.values().nth(self.selections[Panel::Routes.index()].index)
    }

    /// Events are listed newest first.
    pub fn selected_event(&self) -> Option<&Event> {
        self.replica.events.iter().rev().nth(self.selections[Panel::Events.index()].index)
    }

    fn confirm(&mut self, question: String, command: ControlCommand) -> Vec<Effect> {
        self.overlays.retain(|o| !matches!(o, Overlay::Detail));
        self.overlays.push(Overlay::Confirm(Box::new(Pending { question, command })));
        vec![]
    }

    fn ask_restart(&mut self) -> Vec<Effect> {
        let target = match self.panel {
            Panel::Instances => self.selected_instance().map(|i| {
                (
                    format!("Restart instance {} ({}@{}) on {}?", i.id, i.app, i.version, i.host),
                    RestartRequest::Instance(i.id.clone()),
                )
            }),
            Panel::Hosts => self.selected_host().map(|h| {
                let n = self.replica.fleet.instances_on(&h.id).count();
                (
                    format!("Restart all {n} instance(s) on {}, one at a time?", h.id),
                    RestartRequest::Host(h.id.clone()),
                )
            }),
            Panel::Routes => self.selected_route().map(|r| {
                (
                    format!("Restart every instance of {}, one at a time?", r.app),
                    RestartRequest::App(r.app.clone()),
                )
            }),
            Panel::Events => None,
        };
        match target {
            Some((q, req)) => self.confirm(q, ControlCommand::Restart(req)),
            None => {
                self.say(Level::Warn, format!("nothing to restart in {}", self.panel.title()));
                vec![]
            }
        }
    }

    fn ask_route(&mut self, verb: RouteVerb) -> Vec<Effect> {
        if self.panel != Panel::Routes {
            self.say(Level::Warn, "route keys work in the Routes panel (3)".into());
            return vec![];
        }
        let Some(route) = self.selected_route().cloned() else {
            self.say(Level::Warn, "no route selected".into());
            return vec![];
        };
        let verb = match (verb, route.state) {
            (RouteVerb::Remove, _) => RouteVerb::Remove,
            (_, RouteState::Enabled) => RouteVerb::Disable,
            (_, RouteState::Disabled) => RouteVerb::Enable,
        };
        let word = format!("{verb:?}").to_lowercase();
        let question = format!("{} route {} -> {}?", capitalise(&word), route.domain, route.backend);
        let req = RouteRequest { app: route.app.clone(), backend: route.backend.clone(), weight: None };
        self.confirm(question, ControlCommand::Route(verb, req))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
