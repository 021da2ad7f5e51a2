//! Wall-clock helpers. Timestamps on the wire are milliseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as stamped into `ts` fields.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `HH:MM:SS` in UTC for a millisecond timestamp.
pub fn hms(ts_ms: u64) -> String {
    let secs = ts_ms / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

/// `YYYY-MM-DD HH:MM:SS` in UTC for a millisecond timestamp.
pub fn datetime(ts_ms: u64) -> String {
    let days = (ts_ms / 86_400_000) as i64;
    // Civil-from-days (Howard Hinnant's algorithm): avoids a date crate for one format.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {}", hms(ts_ms))
}

/// Milliseconds since the epoch of an RFC 3339 time: Docker's timestamps and `ctl logs --since`
/// (`2026-11-25T09:30:00.123456789Z`, or with an offset). Docker's zero time is `None`.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) =
        (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let tz_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, tz) = rest.split_at(tz_at);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.split(':');
    let (h, min, sec): (i64, i64, i64) =
        (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let millis: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    let offset_min = match tz.chars().next() {
        Some(sign @ ('+' | '-')) => {
            let (oh, om) = tz[1..].split_once(':')?;
            let v = oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?;
            if sign == '-' { -v } else { v }
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant's algorithm), as in protocol::clock.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + sec - offset_min * 60;
    let ms = secs * 1000 + millis;
    // Docker writes 0001-01-01T00:00:00Z for "never started".
    u64::try_from(ms).ok().filter(|ms| *ms > 0)
}

/// A short human age such as `850ms`, `12s`, `4m`, `3h`, `2d`.
pub fn age(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}s", ms / 1000),
        60_000..3_600_000 => format!("{}m", ms / 60_000),
        3_600_000..86_400_000 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

/// A short uptime such as `3m12s` or `2h05m`.
pub fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

/// Heartbeat ages under this are shown as one word: a fleet beating on time (every 2 s)
/// then repaints nothing between events, and a heartbeat 2.5 periods late is shown, with
/// its age counting, before the controller calls the host stale at 3.
pub const HEARTBEAT_ON_TIME_MS: u64 = 5_000;

/// A heartbeat's age as the tables show it: `<5s` while on time, then the age.
pub fn heartbeat_age(ms: u64) -> String {
    if ms < HEARTBEAT_ON_TIME_MS { format!("<{}s", HEARTBEAT_ON_TIME_MS / 1000) } else { age(ms) }
}

/// An uptime to the minute, `<1m`, `42m`, `3h05m`, `2d04h`, from a clock that moves in
/// whole minutes: every uptime on screen changes in the same frame, once a minute, instead
/// of each one in its own second. Shown at most a minute short.
pub fn uptime_coarse(started: u64, now: u64) -> String {
    let minute = now - now % 60_000;
    let m = minute.saturating_sub(started) / 60_000;
    match m {
        0 => "<1m".to_string(),
        1..60 => format!("{m}m"),
        60..1440 => format!("{}h{:02}m", m / 60, m % 60),
        _ => format!("{}d{:02}h", m / 1440, (m / 60) % 24),
    }
}

/// How long ago, to the minute: `<1m` or `age`'s minutes and up.
pub fn ago_coarse(ms: u64) -> String {
    if ms < 60_000 { "<1m".to_string() } else { age(ms) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_and_ages() {
        assert_eq!(datetime(0), "1970-01-01 00:00:00");
        assert_eq!(datetime(1_795_000_000_000), "2026-11-18 11:06:40");
        assert_eq!(age(999), "999ms");
        assert_eq!(age(61_000), "1m");
        assert_eq!(uptime(3_725_000), "1h02m");
        assert_eq!(uptime(59_000), "59s");
        assert_eq!(heartbeat_age(4_999), "<5s");
        assert_eq!(heartbeat_age(7_000), "7s");
        assert_eq!(ago_coarse(59_000), "<1m");
    }

    #[test]
    fn coarse_uptimes_move_together_once_a_minute() {
        let now = 10 * 60_000 + 30_000;
        assert_eq!(uptime_coarse(now - 20_000, now), "<1m");
        assert_eq!(uptime_coarse(now - 89_000, now), "<1m", "a minute short at most");
        assert_eq!(uptime_coarse(now - 91_000, now), "1m");
        assert_eq!(uptime_coarse(0, now), "10m");
        assert_eq!(uptime_coarse(0, now + 29_000), "10m");
        assert_eq!(uptime_coarse(0, now + 30_000), "11m");
        assert_eq!(uptime_coarse(0, 3_725_000), "1h02m");
        assert_eq!(uptime_coarse(0, 90_000_000), "1d01h");
    }
}
