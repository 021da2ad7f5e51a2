//! The cockpit's side of the plane: the shared follow (`crate::client`) feeds the replica,
//! and beside it this task carries out what the app asks: commands with the operator's
//! identity and timeouts, log streams, uploads, and the `whoami` probe.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::error::{CommandError, refuse_unless_live};
use crate::bus::{self, Bus, RequestError};
use crate::client::{self, ClientOptions, Feed, Resyncer};
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::CtlVerb;
use crate::protocol::{
    Accepted, ControlCommand, Envelope, ForwardStart, LogsStart, Operator, TimelineExport, UploadRequest,
    WhoAmI,
};

/// How long a command may take to be accepted or refused.
pub const COMMAND_TIMEOUT: Duration = client::REQUEST_TIMEOUT;

/// What the app asks of the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendRequest {
    /// Take a fresh snapshot (after a revision gap).
    Resync,
    Send(ControlCommand),
    /// Stream an instance's logs (a read: allowed in read-only mode too), beside the
    /// streams already open: an app's merged view has one per instance.
    Logs(LogsStart),
    /// The logs view closed: every open stream stops.
    LogsStop,
    /// Put an artifact file in the repository (the wizard, before its deploy).
    Upload(UploadRequest),
    /// Start a port-forward; refused in read-only mode.
    Forward(ForwardStart),
    /// Stop the port-forward of this session.
    ForwardStop(u64),
    /// An app's releases (a read: allowed in read-only mode, and to viewers).
    Releases(String),
    /// The handover timeline to a file (a read: allowed in read-only mode).
    Export(TimelineExport),
}

/// What the backend tells the app: the follow's `Feed`, in the order it happened, and the
/// answers to what the app asked.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// What the follow learnt of the plane: a new kind of news is a new `Feed` variant.
    Feed(Feed),
    CommandDone {
        what: String,
        result: Result<Accepted, CommandError>,
    },
    /// Whether this user may send commands, as the `whoami` probe found (at the start
    /// and after each reconnect): the user the controller saw, or the server's refusal
    /// (`CommandError::Denied`: a viewer). Sent only when the probe got an answer.
    MayAct(Result<String, CommandError>),
    /// An `Upload` ended.
    Uploaded {
        path: std::path::PathBuf,
        result: Result<super::upload::Uploaded, CommandError>,
    },
    /// News of the log stream numbered `session`.
    Logs {
        session: u64,
        event: super::logs::LogsEvent,
    },
    /// News of the port-forward numbered `session`.
    Forward {
        session: u64,
        event: super::forward::ForwardEvent,
    },
    /// The answer to `Releases`.
    Releases {
        app: String,
        result: Result<crate::protocol::release::ReleaseList, CommandError>,
    },
    /// An `Export` ended: the file written and its number of entries, or why not.
    Exported {
        path: std::path::PathBuf,
        result: Result<usize, String>,
    },
}

impl From<Feed> for Inbound {
    fn from(feed: Feed) -> Self {
        Inbound::Feed(feed)
    }
}

pub struct BackendHandle {
    pub commands: mpsc::UnboundedSender<BackendRequest>,
    pub updates: mpsc::Receiver<Inbound>,
    /// Exec sessions on the same bus (the event loop opens and runs them).
    pub exec: super::ExecOpener,
    /// The task that carries out `commands`; it owns the follow, the log streams and the
    /// forwards, which all end when it does.
    pub task: tokio::task::JoinHandle<()>,
}

/// How long `shutdown` waits for the backend's task to end before it is aborted.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

impl BackendHandle {
    /// Stops this backend for good and waits for it (mini-redis's owned shutdown): closing
    /// `commands` ends its task, and with it the follow (its `Resyncer`), every log stream
    /// and forward (their stops are dropped); what it had not yet delivered is dropped
    /// with `updates`. Used when the cockpit switches to another plane, so nothing of the
    /// old one reaches the app afterwards.
    pub async fn shutdown(self) {
        let BackendHandle { commands, updates, exec, task } = self;
        drop((commands, updates, exec));
        let abort = task.abort_handle();
        if tokio::time::timeout(SHUTDOWN_WAIT, task).await.is_err() {
            log::warn!("the old plane's backend did not stop in {SHUTDOWN_WAIT:?}: aborted");
            abort.abort();
        }
    }
}

/// Starts the backend task for a bus.
pub fn spawn(bus: Arc<dyn Bus>, source: String) -> BackendHandle {
    spawn_with(bus, source, ClientOptions::default())
}

/// A backend following what `options` asks for, without the `whoami` probe.
pub fn spawn_with(bus: Arc<dyn Bus>, source: String, options: ClientOptions) -> BackendHandle {
    spawn_full(bus, source, options, Identity::default(), false)
}

/// Who the cockpit's commands come from, and whether it may send any at all.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Carried on every command's envelope, for the controller's audit trail.
    pub operator: Option<Operator>,
    /// Read-only: no command ever leaves the backend, whatever the app asks.
    pub read_only: bool,
    /// Where the wizard's artifacts are uploaded.
    pub repository: Option<super::upload::RepoSource>,
}

/// The cockpit's backend: everything, with the operator's identity on each command.
pub fn spawn_cockpit(bus: Arc<dyn Bus>, source: String, identity: Identity) -> BackendHandle {
    // Ask, at the start and after each reconnect, whether this user may send commands
    // (`whoami`): a cockpit that may not acts read-only before anything is tried. A
    // cockpit started read-only has nothing to learn.
    let probe = !identity.read_only;
    spawn_full(bus, source, ClientOptions::default(), identity, probe)
}

fn spawn_full(
    bus: Arc<dyn Bus>,
    source: String,
    options: ClientOptions,
    identity: Identity,
    probe: bool,
) -> BackendHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (update_tx, updates) = mpsc::channel(16_384);
    let resync = client::spawn_into(bus.clone(), source.clone(), options, update_tx.clone());
    let exec = super::ExecOpener::new(bus.clone(), source.clone());
    let backend = Backend {
        bus,
        source,
        identity,
        probe,
        resync,
        updates: update_tx,
        logs_stop: Vec::new(),
        forwards: Default::default(),
    };
    let task = tokio::spawn(backend.run(command_rx));
    BackendHandle { commands, updates, exec, task }
}

/// The task that carries out the app's commands.
struct Backend {
    bus: Arc<dyn Bus>,
    source: String,
    identity: Identity,
    probe: bool,
    resync: Resyncer,
    updates: mpsc::Sender<Inbound>,
    /// The open log streams' stops (one for an instance's view, one per instance for an
    /// app's merged view); dropping one stops its stream too.
    logs_stop: Vec<tokio::sync::oneshot::Sender<()>>,
    /// Each running port-forward's stop, by session; dropping it stops the forward too.
    forwards: std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>,
}

impl Backend {
    /// Runs until the app drops its end; the follow ends with it (its `Resyncer` goes).
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<BackendRequest>) {
        let mut connection = self.bus.connection();
        if connection.borrow_and_update().is_connected() {
            self.probe_may_act();
        }
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(cmd) => {
                        let live = refuse_unless_live(&connection.borrow(), now_ms());
                        if !self.carry_out(cmd, live).await { return; }
                    }
                },
                changed = connection.changed() => {
                    if changed.is_err() { return; }
                    // Connected again (or at last): permissions may have changed meanwhile.
                    if connection.borrow_and_update().is_connected() {
                        self.probe_may_act();
                    }
                },
            }
        }
    }

    /// One command; `live` says whether the bus is connected now. False when the app has
    /// gone.
    async fn carry_out(&mut self, cmd: BackendRequest, live: Result<(), CommandError>) -> bool {
        let (bus, source) = (self.bus.clone(), self.source.clone());
        match cmd {
            BackendRequest::Resync => self.resync.resync(),
            BackendRequest::Logs(start) => {
                let (stop, stopped) = tokio::sync::oneshot::channel();
                // Streams that ended by themselves (their receiver is gone) are forgotten.
                self.logs_stop.retain(|s| !s.is_closed());
                self.logs_stop.push(stop);
                tokio::spawn(super::logs::session(bus, source, start, stopped, self.updates.clone()));
                true
            }
            BackendRequest::LogsStop => {
                for old in self.logs_stop.drain(..) {
                    let _ = old.send(());
                }
                true
            }
            // The last line of defence of read-only mode: the app refuses first, and
            // whatever reaches here anyway is answered without touching the bus.
            BackendRequest::Send(c) if self.identity.read_only => {
                self.tell(Inbound::CommandDone { what: c.describe(), result: Err(CommandError::ReadOnly) })
                    .await
            }
            // A forward acts on an instance: read-only refuses it like a command.
            BackendRequest::Forward(start) if self.identity.read_only => {
                let event = super::forward::ForwardEvent::Refused(CommandError::ReadOnly);
                self.tell(Inbound::Forward { session: start.session, event }).await
            }
            BackendRequest::Forward(start) => {
                let (stop, stopped) = tokio::sync::oneshot::channel();
                self.forwards.insert(start.session, stop);
                tokio::spawn(super::forward::session(bus, source, start, stopped, self.updates.clone()));
                true
            }
            BackendRequest::ForwardStop(session) => {
                if let Some(stop) = self.forwards.remove(&session) {
                    let _ = stop.send(());
                }
                true
            }
            BackendRequest::Releases(app) => {
                tokio::spawn(fetch_releases(
                    bus,
                    source,
                    self.identity.operator.clone(),
                    app,
                    self.updates.clone(),
                ));
                true
            }
            BackendRequest::Export(req) => {
                tokio::spawn(super::export::export(bus, source, req, self.updates.clone()));
                true
            }
            BackendRequest::Upload(req) if self.identity.read_only => {
                self.tell(Inbound::Uploaded { path: req.path, result: Err(CommandError::ReadOnly) }).await
            }
            BackendRequest::Upload(req) => {
                let (operator, repo) = (self.identity.operator.clone(), self.identity.repository.clone());
                tokio::spawn(super::upload::session(bus, source, operator, repo, req, self.updates.clone()));
                true
            }
            // Checked here, not by the app alone: the app's view of the connection may be
            // one update behind.
            BackendRequest::Send(c) => match live {
                Ok(()) => {
                    let operator = self.identity.operator.clone();
                    tokio::spawn(send_command(bus, source, operator, c, self.updates.clone()));
                    true
                }
                Err(not_live) => {
                    log::warn!("not sent: {}: {not_live}", c.describe());
                    self.tell(Inbound::CommandDone { what: c.describe(), result: Err(not_live) }).await
                }
            },
        }
    }

    async fn tell(&self, update: Inbound) -> bool {
        self.updates.send(update).await.is_ok()
    }

    fn probe_may_act(&self) {
        if self.probe {
            let operator = self.identity.operator.clone();
            tokio::spawn(probe_may_act(
                self.bus.clone(),
                self.source.clone(),
                operator,
                self.updates.clone(),
            ));
        }
    }
}

async fn send_command(
    bus: Arc<dyn Bus>,
    source: String,
    operator: Option<Operator>,
    cmd: ControlCommand,
    updates: mpsc::Sender<Inbound>,
) {
    let what = cmd.describe();
    let bus = bus.as_ref();
    let result: Result<Accepted, RequestError> = match &cmd {
        ControlCommand::Deploy(r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::Restart(r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::Route(_, r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::Host(_, r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::Rollback(r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::Scale(r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::AlertAck(r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::AlertSilence(r) => send(bus, cmd.verb(), &source, operator, r).await,
        ControlCommand::Note(r) => send(bus, cmd.verb(), &source, operator, r).await,
    };
    let result = result.map_err(CommandError::from);
    let _ = updates.send(Inbound::CommandDone { what, result }).await;
}

/// An app's releases, for its detail pane.
async fn fetch_releases(
    bus: Arc<dyn Bus>,
    source: String,
    operator: Option<Operator>,
    app: String,
    updates: mpsc::Sender<Inbound>,
) {
    let req = crate::protocol::release::ReleasesRequest { app: app.clone() };
    let env = Envelope::new(&source, req).with_operator(operator);
    let result = bus::command(bus.as_ref(), CtlVerb::Releases, &env, COMMAND_TIMEOUT).await;
    let _ = updates.send(Inbound::Releases { app, result: result.map_err(CommandError::from) }).await;
}

/// Asks the controller who this connection is (`whoami`), a command only a user allowed to
/// act may send: the server refuses a viewer's. No answer (no controller yet, a timeout)
/// tells nothing, and nothing is sent to the app.
async fn probe_may_act(
    bus: Arc<dyn Bus>,
    source: String,
    operator: Option<Operator>,
    updates: mpsc::Sender<Inbound>,
) {
    let env = Envelope::new(&source, ()).with_operator(operator);
    let answer: Result<WhoAmI, RequestError> =
        bus::command(bus.as_ref(), CtlVerb::Whoami, &env, COMMAND_TIMEOUT).await;
    let may_act = match answer.map_err(CommandError::from) {
        Ok(me) => Ok(me.user),
        Err(denied @ CommandError::Denied { .. }) => Err(denied),
        Err(other) => {
            log::info!("cannot tell whether this user may act: {other}");
            return;
        }
    };
    let _ = updates.send(Inbound::MayAct(may_act)).await;
}

async fn send<T: serde::Serialize>(
    bus: &dyn Bus,
    verb: CtlVerb,
    source: &str,
    operator: Option<Operator>,
    body: &T,
) -> Result<Accepted, RequestError> {
    let env = Envelope::new(source, body).with_operator(operator);
    bus::command(bus, verb, &env, COMMAND_TIMEOUT).await
}
