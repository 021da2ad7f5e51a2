//! The `Bus` over a real nats-server (async-nats), plus the JetStream handles the controller
//! and `ctl` use for durable state and event history. Reconnects forever with backoff and
//! logs every connection event.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::denied::{self, Denials, Refused, Violation};
use super::{Bus, BusError, Connection, Message, Subscription};
use crate::protocol::clock::now_ms;

/// How to reach and authenticate to the NATS server.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// One server URL, or the nodes of a cluster separated by commas.
    pub url: String,
    pub creds: Option<PathBuf>,
    /// An NKey user seed file (`quarterdeck auth`).
    pub nkey: Option<PathBuf>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Who this process is, for the server's connection list: `controller`, `agent/h1`.
    pub name: String,
}

/// The JetStream stream that holds the event history, unless told otherwise: the
/// controller stores its events there and replicas follow it.
pub const EVENT_STREAM: &str = "QD_EVENTS";

/// The messages a subscription may hold before the client counts it a slow consumer.
const SUBSCRIPTION_CAPACITY: usize = 262_144;

/// Tells the watchers only of a real change: `connect` and the client's own `Connected`
/// event both report the first connection, and a second notice would make every client
/// take a needless fresh snapshot right after its first.
fn set_state(tx: &watch::Sender<Connection>, state: Connection) {
    tx.send_if_modified(|current| {
        let changed = *current != state;
        *current = state;
        changed
    });
}

#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    url: String,
    connection: Arc<watch::Sender<Connection>>,
    slow_consumers: Arc<AtomicU64>,
    /// The stream `follow_events` follows.
    event_stream: Arc<str>,
    /// Who this connection acts as ([`Bus::user`]).
    user: Arc<str>,
    /// The server's refusals, for the request or subscription each one refused.
    denials: Denials,
    /// Where this connection's answers come (`_INBOX`, or the NKey user's own).
    inbox_prefix: Arc<str>,
}

/// How long a new subscription listens for the server's refusal once the server has
/// answered the ping sent behind it (see `refused_by_now`). Every subscription that is
/// not refused waits this long.
const SUBSCRIBE_REFUSAL_GRACE: Duration = Duration::from_millis(5);
/// How long a new subscription waits for that answer before it takes the subscription
/// as made (the refusal, if any, is still logged).
const SUBSCRIBE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

impl NatsBus {
    /// Connects, waiting for the server if it is not up yet: the services, which come up
    /// in any order. Errors only for bad options (unreadable credentials, a malformed URL,
    /// TLS files that don't load).
    pub async fn connect(opts: &NatsOptions) -> Result<NatsBus, BusError> {
        Self::open(opts, FirstConnect::Retry).await
    }

    /// Connects now or says why not (`cannot connect to nats://...: connection refused`),
    /// after one try of each server in the list: for ctl and the cockpit, whose user waits
    /// and would otherwise see `reconnecting` forever for a mistyped `--nats`. Once
    /// connected it reconnects forever, as `connect` does.
    pub async fn connect_now(opts: &NatsOptions) -> Result<NatsBus, BusError> {
        Self::open(opts, FirstConnect::Required).await
    }

    async fn open(opts: &NatsOptions, first: FirstConnect) -> Result<NatsBus, BusError> {
        let (tx, _) =
            watch::channel(Connection::Disconnected { since: now_ms(), reason: "connecting".into() });
        let connection = Arc::new(tx);
        let slow_consumers = Arc::new(AtomicU64::new(0));
        let user: Arc<str> = opts.acting_user().into();
        let denials = Denials::default();
        let sink = EventSink {
            state: connection.clone(),
            slow: slow_consumers.clone(),
            url: opts.url.clone(),
            who: opts.name.clone(),
            acting: user.clone(),
            refusals: denials.clone(),
        };
        let mut options = async_nats::ConnectOptions::new().name(&opts.name);
        if first == FirstConnect::Retry {
            options = options.retry_on_initial_connect();
        }
        options = options
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)))
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .reconnect_delay_callback(|attempts| {
                // 100 ms, doubling, capped at 2 s: an on-call cockpit must come back quickly
                // after a server restart, and one connect attempt per 2 s costs the server
                // nothing.
                Duration::from_millis(100u64.saturating_mul(1 << attempts.min(5))).min(Duration::from_secs(2))
            })
            .event_callback(move |event| {
                let sink = sink.clone();
                async move { sink.handle(event) }
            });
        let (options, inbox_prefix) = authenticated(options, opts).await?;
        let servers = super::servers::parse_list(&opts.url).map_err(BusError::Other)?;
        let client = options.connect(servers).await.map_err(|e| connect_failure(&opts.url, &e))?;
        if client.connection_state() == async_nats::connection::State::Connected {
            set_state(&connection, Connection::Connected);
        }
        Ok(NatsBus {
            client,
            url: opts.url.clone(),
            connection,
            slow_consumers,
            event_stream: EVENT_STREAM.into(),
            user,
            denials,
            inbox_prefix: inbox_prefix.into(),
        })
    }

    /// Follows the event history in the stream `name` instead of `EVENT_STREAM`.
    pub fn with_event_stream(mut self, name: &str) -> NatsBus {
        self.event_stream = name.into();
        self
    }

    /// The stream `follow_events` follows.
    pub fn event_stream(&self) -> &str {
        &self.event_stream
    }

    /// Slow-consumer reports so far: messages the client dropped for a full subscription.
    pub fn slow_consumers(&self) -> u64 {
        self.slow_consumers.load(Ordering::Relaxed)
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client.clone())
    }

    fn denied(&self, violation: Violation) -> BusError {
        violation.denied(&self.user)
    }

    /// Whether a refused subscription is the one this connection's answers come on: a
    /// request then gets no answer, however long it waits.
    fn is_own_inbox(&self, pattern: &str) -> bool {
        pattern.strip_prefix(&*self.inbox_prefix).is_some_and(|rest| rest.starts_with('.'))
    }

    /// Whether the server answered a ping sent now, while connected: whatever it had to say
    /// of what was sent before, it has said.
    async fn pinged(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
            && matches!(tokio::time::timeout(SUBSCRIBE_FLUSH_TIMEOUT, self.client.flush()).await, Ok(Ok(())))
    }

    /// Waits until the server has seen everything published so far.
    pub async fn flush(&self) -> Result<(), BusError> {
        self.client.flush().await.map_err(|e| BusError::Disconnected(e.to_string()))
    }
}

/// Whether `connect` returns before the first connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstConnect {
    /// Return at once and connect in the background, retrying forever.
    Retry,
    /// Try each server once; fail with the reason if none answers.
    Required,
}

/// Why the first connection failed, in the words of the system call when there is one
/// (`connection refused`, not the client's `IO error: Connection refused (os error 111)`).
fn connect_failure(url: &str, e: &async_nats::ConnectError) -> BusError {
    use async_nats::ConnectErrorKind as Kind;
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let reason = match (e.kind(), io) {
        (Kind::Io, Some(io)) if io.kind() != std::io::ErrorKind::Other => io.kind().to_string(),
        (Kind::TimedOut, _) => "timed out: nothing answered as a NATS server".into(),
        _ => e.to_string(),
    };
    BusError::Unreachable { url: url.to_string(), reason }
}

/// The refusal `this` names, when the server sent it before its answer to a flush that has
/// returned: the client put it in its event queue before it handled that answer, and woke
/// its event task then, which runs while this task waits. The grace, then a few turns
/// given to the other tasks, cover a machine too busy to run it at once.
async fn refused_by_now(
    refusals: &mut denied::Listener,
    this: impl Fn(&Violation) -> bool + Copy,
) -> Option<Violation> {
    if let Ok(violation) = tokio::time::timeout(SUBSCRIBE_REFUSAL_GRACE, refusals.refused(this)).await {
        return Some(violation);
    }
    for _ in 0..3 {
        tokio::task::yield_now().await;
        if let Some(violation) = refusals.already(this) {
            return Some(violation);
        }
    }
    None
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.client
            .publish(subject.to_string(), payload)
            .await
            .map_err(|e| BusError::Disconnected(e.to_string()))
    }

    /// A subscription the server refuses fails here, when the server says so before its
    /// answer to a ping sent behind the subscription (while connected). Otherwise the
    /// refusal, which the server may send at any time, is logged as it comes.
    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        let mut refusals = self.denials.listen();
        let sub = self
            .client
            .subscribe(pattern.to_string())
            .await
            .map_err(|e| BusError::Other(format!("cannot subscribe to {pattern}: {e}")))?;
        let this = |v: &Violation| v.refused == Refused::Subscribe && v.subject == pattern;
        if self.pinged().await
            && let Some(violation) = refused_by_now(&mut refusals, this).await
        {
            return Err(self.denied(violation));
        }
        Ok(Subscription::new(sub.map(|m| Message {
            subject: m.subject.to_string(),
            reply: m.reply.map(|r| r.to_string()),
            payload: m.payload,
        })))
    }

    async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<Bytes, BusError> {
        use async_nats::client::RequestErrorKind;
        let request = async_nats::Request::new().payload(payload).timeout(Some(timeout));
        // Listening from before the send: the server's refusal ends the wait at once.
        let mut refusals = self.denials.listen();
        let refused = refusals.refused(|v| match v.refused {
            Refused::Publish => v.subject == subject,
            Refused::Subscribe => self.is_own_inbox(&v.subject),
        });
        let answer = tokio::select! {
            answer = self.client.send_request(subject.to_string(), request) => answer,
            violation = refused => return Err(self.denied(violation)),
        };
        match answer {
            Ok(msg) => Ok(msg.payload),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::TimedOut => BusError::Timeout { subject: subject.to_string(), timeout },
                RequestErrorKind::NoResponders => BusError::NoResponders { subject: subject.to_string() },
                _ => BusError::Other(format!("request on {subject}: {e}")),
            }),
        }
    }

    fn connection(&self) -> watch::Receiver<Connection> {
        self.connection.subscribe()
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    /// What the server said in its INFO (it can differ after a reconnect to another
    /// server). Before the first INFO the client reports 0: assume the server default.
    fn max_payload(&self) -> usize {
        match self.client.server_info().max_payload {
            0 => super::DEFAULT_MAX_PAYLOAD,
            n => n,
        }
    }

    fn user(&self) -> String {
        self.user.to_string()
    }

    async fn follow_events(&self) -> Result<super::EventFeed, BusError> {
        super::follow::follow_stream(&self.jetstream(), &self.event_stream).await
    }
}
/// Where the client's events go: the link state, the count of slow-consumer drops, and
/// the server's permission refusals.
#[derive(Clone)]
struct EventSink {
    state: Arc<watch::Sender<Connection>>,
    slow: Arc<AtomicU64>,
    url: String,
    who: String,
    acting: Arc<str>,
    refusals: Denials,
}

impl EventSink {
    fn handle(&self, event: async_nats::Event) {
        let (who, url) = (&self.who, &self.url);
        match event {
            async_nats::Event::Connected => {
                log::info!("{who}: connected to {url}");
                set_state(&self.state, Connection::Connected);
            }
            async_nats::Event::Disconnected => {
                log::warn!("{who}: disconnected from {url}; reconnecting");
                self.state.send_replace(Connection::Disconnected {
                    since: now_ms(),
                    reason: "disconnected".into(),
                });
            }
            async_nats::Event::Closed => {
                log::info!("{who}: connection to {url} closed");
                self.state
                    .send_replace(Connection::Disconnected { since: now_ms(), reason: "closed".into() });
            }
            // One per message the client dropped because a subscription was full (the
            // events channel may drop some of these reports too).
            async_nats::Event::SlowConsumer(sid) => {
                // Logged at 1, 2, 4, 8 ...: a flood of drops must not flood the log.
                let n = self.slow.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    log::warn!(
                        "{who}: NATS subscription {sid} is a slow consumer: {n} messages dropped so far"
                    );
                }
            }
            async_nats::Event::ServerError(async_nats::ServerError::Other(error)) => {
                self.refusals.server_error(who, &self.acting, &error)
            }
            other => log::warn!("{who}: NATS {other}"),
        }
    }
}

/// The connection's credentials and TLS from the flags, and the inbox prefix its answers
/// come to (an NKey user's own, which only it may read).
async fn authenticated(
    mut options: async_nats::ConnectOptions,
    opts: &NatsOptions,
) -> Result<(async_nats::ConnectOptions, String), BusError> {
    if let Some(creds) = &opts.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| BusError::Other(format!("cannot read credentials {}: {e}", creds.display())))?;
    }
    let mut inbox_prefix = "_INBOX".to_string();
    if let Some(file) = &opts.nkey {
        let (seed, public_key) = crate::auth::files::public_key_of(file).map_err(BusError::Other)?;
        inbox_prefix = crate::auth::roles::inbox_prefix(&public_key);
        options = options.nkey(seed).custom_inbox_prefix(inbox_prefix.clone());
    }
    match (&opts.user, &opts.password) {
        (Some(u), Some(p)) => options = options.user_and_password(u.clone(), p.clone()),
        (None, None) => {}
        _ => return Err(BusError::Other("--user and --password go together".into())),
    }
    if let Some(t) = &opts.token {
        options = options.token(t.clone());
    }
    if let Some(ca) = &opts.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&opts.tls_cert, &opts.tls_key) {
        (Some(c), Some(k)) => {
            options = options.add_client_certificate(c.clone(), k.clone()).require_tls(true)
        }
        (None, None) => {}
        _ => return Err(BusError::Other("--tls-cert and --tls-key go together".into())),
    }
    Ok((options, inbox_prefix))
}
