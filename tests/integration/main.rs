//! Integration tests, in one binary. Each module names the services it needs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nats_support;
mod support;

mod bench_nats;
mod bench_plane;
mod chaos;
mod cockpit_headless;
mod docker_support;
mod nats_audit_outcome;
mod nats_bounded_messages;
mod nats_commit_batches;
mod nats_deadline;
mod nats_durable;
mod nats_epoch;
mod nats_faults;
mod nats_follow_flood;
mod nats_hardening;
mod nats_history_bounds;
mod nats_paged_snapshot;
mod nats_plane;
mod nats_recovery;
mod nats_replay;
mod nats_resync;
mod nats_robustness;
mod nats_roles;
mod nats_step_events;
mod sandbox_e2e;

mod cockpit_audit_nats;
mod cockpit_config;
mod cockpit_freshness_nats;
mod cockpit_logs;
mod cockpit_wizard;
mod cockpit_wizard_docker;
mod cockpit_workflows;
mod demo_tape;
mod docker_crash;
mod docker_driver;
mod docker_e2e;
mod docker_faults;
mod docker_plane;
mod docker_registry;
mod registry_support;
mod router_nginx;
mod stack_support;
