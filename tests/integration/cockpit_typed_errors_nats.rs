//! The cockpit tells a timeout from a refusal (issue 17), on a real nats-server and
//! controller. A restart of an instance that does not exist is refused, with its code; the
//! same command sent while the controller is frozen (SIGSTOP) gets no answer. The app
//! receives both typed and words them differently in the status line. Before, the backend
//! turned every failure but a refusal into one string, and the app said `refused:` of a
//! command that timed out and may still have run.

use std::process::Command as Process;
use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::keymap::Keymap;
use quarterdeck::app::App;
use quarterdeck::backend::{self, BackendHandle, BackendRequest, CommandError, Identity, Inbound, Sync};
use quarterdeck::bus::Bus;
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{Accepted, ControlCommand, ErrorCode, RestartBody, RestartRequest};
use quarterdeck::theme::{ColorMode, Theme};

use crate::nats_support::{Plane, PlaneConfig, connect};
use crate::support::{carry_out, pump};

const NAME: &str = "cockpit_tells_a_timeout_from_a_refusal_nats";

/// Long enough for the backend's 5 s command timeout on a loaded machine.
const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// Sends `cmd` and applies updates until its result comes; returns the result and the
/// status line the app showed for it.
async fn send_and_say(
    app: &mut App,
    handle: &mut BackendHandle,
    cmd: ControlCommand,
) -> (Result<Accepted, CommandError>, String) {
    handle.commands.send(BackendRequest::Send(cmd)).expect("backend open");
    let result = tokio::time::timeout(ANSWER_WAIT, async {
        loop {
            let update = handle.updates.recv().await.expect("backend open");
            let done = match &update {
                Inbound::CommandDone { result, .. } => Some(result.clone()),
                _ => None,
            };
            app.now = now_ms();
            for effect in app.apply(update) {
                carry_out(handle, effect);
            }
            if let Some(result) = done {
                return result;
            }
        }
    })
    .await
    .expect("the command's result reaches the app");
    let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    (result, said)
}

fn signal(pid: u32, sig: &str) {
    let status = Process::new("kill").arg(sig).arg(pid.to_string()).status().expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

/// Thaws the controller however the test ends, so the plane shuts down cleanly.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Process::new("kill").arg("-CONT").arg(self.0.to_string()).status();
    }
}

#[test]
fn cockpit_tells_a_timeout_from_a_refusal_nats() {
    let Some(plane) = Plane::start(NAME, PlaneConfig::default()) else { return };
    let url = plane.url();
    let controller = plane.controller.pid().expect("the controller runs");
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        let bus: Arc<dyn Bus> = Arc::new(connect(&url, "cockpit/test@typed").await);
        let mut handle = backend::spawn_cockpit(bus, "cockpit/test@typed".into(), Identity::default());
        let theme = Theme::default_for(ColorMode::TrueColor);
        let mut app = App::new(url.clone(), theme, Keymap::defaults(), now_ms());
        pump(&mut app, &mut handle, "a live replica", |a| a.replica.sync == Sync::Live).await;
        let ghost =
            || ControlCommand::Restart(RestartBody::from(RestartRequest::Instance("nope-0-0000".into())));

        // Refused: typed with its code, and said so with the code.
        let (refused, said_refused) = send_and_say(&mut app, &mut handle, ghost()).await;
        assert!(
            matches!(&refused, Err(CommandError::Refused(w)) if w.code == ErrorCode::NotFound),
            "{refused:?}"
        );
        assert!(said_refused.starts_with("refused: restart instance nope-0-0000: "), "{said_refused}");
        assert!(said_refused.ends_with("(not_found)"), "{said_refused}");

        // No answer: the controller is frozen, its subscription still open, so the request
        // is delivered and never answered.
        signal(controller, "-STOP");
        let thaw = Thaw(controller);
        let (late, said_late) = send_and_say(&mut app, &mut handle, ghost()).await;
        drop(thaw);
        assert!(matches!(&late, Err(CommandError::Timeout { .. })), "{late:?}");
        assert!(said_late.starts_with("no answer: restart instance nope-0-0000: "), "{said_late}");
        assert!(said_late.contains("it may have run (see Audit)"), "{said_late}");
        assert!(!said_late.contains("refused"), "a timeout is no refusal: {said_late}");
    });
    drop(plane);
}
