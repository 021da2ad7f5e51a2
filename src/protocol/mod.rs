//! Wire types, subjects and the envelope. Pure: no I/O, no async.
//!
//! Every message on the bus is an [`Envelope`] around one of the bodies defined here. The
//! full text of the protocol lives in docs/protocol.md; keep the two in step.

pub mod alert;
pub mod argv;
pub mod audit;
mod change_de;
pub mod clock;
pub mod deploy_plan;
pub mod drain_plan;
pub mod envelope;
pub mod event;
pub mod exec;
pub mod fleet;
pub mod forward;
pub mod image;
pub mod intent;
pub mod messages;
pub mod model;
pub mod release;
pub mod scheduler;
pub mod subjects;
pub mod timeline;
pub mod traffic;
pub mod validate;

pub use alert::{
    Alert, AlertAckRequest, AlertRule, AlertState, AlertSubject, NoteRequest, Silence, SilenceRequest,
};
pub use audit::{AuditOutcome, AuditRecord, OperationEnd, Operator, Repeated, RestartBody, Verdict};
pub use envelope::{Envelope, ProtocolError, decode, decode_body, encode};
pub use event::{Change, Event, EventKind};
pub use fleet::{ChangeRefused, Fleet, Gap, steps_in_history};
pub use intent::{ControlCommand, ExecStart, ForwardStart, LogsStart, TimelineExport, UploadRequest};
pub use messages::*;
pub use model::*;
pub use traffic::{Traffic, TrafficStats, TrafficSum};

/// The protocol version every envelope carries in `v`. v2: an operation's step events
/// carry that step (`operation_step`), its end the outcome (`operation_ended`), not the
/// whole operation; trims are said (`operation_removed`).
pub const PROTOCOL_VERSION: u32 = 2;

/// The oldest version still read: a v1 message is a valid v2 one (v2 only added change
/// types), so events a v1 controller left in the history stay readable.
pub const OLDEST_READABLE_VERSION: u32 = 1;

#[cfg(test)]
mod tests;
