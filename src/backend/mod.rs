//! The cockpit's client of the control plane: the shared follow (`crate::client`) keeps
//! its replica's feed coming; this layer adds what only the cockpit does: commands with
//! the operator's identity and timeouts, typed failures, log streams and uploads. It never
//! touches the terminal.

mod client;
mod error;
mod exec;
mod export;
mod forward;
mod logs;
pub mod upload;

pub use crate::client::forward::ForwardNews;
pub use client::{
    BackendHandle, BackendRequest, COMMAND_TIMEOUT, Identity, Inbound, spawn, spawn_cockpit, spawn_with,
};
pub use error::{CommandError, refuse_unless_live};
pub use exec::ExecOpener;
pub use forward::ForwardEvent;
pub use logs::{LogsEvent, session as logs_session};
// The link state `Feed::Connection` carries, so the app needs no import of the bus.
pub use crate::bus::Connection;
// Exec sessions are the shared client's: the app checks its target and reads how it ended.
pub use crate::client::exec::{ExecError, ExecOutcome, ExecTarget, find_instance as exec_target};
// The replica the app owns is the shared client's.
#[cfg(test)]
pub(crate) use crate::client::replica_test_heartbeat;
pub use crate::client::{
    AUDIT_KEPT, ClientOptions, DEFAULT_PERIOD_MS, EVENTS_KEPT, Feed, History, METRICS_KEPT, Replica,
    SILENT_AFTER_PERIODS, Sample, Silence, Sync, silent_for,
};
