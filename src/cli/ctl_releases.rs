//! `ctl releases`, `ctl diff` and `ctl rollback`: an app's release history, what changed
//! between two releases (the protocol's one diff), and a rolling deploy back to one.

use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::ctl::OpArgs;
use crate::bus::{self, NatsBus, RequestError};
use crate::protocol::Envelope;
use crate::protocol::clock::datetime;
use crate::protocol::release::{self, FieldChange, Release, ReleaseList, ReleasesRequest};
use crate::protocol::subjects::CtlVerb;

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// The app whose releases to list (the newest 50 are kept).
    pub app: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The app.
    pub app: String,
    /// The release to compare from (its number in `ctl releases`).
    pub from: u64,
    /// The release to compare to.
    pub to: u64,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The app to roll back.
    pub app: String,
    /// The release to go back to [default: the one before the current release]. Its whole
    /// spec is deployed again, rolling: image pinned to its digest, artifact, command, env,
    /// constraints, instance count. Makes a new release, "rollback to N".
    pub release: Option<u64>,
    #[command(flatten)]
    pub op: OpArgs,
}

/// An app's releases, as the controller answers them.
pub async fn fetch(
    bus: &NatsBus,
    source: &str,
    app: &str,
    timeout: Duration,
) -> Result<ReleaseList, RequestError> {
    let env = Envelope::new(source, ReleasesRequest { app: app.to_string() });
    bus::command(bus, CtlVerb::Releases, &env, timeout).await
}

/// The table's header and one row per release, oldest first; the current one marked `*`.
pub fn release_rows(list: &ReleaseList) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec!["#", "WHEN", "WHO", "CAUSE", "VERSION", "IMAGE", "INSTANCES"];
    let rows = list
        .releases
        .iter()
        .map(|r| {
            let mark = if list.current == Some(r.number) { "*" } else { "" };
            vec![
                format!("{}{mark}", r.number),
                datetime(r.when),
                r.who.clone(),
                r.cause.to_string(),
                r.spec.version.clone(),
                r.image_short(),
                r.spec.instances.to_string(),
            ]
        })
        .collect();
    (header, rows)
}

/// The releases as scripts read them: the controller's answer as is.
pub fn releases_json(list: &ReleaseList) -> Value {
    serde_json::to_value(list).unwrap_or(Value::Null)
}

/// The two releases `args` names, or which one the app does not have.
pub fn pair(list: &ReleaseList, from: u64, to: u64) -> Result<(&Release, &Release), String> {
    let get = |n: u64| {
        list.get(n).ok_or_else(|| {
            let kept = match (list.releases.first(), list.releases.last()) {
                (Some(a), Some(b)) => format!("releases {} to {} are kept", a.number, b.number),
                _ => "it has none".into(),
            };
            format!("{} has no release {n} ({kept})", list.app)
        })
    };
    Ok((get(from)?, get(to)?))
}

/// The diff's rows: field, from, to.
pub fn diff_rows(changes: &[FieldChange]) -> Vec<Vec<String>> {
    changes
        .iter()
        .map(|c| vec![c.field.clone(), FieldChange::show(&c.from), FieldChange::show(&c.to)])
        .collect()
}

pub fn diff_json(app: &str, from: u64, to: u64, changes: &[FieldChange]) -> Value {
    json!({ "app": app, "from": from, "to": to, "changes": changes })
}

/// The diff between releases `from` and `to` of `list`.
pub fn diff(list: &ReleaseList, from: u64, to: u64) -> Result<Vec<FieldChange>, String> {
    let (a, b) = pair(list, from, to)?;
    Ok(release::diff(&a.spec, &b.spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AppSpec;
    use crate::protocol::release::Cause;

    fn list() -> ReleaseList {
        let spec = |version: &str| AppSpec {
            name: "shop".into(),
            version: version.into(),
            instances: 2,
            image: "web:1".into(),
            port: 80,
            constraints: Default::default(),
            domain: "shop.local".into(),
            tags: vec![],
            run: Default::default(),
            shortfall: None,
            digest: None,
        };
        let r = |number, version: &str, cause| Release {
            number,
            spec: spec(version),
            who: "ana".into(),
            when: 0,
            operation_id: None,
            cause,
        };
        ReleaseList {
            app: "shop".into(),
            current: Some(3),
            releases: vec![r(2, "1", Cause::Deploy), r(3, "2", Cause::Rollback { to: 1 })],
        }
    }

    #[test]
    fn the_table_marks_the_current_release_and_says_its_cause() {
        let (header, rows) = release_rows(&list());
        assert_eq!(header[0], "#");
        assert_eq!(rows[0][0], "2");
        assert_eq!(rows[1][0], "3*");
        assert_eq!(rows[1][3], "rollback to 1");
        assert_eq!(rows[1][4], "2");
    }

    #[test]
    fn a_diff_of_unknown_releases_says_which_are_kept() {
        let l = list();
        assert_eq!(diff(&l, 1, 3).unwrap_err(), "shop has no release 1 (releases 2 to 3 are kept)");
        let changes = diff(&l, 2, 3).unwrap();
        assert_eq!(diff_rows(&changes), vec![vec!["version".to_string(), "1".into(), "2".into()]]);
        assert_eq!(diff_json("shop", 2, 3, &changes)["changes"][0]["field"], "version");
    }
}
