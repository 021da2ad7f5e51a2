//! Wire types, subjects and the envelope. Pure: no I/O, no async.
//!
//! Every message on the bus is an [`Envelope`] around one of the bodies defined here. The
//! full text of the protocol lives in docs/protocol.md; keep the two in step.

pub mod audit;
mod change_de;
pub mod clock;
pub mod envelope;
pub mod event;
pub mod fleet;
pub mod messages;
pub mod model;
pub mod scheduler;
pub mod subjects;
pub mod validate;

pub use audit::{AuditOutcome, AuditRecord, OperationEnd, Operator, Repeated, RestartBody, Verdict};
pub use envelope::{Envelope, ProtocolError, decode, decode_body, encode};
pub use event::{Change, Event, EventKind};
pub use fleet::{ChangeRefused, Fleet, Gap};
pub use messages::*;
pub use model::*;

/// The protocol version every envelope carries in `v`.
pub const PROTOCOL_VERSION: u32 = 1;

#[cfg(test)]
mod tests;
