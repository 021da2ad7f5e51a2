//! What every fuzz target checks beyond "no panic": whatever a decoder accepts must encode
//! and decode again to the same thing (a controller stores and relays what it read, and a
//! replica must read it back), and whatever is echoed into an audit record stays bounded.

use quarterdeck::protocol::{
    AuditOutcome, AuditRecord, Envelope, Operator, WireError, audit, decode, encode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The most bytes an audit record's event may take whatever the command held: far below
/// nats-server's default max_payload (1 MiB), so the `AUDIT` event always publishes.
pub const AUDIT_RECORD_MAX: usize = 64 * 1024;

/// Splits a fuzz input into a selector (its first byte) and the rest.
pub fn split(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}

/// `value` encoded, decoded and encoded again gives the same JSON (floats to f32
/// precision: they travel as f32 and serde_json reads them through f64).
pub fn round_trip<T: Serialize + DeserializeOwned>(value: &T) {
    let first = serde_json::to_vec(value).expect("a decoded value encodes");
    let again: T = match serde_json::from_slice(&first) {
        Ok(v) => v,
        Err(e) => panic!("a decoded value does not decode once encoded: {e}\n{}", lossy(&first)),
    };
    let second = serde_json::to_vec(&again).expect("a decoded value encodes");
    let (a, b) = (as_json(&first), as_json(&second));
    assert!(same_json(&a, &b), "encoding is not stable:\n{}\n{}", lossy(&first), lossy(&second));
}

/// An envelope decoded as `T`, encoded again, decodes to the same envelope.
pub fn envelope_round_trip<T: Serialize + DeserializeOwned>(env: &Envelope<T>) {
    let bytes = encode(env).expect("a decoded envelope encodes");
    match decode::<T>(&bytes) {
        Ok(again) => {
            let first = serde_json::to_vec(env).expect("encodes");
            let second = serde_json::to_vec(&again).expect("encodes");
            assert!(
                same_json(&as_json(&first), &as_json(&second)),
                "an envelope changed through encode and decode:\n{}\n{}",
                lossy(&first),
                lossy(&second)
            );
        }
        Err(e) => panic!("a decoded envelope does not decode once encoded: {e}\n{}", lossy(&bytes)),
    }
}

fn as_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("serde_json reads what it wrote")
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned()
}

/// JSON equality, with floats equal to f32 precision.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64(), x.as_i64(), y.as_i64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => {
                let (p, q) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                p == q || ((p - q).abs() <= p.abs().max(q.abs()) * 1e-6)
            }
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// The audit record the controller makes of a command (as `plane/controller/audit.rs`
/// does: the envelope's id, source and operator, the body as it arrived, the outcome),
/// bounded; checks that it stays small and that every way it is shown works.
pub fn audit_record(
    verb: &str,
    id: &str,
    source: &str,
    operator: Option<Operator>,
    body: Value,
    refusal: Option<WireError>,
) {
    let outcome = match refusal {
        Some(e) => AuditOutcome { accepted: false, operation_id: None, detail: None, error: Some(e) },
        None => AuditOutcome { accepted: true, operation_id: Some("op-1".into()), detail: None, error: None },
    };
    let record = AuditRecord {
        verb: verb.to_string(),
        // The subject's user is one token the server checked; the source stands in for any
        // string, to hold the record's bound.
        by: Some(source.to_string()),
        command_id: id.to_string(),
        source: source.to_string(),
        operator,
        request: body,
        outcome,
        repeated: None,
    }
    .bounded();
    let bytes = serde_json::to_vec(&record).expect("a record encodes");
    assert!(
        bytes.len() <= AUDIT_RECORD_MAX,
        "an audit record of {} bytes, more than {AUDIT_RECORD_MAX}: {}",
        bytes.len(),
        lossy(&bytes)
    );
    let _ = (record.what(), record.who(), record.user(), record.via(), record.result());
    let _ = audit::describe_request(verb, &record.request);
    round_trip(&record);
}

/// The controller's path for a command body `T` on `verb`: the envelope decoded (or, when
/// the body does not decode, read as plain JSON for the record), the deadline checked,
/// `check` run on the body, and the audit record made.
pub fn command<T: Serialize + DeserializeOwned>(
    verb: &str,
    payload: &[u8],
    check: impl FnOnce(&T) -> Result<(), String>,
) -> Option<T> {
    match decode::<T>(payload) {
        Ok(env) => {
            let _ = env.check_deadline(u64::MAX / 2);
            let _ = quarterdeck::protocol::validate::command_id(&env.id);
            envelope_round_trip(&env);
            let refusal = check(&env.body).err().map(WireError::bad_request).map(audit::bounded_error);
            let body = serde_json::to_value(&env.body).expect("a decoded body encodes");
            audit_record(verb, &env.id, &env.source, env.operator.clone(), body, refusal);
            Some(env.body)
        }
        Err(err) => {
            let refusal = audit::bounded_error(WireError::bad_request(err.to_string()));
            if let Ok(raw) = decode::<Value>(payload) {
                audit_record(verb, &raw.id, &raw.source, raw.operator, raw.body, Some(refusal));
            }
            None
        }
    }
}

/// A session stream (exec, port-forward) accepted for user alice is one token under
/// `qd.v1.<kind>.alice.`: it can never make an agent publish into events, commands or
/// another user's streams. Returns whether it was accepted.
pub fn session_stream_checks(kind: quarterdeck::protocol::subjects::SessionKind, stream: &str) -> bool {
    use quarterdeck::protocol::subjects;
    let ok = subjects::is_session_stream_of(kind, "alice", stream);
    if ok {
        let prefix = format!("qd.v1.{}.alice.", kind.token());
        assert!(stream.starts_with(&prefix) && stream.split('.').count() == 5, "{stream:?}");
        assert!(!stream.contains(['*', '>', ' ']), "{stream:?}");
        assert!(!subjects::is_session_stream_of(kind, "bob", stream), "{stream:?}");
        // The session id the agent takes from it (its last token) is one the controller's
        // audit accepts.
        let id = stream.rsplit('.').next().unwrap_or_default();
        assert!(quarterdeck::protocol::exec::token("session", id).is_ok(), "{stream:?}");
    }
    ok
}
