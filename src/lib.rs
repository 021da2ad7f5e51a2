//! Quarterdeck: a terminal cockpit for a Docker PaaS, and the small control plane it steers.
//!
//! See docs/architecture.md for how the folders fit together.

pub mod actions;
pub mod app;
pub mod auth;
pub mod backend;
pub mod bus;
pub mod cli;
pub mod client;
pub mod config_file;
pub mod context;
pub mod plane;
pub mod protocol;
pub mod repository;
pub mod secrets;
pub mod theme;
pub mod tui;
pub mod views;

#[cfg(test)]
mod fuzz_seeds;
