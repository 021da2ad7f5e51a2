//! Parsers for command-line values that clap has no type for: durations (sizes and cores
//! are shared with the cockpit, in `protocol::validate`). Each
//! error names the value and what was expected.

use std::time::Duration;

/// `500ms`, `2s`, `5m`, `1h`, `7d`; a bare number is seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 =
        num.parse().map_err(|_| format!("{s:?} is not a duration: use e.g. 500ms, 2s, 5m, 1h, 7d"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m, h or d")),
    };
    if !secs.is_finite() || !(0.0..=10.0 * 365.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--metrics-listen`: `IP:PORT` (`[IPv6]:PORT`); a host name is refused, since the
/// endpoint binds the address itself.
pub fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an address to listen on: use IP:PORT, e.g. 127.0.0.1:9100"))
}

/// `--since`: a duration back from now (`10m`, `1h`) or an RFC 3339 time
/// (`2026-11-25T10:12:01Z`), as ms since the epoch. A time ahead of now is refused: a log
/// has nothing after now.
pub fn since(s: &str) -> Result<u64, String> {
    since_at(s, crate::protocol::clock::now_ms())
}

fn since_at(s: &str, now: u64) -> Result<u64, String> {
    let s = s.trim();
    if s.contains('T') {
        let ts = crate::protocol::clock::rfc3339_ms(s)
            .filter(|&ts| ts > 0)
            .ok_or_else(|| format!("{s:?} is not a time: use RFC 3339, e.g. 2026-11-25T10:12:01Z"))?;
        if ts > now + 60_000 {
            return Err(format!("{s:?} is in the future: a log has no lines after now"));
        }
        return Ok(ts);
    }
    let back = duration(s).map_err(|e| format!("{e}, or a time such as 2026-11-25T10:12:01Z"))?;
    Ok(now.saturating_sub(u64::try_from(back.as_millis()).unwrap_or(u64::MAX)))
}

/// A container command's words, from one shell-quoted line (`protocol::argv::split`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

/// `--cmd "sh -c 'a b'"`: the line split as a shell would quote it, nothing expanded.
pub fn command(s: &str) -> Result<Argv, String> {
    crate::protocol::argv::split(s).map(Argv)
}

// `memory_mb` and `cpu` live in `crate::protocol::validate`: the cockpit's deploy wizard
// checks its fields with them too.
pub use crate::protocol::validate::{cpu, memory_mb};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(duration("1y").unwrap_err().contains("unknown unit"));
        assert!(duration("abc").is_err());
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn since_is_a_duration_back_or_a_time_and_never_ahead() {
        let now = 1_795_601_521_000;
        assert_eq!(since_at("10m", now), Ok(now - 600_000));
        assert_eq!(since_at("2026-11-25T10:12:01Z", now), Ok(1_795_601_521_000));
        assert_eq!(since_at("2026-11-25T11:12:01+01:00", now), Ok(1_795_601_521_000));
        assert!(since_at("2026-11-25T12:00:00Z", now).unwrap_err().contains("in the future"));
        assert!(since_at("2026-13-25T10:00:00Z", now).unwrap_err().contains("RFC 3339"));
        assert!(since_at("yesterday", now).unwrap_err().contains("2026-11-25T10:12:01Z"));
        assert!(since_at("-5m", now).is_err());
    }

    #[test]
    fn memory_and_cpu() {
        assert_eq!(memory_mb("512M").unwrap(), 512);
        assert_eq!(memory_mb("2g").unwrap(), 2048);
        assert_eq!(memory_mb("256").unwrap(), 256);
        assert!(memory_mb("lots").is_err());
        assert!(memory_mb("2T").unwrap_err().contains("unknown unit"));
        assert!(memory_mb("1M").is_err());
        assert!(cpu("0.5").is_ok());
        assert!(cpu("0").is_err());
        assert!(cpu("NaN").is_err());
    }
}
