//! Typed helpers over the raw bus: envelopes in, envelopes out, errors that say what failed.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bus, BusError, Message};
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::{self, CtlVerb};
use crate::protocol::{Envelope, ProtocolError, Reply, WireError, decode, encode};

#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("bad answer: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("refused: {0}")]
    Refused(WireError),
}

/// Publishes one envelope.
pub async fn publish<T: Serialize>(
    bus: &dyn Bus,
    subject: &str,
    envelope: &Envelope<T>,
) -> Result<(), RequestError> {
    let bytes = encode(envelope)?;
    bus.publish(subject, Bytes::from(bytes)).await?;
    Ok(())
}

/// Sends a request and decodes the `Reply` body, turning a refusal into `Refused`.
///
/// The one place every command gets its deadline: now plus `timeout`, the moment this
/// sender stops waiting. A client library may hold a publish while it is disconnected and
/// send it on reconnect, long after the caller was told it failed; the receiver refuses it
/// then (`expired`) instead of running it.
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    bus: &dyn Bus,
    subject: &str,
    envelope: &Envelope<Req>,
    timeout: Duration,
) -> Result<Resp, RequestError> {
    let bytes = encode(&envelope.stamped(deadline_after(timeout)))?;
    let answer = bus.request(subject, Bytes::from(bytes), timeout).await?;
    let reply: Envelope<Reply<Resp>> = decode(&answer)?;
    reply.body.into_result().map_err(RequestError::Refused)
}

/// Sends an operator command to the controller under this connection's user
/// (`qd.v1.ctl.<user>.<verb>`, [`Bus::user`]): the one place a command's subject is made.
pub async fn command<Req: Serialize, Resp: DeserializeOwned>(
    bus: &dyn Bus,
    verb: CtlVerb,
    envelope: &Envelope<Req>,
    timeout: Duration,
) -> Result<Resp, RequestError> {
    request(bus, &subjects::command(&bus.user(), verb), envelope, timeout).await
}

/// The deadline of a request sent now that waits `timeout` for its answer.
pub fn deadline_after(timeout: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// Answers a request message, if it asked for an answer.
pub async fn respond<T: Serialize>(
    bus: &dyn Bus,
    msg: &Message,
    source: &str,
    reply: &Reply<T>,
) -> Result<(), RequestError> {
    let Some(to) = &msg.reply else { return Ok(()) };
    publish(bus, to, &Envelope::new(source, reply)).await
}
