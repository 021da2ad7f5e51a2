//! Every request body the controller takes on `qd.v1.ctl.<user>.<verb>`, chosen by the first byte:
//! decoded as the controller decodes it, validated with the same rules, and recorded in
//! the audit trail, whose record must stay bounded whatever was sent. A `secret.set`'s
//! record is the controller's own (`audit_record`), and its value never reaches it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quarterdeck::plane::controller::{audit_decode_error, audit_record, build_app, check_route};
use quarterdeck::protocol::alert::SILENCE_MAX_MS;
use quarterdeck::protocol::release::{ReleasesRequest, RollbackRequest};
use quarterdeck::protocol::subjects::{CtlVerb, HostVerb, RouteVerb};
use quarterdeck::protocol::timeline::check_note;
use quarterdeck::protocol::{
    AlertAckRequest, AlertSubject, AllocateRequest, AppRemoveRequest, AuditOutcome, DeployRequest,
    HistoryRequest, HostRequest, NoteRequest, Operator, RestartBody, RestartRequest, RouteRequest,
    ScaleRequest, SecretSetRequest, SilenceRequest, SnapshotRequest, WireError, audit, decode, validate,
};
use quarterdeck_fuzz::{command, round_trip, split};
use serde_json::Value;

/// The controller's own checks of a deploy (`build_app`), for a new app and for a
/// redeploy of an existing one; what they accept is valid throughout.
fn deploy(req: &DeployRequest) -> Result<(), String> {
    let new = build_app(None, req).map_err(|e| e.reason)?;
    validate::run(&new.run)?;
    round_trip(&new);
    if let Ok(again) = build_app(Some(&new), req) {
        assert_eq!(again.image, new.image, "a redeploy of the same request keeps the image");
    }
    Ok(())
}

/// The restart's own checks; its names are then looked up in the fleet, and a name not
/// there is refused quoted (`validate::quoted`).
fn restart(req: &RestartBody) -> Result<(), String> {
    if req.batch == Some(0) {
        return Err("batch must be at least 1".into());
    }
    let names: Vec<&String> = match &req.target {
        RestartRequest::App(n) | RestartRequest::Host(n) | RestartRequest::Instance(n) => vec![n],
        RestartRequest::Instances(list) => list.iter().collect(),
    };
    names.iter().for_each(|n| drop(validate::quoted(n)));
    Ok(())
}

/// The checks `secret.set` makes before it looks at the fleet (`secrets::start_secret_set`).
fn secret_checks(req: &SecretSetRequest) -> Result<(), String> {
    validate::name("app", &req.app)?;
    validate::env_name("secret", &req.name)?;
    validate::secret_value(&req.name, &req.value)
}

/// `value` with every character replaced by another of the same UTF-8 length (NUL kept,
/// since it decides the refusal): what a record may depend on is only the value's size
/// and whether it is valid.
fn other_value(value: &str) -> String {
    value
        .chars()
        .map(|c| match c.len_utf8() {
            _ if c == '\0' => c,
            1 => {
                if c == 'x' {
                    'y'
                } else {
                    'x'
                }
            }
            2 => {
                if c == 'é' {
                    'è'
                } else {
                    'é'
                }
            }
            3 => {
                if c == '€' {
                    '£'
                } else {
                    '€'
                }
            }
            _ => {
                if c == '𝄞' {
                    '𝄢'
                } else {
                    '𝄞'
                }
            }
        })
        .collect()
}

/// The controller's audit record of a `secret.set` whose body is `body` (refused with
/// `refusal`, else accepted), as bytes.
fn secret_record(
    id: &str,
    source: &str,
    operator: Option<Operator>,
    body: Value,
    refusal: Option<WireError>,
) -> Vec<u8> {
    let outcome = match refusal {
        Some(e) => AuditOutcome {
            accepted: false,
            operation_id: None,
            detail: None,
            error: Some(audit::bounded_error(e)),
        },
        None => AuditOutcome { accepted: true, operation_id: Some("op-1".into()), detail: None, error: None },
    };
    let record = audit_record(CtlVerb::SecretSet, "alice", id, source, operator, body, outcome);
    serde_json::to_vec(&record).expect("a record encodes")
}

/// A `secret.set` as the controller takes it, decoded or not: the record it keeps is the
/// same whatever the value's bytes, and holds none of a value of 8 bytes or more (raw or
/// JSON-escaped) unless the rest of the command holds them too.
fn secret_set(payload: &[u8]) {
    type Refusal = Box<dyn Fn(&Value) -> Option<WireError>>;
    // Who sent it, the body as JSON, and the refusal the record keeps for a body.
    let (id, source, operator, body, refusal): (String, String, Option<Operator>, Value, Refusal) =
        match decode::<SecretSetRequest>(payload) {
            Ok(env) => {
                let _ = command("secret.set", payload, secret_checks);
                let body = serde_json::to_value(&env.body).expect("a decoded body encodes");
                let check = |b: &Value| {
                    let req: SecretSetRequest =
                        serde_json::from_value(b.clone()).expect("the substitute still decodes");
                    secret_checks(&req).err().map(WireError::bad_request)
                };
                (env.id, env.source, env.operator, body, Box::new(check))
            }
            Err(err) => {
                let Ok(raw) = decode::<Value>(payload) else { return };
                let why = audit_decode_error(CtlVerb::SecretSet, &err);
                let refuse = move |_: &Value| Some(WireError::bad_request(why.clone()));
                (raw.id, raw.source, raw.operator, raw.body, Box::new(refuse))
            }
        };
    let record_of = |b: &Value| secret_record(&id, &source, operator.clone(), b.clone(), refusal(b));
    let record = record_of(&body);
    let Some(value) = body.get("value").and_then(Value::as_str) else { return };
    let mut other = body.clone();
    other["value"] = Value::String(other_value(value));
    let without = record_of(&other);
    if value.len() >= 8 {
        let escaped = serde_json::to_string(value).expect("a string encodes");
        let escaped = &escaped[1..escaped.len() - 1];
        for form in [value, escaped] {
            let holds = |bytes: &[u8]| bytes.windows(form.len()).any(|w| w == form.as_bytes());
            assert!(
                !holds(&record) || holds(&without),
                "a secret.set's audit record holds its value: {}",
                String::from_utf8_lossy(&record)
            );
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&record),
        String::from_utf8_lossy(&without),
        "a secret.set's audit record depends on its value's bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = split(data) else { return };
    // New verbs take the next selectors, so the seeds of the older ones keep their meaning.
    match selector % 21 {
        0 => {
            // A snapshot request that does not decode still gets the whole fleet.
            if let Ok(env) = decode::<SnapshotRequest>(payload) {
                round_trip(&env.body);
            }
        }
        1 => {
            if let Ok(env) = decode::<HistoryRequest>(payload) {
                round_trip(&env.body);
            }
        }
        2 => {
            command("repo.allocate", payload, |r: &AllocateRequest| {
                validate::name("app", &r.app)?;
                validate::version(&r.version)?;
                // The slot a valid request gets names one object in the repository.
                let slot = quarterdeck::repository::slot(&r.app, &r.version);
                assert!(!slot.contains('/') && !slot.is_empty(), "slot {slot:?}");
                Ok(())
            });
        }
        3 => {
            command("deploy", payload, deploy);
        }
        4 => {
            command("restart", payload, restart);
        }
        s @ 5..=9 => {
            let verb = RouteVerb::ALL[usize::from(s - 5)];
            command(CtlVerb::Route(verb).as_str(), payload, |r: &RouteRequest| {
                check_route(verb, r).map(drop).map_err(|e| e.reason)
            });
        }
        10 => {
            command("scale", payload, |r: &ScaleRequest| {
                validate::name("app", &r.app)?;
                validate::scale_instances(r.instances)
            });
        }
        11 => {
            command("app.remove", payload, |r: &AppRemoveRequest| validate::name("app", &r.app));
        }
        s @ 12..=14 => {
            let verb = CtlVerb::Host(HostVerb::ALL[usize::from(s - 12)]);
            command(verb.as_str(), payload, |r: &HostRequest| validate::name("host", &r.host));
        }
        15 => secret_set(payload),
        16 => {
            // A read, not audited; the record's bound is checked all the same.
            command("releases", payload, |r: &ReleasesRequest| validate::name("app", &r.app));
        }
        17 => {
            command("rollback", payload, |r: &RollbackRequest| validate::name("app", &r.app));
        }
        18 => {
            command("alert.ack", payload, |r: &AlertAckRequest| {
                (!r.id.is_empty()).then_some(()).ok_or_else(|| "no alert id".to_string())
            });
        }
        19 => {
            // A subject that decoded is one of its forms: its text reads back as itself.
            command("alert.silence", payload, |r: &SilenceRequest| {
                let text = r.subject.to_string();
                assert_eq!(AlertSubject::parse(&text).as_ref(), Ok(&r.subject), "{text}");
                (r.for_ms <= SILENCE_MAX_MS).then_some(()).ok_or_else(|| "too long".to_string())
            });
        }
        _ => {
            // A note the rule takes is kept whole: one line, no control character.
            command("note", payload, |r: &NoteRequest| {
                let kept = check_note(&r.text)?;
                assert!(!kept.is_empty() && !kept.chars().any(char::is_control), "{kept:?}");
                Ok(())
            });
        }
    }
});
