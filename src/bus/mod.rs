//! The `Bus` trait: subject-based publish, subscribe and request/reply, with the in-process
//! implementation used by the embedded sandbox. The NATS implementation sits behind the same
//! trait, so every role is written once.

pub mod denied;
mod follow;
mod local;
pub mod nats;
pub mod replicas;
pub mod servers;
mod typed;
pub mod user;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

pub use follow::{EventFeed, Followed};
pub use local::LocalBus;
pub use nats::{EVENT_STREAM, NatsBus, NatsOptions};
pub use typed::{RequestError, command, publish, request, respond};

/// One message as delivered to a subscriber.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    /// Where to send the answer, for requests.
    pub reply: Option<String>,
    pub payload: Bytes,
}

/// A stream of messages matching one subscription pattern. Dropping it unsubscribes.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Message> + Send>>,
}

impl Subscription {
    pub fn new(stream: impl Stream<Item = Message> + Send + 'static) -> Self {
        Subscription { inner: Box::pin(stream) }
    }

    /// The next message, or `None` once the bus has closed the subscription.
    pub async fn next(&mut self) -> Option<Message> {
        futures_util::StreamExt::next(&mut self.inner).await
    }
}

impl Stream for Subscription {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("no answer on {subject} within {timeout:?}")]
    Timeout { subject: String, timeout: Duration },
    #[error("nobody is listening on {subject}")]
    NoResponders { subject: String },
    /// The server refused to let this user publish or subscribe on `subject` (its
    /// permissions, `quarterdeck auth`): said at once, not after a timeout.
    #[error("permission denied on {subject} for user {user}")]
    PermissionDenied { subject: String, user: String },
    #[error("the bus is disconnected: {0}")]
    Disconnected(String),
    /// A first connection that failed (`NatsBus::connect_now`): no server at `url` answered.
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("bus error: {0}")]
    Other(String),
}

/// Whether the bus can carry messages right now. Pruning decisions (stale hosts, lost
/// backends) are suspended while it cannot, since silence then proves nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connected,
    /// Since when (ms since epoch), and why.
    Disconnected {
        since: u64,
        reason: String,
    },
}

impl Connection {
    pub fn is_connected(&self) -> bool {
        matches!(self, Connection::Connected)
    }
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;
    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError>;
    async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<Bytes, BusError>;
    /// The connection state, kept current.
    fn connection(&self) -> watch::Receiver<Connection>;
    /// What the cockpit's header calls this bus: `sandbox`, or the server URL.
    fn describe(&self) -> String;
    /// The largest message payload the bus carries, in bytes: a larger publish fails. The
    /// controller sizes snapshot pages and history answers by it.
    fn max_payload(&self) -> usize;
    /// Who this connection acts as: the user its commands name in their subject
    /// (`qd.v1.ctl.<user>.<verb>`), one subject token. On NATS the user it logs in as
    /// (which, with roles on, is the only name the server lets it publish under), else
    /// the login name.
    fn user(&self) -> String {
        crate::protocol::subjects::token(&user::login_name())
    }
    /// Follows the event history (`qd.v1.evt.>`) from now on, each event once and in
    /// order. On NATS a JetStream consumer on the event stream, which never drops: a reader
    /// that falls behind is late, and told how late (`Followed::pending`). By default, as
    /// on a bus without a history (the sandbox's), a plain subscription.
    async fn follow_events(&self) -> Result<EventFeed, BusError> {
        Ok(EventFeed::from_subscription(self.subscribe(crate::protocol::subjects::EVT_ALL).await?))
    }
}

/// nats-server's default max_payload, assumed while the server has not said otherwise.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
