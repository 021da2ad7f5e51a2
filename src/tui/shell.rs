//! A shell the cockpit hands its terminal to (`s`, `:exec`), as a state the event loop
//! polls beside its other sources: opening (the cockpit still draws and takes keys), then
//! running (the terminal is the session's, through `tui::exec::run`; the loop reads no
//! keys and draws nothing, but keeps applying the backend's updates, so the cockpit comes
//! back live). The loop gives the terminal over and takes it back (`terminal::hand_over`,
//! `terminal::resume`) at each step.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::backend::{ExecError, ExecOpener, ExecOutcome};
use crate::client::exec::{ExecControl, ExecSession};
use crate::protocol::ExecStart;

/// How long a stop may take to leave when the cockpit ends under a shell (SIGHUP).
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

type Running = Pin<Box<dyn Future<Output = Result<ExecOutcome, String>>>>;

#[derive(Default)]
pub struct Shell {
    state: State,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    Opening(JoinHandle<Result<ExecSession, ExecError>>),
    Running {
        control: ExecControl,
        run: Running,
    },
}

/// What the shell did.
pub enum Step {
    /// Opened (the loop hands over the terminal and `run`s it), or not.
    Opened(Result<ExecSession, ExecError>),
    /// Ended; the terminal is the loop's again.
    Ended(Result<ExecOutcome, String>),
}

impl Shell {
    /// Starts opening a session for `start`, sized as the terminal is now.
    pub fn open(&mut self, opener: &ExecOpener, start: ExecStart) {
        let opener = opener.clone();
        let (cols, rows) = super::exec::terminal_size();
        self.state = State::Opening(tokio::spawn(async move { opener.open(&start, cols, rows).await }));
    }

    /// Runs an opened session on the terminal (which the loop has just handed over).
    pub fn run(&mut self, session: ExecSession) {
        let control = session.control.clone();
        self.state = State::Running { control, run: Box::pin(super::exec::run(session)) };
    }

    /// Whether the terminal is the session's.
    pub fn has_terminal(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// The next step; never ready while idle. Cancel-safe: `select!` may drop it and call
    /// again.
    pub async fn step(&mut self) -> Step {
        let step = match &mut self.state {
            State::Idle => std::future::pending().await,
            State::Opening(task) => Step::Opened(
                task.await.unwrap_or_else(|e| Err(ExecError::Bus(format!("the open did not finish: {e}")))),
            ),
            State::Running { run, .. } => Step::Ended(run.as_mut().await),
        };
        self.state = State::Idle;
        step
    }

    /// The cockpit ends (SIGHUP, SIGTERM) with a shell open: the agent ends it now rather
    /// than when the keep-alives stop. The terminal side ends with `self`.
    pub async fn stop(&mut self) {
        match std::mem::take(&mut self.state) {
            State::Running { control, run } => {
                drop(run);
                let _ = tokio::time::timeout(STOP_TIMEOUT, control.stop()).await;
            }
            State::Opening(task) => task.abort(),
            State::Idle => {}
        }
    }
}

impl Drop for Shell {
    /// The cockpit quit while a session was opening: it is not wanted any more.
    fn drop(&mut self) {
        if let State::Opening(task) = &self.state {
            task.abort();
        }
    }
}
