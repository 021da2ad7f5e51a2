//! The routers' traffic summed, its staleness, its history, and the rows it rebuilds.

use std::collections::BTreeMap;

use super::*;
use crate::actions::{Action, Panel};
use crate::app::rows::{RowKey, Sort};
use crate::protocol::RouterStatus;
use crate::views::harness::{app, disable_routes, feed_router, router_traffic};

const A: &str = "10.101.1.31:8080";
const B: &str = "10.101.2.31:8080";

fn routers(list: Vec<(RouterStatus, u64)>) -> BTreeMap<String, (RouterStatus, u64)> {
    list.into_iter().map(|(st, seen)| (st.id.clone(), (st, seen))).collect()
}

#[test]
fn routers_add_up_per_backend_and_app_with_the_worst_tail() {
    // Router 1 over 2 s, router 2 over 4 s: rates add, each over its own window.
    let r1 = router_traffic("r1", 1_000, 2_000, &[("shop-web", A, 100, 10, 1_000, 9_000)], &[]);
    let r2 =
        router_traffic("r2", 1_000, 4_000, &[("shop-web", A, 300, 0, 3_000, 5_000)], &[("shop-web", 20)]);
    let all = routers(vec![(r1, 1_000), (r2, 1_000)]);
    let fresh = fresh_routers(&all, 1_500);
    let (routes, apps) = sum(&all, &fresh);
    let a = routes["shop-web"][A];
    assert_eq!((a.requests, a.errors_5xx), (400, 10));
    assert!((a.rps - (50.0 + 75.0)).abs() < 1e-9, "{}", a.rps);
    assert_eq!(a.p99_us, Some(9_000), "the tail is the worst router's");
    assert_eq!(a.p50_us, Some(2_500), "p50 weighted by requests: (100·1000 + 300·3000) / 400");
    assert_eq!(a.pct_5xx(), Some(2.5));
    assert!(!high_5xx(&a));
    let app = apps["shop-web"];
    assert_eq!((app.requests, app.errors_5xx), (420, 30), "nginx's own 502s count for the app");
    assert!(high_5xx(&app), "30 of 420 is above {HIGH_5XX_PCT}%");
}

#[test]
fn a_routers_traffic_older_than_three_periods_counts_for_nothing() {
    let r1 = router_traffic("r1", 0, 2_000, &[("shop-web", A, 100, 0, 1_000, 2_000)], &[]);
    let r2 = router_traffic("r2", 0, 2_000, &[("shop-web", A, 50, 0, 1_000, 2_000)], &[]);
    let all = routers(vec![(r1, 10_000), (r2, 4_000)]);
    let fleet = crate::protocol::Fleet::default();
    let mut book = TrafficBook::default();
    // At 10 s: r2's status is 6 s old, three 2 s windows: it still counts.
    book.update(&all, &fleet, 10_000, false);
    assert_eq!(book.route("shop-web", A).map(|r| r.requests), Some(150));
    // A millisecond later it does not, and the book says so without a new status.
    assert!(book.fresh_changed(&all, 10_001));
    let changed = book.update(&all, &fleet, 10_001, false);
    let route = (Panel::Routes, RowKey::Route("shop-web".into(), A.into()));
    assert_eq!(changed.rows, vec![route, (Panel::Apps, RowKey::Id("shop-web".into()))]);
    assert_eq!(book.route("shop-web", A).map(|r| r.requests), Some(100));
    // A backend no fresh router saw took nothing; with no fresh router it is unknown.
    assert_eq!(book.route("shop-web", B), Some(Rates::default()));
    let changed = book.update(&all, &fleet, 16_001, false);
    assert!(changed.all, "every row goes from numbers to unknown");
    assert_eq!(book.route("shop-web", A), None);
    assert_eq!(book.app("shop-web"), None);
    // A status without traffic, or with no window, never counts.
    let mut quiet = router_traffic("r3", 0, 0, &[("shop-web", A, 5, 0, 1, 1)], &[]);
    assert!(!is_fresh(&quiet, 0, 0));
    quiet.traffic = None;
    assert!(!is_fresh(&quiet, 0, 0));
}

#[test]
fn histories_are_bounded_one_sample_per_period_and_go_with_their_route() {
    let mut app = app();
    for n in 0..(TRAFFIC_KEPT as u64 + 30) {
        app.now += 2_000;
        let st = router_traffic("r1", app.now, 2_000, &[("shop-web", A, 10 * n, 0, 1_000, 2_000)], &[]);
        feed_router(&mut app, st);
    }
    let h = app.traffic.route_history("shop-web", A).expect("a history");
    assert_eq!(h.len(), TRAFFIC_KEPT);
    assert_eq!(h.back().map(|s| s.rps), Some(5.0 * (TRAFFIC_KEPT as f32 + 29.0)));
    assert_eq!(app.traffic.app_history("shop-web").map(|h| h.len()), Some(TRAFFIC_KEPT));
    // A second router's status within the period replaces the sample, not adds one.
    let st = router_traffic("r2", app.now, 2_000, &[("shop-web", A, 0, 0, 1_000, 2_000)], &[]);
    app.now += 100;
    feed_router(&mut app, st);
    let h = app.traffic.route_history("shop-web", A).expect("a history");
    assert_eq!(h.len(), TRAFFIC_KEPT);
    assert_eq!(h.back().map(|s| s.ts), Some(app.now));
    // The route goes: its history goes at the next status.
    let route = app.replica.fleet.routes.get(&("shop-web".into(), A.into())).cloned().expect("route");
    let removed = crate::protocol::Change::RouteRemoved { app: route.app, backend: route.backend };
    app.apply(crate::views::harness::change_event(&app, vec![removed]));
    app.now += 2_000;
    let now = app.now;
    feed_router(&mut app, router_traffic("r1", now, 2_000, &[], &[]));
    assert!(app.traffic.route_history("shop-web", A).is_none());
    assert!(app.traffic.app_history("shop-web").is_some(), "the app is still there");
}

/// Sorted by RPS, the rows are cached: a router status must rebuild the rows whose
/// numbers changed, or the sort and the filter would go on reading the old ones.
#[test]
fn a_router_status_rebuilds_the_rows_it_changes() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    let rps = crate::app::columns::ROUTES.iter().position(|t| *t == "RPS").expect("an RPS column");
    app.views[Panel::Routes.index()].set_sort(Some(Sort { column: rps, descending: true }));
    app.refresh_views();
    let hay = |app: &App| {
        app.view(Panel::Routes).cache.hay_of(&RowKey::Route("shop-web".into(), B.into())).map(str::to_string)
    };
    assert!(hay(&app).is_some_and(|h| h.contains('–')), "unknown before any traffic: {:?}", hay(&app));
    let st = router_traffic("r1", app.now, 2_000, &[("shop-web", B, 840, 0, 1_000, 2_000)], &[]);
    feed_router(&mut app, st);
    app.now += 2_000;
    app.refresh_views();
    assert!(hay(&app).is_some_and(|h| h.contains("420")), "{:?}", hay(&app));
    let first = app.rows(Panel::Routes).first().cloned();
    assert_eq!(first, Some(RowKey::Route("shop-web".into(), B.into())), "the busiest route sorts first");
    // Only the changed rows were rebuilt by the next status.
    let builds = app.view(Panel::Routes).cache.builds;
    let st = router_traffic("r1", app.now, 2_000, &[("shop-web", B, 1_000, 0, 1_000, 2_000)], &[]);
    feed_router(&mut app, st);
    app.refresh_views();
    assert_eq!(app.view(Panel::Routes).cache.builds, builds + 1);
    assert!(hay(&app).is_some_and(|h| h.contains("500")), "{:?}", hay(&app));
    // Past three periods with no status, the numbers go, with no status to say so.
    app.update(Action::Tick(app.now + 6_001));
    app.refresh_views();
    assert!(hay(&app).is_some_and(|h| h.contains('–') && !h.contains("500")), "{:?}", hay(&app));
}

#[test]
fn an_app_with_traffic_and_no_serving_route_is_flagged_at_once() {
    let mut app = app();
    disable_routes(&mut app, "shop-web", 0);
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::SortBy('s'));
    app.refresh_views();
    let hay =
        |app: &App| app.view(Panel::Apps).cache.hay_of(&RowKey::Id("shop-web".into())).map(str::to_string);
    assert!(hay(&app).is_some_and(|h| !h.contains("no route")), "{:?}", hay(&app));
    // nginx answers 503 itself: requests for the app, none for a backend.
    let now = app.now;
    feed_router(&mut app, router_traffic("r1", now, 2_000, &[], &[("shop-web", 24)]));
    app.refresh_views();
    assert!(hay(&app).is_some_and(|h| h.contains("✕ no route (12.0 rps)")), "{:?}", hay(&app));
    // A serving app with traffic is not flagged.
    let api = app.view(Panel::Apps).cache.hay_of(&RowKey::Id("api-gateway".into())).map(str::to_string);
    assert!(api.as_deref().is_some_and(|h| !h.contains("no route")), "{api:?}");
    // With the controller silent, what serves is unknown: said so, not "no route".
    app.now += 30_000;
    let now = app.now;
    app.update(Action::Tick(now));
    feed_router(&mut app, router_traffic("r1", now, 2_000, &[], &[("shop-web", 24)]));
    app.refresh_views();
    assert!(hay(&app).is_some_and(|h| !h.contains("no route") && h.contains("unknown")), "{:?}", hay(&app));
    let facts = app.facts().into_owned();
    assert_eq!(unserved_apps(&app.traffic, &app.replica, &facts, app.now), 0);
}
