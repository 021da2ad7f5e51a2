//! Audit outcomes follow the operation (issue 12, fault 4), on a real nats-server: a
//! deploy the controller accepted and whose operation then failed (no host in the AZ it
//! asks for) shows as failed, with its reason, in `ctl audit --json` and in a headless
//! cockpit's Audit panel, not as `✓ accepted`.

use std::sync::Arc;

use quarterdeck::actions::{Action, Panel};
use quarterdeck::backend;
use quarterdeck::protocol::OperationState;

use crate::cockpit_support::{cockpit_app, screen};
use crate::nats_support::{PlaneConfig, block_on, connect, ctl, ctl_json_lines, deploy_args, plane_or_skip};
use crate::support::pump;

#[test]
fn nats_a_failed_deploy_shows_as_failed_with_its_reason_in_the_audit() {
    let plane = plane_or_skip!(
        "nats_a_failed_deploy_shows_as_failed_with_its_reason_in_the_audit",
        PlaneConfig::default()
    );
    let url = plane.url();
    // Accepted, then the placement fails: no host is in az-9.
    let mut args = deploy_args("shop-web", "1.0.0", "2");
    args.extend(["--az", "az-9"]);
    let out = ctl(&url, &args);
    assert!(!out.ok(), "the deploy cannot succeed: {out}");

    let lines = ctl_json_lines(&url, &["audit", "--since", "1h"]);
    let deploy =
        lines.iter().find(|l| l["verb"] == "deploy").unwrap_or_else(|| panic!("no deploy in {lines:#?}"));
    // The acceptance stays on record; how it ended is joined to it.
    assert_eq!(deploy["outcome"]["accepted"], true, "{deploy}");
    let op = deploy["outcome"]["operation_id"].as_str().expect("an operation id").to_string();
    assert_eq!(deploy["operation"]["id"], op.as_str(), "{deploy}");
    assert_eq!(deploy["operation"]["state"], "failed", "{deploy}");
    let reason = deploy["operation"]["error"].as_str().expect("a reason").to_string();
    assert!(reason.contains("az-9"), "the reason names what failed: {reason}");
    assert_eq!(deploy["verdict"], "failed", "{deploy}");
    assert_eq!(deploy["result"], format!("failed: {reason} ({op})"), "{deploy}");
    let table = crate::nats_support::ctl_ok(&url, &["audit", "--since", "1h"]);
    assert!(table.contains(&format!("✕ failed: {reason}")), "{table}");

    // A headless cockpit: the Audit panel says the same.
    block_on(async {
        let bus = Arc::new(connect(&url, "cockpit/test@audit").await);
        let mut handle = backend::spawn(bus, "cockpit/test@audit".into());
        let mut app = cockpit_app("nats");
        pump(&mut app, &mut handle, "the deploy's audit record and its failed operation", |a| {
            let recorded =
                a.replica.audit.iter().any(|e| e.audit.as_ref().is_some_and(|r| r.verb == "deploy"));
            let failed =
                a.replica.fleet.operations.get(&op).is_some_and(|o| o.state == OperationState::Failed);
            recorded && failed
        })
        .await;
        app.update(Action::ShowPanel(Panel::Audit));
        let shown = screen(&mut app, 240);
        assert!(shown.contains("deploy shop-web@1.0.0 x2"), "{shown}");
        // The column may cut the reason; its start is there.
        let start: String = reason.chars().take(40).collect();
        assert!(shown.contains(&format!("✕ failed: {start}")), "{shown}");
        assert!(!shown.contains("accepted"), "{shown}");
        // The detail pane has all of it.
        app.update(Action::Detail);
        let detail = screen(&mut app, 240);
        let end: String = reason.chars().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        assert!(detail.contains(&end), "the reason's end {end:?} in the detail:\n{detail}");
    });
}
