//! Traffic in the cockpit on a real nats-server (issue 20): a router's status with
//! traffic, published on the bus by the test as a stand-in router, reaches the Routes
//! panel's RPS, 5XX% and P99 cells through the backend and the app, and when the router
//! falls silent its numbers go to unknown, not stay as they were. (The real router's
//! nginx reading is tested with the router; the two meet on this status.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use quarterdeck::actions::{Action, Panel};
use quarterdeck::app::App;
use quarterdeck::backend::{self, BackendHandle};
use quarterdeck::bus::Bus;
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{Envelope, RouterStatus, Traffic, TrafficStats, subjects};

use crate::cockpit_support::cockpit_app;
use crate::nats_support::{Plane, PlaneConfig, WAIT, connect};
use crate::support::carry_out;

/// The stand-in router's status period, and its traffic's window.
const PERIOD_MS: u64 = 300;

fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Applies what the backend sent so far, ticks the clock and draws the Routes panel,
/// every 50 ms until `done` holds for it; panics with the last screen after `WAIT`.
async fn until(app: &mut App, handle: &mut BackendHandle, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        while let Ok(update) = handle.updates.try_recv() {
            app.now = now_ms();
            for effect in app.apply(update) {
                carry_out(handle, effect);
            }
        }
        app.update(Action::Tick(now_ms()));
        if app.panel != Panel::Routes {
            app.update(Action::ShowPanel(Panel::Routes));
        }
        let shown = crate::cockpit_support::screen(app, 200);
        if done(&shown) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for: {what}\nlast screen:\n{shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A router's status with one backend's traffic: `requests` over the period, a tenth 5xx.
fn status(app: &str, backend: &str, requests: u64) -> RouterStatus {
    let stats =
        TrafficStats { requests, errors_5xx: requests / 10, p50_us: Some(4_000), p99_us: Some(1_200_000) };
    let mut traffic = Traffic { at: now_ms(), window_ms: PERIOD_MS, ..Traffic::default() };
    traffic.backends.entry(app.into()).or_default().insert(backend.into(), stats.clone());
    traffic.apps.insert(app.into(), stats);
    RouterStatus {
        id: "r1".into(),
        generation: 1,
        last_reload: Some(now_ms()),
        last_error: None,
        backends: 1,
        listen: "127.0.0.1:8080".into(),
        revision: 0,
        traffic: Some(traffic),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routers_traffic_on_the_bus_reaches_the_routes_panel_and_goes_stale_when_it_stops() {
    let name = "a_routers_traffic_on_the_bus_reaches_the_routes_panel_and_goes_stale_when_it_stops";
    let Some(plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let bus: Arc<dyn Bus> = Arc::new(connect(&plane.url(), "cockpit/test@traffic").await);
    let mut handle = backend::spawn(bus, "cockpit/test@traffic".into());
    let mut app = cockpit_app("traffic");
    until(&mut app, &mut handle, "two shop-web routes", |s| {
        s.lines().filter(|l| l.contains("shop-web")).count() == 2
    })
    .await;
    let backend = app.replica.fleet.routes.keys().map(|(_, b)| b.clone()).next().expect("a route");
    let quiet = app.replica.fleet.routes.keys().map(|(_, b)| b.clone()).nth(1).expect("a second route");

    // The stand-in router: 90 requests per 300 ms period is 300 rps, 10% of them 5xx.
    let router = connect(&plane.url(), "router/stand-in").await;
    let publisher = {
        let backend = backend.clone();
        tokio::spawn(async move {
            loop {
                let env = Envelope::new("router/r1", status("shop-web", &backend, 90));
                if let Err(e) = quarterdeck::bus::publish(&router, &subjects::router_status("r1"), &env).await
                {
                    eprintln!("stand-in router: {e}");
                }
                tokio::time::sleep(Duration::from_millis(PERIOD_MS)).await;
            }
        })
    };
    let row_of = |s: &str, b: &str| s.lines().find(|l| l.contains(b)).unwrap_or_default().to_string();
    let shown = until(&mut app, &mut handle, "the backend's traffic in its row", |s| {
        let row = row_of(s, &backend);
        row.contains("300") && row.contains("10%") && row.contains("1.2s")
    })
    .await;
    assert!(shown.contains("RPS") && shown.contains("5XX%") && shown.contains("P99"), "{shown}");
    let other = row_of(&shown, &quiet);
    assert!(other.contains(" 0 ") && !other.contains('–'), "a backend the router saw nothing for: {other}");

    // The router stops: past three periods the numbers are unknown, not the last ones.
    publisher.abort();
    let stopped = Instant::now();
    let shown =
        until(&mut app, &mut handle, "the traffic unknown", |s| !row_of(s, &backend).contains("300")).await;
    let row = row_of(&shown, &backend);
    assert!(row.contains('–') && !row.contains("10%"), "{row}");
    eprintln!("stand-in router stopped -> its traffic shown unknown after {:?}", stopped.elapsed());
}
