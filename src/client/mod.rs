//! The client of the control plane, shared by every follower of the fleet: the cockpit's
//! backend and the router (and the benches). It follows the event history, takes the
//! snapshot by pages, forwards events, heartbeats, beacons and router statuses in order,
//! and keeps the model replica (snapshot plus the events above its revision). UI-free: it
//! never touches the terminal and knows nothing of the cockpit's commands.

pub mod exec;
mod follow;
pub mod forward;
pub mod replica;
pub mod snapshot;
pub mod timeline;
pub mod tunnel;

pub use follow::{ClientHandle, ClientOptions, Feed, REQUEST_TIMEOUT, Resyncer, spawn, spawn_into};
#[cfg(test)]
pub(crate) use replica::test_heartbeat as replica_test_heartbeat;
pub use replica::{
    AUDIT_KEPT, DEFAULT_PERIOD_MS, EVENTS_KEPT, History, METRICS_KEPT, Replica, SILENT_AFTER_PERIODS, Sample,
    Silence, Sync, silent_for,
};
