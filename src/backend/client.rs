//! The connection to the plane: follow the event history first, then history and
//! snapshot, then stream. Follows afresh and repeats the snapshot after a gap, a new epoch,
//! a broken follow or a reconnect.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;

use crate::bus::{self, Bus, Connection, EventFeed, Followed, RequestError, Subscription};
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::CtlVerb;
use crate::protocol::{
    Accepted, ControllerBeacon, DeployRequest, Envelope, Event, Fleet, Heartbeat, HistoryRequest, Operator,
    RestartBody, RestartRequest, RouteRequest, RouterStatus, WireError, decode_body, subjects,
};

/// How long a command may take to be accepted or refused.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How much history the cockpit loads on start.
const HISTORY_WINDOW_MS: u64 = 3_600_000;

pub use crate::protocol::subjects::RouteVerb;

/// A command for the controller.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlCommand {
    Deploy(Box<DeployRequest>),
    /// A restart target and its batch size.
    Restart(RestartBody),
    Route(RouteVerb, RouteRequest),
}

impl ControlCommand {
    /// A short description for the status line and logs.
    pub fn describe(&self) -> String {
        match self {
            ControlCommand::Deploy(r) => format!("deploy {}@{} x{}", r.app, r.version, r.instances),
            ControlCommand::Restart(body) => {
                let target = match &body.target {
                    RestartRequest::Instance(i) => format!("instance {i}"),
                    RestartRequest::App(a) => format!("app {a}"),
                    RestartRequest::Host(h) => format!("host {h}"),
                    RestartRequest::Instances(ids) => format!("{} marked instances", ids.len()),
                };
                match body.batch {
                    Some(b) if b > 1 => format!("restart {target} ({b} at a time)"),
                    _ => format!("restart {target}"),
                }
            }
            ControlCommand::Route(RouteVerb::Weight, r) => {
                format!("route weight {} {} {}", r.app, r.backend, r.weight.unwrap_or(1))
            }
            ControlCommand::Route(v, r) => format!("route {} {} {}", v.word(), r.app, r.backend),
        }
    }
}

/// What the app asks of the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Take a fresh snapshot (after a revision gap).
    Resync,
    Send(ControlCommand),
    /// Stream an instance's logs (a read: allowed in read-only mode too). Ends the
    /// previous stream: one stream per viewer.
    Logs(super::logs::LogsStart),
    /// The logs view closed.
    LogsStop,
    /// Put an artifact file in the repository (the wizard, before its deploy).
    Upload(super::upload::UploadRequest),
}

/// Why a command was not accepted. `NotLive` and `ReadOnly` mean it never left the
/// cockpit; the others that it was sent and failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The bus connection is down: a command sent now could sit in the client library's
    /// buffer and run long after the operator was told it failed. Says why, e.g.
    /// `bus disconnected for 12s`.
    #[error("not live ({0}), not sent")]
    NotLive(String),
    #[error("read-only: the cockpit sends no commands")]
    ReadOnly,
    /// The controller's refusal (`expired` among them).
    #[error("{}", .0.reason)]
    Refused(WireError),
    /// No answer, nobody listening, or an answer that did not decode.
    #[error("{0}")]
    Failed(String),
}

impl From<RequestError> for CommandError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Refused(w) => CommandError::Refused(w),
            other => CommandError::Failed(other.to_string()),
        }
    }
}

/// Whether a command may leave now: only while the bus is connected. The one check, so the
/// backend never sends on a connection it knows is down.
pub fn refuse_unless_live(connection: &Connection, now: u64) -> Result<(), CommandError> {
    match connection {
        Connection::Connected => Ok(()),
        Connection::Disconnected { since, reason } => {
            let secs = now.saturating_sub(*since) / 1000;
            Err(CommandError::NotLive(format!("bus {reason} for {secs}s")))
        }
    }
}

/// What the backend tells the app, in the order it happened.
#[derive(Debug, Clone)]
pub enum Update {
    Snapshot(Fleet),
    History(Vec<Event>),
    Event(Event),
    Heartbeat(Box<Heartbeat>),
    /// The active controller's revision, sent every heartbeat period.
    Beacon(u64),
    /// How many events the history held after the last `Event` before this one, as the
    /// follow counted them: how far behind the replica is. Sent when it changes, and only
    /// by a bus that can tell (NATS).
    Pending(u64),
    /// A router's status: what it has applied.
    Router(Box<RouterStatus>),
    Connection(Connection),
    CommandDone {
        what: String,
        result: Result<Accepted, CommandError>,
    },
    /// An `Upload` ended.
    Uploaded {
        path: std::path::PathBuf,
        result: Result<super::upload::Uploaded, String>,
    },
    /// Something the operator should know, e.g. the snapshot could not be fetched.
    Problem(String),
    /// News of the log stream numbered `session`.
    Logs {
        session: u64,
        event: super::logs::LogsEvent,
    },
}

pub struct BackendHandle {
    pub commands: mpsc::UnboundedSender<Command>,
    pub updates: mpsc::Receiver<Update>,
}

/// Starts the backend task for a bus.
pub fn spawn(bus: Arc<dyn Bus>, source: String) -> BackendHandle {
    spawn_with(bus, source, ClientOptions::default())
}

/// What a client wants besides the state: the cockpit wants everything; the router only
/// the route table.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Load the last hour of events at start.
    pub history: bool,
    /// Follow heartbeats (metrics) and router statuses.
    pub heartbeats: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { history: true, heartbeats: true }
    }
}

pub fn spawn_with(bus: Arc<dyn Bus>, source: String, options: ClientOptions) -> BackendHandle {
    spawn_full(bus, source, options, Identity::default())
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
    spawn_full(bus, source, ClientOptions::default(), identity)
}

fn spawn_full(
    bus: Arc<dyn Bus>,
    source: String,
    options: ClientOptions,
    identity: Identity,
) -> BackendHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (update_tx, updates) = mpsc::channel(16_384);
    tokio::spawn(run(bus, source, options, identity, command_rx, update_tx));
    BackendHandle { commands, updates }
}

/// The next message of an optional subscription; never, when there is none.
async fn next_of(sub: &mut Option<Subscription>) -> Option<crate::bus::Message> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn run(
    bus: Arc<dyn Bus>,
    source: String,
    options: ClientOptions,
    identity: Identity,
    mut commands: mpsc::UnboundedReceiver<Command>,
    updates: mpsc::Sender<Update>,
) {
    let subscribed = async {
        let beacons = bus.subscribe(subjects::CONTROLLER_HB).await?;
        let (heartbeats, routers) = match options.heartbeats {
            true => (
                Some(bus.subscribe(subjects::HB_ALL).await?),
                Some(bus.subscribe(subjects::ROUTER_STATUS_ALL).await?),
            ),
            false => (None, None),
        };
        Ok::<_, crate::bus::BusError>((beacons, heartbeats, routers))
    };
    let (mut beacons, mut heartbeats, mut routers) = match subscribed.await {
        Ok(subs) => subs,
        Err(err) => {
            let _ = updates.send(Update::Problem(format!("cannot subscribe: {err}"))).await;
            return;
        }
    };
    let mut connection = bus.connection();
    // The buses notify real changes only, so `Connected` after the bus was seen connected
    // is a reconnect (even when the `Disconnected` between was coalesced); before that it
    // is the first connection, which the first snapshot already covers.
    let mut seen_connected = connection.borrow_and_update().is_connected();
    let mut follow = Follow::default();
    // Following first, then the history: an event committed between the two is in both,
    // and the replica keeps it once.
    follow.start(bus.as_ref(), &updates).await;
    if options.history {
        fetch_history(bus.as_ref(), &source, &updates).await;
    }
    let mut want_snapshot = true;
    // The open log stream's stop; dropping it stops the stream too.
    let mut logs_stop: Option<tokio::sync::oneshot::Sender<()>> = None;
    let mut retry = tokio::time::interval(Duration::from_secs(2));
    loop {
        if want_snapshot {
            // Follow first, then ask for the snapshot: nothing committed between the two
            // is missed, and what the snapshot already holds is skipped by its revision.
            want_snapshot = !(follow.start(bus.as_ref(), &updates).await
                && fetch_snapshot(bus.as_ref(), &source, &updates).await);
        }
        tokio::select! {
            Some(got) = follow.next() => {
                if !follow.forward(got, &updates).await { return; }
                // A burst is forwarded without a trip round the select for each event.
                if !follow.forward_ready(&updates).await { return; }
                // The follow broke: a fresh follow and a fresh snapshot.
                want_snapshot |= follow.broken();
            },
            Some(msg) = next_of(&mut routers) => match decode_body::<RouterStatus>(&msg.payload) {
                Ok(body) => {
                    if updates.send(Update::Router(Box::new(body))).await.is_err() { return; }
                }
                Err(err) => log::warn!("ignored a bad router status: {err}"),
            },
            Some(msg) = next_of(&mut heartbeats) => match decode_body::<Heartbeat>(&msg.payload) {
                Ok(body) => {
                    if updates.send(Update::Heartbeat(Box::new(body))).await.is_err() { return; }
                }
                Err(err) => log::warn!("ignored a bad heartbeat on {}: {err}", msg.subject),
            },
            Some(mut msg) = beacons.next() => {
                // Beacons that waited behind a busy backend are one: only the newest says
                // anything, and two handed on together would look like a period with no
                // event, as if the replica had lost one.
                while let Some(Some(newer)) = beacons.next().now_or_never() {
                    msg = newer;
                }
                // The events already here go first: a beacon is judged against what came
                // before it, and one handed on ahead of events that were waiting would make
                // a late replica look lost, or ahead of the controller.
                if !follow.forward_ready(&updates).await { return; }
                want_snapshot |= follow.broken();
                match decode_body::<ControllerBeacon>(&msg.payload) {
                    Ok(body) => {
                        if updates.send(Update::Beacon(body.revision)).await.is_err() { return; }
                    }
                    Err(err) => log::warn!("ignored a bad controller beacon: {err}"),
                }
            },
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Resync) => {
                    follow.stop();
                    want_snapshot = true;
                }
                Some(Command::Logs(start)) => {
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    if let Some(old) = logs_stop.replace(stop) {
                        let _ = old.send(());
                    }
                    tokio::spawn(super::logs::session(bus.clone(), source.clone(), start, stopped, updates.clone()));
                }
                Some(Command::LogsStop) => {
                    if let Some(old) = logs_stop.take() {
                        let _ = old.send(());
                    }
                }
                // The last line of defence of read-only mode: the app refuses first, and
                // whatever reaches here anyway is answered without touching the bus.
                Some(Command::Send(c)) if identity.read_only => {
                    let refused = Update::CommandDone { what: c.describe(), result: Err(CommandError::ReadOnly) };
                    if updates.send(refused).await.is_err() { return; }
                }
                Some(Command::Upload(req)) if identity.read_only => {
                    let refused = Update::Uploaded {
                        path: req.path,
                        result: Err("read-only: the cockpit uploads nothing".into()),
                    };
                    if updates.send(refused).await.is_err() { return; }
                }
                Some(Command::Upload(req)) => {
                    let (operator, repo) = (identity.operator.clone(), identity.repository.clone());
                    tokio::spawn(super::upload::session(bus.clone(), source.clone(), operator, repo, req, updates.clone()));
                }
                Some(Command::Send(c)) => {
                    // Checked here, not by the app alone: the app's view of the connection
                    // may be one update behind.
                    let live = refuse_unless_live(&connection.borrow(), now_ms());
                    match live {
                        Ok(()) => {
                            let operator = identity.operator.clone();
                            tokio::spawn(send_command(bus.clone(), source.clone(), operator, c, updates.clone()));
                        }
                        Err(not_live) => {
                            log::warn!("not sent: {}: {not_live}", c.describe());
                            let refused = Update::CommandDone { what: c.describe(), result: Err(not_live) };
                            if updates.send(refused).await.is_err() { return; }
                        }
                    }
                }
            },
            changed = connection.changed() => {
                if changed.is_err() { return; }
                let state = connection.borrow_and_update().clone();
                // After every reconnect the replica starts again from a fresh follow and a
                // fresh snapshot.
                if state.is_connected() && seen_connected {
                    follow.stop();
                    want_snapshot = true;
                }
                seen_connected |= state.is_connected();
                if updates.send(Update::Connection(state)).await.is_err() { return; }
            },
            _ = retry.tick(), if want_snapshot => {}
        }
    }
}

/// Events handed on in one go before the other subscriptions get a turn.
const EVENT_BURST: usize = 256;

/// The follow of the event history (`Bus::follow_events`), made again for each fresh
/// snapshot, and what it last said of the events still waiting.
#[derive(Default)]
struct Follow {
    feed: Option<EventFeed>,
    /// The pending count of the last event forwarded, and the last one told to the app.
    pending: Option<u64>,
    told: Option<u64>,
}

impl Follow {
    /// Starts following, unless already following. False (and the app told why) when the
    /// bus cannot follow now; the caller tries again.
    async fn start(&mut self, bus: &dyn Bus, updates: &mpsc::Sender<Update>) -> bool {
        if self.feed.is_some() {
            return true;
        }
        match bus.follow_events().await {
            Ok(feed) => {
                self.feed = Some(feed);
                // A new follow starts at the head of the history: nothing is pending, and
                // the snapshot that follows tells the app so.
                (self.pending, self.told) = (None, None);
                true
            }
            Err(err) => {
                let _ = updates.send(Update::Problem(format!("{err}; retrying"))).await;
                false
            }
        }
    }

    fn stop(&mut self) {
        self.feed = None;
    }

    fn broken(&self) -> bool {
        self.feed.is_none()
    }

    /// The next message; never, while not following.
    async fn next(&mut self) -> Option<Result<Followed, crate::bus::BusError>> {
        match &mut self.feed {
            Some(feed) => match feed.next().await {
                Some(got) => Some(got),
                None => Some(Err(crate::bus::BusError::Other("the event follow ended".into()))),
            },
            None => std::future::pending().await,
        }
    }

    /// Decodes one event and hands it to the app; a broken follow is stopped. False when
    /// the app has gone.
    async fn forward(
        &mut self,
        got: Result<Followed, crate::bus::BusError>,
        updates: &mpsc::Sender<Update>,
    ) -> bool {
        let followed = match got {
            Ok(followed) => followed,
            Err(err) => {
                log::warn!("{err}: following again from a fresh snapshot");
                self.stop();
                return true;
            }
        };
        self.pending = followed.pending;
        match decode_body::<Event>(&followed.message.payload) {
            Ok(event) => updates.send(Update::Event(event)).await.is_ok(),
            Err(err) => {
                log::warn!("ignored a bad event on {}: {err}", followed.message.subject);
                true
            }
        }
    }

    /// Forwards the events already received, up to a burst, then their pending count.
    /// False when the app has gone.
    async fn forward_ready(&mut self, updates: &mpsc::Sender<Update>) -> bool {
        for _ in 0..EVENT_BURST {
            match self.next().now_or_never() {
                Some(Some(got)) => {
                    if !self.forward(got, updates).await {
                        return false;
                    }
                }
                _ => break,
            }
        }
        self.report_pending(updates).await
    }

    /// Tells the app how many events wait behind the last one forwarded, when that
    /// changed: once per burst, after its events, so the count is true when it applies.
    async fn report_pending(&mut self, updates: &mpsc::Sender<Update>) -> bool {
        if self.pending == self.told || self.pending.is_none() {
            return true;
        }
        self.told = self.pending;
        updates.send(Update::Pending(self.pending.unwrap_or_default())).await.is_ok()
    }
}

async fn fetch_history(bus: &dyn Bus, source: &str, updates: &mpsc::Sender<Update>) {
    let req = HistoryRequest {
        since_ts: Some(now_ms().saturating_sub(HISTORY_WINDOW_MS)),
        limit: Some(super::EVENTS_KEPT),
    };
    let got: Result<Vec<Event>, RequestError> =
        bus::request(bus, subjects::CTL_HISTORY, &Envelope::new(source, req), COMMAND_TIMEOUT).await;
    match got {
        Ok(history) => {
            let _ = updates.send(Update::History(history)).await;
        }
        Err(err) => log::info!("no event history: {err}"),
    }
}

/// Returns whether the snapshot arrived.
async fn fetch_snapshot(bus: &dyn Bus, source: &str, updates: &mpsc::Sender<Update>) -> bool {
    match super::snapshot::fetch_fleet(bus, source, COMMAND_TIMEOUT).await {
        Ok(fleet) => updates.send(Update::Snapshot(fleet)).await.is_ok(),
        Err(err) => {
            let _ = updates.send(Update::Problem(format!("snapshot failed: {err}; retrying"))).await;
            false
        }
    }
}

async fn send_command(
    bus: Arc<dyn Bus>,
    source: String,
    operator: Option<Operator>,
    cmd: ControlCommand,
    updates: mpsc::Sender<Update>,
) {
    let what = cmd.describe();
    let bus = bus.as_ref();
    let result: Result<Accepted, RequestError> = match &cmd {
        ControlCommand::Deploy(r) => send(bus, CtlVerb::Deploy, &source, operator, r).await,
        ControlCommand::Restart(r) => send(bus, CtlVerb::Restart, &source, operator, r).await,
        ControlCommand::Route(verb, r) => send(bus, CtlVerb::Route(*verb), &source, operator, r).await,
    };
    let result = result.map_err(CommandError::from);
    let _ = updates.send(Update::CommandDone { what, result }).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_leave_only_while_the_bus_is_connected() {
        assert_eq!(refuse_unless_live(&Connection::Connected, 5_000), Ok(()));
        let down = Connection::Disconnected { since: 1_000, reason: "disconnected".into() };
        let err = refuse_unless_live(&down, 13_500).unwrap_err();
        assert_eq!(err, CommandError::NotLive("bus disconnected for 12s".into()));
        assert_eq!(err.to_string(), "not live (bus disconnected for 12s), not sent");
    }
}
