//! Operations: long work (deploy, restart, replace) recorded step by step, each step an
//! event carrying the operation id, so the cockpit can draw progress from events alone.

use super::core::{Controller, Core, Draft};
use crate::protocol::clock::now_ms;
use crate::protocol::envelope::new_id;
use crate::protocol::{
    Change, EventKind, Fleet, Operation, OperationEnded, OperationKind, OperationState, StepCounts, StepName,
    StepState,
};

/// The event kind that reports a step.
pub(crate) fn step_kind(step: StepName) -> EventKind {
    match step {
        StepName::AllocateRepositoryRequest => EventKind::AllocateRepositoryRequest,
        StepName::Upload => EventKind::Upload,
        StepName::NewInstanceAndDeployWarRequest => EventKind::NewInstanceAndDeployWarRequest,
        StepName::PullImage => EventKind::PullImage,
        StepName::Download => EventKind::Download,
        StepName::Restart => EventKind::Restart,
        StepName::HealthCheck => EventKind::HealthCheck,
        StepName::AddRouteRequest => EventKind::AddRouteRequest,
        StepName::RemoveRouteRequest => EventKind::RemoveRouteRequest,
        StepName::RemoveInstance => EventKind::InstanceRemoved,
        StepName::InstanceDeployed => EventKind::InstanceDeployed,
    }
}

/// Opens an operation; returns its id and the draft that announces it.
pub(crate) fn open(
    kind: OperationKind,
    app: &str,
    target: String,
    command_id: Option<&str>,
) -> (String, Draft) {
    let id = format!("op-{}", &new_id()[..10]);
    let op = Operation {
        id: id.clone(),
        kind,
        app: app.to_string(),
        target: target.clone(),
        steps: Vec::new(),
        state: OperationState::Running,
        error: None,
        started_at: now_ms(),
        finished_at: None,
        command_id: command_id.map(str::to_string),
        compacted: None,
    };
    let draft = Draft::new(EventKind::OperationStarted, format!("{kind:?} {target}").to_lowercase())
        .app(app)
        .op(Some(&id))
        .change(Change::Operation(op));
    (id, draft)
}

/// Records a step on an operation: a running step of the same name and instance is moved
/// to `state`; otherwise a new step is added. The event carries that one step, never the
/// operation. Returns the draft, or `None` when the operation is unknown (it may have been
/// trimmed) or has ended.
pub(crate) fn step_draft(
    core: &Core,
    op_id: &str,
    name: StepName,
    instance: Option<&str>,
    state: StepState,
    detail: impl Into<String>,
) -> Option<Draft> {
    let op = core.fleet.operations.get(op_id)?;
    if op.finished_at.is_some() {
        log::debug!("{op_id} has ended: step {} not recorded", name.as_str());
        return None;
    }
    // Details may quote an agent or a container (its error, its output): bounded, so an
    // event fits the bus whatever they said.
    let detail = crate::protocol::validate::cut_owned(detail.into(), crate::protocol::audit::MAX_REASON);
    let delta = op.next_step(name, instance, state, detail.clone(), now_ms());
    let message = match (instance, detail.is_empty()) {
        (Some(i), false) => format!("{i}: {detail}"),
        (Some(i), true) => format!("{i}: {}", state_word(state)),
        (None, false) => detail,
        (None, true) => state_word(state).to_string(),
    };
    let mut draft = Draft::new(step_kind(name), message).app(op.app.clone()).op(Some(op_id));
    if let Some(i) = instance {
        draft = draft.instance(i);
    }
    Some(draft.change(Change::OperationStep(delta)))
}

/// The change that ends `op`: its outcome and step counts, not its steps.
pub(crate) fn ended(op: &Operation, state: OperationState, error: Option<String>) -> Change {
    Change::OperationEnded(OperationEnded {
        id: op.id.clone(),
        state,
        error,
        finished_at: now_ms(),
        steps: StepCounts::of(&op.steps),
    })
}

/// The removals that keep the ended operations within their bound once `ending` more
/// operations have ended.
pub(crate) fn trimmed(fleet: &Fleet, ending: usize) -> impl Iterator<Item = Change> {
    fleet.operations_beyond_bound(ending).into_iter().map(|id| Change::OperationRemoved { id })
}

fn state_word(state: StepState) -> &'static str {
    match state {
        StepState::Running => "started",
        StepState::Done => "done",
        StepState::Failed => "failed",
    }
}

impl Controller {
    /// Records a step, with any further state changes carried by the same event.
    pub(crate) fn step(
        &self,
        op_id: &str,
        name: StepName,
        instance: Option<&str>,
        state: StepState,
        detail: impl Into<String>,
        changes: Vec<Change>,
    ) {
        let detail = detail.into();
        self.mutate(|core| {
            let mut draft = match step_draft(core, op_id, name, instance, state, detail.clone()) {
                Some(d) => d,
                None if changes.is_empty() => return (vec![], ()),
                // The operation ended (or is gone): the step is not recorded, but what the
                // step changed in the fleet still is.
                None => {
                    let message = if detail.is_empty() { state_word(state).to_string() } else { detail };
                    let d = Draft::new(step_kind(name), message).op(Some(op_id));
                    match instance {
                        Some(i) => d.instance(i),
                        None => d,
                    }
                }
            };
            draft.changes.extend(changes);
            (vec![draft], ())
        })
    }

    /// Closes an operation with success or the reason it failed.
    pub(crate) fn finish(&self, op_id: &str, outcome: Result<String, String>) {
        self.mutate(|core| {
            let Some(op) = core.fleet.operations.get(op_id).filter(|o| o.finished_at.is_none()) else {
                return (vec![], ());
            };
            let (kind, message, end) = match outcome {
                Ok(msg) => (EventKind::OperationSucceeded, msg, ended(op, OperationState::Succeeded, None)),
                Err(reason) => {
                    let reason =
                        crate::protocol::validate::cut_owned(reason, crate::protocol::audit::MAX_REASON);
                    let end = ended(op, OperationState::Failed, Some(reason.clone()));
                    (EventKind::OperationFailed, reason, end)
                }
            };
            let mut draft = Draft::new(kind, message).app(op.app.clone()).op(Some(op_id)).change(end);
            draft.changes.extend(trimmed(&core.fleet, 1));
            (vec![draft], ())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc::UnboundedReceiver;

    use super::*;
    use crate::bus::{Bus, LocalBus};
    use crate::plane::controller::ControllerConfig;
    use crate::plane::controller::store::MemoryStore;
    use crate::protocol::fleet::FINISHED_OPERATIONS_KEPT;
    use crate::protocol::{Envelope, Event, encode};

    const DEPLOY_STEPS: [StepName; 6] = [
        StepName::NewInstanceAndDeployWarRequest,
        StepName::Download,
        StepName::Restart,
        StepName::HealthCheck,
        StepName::AddRouteRequest,
        StepName::InstanceDeployed,
    ];

    fn controller() -> (Controller, UnboundedReceiver<Event>) {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let store = Arc::new(MemoryStore::new(bus.clone()));
        Controller::new(bus, ControllerConfig::default(), crate::protocol::Fleet::default(), store, None)
    }

    fn started(ctl: &Controller, instances: usize) -> String {
        ctl.mutate(|_| {
            let (id, draft) =
                open(OperationKind::Deploy, "shop-web", format!("shop-web@1.0 x{instances}"), None);
            (vec![draft], id)
        })
    }

    fn stored_bytes(event: Event) -> usize {
        encode(&Envelope::new("controller", event)).expect("encodes").len()
    }

    /// The stored size of the next step event of a deploy whose `instances` instances
    /// have each been through every step, and of its closing event.
    fn step_and_end_bytes(instances: usize) -> (usize, usize) {
        let (ctl, mut rx) = controller();
        let op = started(&ctl, instances);
        for i in 0..instances {
            for name in DEPLOY_STEPS {
                let id = format!("shop-web-{i}-ab12");
                ctl.step(&op, name, Some(&id), StepState::Running, "", vec![]);
                ctl.step(&op, name, Some(&id), StepState::Done, "ok", vec![]);
            }
        }
        while rx.try_recv().is_ok() {}
        ctl.step(
            &op,
            StepName::HealthCheck,
            Some("shop-web-7-ab12"),
            StepState::Running,
            "GET /health",
            vec![],
        );
        let step = rx.try_recv().expect("the step event");
        assert!(matches!(step.changes.as_slice(), [Change::OperationStep(_)]), "{step:?}");
        ctl.finish(&op, Err("shop-web-7-ab12 was not healthy".into()));
        let end = rx.try_recv().expect("the closing event");
        assert!(matches!(end.changes.as_slice(), [Change::OperationEnded(_)]), "{end:?}");
        let kept = &ctl.snapshot().operations[&op];
        assert!(kept.steps.is_empty(), "compacted: {kept:?}");
        let counts = kept.compacted.expect("the step counts");
        assert_eq!(counts.total as usize, instances * DEPLOY_STEPS.len() + 1);
        (stored_bytes(step), stored_bytes(end))
    }

    #[test]
    fn a_step_event_and_an_end_weigh_the_same_over_10_instances_and_over_500() {
        let (step10, end10) = step_and_end_bytes(10);
        let (step500, end500) = step_and_end_bytes(500);
        // Only the digits of the step's index, the revision and the counts differ.
        assert!(step10.abs_diff(step500) <= 8, "step event: {step10} B at 10 instances, {step500} B at 500");
        assert!(end10.abs_diff(end500) <= 8, "end event: {end10} B at 10 instances, {end500} B at 500");
        assert!(step500 < 1024 && end500 < 1024, "{step500} B, {end500} B");
    }

    #[test]
    fn an_end_beyond_the_bound_removes_the_oldest_ended_operation_and_a_late_step_is_not_recorded() {
        let (ctl, mut rx) = controller();
        let mut ended = Vec::new();
        for _ in 0..=FINISHED_OPERATIONS_KEPT {
            let op = started(&ctl, 1);
            ctl.finish(&op, Ok("done".into()));
            ended.push(op);
        }
        let last = std::iter::from_fn(|| rx.try_recv().ok()).last().expect("events");
        // They all ended within a few ms: the first to end goes, ties by id.
        let Some(Change::OperationRemoved { id: removed }) = last.changes.get(1) else {
            panic!("the last end removes one: {last:?}");
        };
        assert!(ended.contains(removed) && removed != &ended[FINISHED_OPERATIONS_KEPT], "{removed}");
        let snap = ctl.snapshot();
        assert_eq!(snap.operations.len(), FINISHED_OPERATIONS_KEPT);
        assert!(!snap.operations.contains_key(removed));
        // An ended operation takes no more steps, and is not ended twice.
        let kept = &ended[FINISHED_OPERATIONS_KEPT];
        let rev = ctl.revision();
        ctl.step(kept, StepName::Download, None, StepState::Done, "", vec![]);
        ctl.finish(kept, Err("again".into()));
        assert_eq!(ctl.revision(), rev);
        assert_eq!(ctl.snapshot().operations[kept].state, OperationState::Succeeded);
        // What a late step changed in the fleet is still recorded, without the step.
        let gone = crate::protocol::Change::AppRemoved { name: "shop-web".into() };
        ctl.step(
            kept,
            StepName::RemoveInstance,
            Some("shop-web-0-ab12"),
            StepState::Done,
            "",
            vec![gone.clone()],
        );
        assert_eq!(ctl.revision(), rev + 1);
        let late = rx.try_recv().expect("the late step's event");
        assert_eq!(late.changes, vec![gone]);
        assert!(ctl.snapshot().operations[kept].steps.is_empty());
    }
}
