//! Releases: each deploy, scale or config change of an app makes a numbered release that
//! holds the app's spec as deployed, and the one field-by-field diff between two of them
//! (for `ctl diff` and the cockpit's detail pane alike).
//!
//! The diff walks the spec's serialised form, so fields added to `AppSpec` or `RunSpec`
//! later (env vars, secret references) are carried and compared without being named here.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppSpec;

/// The JetStream KV bucket releases are kept in: one key per app, written by the
/// controller only.
pub const BUCKET: &str = "qd_releases";

/// How many releases of one app are kept; the oldest give way.
pub const RELEASES_KEPT: usize = 50;

/// At most this much JSON of one app's releases is kept, the oldest giving way: they are
/// one KV value and one answer, each well within nats-server's default max_payload
/// (1 MiB).
pub const RELEASES_MAX_BYTES: usize = 512 * 1024;

/// Why a release was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    Deploy,
    Scale,
    Env,
    /// A rollback to the spec of release `to`.
    Rollback {
        to: u64,
    },
    /// A cause a newer controller wrote: shown, never a reason to refuse the list.
    #[serde(other)]
    Other,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Deploy => f.write_str("deploy"),
            Cause::Scale => f.write_str("scale"),
            Cause::Env => f.write_str("env"),
            Cause::Rollback { to } => write!(f, "rollback to {to}"),
            Cause::Other => f.write_str("other"),
        }
    }
}

/// One release of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// 1, 2, ... per app; never reused, even once the oldest are dropped.
    pub number: u64,
    /// The app as deployed: image and its digest, artifact, command, env, constraints,
    /// instance count. Never the controller's `shortfall`, which is not what was asked.
    pub spec: AppSpec,
    /// The user whose command made it (the one the command's subject names).
    pub who: String,
    /// When it was made (ms since the epoch).
    pub when: u64,
    /// The operation that rolls it out.
    #[serde(default)]
    pub operation_id: Option<String>,
    pub cause: Cause,
}

impl Release {
    /// `spec` as a release keeps it: what was asked for, without what the controller
    /// noted about placing it.
    pub fn spec_of(app: &AppSpec) -> AppSpec {
        AppSpec { shortfall: None, ..app.clone() }
    }

    /// Whether this release asks for exactly what `app` asks for now.
    pub fn matches(&self, app: &AppSpec) -> bool {
        self.spec == Release::spec_of(app)
    }

    /// `image@sha256:0123abcd` (the digest's first 8 hex characters), or the image alone
    /// when it was not pinned.
    pub fn image_short(&self) -> String {
        match &self.spec.digest {
            Some(d) => {
                let hex = d.strip_prefix("sha256:").unwrap_or(d);
                format!("{}@{}", self.spec.image, hex.get(..8).unwrap_or(hex))
            }
            None => self.spec.image.clone(),
        }
    }
}

/// The release that describes what `app` runs now: the newest whose spec is the app's
/// (after a failed deploy the app is back on an older one), else the newest.
pub fn current<'a>(releases: &'a [Release], app: &AppSpec) -> Option<&'a Release> {
    releases.iter().rev().find(|r| r.matches(app)).or_else(|| releases.last())
}

/// One field that differs between two releases: its dotted path (`run.cmd`), and its
/// value in each (`null` where it is absent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

impl FieldChange {
    /// A value as a person reads it: a string without quotes, absent as `-`, anything
    /// else as compact JSON.
    pub fn show(value: &Value) -> String {
        match value {
            Value::Null => "-".into(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Every field that differs between `a` and `b`, in field order. Objects are walked
/// into (`run.artifact.sha256`); a list is one field (`run.cmd`), compared whole. A field
/// absent on one side and `null` on the other is no change.
pub fn diff(a: &AppSpec, b: &AppSpec) -> Vec<FieldChange> {
    let (a, b) = (value_of(&Release::spec_of(a)), value_of(&Release::spec_of(b)));
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    out
}

fn value_of(spec: &AppSpec) -> Value {
    // An AppSpec is plain data (strings, numbers, maps with string keys): it always
    // serialises; `Null` would only make every field read as changed.
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<FieldChange>) {
    if let (Value::Object(x), Value::Object(y)) = (a, b) {
        let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        for key in keys {
            let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            walk(&field, x.get(key).unwrap_or(&Value::Null), y.get(key).unwrap_or(&Value::Null), out);
        }
        return;
    }
    // An object on one side only (an artifact added): each of its fields is named.
    if let Value::Object(x) = a
        && b.is_null()
    {
        return walk(path, &Value::Object(x.clone()), &Value::Object(Default::default()), out);
    }
    if let Value::Object(y) = b
        && a.is_null()
    {
        return walk(path, &Value::Object(Default::default()), &Value::Object(y.clone()), out);
    }
    if a != b {
        out.push(FieldChange { field: path.to_string(), from: a.clone(), to: b.clone() });
    }
}

/// `qd.v1.ctl.<user>.releases`: an app's releases. A read: changes nothing, not audited,
/// and open to viewers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasesRequest {
    pub app: String,
}

/// The answer to [`ReleasesRequest`]: oldest first, at most [`RELEASES_KEPT`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseList {
    pub app: String,
    /// The number of the release the app runs now ([`current`]); none for an app that no
    /// longer exists.
    #[serde(default)]
    pub current: Option<u64>,
    pub releases: Vec<Release>,
}

impl ReleaseList {
    pub fn get(&self, number: u64) -> Option<&Release> {
        self.releases.iter().find(|r| r.number == number)
    }
}

/// `qd.v1.ctl.<user>.rollback`: a rolling deploy of `app` back to release `release`'s
/// spec; without one, to the release before the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    pub app: String,
    #[serde(default)]
    pub release: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ArtifactRef, Constraints, RunSpec};

    fn spec() -> AppSpec {
        AppSpec {
            name: "shop".into(),
            version: "1".into(),
            instances: 2,
            image: "nginx:1.27".into(),
            port: 80,
            constraints: Constraints { azs: vec!["az1".into()], tags: vec![], cpu: 0.25, memory_mb: 256 },
            domain: "shop.local".into(),
            tags: vec![],
            run: RunSpec {
                cmd: Some(vec!["serve".into(), "--port=80".into()]),
                artifact: Some(ArtifactRef { name: "shop-1".into(), sha256: "aa".repeat(32), size: 10 }),
                ..RunSpec::default()
            },
            shortfall: None,
            digest: Some(format!("sha256:{}", "12".repeat(32))),
        }
    }

    fn fields(changes: &[FieldChange]) -> Vec<&str> {
        changes.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn the_same_spec_has_no_changes_whatever_its_shortfall() {
        let mut b = spec();
        b.shortfall = Some("waiting for capacity".into());
        assert_eq!(diff(&spec(), &b), vec![]);
    }

    #[test]
    fn exactly_the_changed_fields_are_named_with_both_values() {
        let mut b = spec();
        b.version = "2".into();
        b.instances = 5;
        b.run.cmd = Some(vec!["serve".into()]);
        if let Some(a) = b.run.artifact.as_mut() {
            a.sha256 = "bb".repeat(32);
        }
        b.constraints.azs = vec!["az1".into(), "az2".into()];
        let changes = diff(&spec(), &b);
        assert_eq!(
            fields(&changes),
            vec!["constraints.azs", "instances", "run.artifact.sha256", "run.cmd", "version"]
        );
        let cmd = &changes[3];
        assert_eq!(FieldChange::show(&cmd.from), r#"["serve","--port=80"]"#);
        assert_eq!(FieldChange::show(&cmd.to), r#"["serve"]"#);
        assert_eq!(FieldChange::show(&changes[4].from), "1");
        assert_eq!(changes[1].to, Value::from(5));
    }

    #[test]
    fn a_field_dropped_or_added_reads_as_from_or_to_absent() {
        let mut b = spec();
        b.digest = None;
        b.run.artifact = None;
        b.run.cmd = None;
        let changes = diff(&spec(), &b);
        assert_eq!(
            fields(&changes),
            vec!["digest", "run.artifact.name", "run.artifact.sha256", "run.artifact.size", "run.cmd"]
        );
        assert!(changes.iter().all(|c| c.to.is_null() && !c.from.is_null()));
        // The other way round, each is added.
        let back = diff(&b, &spec());
        assert_eq!(fields(&back), fields(&changes));
        assert!(back.iter().all(|c| c.from.is_null()));
        assert_eq!(FieldChange::show(&Value::Null), "-");
    }

    #[test]
    fn fields_the_spec_gains_later_are_diffed_without_being_named() {
        // As a newer spec's extra fields arrive through serde: walked like the rest.
        let a = serde_json::json!({"run": {"env": {"A": "1", "B": "2"}}});
        let b = serde_json::json!({"run": {"env": {"A": "1", "B": "3", "C": "4"}}});
        let mut out = Vec::new();
        walk("", &a, &b, &mut out);
        assert_eq!(fields(&out), vec!["run.env.B", "run.env.C"]);
    }

    #[test]
    fn the_current_release_is_the_newest_that_matches_the_app() {
        let release = |number, version: &str| Release {
            number,
            spec: AppSpec { version: version.into(), ..spec() },
            who: "ana".into(),
            when: number,
            operation_id: None,
            cause: Cause::Deploy,
        };
        let list = vec![release(1, "1"), release(2, "2"), release(3, "3")];
        // A failed deploy of 3 left the app on 2.
        let app = AppSpec { version: "2".into(), shortfall: Some("x".into()), ..spec() };
        assert_eq!(current(&list, &app).map(|r| r.number), Some(2));
        let unknown = AppSpec { version: "9".into(), ..spec() };
        assert_eq!(current(&list, &unknown).map(|r| r.number), Some(3));
        assert_eq!(current(&[], &app), None);
    }

    #[test]
    fn causes_read_as_people_say_them_and_unknown_ones_still_decode() {
        assert_eq!(Cause::Rollback { to: 1 }.to_string(), "rollback to 1");
        let json = serde_json::to_string(&Cause::Rollback { to: 7 }).unwrap();
        assert_eq!(serde_json::from_str::<Cause>(&json).unwrap(), Cause::Rollback { to: 7 });
        assert_eq!(serde_json::from_str::<Cause>(r#"{"kind":"drain"}"#).unwrap(), Cause::Other);
    }

    #[test]
    fn the_image_is_shown_with_the_start_of_its_digest() {
        let r = Release {
            number: 1,
            spec: spec(),
            who: "a".into(),
            when: 0,
            operation_id: None,
            cause: Cause::Deploy,
        };
        assert_eq!(r.image_short(), "nginx:1.27@12121212");
        let plain = Release { spec: AppSpec { digest: None, ..spec() }, ..r };
        assert_eq!(plain.image_short(), "nginx:1.27");
    }
}
