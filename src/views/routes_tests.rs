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

/// Two routers' traffic summed per backend: shop-web's first backend answers 10% 5xx,
/// red; a backend no router saw took nothing, dim; the panel at 120x40 and at 80x24,
/// where the 5xx share outlasts RPS and P99.
fn app_with_traffic() -> crate::app::App {
    use crate::views::harness::{feed_router, router_traffic};
    let mut app = app();
    let now = app.now;
    let loads = [
        ("api-gateway", "10.101.1.53:3000", 2_400, 0, 2_100, 48_000),
        ("api-gateway", "10.101.2.75:3000", 2_000, 2, 1_900, 51_000),
        ("shop-web", "10.101.1.31:8080", 840, 84, 12_000, 1_450_000),
    ];
    feed_router(&mut app, router_traffic("router-1", now, 2_000, &loads, &[]));
    let more = [("shop-web", "10.101.1.31:8080", 160, 16, 9_000, 900_000)];
    feed_router(&mut app, router_traffic("router-2", now, 2_000, &more, &[]));
    app.update(Action::ShowPanel(Panel::Routes));
    app
}

#[test]
fn routes_panel_with_traffic() {
    let mut app = app_with_traffic();
    let buf = draw(&mut app, 120, 40);
    let screen = text(&buf);
    assert_snapshot!("routes_with_traffic_120x40", screen);
    let row = screen.lines().find(|l| l.contains("10.101.1.31:8080")).expect("its row");
    assert!(row.contains("500") && row.contains("10%") && row.contains("1.4s"), "{row}");
    let (x, y) = crate::views::harness::find(&buf, "10%").expect("the 5xx share");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(ratatui::style::Color::Reset), "above 5%: red");
    let quiet = screen.lines().find(|l| l.contains("10.101.2.53:8080")).expect("its row");
    assert!(quiet.contains(" 0 "), "{quiet}");
    let narrow = text(&draw(&mut app, 80, 24));
    assert_snapshot!("routes_with_traffic_80x24", narrow);
    assert!(narrow.contains("5XX%") && narrow.contains("10%"), "{narrow}");
}

#[test]
fn stale_traffic_shows_unknown_not_the_last_numbers() {
    let mut app = app_with_traffic();
    let now = app.now;
    app.update(Action::Tick(now + 6_001));
    let screen = text(&draw(&mut app, 120, 40));
    let row = screen.lines().find(|l| l.contains("10.101.1.31:8080")).expect("its row");
    assert!(row.contains('–') && !row.contains("500") && !row.contains("10%"), "{row}");
}
