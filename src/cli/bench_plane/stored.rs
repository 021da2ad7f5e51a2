//! What the plane keeps in JetStream: the event stream's messages as stored (subject,
//! headers and payload, each counted once) and the state bucket's bytes.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::context::GetStreamErrorKind;
use futures_util::StreamExt;

use crate::bus::NatsBus;
use crate::plane::controller::store::JetStreamConfig;

/// The stream behind a KV bucket, as JetStream names it.
fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// A stream's last sequence and bytes; zeros while it does not exist yet.
async fn state(bus: &NatsBus, stream: &str) -> Result<(u64, u64, u64), String> {
    let js = bus.jetstream();
    match js.get_stream(stream).await {
        Ok(mut s) => {
            let info = s.info().await.map_err(|e| format!("{stream} info: {e}"))?;
            Ok((info.state.last_sequence, info.state.bytes, info.state.messages))
        }
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(err) if err.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                Ok((0, 0, 0))
            }
            _ => Err(format!("{stream}: {e}")),
        },
    }
}

/// The event stream's last sequence now.
pub async fn last_event_seq(bus: &NatsBus) -> Result<u64, String> {
    Ok(state(bus, &JetStreamConfig::default().stream).await?.0)
}

/// Events in the stream now (0 when there is no stream).
pub async fn events_stored(bus: &NatsBus) -> Result<u64, String> {
    Ok(state(bus, &JetStreamConfig::default().stream).await?.2)
}

/// Bytes of the event stream and of the state bucket.
pub async fn bytes(bus: &NatsBus) -> Result<(u64, u64), String> {
    let config = JetStreamConfig::default();
    let events = state(bus, &config.stream).await?.1;
    let kv = state(bus, &kv_stream(&config.bucket)).await?.1;
    Ok((events, kv))
}

/// The stored size of each event from sequence `from` to `to` (both included), read back
/// from the stream in order; stops at `deadline` with what it read.
pub async fn event_sizes(bus: &NatsBus, from: u64, to: u64, deadline: Duration) -> Result<Vec<u64>, String> {
    if from > to {
        return Ok(vec![]);
    }
    let stream_name = JetStreamConfig::default().stream;
    let stream = bus.jetstream().get_stream(&stream_name).await.map_err(|e| format!("{stream_name}: {e}"))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
            ..OrderedConfig::default()
        })
        .await
        .map_err(|e| format!("reading {stream_name}: {e}"))?;
    let mut messages = consumer.messages().await.map_err(|e| format!("reading {stream_name}: {e}"))?;
    let mut sizes = Vec::with_capacity(usize::try_from(to - from + 1).unwrap_or(0).min(4_000_000));
    let read = async {
        while let Some(msg) = messages.next().await {
            let msg = msg.map_err(|e| format!("reading {stream_name}: {e}"))?;
            let seq = msg.info().map_err(|e| format!("reading {stream_name}: {e}"))?.stream_sequence;
            sizes.push(stored_size(&msg.message));
            if seq >= to {
                break;
            }
        }
        Ok::<_, String>(())
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(result) => result?,
        Err(_) => log::warn!(
            "read {} of the {} events in {deadline:?}; sizes are of those",
            sizes.len(),
            to - from + 1
        ),
    }
    Ok(sizes)
}

/// A message's stored size: subject, headers and payload. The client's `length` counts
/// them plus the reply subject the consumer delivered it with, which is not stored.
fn stored_size(msg: &async_nats::Message) -> u64 {
    let reply = msg.reply.as_ref().map_or(0, |r| r.len());
    msg.length.saturating_sub(reply) as u64
}
