//! Log lines on stderr for the services and `ctl`: `2026-11-25 08:35:49 WARN agent/h1: ...`.
//! The cockpit logs into its own panel instead (tui-logger), never onto the screen it draws.

use log::{LevelFilter, Log, Metadata, Record};

use crate::protocol::clock::{datetime, now_ms};

struct StderrLogger {
    who: String,
}

impl Log for StderrLogger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        // Our own crate speaks at the chosen level; dependencies only above info.
        let ours = record.target().starts_with("quarterdeck");
        if !ours && record.level() > log::Level::Warn {
            return;
        }
        let message = record.args().to_string();
        eprintln!(
            "{} {:<5} {}: {}",
            datetime(now_ms()),
            record.level(),
            self.who,
            crate::cli::printable::printable(&message)
        );
    }

    fn flush(&self) {}
}

/// Installs the stderr logger for a service or `ctl`.
pub fn init(who: &str, level: LevelFilter) {
    if log::set_boxed_logger(Box::new(StderrLogger { who: who.to_string() })).is_ok() {
        log::set_max_level(level);
    }
}
