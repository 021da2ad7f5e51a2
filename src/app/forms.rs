//! The text-entry overlays' state: the command palette (input, completion, history) and
//! the route form. Their keys arrive as `Action::Input`, `Complete`, `Submit` ...

use crate::actions::palette;
use crate::protocol::Fleet;
use crate::protocol::subjects::RouteVerb;

/// The palette while it is open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaletteState {
    pub input: String,
    /// Why the last Enter did not run the line.
    pub error: Option<String>,
    /// The candidates for the word being completed, shown under the prompt.
    pub candidates: Vec<String>,
    /// While Tab cycles: the word's start and the candidate shown.
    cycle: Option<(usize, usize)>,
    /// While Up/Down browse the history: the line shown.
    history_pos: Option<usize>,
}

impl PaletteState {
    pub fn edited(&mut self) {
        self.cycle = None;
        self.history_pos = None;
        self.error = None;
    }

    /// Tab (`step` 1) or Shift-Tab (-1): completes the word being typed. One candidate
    /// is put in place; several first fill in what they share, then cycle.
    pub fn complete(&mut self, fleet: &Fleet, contexts: &[String], step: isize) {
        self.error = None;
        if let Some((start, at)) = self.cycle
            && !self.candidates.is_empty()
        {
            let n = self.candidates.len() as isize;
            let next = ((at as isize + step).rem_euclid(n)) as usize;
            self.input.truncate(start);
            self.input.push_str(&self.candidates[next]);
            self.cycle = Some((start, next));
            return;
        }
        let (start, candidates) = palette::complete_in(&self.input, fleet, contexts);
        let word = self.input[start..].to_string();
        self.candidates = candidates;
        match self.candidates.len() {
            0 => self.error = Some(format!("nothing completes {word:?} here")),
            1 => {
                self.input.truncate(start);
                self.input.push_str(&self.candidates[0]);
                self.input.push(' ');
                self.candidates.clear();
            }
            _ => {
                let shared = palette::common_prefix(&self.candidates);
                if shared.len() > word.len() {
                    self.input.truncate(start);
                    self.input.push_str(&shared);
                } else {
                    let first = if step < 0 { self.candidates.len() - 1 } else { 0 };
                    self.input.truncate(start);
                    self.input.push_str(&self.candidates[first]);
                    self.cycle = Some((start, first));
                }
            }
        }
    }

    /// Up (`older`) / Down through the remembered lines.
    pub fn browse(&mut self, history: &[String], older: bool) {
        if history.is_empty() {
            return;
        }
        let pos = match (self.history_pos, older) {
            (None, true) => Some(history.len() - 1),
            (None, false) => None,
            (Some(0), true) => Some(0),
            (Some(p), true) => Some(p - 1),
            (Some(p), false) if p + 1 < history.len() => Some(p + 1),
            (Some(_), false) => None,
        };
        self.input = pos.map(|p| history[p].clone()).unwrap_or_default();
        self.history_pos = pos;
        self.cycle = None;
        self.candidates.clear();
        self.error = None;
    }
}

/// The route form: `a` adds a route (app, backend, weight); `w` changes a weight.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteForm {
    /// `Add` or `Weight`.
    pub verb: RouteVerb,
    pub app: String,
    pub backend: String,
    pub weight: String,
    /// The field being typed in: 0 app, 1 backend, 2 weight. The weight form has only 2.
    pub focus: usize,
    pub error: Option<String>,
}

impl RouteForm {
    pub fn add(app: String, backend: String) -> RouteForm {
        let focus = if app.is_empty() {
            0
        } else if backend.is_empty() {
            1
        } else {
            2
        };
        RouteForm { verb: RouteVerb::Add, app, backend, weight: "1".into(), focus, error: None }
    }

    pub fn weight(app: String, backend: String, weight: u32) -> RouteForm {
        RouteForm { verb: RouteVerb::Weight, app, backend, weight: weight.to_string(), focus: 2, error: None }
    }

    /// The fields the operator may type in.
    pub fn fields(&self) -> &'static [usize] {
        match self.verb {
            RouteVerb::Weight => &[2],
            _ => &[0, 1, 2],
        }
    }

    pub fn field_mut(&mut self) -> &mut String {
        match self.focus {
            0 => &mut self.app,
            1 => &mut self.backend,
            _ => &mut self.weight,
        }
    }

    pub fn move_focus(&mut self, step: isize) {
        let fields = self.fields();
        let at = fields.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        let next = (at + step).rem_euclid(fields.len() as isize) as usize;
        self.focus = fields[next];
    }

    /// The form as a palette line, so that it is checked by the same rules.
    pub fn line(&self) -> String {
        let verb = if self.verb == RouteVerb::Weight { "weight" } else { "add" };
        format!("route {verb} {} {} {}", self.app.trim(), self.backend.trim(), self.weight.trim())
    }
}

#[cfg(test)]
#[path = "forms_tests.rs"]
mod tests;
