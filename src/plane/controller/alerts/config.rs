//! The alert rules' thresholds (`quarterdeck controller --alert-*`), and the parse of the
//! one threshold with two parts, `--alert-crash-loop 3/5m`.

use std::time::Duration;

use super::webhook::WebhookUrl;

/// N crashes of one instance within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoop {
    pub crashes: u32,
    pub window: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    pub crash_loop: CrashLoop,
    /// An instance unhealthy this long fires `instance_unhealthy`.
    pub unhealthy_after: Duration,
    /// An app below its desired count this long fires `app_below_desired`.
    pub below_desired_after: Duration,
    /// An app with a domain and no serving route this long fires `no_serving_route` (at
    /// once when the routers report traffic for it).
    pub no_route_after: Duration,
    /// A route's 5xx share, in percent, above which `route_5xx` fires...
    pub pct_5xx: f64,
    /// ...once its backend had at least this many requests in the routers' window.
    pub min_requests_5xx: u64,
    /// Disk or memory use, in percent, above which `host_pressure` fires.
    pub disk_pct: f32,
    pub mem_pct: f32,
    /// How long a condition must stay clear before its alert resolves: no flapping.
    pub resolve_after: Duration,
    /// The routers' status period: a router's traffic older than three of them is dropped.
    pub router_status_period: Duration,
    /// Where each transition is POSTed (only by the leader).
    pub webhooks: Vec<WebhookUrl>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            crash_loop: CrashLoop { crashes: 3, window: Duration::from_secs(300) },
            unhealthy_after: Duration::from_secs(60),
            below_desired_after: Duration::from_secs(120),
            no_route_after: Duration::from_secs(30),
            pct_5xx: 5.0,
            min_requests_5xx: 20,
            disk_pct: 90.0,
            mem_pct: 90.0,
            resolve_after: Duration::from_secs(10),
            router_status_period: Duration::from_secs(2),
            webhooks: vec![],
        }
    }
}

/// `N/WINDOW` (`3/5m`): N from 2 to 1000 crashes, the window read by `duration`, 1 s to 1 day.
pub fn parse_crash_loop(
    text: &str,
    duration: impl Fn(&str) -> Result<Duration, String>,
) -> Result<CrashLoop, String> {
    let bad = |why: String| format!("--alert-crash-loop {text:?}: {why}; expected N/WINDOW, e.g. 3/5m");
    let (n, window) = text.split_once('/').ok_or_else(|| bad("no '/'".into()))?;
    let crashes: u32 = n.trim().parse().map_err(|_| bad(format!("{n:?} is not a whole number")))?;
    if !(2..=1000).contains(&crashes) {
        return Err(bad(format!("{crashes} crashes: use 2 to 1000")));
    }
    let window = duration(window.trim()).map_err(bad)?;
    if window < Duration::from_secs(1) || window > Duration::from_secs(86_400) {
        return Err(bad(format!("a window of {window:?}: use 1s to 1d")));
    }
    Ok(CrashLoop { crashes, window })
}

/// A percentage threshold: above 0, at most 100.
pub fn parse_pct(flag: &str, text: &str) -> Result<f64, String> {
    let pct: f64 = text.trim().parse().map_err(|_| format!("{flag} {text:?}: not a number"))?;
    if !pct.is_finite() || pct <= 0.0 || pct > 100.0 {
        return Err(format!("{flag} {text:?}: a percentage above 0 and at most 100"));
    }
    Ok(pct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Result<Duration, String> {
        let n: u64 = s.trim_end_matches('s').parse().map_err(|_| format!("{s:?} is not a duration"))?;
        Ok(Duration::from_secs(n))
    }

    #[test]
    fn crash_loop_reads_n_over_a_window_and_says_what_is_wrong() {
        assert_eq!(
            parse_crash_loop("3/300s", secs),
            Ok(CrashLoop { crashes: 3, window: Duration::from_secs(300) })
        );
        assert!(parse_crash_loop("3", secs).unwrap_err().contains("no '/'"));
        assert!(parse_crash_loop("x/5s", secs).unwrap_err().contains("not a whole number"));
        assert!(parse_crash_loop("1/5s", secs).unwrap_err().contains("use 2 to 1000"));
        assert!(parse_crash_loop("3/zz", secs).unwrap_err().contains("not a duration"));
        assert!(parse_crash_loop("3/0s", secs).unwrap_err().contains("1s to 1d"));
    }

    #[test]
    fn percentages_are_above_0_and_at_most_100() {
        assert_eq!(parse_pct("--alert-5xx-pct", "5"), Ok(5.0));
        for bad in ["0", "101", "-1", "NaN", "five"] {
            assert!(parse_pct("--alert-5xx-pct", bad).is_err(), "{bad}");
        }
    }
}
