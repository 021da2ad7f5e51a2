//! The fleet's state at one revision, and how an event moves it to the next.
//!
//! The controller's state and every replica are the same type, so a replica that applies
//! the controller's events in order ends up equal to the controller's snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::{Change, Event};
use super::model::{App, Host, Instance, Operation, OperationEnded, Route, RouteKey, StepDelta};

/// The snapshot body and the state the controller keeps, keyed for stable ordering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    pub revision: u64,
    #[serde(with = "as_list::hosts")]
    pub hosts: BTreeMap<String, Host>,
    #[serde(with = "as_list::apps")]
    pub apps: BTreeMap<String, App>,
    #[serde(with = "as_list::instances")]
    pub instances: BTreeMap<String, Instance>,
    #[serde(with = "as_list::routes")]
    pub routes: BTreeMap<RouteKey, Route>,
    #[serde(with = "as_list::operations")]
    pub operations: BTreeMap<String, Operation>,
}

/// An event arrived whose revision is not the next one: the replica must take a fresh
/// snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("revision gap: at {have}, received {got}")]
pub struct Gap {
    pub have: u64,
    pub got: u64,
}

/// How many finished operations a fleet keeps; running ones are always kept. The
/// controller removes the oldest beyond it with `Change::OperationRemoved`
/// (`Fleet::operations_beyond_bound`), so the stored state forgets them too.
pub const FINISHED_OPERATIONS_KEPT: usize = 200;

/// A change that could not be applied. The event is still applied (its other changes and
/// its revision): a replica must never stop following over one bad change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    #[error("operation {0} is not known")]
    UnknownOperation(String),
    #[error("operation {0} has already ended")]
    OperationEnded(String),
    #[error("step {index} of operation {op}, which has {len} steps: a step replaces one or comes next")]
    StepOutOfOrder { op: String, index: u32, len: usize },
}

impl Fleet {
    /// Applies an event at `revision + 1`. Older events are ignored (already included);
    /// newer ones are a gap and change nothing.
    pub fn apply(&mut self, event: &Event) -> Result<bool, Gap> {
        if event.rev <= self.revision {
            return Ok(false);
        }
        if event.rev != self.revision + 1 {
            return Err(Gap { have: self.revision, got: event.rev });
        }
        for change in &event.changes {
            if let Err(refused) = self.try_apply_change(change) {
                log::warn!("event rev {}: change not applied: {refused}", event.rev);
            }
        }
        self.revision = event.rev;
        Ok(true)
    }

    /// Applies one change; a change that cannot apply is logged and changes nothing.
    pub fn apply_change(&mut self, change: &Change) {
        if let Err(refused) = self.try_apply_change(change) {
            log::warn!("change not applied: {refused}");
        }
    }

    /// Applies one change, or says why it cannot: the one place where every change's rule
    /// lives, for the controller, its stored state and every replica.
    pub fn try_apply_change(&mut self, change: &Change) -> Result<(), ChangeRefused> {
        match change {
            Change::Host(h) => {
                self.hosts.insert(h.id.clone(), h.clone());
            }
            Change::App(a) => {
                self.apps.insert(a.name.clone(), a.clone());
            }
            Change::AppRemoved { name } => {
                self.apps.remove(name);
            }
            // In place when known: most events move an existing instance on.
            Change::Instance(i) => match self.instances.get_mut(&i.id) {
                Some(known) => known.clone_from(i),
                None => {
                    self.instances.insert(i.id.clone(), i.clone());
                }
            },
            Change::InstanceRemoved { id } => {
                self.instances.remove(id);
            }
            Change::Route(r) => {
                self.routes.insert(r.key(), r.clone());
            }
            Change::RouteRemoved { app, backend } => {
                self.routes.remove(&(app.clone(), backend.clone()));
            }
            Change::Operation(op) => {
                self.operations.insert(op.id.clone(), op.clone());
            }
            Change::OperationStep(delta) => self.apply_step(delta)?,
            Change::OperationEnded(end) => self.apply_end(end)?,
            Change::OperationRemoved { id } => {
                self.operations.remove(id);
            }
        }
        Ok(())
    }

    fn apply_step(&mut self, delta: &StepDelta) -> Result<(), ChangeRefused> {
        let op = self
            .operations
            .get_mut(&delta.op)
            .ok_or_else(|| ChangeRefused::UnknownOperation(delta.op.clone()))?;
        if op.finished_at.is_some() {
            return Err(ChangeRefused::OperationEnded(delta.op.clone()));
        }
        let len = op.steps.len();
        match usize::try_from(delta.index) {
            Ok(i) if i < len => op.steps[i].clone_from(&delta.step),
            Ok(i) if i == len => op.steps.push(delta.step.clone()),
            _ => return Err(ChangeRefused::StepOutOfOrder { op: delta.op.clone(), index: delta.index, len }),
        }
        Ok(())
    }

    /// Ends an operation and compacts it: its steps are dropped (they stay in the event
    /// history), their counts kept.
    fn apply_end(&mut self, end: &OperationEnded) -> Result<(), ChangeRefused> {
        let op =
            self.operations.get_mut(&end.id).ok_or_else(|| ChangeRefused::UnknownOperation(end.id.clone()))?;
        op.state = end.state;
        op.error.clone_from(&end.error);
        op.finished_at = Some(end.finished_at);
        op.steps = Vec::new();
        op.compacted = Some(end.steps);
        Ok(())
    }

    /// The ended operations to remove so that, once `ending` more operations end, no more
    /// than `FINISHED_OPERATIONS_KEPT` ended ones are left: the ones that ended first.
    pub fn operations_beyond_bound(&self, ending: usize) -> Vec<String> {
        let mut done: Vec<(u64, &String)> =
            self.operations.values().filter_map(|o| o.finished_at.map(|t| (t, &o.id))).collect();
        let over = (done.len() + ending).saturating_sub(FINISHED_OPERATIONS_KEPT);
        if over == 0 {
            return Vec::new();
        }
        done.sort();
        done.into_iter().take(over).map(|(_, id)| id.clone()).collect()
    }

    /// The instances placed on one host, in id order.
    pub fn instances_on<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| i.host == host)
    }

    /// The instances of one app, in id order.
    pub fn instances_of<'a>(&'a self, app: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.values().filter(move |i| i.app == app)
    }
}

/// On the wire the maps are plain JSON arrays, which is what scripts expect from
/// `ctl snapshot --json`.
mod as_list {
    macro_rules! list_of {
        ($name:ident, $ty:ty, $key:ty, |$v:ident| $k:expr) => {
            pub mod $name {
                use std::collections::BTreeMap;

                use serde::{Deserialize, Deserializer, Serializer};

                pub fn serialize<S: Serializer>(map: &BTreeMap<$key, $ty>, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_seq(map.values())
                }

                pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<$key, $ty>, D::Error> {
                    let items = Vec::<$ty>::deserialize(d)?;
                    Ok(items
                        .into_iter()
                        .map(|$v| {
                            let key = $k;
                            (key, $v)
                        })
                        .collect())
                }
            }
        };
    }
    list_of!(hosts, crate::protocol::model::Host, String, |v| v.id.clone());
    list_of!(apps, crate::protocol::model::App, String, |v| v.name.clone());
    list_of!(instances, crate::protocol::model::Instance, String, |v| v.id.clone());
    list_of!(routes, crate::protocol::model::Route, (String, String), |v| v.key());
    list_of!(operations, crate::protocol::model::Operation, String, |v| v.id.clone());
}
