//! Following the event history without loss. A core subscription drops what a slow
//! reader cannot take (NATS counts it a slow consumer); a JetStream consumer on the event
//! stream only delivers what the reader asks for, so a flood makes the reader late, never
//! lossy. The sandbox's bus has no history: it follows with its subscription.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};

use super::{BusError, Message, Subscription};

/// One event message, and how many more the history held after it when it was delivered.
#[derive(Debug, Clone)]
pub struct Followed {
    pub message: Message,
    /// Messages still waiting in the history after this one (the consumer's pending
    /// count); `None` where the bus cannot tell (a plain subscription).
    pub pending: Option<u64>,
}

/// The event history from the moment `Bus::follow_events` returned, in order. An error
/// means the follow broke (the consumer was lost and could not be made again, or it
/// delivered history it was not asked for): the follower must start again, with a fresh
/// follow and a fresh snapshot. Dropping it stops the follow.
pub struct EventFeed {
    inner: Pin<Box<dyn Stream<Item = Result<Followed, BusError>> + Send>>,
}

impl EventFeed {
    pub fn new(stream: impl Stream<Item = Result<Followed, BusError>> + Send + 'static) -> Self {
        EventFeed { inner: Box::pin(stream) }
    }

    /// A plain subscription as a feed: every message, with no pending count.
    pub fn from_subscription(sub: Subscription) -> Self {
        EventFeed::new(sub.map(|message| Ok(Followed { message, pending: None })))
    }

    /// The next message; `None` once the feed has ended.
    pub async fn next(&mut self) -> Option<Result<Followed, BusError>> {
        self.inner.next().await
    }
}

impl Stream for EventFeed {
    type Item = Result<Followed, BusError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Follows the stream `name` through an ordered pull consumer that starts after the
/// stream's last message: what is published from now on, in order, each message once.
/// The consumer pulls a batch at a time, so the client holds at most a batch or two while
/// its reader is busy (JetStream's flow control is the backpressure), and the ordered
/// consumer makes itself again, from the last sequence it delivered, when it loses its
/// place (a reconnect, missed heartbeats).
pub(super) async fn follow_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> Result<EventFeed, BusError> {
    use async_nats::jetstream::consumer::DeliverPolicy;
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    let missing =
        |e: &dyn std::fmt::Display| BusError::Other(format!("cannot follow the event stream {name}: {e}"));
    // The stream's state comes with it, as of now: before the consumer is made.
    let stream = js.get_stream(name).await.map_err(|e| missing(&e))?;
    // Everything below this sequence was there before the follow began: delivering it
    // would mean the consumer lost its place and started over from the stream's start (the
    // ordered consumer does so when it is made again before it delivered anything), or the
    // stream itself went back (a restored store). Either way the follower starts again.
    let start = stream.cached_info().state.last_sequence + 1;
    let consumer = stream
        .create_consumer(OrderedConfig { deliver_policy: DeliverPolicy::New, ..Default::default() })
        .await
        .map_err(|e| missing(&e))?;
    let messages = consumer.messages().await.map_err(|e| missing(&e))?;
    let name = name.to_string();
    Ok(EventFeed::new(messages.map(move |got| {
        let msg = got.map_err(|e| BusError::Other(format!("the follow of {name} broke: {e}")))?;
        let info =
            msg.info().map_err(|e| BusError::Other(format!("a message of {name} without its place: {e}")))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence < start {
            return Err(BusError::Other(format!(
                "the follow of {name} delivered sequence {sequence}, from before its start at {start}"
            )));
        }
        let message = Message { subject: msg.subject.to_string(), reply: None, payload: msg.payload.clone() };
        Ok(Followed { message, pending: Some(pending) })
    })))
}
