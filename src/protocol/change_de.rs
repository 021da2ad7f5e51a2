//! Reading a `Change` off the wire without serde's buffering of internally tagged enums.
//!
//! serde's derive for `#[serde(tag = "type")]` first copies the whole object into an
//! intermediate tree (every string allocated twice) because the tag may come last. Every
//! sender of this protocol writes `type` first (serde writes the tag before the fields), so
//! when it is first the variant's fields are read straight from the input. A `type` found
//! later, as JSON allows, takes the slow path through a `serde_json::Value` and the derived
//! reader: the same result, only slower.

use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::alert::{Alert, Silence};
use super::event::Change;
use super::model::{AppSpec, Host, Instance, Operation, OperationEnded, Route, StepDelta};

/// The `type` tag's values, as written by `Change`'s `rename_all = "snake_case"`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tag {
    Host,
    App,
    AppRemoved,
    Instance,
    InstanceRemoved,
    Route,
    RouteRemoved,
    Operation,
    OperationStep,
    OperationEnded,
    OperationRemoved,
    Alert,
    AlertRemoved,
    Silence,
    SilenceRemoved,
}

#[derive(Deserialize)]
struct AppRemoved {
    name: String,
}

#[derive(Deserialize)]
struct InstanceRemoved {
    id: String,
}

#[derive(Deserialize)]
struct OperationRemoved {
    id: String,
}

#[derive(Deserialize)]
struct SilenceRemoved {
    subject: String,
}

#[derive(Deserialize)]
struct RouteRemoved {
    app: String,
    backend: String,
}

/// The derived reader, for objects whose tag is not first.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Tagged {
    Host(Host),
    App(AppSpec),
    AppRemoved { name: String },
    Instance(Instance),
    InstanceRemoved { id: String },
    Route(Route),
    RouteRemoved { app: String, backend: String },
    Operation(Operation),
    OperationStep(StepDelta),
    OperationEnded(OperationEnded),
    OperationRemoved { id: String },
    Alert(Alert),
    AlertRemoved { id: String },
    Silence(Silence),
    SilenceRemoved { subject: String },
}

impl From<Tagged> for Change {
    fn from(t: Tagged) -> Change {
        match t {
            Tagged::Host(h) => Change::Host(h),
            Tagged::App(a) => Change::App(a),
            Tagged::AppRemoved { name } => Change::AppRemoved { name },
            Tagged::Instance(i) => Change::Instance(i),
            Tagged::InstanceRemoved { id } => Change::InstanceRemoved { id },
            Tagged::Route(r) => Change::Route(r),
            Tagged::RouteRemoved { app, backend } => Change::RouteRemoved { app, backend },
            Tagged::Operation(o) => Change::Operation(o),
            Tagged::OperationStep(s) => Change::OperationStep(s),
            Tagged::OperationEnded(e) => Change::OperationEnded(e),
            Tagged::OperationRemoved { id } => Change::OperationRemoved { id },
            Tagged::Alert(a) => Change::Alert(a),
            Tagged::AlertRemoved { id } => Change::AlertRemoved { id },
            Tagged::Silence(x) => Change::Silence(x),
            Tagged::SilenceRemoved { subject } => Change::SilenceRemoved { subject },
        }
    }
}

/// The first key of an object: the tag, or another field's name (kept for the slow path).
enum FirstKey {
    Type,
    Other(String),
}

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FirstKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FirstKey, E> {
                Ok(if v == "type" { FirstKey::Type } else { FirstKey::Other(v.to_string()) })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

struct ChangeVisitor;

impl<'de> Visitor<'de> for ChangeVisitor {
    type Value = Change;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a change object with a `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Change, A::Error> {
        match map.next_key::<FirstKey>()? {
            Some(FirstKey::Type) => {
                let tag: Tag = map.next_value()?;
                // The rest of the object holds exactly the variant's fields.
                let rest = MapAccessDeserializer::new(map);
                Ok(match tag {
                    Tag::Host => Change::Host(Host::deserialize(rest)?),
                    Tag::App => Change::App(AppSpec::deserialize(rest)?),
                    Tag::AppRemoved => Change::AppRemoved { name: AppRemoved::deserialize(rest)?.name },
                    Tag::Instance => Change::Instance(Instance::deserialize(rest)?),
                    Tag::InstanceRemoved => {
                        Change::InstanceRemoved { id: InstanceRemoved::deserialize(rest)?.id }
                    }
                    Tag::Route => Change::Route(Route::deserialize(rest)?),
                    Tag::RouteRemoved => {
                        let RouteRemoved { app, backend } = RouteRemoved::deserialize(rest)?;
                        Change::RouteRemoved { app, backend }
                    }
                    Tag::Operation => Change::Operation(Operation::deserialize(rest)?),
                    Tag::OperationStep => Change::OperationStep(StepDelta::deserialize(rest)?),
                    Tag::OperationEnded => Change::OperationEnded(OperationEnded::deserialize(rest)?),
                    Tag::OperationRemoved => {
                        Change::OperationRemoved { id: OperationRemoved::deserialize(rest)?.id }
                    }
                    Tag::Alert => Change::Alert(Alert::deserialize(rest)?),
                    Tag::AlertRemoved => Change::AlertRemoved { id: OperationRemoved::deserialize(rest)?.id },
                    Tag::Silence => Change::Silence(Silence::deserialize(rest)?),
                    Tag::SilenceRemoved => {
                        Change::SilenceRemoved { subject: SilenceRemoved::deserialize(rest)?.subject }
                    }
                })
            }
            Some(FirstKey::Other(first)) => {
                let mut object = serde_json::Map::new();
                object.insert(first, map.next_value()?);
                while let Some(key) = map.next_key::<String>()? {
                    object.insert(key, map.next_value()?);
                }
                Tagged::deserialize(serde_json::Value::Object(object))
                    .map(Change::from)
                    .map_err(de::Error::custom)
            }
            None => Err(de::Error::missing_field("type")),
        }
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ChangeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Envelope, Event, EventKind, ProtocolError, decode_body, encode};

    #[test]
    fn a_change_reads_the_same_whether_its_tag_comes_first_or_last() {
        let json = r#"{"type":"route_removed","app":"shop-web","backend":"10.0.0.1:8080"}"#;
        let first: Change = serde_json::from_str(json).expect("tag first");
        let last: Change =
            serde_json::from_str(r#"{"app":"shop-web","backend":"10.0.0.1:8080","type":"route_removed"}"#)
                .expect("tag last");
        let want = Change::RouteRemoved { app: "shop-web".into(), backend: "10.0.0.1:8080".into() };
        assert_eq!(first, want);
        assert_eq!(last, want);
        // Unknown fields are ignored on both paths.
        let extra: Change =
            serde_json::from_str(r#"{"type":"app_removed","name":"billing","new_field":[1,{"x":2}]}"#)
                .expect("unknown field, tag first");
        assert_eq!(extra, Change::AppRemoved { name: "billing".into() });
        let extra: Change =
            serde_json::from_str(r#"{"new_field":null,"name":"billing","type":"app_removed"}"#)
                .expect("unknown field, tag last");
        assert_eq!(extra, Change::AppRemoved { name: "billing".into() });
    }

    #[test]
    fn a_change_without_a_known_tag_is_refused() {
        assert!(serde_json::from_str::<Change>(r#"{"type":"comet","name":"x"}"#).is_err());
        assert!(serde_json::from_str::<Change>(r#"{"name":"x"}"#).is_err());
        assert!(serde_json::from_str::<Change>(r#"{}"#).is_err());
        assert!(serde_json::from_str::<Change>(r#"{"type":"app_removed"}"#).is_err(), "missing name");
    }

    #[test]
    fn decode_body_checks_the_envelope_and_keeps_the_body() {
        let ev = Event {
            rev: 7,
            ts: 1,
            kind: EventKind::AppUpdated,
            app: None,
            host: None,
            instance: None,
            operation_id: None,
            message: "m".into(),
            changes: vec![Change::AppRemoved { name: "a".into() }],
            audit: None,
        };
        let bytes = encode(&Envelope::new("controller", ev.clone())).expect("encodes");
        assert_eq!(decode_body::<Event>(&bytes), Ok(ev));
        let newer = String::from_utf8(bytes.clone()).expect("utf8").replacen(r#""v":2"#, r#""v":3"#, 1);
        assert_eq!(
            decode_body::<Event>(newer.as_bytes()),
            Err(ProtocolError::UnsupportedVersion { found: 3 })
        );
        let no_id = String::from_utf8(bytes).expect("utf8").replacen(r#""id":"#, r#""idx":"#, 1);
        assert!(matches!(decode_body::<Event>(no_id.as_bytes()), Err(ProtocolError::Malformed(_))));
    }
}
