//! Snapshot and cell-style tests of the routes panel, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::T0;
use crate::views::harness::{app, draw, text};

#[test]
fn routes_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    assert_snapshot!(text(&draw(&mut app, 120, 16)));
}

#[test]
fn routes_panel_shows_the_router_and_stale_backends() {
    let mut app = app();
    let key = app.replica.fleet.routes.keys().nth(1).cloned().expect("a route");
    if let Some(r) = app.replica.fleet.routes.get_mut(&key) {
        r.stale = true;
    }
    let status = crate::protocol::RouterStatus {
        id: "router-1".into(),
        generation: 12,
        last_reload: Some(T0 + 57_000),
        last_error: None,
        backends: 6,
        listen: "127.0.0.1:8080".into(),
        revision: 23,
        traffic: None,
    };
    app.apply(Inbound::Feed(Feed::Router(Box::new(status.clone()))));
    app.update(Action::ShowPanel(Panel::Routes));
    let screen = text(&draw(&mut app, 120, 16));
    assert_snapshot!(screen);
    assert!(
        screen.contains("● router router-1 up · 127.0.0.1:8080 · gen 12 · 6 backends · reloaded <1m ago"),
        "{screen}"
    );
    assert!(screen.contains("◐ stale"), "{screen}");
    // A router that stops reporting is called silent, not up.
    app.now += 60_000;
    let screen = text(&draw(&mut app, 120, 16));
    assert!(screen.contains("✕ router router-1 silent for 1m"), "{screen}");
    app.routers.clear();
    let screen = text(&draw(&mut app, 120, 16));
    assert!(screen.contains("no router has reported"), "{screen}");
}
