//! Integration tests, in one binary. Each module names the services it needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nats_support;
mod support;

mod cockpit_headless;
mod nats_plane;
mod nats_resync;
mod nats_robustness;
mod sandbox_e2e;
