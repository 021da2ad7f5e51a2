//! The envelope `{v, id, ts, source, body}` and its (de)serialisation.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use super::clock::now_ms;
use super::messages::{ErrorCode, WireError};
use super::{OLDEST_READABLE_VERSION, PROTOCOL_VERSION};

/// Every message on the bus. `id` doubles as the command id for idempotency: sending the
/// same id twice to the controller or an agent gives the first result again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    pub id: String,
    pub ts: u64,
    pub source: String,
    pub body: T,
    /// Who sent a command, when the client says (cockpit and ctl do). Written only when
    /// present, so every other message keeps exactly the five keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<super::audit::Operator>,
    /// On commands: the time (ms since the epoch) after which the sender has given up on
    /// an answer, so the command must not run. `bus::request` stamps it from its timeout.
    /// Absent on every other message and from older senders, which have no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
}

impl<T> Envelope<T> {
    /// A fresh envelope with a new random id, stamped now.
    pub fn new(source: impl Into<String>, body: T) -> Self {
        Self::with_id(new_id(), source, body)
    }

    /// An envelope with a chosen id, for retries that must be recognised as the same command.
    pub fn with_id(id: impl Into<String>, source: impl Into<String>, body: T) -> Self {
        Envelope {
            v: PROTOCOL_VERSION,
            id: id.into(),
            ts: now_ms(),
            source: source.into(),
            body,
            operator: None,
            deadline: None,
        }
    }

    /// The same envelope, carrying the operator's identity.
    pub fn with_operator(mut self, operator: Option<super::audit::Operator>) -> Self {
        self.operator = operator;
        self
    }

    /// This envelope as it goes out with `deadline` (ms since the epoch), borrowing the
    /// body. A deadline already set and earlier is kept: a sender never extends one.
    pub fn stamped(&self, deadline: u64) -> Envelope<&T> {
        Envelope {
            v: self.v,
            id: self.id.clone(),
            ts: self.ts,
            source: self.source.clone(),
            body: &self.body,
            operator: self.operator.clone(),
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
        }
    }

    /// Refuses a command that arrives after its deadline, with `expired`. `now` is the
    /// receiver's clock (ms since the epoch); there is no allowance for skew, so sender and
    /// receiver clocks must agree (NTP): a receiver whose clock runs ahead refuses early,
    /// never runs late. Without a deadline (an older sender) nothing expires.
    pub fn check_deadline(&self, now: u64) -> Result<(), WireError> {
        check_deadline(self.deadline, now)
    }
}

/// See [`Envelope::check_deadline`]; for receivers that read the deadline on its own.
pub fn check_deadline(deadline: Option<u64>, now: u64) -> Result<(), WireError> {
    match deadline {
        Some(d) if now > d => Err(WireError::new(
            ErrorCode::Expired,
            format!("arrived {} ms after its deadline: the sender had given up; not run", now - d),
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(
        "unsupported protocol version {found} (this build speaks v{PROTOCOL_VERSION}, reads v{OLDEST_READABLE_VERSION} to v{PROTOCOL_VERSION})"
    )]
    UnsupportedVersion { found: u32 },
    #[error("could not encode message: {0}")]
    Encode(String),
}

/// Serialises an envelope to JSON bytes.
pub fn encode<T: Serialize>(envelope: &Envelope<T>) -> Result<Vec<u8>, ProtocolError> {
    serde_json::to_vec(envelope).map_err(|e| ProtocolError::Encode(e.to_string()))
}

/// Decodes an envelope, checking the version. Never panics, whatever the bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<Envelope<T>, ProtocolError> {
    match serde_json::from_str::<Envelope<T>>(text(bytes)?) {
        Ok(env) if readable(env.v) => Ok(env),
        Ok(env) => Err(ProtocolError::UnsupportedVersion { found: env.v }),
        Err(err) => Err(refusal(bytes, err.to_string())),
    }
}

/// The envelope as a receiver of broadcasts reads it: every key must be there, but only
/// the version and the body are kept.
#[derive(Deserialize)]
struct BodyOnly<T> {
    v: u32,
    #[allow(dead_code)]
    id: IgnoredAny,
    #[allow(dead_code)]
    ts: IgnoredAny,
    #[allow(dead_code)]
    source: IgnoredAny,
    body: T,
}

/// Decodes an envelope's body, checking the version, and reads over the id, time and
/// source without keeping them. For the cockpit's event stream, where those are never
/// used and each kept string is an allocation per message. Never panics.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    match serde_json::from_str::<BodyOnly<T>>(text(bytes)?) {
        Ok(env) if readable(env.v) => Ok(env.body),
        Ok(env) => Err(ProtocolError::UnsupportedVersion { found: env.v }),
        Err(err) => Err(refusal(bytes, err.to_string())),
    }
}

fn readable(v: u32) -> bool {
    (OLDEST_READABLE_VERSION..=PROTOCOL_VERSION).contains(&v)
}

/// The message as text. Checking the UTF-8 of the whole message once is several times
/// cheaper than serde_json checking each string of it as it reads (`from_slice`), which
/// was a tenth of decoding an event.
fn text(bytes: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(bytes).map_err(|e| ProtocolError::Malformed(format!("not UTF-8 text: {e}")))
}

/// Why bytes that did not decode were refused. A newer sender may have changed the body's
/// shape: name the version if we can, since "unsupported version" is far more useful to an
/// operator than a serde path.
fn refusal(bytes: &[u8], err: String) -> ProtocolError {
    #[derive(Deserialize)]
    struct VersionOnly {
        v: u32,
    }
    match serde_json::from_slice::<VersionOnly>(bytes) {
        Ok(VersionOnly { v }) if !readable(v) => ProtocolError::UnsupportedVersion { found: v },
        _ => ProtocolError::Malformed(err),
    }
}

/// A random 16-hex-digit id. Not cryptographic; ids only need to be unique in practice.
pub fn new_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u64(now_ms());
    format!("{:016x}", hasher.finish())
}

/// serde writes a NaN or infinite float as `null`; reading `null` back as 0 keeps one bad
/// metric from making a whole heartbeat undecodable. A number beyond f32's range (`1e91`)
/// would read as infinity, which a reader would keep while everyone it passes the value on
/// to reads 0: it reads as 0 here, so what is kept is what is sent.
pub fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.filter(|v| v.is_finite()).unwrap_or(0.0))
}
