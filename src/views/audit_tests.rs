//! Snapshot and cell-style tests of the audit panel, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::views::harness::{app, audit_event, draw, feed, find, operation_event, text};

#[test]
fn audit_panel() {
    let mut app = app();
    let e = audit_event(&app, serde_json::json!({"app": "shop-web", "batch": 2}), "restart", true);
    feed(&mut app, e);
    let e = audit_event(&app, serde_json::json!({"instance": "shop-web-9-0000"}), "restart", false);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Audit));
    // The restart's operation is not in the replica: its end is unknown, not "accepted".
    let op = "op-0000000024";
    let screen = text(&draw(&mut app, 200, 10));
    assert!(screen.contains(&format!("? outcome unknown ({op})")), "{screen}");
    let e = operation_event(&app, op, None);
    feed(&mut app, e);
    assert!(text(&draw(&mut app, 200, 10)).contains(&format!("… running ({op})")));
    let e = operation_event(&app, op, Some("shop-web-1-ab12 did not become healthy"));
    feed(&mut app, e);
    let buf = draw(&mut app, 200, 10);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("alice cockpit · alice@bastion-1 · ssh 10.0.0.5:52344"), "{screen}");
    assert!(screen.contains("✕ refused: no instance"), "{screen}");
    let (x, y) = find(&buf, "✕ failed: shop-web-1-ab12").expect("the failed restart");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    app.update(Action::Down);
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 24));
    assert!(screen.contains("ssh client") && screen.contains("10.0.0.5:52344"), "{screen}");
    assert!(screen.contains(&format!("✕ failed: shop-web-1-ab12 did not become healthy ({op})")), "{screen}");
}
