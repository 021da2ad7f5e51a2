//! The cockpit's client of the control plane: it follows the event history, keeps the
//! subscriptions, fetches the snapshot and history, forwards events (with how far behind
//! they are) and heartbeats in order, and sends commands with
//! timeouts. It never touches the terminal. The model replica it feeds lives here too, as a
//! pure struct the app owns.

mod client;
mod logs;
mod replica;
pub mod snapshot;
pub mod upload;

pub use client::{
    BackendHandle, COMMAND_TIMEOUT, ClientOptions, Command, CommandError, ControlCommand, Identity,
    RouteVerb, Update, refuse_unless_live, spawn, spawn_cockpit, spawn_with,
};
pub use logs::{LogsEvent, LogsStart};
#[cfg(test)]
pub(crate) use replica::test_heartbeat as replica_test_heartbeat;
pub use replica::{
    AUDIT_KEPT, DEFAULT_PERIOD_MS, EVENTS_KEPT, History, METRICS_KEPT, Replica, SILENT_AFTER_PERIODS, Sample,
    Silence, Sync, silent_for,
};
