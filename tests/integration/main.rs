//! Integration tests, in one binary. Each module names the services it needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cockpit_headless;
mod sandbox_e2e;
