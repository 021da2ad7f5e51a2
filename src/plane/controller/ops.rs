//! Operations: long work (deploy, restart, replace) recorded step by step, each step an
//! event carrying the operation id, so the cockpit can draw progress from events alone.

use super::core::{Controller, Core, Draft};
use crate::protocol::clock::now_ms;
use crate::protocol::envelope::new_id;
use crate::protocol::{
    Change, EventKind, Operation, OperationKind, OperationState, OperationStep, StepName, StepState,
};

/// The event kind that reports a step.
pub(crate) fn step_kind(step: StepName) -> EventKind {
    match step {
        StepName::AllocateRepositoryRequest => EventKind::AllocateRepositoryRequest,
        StepName::Upload => EventKind::Upload,
        StepName::NewInstanceAndDeployWarRequest => EventKind::NewInstanceAndDeployWarRequest,
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
    };
    let draft = Draft::new(EventKind::OperationStarted, format!("{kind:?} {target}").to_lowercase())
        .app(app)
        .op(Some(&id))
        .change(Change::Operation(op));
    (id, draft)
}

/// Records a step on an operation: a running step of the same name and instance is moved
/// to `state`; otherwise a new step is added. Returns the draft, or `None` when the
/// operation is unknown (it may have been trimmed).
pub(crate) fn step_draft(
    core: &Core,
    op_id: &str,
    name: StepName,
    instance: Option<&str>,
    state: StepState,
    detail: impl Into<String>,
) -> Option<Draft> {
    let mut op = core.fleet.operations.get(op_id)?.clone();
    // Details may quote an agent or a container (its error, its output): bounded, so an
    // event fits the bus whatever they said.
    let detail = crate::protocol::validate::cut_owned(detail.into(), crate::protocol::audit::MAX_REASON);
    let now = now_ms();
    let open_step = op
        .steps
        .iter_mut()
        .rev()
        .find(|s| s.name == name && s.instance.as_deref() == instance && s.state == StepState::Running);
    match open_step {
        Some(step) => {
            step.state = state;
            if state != StepState::Running {
                step.finished_at = Some(now);
            }
            if !detail.is_empty() {
                step.detail = detail.clone();
            }
        }
        None => op.steps.push(OperationStep {
            name,
            instance: instance.map(str::to_string),
            state,
            started_at: now,
            finished_at: (state != StepState::Running).then_some(now),
            detail: detail.clone(),
        }),
    }
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
    Some(draft.change(Change::Operation(op)))
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
            let mut drafts = Vec::new();
            if let Some(mut d) = step_draft(core, op_id, name, instance, state, detail) {
                d.changes.extend(changes);
                drafts.push(d);
            }
            (drafts, ())
        })
    }

    /// Closes an operation with success or the reason it failed.
    pub(crate) fn finish(&self, op_id: &str, outcome: Result<String, String>) {
        self.mutate(|core| {
            let Some(mut op) = core.fleet.operations.get(op_id).cloned() else {
                return (vec![], ());
            };
            op.finished_at = Some(now_ms());
            let (kind, message) = match outcome {
                Ok(msg) => {
                    op.state = OperationState::Succeeded;
                    (EventKind::OperationSucceeded, msg)
                }
                Err(reason) => {
                    let reason =
                        crate::protocol::validate::cut_owned(reason, crate::protocol::audit::MAX_REASON);
                    op.state = OperationState::Failed;
                    op.error = Some(reason.clone());
                    (EventKind::OperationFailed, reason)
                }
            };
            let app = op.app.clone();
            let draft = Draft::new(kind, message).app(app).op(Some(op_id)).change(Change::Operation(op));
            (vec![draft], ())
        })
    }
}
