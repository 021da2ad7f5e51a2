//! The guided deploy `d`: a form whose every field is checked as it is typed, a plan
//! preview from the deploy planner the controller carries out, a confirmation, the
//! operation's live progress, and a one-key rollback to the previous spec.
//!
//! The artifact: a .tar.gz/.tar on the operator's machine (Tab completes the path), which
//! is uploaded to the repository before the deploy is sent, as the original flow has it;
//! the app's current slot, kept; or none (image only).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::actions::palette::common_prefix;
use crate::backend::Replica;
use crate::backend::upload::{Uploaded, check_artifact_file};
use crate::protocol::deploy_plan::{self, Mode, Target};
use crate::protocol::scheduler::Usage;
use crate::protocol::{
    Accepted, AppSpec, ArtifactRef, Constraints, DeployRequest, Fleet, Operation, OperationState, RunPatch,
    Strategy, validate,
};
use crate::protocol::{ControlCommand, UploadRequest};

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
    Env,
}

impl Field {
    pub const ALL: [Field; 12] = [
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
        Field::Env,
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
            Field::Env => "env",
        }
    }

    /// What the field takes, shown while it is empty or focused.
    pub fn hint(self) -> &'static str {
        match self {
            Field::App => "existing (Tab completes) or a new name",
            Field::Version => "e.g. 1.4.2",
            Field::Artifact => ".tar.gz/.tar to upload (Tab completes), the current slot, or empty",
            Field::Image => "e.g. tomcat:8.5",
            Field::Port => "1-65535",
            Field::Instances => validate::INSTANCES_RANGE,
            Field::Azs => "comma-separated; empty: any",
            Field::Tags => "comma-separated; every one required",
            Field::Cpu => "cores per instance, e.g. 0.5",
            Field::Memory => "per instance, e.g. 512M, 2G",
            Field::Strategy => "rolling | all (Tab toggles)",
            Field::Env => "K=V, comma or space separated; secrets: ctl secret set",
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

/// What the artifact field asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactChoice {
    /// Image only; an app that ran an artifact drops it.
    None,
    /// The app's current artifact, already in the repository.
    Keep(ArtifactRef),
    /// A file on this machine, uploaded before the deploy is sent.
    Upload(PathBuf),
}

/// The upload a deploy waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub path: PathBuf,
    pub size: u64,
    pub started: u64,
    pub finished: Option<u64>,
    pub result: Option<Result<Uploaded, String>>,
}

/// A deploy the wizard sent (or the rollback), and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The artifact's upload, when the deploy needed one; sent once it is done.
    pub upload: Option<Upload>,
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
    pub values: [String; 12],
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
    /// How many of the progress's step lines are scrolled up from the latest (0: the
    /// latest are shown, as they come).
    pub progress_up: usize,
    /// While Tab cycles through app names: what was typed before the first Tab.
    cycle: Option<String>,
    /// Opened on a production context: the deploy needs the app's name typed.
    pub production: bool,
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
            progress_up: 0,
            cycle: None,
            production: false,
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
        v[Field::Env as usize] = env_text(&app.run.env);
        self.previous = Some(app.clone());
    }

    /// Whether the deploy needs the app's name typed (`confirm::typed_name`'s rule).
    pub fn is_prod(&self) -> bool {
        let prod_app = self.previous.as_ref().is_some_and(AppSpec::is_prod);
        super::confirm::typed_name(self.production, "", &[(self.value(Field::App), prod_app)]).is_some()
    }

    /// The field's error, if its value is not valid now.
    pub fn check(&self, f: Field) -> Option<String> {
        let v = self.value(f);
        let r: Result<(), String> = match f {
            Field::App => validate::name("app", v),
            Field::Version => validate::version(v),
            Field::Artifact => self.artifact_choice().map(|_| ()),
            Field::Image => validate::image(v),
            Field::Port => match v.parse::<u16>() {
                Ok(p) if p > 0 => Ok(()),
                _ => Err(format!("port {v:?}: use 1 to 65535")),
            },
            Field::Instances => match v.parse::<u32>() {
                Ok(n) => validate::instances(n),
                Err(_) => Err(format!(
                    "instances {}: use a number from {}",
                    validate::quoted(v),
                    validate::INSTANCES_RANGE
                )),
            },
            Field::Azs => list(v).iter().try_for_each(|az| validate::name("AZ", az)),
            Field::Tags => list(v).iter().try_for_each(|t| validate::tag(t)),
            Field::Cpu => validate::cpu(v).map(|_| ()),
            Field::Memory => validate::memory_mb(v).map(|_| ()),
            Field::Strategy => match v {
                "rolling" | "all" => Ok(()),
                _ => Err(format!("strategy {v:?}: rolling or all")),
            },
            Field::Env => self.env().map(|_| ()),
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

    /// The env the form asks for: `None` while the field shows the app's env as it was
    /// prefilled (kept whole, even a value with a comma or space the field cannot hold),
    /// else the typed list, checked as the controller checks it.
    pub fn env(&self) -> Result<Option<std::collections::BTreeMap<String, String>>, String> {
        let typed = self.value(Field::Env);
        match &self.previous {
            Some(p) if env_text(&p.run.env) == typed => Ok(None),
            _ => validate::env_list(typed).map(Some),
        }
    }

    pub fn strategy(&self) -> Strategy {
        if self.value(Field::Strategy) == "all" { Strategy::All } else { Strategy::Rolling }
    }

    /// What the artifact field asks for, or why it cannot be.
    pub fn artifact_choice(&self) -> Result<ArtifactChoice, String> {
        let v = self.value(Field::Artifact);
        let current = self.previous.as_ref().and_then(|p| p.run.artifact.as_ref());
        if v.is_empty() {
            return Ok(ArtifactChoice::None);
        }
        if let Some(a) = current.filter(|a| a.name == v) {
            return Ok(ArtifactChoice::Keep(a.clone()));
        }
        let path = expand_home(v);
        let meta = std::fs::metadata(&path).map_err(|e| match current {
            Some(a) => format!("{v}: {e} (a file to upload, or the current slot {})", a.name),
            None => format!("{v}: {e} (a .tar.gz or .tar to upload, or empty)"),
        })?;
        check_artifact_file(&path, &meta)?;
        Ok(ArtifactChoice::Upload(path))
    }

    /// The deploy the form describes, when every field is valid. An artifact still to be
    /// uploaded is not in it yet: `request_with` takes the upload's ref.
    pub fn request(&self) -> Option<DeployRequest> {
        match self.artifact_choice().ok()? {
            ArtifactChoice::Keep(a) => self.request_with(Some(a)),
            _ => self.request_with(None),
        }
    }

    /// The deploy with this artifact. An existing app's run spec goes whole (`replace`), so
    /// an artifact left out is dropped, not kept by the controller.
    pub fn request_with(&self, artifact: Option<ArtifactRef>) -> Option<DeployRequest> {
        if self.first_error().is_some() {
            return None;
        }
        let env = self.env().ok()?;
        let run = match &self.previous {
            Some(p) => {
                let kept = whole(&p.run);
                Some(RunPatch { artifact, env: env.or(kept.env.clone()), ..kept })
            }
            None if artifact.is_none() && env.as_ref().is_none_or(|e| e.is_empty()) => None,
            None => Some(RunPatch { artifact, env, ..RunPatch::default() }),
        };
        Some(DeployRequest {
            app: self.value(Field::App).to_string(),
            version: self.value(Field::Version).to_string(),
            instances: self.value(Field::Instances).parse().ok()?,
            image: Some(self.value(Field::Image).to_string()),
            port: self.value(Field::Port).parse().ok(),
            constraints: self.constraints(),
            run,
            strategy: self.strategy(),
            ..DeployRequest::default()
        })
    }

    /// A deploy of the previous spec: its version, image (pinned to the digest it ran,
    /// for one from a registry: the tag may have moved since), port, constraints, run
    /// spec (artifact included, or none if it had none) and count.
    pub fn rollback_request(&self) -> Option<DeployRequest> {
        let p = self.previous.as_ref()?;
        Some(DeployRequest {
            app: p.name.clone(),
            version: p.version.clone(),
            instances: p.instances,
            image: Some(p.pinned_image()),
            port: Some(p.port),
            constraints: Some(p.constraints.clone()),
            run: Some(whole(&p.run)),
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
                    Some(s) if self.value(Field::Artifact).is_empty() => {
                        self.values[Field::Artifact as usize] = s;
                        self.edited(fleet);
                    }
                    Some(s) if self.value(Field::Artifact) == s => self.move_focus(1),
                    _ => self.complete_path(fleet),
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

    /// Tab on a path: the longest common start of the matching names, then, Tab again,
    /// each match in turn. Only directories and tarballs match.
    fn complete_path(&mut self, fleet: &Fleet) {
        let typed = self.values[Field::Artifact as usize].clone();
        let prefix = self.cycle.clone().unwrap_or_else(|| typed.clone());
        let names = path_candidates(&prefix);
        let common = common_prefix(&names);
        let next = match names.iter().position(|n| *n == typed) {
            _ if names.is_empty() => None,
            Some(_) if names.len() == 1 => None,
            Some(at) => Some(names[(at + 1) % names.len()].clone()),
            None if common.len() > typed.len() => Some(common),
            None => names.first().cloned(),
        };
        match next {
            Some(value) => {
                let keep_cycling = names.len() > 1 && value != common_prefix(&names);
                self.values[Field::Artifact as usize] = value;
                self.edited(fleet);
                self.cycle = keep_cycling.then_some(prefix);
            }
            None => self.move_focus(1),
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
        self.sent.push(Sent {
            upload: None,
            rollback,
            what: cmd.describe(),
            sent_at: now,
            operation: None,
            refused: None,
        });
        self.step = Step::Progress;
        self.progress_up = 0;
        self.input.clear();
        self.error = None;
    }

    /// The progress's step lines, which scroll: a heading for each instance (and the
    /// artifact's steps), then its steps.
    pub fn progress_lines(&self, replica: &Replica) -> usize {
        let Some(op) = self.operation(&replica.fleet) else { return 0 };
        let steps = crate::app::facts::operation_steps(replica, op).unwrap_or_default();
        let groups: std::collections::BTreeSet<Option<&str>> =
            steps.iter().map(|s| s.instance.as_deref()).collect();
        steps.len() + groups.len()
    }

    /// Scrolls the progress by `by` lines (up is positive), within what there is to see
    /// with `rows` lines on screen.
    pub fn scroll_progress(&mut self, replica: &Replica, by: i64, rows: usize) {
        let most = self.progress_lines(replica).saturating_sub(rows.max(1));
        self.progress_up = (self.progress_up as i64).saturating_add(by).clamp(0, most as i64) as usize;
    }

    /// The deploy waits for its artifact's upload; `uploaded` sends it.
    pub fn uploading(&mut self, cmd: &ControlCommand, path: PathBuf, now: u64) {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        self.sending(cmd, false, now);
        if let Some(s) = self.sent.last_mut() {
            s.upload = Some(Upload { path, size, started: now, finished: None, result: None });
        }
    }

    /// The upload this wizard waits for ended: the deploy to send now, with the uploaded
    /// artifact, or none when the upload failed (or was not this wizard's).
    pub fn uploaded(
        &mut self,
        path: &Path,
        result: &Result<Uploaded, String>,
        now: u64,
    ) -> Option<ControlCommand> {
        let s = self.sent.last_mut()?;
        let up = s.upload.as_mut().filter(|u| u.path == path && u.result.is_none())?;
        up.result = Some(result.clone());
        up.finished = Some(now);
        let artifact = result.as_ref().ok()?.artifact.clone();
        self.request_with(Some(artifact)).map(|r| ControlCommand::Deploy(Box::new(r)))
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
        if let Some(Err(e)) = s.upload.as_ref().and_then(|u| u.result.as_ref()) {
            return Some(Err(format!("upload failed: {e}")));
        }
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

/// The run spec whole, to replace the app's: a rollback or a deploy from the form.
fn whole(run: &crate::protocol::RunSpec) -> RunPatch {
    RunPatch {
        replace: true,
        cmd: run.cmd.clone(),
        mount: Some(run.mount.clone()),
        health: Some(run.health.clone()),
        artifact: run.artifact.clone(),
        env: Some(run.env.clone()),
        secrets: Some(run.secrets.clone()),
    }
}

/// An env as the form's field shows it: `K=V, K=V`.
fn env_text(env: &std::collections::BTreeMap<String, String>) -> String {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// `~/x` is `$HOME/x`, as a shell would have it.
fn expand_home(v: &str) -> PathBuf {
    match (v.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(v),
    }
}

/// What a path being typed can go on to, written as typed (`~/` kept): directories (with
/// a trailing `/`) and tarballs whose name starts with the last part. Hidden entries only
/// when the part starts with a dot.
fn path_candidates(typed: &str) -> Vec<String> {
    let (dir_typed, part) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let dir = if dir_typed.is_empty() { PathBuf::from(".") } else { expand_home(dir_typed) };
    let Ok(entries) = std::fs::read_dir(&dir) else { return vec![] };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with(part) || (name.starts_with('.') && !part.starts_with('.')) {
                return None;
            }
            let is_dir = std::fs::metadata(e.path()).map(|m| m.is_dir()).unwrap_or(false);
            let tarball = [".tar.gz", ".tgz", ".tar"].iter().any(|x| name.ends_with(x));
            match (is_dir, tarball) {
                (true, _) => Some(format!("{dir_typed}{name}/")),
                (false, true) => Some(format!("{dir_typed}{name}")),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The preview of the deploy: the planner the controller carries out
/// (`protocol::deploy_plan`), on the replica's fleet, shown per host.
pub fn plan(fleet: &Fleet, req: &DeployRequest, c: &Constraints) -> Plan {
    let target = Target {
        app: &req.app,
        version: &req.version,
        instances: req.instances,
        constraints: c,
        strategy: req.strategy,
    };
    let now = Usage::of(fleet);
    let planned = deploy_plan::plan(fleet, &now, &target);
    // When nothing fits, nothing is placed: the hosts as they are now.
    let (usage, placements) = match &planned.no_fit {
        Some(_) => (&now, Vec::new()),
        None => (&planned.after, planned.placements.clone()),
    };
    let mut new: BTreeMap<&str, u32> = BTreeMap::new();
    for h in &placements {
        *new.entry(h.as_str()).or_default() += 1;
    }
    let hosts = fleet
        .hosts
        .values()
        .map(|h| {
            let (cpu, mem) = usage.taken(&h.info.id);
            HostPlan {
                host: h.info.id.clone(),
                az: h.info.az.clone(),
                new: new.get(h.info.id.as_str()).copied().unwrap_or(0),
                cpu_left: (f64::from(h.info.cpu_cores) - cpu) as f32,
                memory_left_mb: h.info.memory_total_mb.saturating_sub(mem),
                eligible: h.state == crate::protocol::HostState::Up
                    && (c.azs.is_empty() || c.azs.contains(&h.info.az))
                    && c.tags.iter().all(|t| h.info.tags.contains(t)),
            }
        })
        .collect();
    let fresh = fleet.instances_of(&req.app).next().is_none();
    let note = match planned.mode {
        Mode::Scale if fresh => format!("{} new instance(s), side by side", req.instances),
        Mode::Scale => format!("same version: scale to x{} side by side", req.instances),
        Mode::Rolling => "rolling: one new instance, healthy, then one old retired".into(),
        Mode::All => "all: every new instance at once, the old retired when all are healthy".into(),
    };
    Plan { placements, hosts, no_fit: planned.no_fit.map(|e| e.to_string()), note }
}

// -- the wizard's keys, as part of the app's update ---------------------------------------

use super::{App, Level, Overlay};
use crate::actions::{Action, Effect, Panel};

/// The most lines the progress shows around its steps, beyond the table's rows: its
/// heading, an upload's two lines, what is hidden below, the end, a rollback offer. The
/// keys scroll within the steps less these, so the first step is always in reach.
const PROGRESS_AROUND: usize = 6;

impl App {
    /// `d`: the wizard, for the selected app (or the selected instance's or route's). A
    /// deploy left running with Esc comes back first, with its progress.
    pub(super) fn open_wizard(&mut self) -> Vec<Effect> {
        let app = match self.panel {
            Panel::Apps => self.selected_app().map(|a| a.name.clone()),
            Panel::Instances => self.selected_instance().map(|i| i.app.clone()),
            Panel::Routes => self.selected_route().map(|r| r.app.clone()),
            _ => None,
        };
        self.open_wizard_for(app.as_deref(), None, None)
    }

    /// The wizard prefilled for `app` (`:deploy APP [VERSION] [xN]` and `d`), or the
    /// parked one, which always wins: there is one wizard deploy at a time on screen.
    pub(super) fn open_wizard_for(
        &mut self,
        app: Option<&str>,
        version: Option<String>,
        instances: Option<u32>,
    ) -> Vec<Effect> {
        let w = match self.parked_wizard.take() {
            Some(parked) => {
                if let Some(a) = app.filter(|a| parked.value(Field::App) != *a) {
                    let running = parked.value(Field::App).to_string();
                    self.say(
                        Level::Info,
                        format!("the deploy of {running} first: Esc, then d again for {a}"),
                    );
                }
                parked
            }
            None => {
                let mut w = Wizard::new(&self.replica.fleet, app);
                w.production = self.production;
                if let Some(v) = version {
                    w.values[Field::Version as usize] = v;
                }
                if let Some(n) = instances {
                    w.values[Field::Instances as usize] = n.to_string();
                }
                Box::new(w)
            }
        };
        self.overlays.clear();
        self.overlays.push(Overlay::Wizard(w));
        vec![]
    }

    /// A command's answer: the wizard follows the operation its deploy started, on
    /// screen or parked.
    pub(super) fn wizard_command_done(&mut self, what: &str, result: &Result<Accepted, String>) {
        let parked = self.parked_wizard.iter_mut();
        let shown = self.overlays.iter_mut().filter_map(|o| match o {
            Overlay::Wizard(w) => Some(w),
            _ => None,
        });
        for w in shown.chain(parked) {
            if w.command_done(what, result) {
                return;
            }
        }
    }

    /// An upload ended: the wizard waiting for it sends its deploy now, or shows why not.
    pub(super) fn wizard_uploaded(&mut self, path: &Path, result: &Result<Uploaded, String>) -> Vec<Effect> {
        let now = self.now;
        let parked = self.parked_wizard.iter_mut();
        let shown = self.overlays.iter_mut().filter_map(|o| match o {
            Overlay::Wizard(w) => Some(w),
            _ => None,
        });
        let mut deploy = None;
        for w in shown.chain(parked) {
            if let Some(cmd) = w.uploaded(path, result, now) {
                deploy = Some(cmd);
                break;
            }
        }
        match result {
            Ok(u) if u.already_there => {
                self.say(Level::Info, format!("{} already in the repository", u.artifact.name))
            }
            Ok(u) => {
                self.say(Level::Info, format!("uploaded {} ({} bytes)", u.artifact.name, u.artifact.size))
            }
            Err(e) => self.say(Level::Error, format!("upload of {} failed: {e}", path.display())),
        }
        let Some(cmd) = deploy else { return vec![] };
        match self.outgoing("deploy", vec![Effect::Send(cmd.clone())]) {
            Ok(effects) => effects,
            Err(why) => {
                // Read-only came on during the upload: the wizard says the deploy was refused.
                self.wizard_command_done(&cmd.describe(), &Err(why));
                vec![]
            }
        }
    }

    pub(super) fn update_wizard(&mut self, action: Action) -> Vec<Effect> {
        let fleet = &self.replica.fleet;
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
                return self.wizard_confirmed(a);
            }
            (Step::Progress, action) => return self.wizard_progress_key(action),
            _ => {}
        }
        vec![]
    }

    /// A key on the deploy's progress: scroll its steps, roll back, or close (a deploy
    /// still running is parked, and `d` shows it again).
    fn wizard_progress_key(&mut self, action: Action) -> Vec<Effect> {
        let replica = &self.replica;
        let fleet = &self.replica.fleet;
        let page = self.page_rows;
        let Some(Overlay::Wizard(w)) = self.overlays.last_mut() else { return vec![] };
        match (Step::Progress, action) {
            // The rows the steps get on screen: the table's rows less the progress's own
            // lines around them (the view clamps exactly; this keeps the keys in range).
            (Step::Progress, Action::HistoryPrev | Action::Input('k')) => {
                w.scroll_progress(replica, 1, page.saturating_sub(PROGRESS_AROUND))
            }
            (Step::Progress, Action::HistoryNext | Action::Input('j')) => {
                w.scroll_progress(replica, -1, page.saturating_sub(PROGRESS_AROUND))
            }
            (Step::Progress, Action::Input('g')) => {
                w.scroll_progress(replica, i64::MAX / 2, page.saturating_sub(PROGRESS_AROUND))
            }
            (Step::Progress, Action::Input('G')) => w.progress_up = 0,
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
                let running = w.finished(fleet).is_none();
                if let (true, Some(Overlay::Wizard(w))) = (running, self.overlays.pop()) {
                    // Parked, not dropped: `d` brings the progress back, with its rollback.
                    self.parked_wizard = Some(w);
                    self.say(Level::Info, "the deploy goes on: d shows its progress again".into());
                }
            }
            _ => {}
        }
        vec![]
    }

    /// Yes to the deploy (or the rollback): for prod, once the app's name is typed; the
    /// artifact goes into the repository first, then the deploy is sent.
    fn wizard_confirmed(&mut self, a: Action) -> Vec<Effect> {
        let now = self.now;
        let Some(Overlay::Wizard(w)) = self.overlays.last_mut() else { return vec![] };
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
        let rollback = w.step == Step::ConfirmRollback;
        let req = if rollback { w.rollback_request() } else { w.request() };
        let Some(req) = req else { return vec![] };
        let cmd = ControlCommand::Deploy(Box::new(req));
        // The original order: the artifact into the repository, then the deploy.
        let upload = match (rollback, w.artifact_choice()) {
            (false, Ok(ArtifactChoice::Upload(path))) => Some(UploadRequest {
                app: w.value(Field::App).to_string(),
                version: w.value(Field::Version).to_string(),
                path,
            }),
            _ => None,
        };
        let effect = match &upload {
            Some(u) => Effect::Upload(u.clone()),
            None => Effect::Send(cmd.clone()),
        };
        let Ok(effects) = self.outgoing("deploy", vec![effect]) else { return vec![] };
        let Some(Overlay::Wizard(w)) = self.overlays.last_mut() else { return vec![] };
        let text = match upload {
            Some(u) => {
                w.uploading(&cmd, u.path.clone(), now);
                format!("uploading {}", u.path.display())
            }
            None => {
                w.sending(&cmd, rollback, now);
                format!("sent: {}", cmd.describe())
            }
        };
        self.say(Level::Info, text);
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ArtifactRef, Host, HostInfo, HostMetrics, HostState, InstanceState, RunSpec};

    /// One host with room for three instances; the app runs two of them.
    fn fleet_with_one_host() -> Fleet {
        let mut f = Fleet::default();
        let host = Host {
            info: HostInfo {
                id: "h1".into(),
                hostname: "h1".into(),
                ip: "10.101.1.11".into(),
                az: "az1".into(),
                tags: vec![],
                cpu_cores: 3,
                memory_total_mb: 3072,
                agent_version: "test".into(),
                warnings: vec![],
            },
            last_heartbeat: 0,
            state: HostState::Up,
            metrics: HostMetrics::default(),
            unmanaged: vec![],
            schedule: Default::default(),
        };
        f.hosts.insert("h1".into(), host);
        let c = Constraints { azs: vec![], tags: vec![], cpu: 1.0, memory_mb: 1024 };
        for n in 0..2 {
            let target = Target {
                app: "web",
                version: "1",
                instances: 2,
                constraints: &c,
                strategy: Strategy::Rolling,
            };
            let mut i = target.new_instance(format!("web-{n}"), n, "h1", 8080);
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
            shortfall: None,
            digest: None,
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

    /// The env field shows the app's env; left as prefilled the env is kept whole (a value
    /// with a comma too), typed it is the whole env, checked with the controller's rule.
    #[test]
    fn the_env_field_keeps_the_prefilled_env_and_checks_a_typed_one() {
        let mut f = fleet_with_one_host();
        if let Some(app) = f.apps.get_mut("web") {
            app.run.env =
                [("A".to_string(), "1".to_string()), ("LIST".to_string(), "x,y".to_string())].into();
        }
        let mut w = Wizard::new(&f, Some("web"));
        assert_eq!(w.value(Field::Env), "A=1, LIST=x,y");
        assert_eq!(w.check(Field::Env), None);
        let req = w.request().expect("valid");
        assert_eq!(req.run.and_then(|r| r.env).map(|e| e["LIST"].clone()), Some("x,y".to_string()));
        w.values[Field::Env as usize] = "A=2 B=3".into();
        let env = w.request().and_then(|r| r.run).and_then(|r| r.env).expect("typed env");
        assert_eq!(env.len(), 2);
        assert_eq!(env["A"], "2");
        w.values[Field::Env as usize] = "A=1, 9X=2".into();
        let err = w.check(Field::Env).expect("a bad name");
        assert!(err.contains("\"9X\""), "{err}");
        assert!(w.request().is_none());
        w.values[Field::Env as usize] = String::new();
        let cleared = w.request().and_then(|r| r.run).and_then(|r| r.env).expect("an empty env");
        assert!(cleared.is_empty());
        let mut new = Wizard::new(&f, None);
        new.values[Field::Env as usize] = "PORT=80".into();
        assert_eq!(new.env(), Ok(Some([("PORT".to_string(), "80".to_string())].into())));
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
        // The artifact is the app's current slot, a file to upload, or none.
        w.values[Field::Artifact as usize] = "other".into();
        let err = w.check(Field::Artifact).expect("neither a file nor the slot");
        assert!(err.contains("other:") && err.contains("current slot web-1"), "{err}");
        w.values[Field::Artifact as usize] = String::new();
        assert_eq!(w.artifact_choice(), Ok(ArtifactChoice::None));
        w.values[Field::Artifact as usize] = "web-1".into();
        assert_eq!(w.check(Field::Artifact), None);
        assert!(matches!(w.artifact_choice(), Ok(ArtifactChoice::Keep(a)) if a.name == "web-1"));
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
        assert!(run.replace, "the previous run spec goes whole");
        assert_eq!(Wizard::new(&f, None).rollback_request(), None);

        // A spec without an artifact rolls back to none: the patch clears it.
        let mut f = f;
        if let Some(app) = f.apps.get_mut("web") {
            app.run.artifact = None;
        }
        let w = Wizard::new(&f, Some("web"));
        let run = w.rollback_request().and_then(|r| r.run).expect("the run spec");
        assert!(run.replace && run.artifact.is_none());
        assert_eq!(f.apps["web"].run.patched(&run), f.apps["web"].run);

        // A registry image goes back to the digest it ran, not to wherever its tag is now.
        let digest = format!("sha256:{}", "0f".repeat(32));
        if let Some(app) = f.apps.get_mut("web") {
            app.image = "registry.test:5000/shop/web:1".into();
            app.digest = Some(digest.clone());
        }
        let back = Wizard::new(&f, Some("web")).rollback_request().expect("an existing app");
        assert_eq!(back.image, Some(format!("registry.test:5000/shop/web@{digest}")));
    }

    #[test]
    fn an_emptied_artifact_field_drops_the_artifact() {
        let f = fleet_with_one_host();
        let mut w = Wizard::new(&f, Some("web"));
        w.values[Field::Artifact as usize] = String::new();
        let run = w.request().and_then(|r| r.run).expect("the whole run spec");
        let current = &f.apps["web"].run;
        assert!(current.artifact.is_some());
        assert_eq!(current.patched(&run).artifact, None);
    }

    /// A scratch directory with two tarballs, a directory and a file that is not one.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("qd-wizard-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("builds")).expect("scratch dir");
        std::fs::write(dir.join("web-2.tar.gz"), b"\x1f\x8b not really").expect("file");
        std::fs::write(dir.join("web-3.tgz"), b"x").expect("file");
        std::fs::write(dir.join("notes.txt"), b"x").expect("file");
        std::fs::write(dir.join("empty.tar"), b"").expect("file");
        dir
    }

    #[test]
    fn tab_completes_artifact_paths_and_the_path_is_checked_as_typed() {
        let f = fleet_with_one_host();
        let dir = scratch("tab");
        let base = format!("{}/", dir.display());
        let mut w = Wizard::new(&f, None);
        w.focus = Field::Artifact as usize;
        w.values[Field::Artifact as usize] = format!("{base}w");
        // Two tarballs start with "w": the common start, then each in turn.
        w.complete(&f);
        assert_eq!(w.value(Field::Artifact), format!("{base}web-"));
        w.complete(&f);
        assert_eq!(w.value(Field::Artifact), format!("{base}web-2.tar.gz"));
        w.complete(&f);
        assert_eq!(w.value(Field::Artifact), format!("{base}web-3.tgz"));
        w.complete(&f);
        assert_eq!(w.value(Field::Artifact), format!("{base}web-2.tar.gz"));
        assert!(
            matches!(w.artifact_choice(), Ok(ArtifactChoice::Upload(p)) if p == dir.join("web-2.tar.gz"))
        );
        // Directories complete with their slash; other files are not offered.
        w.values[Field::Artifact as usize] = format!("{base}b");
        w.cycle = None;
        w.complete(&f);
        assert_eq!(w.value(Field::Artifact), format!("{base}builds/"));
        assert!(path_candidates(&format!("{base}n")).is_empty());
        // Each wrong path says what is wrong with it.
        for (typed, says) in [
            ("builds", "is a directory"),
            ("notes.txt", "an artifact is a .tar.gz, .tgz or .tar"),
            ("empty.tar", "is empty"),
            ("missing.tar.gz", "No such file"),
        ] {
            w.values[Field::Artifact as usize] = format!("{base}{typed}");
            let err = w.check(Field::Artifact).unwrap_or_default();
            assert!(err.contains(says), "{typed}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_upload_sends_the_deploy_with_its_artifact_and_a_failed_one_ends_the_wizard() {
        let f = fleet_with_one_host();
        let dir = scratch("upload");
        let file = dir.join("web-2.tar.gz");
        for ok in [true, false] {
            let mut w = Wizard::new(&f, Some("web"));
            w.values[Field::Version as usize] = "2".into();
            w.values[Field::Artifact as usize] = file.display().to_string();
            let cmd = ControlCommand::Deploy(Box::new(w.request().expect("valid")));
            w.uploading(&cmd, file.clone(), 1_000);
            assert_eq!(w.finished(&f), None, "waiting for the upload");
            let art = ArtifactRef { name: "web-2".into(), sha256: "b".repeat(64), size: 19 };
            let result = match ok {
                true => Ok(Uploaded { artifact: art.clone(), already_there: false }),
                false => Err("repository: no space".to_string()),
            };
            // Another file's upload is not this wizard's.
            assert_eq!(w.uploaded(&dir.join("web-3.tgz"), &result, 1_500), None);
            let sent = w.uploaded(&file, &result, 2_000);
            match (ok, sent) {
                (true, Some(ControlCommand::Deploy(req))) => {
                    assert_eq!(req.run.and_then(|r| r.artifact), Some(art));
                    assert_eq!(w.finished(&f), None, "now the deploy runs");
                }
                (false, None) => {
                    let why = w.finished(&f).and_then(Result::err).unwrap_or_default();
                    assert!(why.contains("upload failed: repository: no space"), "{why}");
                }
                (ok, other) => panic!("upload ok={ok} sent {other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
#[path = "wizard_tests.rs"]
mod headless_tests;
