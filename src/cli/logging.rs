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
            crate::cli::printable::printable(without_own_prefix(&self.who, &message))
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

/// The message without the name this logger already puts in front of it. Messages name
/// their speaker themselves (`agent/h1: connected to ...` from the bus, `h1: heartbeat not
/// sent` from an agent), since in the sandbox every speaker shares the cockpit's one log;
/// on a service's stderr the line already says who speaks, and would say it twice.
fn without_own_prefix<'m>(who: &str, message: &'m str) -> &'m str {
    let short = who.rsplit('/').next().unwrap_or(who);
    [who, short]
        .iter()
        .find_map(|name| message.strip_prefix(name).and_then(|rest| rest.strip_prefix(": ")))
        .unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::without_own_prefix;

    #[test]
    fn a_services_line_names_its_speaker_once() {
        // The bus's own lines and the agent's carry the name the logger puts first.
        assert_eq!(
            without_own_prefix("agent/h1", "agent/h1: connected to nats://x"),
            "connected to nats://x"
        );
        assert_eq!(without_own_prefix("agent/h1", "h1: heartbeat not sent: eof"), "heartbeat not sent: eof");
        assert_eq!(without_own_prefix("controller", "controller: connected"), "connected");
        // Another speaker's name, or a name that only begins the same, stays.
        assert_eq!(without_own_prefix("agent/h1", "h10: heartbeat not sent"), "h10: heartbeat not sent");
        assert_eq!(without_own_prefix("agent/h1", "i-7: container died"), "i-7: container died");
        assert_eq!(without_own_prefix("agent/h1", "agent/h1 connected"), "agent/h1 connected");
    }
}
