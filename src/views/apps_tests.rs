//! Snapshot and cell-style tests of the apps panel, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::plane::fixture::T0;
use crate::views::harness::{app, disable_routes, draw, feed, find, text, type_text};

#[test]
fn apps_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    let screen = text(&draw(&mut app, 120, 12));
    assert_snapshot!(screen);
    assert!(screen.contains("3/3") && screen.contains("prod") && screen.contains("● ok"), "{screen}");
}

/// An app the controller cannot place says why in its row and in its detail.
#[test]
fn apps_panel_says_why_an_app_is_short() {
    use crate::protocol::{Change, Event, EventKind};
    let mut app = app();
    let mut short = app.replica.fleet.apps.get("shop-web").cloned().expect("shop-web");
    short.instances += 2;
    short.shortfall = Some("waiting for capacity: no up host is in AZ az1".into());
    let rev = app.replica.fleet.revision + 1;
    feed(
        &mut app,
        Event {
            rev,
            ts: T0 + 50_000,
            kind: EventKind::AppUpdated,
            app: Some("shop-web".into()),
            host: None,
            instance: None,
            operation_id: None,
            message: "shop-web is short of instances".into(),
            changes: vec![Change::App(short)],
            audit: None,
        },
    );
    app.update(Action::ShowPanel(Panel::Apps));
    let screen = text(&draw(&mut app, 120, 12));
    let row = screen.lines().find(|l| l.contains("shop-web")).unwrap_or_default().to_string();
    assert!(row.contains("⚠ waiting"), "{screen}");
    let idx =
        app.rows(Panel::Apps).iter().position(|k| *k == crate::app::rows::RowKey::Id("shop-web".into()));
    app.update(Action::Top);
    for _ in 0..idx.expect("its row") {
        app.update(Action::Down);
    }
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 40));
    assert!(screen.contains("⚠ waiting for capacity: no up host is in AZ az1"), "{screen}");
}

#[test]
fn an_app_whose_routes_are_all_disabled_gets_no_traffic() {
    let mut app = app();
    disable_routes(&mut app, "shop-web", 0);
    app.update(Action::ShowPanel(Panel::Apps));
    let buf = draw(&mut app, 120, 12);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let row = screen.lines().find(|l| l.contains("shop-web")).expect("shop-web's row");
    assert!(row.contains("3/3") && row.contains("0/3") && row.contains("✕ no traffic"), "{row}");
    assert!(!row.contains("● ok"), "{row}");
    assert!(screen.contains("routes 4/7 serving"), "the header counts serving routes:\n{screen}");
    let (x, y) = find(&buf, "✕ no traffic").expect("state");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    // The filter sees the word too.
    app.update(Action::Filter);
    type_text(&mut app, "no traffic");
    app.update(Action::Submit);
    assert_eq!(app.row_count(Panel::Apps), 1);
    // The routes themselves are disabled, and still backed: not stale.
    app.update(Action::ShowPanel(Panel::Routes));
    let screen = text(&draw(&mut app, 120, 16));
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("shop-web.dianping")).collect();
    assert_eq!(rows.len(), 3, "{screen}");
    assert!(rows.iter().all(|l| l.contains("○ disabled") && !l.contains("stale")), "{screen}");
}

/// RPS, 5XX% and P99 per app at 120x40 and 80x24; shop-web, every route disabled,
/// takes requests nginx answers itself: flagged `✕ no route (N rps)`, red, and counted.
#[test]
fn apps_panel_with_traffic_flags_an_app_nothing_serves() {
    use crate::views::harness::{feed_router, router_traffic};
    let mut app = app();
    disable_routes(&mut app, "shop-web", 0);
    let now = app.now;
    let loads = [
        ("api-gateway", "10.101.1.53:3000", 2_400, 0, 2_100, 48_000),
        ("api-gateway", "10.101.2.75:3000", 2_000, 2, 1_900, 51_000),
    ];
    feed_router(&mut app, router_traffic("router-1", now, 2_000, &loads, &[("shop-web", 36)]));
    app.update(Action::ShowPanel(Panel::Apps));
    let buf = draw(&mut app, 120, 40);
    let screen = text(&buf);
    assert_snapshot!("apps_with_traffic_120x40", screen);
    let row = screen.lines().find(|l| l.contains("shop-web")).expect("shop-web's row");
    assert!(row.contains("✕ no route (18.0 rps)") && row.contains("100%"), "{row}");
    let (x, y) = find(&buf, "✕ no route").expect("the flag");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    // Counted in the header, red: in words where they fit, else beside the routes count.
    let header = screen.lines().next().unwrap_or_default();
    assert!(header.contains("rt 4/7 ✕1 │"), "{header}");
    let wide = draw(&mut app, 140, 10);
    let header = text(&wide).lines().next().unwrap_or_default().to_string();
    assert!(header.contains("routes 4/7 serving, ✕ 1 no route │"), "{header}");
    let (x, y) = find(&wide, "✕ 1 no route").expect("counted in the header");
    assert_eq!(wide[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    let api = screen.lines().find(|l| l.contains("api-gateway")).expect("api-gateway's row");
    assert!(
        api.contains("2200") && api.contains("0.0%") && api.contains("51ms") && api.contains("● ok"),
        "{api}"
    );
    let narrow = text(&draw(&mut app, 80, 24));
    assert_snapshot!("apps_with_traffic_80x24", narrow);
    assert!(narrow.contains("✕ no route (18.0 rps)"), "{narrow}");
    assert!(narrow.lines().next().is_some_and(|h| h.contains("rt 4/7 ✕1")), "{narrow}");
}
