//! `release::diff` of two app specs read from the input (a JSON array of two `AppSpec`s):
//! never panics; a spec has no change from itself; a field is named one way iff it is
//! named the other way; each change holds the values at its path; and the diff is empty
//! exactly when the specs are the same (absent, `null` and `{}` counting alike).
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::AppSpec;
use quarterdeck::protocol::release::{FieldChange, Release, diff};
use serde_json::{Map, Value};

/// A spec as the diff reads it: what a release keeps, as JSON.
fn json(spec: &AppSpec) -> Value {
    serde_json::to_value(Release::spec_of(spec)).expect("a spec encodes")
}

fn names(changes: &[FieldChange]) -> BTreeSet<&str> {
    changes.iter().map(|c| c.field.as_str()).collect()
}

/// Whether any object key holds a '.', which makes a dotted path name more than one place.
fn dotted(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('.') || dotted(v)),
        Value::Array(a) => a.iter().any(dotted),
        _ => false,
    }
}

/// The value at a dotted path (objects walked into, lists whole), `null` where absent.
fn at(v: &Value, path: &str) -> Value {
    let mut here = v;
    for key in path.split('.') {
        match here.get(key) {
            Some(next) if here.is_object() => here = next,
            _ => return Value::Null,
        }
    }
    here.clone()
}

/// Objects without their `null` and empty-object fields, recursively (lists are compared
/// whole, so left as they are): two specs the diff must call the same normalise alike.
fn normal(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let kept: Map<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), normal(v)))
                .filter(|(_, v)| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
                .collect();
            Value::Object(kept)
        }
        other => other.clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok((a, b)) = serde_json::from_slice::<(AppSpec, AppSpec)>(data) else { return };
    assert_eq!(diff(&a, &a), vec![], "a spec differs from itself");
    assert_eq!(diff(&b, &b), vec![], "a spec differs from itself");
    let ab = diff(&a, &b);
    let ba = diff(&b, &a);
    assert_eq!(names(&ab), names(&ba), "the fields named depend on the direction");
    assert_eq!(names(&ab).len(), ab.len(), "a field named twice: {ab:?}");
    let (ja, jb) = (json(&a), json(&b));
    assert_eq!(ab.is_empty(), normal(&ja) == normal(&jb), "the diff is {ab:?}");
    let exact = !dotted(&ja) && !dotted(&jb);
    for c in &ab {
        assert_ne!(c.from, c.to, "a change to the same value: {c:?}");
        assert!(!c.field.is_empty() && !c.field.starts_with("shortfall"), "{c:?}");
        if exact {
            assert_eq!(c.from, at(&ja, &c.field), "from is not the value at {}", c.field);
            assert_eq!(c.to, at(&jb, &c.field), "to is not the value at {}", c.field);
        }
        // The other direction holds the same change, reversed.
        let back = ba.iter().find(|d| d.field == c.field).expect("named both ways");
        assert_eq!((&back.from, &back.to), (&c.to, &c.from), "{} reversed", c.field);
    }
});
