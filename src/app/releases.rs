//! An app's releases in its detail pane: asked for when the pane opens on an app (and
//! again after each change of that app), a selection over them (`[` / `]`), the diff of
//! the selected release against the current one (the protocol's one diff), and `b`: a
//! rollback to the selected release, confirmed (a typed name for prod).

use std::collections::BTreeSet;

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, Panel};
use crate::backend::CommandError;
use crate::protocol::release::{self, FieldChange, Release, ReleaseList, RollbackRequest};
use crate::protocol::{Change, ControlCommand, Event};

/// The releases of the app the detail pane shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Releases {
    /// The app they are of; empty before the first is asked for.
    pub app: String,
    /// The answer; `None` while it is asked for.
    pub list: Option<Result<ReleaseList, String>>,
    /// The selected release, by number.
    pub selected: Option<u64>,
    /// A change of the app was seen: ask again.
    stale: bool,
}

impl Releases {
    /// The answer's releases, when there is one.
    pub fn loaded(&self) -> Option<&ReleaseList> {
        self.list.as_ref().and_then(|l| l.as_ref().ok())
    }

    /// The selected release and the current one, when both are known.
    pub fn pair(&self) -> Option<(&Release, &Release)> {
        let list = self.loaded()?;
        Some((list.get(self.selected?)?, list.get(list.current?)?))
    }

    /// What changes from the current release to the selected one: what a rollback to it
    /// would change.
    pub fn diff(&self) -> Option<Vec<FieldChange>> {
        self.pair().map(|(selected, current)| release::diff(&current.spec, &selected.spec))
    }
}

/// The app detail's own keys, when it is on top on the Apps panel: `[` / `]` the older /
/// newer release, `b` roll back to it. Its own like the logs view's (`logs::key_action`),
/// not the keymap's: they mean something only there, and the help lists the keymap.
pub fn key_action(app: &App, key: &crossterm::event::KeyEvent) -> Option<Action> {
    use crossterm::event::{KeyCode, KeyModifiers};
    if app.detail_app().is_none() || key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) {
        return None;
    }
    match key.code {
        KeyCode::Char('[') => Some(Action::ReleasePrev),
        KeyCode::Char(']') => Some(Action::ReleaseNext),
        KeyCode::Char('b') => Some(Action::Rollback),
        _ => None,
    }
}

/// By default the release before the current one: what `ctl rollback` goes back to.
fn default_selection(list: &ReleaseList) -> Option<u64> {
    let current = list.current.or(list.releases.last().map(|r| r.number))?;
    list.releases.iter().rev().map(|r| r.number).find(|n| *n < current).or(Some(current))
}

impl App {
    /// The app whose detail pane is open, if any.
    fn detail_app(&self) -> Option<String> {
        let open = matches!(self.overlay(), Some(Overlay::Detail)) && self.panel == Panel::Apps;
        open.then(|| self.selected_app().map(|a| a.name.clone())).flatten()
    }

    /// Asks for the releases of the app the detail pane shows, when they are not known or
    /// are stale. Called after every update, so opening the pane, moving to another app and
    /// an operation of the app each lead here.
    pub(super) fn releases_wanted(&mut self) -> Vec<Effect> {
        let Some(app) = self.detail_app() else { return vec![] };
        if self.releases.app == app && !self.releases.stale {
            return vec![];
        }
        if self.releases.app != app {
            self.releases = Releases { app: app.clone(), ..Releases::default() };
        }
        self.releases.stale = false;
        vec![Effect::Releases(app)]
    }

    /// An event of the shown app that changes its spec or ends an operation makes its
    /// releases stale (a deploy, a rollback, a failed deploy that went back).
    pub(super) fn note_release_event(&mut self, event: &Event) {
        if event.app.as_deref() != Some(self.releases.app.as_str()) {
            return;
        }
        if event.changes.iter().any(|c| matches!(c, Change::App(_) | Change::OperationEnded(_))) {
            self.releases.stale = true;
        }
    }

    /// The backend's answer: kept when it is for the app shown, the selection kept when
    /// that release is still there.
    pub(super) fn apply_releases(&mut self, app: String, result: Result<ReleaseList, CommandError>) {
        if app != self.releases.app {
            return;
        }
        let result = result.map_err(|e| e.to_string());
        if let Ok(list) = &result {
            let kept = self.releases.selected.filter(|n| list.get(*n).is_some());
            self.releases.selected = kept.or_else(|| default_selection(list));
        }
        self.releases.list = Some(result);
    }

    /// `[` (`by` -1, older) and `]` (+1, newer).
    pub(super) fn move_release(&mut self, by: i64) -> Vec<Effect> {
        if self.detail_app().is_none() {
            return vec![];
        }
        let Some(list) = self.releases.loaded() else { return vec![] };
        let numbers: Vec<u64> = list.releases.iter().map(|r| r.number).collect();
        let at = self.releases.selected.and_then(|n| numbers.iter().position(|x| *x == n)).unwrap_or(0);
        let next = (at as i64 + by).clamp(0, numbers.len().saturating_sub(1) as i64) as usize;
        self.releases.selected = numbers.get(next).copied();
        vec![]
    }

    /// `b`: a rollback to the selected release, through the confirm dialog.
    pub(super) fn ask_rollback(&mut self) -> Vec<Effect> {
        let Some(app) = self.detail_app() else {
            self.say(Level::Warn, "rollback: open an app's detail (Enter on Apps) first".into());
            return vec![];
        };
        let Some((selected, current)) = self.releases.pair() else {
            self.say(Level::Warn, format!("rollback: {app}'s releases are not known yet"));
            return vec![];
        };
        let (number, current_number) = (selected.number, current.number);
        let changes = release::diff(&current.spec, &selected.spec);
        if changes.is_empty() {
            self.say(
                Level::Warn,
                format!("{app} already runs release {number}'s spec: nothing to roll back"),
            );
            return vec![];
        }
        let question = format!(
            "Roll {app} back from release {current_number} to release {number} ({} field(s) change), rolling?",
            changes.len()
        );
        let command = ControlCommand::Rollback(RollbackRequest { app: app.clone(), release: Some(number) });
        self.confirm(question, vec![command], &BTreeSet::from([app]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::release::Cause;

    /// The fixture's app `name` with three releases; 3 is current.
    pub(crate) fn list_of(app: &App, name: &str) -> ReleaseList {
        let spec = app.replica.fleet.apps.get(name).cloned().expect("the fixture's app");
        let r = |number: u64, version: &str, cause| Release {
            number,
            spec: crate::protocol::AppSpec { version: version.into(), ..spec.clone() },
            who: "ana".into(),
            when: crate::plane::fixture::T0 + number * 60_000,
            operation_id: None,
            cause,
        };
        ReleaseList {
            app: name.into(),
            current: Some(3),
            releases: vec![
                r(1, "0.9.0", Cause::Deploy),
                r(2, "0.9.5", Cause::Deploy),
                r(3, &spec.version, Cause::Rollback { to: 1 }),
            ],
        }
    }

    fn opened() -> (App, String) {
        let mut app = crate::views::harness::app();
        app.update(Action::ShowPanel(Panel::Apps));
        let effects = app.update(Action::Detail);
        let name = app.selected_app().map(|a| a.name.clone()).expect("an app");
        assert_eq!(effects, vec![Effect::Releases(name.clone())], "opening the detail asks");
        (app, name)
    }

    #[test]
    fn the_detail_asks_once_then_again_after_a_change_of_the_app() {
        let (mut app, name) = opened();
        assert_eq!(app.update(Action::Tick(1)), vec![], "asked already");
        let list = list_of(&app, &name);
        app.apply(crate::backend::Inbound::Releases { app: name.clone(), result: Ok(list) });
        assert_eq!(app.releases.selected, Some(2), "the one before the current");
        // The app's spec changes (a deploy started): asked again.
        let spec = app.replica.fleet.apps[&name].clone();
        let mut ev = app.replica.events.back().cloned().expect("an event");
        ev.rev = app.replica.fleet.revision + 1;
        ev.app = Some(name.clone());
        ev.changes = vec![Change::App(spec)];
        let effects = app.apply(crate::backend::Inbound::Feed(crate::backend::Feed::Event(ev)));
        assert_eq!(effects, vec![Effect::Releases(name)]);
    }

    #[test]
    fn the_selection_moves_and_b_asks_for_a_confirmed_rollback_to_it() {
        let (mut app, name) = opened();
        let list = list_of(&app, &name);
        app.apply(crate::backend::Inbound::Releases { app: name.clone(), result: Ok(list) });
        app.update(Action::ReleasePrev);
        assert_eq!(app.releases.selected, Some(1));
        app.update(Action::ReleasePrev);
        assert_eq!(app.releases.selected, Some(1), "stops at the oldest");
        let fields: Vec<String> =
            app.releases.diff().unwrap_or_default().into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["version"]);
        assert_eq!(app.update(Action::Rollback), vec![], "a dialog first");
        let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no confirm dialog") };
        assert!(p.question.contains("from release 3 to release 1"), "{}", p.question);
        let effects = app.update(Action::Confirmed);
        let want = ControlCommand::Rollback(RollbackRequest { app: name, release: Some(1) });
        assert!(effects.contains(&Effect::Send(want)), "{effects:?}");
    }

    #[test]
    fn rolling_back_a_prod_app_asks_for_its_name_typed() {
        let (mut app, _) = opened();
        app.update(Action::Back);
        for _ in 0..10 {
            if app.selected_app().is_some_and(|a| a.is_prod()) {
                break;
            }
            app.update(Action::Down);
        }
        let name = app.selected_app().filter(|a| a.is_prod()).map(|a| a.name.clone()).expect("a prod app");
        assert_eq!(app.update(Action::Detail), vec![Effect::Releases(name.clone())], "another app: asked");
        let list = list_of(&app, &name);
        app.apply(crate::backend::Inbound::Releases { app: name.clone(), result: Ok(list) });
        app.update(Action::Rollback);
        let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no confirm dialog") };
        assert_eq!(p.typed.as_deref(), Some(name.as_str()));
    }

    #[test]
    fn the_detail_s_own_keys_mean_something_only_in_an_app_s_detail() {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let (mut app, _) = opened();
        assert_eq!(key_action(&app, &key('[')), Some(Action::ReleasePrev));
        assert_eq!(key_action(&app, &key(']')), Some(Action::ReleaseNext));
        assert_eq!(key_action(&app, &key('b')), Some(Action::Rollback));
        assert_eq!(key_action(&app, &key('r')), None, "the keymap's");
        app.update(Action::Back);
        assert_eq!(key_action(&app, &key('b')), None, "no detail open");
    }

    #[test]
    fn rolling_back_to_the_current_release_is_refused_before_any_dialog() {
        let (mut app, name) = opened();
        let list = list_of(&app, &name);
        app.apply(crate::backend::Inbound::Releases { app: name, result: Ok(list) });
        app.update(Action::ReleaseNext);
        assert_eq!(app.releases.selected, Some(3));
        assert_eq!(app.update(Action::Rollback), vec![]);
        assert!(matches!(app.overlay(), Some(Overlay::Detail)));
        assert!(app.status.as_ref().is_some_and(|s| s.text.contains("already runs release 3")));
    }

    #[test]
    fn read_only_refuses_a_rollback_but_still_reads_releases() {
        let mut app = crate::views::harness::app();
        app.read_only = true;
        app.update(Action::ShowPanel(Panel::Apps));
        let name = app.selected_app().map(|a| a.name.clone()).expect("an app");
        assert_eq!(app.update(Action::Detail), vec![Effect::Releases(name.clone())]);
        let list = list_of(&app, &name);
        app.apply(crate::backend::Inbound::Releases { app: name, result: Ok(list) });
        assert_eq!(app.update(Action::Rollback), vec![]);
        assert!(!matches!(app.overlay(), Some(Overlay::Confirm(_))));
        assert!(app.status.as_ref().is_some_and(|s| s.text.contains("read-only: rollback refused")));
    }
}
