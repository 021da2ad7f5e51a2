//! `ctl alerts`, `ctl alert ack` and `ctl silence`: the controller's alerts and silences as
//! the snapshot carries them, and the two commands that act on them.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::parse;
use crate::protocol::clock::{age, datetime};
use crate::protocol::{AlertState, AlertSubject, Fleet, SilenceRequest};

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Resolved alerts too (the newest 100 are kept), not only firing and acknowledged ones.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Acknowledge a firing alert by its id (`ctl alerts`): you own it now. Recorded with
    /// your identity (login@host) in the alert and the audit trail.
    Ack(AckArgs),
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The alert's id, `RULE:SUBJECT`, e.g. `crash_loop:instance/shop-1`.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct SilenceArgs {
    /// What to silence: host/ID, app/NAME, instance/ID or route/APP/BACKEND.
    pub subject: String,
    /// For how long: 10m, 2h, at most 7d. Its alerts still fire and show; no webhook is sent.
    #[arg(value_parser = parse::duration, value_name = "DURATION", required_unless_present = "lift")]
    pub duration: Option<Duration>,
    /// Why, for the others on call (at most 200 characters).
    #[arg(long, value_name = "TEXT", conflicts_with = "lift")]
    pub reason: Option<String>,
    /// Lift the subject's silence now instead.
    #[arg(long, conflicts_with = "duration")]
    pub lift: bool,
}

impl SilenceArgs {
    /// The request, the subject checked here so a typo is told before anything is sent.
    pub fn request(&self) -> Result<SilenceRequest, String> {
        let subject = AlertSubject::parse(&self.subject)?;
        let for_ms = match (self.lift, self.duration) {
            (true, _) => 0,
            (false, Some(d)) if d.as_millis() == 0 => {
                return Err("a silence of 0 lifts nothing: use --lift SUBJECT to lift one".into());
            }
            (false, Some(d)) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            (false, None) => return Err("a DURATION is required (e.g. 30m), or --lift".into()),
        };
        Ok(SilenceRequest { subject, for_ms, reason: self.reason.clone() })
    }
}

/// The alerts' table (active ones, or all with `all`), newest first.
pub fn alert_rows(fleet: &Fleet, all: bool, now: u64) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec!["STATE", "RULE", "SUBJECT", "SINCE", "SUMMARY", "ACKED", "ID"];
    let mut alerts: Vec<_> = fleet.alerts.values().filter(|a| all || a.state.is_active()).collect();
    alerts.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.id.cmp(&b.id)));
    let rows = alerts
        .into_iter()
        .map(|a| {
            let mut state = a.state.as_str().to_string();
            if fleet.silences.get(&a.subject.to_string()).is_some_and(|s| s.until > now) {
                state.push_str(" (silenced)");
            }
            let since = match a.state {
                AlertState::Resolved => format!("{} ago, resolved", age(now.saturating_sub(a.since))),
                _ => format!("{} ago", age(now.saturating_sub(a.since))),
            };
            vec![
                state,
                a.rule.as_str().to_string(),
                a.subject.to_string(),
                since,
                a.summary.clone(),
                a.acked_by.clone().unwrap_or_else(|| "-".into()),
                a.id.clone(),
            ]
        })
        .collect();
    (header, rows)
}

/// The silences' table.
pub fn silence_rows(fleet: &Fleet) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec!["SILENCED", "UNTIL", "BY", "REASON"];
    let rows = fleet
        .silences
        .values()
        .map(|s| {
            vec![s.subject.to_string(), datetime(s.until), s.by.clone(), s.reason.clone().unwrap_or_default()]
        })
        .collect();
    (header, rows)
}

/// `{alerts: [...], silences: [...]}`, the alerts as the controller keeps them.
pub fn alerts_json(fleet: &Fleet, all: bool) -> Value {
    let alerts: Vec<_> = fleet.alerts.values().filter(|a| all || a.state.is_active()).collect();
    let silences: Vec<_> = fleet.silences.values().collect();
    json!({ "alerts": alerts, "silences": silences })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(subject: &str, duration: Option<u64>, lift: bool) -> SilenceArgs {
        SilenceArgs {
            subject: subject.into(),
            duration: duration.map(Duration::from_secs),
            reason: None,
            lift,
        }
    }

    #[test]
    fn a_silence_needs_a_known_subject_form_and_a_duration_or_lift() {
        assert_eq!(args("app/shop", Some(600), false).request().map(|r| r.for_ms), Ok(600_000));
        assert_eq!(args("app/shop", None, true).request().map(|r| r.for_ms), Ok(0));
        assert!(args("shop", Some(600), false).request().unwrap_err().contains("bad alert subject"));
        assert!(args("app/shop", Some(0), false).request().unwrap_err().contains("--lift"));
    }
}
