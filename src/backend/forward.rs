//! The cockpit's port-forwards (`F`): each runs the shared forwarder (`client::forward`)
//! in a task of its own until the app stops it (or goes), and tells the app where it
//! listens and what happens to its connections.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::client::Inbound;
use super::error::CommandError;
use crate::bus::Bus;
use crate::client::forward::{self, ForwardNews, StartError, Target};
use crate::protocol::ForwardStart;

/// What happened to a port-forward.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardEvent {
    /// It listens here.
    Listening(SocketAddr),
    /// It could not start: the server refused this user, or the port could not be had.
    Refused(CommandError),
    /// One of its connections.
    News(ForwardNews),
}

/// Runs one forward until `stop` fires or its sender is dropped.
pub(super) async fn session(
    bus: Arc<dyn Bus>,
    source: String,
    start: ForwardStart,
    stop: oneshot::Receiver<()>,
    updates: mpsc::Sender<Inbound>,
) {
    let session = start.session;
    let tell = |event: ForwardEvent| {
        let updates = updates.clone();
        async move { updates.send(Inbound::Forward { session, event }).await.is_ok() }
    };
    let target = Target { host: start.host, instance: start.instance, port: start.port };
    let (news_tx, mut news) = mpsc::channel(64);
    let fwd = match forward::start(bus, source, target, 0, news_tx).await {
        Ok(f) => f,
        Err(e) => {
            let err = match e {
                StartError::Bus(e) => CommandError::from(e),
                StartError::Listen(why) => CommandError::Failed(why),
            };
            tell(ForwardEvent::Refused(err)).await;
            return;
        }
    };
    if !tell(ForwardEvent::Listening(fwd.local)).await {
        return;
    }
    tokio::pin!(stop);
    loop {
        tokio::select! {
            n = news.recv() => match n {
                Some(n) => if !tell(ForwardEvent::News(n)).await { break },
                None => break,
            },
            _ = &mut stop => break,
        }
    }
    // Dropping the forwarder closes the listener and each tunnel, with a close to the agent.
    drop(fwd);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::{BackendRequest, Identity, spawn_cockpit};
    use crate::bus::LocalBus;

    /// The backend's own read-only gate: a forward that reaches it anyway is refused
    /// without listening or touching the bus.
    #[tokio::test]
    async fn a_read_only_backend_refuses_a_forward_without_listening() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let identity = Identity { read_only: true, ..Identity::default() };
        let mut handle = spawn_cockpit(bus, "cockpit/test".into(), identity);
        let start = ForwardStart { session: 7, host: "h1".into(), instance: "web-0-abcd".into(), port: 8080 };
        handle.commands.send(BackendRequest::Forward(start)).expect("backend open");
        let event = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match handle.updates.recv().await {
                    Some(Inbound::Forward { session: 7, event }) => break event,
                    Some(_) => continue,
                    None => panic!("the backend ended"),
                }
            }
        })
        .await
        .expect("an answer");
        assert_eq!(event, ForwardEvent::Refused(CommandError::ReadOnly));
    }
}
