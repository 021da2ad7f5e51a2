//! The control plane: the controller, the agents with their runtime drivers, and the
//! embedded sandbox that wires them together on an in-process bus. Nothing here knows the
//! cockpit exists.

pub mod agent;
pub mod controller;
pub mod fixture;
pub mod metrics;
pub mod replies;
pub mod rng;
pub mod router;
pub mod sandbox;
