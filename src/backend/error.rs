//! Why something the cockpit asked of the plane did not happen, kept typed up to the app so
//! that it can word each case for what it means: a timeout may still run, a refusal never
//! did, a command not sent never left.

use std::time::Duration;

use crate::bus::{BusError, Connection, RequestError};
use crate::protocol::WireError;

/// Why a command (or an upload, or a log stream) was not accepted. `NotLive`, `ReadOnly`
/// and `BadInput` mean it never left the cockpit; the others that it was sent and failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The bus connection is down: a command sent now could sit in the client library's
    /// buffer and run long after the operator was told it failed. Says why, e.g.
    /// `bus disconnected for 12s`.
    #[error("not live ({0}), not sent")]
    NotLive(String),
    #[error("read-only: the cockpit sends no commands")]
    ReadOnly,
    /// Sent, and no answer in time: it may still be carried out.
    #[error("no answer on {subject} within {}s", timeout.as_secs_f32())]
    Timeout { subject: String, timeout: Duration },
    /// Sent, and nobody listens on its subject (no controller, or no such agent): nothing
    /// ran it.
    #[error("nobody is listening on {subject}")]
    NoResponder { subject: String },
    /// The controller's (or an agent's) refusal, with its code (`expired` among them).
    #[error("{0}")]
    Refused(WireError),
    /// The NATS server's refusal: this user may not send it (a viewer's command). The
    /// cockpit turns read-only on it.
    #[error("permission denied on {subject} for user {user}")]
    Denied { subject: String, user: String },
    /// What the cockpit was given fails its own checks (an artifact file that is not one):
    /// nothing was sent.
    #[error("{0}")]
    BadInput(String),
    /// An answer that did not decode, or another failure of the bus or the repository.
    #[error("{0}")]
    Failed(String),
}

impl From<BusError> for CommandError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Timeout { subject, timeout } => CommandError::Timeout { subject, timeout },
            BusError::NoResponders { subject } => CommandError::NoResponder { subject },
            BusError::PermissionDenied { subject, user } => CommandError::Denied { subject, user },
            BusError::Disconnected(why) => CommandError::NotLive(format!("bus disconnected: {why}")),
            e @ BusError::Unreachable { .. } => CommandError::NotLive(e.to_string()),
            BusError::Other(why) => CommandError::Failed(why),
        }
    }
}

impl From<RequestError> for CommandError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Refused(w) => CommandError::Refused(w),
            RequestError::Bus(bus) => CommandError::from(bus),
            RequestError::Protocol(bad) => CommandError::Failed(format!("bad answer: {bad}")),
        }
    }
}

/// Whether a command may leave now: only while the bus is connected. The one check, so the
/// backend never sends on a connection it knows is down.
pub fn refuse_unless_live(connection: &Connection, now: u64) -> Result<(), CommandError> {
    match connection {
        Connection::Connected => Ok(()),
        Connection::Disconnected { since, reason } => {
            let secs = now.saturating_sub(*since) / 1000;
            Err(CommandError::NotLive(format!("bus {reason} for {secs}s")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn commands_leave_only_while_the_bus_is_connected() {
        assert_eq!(refuse_unless_live(&Connection::Connected, 5_000), Ok(()));
        let down = Connection::Disconnected { since: 1_000, reason: "disconnected".into() };
        let err = refuse_unless_live(&down, 13_500).unwrap_err();
        assert_eq!(err, CommandError::NotLive("bus disconnected for 12s".into()));
        assert_eq!(err.to_string(), "not live (bus disconnected for 12s), not sent");
    }

    #[test]
    fn the_servers_refusal_stays_a_refusal_with_its_words() {
        let denied = BusError::PermissionDenied { subject: "qd.v1.ctl.deploy".into(), user: "carol".into() };
        let err = CommandError::from(RequestError::Bus(denied));
        assert_eq!(err, CommandError::Denied { subject: "qd.v1.ctl.deploy".into(), user: "carol".into() });
        assert_eq!(err.to_string(), "permission denied on qd.v1.ctl.deploy for user carol");
    }

    #[test]
    fn a_timeout_a_refusal_and_no_listener_stay_apart() {
        let subject = "qd.v1.ctl.alice.deploy".to_string();
        let timeout = Duration::from_secs(5);
        let late =
            CommandError::from(RequestError::Bus(BusError::Timeout { subject: subject.clone(), timeout }));
        assert_eq!(late, CommandError::Timeout { subject: subject.clone(), timeout });
        assert_eq!(late.to_string(), "no answer on qd.v1.ctl.alice.deploy within 5s");
        let nobody =
            CommandError::from(RequestError::Bus(BusError::NoResponders { subject: subject.clone() }));
        assert_eq!(nobody, CommandError::NoResponder { subject });
        let refused = CommandError::from(RequestError::Refused(WireError::new(ErrorCode::Conflict, "busy")));
        assert!(matches!(&refused, CommandError::Refused(w) if w.code == ErrorCode::Conflict));
        assert_eq!(refused.to_string(), "busy (conflict)");
        let down = CommandError::from(RequestError::Bus(BusError::Disconnected("reconnecting".into())));
        assert!(matches!(down, CommandError::NotLive(_)), "{down:?}");
    }
}
