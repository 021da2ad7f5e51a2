//! `App::update`: every change to the cockpit's state goes through here, one action at a
//! time, and comes out as effects for the backend. Pure apart from the state itself, so
//! headless tests drive it directly.

use std::collections::BTreeSet;

use super::rows::{Filter, RowKey, SortStep};
use super::{App, Level, Overlay, RouteForm, Status};
use crate::actions::palette::{self, PaletteCommand, RestartTarget};
use crate::actions::{Action, Batch, Effect, Panel, Pending};
use crate::backend::{Feed, Inbound, Sync};
use crate::protocol::subjects::RouteVerb;
use crate::protocol::{
    Accepted, AppSpec, ControlCommand, Event, Heartbeat, RestartBody, RestartRequest, Route, RouteRequest,
    RouteState,
};

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
        effects
    }

    /// After the operator's action: a panel that follows its newest row keeps following
    /// while its selection is on that row, and pauses once it is elsewhere.
    fn note_follow(&mut self) {
        let panel = self.panel;
        if !super::follows_newest(panel) {
            return;
        }
        let sorted = self.view(panel).sort.is_some();
        let on_newest = super::newest_row(&self.rows(panel), sorted)
            .is_none_or(|n| n == self.selections[panel.index()].index);
        self.selections[panel.index()].paused = !on_newest;
    }

    /// Whether a following panel follows its newest row now (`None` for other panels),
    /// and the key that goes back to it when it is the first or the last row (a sort
    /// whose ties put it elsewhere has none).
    pub fn follow_state(&self, panel: Panel) -> Option<(bool, Option<&str>)> {
        if !super::follows_newest(panel) {
            return None;
        }
        let rows = self.rows(panel);
        let back = match super::newest_row(&rows, self.view(panel).sort.is_some()) {
            Some(0) | None => Some(Action::Top),
            Some(n) if n + 1 == rows.len() => Some(Action::Bottom),
            Some(_) => None,
        };
        let key = back.and_then(|b| self.keymap.label_for(b).split('/').next());
        Some((!self.selections[panel.index()].paused, key))
    }

    fn update_normal(&mut self, action: Action) -> Vec<Effect> {
        match action {
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
            Action::Remove => self.ask_route(RouteVerb::Remove),
            Action::ToggleRoute => self.ask_route(RouteVerb::Enable),
            Action::AddRoute => self.open_add_form(),
            Action::Weight => self.open_weight_form(),
            Action::Deploy => self.open_wizard(),
            Action::Logs => self.open_logs(),
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
            // Text-entry and dialog actions mean nothing without their overlay.
            _ => vec![],
        }
    }

    /// The actions that open or close an overlay (or quit, with none open).
    fn open_or_close(&mut self, action: Action) -> Vec<Effect> {
        match action {
            // Ctrl-c from a dialog arrives as Cancelled: it closes, it never quits.
            Action::Cancelled => {
                self.overlays.pop();
                vec![]
            }
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
                if self.overlays.pop().is_none() {
                    self.clear_filter_or_marks();
                }
                vec![]
            }
            Action::Help => {
                if matches!(self.overlay(), Some(Overlay::Help)) {
                    self.overlays.pop();
                } else {
                    self.overlays.push(Overlay::Help);
                }
                vec![]
            }
            Action::Detail => {
                if self.row_count(self.panel) > 0 && !matches!(self.overlay(), Some(Overlay::Detail)) {
                    self.overlays.push(Overlay::Detail);
                }
                vec![]
            }
            Action::Palette => {
                self.overlays.retain(|o| !matches!(o, Overlay::Detail | Overlay::Help));
                self.overlays.push(Overlay::Palette(Box::default()));
                vec![]
            }
            Action::Filter => {
                self.overlays.retain(|o| !matches!(o, Overlay::Detail | Overlay::Help));
                let current =
                    self.view(self.panel).filter.as_ref().map(|f| f.text.clone()).unwrap_or_default();
                self.overlays.push(Overlay::Filter(current));
                vec![]
            }
            _ => vec![],
        }
    }

    fn update_background(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Tick(now) => {
                self.now = now;
                self.replica.tick(now);
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
            Inbound::Feed(Feed::Event(event)) => self.apply_event(event),
            Inbound::Feed(Feed::Heartbeat(hb)) => {
                self.apply_heartbeat(&hb);
                vec![]
            }
            Inbound::Feed(Feed::Router(status)) => {
                self.routers.insert(status.id.clone(), (*status, now));
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
    fn asks_to_act(&self, action: &Action) -> Option<String> {
        let word = |w: &str| Some(w.to_string());
        match (self.overlay(), action) {
            (None | Some(Overlay::Detail | Overlay::Help), a) => match a {
                Action::Restart => word("restart"),
                Action::Remove => word("remove"),
                Action::ToggleRoute => word("enable/disable"),
                Action::AddRoute => word("add route"),
                Action::Weight => word("weight"),
                // `d` with a deploy parked only shows how it goes.
                Action::Deploy if self.parked_wizard.is_none() => word("deploy"),
                _ => None,
            },
            (Some(Overlay::Palette(p)), Action::Submit) => {
                match palette::parse(p.input.trim(), &self.replica.fleet) {
                    Ok(PaletteCommand::Restart(_)) => word("restart"),
                    Ok(PaletteCommand::Route(verb, _)) => Some(format!("route {}", verb.word())),
                    Ok(PaletteCommand::Deploy { .. }) => word("deploy"),
                    _ => None,
                }
            }
            (Some(Overlay::Form(_)), Action::Submit) => word("route change"),
            _ => None,
        }
    }

    /// In read-only mode, says so and returns true: the rule itself, which `outgoing`
    /// and `asks_to_act`'s caller apply.
    fn refused_read_only(&mut self, what: &str) -> bool {
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
    fn learn_may_act(&mut self, may: Result<String, crate::backend::CommandError>) {
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

    fn show(&mut self, panel: Panel) {
        self.overlays.clear();
        self.panel = panel;
    }

    fn clear_filter_or_marks(&mut self) {
        let view = &mut self.views[self.panel.index()];
        if view.filter.is_some() {
            view.set_filter(None);
            self.say(Level::Info, "filter cleared".into());
        } else if !view.marks.is_empty() {
            view.marks.clear();
            self.say(Level::Info, "marks cleared".into());
        }
    }

    fn move_by(&mut self, delta: i64) -> Vec<Effect> {
        if self.overlay().is_some() {
            return vec![];
        }
        let count = self.row_count(self.panel);
        let page = self.page_rows;
        let sel = &mut self.selections[self.panel.index()];
        if count == 0 {
            sel.index = 0;
            return vec![];
        }
        let next = (sel.index as i64).saturating_add(delta).clamp(0, count as i64 - 1);
        sel.index = next as usize;
        sel.offset = super::window_start(sel.index, sel.offset, page, count);
        vec![]
    }

    // -- sort, marks, copy ------------------------------------------------------------

    fn sort(&mut self, step: SortStep) -> Vec<Effect> {
        let panel = self.panel;
        let titles = super::columns::titles(panel);
        let view = &mut self.views[panel.index()];
        let next = match super::rows::next_sort(view.sort, titles, step) {
            Ok(next) => next,
            Err(why) => {
                self.say(Level::Warn, why);
                return vec![];
            }
        };
        view.set_sort(next);
        let text = match next {
            Some(s) => {
                format!("sorted by {} {}", titles[s.column], if s.descending { "↓" } else { "↑" })
            }
            None => "natural order".into(),
        };
        self.say(Level::Info, text);
        vec![]
    }

    fn mark(&mut self) -> Vec<Effect> {
        if matches!(self.panel, Panel::Events | Panel::Audit) {
            self.say(
                Level::Warn,
                format!("nothing to mark in {}: marks are for bulk actions", self.panel.title()),
            );
            return vec![];
        }
        let Some(key) = self.selected_key(self.panel) else { return vec![] };
        let marks = &mut self.views[self.panel.index()].marks;
        if !marks.remove(&key) {
            marks.insert(key);
        }
        let n = marks.len();
        let what = match self.panel {
            Panel::Routes => "r restarts, e enables/disables, x removes them",
            _ => "r restarts them",
        };
        self.say(Level::Info, format!("{n} marked ({what}; Esc clears)"));
        self.move_by(1)
    }

    fn copy(&mut self) -> Vec<Effect> {
        let text = match self.panel {
            Panel::Events => {
                self.selected_event().map(|e| e.operation_id.clone().unwrap_or_else(|| e.rev.to_string()))
            }
            Panel::Audit => {
                self.selected_audit().and_then(|e| e.audit.as_ref().map(|a| a.command_id.clone()))
            }
            _ => self.selected_key(self.panel).map(|k| k.id_text()),
        };
        match text {
            Some(text) => {
                self.say(Level::Info, format!("copied {text} (OSC 52)"));
                vec![Effect::Copy(text)]
            }
            None => {
                self.say(Level::Warn, "nothing selected to copy".into());
                vec![]
            }
        }
    }

    // -- confirm dialog -----------------------------------------------------------------

    fn update_confirm(&mut self, action: Action) -> Vec<Effect> {
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

    /// Puts commands behind the confirm dialog. Commands touching an app tagged `prod`
    /// need its name typed.
    fn confirm(
        &mut self,
        question: String,
        commands: Vec<ControlCommand>,
        apps: &BTreeSet<String>,
    ) -> Vec<Effect> {
        let prod: Vec<&str> = apps
            .iter()
            .filter(|a| self.replica.fleet.apps.get(*a).is_some_and(AppSpec::is_prod))
            .map(String::as_str)
            .collect();
        let mut pending = Pending::new(question, commands);
        if !prod.is_empty() {
            pending.typed = Some(prod.join(","));
        }
        // The dialog replaces whatever led to it (palette, form, detail).
        self.overlays.clear();
        self.overlays.push(Overlay::Confirm(Box::new(pending)));
        vec![]
    }

    // -- restart ------------------------------------------------------------------------

    /// The instance ids behind the marked rows of the current panel.
    fn marked_instances(&self) -> Vec<String> {
        let f = &self.replica.fleet;
        let marks = &self.view(self.panel).marks;
        let mut ids: Vec<String> = Vec::new();
        for key in marks {
            match (self.panel, key) {
                (Panel::Instances, RowKey::Id(id)) if f.instances.contains_key(id) => ids.push(id.clone()),
                (Panel::Hosts, RowKey::Id(h)) => ids.extend(f.instances_on(h).map(|i| i.id.clone())),
                (Panel::Apps, RowKey::Id(a)) => ids.extend(f.instances_of(a).map(|i| i.id.clone())),
                (Panel::Routes, RowKey::Route(a, b)) => {
                    ids.extend(f.instances_of(a).filter(|i| i.endpoint == *b).map(|i| i.id.clone()))
                }
                _ => {}
            }
        }
        let mut seen = BTreeSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        ids
    }

    /// `r` (target `None`: the marked rows, else the selected row) or `:restart`.
    fn ask_restart(&mut self, target: Option<RestartTarget>) -> Vec<Effect> {
        let f = &self.replica.fleet;
        let has_marks = !self.view(self.panel).marks.is_empty();
        let target = match target {
            Some(t) => Some(t),
            None if has_marks => Some(RestartTarget::Marked),
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
                Panel::Audit => None,
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

    // -- routes -------------------------------------------------------------------------

    /// The routes `e` / `x` act on: the marked routes, the selected route, or the route of
    /// the selected instance.
    fn target_routes(&self) -> Vec<Route> {
        let f = &self.replica.fleet;
        match self.panel {
            Panel::Routes if !self.view(Panel::Routes).marks.is_empty() => self
                .view(Panel::Routes)
                .marks
                .iter()
                .filter_map(|k| match k {
                    RowKey::Route(a, b) => f.routes.get(&(a.clone(), b.clone())).cloned(),
                    _ => None,
                })
                .collect(),
            Panel::Routes => self.selected_route().cloned().into_iter().collect(),
            Panel::Instances => self
                .selected_instance()
                .and_then(|i| f.routes.get(&(i.app.clone(), i.endpoint.clone())).cloned())
                .into_iter()
                .collect(),
            _ => vec![],
        }
    }

    fn ask_route(&mut self, verb: RouteVerb) -> Vec<Effect> {
        let routes = self.target_routes();
        if routes.is_empty() {
            self.say(Level::Warn, "select a route (Routes, 3) or a routed instance (Instances, 2)".into());
            return vec![];
        }
        // `e` flips each route; with several, they all go the way of the first.
        let verb = match (verb, routes[0].state) {
            (RouteVerb::Remove, _) => RouteVerb::Remove,
            (_, RouteState::Enabled) => RouteVerb::Disable,
            (_, RouteState::Disabled) => RouteVerb::Enable,
        };
        let Some((routes, unchanged)) = self.routes_to_change(verb, routes) else { return vec![] };
        let commands: Vec<ControlCommand> = routes
            .iter()
            .map(|r| {
                ControlCommand::Route(
                    verb,
                    RouteRequest { app: r.app.clone(), backend: r.backend.clone(), weight: None },
                )
            })
            .collect();
        let word = capitalise(verb.word());
        let mut question = match routes.as_slice() {
            [r] => format!("{word} route {} -> {}?", r.domain, r.backend),
            many => format!(
                "{word} {} routes: {}?",
                many.len(),
                named(many.iter().map(|r| format!("{} {}", r.app, r.backend)))
            ),
        };
        if unchanged > 0 {
            question
                .push_str(&format!("\n{unchanged} marked already {}: left as they are", state_word(verb)));
        }
        let question = self.with_traffic_warning(
            question,
            verb,
            routes.iter().map(|r| (r.app.as_str(), r.backend.as_str())),
        );
        // Taking traffic away from a prod app is as serious as restarting it.
        let apps: BTreeSet<String> = match verb {
            RouteVerb::Remove | RouteVerb::Disable => routes.iter().map(|r| r.app.clone()).collect(),
            _ => BTreeSet::new(),
        };
        self.confirm(question, commands, &apps)
    }

    /// The routes an enable or a disable changes, and how many are in that state already
    /// (left out: no command for them). `None`, said on the status line, when none would
    /// change: asking again for what is so is a no-op, not a command.
    fn routes_to_change(&mut self, verb: RouteVerb, routes: Vec<Route>) -> Option<(Vec<Route>, usize)> {
        let already = |r: &Route| {
            matches!(
                (verb, r.state),
                (RouteVerb::Enable, RouteState::Enabled) | (RouteVerb::Disable, RouteState::Disabled)
            )
        };
        let total = routes.len();
        let (unchanged, changing): (Vec<Route>, Vec<Route>) = routes.into_iter().partition(already);
        if !changing.is_empty() {
            return Some((changing, unchanged.len()));
        }
        let state = state_word(verb);
        let text = match unchanged.as_slice() {
            [r] => format!("route {} -> {} is already {state}: nothing sent", r.domain, r.backend),
            _ => format!("the {total} routes are already {state}: nothing sent"),
        };
        self.say(Level::Info, text);
        None
    }

    /// A disable or a removal that takes an app's last serving backend says so, on a line
    /// of its own under the question.
    fn with_traffic_warning<'a>(
        &self,
        question: String,
        verb: RouteVerb,
        backends: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> String {
        if !matches!(verb, RouteVerb::Disable | RouteVerb::Remove) {
            return question;
        }
        let mut out = question;
        for app in self.facts().left_without_traffic(backends) {
            out.push_str(&format!("\n⚠ this is {app}'s last serving backend: {app} will get no traffic"));
        }
        out
    }

    fn open_add_form(&mut self) -> Vec<Effect> {
        let f = &self.replica.fleet;
        let (app, backend) = match self.panel {
            Panel::Routes => {
                (self.selected_route().map(|r| r.app.clone()).unwrap_or_default(), String::new())
            }
            Panel::Instances => match self.selected_instance() {
                Some(i) if !f.routes.contains_key(&(i.app.clone(), i.endpoint.clone())) => {
                    (i.app.clone(), i.endpoint.clone())
                }
                Some(i) => (i.app.clone(), String::new()),
                None => (String::new(), String::new()),
            },
            Panel::Apps => (self.selected_app().map(|a| a.name.clone()).unwrap_or_default(), String::new()),
            _ => (String::new(), String::new()),
        };
        self.overlays.clear();
        self.overlays.push(Overlay::Form(Box::new(RouteForm::add(app, backend))));
        vec![]
    }

    fn open_weight_form(&mut self) -> Vec<Effect> {
        let Some(route) = self.target_routes().into_iter().next() else {
            self.say(Level::Warn, "select a route (Routes, 3) to change its weight".into());
            return vec![];
        };
        self.overlays.clear();
        self.overlays.push(Overlay::Form(Box::new(RouteForm::weight(
            route.app,
            route.backend,
            route.weight,
        ))));
        vec![]
    }

    fn update_form(&mut self, action: Action) -> Vec<Effect> {
        let Some(Overlay::Form(form)) = self.overlays.last_mut() else { return vec![] };
        match action {
            Action::Input(c) => {
                form.field_mut().push(c);
                form.error = None;
            }
            Action::Backspace => {
                form.field_mut().pop();
            }
            Action::ClearInput => form.field_mut().clear(),
            Action::Complete | Action::HistoryNext => form.move_focus(1),
            Action::CompletePrev | Action::HistoryPrev => form.move_focus(-1),
            Action::Submit => {
                let line = form.line();
                match palette::parse(&line, &self.replica.fleet) {
                    Ok(cmd) => return self.run_command(cmd),
                    Err(e) => form.error = Some(e),
                }
            }
            Action::Back | Action::Cancelled | Action::Quit => {
                self.overlays.pop();
            }
            _ => {}
        }
        vec![]
    }

    // -- filter -------------------------------------------------------------------------

    fn update_filter(&mut self, action: Action) -> Vec<Effect> {
        let Some(Overlay::Filter(text)) = self.overlays.last_mut() else { return vec![] };
        match action {
            Action::Input(c) => text.push(c),
            Action::Backspace => {
                text.pop();
            }
            Action::ClearInput => text.clear(),
            Action::Submit => {
                self.overlays.pop();
                return vec![];
            }
            Action::Back | Action::Cancelled | Action::Quit => {
                self.overlays.pop();
                self.views[self.panel.index()].set_filter(None);
                return vec![];
            }
            _ => return vec![],
        }
        // The filter applies as it is typed.
        let filter = Filter::parse(text);
        self.views[self.panel.index()].set_filter(filter);
        vec![]
    }

    // -- palette ------------------------------------------------------------------------

    fn update_palette(&mut self, action: Action) -> Vec<Effect> {
        let fleet = &self.replica.fleet;
        let history = &self.history;
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
            Action::Complete => p.complete(fleet, 1),
            Action::CompletePrev => p.complete(fleet, -1),
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
    fn run_command(&mut self, cmd: PaletteCommand) -> Vec<Effect> {
        match cmd {
            PaletteCommand::Panel(p) => {
                self.show(p);
                vec![]
            }
            PaletteCommand::Quit => {
                self.should_quit = true;
                vec![Effect::Quit]
            }
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
            PaletteCommand::Route(verb, req) => {
                let key = (req.app.clone(), req.backend.clone());
                if let Some(route) = self.replica.fleet.routes.get(&key).cloned()
                    && self.routes_to_change(verb, vec![route]).is_none()
                {
                    self.overlays.clear();
                    return vec![];
                }
                let f = &self.replica.fleet;
                let domain = f.apps.get(&req.app).map(|a| a.domain.clone()).unwrap_or_default();
                let question = match verb {
                    RouteVerb::Add => {
                        format!("Add route {domain} -> {} (weight {})?", req.backend, req.weight.unwrap_or(1))
                    }
                    RouteVerb::Weight => format!(
                        "Change the weight of {domain} -> {} from {} to {}?",
                        req.backend,
                        f.routes.get(&key).map(|r| r.weight).unwrap_or(1),
                        req.weight.unwrap_or(1)
                    ),
                    v => format!("{} route {domain} -> {}?", capitalise(v.word()), req.backend),
                };
                let question =
                    self.with_traffic_warning(question, verb, [(req.app.as_str(), req.backend.as_str())]);
                let apps: BTreeSet<String> = match verb {
                    RouteVerb::Remove | RouteVerb::Disable => [req.app.clone()].into(),
                    _ => BTreeSet::new(),
                };
                self.confirm(question, vec![ControlCommand::Route(verb, req)], &apps)
            }
            PaletteCommand::Deploy { app, version, instances } => {
                // The wizard, prefilled: the same plan preview and confirmation as `d`.
                self.open_wizard_for(Some(&app), version, instances)
            }
        }
    }
}

/// The state an enable or a disable leaves a route in.
fn state_word(verb: RouteVerb) -> &'static str {
    match verb {
        RouteVerb::Disable => RouteState::Disabled.as_str(),
        _ => RouteState::Enabled.as_str(),
    }
}

/// How many targets a bulk confirmation names before it cuts the list with `…`.
const NAMED_TARGETS: usize = 3;

/// The targets of a bulk action for its confirmation: the first few, then `…`.
fn named(targets: impl Iterator<Item = String>) -> String {
    let mut shown: Vec<String> = Vec::with_capacity(NAMED_TARGETS + 1);
    for (n, t) in targets.enumerate() {
        if n == NAMED_TARGETS {
            shown.push("…".into());
            break;
        }
        shown.push(t);
    }
    shown.join(", ")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
