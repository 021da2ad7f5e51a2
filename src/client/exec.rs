//! A user's side of an exec session (docs/protocol.md §4 "Exec"), UI-free: `ctl exec` and
//! the cockpit both open sessions here. `open` subscribes to the user's own stream
//! `qd.v1.exec.<user>.<session id>` first (with roles on, the server refuses it to a user
//! without the exec grant), then asks the instance's agent to start. The session's events
//! (output, then its end) come on a channel; input, resizes and the stop go through
//! [`ExecControl`]; a task sends the keep-alive while the session lives. The agent's
//! frames carry sequence numbers, so a lost one is said, and a silence longer than
//! [`EXEC_AGENT_SILENT_MS`] ends the session as `AgentLost` (the agent sends an `alive`
//! frame every [`EXEC_ALIVE_EVERY_MS`] while the process is quiet).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bus::{self, Bus, BusError, RequestError};
use crate::protocol::exec::{
    EXEC_AGENT_SILENT_MS, EXEC_ALIVE_EVERY_MS, EXEC_KEEPALIVE_EVERY_MS, ExecEnd, ExecEndReason, ExecFd,
    ExecFrame, ExecInput, ExecPayload, ExecRef, ExecRequest, ExecResize, ExecStarted, ExecVerb, chunks,
    decode_chunk, encode_chunk, frames_lost,
};
use crate::protocol::subjects::{self, SessionKind};
use crate::protocol::{Envelope, ErrorCode, Fleet, InstanceState, WireError, decode, validate};

/// How long the agent may take to start a session.
pub const EXEC_START_TIMEOUT: Duration = Duration::from_secs(15);

// The agent's alive frames are what the reader's silence timer counts on.
const _: () = assert!(EXEC_ALIVE_EVERY_MS < EXEC_AGENT_SILENT_MS);

/// How long a stop waits for the agent's answer.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Events between the agent and the viewer are few; output chunks are up to 32 KiB, so
/// this bounds what waits for the viewer to about 8 MiB.
const EVENTS: usize = 256;

/// Where an instance runs, from the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    pub host: String,
    pub instance: String,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOptions {
    /// Empty: a shell.
    pub cmd: Vec<String>,
    pub tty: bool,
    pub cols: u16,
    pub rows: u16,
}

/// Why a session could not start, or was lost.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("no instance {0} (see `quarterdeck ctl instances`)")]
    NotFound(String),
    #[error("instance {instance} is {state}, not running: nothing to exec in")]
    NotRunning { instance: String, state: String },
    /// The server refused the session's subjects: the user lacks the exec grant.
    #[error("{user} may not exec: ask for the exec grant (quarterdeck auth grant {user} exec)")]
    Denied { user: String },
    /// The agent refused (bad request, no such container, a driver that cannot exec).
    #[error("the agent refused: {0}")]
    Refused(WireError),
    #[error("the agent on {host} did not answer: is it running?")]
    AgentGone { host: String },
    #[error("{0}")]
    Bus(String),
}

impl ExecError {
    fn of_request(e: RequestError, user: &str, host: &str) -> ExecError {
        match e {
            RequestError::Bus(b) => ExecError::of_bus(b, user, host),
            RequestError::Refused(w) => ExecError::Refused(w),
            RequestError::Protocol(p) => ExecError::Bus(format!("bad answer from the agent: {p}")),
        }
    }

    fn of_bus(e: BusError, user: &str, host: &str) -> ExecError {
        match e {
            BusError::PermissionDenied { .. } => ExecError::Denied { user: user.to_string() },
            BusError::NoResponders { .. } | BusError::Timeout { .. } => {
                ExecError::AgentGone { host: host.to_string() }
            }
            other => ExecError::Bus(other.to_string()),
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The process exited with this code.
    Exited(i64),
    /// The agent ended it: stopped by the viewer, viewer lost, container died, failed.
    Ended { reason: ExecEndReason, detail: String },
    /// No frame from the agent for this long: the agent or the bus is gone. The agent
    /// kills the process when the keep-alives stop reaching it.
    AgentLost(Duration),
}

impl ExecOutcome {
    pub fn of_end(end: ExecEnd) -> ExecOutcome {
        match (end.reason, end.exit_code) {
            (ExecEndReason::Exited, Some(code)) => ExecOutcome::Exited(code),
            (reason, _) => ExecOutcome::Ended { reason, detail: end.detail },
        }
    }

    /// The exit status a command-line client ends with: the process's own code, or 255 when
    /// the process did not exit by itself (as ssh does).
    pub fn exit_status(&self) -> u8 {
        match self {
            ExecOutcome::Exited(code) => u8::try_from(*code & 0xff).unwrap_or(255),
            _ => 255,
        }
    }

    /// For people; `None` for a process that exited 0.
    pub fn message(&self) -> Option<String> {
        match self {
            ExecOutcome::Exited(0) => None,
            ExecOutcome::Exited(code) => Some(format!("the command exited with {code}")),
            ExecOutcome::Ended { reason: ExecEndReason::ContainerDied, detail } => {
                Some(format!("the container died under the session: {detail}"))
            }
            ExecOutcome::Ended { reason, detail } if detail.is_empty() => {
                Some(format!("the session ended: {}", reason.as_str()))
            }
            ExecOutcome::Ended { reason, detail } => {
                Some(format!("the session ended ({}): {detail}", reason.as_str()))
            }
            ExecOutcome::AgentLost(d) => Some(format!(
                "lost the agent: nothing from it for {} s (the bus or the agent is down)",
                d.as_secs()
            )),
        }
    }
}

/// What the session's channel carries, in order; `End` is the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Out(ExecFd, Vec<u8>),
    /// Frames were lost on the way (a slow viewer): this many.
    Lost(u64),
    End(ExecOutcome),
}

/// The instance `name` names in `fleet` (its id), where it runs, and that it runs.
pub fn find_instance(fleet: &Fleet, name: &str) -> Result<ExecTarget, ExecError> {
    let inst = fleet.instances.get(name).ok_or_else(|| ExecError::NotFound(validate::quoted(name)))?;
    if !matches!(inst.state, InstanceState::Running | InstanceState::Unhealthy) {
        return Err(ExecError::NotRunning {
            instance: inst.id.clone(),
            state: inst.state.as_str().to_string(),
        });
    }
    Ok(ExecTarget { host: inst.host.clone(), instance: inst.id.clone() })
}

/// Sends input, resizes and the stop of one session. Cheap to clone.
#[derive(Clone)]
pub struct ExecControl {
    inner: Arc<Control>,
}

struct Control {
    bus: Arc<dyn Bus>,
    source: String,
    host: String,
    user: String,
    stream: String,
    seq: AtomicU64,
}

impl ExecControl {
    async fn send<T: serde::Serialize>(&self, verb: ExecVerb, body: T) -> Result<(), ExecError> {
        let c = &self.inner;
        let env = Envelope::new(&c.source, body);
        bus::publish(c.bus.as_ref(), &verb.subject(&c.host, &c.user), &env)
            .await
            .map_err(|e| ExecError::of_request(e, &c.user, &c.host))
    }

    /// Bytes for the process's stdin, in chunks within the bound.
    pub async fn input(&self, bytes: &[u8]) -> Result<(), ExecError> {
        for chunk in chunks(bytes) {
            let seq = self.inner.seq.fetch_add(1, Ordering::SeqCst);
            let body =
                ExecInput { stream: self.inner.stream.clone(), seq, data: encode_chunk(chunk), eof: false };
            self.send(ExecVerb::Input, body).await?;
        }
        Ok(())
    }

    /// Closes the process's stdin (`cat` sees its end of file).
    pub async fn close_stdin(&self) -> Result<(), ExecError> {
        let seq = self.inner.seq.fetch_add(1, Ordering::SeqCst);
        let body = ExecInput { stream: self.inner.stream.clone(), seq, data: String::new(), eof: true };
        self.send(ExecVerb::Input, body).await
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), ExecError> {
        self.send(ExecVerb::Resize, ExecResize { stream: self.inner.stream.clone(), cols, rows }).await
    }

    /// Asks the agent to end the session (it kills the process); the end follows on the
    /// events.
    ///
    /// Asked with a reply (the agent answers a publish that carries one), so the stop has
    /// reached the agent when this returns, even when the process ends right after (a
    /// hang-up): a plain publish could still sit in the connection's buffer.
    pub async fn stop(&self) -> Result<(), ExecError> {
        let c = &self.inner;
        let env = Envelope::new(&c.source, ExecRef { stream: c.stream.clone() });
        let subject = ExecVerb::Stop.subject(&c.host, &c.user);
        match bus::request::<_, crate::protocol::AgentAck>(c.bus.as_ref(), &subject, &env, STOP_TIMEOUT).await
        {
            // Ended already: nothing left to stop.
            Ok(_) | Err(RequestError::Refused(_)) => Ok(()),
            Err(e) => Err(ExecError::of_request(e, &c.user, &c.host)),
        }
    }

    async fn keepalive(&self) -> Result<(), ExecError> {
        self.send(ExecVerb::Keepalive, ExecRef { stream: self.inner.stream.clone() }).await
    }
}

/// An open session. Dropping it stops its tasks; the agent then ends the session when the
/// keep-alives stop (call [`ExecControl::stop`] first to end it at once).
pub struct ExecSession {
    pub started: ExecStarted,
    pub events: mpsc::Receiver<ExecEvent>,
    pub control: ExecControl,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for ExecSession {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Opens a session on `target` as the bus's user.
pub async fn open(
    bus: Arc<dyn Bus>,
    source: &str,
    target: &ExecTarget,
    opts: ExecOptions,
) -> Result<ExecSession, ExecError> {
    let user = bus.user();
    let session =
        format!("x{}", crate::protocol::envelope::new_id().replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    let stream = subjects::session_stream(SessionKind::Exec, &user, &session);
    let err_bus = |e: BusError| ExecError::of_bus(e, &user, &target.host);
    let sub = bus.subscribe(&stream).await.map_err(err_bus)?;
    let req = ExecRequest {
        instance: target.instance.clone(),
        cmd: opts.cmd,
        tty: opts.tty,
        cols: opts.cols,
        rows: opts.rows,
        stream: stream.clone(),
    };
    req.check(&user).map_err(|e| ExecError::Refused(WireError::bad_request(e)))?;
    let env = Envelope::new(source, &req);
    let asked = bus::request::<_, ExecStarted>(
        bus.as_ref(),
        &ExecVerb::Start.subject(&target.host, &user),
        &env,
        EXEC_START_TIMEOUT,
    )
    .await;
    let started = match asked {
        Ok(s) => s,
        Err(RequestError::Refused(w)) if w.code == ErrorCode::NotFound => {
            return Err(ExecError::NotFound(format!(
                "{} (the agent on {}: {})",
                target.instance, target.host, w.reason
            )));
        }
        Err(e) => return Err(ExecError::of_request(e, &user, &target.host)),
    };
    let control = ExecControl {
        inner: Arc::new(Control {
            bus: bus.clone(),
            source: source.to_string(),
            host: target.host.clone(),
            user: user.clone(),
            stream,
            seq: AtomicU64::new(0),
        }),
    };
    let (tx, events) = mpsc::channel(EVENTS);
    let reader = tokio::spawn(read_frames(sub, tx));
    let keepalive = tokio::spawn(keep_alive(control.clone()));
    Ok(ExecSession { started, events, control, tasks: [reader, keepalive] })
}

/// Hands the session's frames on as events, in order, saying how many were lost, until
/// its end, the agent's silence, or no one listening.
async fn read_frames(mut sub: crate::bus::Subscription, tx: mpsc::Sender<ExecEvent>) {
    let silent = Duration::from_millis(EXEC_AGENT_SILENT_MS);
    let mut next_seq = 0u64;
    loop {
        let msg = match tokio::time::timeout(silent, sub.next()).await {
            Ok(Some(m)) => m,
            Ok(None) | Err(_) => {
                let _ = tx.send(ExecEvent::End(ExecOutcome::AgentLost(silent))).await;
                return;
            }
        };
        let frame = match decode::<ExecFrame>(&msg.payload) {
            Ok(env) => env.body,
            Err(err) => {
                log::warn!("ignored a bad exec frame: {err}");
                continue;
            }
        };
        let lost = frames_lost(&mut next_seq, frame.seq);
        if lost > 0 && tx.send(ExecEvent::Lost(lost)).await.is_err() {
            return;
        }
        let event = match frame.what {
            ExecPayload::Alive => continue,
            ExecPayload::Out { fd, data } => match decode_chunk(&data) {
                Ok(bytes) => ExecEvent::Out(fd, bytes),
                Err(err) => {
                    log::warn!("ignored a bad exec chunk: {err}");
                    continue;
                }
            },
            ExecPayload::End(end) => {
                let _ = tx.send(ExecEvent::End(ExecOutcome::of_end(end))).await;
                return;
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// Tells the agent the user is still there, every `EXEC_KEEPALIVE_EVERY_MS`.
async fn keep_alive(alive: ExecControl) {
    let mut every = tokio::time::interval(Duration::from_millis(EXEC_KEEPALIVE_EVERY_MS));
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(err) = alive.keepalive().await {
            log::info!("exec keep-alive not sent: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_gives_the_exit_status_a_shell_would() {
        assert_eq!(ExecOutcome::Exited(0).exit_status(), 0);
        assert_eq!(ExecOutcome::Exited(3).exit_status(), 3);
        assert_eq!(ExecOutcome::Exited(256 + 7).exit_status(), 7);
        assert_eq!(ExecOutcome::AgentLost(Duration::from_secs(10)).exit_status(), 255);
        let died = ExecOutcome::of_end(ExecEnd {
            exit_code: None,
            reason: ExecEndReason::ContainerDied,
            detail: "exited 137".into(),
        });
        assert_eq!(died.exit_status(), 255);
        assert!(died.message().unwrap().contains("container died"));
        assert_eq!(ExecOutcome::Exited(0).message(), None);
    }

    #[test]
    fn a_refusal_by_the_server_names_the_grant() {
        let denied = ExecError::of_bus(
            BusError::PermissionDenied { subject: "qd.v1.exec.bob.x".into(), user: "bob".into() },
            "bob",
            "h1",
        );
        assert_eq!(
            denied.to_string(),
            "bob may not exec: ask for the exec grant (quarterdeck auth grant bob exec)"
        );
        let gone = ExecError::of_bus(BusError::NoResponders { subject: "s".into() }, "bob", "h1");
        assert!(gone.to_string().contains("agent on h1"), "{gone}");
    }
}
