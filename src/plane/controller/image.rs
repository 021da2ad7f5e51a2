//! The deploy's `PULL_IMAGE` step without an instance: an image from a registry is pinned
//! to the digest its tag names at deploy time, so every instance of the deploy (and every
//! later replacement of one) runs the same bytes even if the tag moves meanwhile.
//!
//! The controller has no registry client of its own: it asks one agent that could run
//! the app (up, in the app's AZs, with its tags) to ask its runtime (`cmd.resolve`; the
//! Docker driver uses dockerd's distribution endpoint). That agent reaches the registry
//! the way the hosts that will pull from it do, with their trust settings, and the
//! controller needs no new dependency or network path.

use std::time::Duration;

use super::core::Controller;
use crate::bus::RequestError;
use crate::plane::agent::RESOLVE_TIMEOUT;
use crate::protocol::image::ImageRef;
use crate::protocol::subjects::AgentVerb;
use crate::protocol::{App, Change, ErrorCode, HostState, ImageResolved, ResolveImage, StepName, StepState};

/// How many agents are asked before the deploy fails: another is tried only when one did
/// not answer, never when the registry said no.
const AGENTS_ASKED: usize = 3;

/// Pins `app`'s image to its digest, recording the step; `Err` fails the deploy before
/// any instance is touched, with the registry's answer.
pub(crate) async fn pin(ctl: &Controller, op_id: &str, app: &mut App) -> Result<(), String> {
    let Ok(image) = ImageRef::parse(&app.image) else {
        // Checked when the deploy was accepted: an older app's record is run as it is.
        return Ok(());
    };
    if !image.from_registry() || image.digest.is_some() || app.digest.is_some() {
        return Ok(());
    }
    let hosts = ctl.read(|core| {
        let c = &app.constraints;
        let mut ids: Vec<String> = core
            .fleet
            .hosts
            .values()
            .filter(|h| h.state == HostState::Up)
            .filter(|h| c.azs.is_empty() || c.azs.contains(&h.az))
            .filter(|h| c.tags.iter().all(|t| h.tags.contains(t)))
            .map(|h| h.id.clone())
            .collect();
        ids.sort();
        ids
    });
    let Some(first) = hosts.first() else {
        let reason = format!("cannot resolve {}: no up host may run {}", app.image, app.name);
        ctl.step(op_id, StepName::PullImage, None, StepState::Failed, reason.clone(), vec![]);
        return Err(reason);
    };
    ctl.step(
        op_id,
        StepName::PullImage,
        None,
        StepState::Running,
        format!("resolving {} via {first}", app.image),
        vec![],
    );
    let mut unanswered = Vec::new();
    for host in hosts.iter().take(AGENTS_ASKED) {
        ctl.unfenced().await;
        let asked: Result<ImageResolved, RequestError> = ctl
            .ask_agent_within(
                host,
                AgentVerb::Resolve,
                ResolveImage { image: app.image.clone() },
                RESOLVE_TIMEOUT + Duration::from_secs(5),
            )
            .await;
        match asked {
            Ok(resolved) => {
                app.digest = Some(resolved.digest.clone());
                ctl.step(
                    op_id,
                    StepName::PullImage,
                    None,
                    StepState::Done,
                    format!("{} is {} (asked {host})", app.image, resolved.digest),
                    vec![Change::App(app.clone())],
                );
                return Ok(());
            }
            // The registry's own answer (no such tag or repository, refused): asking
            // another host would hear the same.
            Err(RequestError::Refused(e)) if matches!(e.code, ErrorCode::NotFound | ErrorCode::BadRequest) => {
                let reason = format!("image {}: {} (asked {host})", app.image, e.reason);
                ctl.step(op_id, StepName::PullImage, None, StepState::Failed, reason.clone(), vec![]);
                return Err(reason);
            }
            Err(e) => unanswered.push(format!("{host}: {e}")),
        }
    }
    let reason = format!("cannot resolve {}: {}", app.image, unanswered.join("; "));
    ctl.step(op_id, StepName::PullImage, None, StepState::Failed, reason.clone(), vec![]);
    Err(reason)
}
