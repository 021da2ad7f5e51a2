//! `quarterdeck controller`'s alert flags: the rules' thresholds and the webhooks.

use std::time::Duration;

use clap::Args;

use super::parse;
use crate::plane::controller::alerts::{self, AlertConfig, CrashLoop, webhook::WebhookUrl};

#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// crash_loop fires after N crashes of one instance within WINDOW, and resolves once
    /// it has run for WINDOW without a crash (or is removed).
    #[arg(long, default_value = "3/5m", value_name = "N/WINDOW", value_parser = crash_loop)]
    pub alert_crash_loop: CrashLoop,

    /// instance_unhealthy fires for an instance unhealthy longer than this.
    #[arg(long, default_value = "60s", value_parser = parse::duration, value_name = "DURATION")]
    pub alert_unhealthy_after: Duration,

    /// app_below_desired fires for an app with fewer running instances than desired for
    /// longer than this.
    #[arg(long, default_value = "2m", value_parser = parse::duration, value_name = "DURATION")]
    pub alert_below_desired_after: Duration,

    /// no_serving_route fires for an app with a domain and instances but no serving route
    /// for longer than this; at once when the routers report traffic for it.
    #[arg(long, default_value = "30s", value_parser = parse::duration, value_name = "DURATION")]
    pub alert_no_route_after: Duration,

    /// route_5xx fires for a backend whose share of 5xx answers over the routers' window
    /// is above this percentage...
    #[arg(long = "alert-5xx-pct", default_value = "5", value_name = "PCT", value_parser = pct_5xx)]
    pub alert_5xx_pct: f64,

    /// ...once it had at least this many requests in that window.
    #[arg(long = "alert-5xx-min-requests", default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub alert_5xx_min_requests: u64,

    /// host_pressure fires for an up host whose disk use is above this percentage.
    #[arg(long, default_value = "90", value_name = "PCT", value_parser = disk_pct)]
    pub alert_disk_pct: f64,

    /// host_pressure fires for an up host whose memory use is above this percentage.
    #[arg(long, default_value = "90", value_name = "PCT", value_parser = mem_pct)]
    pub alert_mem_pct: f64,

    /// How long a condition must stay clear before its alert resolves, so that it does not
    /// flap (an alert whose subject is gone resolves at once).
    #[arg(long, default_value = "10s", value_parser = parse::duration, value_name = "DURATION")]
    pub alert_resolve_after: Duration,

    /// POST each alert transition (firing, acknowledged, resolved) as JSON to URL (http or
    /// https; repeat for more). Retried with backoff (1 s doubling to 60 s, 10 tries);
    /// silenced subjects send nothing. Only the leader sends.
    #[arg(long = "webhook", value_name = "URL", value_parser = WebhookUrl::parse)]
    pub webhooks: Vec<WebhookUrl>,
}

fn crash_loop(s: &str) -> Result<CrashLoop, String> {
    alerts::parse_crash_loop(s, parse::duration)
}

fn pct_5xx(s: &str) -> Result<f64, String> {
    alerts::parse_pct("--alert-5xx-pct", s)
}

fn disk_pct(s: &str) -> Result<f64, String> {
    alerts::parse_pct("--alert-disk-pct", s)
}

fn mem_pct(s: &str) -> Result<f64, String> {
    alerts::parse_pct("--alert-mem-pct", s)
}

impl AlertArgs {
    pub fn config(&self) -> AlertConfig {
        AlertConfig {
            crash_loop: self.alert_crash_loop,
            unhealthy_after: self.alert_unhealthy_after,
            below_desired_after: self.alert_below_desired_after,
            no_route_after: self.alert_no_route_after,
            pct_5xx: self.alert_5xx_pct,
            min_requests_5xx: self.alert_5xx_min_requests,
            disk_pct: self.alert_disk_pct as f32,
            mem_pct: self.alert_mem_pct as f32,
            resolve_after: self.alert_resolve_after,
            webhooks: self.webhooks.clone(),
            ..AlertConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        alerts: AlertArgs,
    }

    #[test]
    fn the_defaults_are_the_rules_defaults_and_bad_values_are_named() {
        let cmd = Cmd::try_parse_from(["x"]).expect("defaults");
        assert_eq!(cmd.alerts.config(), AlertConfig::default());
        let set =
            Cmd::try_parse_from(["x", "--alert-crash-loop", "2/20s", "--webhook", "http://127.0.0.1:9/h"])
                .expect("set");
        assert_eq!(set.alerts.config().crash_loop.window, Duration::from_secs(20));
        assert_eq!(set.alerts.config().webhooks.len(), 1);
        for (flag, value, says) in [
            ("--alert-crash-loop", "3", "N/WINDOW"),
            ("--alert-5xx-pct", "150", "at most 100"),
            ("--webhook", "ftp://x/y", "not http or https"),
            ("--alert-unhealthy-after", "soon", "not a duration"),
        ] {
            let err = Cmd::try_parse_from(["x", flag, value]).err().expect("refused").to_string();
            assert!(err.contains(says), "{flag} {value}: {err}");
        }
    }
}
