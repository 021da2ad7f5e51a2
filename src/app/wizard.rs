//! The guided deploy `d`: a form whose every field is checked as it is typed, a plan
//! preview from the real scheduler, a confirmation, the operation's live progress, and a
//! one-key rollback to the previous spec.
//!
//! The artifact: the cockpit talks to the plane only through the bus's requests, and has
//! no path to the Object Store, so the wizard deploys an artifact that is already in the
//! repository (the app's current slot) or none (image only). New artifacts are uploaded
//! with `quarterdeck ctl deploy --artifact FILE`; the form says so.

use std::collections::BTreeMap;

use crate::backend::ControlCommand;
use crate::protocol::scheduler::{PlacementError, PlacementRequest, place};
use crate::protocol::{
    Accepted, App as AppSpec, Constraints, DeployRequest, Fleet, Instance, InstanceState, Operation,
    OperationState, RunPatch, Strategy, validate,
};

/// The form's fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    App,
    Version,
    Artifact,
    Image,
    Port,
    Instances,
    Azs,
    Tags,
    Cpu,
    Memory,
    Strategy,
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::App,
        Field::Version,
        Field::Artifact,
        Field::Image,
        Field::Port,
        Field::Instances,
        Field::Azs,
        Field::Tags,
        Field::Cpu,
        Field::Memory,
        Field::Strategy,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::App => "app",
            Field::Version => "version",
            Field::Artifact => "artifact",
            Field::Image => "image",
            Field::Port => "port",
            Field::Instances => "instances",
            Field::Azs => "AZs",
            Field::Tags => "host tags",
            Field::Cpu => "cpu",
            Field::Memory => "memory",
            Field::Strategy => "strategy",
        }
    }

    /// What the field takes, shown while it is empty or focused.
    pub fn hint(self) -> &'static str {
        match self {
            Field::App => "existing (Tab completes) or a new name",
            Field::Version => "e.g. 1.4.2",
            Field::Artifact => "repository slot already uploaded, or empty: image only (Tab)",
            Field::Image => "e.g. tomcat:8.5",
            Field::Port => "1-65535",
            Field::Instances => "1-500",
            Field::Azs => "comma-separated; empty: any",
            Field::Tags => "comma-separated; every one required",
            Field::Cpu => "cores per instance, e.g. 0.5",
            Field::Memory => "per instance, e.g. 512M, 2G",
            Field::Strategy => "rolling | all (Tab toggles)",
        }
    }
}

/// Where the wizard is.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Form,
    /// The plan preview: Enter goes on to the confirmation when everything fits.
    Plan,
    /// `[y/N]`, or the app's name typed for a prod app.
    Confirm,
    /// Sent; waiting for accepted-or-refused, then following the operation.
    Progress,
    /// `r` was pressed at the end: roll back to the previous spec? (`y`, or the name)
    ConfirmRollback,
}

/// One host's line in the plan preview.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    pub host: String,
    pub az: String,
    /// How many new instances it gets.
    pub new: u32,
    pub cpu_left: f32,
    pub memory_left_mb: u64,
    /// Not up, or ruled out by the AZ or tag constraints.
    pub eligible: bool,
}

/// The plan preview: where each new instance goes, or why nothing fits.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The host of each new instance, in order; empty when nothing fits.
    pub placements: Vec<String>,
    pub hosts: Vec<HostPlan>,
    /// The scheduler's refusal, word for word.
    pub no_fit: Option<String>,
    /// How the old instances go, in words.
    pub note: String,
}

/// A deploy the wizard sent (or the rollback), and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub rollback: bool,
    /// `ControlCommand::describe` of the command, to match its `CommandDone`.
    pub what: String,
    pub sent_at: u64,
    pub operation: Option<String>,
    /// The controller refused the command.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wizard {
    pub step: Step,
    pub values: [String; 11],
    pub focus: usize,
    /// The app's spec when the wizard picked it up: the prefill, and what a rollback
    /// deploys again. `None` for a new app.
    pub previous: Option<AppSpec>,
    pub plan: Option<Plan>,
    /// The confirmation's typed name, and why the last Enter did not confirm.
    pub input: String,
    pub error: Option<String>,
    /// The deploy, then the rollback, once sent.
    pub sent: Vec<Sent>,
    /// While Tab cycles through app names: what was typed before the first Tab.
    cycle: Option<String>,
}

impl Wizard {
    /// A wizard for `app` (prefilled from its spec), or an empty one.
    pub fn new(fleet: &Fleet, app: Option<&str>) -> Wizard {
        let mut w = Wizard {
            step: Step::Form,
            values: Default::default(),
            focus: 0,
            previous: None,
            plan: None,
            input: String::new(),
            error: None,
            sent: Vec::new(),
            cycle: None,
        };
        w.values[Field::Instances as usize] = "1".into();
        w.values[Field::Cpu as usize] = "0.25".into();
        w.values[Field::Memory as usize] = "256M".into();
        w.values[Field::Strategy as usize] = "rolling".into();
        if let Some(name) = app {
            w.values[0] = name.to_string();
            w.prefill(fleet);
            w.focus = Field::Version as usize;
        }
        w
    }

    pub fn value(&self, f: Field) -> &str {
        self.values[f as usize].trim()
    }

    pub fn focused(&self) -> Field {
        Field::ALL[self.focus.min(Field::ALL.len() - 1)]
    }

    /// Fills every field from the named app's current spec, when it exists.
    fn prefill(&mut self, fleet: &Fleet) {
        let Some(app) = fleet.apps.get(self.value(Field::App)) else {
            self.previous = None;
            return;
        };
        if self.previous.as_ref().is_some_and(|p| p.name == app.name) {
            return;
        }
        let c = &app.constraints;
        let v = &mut self.values;
        v[Field::Version as usize] = app.version.clone();
        v[Field::Artifact as usize] = app.run.artifact.as_ref().map(|a| a.name.clone()).unwrap_or_default();
        v[Field::Image as usize] = app.image.clone();
        v[Field::Port as usize] = app.port.to_string();
        v[Field::Instances as usize] = app.instances.to_string();
        v[Field::Azs as usize] = c.azs.join(",");
        v[Field::Tags as usize] = c.tags.join(",");
        v[Field::Cpu as usize] = format!("{}", c.cpu);
        v[Field::Memory as usize] = format!("{}M", c.memory_mb);
        self.previous = Some(app.clone());
    }

    pub fn is_prod(&self) -> bool {
        self.previous.as_ref().is_some_and(|a| a.tags.iter().any(|t| t == "prod"))
    }

    /// The field's error, if its value is not valid now.
    pub fn check(&self, f: Field) -> Option<String> {
        let v = self.value(f);
        let prev = self.previous.as_ref();
        let r: Result<(), String> = match f {
            Field::App => validate::name("app", v),
            Field::Version => validate::version(v),
            Field::Artifact => {
                let current = prev.and_then(|p| p.run.artifact.as_ref());
                match (v, current) {
                    ("", None) => Ok(()),
                    ("", Some(a)) => Err(format!(
                        "this app runs artifact {}: keep it (Tab), or deploy without one with ctl",
                        a.name
                    )),
                    (v, Some(a)) if v == a.name => Ok(()),
                    (v, _) => Err(format!(
                        "{v:?} is not an uploaded slot of this app: upload with `ctl deploy --artifact FILE`"
                    )),
                }
            }
            Field::Image => validate::image(v),
            Field::Port => match v.parse::<u16>() {
                Ok(p) if p > 0 => Ok(()),
                _ => Err(format!("port {v:?}: use 1 to 65535")),
            },
            Field::Instances => match v.parse::<u32>() {
                Ok(n) if (1..=500).contains(&n) => Ok(()),
                _ => Err(format!("instances {v:?}: use 1 to 500")),
            },
            Field::Azs => list(v).iter().try_for_each(|az| validate::name("AZ", az)),
            Field::Tags => list(v).iter().try_for_each(|t| validate::tag(t)),
            Field::Cpu => validate::cpu(v).map(|_| ()),
            Field::Memory => validate::memory_mb(v).map(|_| ()),
            Field::Strategy => match v {
                "rolling" | "all" => Ok(()),
                _ => Err(format!("strategy {v:?}: rolling or all")),
            },
        };
        r.err()
    }

    /// The first field with an error.
    pub fn first_error(&self) -> Option<(usize, String)> {
        Field::ALL.iter().enumerate().find_map(|(i, f)| self.check(*f).map(|e| (i, e)))
    }

    pub fn constraints(&self) -> Option<Constraints> {
        Some(Constraints {
            azs: list(self.value(Field::Azs)),
            tags: list(self.value(Field::Tags)),
            cpu: validate::cpu(self.value(Field::Cpu)).ok()?,
            memory_mb: validate::memory_mb(self.value(Field::Memory)).ok()?,
        })
    }

    pub fn strategy(&self) -> Strategy {
        if self.value(Field::Strategy) == "all" { Strategy::All } else { Strategy::Rolling }
    }

    /// The deploy the form describes, when every field is valid.
    pub fn request(&self) -> Option<DeployRequest> {
        if self.first_error().is_some() {
            return None;
        }
        let artifact = self.previous.as_ref().and_then(|p| p.run.artifact.clone());
        Some(DeployRequest {
            app: self.value(Field::App).to_string(),
            version: self.value(Field::Version).to_string(),
            instances: self.value(Field::Instances).parse().ok()?,
            image: Some(self.value(Field::Image).to_string()),
            port: self.value(Field::Port).parse().ok(),
            constraints: self.constraints(),
            run: artifact.map(|a| RunPatch { artifact: Some(a), ..RunPatch::default() }),
            strategy: self.strategy(),
            ..DeployRequest::default()
        })
    }

    /// A deploy of the previous spec: its version, image, port, constraints, run spec
    /// (artifact included) and count.
    pub fn rollback_request(&self) -> Option<DeployRequest> {
        let p = self.previous.as_ref()?;
        Some(DeployRequest {
            app: p.name.clone(),
            version: p.version.clone(),
            instances: p.instances,
            image: Some(p.image.clone()),
            port: Some(p.port),
            constraints: Some(p.constraints.clone()),
            run: Some(RunPatch {
                cmd: p.run.cmd.clone(),
                mount: Some(p.run.mount.clone()),
                health: Some(p.run.health.clone()),
                artifact: p.run.artifact.clone(),
            }),
            strategy: Strategy::Rolling,
            ..DeployRequest::default()
        })
    }

    // -- editing ----------------------------------------------------------------------

    pub fn type_char(&mut self, fleet: &Fleet, c: char) {
        self.values[self.focus].push(c);
        self.cycle = None;
        self.edited(fleet);
    }

    pub fn backspace(&mut self, fleet: &Fleet) {
        self.values[self.focus].pop();
        self.cycle = None;
        self.edited(fleet);
    }

    pub fn clear(&mut self, fleet: &Fleet) {
        self.values[self.focus].clear();
        self.cycle = None;
        self.edited(fleet);
    }

    fn edited(&mut self, fleet: &Fleet) {
        self.error = None;
        self.plan = None;
        if self.focused() == Field::App {
            self.prefill(fleet);
        }
    }

    pub fn move_focus(&mut self, step: isize) {
        let n = Field::ALL.len() as isize;
        self.focus = (self.focus as isize + step).rem_euclid(n) as usize;
    }

    /// Tab: completes the app's name, the artifact's slot, or toggles the strategy;
    /// elsewhere moves to the next field.
    pub fn complete(&mut self, fleet: &Fleet) {
        match self.focused() {
            Field::App => {
                let typed = self.value(Field::App).to_string();
                // Tab again goes on to the next name that the originally typed text begins.
                let prefix = self.cycle.clone().unwrap_or_else(|| typed.clone());
                let names: Vec<String> =
                    fleet.apps.keys().filter(|n| n.starts_with(&prefix)).cloned().collect();
                let exact = names.iter().position(|n| *n == typed);
                match (names.len(), exact) {
                    (0, _) | (1, Some(_)) => self.move_focus(1),
                    (n, Some(at)) => self.pick_app(fleet, names[(at + 1) % n].clone()),
                    (_, None) => self.pick_app(fleet, names[0].clone()),
                }
                self.cycle = Some(prefix);
            }
            Field::Artifact => {
                let slot =
                    self.previous.as_ref().and_then(|p| p.run.artifact.as_ref()).map(|a| a.name.clone());
                match slot {
                    Some(s) if self.value(Field::Artifact) != s => {
                        self.values[Field::Artifact as usize] = s;
                        self.edited(fleet);
                    }
                    _ => self.move_focus(1),
                }
            }
            Field::Strategy => {
                let next = if self.value(Field::Strategy) == "rolling" { "all" } else { "rolling" };
                self.values[Field::Strategy as usize] = next.into();
                self.edited(fleet);
            }
            _ => self.move_focus(1),
        }
    }

    fn pick_app(&mut self, fleet: &Fleet, name: String) {
        self.values[Field::App as usize] = name;
        self.edited(fleet);
    }

    /// Enter on the form: the plan preview, or the first field in error.
    pub fn preview(&mut self, fleet: &Fleet) {
        if let Some((i, e)) = self.first_error() {
            self.focus = i;
            self.error = Some(format!("{}: {e}", Field::ALL[i].label()));
            return;
        }
        let (Some(req), Some(c)) = (self.request(), self.constraints()) else { return };
        self.plan = Some(plan(fleet, &req, &c));
        self.step = Step::Plan;
    }

    // -- progress ---------------------------------------------------------------------

    pub fn sending(&mut self, cmd: &ControlCommand, rollback: bool, now: u64) {
        self.sent.push(Sent { rollback, what: cmd.describe(), sent_at: now, operation: None, refused: None });
        self.step = Step::Progress;
        self.input.clear();
        self.error = None;
    }

    /// The controller's answer to a command; true when it was the wizard's.
    pub fn command_done(&mut self, what: &str, result: &Result<Accepted, String>) -> bool {
        let Some(s) = self.sent.last_mut() else { return false };
        if s.what != what || s.operation.is_some() || s.refused.is_some() {
            return false;
        }
        match result {
            Ok(a) => s.operation = a.operation_id.clone(),
            Err(e) => s.refused = Some(e.clone()),
        }
        true
    }

    /// The operation being followed, from the replica.
    pub fn operation<'a>(&self, fleet: &'a Fleet) -> Option<&'a Operation> {
        fleet.operations.get(self.sent.last()?.operation.as_deref()?)
    }

    /// Finished: refused, or the operation ended.
    pub fn finished(&self, fleet: &Fleet) -> Option<Result<String, String>> {
        let s = self.sent.last()?;
        if let Some(r) = &s.refused {
            return Some(Err(format!("refused: {r}")));
        }
        let op = self.operation(fleet)?;
        match op.state {
            OperationState::Running => None,
            OperationState::Succeeded => Some(Ok(op.target.clone())),
            OperationState::Failed => Some(Err(op.error.clone().unwrap_or_else(|| "failed".into()))),
        }
    }

    /// `r` at the end: a rollback is possible when there was a previous spec and the
    /// deploy (not already a rollback) has finished.
    pub fn can_roll_back(&self, fleet: &Fleet) -> bool {
        self.previous.is_some()
            && self.sent.last().is_some_and(|s| !s.rollback)
            && self.finished(fleet).is_some()
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Where the new instances go, with the real scheduler on the replica's fleet. A rolling
/// deploy of a new version places one new instance, then retires one old: the preview
/// does the same, so the resources left are those after the deploy.
pub fn plan(fleet: &Fleet, req: &DeployRequest, c: &Constraints) -> Plan {
    let mut f = fleet.clone();
    let same_version = fleet.instances_of(&req.app).all(|i| i.version == req.version);
    let mut old: Vec<String> = fleet
        .instances_of(&req.app)
        .filter(|i| i.state.occupies_host() && i.version != req.version)
        .map(|i| i.id.clone())
        .collect();
    let existing_same = fleet.instances_of(&req.app).filter(|i| i.version == req.version).count() as u32;
    let count = if same_version { req.instances.saturating_sub(existing_same) } else { req.instances };
    let rolling = req.strategy == Strategy::Rolling && !same_version;
    let mut placements = Vec::new();
    let mut no_fit = None;
    let batches: Vec<u32> = if rolling { vec![1; count as usize] } else { vec![count] };
    for n in batches {
        let r = PlacementRequest { app: &req.app, count: n, constraints: c, exclude: &[] };
        match place(&f, &r) {
            Ok(hosts) => {
                for h in hosts {
                    let id = format!("~plan-{}", placements.len());
                    f.instances.insert(id.clone(), planned(&id, &req.app, &req.version, &h, c));
                    placements.push(h);
                    if rolling && !old.is_empty() {
                        f.instances.remove(&old.remove(0));
                    }
                }
            }
            Err(e) => {
                // Counted over the whole deploy, not the one-at-a-time batch.
                let whole =
                    PlacementError { wanted: req.instances, placed: placements.len() as u32 + e.placed, ..e };
                no_fit = Some(whole.to_string());
                break;
            }
        }
    }
    if no_fit.is_none() {
        // After the deploy the old version is gone, and a scale-down drops the extras.
        for id in old {
            f.instances.remove(&id);
        }
        let mut same: Vec<String> =
            f.instances_of(&req.app).filter(|i| i.version == req.version).map(|i| i.id.clone()).collect();
        same.sort();
        for id in same.into_iter().skip(req.instances as usize) {
            f.instances.remove(&id);
        }
    }
    // When nothing fits, nothing is placed: the hosts as they are now.
    let f = if no_fit.is_some() { fleet.clone() } else { f };
    let mut new: BTreeMap<&str, u32> = BTreeMap::new();
    if no_fit.is_none() {
        for h in &placements {
            *new.entry(h.as_str()).or_default() += 1;
        }
    }
    let hosts = f
        .hosts
        .values()
        .map(|h| {
            let (cpu, mem) = f
                .instances_on(&h.id)
                .filter(|i| i.state.occupies_host())
                .fold((0.0f32, 0u64), |(c, m), i| (c + i.cpu_limit, m + i.mem_limit_mb));
            HostPlan {
                host: h.id.clone(),
                az: h.az.clone(),
                new: new.get(h.id.as_str()).copied().unwrap_or(0),
                cpu_left: h.cpu_cores as f32 - cpu,
                memory_left_mb: h.memory_total_mb.saturating_sub(mem),
                eligible: h.state == crate::protocol::HostState::Up
                    && (c.azs.is_empty() || c.azs.contains(&h.az))
                    && c.tags.iter().all(|t| h.tags.contains(t)),
            }
        })
        .collect();
    let fresh = fleet.instances_of(&req.app).next().is_none();
    let note = match (same_version, rolling) {
        (true, _) if fresh => format!("{} new instance(s), side by side", req.instances),
        (true, _) => format!("same version: scale to x{} side by side", req.instances),
        (false, true) => "rolling: one new instance, healthy, then one old retired".into(),
        (false, false) => "all: every new instance at once, the old retired when all are healthy".into(),
    };
    Plan { placements: if no_fit.is_some() { vec![] } else { placements }, hosts, no_fit, note }
}

fn planned(id: &str, app: &str, version: &str, host: &str, c: &Constraints) -> Instance {
    Instance {
        id: id.into(),
        app: app.into(),
        version: version.into(),
        index: 0,
        host: host.into(),
        ip: String::new(),
        port: 0,
        endpoint: String::new(),
        container_id: String::new(),
        state: InstanceState::Deploying,
        started_at: None,
        restarts: 0,
        cpu_pct: 0.0,
        mem_used_mb: 0,
        mem_limit_mb: c.memory_mb,
        cpu_limit: c.cpu,
    }
}

// -- the wizard's keys, as part of the app's update ---------------------------------------

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, Panel};

impl App {
    /// `d`: the wizard, for the selected app (or the selected instance's or route's).
    pub(super) fn open_wizard(&mut self) -> Vec<Effect> {
        let app = match self.panel {
            Panel::Apps => self.selected_app().map(|a| a.name.clone()),
            Panel::Instances => self.selected_instance().map(|i| i.app.clone()),
            Panel::Routes => self.selected_route().map(|r| r.app.clone()),
            _ => None,
        };
        let w = Wizard::new(&self.replica.fleet, app.as_deref());
        self.overlays.clear();
        self.overlays.push(Overlay::Wizard(Box::new(w)));
        vec![]
    }

    /// A command's answer: the wizard follows the operation its deploy started.
    pub(super) fn wizard_command_done(&mut self, what: &str, result: &Result<Accepted, String>) {
        for o in self.overlays.iter_mut() {
            if let Overlay::Wizard(w) = o
                && w.command_done(what, result)
            {
                return;
            }
        }
    }

    pub(super) fn update_wizard(&mut self, action: Action) -> Vec<Effect> {
        let fleet = &self.replica.fleet;
        let read_only = self.read_only;
        let now = self.now;
        let Some(Overlay::Wizard(w)) = self.overlays.last_mut() else { return vec![] };
        let step = w.step.clone();
        match (step, action) {
            (_, Action::Cancelled) => {
                self.overlays.pop();
            }
            (Step::Form, Action::Back | Action::Quit) => {
                self.overlays.pop();
            }
            (Step::Form, Action::Input(c)) => w.type_char(fleet, c),
            (Step::Form, Action::Backspace) => w.backspace(fleet),
            (Step::Form, Action::ClearInput) => w.clear(fleet),
            (Step::Form, Action::Complete) => w.complete(fleet),
            (Step::Form, Action::CompletePrev | Action::HistoryPrev) => w.move_focus(-1),
            (Step::Form, Action::HistoryNext) => w.move_focus(1),
            (Step::Form, Action::Submit) => w.preview(fleet),
            (Step::Plan, Action::Back | Action::Input('n')) => w.step = Step::Form,
            (Step::Plan, Action::Submit | Action::Input('y')) => {
                match w.plan.as_ref().and_then(|p| p.no_fit.clone()) {
                    Some(_) => {
                        w.error =
                            Some("nothing to confirm while nothing fits: Esc, then change the form".into())
                    }
                    None => {
                        w.step = Step::Confirm;
                        w.input.clear();
                        w.error = None;
                    }
                }
            }
            (Step::Confirm | Step::ConfirmRollback, Action::Back | Action::Quit) => {
                w.step = if w.step == Step::Confirm { Step::Plan } else { Step::Progress };
                w.input.clear();
                w.error = None;
            }
            (Step::Confirm | Step::ConfirmRollback, Action::Input(c)) if w.is_prod() => {
                w.input.push(c);
                w.error = None;
            }
            (Step::Confirm | Step::ConfirmRollback, Action::Backspace) => {
                w.input.pop();
            }
            (Step::Confirm | Step::ConfirmRollback, Action::ClearInput) => w.input.clear(),
            (Step::Confirm | Step::ConfirmRollback, Action::Input('n' | 'N')) => {
                w.step = if w.step == Step::Confirm { Step::Plan } else { Step::Progress };
            }
            (Step::Confirm | Step::ConfirmRollback, a @ (Action::Input('y' | 'Y') | Action::Submit)) => {
                let name = w.value(Field::App).to_string();
                if w.is_prod() && w.input.trim() != name {
                    if matches!(a, Action::Submit) {
                        w.error = Some(format!("type {name} exactly to confirm, or Esc"));
                    }
                    return vec![];
                }
                if !w.is_prod() && matches!(a, Action::Submit) {
                    // Enter is No in a `[y/N]` question.
                    return vec![];
                }
                if read_only {
                    self.say(Level::Warn, "read-only: deploy refused".into());
                    return vec![];
                }
                let rollback = w.step == Step::ConfirmRollback;
                let req = if rollback { w.rollback_request() } else { w.request() };
                let Some(req) = req else { return vec![] };
                let cmd = ControlCommand::Deploy(Box::new(req));
                w.sending(&cmd, rollback, now);
                let text = format!("sent: {}", cmd.describe());
                self.say(Level::Info, text);
                return vec![Effect::Send(cmd)];
            }
            (Step::Progress, Action::Input('r' | 'R')) => {
                if w.can_roll_back(fleet) {
                    w.step = Step::ConfirmRollback;
                    w.input.clear();
                    w.error = None;
                } else if w.previous.is_none() {
                    w.error = Some("nothing to roll back to: this was a new app".into());
                } else if w.finished(fleet).is_none() {
                    w.error = Some("wait for the deploy to finish, then r rolls back".into());
                }
            }
            (Step::Progress, Action::Back | Action::Quit | Action::Submit) => {
                if w.finished(fleet).is_none() {
                    self.say(Level::Info, "the deploy goes on; its steps are in Events (4)".into());
                }
                self.overlays.pop();
            }
            _ => {}
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ArtifactRef, Host, HostMetrics, HostState, RunSpec};

    /// One host with room for three instances; the app runs two of them.
    fn fleet_with_one_host() -> Fleet {
        let mut f = Fleet::default();
        let host = Host {
            id: "h1".into(),
            hostname: "h1".into(),
            ip: "10.101.1.11".into(),
            az: "az1".into(),
            tags: vec![],
            cpu_cores: 3,
            memory_total_mb: 3072,
            agent_version: "test".into(),
            last_heartbeat: 0,
            state: HostState::Up,
            metrics: HostMetrics::default(),
            warnings: vec![],
            unmanaged: vec![],
        };
        f.hosts.insert("h1".into(), host);
        let c = Constraints { azs: vec![], tags: vec![], cpu: 1.0, memory_mb: 1024 };
        for n in 0..2 {
            let mut i = planned(&format!("web-{n}"), "web", "1", "h1", &c);
            i.state = InstanceState::Running;
            f.instances.insert(i.id.clone(), i);
        }
        let app = AppSpec {
            name: "web".into(),
            version: "1".into(),
            instances: 2,
            image: "tomcat:8".into(),
            port: 8080,
            constraints: c,
            domain: "web.local".into(),
            tags: vec![],
            run: RunSpec {
                artifact: Some(ArtifactRef { name: "web-1".into(), sha256: "a".repeat(64), size: 10 }),
                ..RunSpec::default()
            },
        };
        f.apps.insert("web".into(), app);
        f
    }

    #[test]
    fn a_rolling_plan_frees_the_old_instances_as_it_goes_and_all_at_once_does_not() {
        let f = fleet_with_one_host();
        let mut w = Wizard::new(&f, Some("web"));
        w.values[Field::Version as usize] = "2".into();
        let req = w.request().expect("valid");
        let c = w.constraints().expect("valid");
        let p = plan(&f, &req, &c);
        assert_eq!(p.no_fit, None);
        assert_eq!(p.placements, vec!["h1", "h1"]);
        // After the deploy: the two new instances, the old ones gone.
        assert_eq!((p.hosts[0].new, p.hosts[0].cpu_left, p.hosts[0].memory_left_mb), (2, 1.0, 1024));

        w.values[Field::Strategy as usize] = "all".into();
        let req = w.request().expect("valid");
        let p = plan(&f, &req, &c);
        let why = p.no_fit.expect("no room for both versions at once");
        assert!(why.contains("cannot place 2 instance(s) of web (only 1 fit): not enough CPU"), "{why}");
    }

    #[test]
    fn fields_are_checked_as_typed_and_the_app_is_prefilled() {
        let f = fleet_with_one_host();
        let mut w = Wizard::new(&f, None);
        assert_eq!(w.focused(), Field::App);
        // Tab completes an existing app and fills the form from its spec.
        w.type_char(&f, 'w');
        w.complete(&f);
        assert_eq!(w.value(Field::App), "web");
        assert_eq!(w.value(Field::Image), "tomcat:8");
        assert_eq!(w.value(Field::Artifact), "web-1");
        assert_eq!(w.value(Field::Memory), "1024M");
        // The artifact is the app's current slot, or an error that says how to upload.
        w.values[Field::Artifact as usize] = "other".into();
        assert!(w.check(Field::Artifact).is_some_and(|e| e.contains("ctl deploy --artifact")));
        w.values[Field::Artifact as usize] = String::new();
        assert!(w.check(Field::Artifact).is_some_and(|e| e.contains("runs artifact web-1")));
        w.values[Field::Artifact as usize] = "web-1".into();
        assert_eq!(w.check(Field::Artifact), None);
        for (field, bad) in [
            (Field::Port, "0"),
            (Field::Instances, "501"),
            (Field::Azs, "az1,AZ 2"),
            (Field::Cpu, "-1"),
            (Field::Memory, "2T"),
            (Field::Strategy, "canary"),
        ] {
            let keep = std::mem::replace(&mut w.values[field as usize], bad.into());
            assert!(w.check(field).is_some(), "{field:?} {bad:?} should be refused");
            assert!(w.request().is_none());
            w.values[field as usize] = keep;
        }
        assert!(w.request().is_some());
    }

    #[test]
    fn the_rollback_is_the_previous_spec_whole() {
        let f = fleet_with_one_host();
        let mut w = Wizard::new(&f, Some("web"));
        w.values[Field::Version as usize] = "2".into();
        w.values[Field::Image as usize] = "tomcat:9".into();
        let back = w.rollback_request().expect("an existing app");
        let prev = &f.apps["web"];
        assert_eq!((back.version.as_str(), back.instances), ("1", 2));
        assert_eq!(back.image.as_deref(), Some("tomcat:8"));
        assert_eq!(back.constraints.as_ref(), Some(&prev.constraints));
        let run = back.run.expect("the run spec");
        assert_eq!(run.artifact, prev.run.artifact);
        assert_eq!(Wizard::new(&f, None).rollback_request(), None);
    }
}
