//! The terminal layer: the event loop (`run`), taking and giving back the terminal
//! (`terminal`: raw mode, the alternate screen, the mouse, suspend on Ctrl-Z), frame output
//! (`output`) and mouse hit-testing against the layout the last frame drew (`mouse`).
//! It sits above `app` (state and `update`) and `views` (pure drawing): it readies the
//! frame context, draws, and turns terminal input into actions and effects into I/O.

pub mod exec;
mod mouse;
pub mod output;
mod run;
mod shell;
pub mod switch;
pub mod terminal;

pub use run::{Exit, draw, render, run, tick};
