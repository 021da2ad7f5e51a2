//! The fleet's state at one revision, and how an event moves it to the next.
//!
//! The controller's state and every replica are the same type, so a replica that applies
//! the controller's events in order ends up equal to the controller's snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::alert::{Alert, Silence};
use super::event::{Change, Event};
use super::model::{
    AppSpec, Host, Instance, Operation, OperationEnded, OperationStep, Route, RouteKey, StepDelta,
};

/// The snapshot body and the state the controller keeps, keyed for stable ordering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    pub revision: u64,
    #[serde(with = "as_list::hosts")]
    pub hosts: BTreeMap<String, Host>,
    #[serde(with = "as_list::apps")]
    pub apps: BTreeMap<String, AppSpec>,
    #[serde(with = "as_list::instances")]
    pub instances: BTreeMap<String, Instance>,
    #[serde(with = "as_list::routes")]
    pub routes: BTreeMap<RouteKey, Route>,
    #[serde(with = "as_list::operations")]
    pub operations: BTreeMap<String, Operation>,
    /// Alerts by id (`<rule>:<subject>`): active ones, and the newest resolved ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, Alert>,
    /// Silences by subject (`host/h1`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub silences: BTreeMap<String, Silence>,
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
                self.hosts.insert(h.info.id.clone(), h.clone());
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
            Change::Alert(a) => {
                self.alerts.insert(a.id.clone(), a.clone());
            }
            Change::AlertRemoved { id } => {
                self.alerts.remove(id);
            }
            Change::Silence(x) => {
                self.silences.insert(x.subject.to_string(), x.clone());
            }
            Change::SilenceRemoved { subject } => {
                self.silences.remove(subject);
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
        put_step(&mut op.steps, delta)
    }

    /// Ends an operation and compacts it: its steps are dropped (they stay in the event
    /// history), their counts kept.
    fn apply_end(&mut self, end: &OperationEnded) -> Result<(), ChangeRefused> {
        let op = self
            .operations
            .get_mut(&end.id)
            .ok_or_else(|| ChangeRefused::UnknownOperation(end.id.clone()))?;
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

/// The step rule: a delta replaces the step at its index, or comes next.
fn put_step(steps: &mut Vec<OperationStep>, delta: &StepDelta) -> Result<(), ChangeRefused> {
    let len = steps.len();
    match usize::try_from(delta.index) {
        Ok(i) if i < len => steps[i].clone_from(&delta.step),
        Ok(i) if i == len => steps.push(delta.step.clone()),
        _ => return Err(ChangeRefused::StepOutOfOrder { op: delta.op.clone(), index: delta.index, len }),
    }
    Ok(())
}

/// The steps of operation `op` as the step events among `events` (oldest first) build
/// them: what a reader shows of an operation whose steps the state no longer keeps.
/// `None` when the events do not hold them all (the first ones are older than the
/// events kept).
pub fn steps_in_history<'a>(
    op: &Operation,
    events: impl IntoIterator<Item = &'a Event>,
) -> Option<Vec<OperationStep>> {
    let mut steps = Vec::new();
    let deltas = events.into_iter().flat_map(|e| &e.changes).filter_map(|c| match c {
        Change::OperationStep(d) if d.op == op.id => Some(d),
        _ => None,
    });
    for delta in deltas {
        put_step(&mut steps, delta).ok()?;
    }
    let whole = op.compacted.is_none_or(|c| usize::try_from(c.total).is_ok_and(|t| t == steps.len()));
    whole.then_some(steps)
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
    list_of!(hosts, crate::protocol::model::Host, String, |v| v.info.id.clone());
    list_of!(apps, crate::protocol::model::AppSpec, String, |v| v.name.clone());
    list_of!(instances, crate::protocol::model::Instance, String, |v| v.id.clone());
    list_of!(routes, crate::protocol::model::Route, (String, String), |v| v.key());
    list_of!(operations, crate::protocol::model::Operation, String, |v| v.id.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EventKind, OperationKind, OperationState, StepCounts, StepName, StepState};

    fn started(id: &str) -> Operation {
        Operation {
            id: id.into(),
            kind: OperationKind::Deploy,
            app: "shop-web".into(),
            target: "shop-web@2.0 x3".into(),
            steps: vec![],
            state: OperationState::Running,
            error: None,
            started_at: 1_000,
            finished_at: None,
            command_id: Some("c-1".into()),
            compacted: None,
        }
    }

    fn event(rev: u64, changes: Vec<Change>) -> Event {
        Event {
            rev,
            ts: rev,
            kind: EventKind::Download,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            message: String::new(),
            changes,
            audit: None,
        }
    }

    /// The step reports of a 3-instance deploy, in the order they might arrive
    /// (interleaved, some steps started then ended, one failure).
    fn reports() -> Vec<(StepName, Option<String>, StepState)> {
        let mut out = vec![
            (StepName::AllocateRepositoryRequest, None, StepState::Done),
            (StepName::Upload, None, StepState::Done),
        ];
        for phase in [StepName::NewInstanceAndDeployWarRequest, StepName::Download, StepName::HealthCheck] {
            for i in 0..3 {
                out.push((phase, Some(format!("shop-web-{i}")), StepState::Running));
            }
            for i in 0..3 {
                let failed = phase == StepName::HealthCheck && i == 1;
                let state = if failed { StepState::Failed } else { StepState::Done };
                out.push((phase, Some(format!("shop-web-{i}")), state));
            }
        }
        out
    }

    /// The way a v1 controller recorded a step: on the whole operation, sent whole.
    fn old_step(op: &mut Operation, name: StepName, instance: Option<&str>, state: StepState, now: u64) {
        let open =
            op.steps.iter_mut().rev().find(|s| {
                s.name == name && s.instance.as_deref() == instance && s.state == StepState::Running
            });
        match open {
            Some(step) => {
                step.state = state;
                if state != StepState::Running {
                    step.finished_at = Some(now);
                }
            }
            None => op.steps.push(OperationStep {
                name,
                instance: instance.map(str::to_string),
                state,
                started_at: now,
                finished_at: (state != StepState::Running).then_some(now),
                detail: String::new(),
            }),
        }
    }

    #[test]
    fn the_start_the_step_deltas_and_the_end_build_what_the_whole_operation_built() {
        let mut old = Fleet::default();
        let mut new = Fleet::default();
        let mut whole = started("op-1");
        old.apply(&event(1, vec![Change::Operation(whole.clone())])).expect("next");
        new.apply(&event(1, vec![Change::Operation(whole.clone())])).expect("next");
        let mut rev = 1;
        let mut history = Vec::new();
        for (n, (name, instance, state)) in reports().into_iter().enumerate() {
            let now = 2_000 + n as u64;
            rev += 1;
            let delta =
                new.operations["op-1"].next_step(name, instance.as_deref(), state, String::new(), now);
            old_step(&mut whole, name, instance.as_deref(), state, now);
            old.apply(&event(rev, vec![Change::Operation(whole.clone())])).expect("next");
            let e = event(rev, vec![Change::OperationStep(delta)]);
            new.apply(&e).expect("next");
            history.push(e);
            assert_eq!(new, old, "after report {n}");
        }
        assert_eq!(whole.steps.len(), 2 + 3 * 3, "each instance's running step was ended in place");

        // The end: the v1 way, the whole operation; now its outcome and counts.
        rev += 1;
        let counts = StepCounts::of(&whole.steps);
        assert_eq!(counts, StepCounts { total: 11, done: 10, failed: 1 });
        let steps = std::mem::take(&mut whole.steps);
        whole.state = OperationState::Failed;
        whole.error = Some("shop-web-1 unhealthy".into());
        whole.finished_at = Some(9_000);
        let end = OperationEnded {
            id: "op-1".into(),
            state: OperationState::Failed,
            error: whole.error.clone(),
            finished_at: 9_000,
            steps: counts,
        };
        new.apply(&event(rev, vec![Change::OperationEnded(end)])).expect("next");
        let ended = &new.operations["op-1"];
        assert_eq!(ended, &Operation { compacted: Some(counts), ..whole.clone() });
        // The steps the state dropped are rebuilt from the history, whole.
        assert_eq!(steps_in_history(ended, &history), Some(steps.clone()));
        assert_eq!(steps_in_history(ended, &history[3..]), None, "the first steps are gone");
        // A step that arrives after the end changes nothing.
        let late = StepDelta { op: "op-1".into(), index: 0, step: steps[0].clone() };
        assert_eq!(
            new.clone().try_apply_change(&Change::OperationStep(late)),
            Err(ChangeRefused::OperationEnded("op-1".into()))
        );
        // Through the wire, as a replica reads them.
        let wire: Vec<Change> = history
            .iter()
            .flat_map(|e| e.changes.iter())
            .map(|c| serde_json::from_slice(&serde_json::to_vec(c).expect("encodes")).expect("decodes"))
            .collect();
        assert_eq!(wire, history.iter().flat_map(|e| e.changes.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn a_step_out_of_order_or_of_an_unknown_operation_is_refused_and_the_event_still_applies() {
        let mut f = Fleet::default();
        f.apply(&event(1, vec![Change::Operation(started("op-1"))])).expect("next");
        let step = started("x").next_step(StepName::Upload, None, StepState::Done, String::new(), 5).step;
        let at =
            |op: &str, index| Change::OperationStep(StepDelta { op: op.into(), index, step: step.clone() });
        assert_eq!(
            f.clone().try_apply_change(&at("op-1", 1)),
            Err(ChangeRefused::StepOutOfOrder { op: "op-1".into(), index: 1, len: 0 })
        );
        assert_eq!(
            f.clone().try_apply_change(&at("op-1", u32::MAX)),
            Err(ChangeRefused::StepOutOfOrder { op: "op-1".into(), index: u32::MAX, len: 0 })
        );
        assert_eq!(
            f.clone().try_apply_change(&at("op-9", 0)),
            Err(ChangeRefused::UnknownOperation("op-9".into()))
        );
        let end = OperationEnded {
            id: "op-9".into(),
            state: OperationState::Succeeded,
            error: None,
            finished_at: 2,
            steps: StepCounts::default(),
        };
        assert_eq!(
            f.clone().try_apply_change(&Change::OperationEnded(end)),
            Err(ChangeRefused::UnknownOperation("op-9".into()))
        );
        assert!(
            ChangeRefused::StepOutOfOrder { op: "op-1".into(), index: 7, len: 2 }
                .to_string()
                .contains("step 7 of operation op-1, which has 2 steps")
        );
        // The bad change is left out; the good one beside it and the revision apply.
        let e = event(2, vec![at("op-1", 3), at("op-1", 0)]);
        assert_eq!(f.apply(&e), Ok(true));
        assert_eq!(f.revision, 2);
        assert_eq!(f.operations["op-1"].steps, vec![step.clone()]);
    }

    #[test]
    fn the_oldest_ended_operations_beyond_the_bound_are_the_ones_to_remove() {
        let mut f = Fleet::default();
        for n in 0..FINISHED_OPERATIONS_KEPT {
            let mut op = started(&format!("op-{n:04}"));
            // Ended in the reverse order of their ids: the order is by end, not by id.
            op.finished_at = Some(100_000 - n as u64);
            op.state = OperationState::Succeeded;
            f.operations.insert(op.id.clone(), op);
        }
        f.operations.insert("op-running".into(), started("op-running"));
        assert_eq!(f.operations_beyond_bound(0), Vec::<String>::new(), "at the bound");
        let last = format!("op-{:04}", FINISHED_OPERATIONS_KEPT - 1);
        assert_eq!(f.operations_beyond_bound(1), vec![last.clone()], "one more ends: the first ended goes");
        assert_eq!(f.operations_beyond_bound(2).len(), 2);
        f.apply_change(&Change::OperationRemoved { id: last.clone() });
        assert!(!f.operations.contains_key(&last));
        assert!(f.operations.contains_key("op-running"), "a running operation is never removed");
    }
}
