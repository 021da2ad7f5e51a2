//! Route actions: enable/disable (`e`), remove (`x`), the route form (`a`, `w`) and the
//! palette's route commands; what they target, what would change, and their confirmation.

use std::collections::BTreeSet;

use super::marks::named;
use super::rows::RowKey;
use super::{App, Level, Overlay, RouteForm};
use crate::actions::{Action, Effect, Panel, palette};
use crate::protocol::subjects::RouteVerb;
use crate::protocol::{ControlCommand, Route, RouteRequest, RouteState};

impl App {
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

    pub(super) fn ask_route(&mut self, verb: RouteVerb) -> Vec<Effect> {
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

    /// A palette route command (or the route form's): nothing when it would change
    /// nothing, else its confirmation.
    pub(super) fn ask_route_command(&mut self, verb: RouteVerb, req: RouteRequest) -> Vec<Effect> {
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
        let question = self.with_traffic_warning(question, verb, [(req.app.as_str(), req.backend.as_str())]);
        let apps: BTreeSet<String> = match verb {
            RouteVerb::Remove | RouteVerb::Disable => [req.app.clone()].into(),
            _ => BTreeSet::new(),
        };
        self.confirm(question, vec![ControlCommand::Route(verb, req)], &apps)
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

    pub(super) fn open_add_form(&mut self) -> Vec<Effect> {
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

    pub(super) fn open_weight_form(&mut self) -> Vec<Effect> {
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

    pub(super) fn update_form(&mut self, action: Action) -> Vec<Effect> {
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
}

/// The state an enable or a disable leaves a route in.
fn state_word(verb: RouteVerb) -> &'static str {
    match verb {
        RouteVerb::Disable => RouteState::Disabled.as_str(),
        _ => RouteState::Enabled.as_str(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
