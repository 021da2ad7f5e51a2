//! The audit trail: every operator command (deploy, restart, route.*, repo.allocate) is
//! recorded with who sent it, what it asked and how the controller answered, as an `AUDIT`
//! event. Events go into the durable stream, so the trail survives controller restarts and
//! `ctl audit` reads it even while no controller runs.
//!
//! Repeats of a command id answered from the reply cache are not recorded again: they
//! change nothing, and the first answer is already on record.

use super::core::Draft;
use crate::protocol::subjects::CtlVerb;
use crate::protocol::{
    Accepted, Allocation, AuditOutcome, AuditRecord, EventKind, Operator, ProtocolError, WireError, validate,
};

/// What an accepted answer adds to the record.
pub(crate) trait Answer {
    fn outcome(&self) -> AuditOutcome;
}

impl Answer for Accepted {
    fn outcome(&self) -> AuditOutcome {
        AuditOutcome { accepted: true, operation_id: self.operation_id.clone(), detail: None, error: None }
    }
}

impl Answer for Allocation {
    fn outcome(&self) -> AuditOutcome {
        AuditOutcome {
            accepted: true,
            operation_id: None,
            detail: Some(format!("slot {} in {}", self.slot, self.bucket)),
            error: None,
        }
    }
}

/// The outcome of a command, accepted or refused.
pub(crate) fn outcome<R: Answer>(result: &Result<R, WireError>) -> AuditOutcome {
    match result {
        Ok(r) => r.outcome(),
        Err(e) => AuditOutcome { accepted: false, operation_id: None, detail: None, error: Some(e.clone()) },
    }
}

/// The record of one command, bounded: whatever was sent, its event fits the bus. Public
/// so the `ctl_request` fuzz target checks this very record (a secret's value kept out).
pub fn record(
    verb: CtlVerb,
    user: &str,
    command_id: &str,
    source: &str,
    operator: Option<Operator>,
    request: serde_json::Value,
    outcome: AuditOutcome,
) -> AuditRecord {
    AuditRecord {
        verb: verb.as_str().to_string(),
        by: Some(user.to_string()),
        command_id: command_id.to_string(),
        source: source.to_string(),
        operator,
        request: redacted(verb, request),
        outcome,
        repeated: None,
    }
    .bounded()
}

/// The request as the trail keeps it: a `secret.set`'s value is left out (only its size
/// is kept), and so is anything else it carried, which could be the value misplaced.
fn redacted(verb: CtlVerb, request: serde_json::Value) -> serde_json::Value {
    if verb != CtlVerb::SecretSet {
        return request;
    }
    let text = |k: &str| request.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let size = text("value").map(|v| v.len());
    serde_json::json!({
        "app": text("app"),
        "name": text("name"),
        "value": size.map_or_else(|| "[redacted]".to_string(), |n| format!("[redacted: {n} bytes]")),
    })
}

/// Why a command's payload did not decode, as its sender and the trail are told: a
/// `secret.set`'s decoder error could quote the value, so it is not passed on; a newer
/// version quotes nothing of the body, and says what the sender must change.
pub fn decode_error(verb: CtlVerb, err: &ProtocolError) -> String {
    match err {
        ProtocolError::Malformed(_) if verb == CtlVerb::SecretSet => {
            "malformed secret.set request: give app, name and value, each a string".into()
        }
        _ => err.to_string(),
    }
}

/// The `AUDIT` event for a record made by [`record`] (of one command, or a summary of
/// repeated refusals), so already bounded.
pub(crate) fn draft_of(record: AuditRecord) -> Draft {
    // The event is filed under the app the command names, when that is a real app name,
    // so `qd.v1.evt.audit.<app>` and the cockpit's filters find it.
    let app = record
        .request
        .get("app")
        .and_then(|v| v.as_str())
        .filter(|a| validate::name("app", a).is_ok())
        .map(str::to_string);
    let message = format!("{}: {} -> {}", record.who(), record.what(), record.result());
    let mut d = Draft::new(EventKind::Audit, message);
    if let Some(app) = app {
        d = d.app(app);
    }
    if let Some(host) = record.request.get("host").and_then(|v| v.as_str()) {
        d = d.host(host);
    }
    if let Some(inst) = record.request.get("instance").and_then(|v| v.as_str()) {
        d = d.instance(inst);
    }
    d.audit = Some(Box::new(record));
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use serde_json::json;

    #[test]
    fn a_record_names_who_what_and_the_outcome() {
        let op =
            Operator::from_parts("alice", "bastion", Some("10.0.0.5 52344 10.0.0.1 22"), Some("ops".into()));
        let ok = Accepted { operation_id: Some("op-1".into()), rev: 9 };
        let d = draft_of(record(
            CtlVerb::Restart,
            "alice",
            "c-1",
            "cockpit/alice@bastion",
            Some(op),
            json!({"app": "shop-web", "batch": 2}),
            outcome(&Ok(ok)),
        ));
        assert_eq!(d.kind, EventKind::Audit);
        assert_eq!(d.app.as_deref(), Some("shop-web"));
        assert_eq!(
            d.message,
            "alice (cockpit/alice@bastion via ssh 10.0.0.5:52344 as nats ops): restart app shop-web (batch 2) -> accepted as op-1"
        );
        let refused: Result<Accepted, WireError> = Err(WireError::not_found("no app \"x\""));
        let d = draft_of(record(
            CtlVerb::Route(crate::protocol::subjects::RouteVerb::Disable),
            "bob",
            "c-2",
            "ctl",
            None,
            json!({"app": "Bad App"}),
            outcome(&refused),
        ));
        assert_eq!(d.app, None, "an invalid app name is not used as a subject token");
        assert!(d.message.ends_with("refused: no app \"x\" (not_found)"), "{}", d.message);
        let rec = d.audit.expect("record");
        assert_eq!(rec.outcome.error.map(|e| e.code), Some(ErrorCode::NotFound));
    }

    /// A secret's value never reaches the trail: the record keeps its app, name and size;
    /// whatever else the request carried goes, and so does a decoder's message.
    #[test]
    fn a_secret_set_is_recorded_without_its_value() {
        let ok = Accepted { operation_id: Some("op-1".into()), rev: 9 };
        let request = json!({"app": "web", "name": "DB_PASS", "value": "hunter2", "extra": "hunter2"});
        let d = draft_of(record(CtlVerb::SecretSet, "alice", "c-1", "ctl", None, request, outcome(&Ok(ok))));
        let rec = d.audit.expect("record");
        let text = serde_json::to_string(&rec).expect("json");
        assert!(!text.contains("hunter2") && !d.message.contains("hunter2"), "{text} {}", d.message);
        assert_eq!(rec.request, json!({"app": "web", "name": "DB_PASS", "value": "[redacted: 7 bytes]"}));
        assert_eq!(d.app.as_deref(), Some("web"));
        let raw = record(
            CtlVerb::SecretSet,
            "a",
            "c",
            "ctl",
            None,
            json!("hunter2"),
            outcome(&Ok(Accepted { operation_id: None, rev: 1 })),
        );
        assert!(!raw.request.to_string().contains("hunter2"), "{}", raw.request);
        let malformed = |m: &str| ProtocolError::Malformed(m.to_string());
        let err =
            decode_error(CtlVerb::SecretSet, &malformed("invalid type: integer `1234`, expected a string"));
        assert!(!err.contains("1234"), "{err}");
        assert!(decode_error(CtlVerb::Deploy, &malformed("missing field `app`")).contains("`app`"));
        let newer = decode_error(CtlVerb::SecretSet, &ProtocolError::UnsupportedVersion { found: 99 });
        assert!(newer.contains("version 99"), "a newer sender is told its version: {newer}");
    }
}
