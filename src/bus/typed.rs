//! Typed helpers over the raw bus: envelopes in, envelopes out, errors that say what failed.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bus, BusError, Message};
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
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    bus: &dyn Bus,
    subject: &str,
    envelope: &Envelope<Req>,
    timeout: Duration,
) -> Result<Resp, RequestError> {
    let bytes = encode(envelope)?;
    let answer = bus.request(subject, Bytes::from(bytes), timeout).await?;
    let reply: Envelope<Reply<Resp>> = decode(&answer)?;
    reply.body.into_result().map_err(RequestError::Refused)
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
