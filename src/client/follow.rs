//! The connection to the plane: follow the event history first, then history and
//! snapshot, then stream. Follows afresh and repeats the snapshot after a gap, a new epoch,
//! a broken follow or a reconnect.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;

use crate::bus::{self, Bus, BusError, Connection, EventFeed, Followed, RequestError, Subscription};
use crate::protocol::clock::now_ms;
use crate::protocol::{
    ControllerBeacon, Envelope, Event, Fleet, Heartbeat, HistoryRequest, RouterStatus, decode_body, subjects,
};

/// How long a request to the controller may take to be answered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How much history a client that wants it loads on start.
const HISTORY_WINDOW_MS: u64 = 3_600_000;
/// How much history: what the replica keeps.
const HISTORY_LIMIT: usize = super::EVENTS_KEPT;

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

/// What the follow tells its owner, in the order it happened.
#[derive(Debug, Clone)]
pub enum Feed {
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
    /// Something the operator should know, e.g. the snapshot could not be fetched.
    Problem(String),
}

/// Asks the follow for a fresh snapshot (after a revision gap). Dropping every `Resyncer`
/// ends the follow.
#[derive(Debug, Clone)]
pub struct Resyncer(mpsc::UnboundedSender<()>);

impl Resyncer {
    /// False when the follow has ended.
    pub fn resync(&self) -> bool {
        self.0.send(()).is_ok()
    }
}

/// A follow of its own: its feed, and the way to ask for a fresh snapshot.
pub struct ClientHandle {
    pub resync: Resyncer,
    pub updates: mpsc::Receiver<Feed>,
}

/// Starts following the plane on `bus`; what it learns comes on `updates`.
pub fn spawn(bus: Arc<dyn Bus>, source: String, options: ClientOptions) -> ClientHandle {
    let (update_tx, updates) = mpsc::channel(16_384);
    let resync = spawn_into(bus, source, options, update_tx);
    ClientHandle { resync, updates }
}

/// Starts following into a channel of the owner's own messages, so a client that has
/// more to say (the cockpit's command results) shares one ordered channel with the feed.
pub fn spawn_into<U>(
    bus: Arc<dyn Bus>,
    source: String,
    options: ClientOptions,
    updates: mpsc::Sender<U>,
) -> Resyncer
where
    U: From<Feed> + Send + 'static,
{
    let (resync, resyncs) = mpsc::unbounded_channel();
    tokio::spawn(run(bus, source, options, resyncs, updates));
    Resyncer(resync)
}

/// The next message of an optional subscription; never, when there is none.
async fn next_of(sub: &mut Option<Subscription>) -> Option<bus::Message> {
    match sub {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Where the follow sends: the owner's channel, each `Feed` converted on the way.
struct Out<U>(mpsc::Sender<U>);

impl<U: From<Feed>> Out<U> {
    /// False when the owner has gone.
    async fn send(&self, feed: Feed) -> bool {
        self.0.send(U::from(feed)).await.is_ok()
    }
}

async fn run<U: From<Feed>>(
    bus: Arc<dyn Bus>,
    source: String,
    options: ClientOptions,
    mut resyncs: mpsc::UnboundedReceiver<()>,
    updates: mpsc::Sender<U>,
) {
    let out = Out(updates);
    let (mut beacons, mut heartbeats, mut routers) =
        match subscribe_all(bus.as_ref(), options.heartbeats).await {
            Ok(subs) => subs,
            Err(err) => {
                out.send(Feed::Problem(format!("cannot subscribe: {err}"))).await;
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
    follow.start(bus.as_ref(), &out).await;
    if options.history {
        fetch_history(bus.as_ref(), &source, &out).await;
    }
    let mut want_snapshot = true;
    let mut retry = tokio::time::interval(Duration::from_secs(2));
    loop {
        if want_snapshot {
            // Follow first, then ask for the snapshot: nothing committed between the two
            // is missed, and what the snapshot already holds is skipped by its revision.
            want_snapshot = !(follow.start(bus.as_ref(), &out).await
                && fetch_snapshot(bus.as_ref(), &source, &out).await);
        }
        tokio::select! {
            Some(got) = follow.next() => {
                if !follow.forward(got, &out).await { return; }
                // A burst is forwarded without a trip round the select for each event.
                if !follow.forward_ready(&out).await { return; }
                // The follow broke: a fresh follow and a fresh snapshot.
                want_snapshot |= follow.broken();
            },
            Some(msg) = next_of(&mut routers) => {
                if !hand_on(&msg, "router status", &out, |b: RouterStatus| Feed::Router(Box::new(b))).await { return; }
            },
            Some(msg) = next_of(&mut heartbeats) => {
                if !hand_on(&msg, "heartbeat", &out, |b: Heartbeat| Feed::Heartbeat(Box::new(b))).await { return; }
            },
            Some(msg) = beacons.next() => {
                if !hand_on_beacon(msg, &mut beacons, &mut follow, &out).await { return; }
                want_snapshot |= follow.broken();
            },
            resync = resyncs.recv() => match resync {
                None => return,
                Some(()) => {
                    follow.stop();
                    want_snapshot = true;
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
                if !out.send(Feed::Connection(state)).await { return; }
            },
            _ = retry.tick(), if want_snapshot => {}
        }
    }
}

/// The broadcasts a follow listens to beside the events: the controller's beacons, and
/// (for a cockpit) the agents' heartbeats and the routers' status.
type Broadcasts = (Subscription, Option<Subscription>, Option<Subscription>);

async fn subscribe_all(bus: &dyn Bus, heartbeats: bool) -> Result<Broadcasts, BusError> {
    let beacons = bus.subscribe(subjects::CONTROLLER_HB).await?;
    if !heartbeats {
        return Ok((beacons, None, None));
    }
    let hb = bus.subscribe(subjects::HB_ALL).await?;
    let routers = bus.subscribe(subjects::ROUTER_STATUS_ALL).await?;
    Ok((beacons, Some(hb), Some(routers)))
}

/// A broadcast decoded and handed on; one that does not decode is logged and skipped.
/// False when the owner has gone.
async fn hand_on<T: serde::de::DeserializeOwned, U: From<Feed>>(
    msg: &bus::Message,
    what: &str,
    out: &Out<U>,
    feed: impl FnOnce(T) -> Feed,
) -> bool {
    match decode_body::<T>(&msg.payload) {
        Ok(body) => out.send(feed(body)).await,
        Err(err) => {
            log::warn!("ignored a bad {what} on {}: {err}", msg.subject);
            true
        }
    }
}

/// The newest of the beacons waiting, handed on after the events already here. Beacons
/// that waited behind a busy client are one: only the newest says anything, and two
/// handed on together would look like a period with no event, as if the replica had lost
/// one. A beacon is judged against what came before it: one handed on ahead of events
/// that were waiting would make a late replica look lost, or ahead of the controller.
async fn hand_on_beacon<U: From<Feed>>(
    mut msg: bus::Message,
    beacons: &mut Subscription,
    follow: &mut Follow,
    out: &Out<U>,
) -> bool {
    while let Some(Some(newer)) = beacons.next().now_or_never() {
        msg = newer;
    }
    follow.forward_ready(out).await
        && hand_on(&msg, "controller beacon", out, |b: ControllerBeacon| Feed::Beacon(b.revision)).await
}

/// Events handed on in one go before the other subscriptions get a turn.
const EVENT_BURST: usize = 256;

/// The follow of the event history (`Bus::follow_events`), made again for each fresh
/// snapshot, and what it last said of the events still waiting.
#[derive(Default)]
struct Follow {
    feed: Option<EventFeed>,
    /// The pending count of the last event forwarded, and the last one told to the owner.
    pending: Option<u64>,
    told: Option<u64>,
}

impl Follow {
    /// Starts following, unless already following. False (and the owner told why) when
    /// the bus cannot follow now; the caller tries again.
    async fn start<U: From<Feed>>(&mut self, bus: &dyn Bus, out: &Out<U>) -> bool {
        if self.feed.is_some() {
            return true;
        }
        match bus.follow_events().await {
            Ok(feed) => {
                self.feed = Some(feed);
                // A new follow starts at the head of the history: nothing is pending, and
                // the snapshot that follows tells the owner so.
                (self.pending, self.told) = (None, None);
                true
            }
            Err(err) => {
                out.send(Feed::Problem(format!("{err}; retrying"))).await;
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
    async fn next(&mut self) -> Option<Result<Followed, BusError>> {
        match &mut self.feed {
            Some(feed) => match feed.next().await {
                Some(got) => Some(got),
                None => Some(Err(BusError::Other("the event follow ended".into()))),
            },
            None => std::future::pending().await,
        }
    }

    /// Decodes one event and hands it on; a broken follow is stopped. False when the owner
    /// has gone.
    async fn forward<U: From<Feed>>(&mut self, got: Result<Followed, BusError>, out: &Out<U>) -> bool {
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
            Ok(event) => out.send(Feed::Event(event)).await,
            Err(err) => {
                log::warn!("ignored a bad event on {}: {err}", followed.message.subject);
                true
            }
        }
    }

    /// Forwards the events already received, up to a burst, then their pending count.
    /// False when the owner has gone.
    async fn forward_ready<U: From<Feed>>(&mut self, out: &Out<U>) -> bool {
        for _ in 0..EVENT_BURST {
            match self.next().now_or_never() {
                Some(Some(got)) => {
                    if !self.forward(got, out).await {
                        return false;
                    }
                }
                _ => break,
            }
        }
        self.report_pending(out).await
    }

    /// Tells the owner how many events wait behind the last one forwarded, when that
    /// changed: once per burst, after its events, so the count is true when it applies.
    async fn report_pending<U: From<Feed>>(&mut self, out: &Out<U>) -> bool {
        if self.pending == self.told || self.pending.is_none() {
            return true;
        }
        self.told = self.pending;
        out.send(Feed::Pending(self.pending.unwrap_or_default())).await
    }
}

async fn fetch_history<U: From<Feed>>(bus: &dyn Bus, source: &str, out: &Out<U>) {
    let req = HistoryRequest {
        since_ts: Some(now_ms().saturating_sub(HISTORY_WINDOW_MS)),
        limit: Some(HISTORY_LIMIT),
    };
    let got: Result<Vec<Event>, RequestError> =
        bus::request(bus, subjects::CTL_HISTORY, &Envelope::new(source, req), REQUEST_TIMEOUT).await;
    match got {
        Ok(history) => {
            out.send(Feed::History(history)).await;
        }
        Err(err) => log::info!("no event history: {err}"),
    }
}

/// Returns whether the snapshot arrived.
async fn fetch_snapshot<U: From<Feed>>(bus: &dyn Bus, source: &str, out: &Out<U>) -> bool {
    match super::snapshot::fetch_fleet(bus, source, REQUEST_TIMEOUT).await {
        Ok(fleet) => out.send(Feed::Snapshot(fleet)).await,
        Err(err) => {
            out.send(Feed::Problem(format!("snapshot failed: {err}; retrying"))).await;
            false
        }
    }
}
