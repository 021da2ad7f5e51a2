//! Snapshot and cell-style tests of the events panel, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::views::harness::{app, draw, event_with, feed, text};

#[test]
fn events_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Events));
    assert_snapshot!(text(&draw(&mut app, 120, 20)));
}

/// The Events panel's KIND column fits `NEW_INSTANCE_AND_DEPLOY…` (more when there is
/// room), and a message too long for the screen ends in `…`.
#[test]
fn events_cut_long_kinds_and_messages_with_an_ellipsis() {
    use crate::protocol::EventKind;
    let mut app = app();
    let long = "shop-web-2-af11 on host-04: pulling registry.lab:5000/shop/web:2, 3 layers of 40 MB, then the health check";
    let e = event_with(&app, EventKind::NewInstanceAndDeployWarRequest, long, vec![]);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Events));
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    let row = screen.lines().find(|l| l.contains("NEW_INSTANCE")).expect("the event's row");
    // Cut with `…`, whole up to `NEW_INSTANCE_AND_DEPLOY` at least, and the app still shown.
    assert!(row.contains("NEW_INSTANCE_AND_DEPLOY") && row.contains("… shop-web"), "{row}");
    assert!(row.trim_end_matches('│').trim_end().ends_with('…'), "{row}");
}

/// The cockpit's log under the events reads as the services' stderr does: the time, the
/// level, the message, apart (`09:43:22 INFO  applied ...`, not `09:43:22:INFO :applied`).
#[test]
fn the_cockpit_log_keeps_time_level_and_message_apart() {
    // The one logger of this test binary; the cockpit installs it the same way.
    let _ = tui_logger::init_logger(log::LevelFilter::Info);
    tui_logger::set_default_level(log::LevelFilter::Info);
    log::info!("qdx-log-probe applied generation 1");
    tui_logger::move_events();
    let mut app = app();
    app.show_log = true;
    app.update(Action::ShowPanel(Panel::Events));
    let screen = text(&draw(&mut app, 120, 40));
    let line = screen.lines().find(|l| l.contains("qdx-log-probe")).unwrap_or_else(|| panic!("{screen}"));
    assert!(line.contains(" INFO  qdx-log-probe applied generation 1"), "{line}");
    assert!(!line.contains(":INFO"), "{line}");
}
