//! Alerts: what the controller's rules found wrong, kept in the fleet's state until they
//! resolve. Pure: the rules that raise them live in `plane/controller/alerts`; the cockpit
//! reads them from its replica.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The built-in rules. The word (`crash_loop`) is what webhooks, `ctl alerts` and the
/// cockpit show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// N crashes of one instance within M minutes.
    CrashLoop,
    /// An instance unhealthy for longer than T.
    InstanceUnhealthy,
    /// A host stale or lost.
    HostDown,
    /// An app below its desired count for longer than T.
    AppBelowDesired,
    /// An app's last deploy failed.
    DeployFailed,
    /// An app with a domain and no serving route (or traffic with no serving backend).
    NoServingRoute,
    /// A route's 5xx rate above X%.
    #[serde(rename = "route_5xx")]
    Route5xx,
    /// Disk or memory above its threshold on a host.
    HostPressure,
    /// No controller heard: evaluated by the cockpit, never stored by a controller.
    NoController,
    /// A rule from a newer controller; shown as-is.
    #[serde(other)]
    Unknown,
}

impl AlertRule {
    pub const ALL: [AlertRule; 9] = [
        AlertRule::CrashLoop,
        AlertRule::InstanceUnhealthy,
        AlertRule::HostDown,
        AlertRule::AppBelowDesired,
        AlertRule::DeployFailed,
        AlertRule::NoServingRoute,
        AlertRule::Route5xx,
        AlertRule::HostPressure,
        AlertRule::NoController,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::CrashLoop => "crash_loop",
            AlertRule::InstanceUnhealthy => "instance_unhealthy",
            AlertRule::HostDown => "host_down",
            AlertRule::AppBelowDesired => "app_below_desired",
            AlertRule::DeployFailed => "deploy_failed",
            AlertRule::NoServingRoute => "no_serving_route",
            AlertRule::Route5xx => "route_5xx",
            AlertRule::HostPressure => "host_pressure",
            AlertRule::NoController => "no_controller",
            AlertRule::Unknown => "unknown",
        }
    }

    pub fn parse(word: &str) -> Option<AlertRule> {
        AlertRule::ALL.into_iter().find(|r| r.as_str() == word)
    }
}

/// What an alert is about. Written and read as text (`host/h1`, `app/shop`,
/// `instance/shop-1`, `route/shop/10.0.0.1:8080`, `controller`), the form `ctl silence`
/// takes and the cockpit jumps to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertSubject {
    Host(String),
    App(String),
    Instance(String),
    Route { app: String, backend: String },
    Controller,
}

impl fmt::Display for AlertSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertSubject::Host(h) => write!(f, "host/{h}"),
            AlertSubject::App(a) => write!(f, "app/{a}"),
            AlertSubject::Instance(i) => write!(f, "instance/{i}"),
            AlertSubject::Route { app, backend } => write!(f, "route/{app}/{backend}"),
            AlertSubject::Controller => f.write_str("controller"),
        }
    }
}

impl AlertSubject {
    /// Reads `host/h1`, `app/shop`, `instance/shop-1`, `route/shop/10.0.0.1:8080` or
    /// `controller`; the error says which forms there are.
    pub fn parse(text: &str) -> Result<AlertSubject, String> {
        let bad = || {
            format!(
                "bad alert subject {text:?}: expected host/ID, app/NAME, instance/ID, \
                 route/APP/BACKEND or controller"
            )
        };
        if text == "controller" {
            return Ok(AlertSubject::Controller);
        }
        let (kind, rest) = text.split_once('/').ok_or_else(bad)?;
        if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        match kind {
            "host" if !rest.contains('/') => Ok(AlertSubject::Host(rest.into())),
            "app" if !rest.contains('/') => Ok(AlertSubject::App(rest.into())),
            "instance" if !rest.contains('/') => Ok(AlertSubject::Instance(rest.into())),
            "route" => match rest.split_once('/') {
                Some((app, backend)) if !app.is_empty() && !backend.is_empty() && !backend.contains('/') => {
                    Ok(AlertSubject::Route { app: app.into(), backend: backend.into() })
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// The app the subject belongs to, when it names one directly.
    pub fn app(&self) -> Option<&str> {
        match self {
            AlertSubject::App(a) | AlertSubject::Route { app: a, .. } => Some(a),
            _ => None,
        }
    }
}

impl Serialize for AlertSubject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AlertSubject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        AlertSubject::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    /// Still firing, but someone owns it (`acked_by`).
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// Firing or acknowledged: the condition still holds.
    pub fn is_active(self) -> bool {
        !matches!(self, AlertState::Resolved)
    }
}

/// How many causing events an alert names (the newest).
pub const ALERT_CAUSES_KEPT: usize = 8;

/// One alert, keyed by `id` (`<rule>:<subject>`): a rule and subject fire again under the
/// same id once resolved, with a new `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub rule: AlertRule,
    pub subject: AlertSubject,
    pub state: AlertState,
    /// When this firing began (ms since epoch).
    pub since: u64,
    /// When the state last changed.
    pub changed_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<u64>,
    /// What the rule saw, e.g. `4 crashes in 5m (last: exit 3)`.
    pub summary: String,
    /// The revisions of the events that caused it, oldest first, at most
    /// `ALERT_CAUSES_KEPT`.
    #[serde(default)]
    pub causes: Vec<u64>,
    /// Who acknowledged it (`login@host`), while acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
}

impl Alert {
    /// The id a rule and subject always get.
    pub fn id_of(rule: AlertRule, subject: &AlertSubject) -> String {
        format!("{}:{subject}", rule.as_str())
    }
}

/// A silence: no webhook for alerts on `subject` until `until`. Alerts still fire and
/// show; the cockpit marks them silenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub subject: AlertSubject,
    /// Ms since epoch.
    pub until: u64,
    /// Who set it (`login@host`).
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `qd.v1.ctl.<user>.alert.ack`: acknowledge one alert by its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAckRequest {
    pub id: String,
}

/// The longest silence (7 days): longer is a rule to change, not a silence to forget. The
/// controller refuses more; the cockpit's palette says so before sending.
pub const SILENCE_MAX_MS: u64 = 7 * 86_400_000;

/// `qd.v1.ctl.<user>.alert.silence`: silence a subject for `for_ms` (0 lifts it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRequest {
    pub subject: AlertSubject,
    pub for_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `qd.v1.ctl.<user>.note`: a line for the incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRequest {
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_read_back_what_they_write() {
        for s in [
            AlertSubject::Host("h1".into()),
            AlertSubject::App("shop".into()),
            AlertSubject::Instance("shop-1".into()),
            AlertSubject::Route { app: "shop".into(), backend: "10.0.0.1:8080".into() },
            AlertSubject::Controller,
        ] {
            assert_eq!(AlertSubject::parse(&s.to_string()), Ok(s.clone()));
            let json = serde_json::to_string(&s).expect("encode");
            assert_eq!(serde_json::from_str::<AlertSubject>(&json).expect("decode"), s);
        }
        for bad in ["", "host", "host/", "pod/x", "app/a/b", "route/shop", "host/a b"] {
            assert!(AlertSubject::parse(bad).is_err(), "{bad}");
        }
        assert!(AlertSubject::parse("nope").unwrap_err().contains("host/ID"));
    }

    #[test]
    fn rules_have_one_word_each() {
        for r in AlertRule::ALL {
            assert_eq!(AlertRule::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_string(&r).expect("encode"), format!("\"{}\"", r.as_str()));
        }
        let unknown: AlertRule = serde_json::from_str("\"from_the_future\"").expect("decode");
        assert_eq!(unknown, AlertRule::Unknown);
    }
}
