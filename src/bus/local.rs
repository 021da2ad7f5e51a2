//! The in-process bus: the embedded sandbox's stand-in for NATS, with the same subject and
//! wildcard rules and the same slow-consumer behaviour (a full subscriber drops messages).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_stream_shim::ReceiverStream;

use super::{Bus, BusError, Connection, Message, Subscription};
use crate::protocol::subjects::matches;

/// Messages a subscriber may have waiting before the bus drops for it, as NATS does for a
/// slow consumer.
const SUBSCRIBER_BUFFER: usize = 65_536;

struct Sub {
    pattern: String,
    tx: mpsc::Sender<Message>,
}

#[derive(Clone)]
pub struct LocalBus {
    subs: Arc<Mutex<Vec<Sub>>>,
    dropped: Arc<AtomicU64>,
    next_inbox: Arc<AtomicU64>,
    connection: Arc<watch::Sender<Connection>>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    pub fn new() -> Self {
        let (connection, _) = watch::channel(Connection::Connected);
        LocalBus {
            subs: Arc::new(Mutex::new(Vec::new())),
            dropped: Arc::new(AtomicU64::new(0)),
            next_inbox: Arc::new(AtomicU64::new(0)),
            connection: Arc::new(connection),
        }
    }

    /// Messages dropped because a subscriber was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn deliver(&self, msg: Message) -> usize {
        let Ok(mut subs) = self.subs.lock() else { return 0 };
        subs.retain(|s| !s.tx.is_closed());
        let mut delivered = 0;
        for sub in subs.iter().filter(|s| matches(&s.pattern, &msg.subject)) {
            match sub.tx.try_send(msg.clone()) {
                Ok(()) => delivered += 1,
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        delivered
    }

    fn add_sub(&self, pattern: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let mut subs = self.subs.lock().map_err(|_| BusError::Other("bus lock poisoned".into()))?;
        subs.push(Sub { pattern: pattern.to_string(), tx });
        Ok(rx)
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.deliver(Message { subject: subject.to_string(), reply: None, payload });
        Ok(())
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        Ok(Subscription::new(ReceiverStream(self.add_sub(pattern)?)))
    }

    async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<Bytes, BusError> {
        let inbox = format!("_INBOX.{}", self.next_inbox.fetch_add(1, Ordering::Relaxed));
        let mut rx = self.add_sub(&inbox)?;
        let msg = Message { subject: subject.to_string(), reply: Some(inbox), payload };
        if self.deliver(msg) == 0 {
            return Err(BusError::NoResponders { subject: subject.to_string() });
        }
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(answer)) => Ok(answer.payload),
            Ok(None) => Err(BusError::Other("request inbox closed".into())),
            Err(_) => Err(BusError::Timeout { subject: subject.to_string(), timeout }),
        }
    }

    fn connection(&self) -> watch::Receiver<Connection> {
        self.connection.subscribe()
    }

    fn describe(&self) -> String {
        "sandbox".into()
    }

    /// Messages stay in the process, so nothing limits them; large but finite, so the
    /// sizes computed from it cannot overflow.
    fn max_payload(&self) -> usize {
        64 * 1024 * 1024
    }
}

/// A minimal `Stream` over a tokio receiver; saves pulling in tokio-stream for one adapter.
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::sync::mpsc;

    pub struct ReceiverStream<T>(pub mpsc::Receiver<T>);

    impl<T> futures_util::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_reaches_wildcard_subscribers_only() {
        let bus = LocalBus::new();
        let mut all = bus.subscribe("qd.v1.evt.>").await.unwrap();
        let mut hb = bus.subscribe("qd.v1.agent.*.hb").await.unwrap();
        bus.publish("qd.v1.evt.host_up._", Bytes::from_static(b"1")).await.unwrap();
        bus.publish("qd.v1.agent.h1.hb", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(all.next().await.unwrap().payload, Bytes::from_static(b"1"));
        assert_eq!(hb.next().await.unwrap().payload, Bytes::from_static(b"2"));
        assert!(tokio::time::timeout(Duration::from_millis(20), all.next()).await.is_err());
    }

    #[tokio::test]
    async fn the_sandbox_follows_events_with_its_subscription() {
        let bus = LocalBus::new();
        let mut feed = bus.follow_events().await.unwrap();
        bus.publish("qd.v1.evt.host_up._", Bytes::from_static(b"1")).await.unwrap();
        bus.publish("qd.v1.agent.h1.hb", Bytes::from_static(b"hb")).await.unwrap();
        bus.publish("qd.v1.evt.app._", Bytes::from_static(b"2")).await.unwrap();
        for want in [b"1", b"2"] {
            let got = feed.next().await.unwrap().unwrap();
            assert_eq!(got.message.payload, Bytes::from_static(want));
            assert_eq!(got.pending, None, "a subscription cannot tell how late it is");
        }
    }

    #[tokio::test]
    async fn request_gets_reply_or_a_clear_error() {
        let bus = LocalBus::new();
        let err = bus.request("nobody", Bytes::new(), Duration::from_millis(50)).await;
        assert!(matches!(err, Err(BusError::NoResponders { .. })));

        let mut sub = bus.subscribe("echo").await.unwrap();
        let server = bus.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                if let Some(r) = m.reply {
                    server.publish(&r, m.payload).await.unwrap();
                }
            }
        });
        let got = bus.request("echo", Bytes::from_static(b"hi"), Duration::from_secs(1)).await;
        assert_eq!(got.unwrap(), Bytes::from_static(b"hi"));

        let _silent = bus.subscribe("silent").await.unwrap();
        let err = bus.request("silent", Bytes::new(), Duration::from_millis(30)).await;
        assert!(matches!(err, Err(BusError::Timeout { .. })));
    }
}
