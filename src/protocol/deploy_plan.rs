//! The deploy planner: for a fleet and a deploy, the steps the controller takes, in order
//! (which new instances start, which old instance each one replaces, what is retired), and
//! where `scheduler` places each new instance as those steps run. Pure. The controller's
//! deploy carries out `steps`; the cockpit's deploy preview shows `plan`, so the preview
//! promises what the controller does.
//!
//! The order, by mode:
//! - **scale** (no instance of another version): the lowest free indexes start side by
//!   side; in a scale down, the instances past the count (the highest indexes) go;
//! - **all**: every new instance starts at once; when all are healthy every earlier
//!   instance goes (the old version by index, then earlier copies of this version);
//! - **rolling**: one new instance, healthy, then the old instance with the lowest index;
//!   and so on; old instances left over (a scale down) and earlier copies of this version
//!   go at the end.
//!
//! Instances are taken in index order, ties by id: never in id order alone, since
//! `web-10-…` sorts before `web-2-…`.

use crate::protocol::scheduler::{PlacementError, PlacementRequest, Usage, place_with};
use crate::protocol::{App, Constraints, Fleet, Instance, InstanceState, Strategy};

/// What is deployed: the app's desired spec as far as placement goes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub app: &'a str,
    pub version: &'a str,
    pub instances: u32,
    pub constraints: &'a Constraints,
    pub strategy: Strategy,
}

impl<'a> Target<'a> {
    /// The deploy of `app`'s desired spec.
    pub fn of(app: &'a App, strategy: Strategy) -> Target<'a> {
        Target {
            app: &app.name,
            version: &app.version,
            instances: app.instances,
            constraints: &app.constraints,
            strategy,
        }
    }

    /// A new instance as placed, before any agent has it: what it reserves on its host is
    /// the app's constraints. The controller records this; the plan counts it.
    pub fn new_instance(&self, id: String, index: u32, host: &str, port: u16) -> Instance {
        Instance {
            id,
            app: self.app.to_string(),
            version: self.version.to_string(),
            index,
            host: host.to_string(),
            ip: String::new(),
            port,
            endpoint: String::new(),
            container_id: String::new(),
            state: InstanceState::New,
            started_at: None,
            restarts: 0,
            cpu_pct: 0.0,
            mem_used_mb: 0,
            mem_limit_mb: self.constraints.memory_mb,
            cpu_limit: self.constraints.cpu,
            last_exit: None,
        }
    }
}

/// How the new instances replace what runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every instance already runs this version: start the missing, retire the extra.
    Scale,
    /// A new version, every new instance at once; the old retired when all are healthy.
    All,
    /// A new version, one new instance at a time, each followed by one old retired.
    Rolling,
}

/// One step of a deploy.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Place a new instance with this index, start it and wait until it is healthy.
    Start { index: u32 },
    /// Take an instance out: routes, container, record.
    Retire {
        instance: Instance,
        /// The index of the new instance it makes room for (a rolling deploy's pairs).
        replaced_by: Option<u32>,
    },
}

/// The steps of a deploy and their placement on the fleet as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployPlan {
    pub mode: Mode,
    pub steps: Vec<Step>,
    /// The host of each `Start`, in step order, as far as they fit.
    pub placements: Vec<String>,
    /// The first start that does not fit, counted over the whole deploy.
    pub no_fit: Option<PlacementError>,
    /// What the instances take of each host once every step is done (meaningful when
    /// everything fits).
    pub after: Usage,
}

impl DeployPlan {
    /// How many new instances the deploy starts.
    pub fn starts(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s, Step::Start { .. })).count()
    }
}

/// The steps, in the order the controller takes them.
pub fn steps(fleet: &Fleet, target: &Target<'_>) -> (Mode, Vec<Step>) {
    let (mut old, mut current): (Vec<&Instance>, Vec<&Instance>) =
        fleet.instances_of(target.app).partition(|i| i.version != target.version);
    old.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
    current.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
    let desired = target.instances as usize;
    let retire = |i: &Instance, replaced_by| Step::Retire { instance: i.clone(), replaced_by };
    let start = |index| Step::Start { index };

    if old.is_empty() {
        let used: Vec<u32> = current.iter().map(|i| i.index).collect();
        let missing = free_indexes(&used, desired.saturating_sub(current.len()));
        let mut steps: Vec<Step> = missing.into_iter().map(start).collect();
        steps.extend(current.iter().skip(desired).map(|i| retire(i, None)));
        return (Mode::Scale, steps);
    }
    if target.strategy == Strategy::All {
        let mut steps: Vec<Step> = free_indexes(&[], desired).into_iter().map(start).collect();
        steps.extend(old.iter().chain(current.iter()).map(|i| retire(i, None)));
        return (Mode::All, steps);
    }
    let mut steps = Vec::with_capacity(desired * 2 + old.len() + current.len());
    let mut old = old.into_iter();
    for index in free_indexes(&[], desired) {
        steps.push(start(index));
        if let Some(prev) = old.next() {
            steps.push(retire(prev, Some(index)));
        }
    }
    steps.extend(old.chain(current).map(|i| retire(i, None)));
    (Mode::Rolling, steps)
}

/// The steps, and where each new instance goes as they run: `usage` is what the fleet's
/// instances take now (`Usage::of`, or the controller's own).
pub fn plan(fleet: &Fleet, usage: &Usage, target: &Target<'_>) -> DeployPlan {
    let (mode, steps) = steps(fleet, target);
    let wanted = steps.iter().filter(|s| matches!(s, Step::Start { .. })).count() as u32;
    let mut after = usage.clone();
    let mut placements = Vec::new();
    let mut no_fit = None;
    for step in &steps {
        match step {
            Step::Start { index } => {
                let req =
                    PlacementRequest { app: target.app, count: 1, constraints: target.constraints, exclude: &[] };
                match place_with(fleet, &req, &after) {
                    Ok(hosts) => {
                        let host = hosts.into_iter().next().unwrap_or_default();
                        after.add(&target.new_instance(String::new(), *index, &host, 0));
                        placements.push(host);
                    }
                    Err(e) => {
                        no_fit = Some(PlacementError { wanted, placed: placements.len() as u32, ..e });
                        break;
                    }
                }
            }
            Step::Retire { instance, .. } => after.remove(instance),
        }
    }
    DeployPlan { mode, steps, placements, no_fit, after }
}

/// The `n` lowest indexes not in `used`.
fn free_indexes(used: &[u32], n: usize) -> Vec<u32> {
    (0u32..).filter(|i| !used.contains(i)).take(n).collect()
}
