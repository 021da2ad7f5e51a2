//! `App::update`: every change to the cockpit's state goes through here, one action at a
//! time, and comes out as effects for the backend. Pure apart from the state itself, so
//! headless tests drive it directly. This file dispatches each action to the handler of its
//! concern (`navigation`, `sorting`, `marks`, `confirm`, `restart`, `routes`, `filter`,
//! `palette`, `read_only`, ...), and applies what the backend reports (`apply`).

use super::rows::{RowKey, SortStep};
use super::{App, Level, Overlay, Status};
use crate::actions::{Action, Effect, Panel};
use crate::backend::{Feed, Inbound, Sync};
use crate::protocol::subjects::RouteVerb;
use crate::protocol::{Accepted, Event, Heartbeat};

/// How long a status line stays up.
const STATUS_MS: u64 = 6_000;

impl App {
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        if matches!(action, Action::Tick(_) | Action::Resize) {
            return self.update_background(action);
        }
        // Read-only refuses what would lead to a command before any dialog opens; what
        // leads there anyway (read-only came on while a dialog was open) is stopped at
        // `outgoing`.
        // (Asked only in read-only: a palette line is parsed for it.)
        if self.read_only
            && let Some(what) = self.asks_to_act(&action)
            && self.refused_read_only(&what)
        {
            if matches!(self.overlay(), Some(Overlay::Palette(_) | Overlay::Form(_))) {
                self.overlays.pop();
            }
            self.refresh_views();
            return vec![];
        }
        let effects = match self.overlay() {
            Some(Overlay::Confirm(_)) => self.update_confirm(action),
            Some(Overlay::Palette(_)) => self.update_palette(action),
            Some(Overlay::Filter(_)) => self.update_filter(action),
            Some(Overlay::Form(_)) => self.update_form(action),
            Some(Overlay::Wizard(_)) => self.update_wizard(action),
            Some(Overlay::Logs) => self.update_logs(action),
            _ => self.update_normal(action),
        };
        self.refresh_views();
        self.note_follow();
        let mut effects = effects;
        effects.extend(self.releases_wanted());
        effects
    }

    fn update_normal(&mut self, action: Action) -> Vec<Effect> {
        match action {
            // Enter on an alert goes to what it is about; its detail is that row's.
            Action::Detail if self.panel == Panel::Alerts && self.overlay().is_none() => {
                self.jump_to_subject()
            }
            a @ (Action::Cancelled
            | Action::Quit
            | Action::Back
            | Action::Help
            | Action::Detail
            | Action::Palette
            | Action::Filter) => self.open_or_close(a),
            Action::ShowPanel(p) => {
                self.show(p);
                vec![]
            }
            Action::NextPanel => {
                self.show(self.panel.next());
                vec![]
            }
            Action::PrevPanel => {
                self.show(self.panel.prev());
                vec![]
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page_rows.max(1) as i64)),
            Action::PageDown => self.move_by(self.page_rows.max(1) as i64),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Sort => self.sort(SortStep::Next),
            Action::SortPrev => self.sort(SortStep::Prev),
            Action::SortBy(c) => self.sort(SortStep::Letter(c)),
            Action::Mark => self.mark(),
            Action::Copy => self.copy(),
            Action::Restart => self.ask_restart(None),
            Action::ScaleUp => self.ask_scale_by(1),
            Action::ScaleDown => self.ask_scale_by(-1),
            Action::Remove => self.ask_route(RouteVerb::Remove),
            Action::ToggleRoute => self.ask_route(RouteVerb::Enable),
            Action::AddRoute => self.open_add_form(),
            Action::Ack => self.ask_ack(),
            Action::Weight => self.open_weight_form(),
            Action::Deploy => self.open_wizard(),
            Action::Logs => self.open_logs(),
            Action::Forward => self.toggle_forward(),
            Action::Shell => self.open_shell(None, vec![]),
            Action::Cordon => self.ask_cordon(),
            Action::Drain => self.ask_drain(),
            Action::Note => self.open_note(),
            Action::Mouse => {
                self.mouse = !self.mouse;
                let word = if self.mouse {
                    "on: click selects, the wheel scrolls"
                } else {
                    "off: select text freely"
                };
                self.say(Level::Info, format!("mouse {word}"));
                vec![Effect::MouseCapture(self.mouse)]
            }
            Action::ClickRow(index) => self.click_row(index),
            Action::Scroll(by) => self.move_by(i64::from(by)),
            Action::ReleasePrev => self.move_release(-1),
            Action::ReleaseNext => self.move_release(1),
            Action::Rollback => self.ask_rollback(),
            // Text-entry and dialog actions mean nothing without their overlay.
            _ => vec![],
        }
    }

    fn update_background(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Tick(now) => {
                self.now = now;
                self.replica.tick(now);
                self.expire_traffic();
                if self.status.as_ref().is_some_and(|s| s.until <= now) {
                    self.status = None;
                }
                vec![]
            }
            Action::Resize => vec![],
            _ => vec![],
        }
    }

    /// What the backend reported: the model moves on, and the answers to what was asked
    /// are said. Not an `Action`: it is no operator's doing, and its types are the
    /// backend's.
    pub fn apply(&mut self, update: Inbound) -> Vec<Effect> {
        let mut effects = self.apply_inbound(update);
        effects.extend(self.releases_wanted());
        effects
    }

    fn apply_inbound(&mut self, update: Inbound) -> Vec<Effect> {
        let now = self.now;
        match update {
            Inbound::Feed(Feed::Snapshot(fleet)) => {
                self.replica.apply_snapshot(fleet, now);
                vec![]
            }
            Inbound::Feed(Feed::History(events)) => {
                self.replica.apply_history(events);
                vec![]
            }
            Inbound::Feed(Feed::Event(event)) => {
                self.note_release_event(&event);
                self.apply_event(event)
            }
            Inbound::Feed(Feed::Heartbeat(hb)) => {
                self.apply_heartbeat(&hb);
                vec![]
            }
            Inbound::Feed(Feed::Router(status)) => {
                self.routers.insert(status.id.clone(), (*status, now));
                self.refresh_traffic(true);
                vec![]
            }
            Inbound::Feed(Feed::Beacon(revision)) => {
                if self.replica.note_beacon_at(revision, now) {
                    self.say(Level::Warn, "missed the latest event: taking a fresh snapshot".into());
                    vec![Effect::Resync]
                } else {
                    vec![]
                }
            }
            Inbound::Feed(Feed::Pending(pending)) => {
                self.replica.note_pending(pending);
                vec![]
            }
            Inbound::Feed(Feed::Connection(state)) => {
                self.replica.note_connection(state.is_connected(), now);
                self.connection = state;
                vec![]
            }
            Inbound::Uploaded { path, result } => {
                let result = result.map_err(|e| e.to_string());
                self.wizard_uploaded(&path, &result)
            }
            Inbound::CommandDone { what, result } => {
                self.command_done(&what, result);
                vec![]
            }
            Inbound::MayAct(may) => {
                self.learn_may_act(may);
                vec![]
            }
            Inbound::Feed(Feed::Problem(text)) => {
                self.say(Level::Error, text);
                vec![]
            }
            Inbound::Logs { session, event } => self.apply_logs(session, event),
            Inbound::Forward { session, event } => self.apply_forward(session, event),
            Inbound::Releases { app, result } => {
                self.apply_releases(app, result);
                vec![]
            }
            Inbound::Exported { path, result } => {
                self.exported(path, result);
                vec![]
            }
        }
    }

    /// One event of the history: the replica moves on, the facts follow when they were
    /// current, the rows a filter or sort keeps are rebuilt for what it touched, and a gap
    /// asks for a fresh snapshot.
    fn apply_event(&mut self, event: Event) -> Vec<Effect> {
        let now = self.now;
        let resyncing = self.replica.sync == Sync::Resyncing;
        // Seen before the event applies: a moved instance touches where it was.
        let touched = self.views.iter().any(|v| v.cache.in_use()).then(|| {
            let mut rows = super::row_cache::touched_by(&self.replica.fleet, &event.changes);
            rows.extend(super::row_cache::audit_rows_of(&self.replica, &event.changes));
            rows
        });
        // The facts follow the event when they were current before it, else they are
        // counted again before the next frame; past a burst's worth of events per frame,
        // counting afresh once is the cheaper.
        self.events_since_frame += 1;
        let facts_current = !self.flood
            && self.events_since_frame <= super::FACTS_BUDGET
            && self.facts.stamp == super::facts::stamp_of(&self.replica);
        let before =
            facts_current.then(|| super::facts::Before::capture(&self.replica.fleet, &event.changes));
        let revision = self.replica.fleet.revision;
        let gap = self.replica.apply_event(event, now).is_err();
        if let Some(before) = before
            && self.replica.fleet.revision != revision
        {
            self.facts.apply(before, &self.replica.fleet);
            self.facts.stamp = super::facts::stamp_of(&self.replica);
        }
        for (panel, key) in touched.into_iter().flatten() {
            let cache = &mut self.views[panel.index()].cache;
            if cache.in_use() {
                cache.touch(key);
            }
        }
        if gap && !resyncing {
            self.say(Level::Warn, "missed an event: taking a fresh snapshot".into());
            vec![Effect::Resync]
        } else {
            vec![]
        }
    }

    /// A heartbeat: metrics in place; the rows a filter or a sort keeps are rebuilt for
    /// what it touched only.
    fn apply_heartbeat(&mut self, hb: &Heartbeat) {
        self.replica.apply_heartbeat(hb, self.now);
        let hosts = &mut self.views[Panel::Hosts.index()].cache;
        if hosts.in_use() {
            hosts.touch(RowKey::Id(hb.host.id.clone()));
        }
        let instances = &mut self.views[Panel::Instances.index()].cache;
        if instances.in_use() {
            for r in &hb.instances {
                instances.touch(RowKey::Id(r.id.clone()));
            }
        }
    }

    /// A command's outcome, in the status line (and the wizard's progress); a refusal by
    /// the server turns read-only on.
    fn command_done(&mut self, what: &str, result: Result<Accepted, crate::backend::CommandError>) {
        self.wizard_command_done(what, &result.clone().map_err(|e| e.to_string()));
        match result {
            Ok(accepted) => {
                let op = accepted.operation_id.map(|o| format!(" as {o}")).unwrap_or_default();
                self.say(Level::Info, format!("accepted: {what}{op}"));
            }
            Err(crate::backend::CommandError::Denied { subject, user }) => {
                let reason = self.refused_by_server(&subject, &user);
                self.say(Level::Error, format!("refused: {what}; read-only: {reason}"));
            }
            Err(e) => self.say(Level::Error, super::failures::failed(what, &e)),
        }
    }

    pub fn say(&mut self, level: Level, text: String) {
        self.status = Some(Status { text, level, until: self.now + STATUS_MS });
    }
}
