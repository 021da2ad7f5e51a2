//! The cockpit's side of a log stream: subscribe to our own `qd.v1.logs.<user>.<viewer
//! id>`, ask the instance's agent (`qd.v1.agent.<host>.logs.<user>.start`), forward the
//! batches to the app, send a keep-alive every 5 s, and a stop when the view closes. The
//! user is the connection's (`Bus::user`): with roles on, the server lets it subscribe to
//! and ask for its own streams only.
//!
//! Both ends are covered: the stop ends the stream at once when the viewer closes
//! normally; the keep-alive ends it on the agent when the viewer cannot say so (the
//! cockpit was killed, its SSH session or the bus connection dropped), since a stop that
//! is never sent would otherwise leave the agent reading Docker logs forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::client::{COMMAND_TIMEOUT, Inbound};
use super::error::CommandError;
use crate::bus::{self, Bus};
use crate::protocol::subjects::{self, LOGS_KEEPALIVE_EVERY_MS, LogsVerb};
use crate::protocol::{AgentAck, Envelope, LogBatch, LogsRequest, LogsStart, LogsStreamRef, decode};

/// What happened to a log stream.
#[derive(Debug, Clone, PartialEq)]
pub enum LogsEvent {
    /// The agent accepted; lines follow.
    Streaming,
    /// The stream could not start: the agent refused, did not answer, or this user may
    /// not subscribe to its stream.
    Refused(CommandError),
    Batch(LogBatch),
}

/// Runs one stream until it ends or `stop` fires (or its sender is dropped). The
/// cockpit's backend runs one per instance its view shows; `ctl logs` one per instance
/// it prints.
pub async fn session(
    bus: Arc<dyn Bus>,
    source: String,
    start: LogsStart,
    mut stop: oneshot::Receiver<()>,
    updates: mpsc::Sender<Inbound>,
) {
    let session = start.session;
    let send = |event: LogsEvent| {
        let updates = updates.clone();
        async move { updates.send(Inbound::Logs { session, event }).await.is_ok() }
    };
    let user = bus.user();
    let viewer = format!("v{}", crate::protocol::envelope::new_id());
    let stream = subjects::logs_stream(&user, &viewer);
    let mut sub = match bus.subscribe(&stream).await {
        Ok(s) => s,
        Err(err) => {
            send(LogsEvent::Refused(CommandError::from(err))).await;
            return;
        }
    };
    let req = LogsRequest {
        instance: start.instance.clone(),
        tail: start.tail,
        follow: start.follow,
        stream,
        since: start.since,
    };
    let cmd = subjects::logs_request(&start.host, &user, LogsVerb::Start);
    let envelope = Envelope::new(&source, &req);
    let asked = bus::request::<_, AgentAck>(bus.as_ref(), &cmd, &envelope, COMMAND_TIMEOUT);
    let answer = tokio::select! {
        a = asked => a,
        _ = &mut stop => {
            stop_stream(bus.as_ref(), &source, &start.host, &user, &req.stream).await;
            return;
        }
    };
    match answer {
        Ok(_) => {
            if !send(LogsEvent::Streaming).await {
                stop_stream(bus.as_ref(), &source, &start.host, &user, &req.stream).await;
                return;
            }
        }
        Err(err) => {
            send(LogsEvent::Refused(CommandError::from(err))).await;
            return;
        }
    }
    let keepalive_subject = subjects::logs_request(&start.host, &user, LogsVerb::Keepalive);
    let reference = LogsStreamRef { stream: req.stream.clone() };
    let followed =
        follow(bus.as_ref(), &source, &keepalive_subject, &reference, &mut sub, &mut stop, send).await;
    if followed == Followed::Stopped {
        stop_stream(bus.as_ref(), &source, &start.host, &user, &req.stream).await;
    }
}

/// How following a started stream ended.
#[derive(Debug, PartialEq, Eq)]
enum Followed {
    /// The stream (or its subscription) ended: nothing to stop.
    Ended,
    /// The viewer stopped, or no one listens any more: the agent is to be told.
    Stopped,
}

/// Hands the stream's batches on and keeps it alive until it ends or is stopped.
async fn follow<F, Fut>(
    bus: &dyn Bus,
    source: &str,
    keepalive_subject: &str,
    reference: &LogsStreamRef,
    sub: &mut bus::Subscription,
    stop: &mut oneshot::Receiver<()>,
    send: F,
) -> Followed
where
    F: Fn(LogsEvent) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut keepalive = tokio::time::interval(Duration::from_millis(LOGS_KEEPALIVE_EVERY_MS));
    keepalive.tick().await;
    loop {
        tokio::select! {
            msg = sub.next() => {
                let Some(msg) = msg else { return Followed::Ended };
                match decode::<LogBatch>(&msg.payload) {
                    Ok(env) => {
                        let ended = env.body.end.is_some();
                        if !send(LogsEvent::Batch(env.body)).await {
                            return Followed::Stopped;
                        }
                        if ended {
                            return Followed::Ended;
                        }
                    }
                    Err(err) => log::warn!("ignored a bad log batch: {err}"),
                }
            }
            _ = keepalive.tick() => {
                let env = Envelope::new(source, reference);
                if let Err(err) = bus::publish(bus, keepalive_subject, &env).await {
                    log::info!("log keep-alive not sent: {err}");
                }
            }
            _ = &mut *stop => return Followed::Stopped,
        }
    }
}

async fn stop_stream(bus: &dyn Bus, source: &str, host: &str, user: &str, stream: &str) {
    let env = Envelope::new(source, LogsStreamRef { stream: stream.to_string() });
    let subject = subjects::logs_request(host, user, LogsVerb::Stop);
    if let Err(err) = bus::publish(bus, &subject, &env).await {
        log::info!("log stop not sent (the agent's keep-alive timeout ends the stream): {err}");
    }
}
