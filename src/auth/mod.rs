//! Roles on the bus. Who may do what is enforced by nats-server: each identity is an NKey
//! user with subject permissions worked out here from the protocol's subjects
//! (docs/protocol.md, "Roles"), and `quarterdeck auth` writes them as an `authorization`
//! block for nats-server to include, with each user's seed in a file of its own.
//!
//! `roles.rs` is the rule (pure), `conf.rs` renders the block (pure), `files.rs` keeps the
//! directory of seeds that is the list of users.

pub mod conf;
pub mod files;
pub mod roles;

pub use roles::{Grant, Grants, Identity, Permissions, Role};
