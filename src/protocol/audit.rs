//! Who asked for what: the operator identity commands carry, the audit record the
//! controller keeps of every operator command, and the restart body with its batch size.
//! All additive: a peer that does not know these fields ignores them.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::event::{Change, Event, EventKind};
use super::messages::{RestartRequest, WireError};
use super::model::{Operation, OperationState};
use super::validate::{QUOTE_MAX, cut};

/// Who is at the controls, as the client tells it. Carried on the envelope of commands
/// (`operator`, optional). NATS does not tell a subscriber who published a message, so
/// every field is the client's own claim: the NATS account limits who can send at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// The login and machine the client runs on: `alice@bastion-1`.
    pub user: String,
    /// The SSH client the operator came in from (`SSH_CONNECTION`), `ip:port`, when the
    /// client runs in an SSH session.
    #[serde(default)]
    pub ssh_client: Option<String>,
    /// The NATS user the client authenticated as: `--user`, or the name in the `--creds`
    /// JWT.
    #[serde(default)]
    pub nats_user: Option<String>,
}

impl Operator {
    /// Builds the identity from the values the environment gives: `USER`, the host name,
    /// `SSH_CONNECTION` (`client_ip client_port server_ip server_port`) and the NATS user.
    pub fn from_parts(
        user: &str,
        host: &str,
        ssh_connection: Option<&str>,
        nats_user: Option<String>,
    ) -> Self {
        let ssh_client = ssh_connection.and_then(|s| {
            let mut parts = s.split_whitespace();
            let ip = parts.next()?;
            let port = parts.next()?;
            Some(if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") })
        });
        Operator {
            user: format!("{user}@{host}"),
            ssh_client,
            nats_user: nats_user.filter(|u| !u.is_empty()),
        }
    }

    /// `alice@bastion-1 via ssh 10.0.0.5:52344 as nats ops`.
    pub fn describe(&self) -> String {
        let mut out = self.user.clone();
        if let Some(ssh) = &self.ssh_client {
            out.push_str(&format!(" via ssh {ssh}"));
        }
        if let Some(n) = &self.nats_user {
            out.push_str(&format!(" as nats {n}"));
        }
        out
    }
}

/// How a command ended, as far as the controller's answer goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditOutcome {
    pub accepted: bool,
    /// The operation the command started, if any.
    #[serde(default)]
    pub operation_id: Option<String>,
    /// Anything else the answer said, e.g. the repository slot.
    #[serde(default)]
    pub detail: Option<String>,
    /// Why it was refused.
    #[serde(default)]
    pub error: Option<WireError>,
}

/// One operator command, as the controller recorded it in an `AUDIT` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The controller verb: `deploy`, `restart`, `route.add`, `repo.allocate` ...
    pub verb: String,
    /// The user the command's subject named (`qd.v1.ctl.<user>.<verb>`). With roles on,
    /// nats-server lets a user publish only under its own name, so this is the user the
    /// server vouches for; `operator` is the client's own account of itself (login@host,
    /// SSH client), kept as context. Absent from records made before users were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The envelope id of the command.
    pub command_id: String,
    /// The envelope's `source`: `cockpit/alice@bastion-1`, `ctl/alice@bastion-1`.
    pub source: String,
    /// The identity the command carried; absent from clients that send none.
    #[serde(default)]
    pub operator: Option<Operator>,
    /// The request body as it arrived, bounded ([`AuditRecord::bounded`]).
    #[serde(default)]
    pub request: serde_json::Value,
    pub outcome: AuditOutcome,
    /// On a summary of identical refusals: how many more there were after the one
    /// recorded first, and over what time. Absent on a record of one command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeated: Option<Repeated>,
}

/// Identical refusals from one client, counted instead of recorded one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeated {
    /// Refusals counted, not counting the first (which has its own record).
    pub count: u64,
    /// When the first of them and the last of them arrived, ms since the Unix epoch.
    pub first_ts: u64,
    pub last_ts: u64,
}

/// The most bytes of the encoded `request` an audit record keeps, and of one string in it.
pub const MAX_REQUEST: usize = 16 * 1024;
const MAX_STRING: usize = 512;
/// The most entries of one array or object kept, and how deep the body is followed.
const MAX_ITEMS: usize = 64;
const MAX_DEPTH: usize = 8;
/// The most bytes of a refusal's reason, and of the command id, source and identity.
pub const MAX_REASON: usize = 2 * 1024;
const MAX_IDENT: usize = 256;

/// `e` with its reason cut to [`MAX_REASON`]: a reason may quote what was sent (a decode
/// error quotes the input), and it goes into the reply and the audit record.
pub fn bounded_error(mut e: WireError) -> WireError {
    if e.reason.len() > MAX_REASON {
        e.reason = cut(&e.reason, MAX_REASON).into_owned();
    }
    e
}

/// `v` with every string cut to `max_string` bytes, arrays and objects cut to
/// [`MAX_ITEMS`] entries (a marker string says how many were left out) and nesting below
/// [`MAX_DEPTH`] replaced by a marker.
fn bound_json(v: &serde_json::Value, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    let marker = |what: String| Value::String(format!("…[cut: {what}]"));
    match v {
        Value::String(s) => Value::String(cut(s, MAX_STRING).into_owned()),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => marker("nested too deep".into()),
        Value::Array(items) => {
            let mut out: Vec<Value> =
                items.iter().take(MAX_ITEMS).map(|i| bound_json(i, depth + 1)).collect();
            if items.len() > MAX_ITEMS {
                out.push(marker(format!("{} more items", items.len() - MAX_ITEMS)));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .take(MAX_ITEMS)
                .map(|(k, v)| (cut(k, QUOTE_MAX).into_owned(), bound_json(v, depth + 1)))
                .collect();
            if map.len() > MAX_ITEMS {
                out.insert("…".into(), marker(format!("{} more keys", map.len() - MAX_ITEMS)));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// A request body bounded for the record: each part cut as [`bound_json`] says, and if
/// it is still over [`MAX_REQUEST`] encoded, the start of its encoding as one string.
pub fn bounded_request(v: &serde_json::Value) -> serde_json::Value {
    let bounded = bound_json(v, 0);
    let text = serde_json::to_string(&bounded).unwrap_or_default();
    if text.len() <= MAX_REQUEST {
        return bounded;
    }
    serde_json::Value::String(cut(&text, MAX_STRING).into_owned())
}

impl AuditRecord {
    /// This record with everything it echoes from the input bounded, so that its event
    /// fits the bus's max_payload whatever was sent: the request, the reason, the command
    /// id, the source and the identity, each cut with a marker that says so.
    pub fn bounded(mut self) -> Self {
        let ident = |s: &mut String| {
            if s.len() > MAX_IDENT {
                *s = cut(s, MAX_IDENT).into_owned();
            }
        };
        ident(&mut self.verb);
        self.by.iter_mut().for_each(ident);
        ident(&mut self.command_id);
        ident(&mut self.source);
        if let Some(op) = &mut self.operator {
            ident(&mut op.user);
            op.ssh_client.iter_mut().for_each(ident);
            op.nats_user.iter_mut().for_each(ident);
        }
        self.request = bounded_request(&self.request);
        let o = &mut self.outcome;
        o.operation_id.iter_mut().for_each(ident);
        if let Some(d) = &mut o.detail
            && d.len() > MAX_REASON
        {
            *d = cut(d, MAX_REASON).into_owned();
        }
        o.error = o.error.take().map(bounded_error);
        self
    }

    /// What was asked, in words: `restart app shop-web (batch 2)`.
    pub fn what(&self) -> String {
        describe_request(&self.verb, &self.request)
    }

    /// Who asked: the user the subject named, with the client's own account as context
    /// (`alice (cockpit/alice@bastion-1 via ssh 10.0.0.5:52344)`); for records from
    /// before users were named, the client's account alone.
    pub fn who(&self) -> String {
        let tool = self.source.split('/').next().unwrap_or(&self.source);
        let claimed = match &self.operator {
            Some(op) => format!("{tool}/{}", op.describe()),
            None => self.source.clone(),
        };
        match self.by.as_deref().filter(|b| !b.is_empty()) {
            Some(by) => format!("{by} ({claimed})"),
            None => claimed,
        }
    }

    /// The person: the user the subject named, else the client's `alice@bastion-1`, else
    /// the bare source.
    pub fn user(&self) -> String {
        if let Some(by) = self.by.as_deref().filter(|b| !b.is_empty()) {
            return by.to_string();
        }
        match &self.operator {
            Some(op) if !op.user.is_empty() => op.user.clone(),
            _ => self.source.clone(),
        }
    }

    /// How the command came: the tool, the login it ran as (when the user column shows
    /// the subject's user instead), the SSH client and the NATS user, e.g.
    /// `cockpit · alice@bastion-1 · ssh 10.0.0.5:52344 · nats ops`.
    pub fn via(&self) -> String {
        let mut parts = vec![self.source.split('/').next().unwrap_or(&self.source).to_string()];
        if let Some(op) = &self.operator {
            if self.by.as_deref().is_some_and(|b| !b.is_empty()) && !op.user.is_empty() {
                parts.push(op.user.clone());
            }
            if let Some(ssh) = &op.ssh_client {
                parts.push(format!("ssh {ssh}"));
            }
            if let Some(n) = &op.nats_user {
                parts.push(format!("nats {n}"));
            }
        }
        parts.join(" · ")
    }

    /// `accepted as op-…`, `accepted`, `refused: reason (code)`, and for a summary of
    /// repeats `refused 3,412 more times in 10 s: reason (code)`.
    pub fn result(&self) -> String {
        let o = &self.outcome;
        match (&o.error, &o.operation_id, &o.detail) {
            (Some(e), _, _) => match &self.repeated {
                Some(r) => format!(
                    "refused {} more time{} in {}: {} ({})",
                    thousands(r.count),
                    if r.count == 1 { "" } else { "s" },
                    seconds(r.last_ts.saturating_sub(r.first_ts)),
                    e.reason,
                    e.code.as_str()
                ),
                None => format!("refused: {} ({})", e.reason, e.code.as_str()),
            },
            (None, Some(op), _) => format!("accepted as {op}"),
            (None, None, Some(d)) => format!("accepted: {d}"),
            (None, None, None) if o.accepted => "accepted".into(),
            _ => "refused".into(),
        }
    }
}

/// `3412` as `3,412`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span in whole seconds, or in ms under one second: `10 s`, `250 ms`.
fn seconds(ms: u64) -> String {
    if ms < 1000 { format!("{ms} ms") } else { format!("{} s", (ms + 500) / 1000) }
}

/// How the operation a command started stands, joined to its audit record by operation id:
/// from the operation itself (the cockpit's replica) or from its closing event (`ctl
/// audit`, which reads the stream). The audit record is written when the command is
/// accepted and never changes; this is how a reader shows how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationEnd {
    pub id: String,
    pub state: OperationState,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub finished_at: Option<u64>,
}

impl OperationEnd {
    pub fn of(op: &Operation) -> Self {
        OperationEnd {
            id: op.id.clone(),
            state: op.state,
            error: op.error.clone(),
            finished_at: op.finished_at,
        }
    }

    /// The end an `OPERATION_SUCCEEDED` / `OPERATION_FAILED` event records; `None` for any
    /// other event.
    pub fn from_event(e: &Event) -> Option<Self> {
        if !matches!(e.kind, EventKind::OperationSucceeded | EventKind::OperationFailed) {
            return None;
        }
        let ours = |id: &String| Some(id) == e.operation_id.as_ref();
        e.changes.iter().find_map(|c| match c {
            Change::OperationEnded(end) if ours(&end.id) => Some(OperationEnd {
                id: end.id.clone(),
                state: end.state,
                error: end.error.clone(),
                finished_at: Some(end.finished_at),
            }),
            // A v1 controller closed an operation by sending it whole.
            Change::Operation(op) if ours(&op.id) => Some(OperationEnd::of(op)),
            _ => None,
        })
    }
}

/// How a command turned out, for the mark and colour a reader gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done: accepted without an operation, or its operation succeeded.
    Good,
    /// Refused (expired too), or its operation failed.
    Bad,
    /// Its operation is still running.
    Pending,
    /// Accepted as an operation whose end the reader does not have.
    Unknown,
}

impl Verdict {
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Good => "✓",
            Verdict::Bad => "✕",
            Verdict::Pending => "…",
            Verdict::Unknown => "?",
        }
    }
}

impl AuditRecord {
    /// The end of this command's operation among `operations` (a fleet's: running ones and
    /// the newest finished ones), if it started one and it is there.
    pub fn operation_end(&self, operations: &BTreeMap<String, Operation>) -> Option<OperationEnd> {
        operations.get(self.outcome.operation_id.as_deref()?).map(OperationEnd::of)
    }

    /// How the command ended: the refusal, or how the operation it started stands (`end`,
    /// found by the reader for `outcome.operation_id`), in words.
    pub fn conclusion(&self, end: Option<&OperationEnd>) -> (Verdict, String) {
        let o = &self.outcome;
        let Some(op) = o.operation_id.as_deref().filter(|_| o.error.is_none() && o.accepted) else {
            let verdict = if o.accepted && o.error.is_none() { Verdict::Good } else { Verdict::Bad };
            return (verdict, self.result());
        };
        match end.filter(|e| e.id == op) {
            Some(e) => match e.state {
                OperationState::Succeeded => (Verdict::Good, format!("succeeded ({op})")),
                OperationState::Failed => {
                    let reason = e.error.as_deref().unwrap_or("no reason given");
                    (Verdict::Bad, format!("failed: {reason} ({op})"))
                }
                OperationState::Running => (Verdict::Pending, format!("running ({op})")),
            },
            None => (Verdict::Unknown, format!("outcome unknown ({op})")),
        }
    }
}

/// A request body in words, from its JSON, for any verb (a malformed body too).
pub fn describe_request(verb: &str, body: &serde_json::Value) -> String {
    let s = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let n = |k: &str| body.get(k).and_then(|v| v.as_u64());
    let batch = n("batch").map(|b| format!(" (batch {b})")).unwrap_or_default();
    match verb {
        "deploy" => format!(
            "deploy {}@{} x{}",
            s("app").unwrap_or_else(|| "?".into()),
            s("version").unwrap_or_else(|| "?".into()),
            n("instances").unwrap_or(0)
        ),
        "restart" => {
            let target = if let Some(i) = s("instance") {
                format!("instance {i}")
            } else if let Some(a) = s("app") {
                format!("app {a}")
            } else if let Some(h) = s("host") {
                format!("host {h}")
            } else if let Some(list) = body.get("instances").and_then(|v| v.as_array()) {
                format!("{} instances", list.len())
            } else {
                "?".into()
            };
            format!("restart {target}{batch}")
        }
        "repo.allocate" => format!(
            "repo.allocate {}@{}",
            s("app").unwrap_or_else(|| "?".into()),
            s("version").unwrap_or_else(|| "?".into())
        ),
        v if v.starts_with("route.") => {
            let weight = n("weight").map(|w| format!(" weight {w}")).unwrap_or_default();
            format!(
                "{v} {} {}{weight}",
                s("app").unwrap_or_else(|| "?".into()),
                s("backend").unwrap_or_else(|| "?".into())
            )
        }
        // Sessions into an instance (exec, port-forward), as their agents report them.
        "exec" | "port-forward" => format!(
            "{verb} {}: {}",
            s("instance").unwrap_or_else(|| "?".into()),
            s("command").unwrap_or_default()
        ),
        "scale" => match n("instances") {
            Some(to) => format!("scale {} to {to}", s("app").unwrap_or_else(|| "?".into())),
            None => format!("scale {} to ?", s("app").unwrap_or_else(|| "?".into())),
        },
        "app.remove" => format!("app.remove {}", s("app").unwrap_or_else(|| "?".into())),
        other => other.to_string(),
    }
}

/// `qd.v1.ctl.restart` as the controller reads it: one target, plus how many instances
/// restart at a time. On the wire the target's key and `batch` sit side by side:
/// `{"app": "shop-web", "batch": 2}`. Without `batch` it is exactly a [`RestartRequest`],
/// so old clients are understood; unknown keys are ignored, two targets are an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartBody {
    pub target: RestartRequest,
    /// Instances restarted together; 1 (one at a time) when absent.
    pub batch: Option<u32>,
}

impl From<RestartRequest> for RestartBody {
    fn from(target: RestartRequest) -> Self {
        RestartBody { target, batch: None }
    }
}

impl Serialize for RestartBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match &self.target {
            RestartRequest::Instance(i) => map.serialize_entry("instance", i)?,
            RestartRequest::App(a) => map.serialize_entry("app", a)?,
            RestartRequest::Host(h) => map.serialize_entry("host", h)?,
            RestartRequest::Instances(list) => map.serialize_entry("instances", list)?,
        }
        if let Some(b) = self.batch {
            map.serialize_entry("batch", &b)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RestartBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            instance: Option<String>,
            #[serde(default)]
            app: Option<String>,
            #[serde(default)]
            host: Option<String>,
            #[serde(default)]
            instances: Option<Vec<String>>,
            #[serde(default)]
            batch: Option<u32>,
        }
        let raw = Raw::deserialize(d)?;
        let mut targets = Vec::new();
        if let Some(i) = raw.instance {
            targets.push(RestartRequest::Instance(i));
        }
        if let Some(a) = raw.app {
            targets.push(RestartRequest::App(a));
        }
        if let Some(h) = raw.host {
            targets.push(RestartRequest::Host(h));
        }
        if let Some(list) = raw.instances {
            targets.push(RestartRequest::Instances(list));
        }
        match (targets.pop(), targets.is_empty()) {
            (Some(target), true) => Ok(RestartBody { target, batch: raw.batch }),
            _ => Err(D::Error::custom("a restart names exactly one of instance, app, host or instances")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorCode, OperationKind};

    fn record(outcome: AuditOutcome) -> AuditRecord {
        AuditRecord {
            verb: "deploy".into(),
            by: None,
            command_id: "c-1".into(),
            source: "ctl/alice@bastion".into(),
            operator: None,
            request: serde_json::json!({"app": "shop-web", "version": "2.0", "instances": 2}),
            outcome,
            repeated: None,
        }
    }

    fn accepted_as(op: &str) -> AuditRecord {
        record(AuditOutcome { accepted: true, operation_id: Some(op.into()), detail: None, error: None })
    }

    fn operation(id: &str, state: OperationState, error: Option<&str>) -> Operation {
        Operation {
            id: id.into(),
            kind: OperationKind::Deploy,
            app: "shop-web".into(),
            target: "shop-web@2.0 x2".into(),
            steps: vec![],
            state,
            error: error.map(str::to_string),
            started_at: 1,
            finished_at: (state != OperationState::Running).then_some(2),
            compacted: None,
            command_id: Some("c-1".into()),
        }
    }

    #[test]
    fn a_record_shows_how_its_operation_ended() {
        let r = accepted_as("op-1");
        let failed =
            OperationEnd::of(&operation("op-1", OperationState::Failed, Some("no up host in AZ az-9")));
        assert_eq!(
            r.conclusion(Some(&failed)),
            (Verdict::Bad, "failed: no up host in AZ az-9 (op-1)".into())
        );
        let ok = OperationEnd::of(&operation("op-1", OperationState::Succeeded, None));
        assert_eq!(r.conclusion(Some(&ok)), (Verdict::Good, "succeeded (op-1)".into()));
        let running = OperationEnd::of(&operation("op-1", OperationState::Running, None));
        assert_eq!(r.conclusion(Some(&running)), (Verdict::Pending, "running (op-1)".into()));
        // Without the end, or with another operation's, it says it does not know.
        let unknown = (Verdict::Unknown, "outcome unknown (op-1)".to_string());
        assert_eq!(r.conclusion(None), unknown);
        let other = OperationEnd::of(&operation("op-2", OperationState::Succeeded, None));
        assert_eq!(r.conclusion(Some(&other)), unknown);
    }

    #[test]
    fn refusals_and_commands_without_an_operation_keep_their_answer() {
        let refused = record(AuditOutcome {
            accepted: false,
            operation_id: None,
            detail: None,
            error: Some(WireError::new(ErrorCode::Expired, "arrived 3000 ms after its deadline")),
        });
        let (verdict, text) = refused.conclusion(None);
        assert_eq!(verdict, Verdict::Bad);
        assert_eq!(text, "refused: arrived 3000 ms after its deadline (expired)");
        let route = record(AuditOutcome { accepted: true, operation_id: None, detail: None, error: None });
        assert_eq!(route.conclusion(None), (Verdict::Good, "accepted".into()));
    }

    #[test]
    fn a_summary_of_repeats_says_how_many_and_over_what_time() {
        let mut r = record(AuditOutcome {
            accepted: false,
            operation_id: None,
            detail: None,
            error: Some(WireError::bad_request("app \"X\" is not valid")),
        });
        r.repeated = Some(Repeated { count: 3412, first_ts: 1_000, last_ts: 10_600 });
        assert_eq!(r.result(), "refused 3,412 more times in 10 s: app \"X\" is not valid (bad_request)");
        r.repeated = Some(Repeated { count: 1, first_ts: 1_000, last_ts: 1_250 });
        assert_eq!(r.result(), "refused 1 more time in 250 ms: app \"X\" is not valid (bad_request)");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn a_bounded_record_cuts_every_echoed_field_and_says_so() {
        let huge = "\u{1}".repeat(400_000);
        let mut r = record(AuditOutcome {
            accepted: false,
            operation_id: None,
            detail: None,
            error: Some(WireError::bad_request(format!("app {huge:?} is not valid"))),
        });
        r.command_id = huge.clone();
        r.source = huge.clone();
        r.operator = Some(Operator { user: huge.clone(), ssh_client: Some(huge.clone()), nats_user: None });
        let list: Vec<serde_json::Value> = (0..10_000).map(|i| serde_json::json!({"i": i})).collect();
        r.request = serde_json::json!({"app": huge, "list": list, huge.clone(): 1});
        let r = r.bounded();
        let size = serde_json::to_vec(&r).map(|b| b.len()).unwrap_or(usize::MAX);
        assert!(size < 64 * 1024, "{size} bytes");
        assert!(r.command_id.contains("[cut: "), "{}", r.command_id);
        let reason = r.outcome.error.map(|e| e.reason).unwrap_or_default();
        assert!(reason.ends_with(" bytes]"), "{}", &reason[reason.len() - 40..]);
        let app = r.request["app"].as_str().unwrap_or_default();
        assert!(
            app.ends_with(&format!("[cut: {} bytes]", 400_000 - MAX_STRING)),
            "{}",
            &app[app.len() - 30..]
        );
        let list = r.request["list"].as_array().map(Vec::len);
        assert_eq!(list, Some(MAX_ITEMS + 1), "64 kept, and the marker");
        // A small record is left as it was.
        let small = accepted_as("op-1");
        assert_eq!(small.clone().bounded(), small);
    }

    #[test]
    fn only_a_closing_event_gives_an_operation_end() {
        let op = operation("op-1", OperationState::Failed, Some("boom"));
        let mut e = Event {
            rev: 9,
            ts: 2,
            kind: EventKind::OperationFailed,
            app: Some("shop-web".into()),
            host: None,
            instance: None,
            operation_id: Some("op-1".into()),
            message: "boom".into(),
            changes: vec![Change::Operation(op.clone())],
            audit: None,
        };
        assert_eq!(OperationEnd::from_event(&e), Some(OperationEnd::of(&op)), "as a v1 controller wrote it");
        e.changes = vec![Change::OperationEnded(crate::protocol::OperationEnded {
            id: "op-1".into(),
            state: OperationState::Failed,
            error: Some("boom".into()),
            finished_at: 2,
            steps: crate::protocol::StepCounts { total: 3, done: 2, failed: 1 },
        })];
        assert_eq!(OperationEnd::from_event(&e), Some(OperationEnd::of(&op)), "the end delta says the same");
        e.operation_id = Some("op-2".into());
        assert_eq!(OperationEnd::from_event(&e), None, "another operation's end is not this one's");
        e.operation_id = Some("op-1".into());
        e.kind = EventKind::HealthCheck;
        assert_eq!(OperationEnd::from_event(&e), None, "a step is not an end");
    }

    #[test]
    fn a_scale_and_an_app_removal_in_words() {
        let scale = serde_json::json!({"app": "shop-web", "instances": 0});
        assert_eq!(describe_request("scale", &scale), "scale shop-web to 0");
        assert_eq!(describe_request("scale", &serde_json::json!({"app": 1})), "scale ? to ?");
        assert_eq!(
            describe_request("app.remove", &serde_json::json!({"app": "shop-web"})),
            "app.remove shop-web"
        );
    }
}
