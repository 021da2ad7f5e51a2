//! The image pulls in progress on each host, for the Hosts panel: the running
//! `PULL_IMAGE` steps of running operations, put on the host of their instance. Counted
//! once per frame from the replica; only running operations are read, and the state
//! keeps few of those.

use std::collections::BTreeMap;

use crate::protocol::image::PullBytes;
use crate::protocol::{Fleet, OperationState, StepName, StepState};

/// What one host is pulling: how many images, and their bytes summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostPulls {
    pub count: usize,
    pub bytes: PullBytes,
}

/// The pulls in progress, by host id. A pull whose detail says no bytes yet counts with
/// none: it is still a pull in progress.
pub fn by_host(fleet: &Fleet) -> BTreeMap<&str, HostPulls> {
    let mut out: BTreeMap<&str, HostPulls> = BTreeMap::new();
    let running = fleet.operations.values().filter(|op| op.state == OperationState::Running);
    for step in running.flat_map(|op| op.steps.iter()) {
        if step.name != StepName::PullImage || step.state != StepState::Running {
            continue;
        }
        // The controller's own PULL_IMAGE (the tag's resolution) has no instance: no host.
        let Some(host) =
            step.instance.as_deref().and_then(|i| fleet.instances.get(i)).map(|i| i.host.as_str())
        else {
            continue;
        };
        let bytes = PullBytes::parse(&step.detail).unwrap_or_default();
        let pulls = out.entry(host).or_default();
        pulls.count += 1;
        pulls.bytes.done += bytes.done;
        pulls.bytes.total += bytes.total;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Operation, OperationKind, OperationStep};

    fn step(name: StepName, instance: Option<&str>, state: StepState, detail: &str) -> OperationStep {
        OperationStep {
            name,
            instance: instance.map(str::to_string),
            state,
            started_at: 1,
            finished_at: None,
            detail: detail.into(),
        }
    }

    fn op(id: &str, state: OperationState, steps: Vec<OperationStep>) -> Operation {
        Operation {
            id: id.into(),
            kind: OperationKind::Deploy,
            app: "web".into(),
            target: "web@2 x3".into(),
            steps,
            state,
            error: None,
            started_at: 1,
            finished_at: None,
            command_id: None,
            compacted: None,
        }
    }

    #[test]
    fn running_pulls_are_summed_on_their_instances_host() {
        let (mut fleet, _) = crate::plane::fixture::fixture(1, 6, 0);
        let on: Vec<(String, String)> =
            fleet.instances.values().map(|i| (i.id.clone(), i.host.clone())).collect();
        let a = &on[0];
        let c = on.iter().find(|i| i.1 != a.1).expect("instances on two hosts");
        let b = on.iter().find(|i| i.0 != a.0 && i.0 != c.0).expect("a third instance");
        let pull = StepName::PullImage;
        fleet.operations.insert(
            "op-1".into(),
            op(
                "op-1",
                OperationState::Running,
                vec![
                    step(pull, None, StepState::Running, "resolving"),
                    step(pull, Some(&a.0), StepState::Running, "1000 of 4000 bytes, 1 layer(s)"),
                    step(pull, Some(&c.0), StepState::Running, "pulling"),
                    step(pull, Some(&b.0), StepState::Done, "4000 of 4000 bytes, 1 layer(s)"),
                    step(StepName::Download, Some(&b.0), StepState::Running, "10 of 20 bytes"),
                    step(pull, Some("gone-9"), StepState::Running, "5 of 5 bytes"),
                ],
            ),
        );
        fleet.operations.insert(
            "op-0".into(),
            op(
                "op-0",
                OperationState::Failed,
                vec![step(pull, Some(&a.0), StepState::Running, "9 of 9 bytes")],
            ),
        );
        let pulls = by_host(&fleet);
        let mut want = BTreeMap::new();
        want.insert(a.1.as_str(), HostPulls { count: 1, bytes: PullBytes { done: 1000, total: 4000 } });
        want.insert(c.1.as_str(), HostPulls { count: 1, bytes: PullBytes::default() });
        assert_eq!(pulls, want);
    }
}
