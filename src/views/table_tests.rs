//! Snapshot and cell-style tests of the table every panel draws (its title, rows and columns),
//! drawn from the fixed-seed fixture through the shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::fixture;
use crate::views::harness::{app, draw, event_with, feed, text, type_text};

/// At 80x24 the columns that carry state (ROUTE's flags, RST) stay and decoration
/// (ENDPOINT, ID) goes first; a 3-digit instance index shows whole.
#[test]
fn at_80x24_state_outranks_decoration_and_indexes_show_whole() {
    use crate::protocol::{Change, EventKind, RouteState};
    let mut app = app();
    let mut i =
        app.replica.fleet.instances.values().find(|i| i.app == "shop-web").cloned().expect("an instance");
    let route = app
        .replica
        .fleet
        .routes
        .values()
        .find(|r| r.app == i.app && r.backend == i.endpoint)
        .cloned()
        .expect("its route");
    (i.index, i.restarts) = (123, 12);
    let changes = vec![
        Change::Instance(i.clone()),
        Change::Route(crate::protocol::Route { state: RouteState::Disabled, ..route }),
    ];
    let e = event_with(&app, EventKind::RouteDisabled, "route disabled", changes);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Instances));
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    let header = screen.lines().find(|l| l.contains("APP")).expect("the header");
    for kept in ["#", "STATE", "RST", "ROUTE"] {
        assert!(header.contains(kept), "{kept} dropped at 80x24: {header}");
    }
    for dropped in ["ENDPOINT", " ID"] {
        assert!(!header.contains(dropped), "{dropped} kept over state at 80x24: {header}");
    }
    let row = screen.lines().find(|l| l.contains(" 123 ")).expect("index 123 whole");
    assert!(row.contains("○ off") && row.contains(" 12 "), "{row}");
}

#[test]
fn only_visible_rows_are_drawn_and_the_selection_stays_on_screen() {
    let mut app = app();
    let (fleet, _) = fixture(42, 6, 400);
    app.apply(Inbound::Feed(Feed::Snapshot(fleet)));
    app.update(Action::ShowPanel(Panel::Instances));
    let _ = draw(&mut app, 100, 20);
    for _ in 0..50 {
        app.update(Action::Down);
    }
    let buf = draw(&mut app, 100, 20);
    let screen = text(&buf);
    assert!(screen.contains("[51/407]"), "{screen}");
    assert!(screen.contains("▶"), "selection visible:\n{screen}");
    app.update(Action::Bottom);
    let screen = text(&draw(&mut app, 100, 20));
    assert!(screen.contains("[407/407]") && screen.contains("▶"), "{screen}");
}

#[test]
fn filtered_panel_title() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Filter);
    type_text(&mut app, "shop");
    app.update(Action::Submit);
    app.update(Action::SortBy('A'));
    app.update(Action::SortBy('A'));
    let screen = text(&draw(&mut app, 120, 12));
    assert_snapshot!(screen);
    assert!(screen.contains("filter /shop/ (3 of 7) sort APP ↓"), "{screen}");
    // At 40 columns the title's end is cut with `…` at the corner, not silently.
    let screen = text(&draw(&mut app, 40, 12));
    let top = screen.lines().find(|l| l.starts_with("╭ Instances ")).expect("the title");
    assert!(top.contains("filter /shop/") && top.ends_with("…╮"), "{top}");
}
