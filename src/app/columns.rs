//! Each table's column titles, in the order of its row's cells (`cells.rs`). The sort
//! (`s`, `<`, a column's letter) reads them here and the views build their columns from
//! them, adding only how wide each is drawn: one list, so a title the sort names is the
//! one on the screen.

use crate::actions::Panel;

pub const HOSTS: [&str; 10] = ["HOST", "AZ", "IP", "CPU", "MEM", "INST", "HB", "STATE", "PULL", "TAGS"];

pub const INSTANCES: [&str; 12] =
    ["APP", "VERSION", "#", "HOST", "ENDPOINT", "STATE", "UPTIME", "RST", "CPU", "MEM", "ROUTE", "ID"];

pub const ROUTES: [&str; 9] =
    ["APP", "DOMAIN", "BACKEND", "STATE", "WEIGHT", "INSTANCE", "RPS", "5XX%", "P99"];

pub const EVENTS: [&str; 5] = ["TIME", "REV", "KIND", "APP", "MESSAGE"];

pub const AUDIT: [&str; 6] = ["TIME", "WHO", "VIA", "COMMAND", "RESULT", "ID"];

pub const APPS: [&str; 11] =
    ["APP", "VERSION", "RUNNING", "IMAGE", "DOMAIN", "TAGS", "ROUTES", "RPS", "5XX%", "P99", "STATE"];

pub const ALERTS: [&str; 5] = ["STATE", "RULE", "SUBJECT", "SINCE", "SUMMARY"];

/// The column titles of a panel's table.
pub fn titles(panel: Panel) -> &'static [&'static str] {
    match panel {
        Panel::Hosts => &HOSTS,
        Panel::Instances => &INSTANCES,
        Panel::Routes => &ROUTES,
        Panel::Events => &EVENTS,
        Panel::Audit => &AUDIT,
        Panel::Apps => &APPS,
        Panel::Alerts => &ALERTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::cells::{RowSource, row};
    use crate::protocol::{AuditOutcome, AuditRecord};
    use crate::views::harness::fixture_app;

    /// A title per cell: a row with a cell more or less than its titles would sort one
    /// column by another's key, or draw a cell under the wrong header.
    #[test]
    fn every_row_has_a_cell_per_title() {
        let mut app = fixture_app(0);
        // The fixture has no audit records: every other event is given one, so the Audit
        // panel has rows with a record and rows without.
        let record = AuditRecord {
            verb: "restart".into(),
            by: None,
            command_id: "cmd-1".into(),
            source: "cockpit/alice".into(),
            operator: None,
            request: serde_json::json!({"app": "shop-web"}),
            outcome: AuditOutcome { accepted: true, operation_id: None, detail: None, error: None },
            repeated: None,
        };
        let mut audit = app.replica.events.clone();
        for e in audit.iter_mut().step_by(2) {
            e.audit = Some(Box::new(record.clone()));
        }
        app.replica.audit = audit;
        let firing = crate::views::harness::alert(
            crate::protocol::AlertRule::HostDown,
            "host/host-01",
            crate::protocol::AlertState::Firing,
            app.now,
        );
        crate::views::harness::feed_alert(&mut app, firing);
        let facts = app.facts().into_owned();
        let src = RowSource { replica: &app.replica, facts: &facts, traffic: &app.traffic, now: app.now };
        let pulls = crate::app::pulls::by_host(&app.replica.fleet);
        for panel in Panel::ALL {
            let keys = app.rows(panel);
            assert!(!keys.is_empty(), "the fixture has {panel:?} rows");
            for key in keys.iter() {
                let row = row(src, &pulls, panel, key).expect("a row for each key");
                assert_eq!(row.cells.len(), titles(panel).len(), "{panel:?} {key:?}");
            }
        }
    }
}
