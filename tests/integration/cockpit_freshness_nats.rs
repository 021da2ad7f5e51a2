//! Freshness on a real nats-server, through a headless cockpit (the backend and `App`,
//! drawn on a test terminal as an operator would see it): a silent source is shown as
//! unknown with its age, never as its last good state (issue 12, fault 1's screen half),
//! and an app whose routes all stopped serving says it gets no traffic (fault 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use quarterdeck::actions::{Action, Panel};
use quarterdeck::app::App;
use quarterdeck::backend::{self, BackendHandle};
use quarterdeck::bus::Bus;
use quarterdeck::protocol::HostState;
use quarterdeck::protocol::clock::now_ms;

use crate::cockpit_support::cockpit_app;
use crate::nats_support::{HEARTBEAT, Plane, PlaneConfig, WAIT, connect, ctl_ok_async, snapshot};
use crate::support::carry_out;

/// The period the plane's controller and agents beat with (`HEARTBEAT`), in ms.
const PERIOD_MS: u64 = 300;

/// Wide enough for the header's long form with a `nats://127.0.0.1:PORT` label.
const WIDTH: u16 = 200;

/// Runs blocking harness code (process spawning, polling ctl) from an async test.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// A cockpit without a terminal on the plane's bus: backend updates go into the app as
/// the event loop puts them, with the clock ticking, and the screen is drawn as text.
struct Cockpit {
    app: App,
    handle: BackendHandle,
}

impl Cockpit {
    async fn start(url: &str) -> Cockpit {
        assert_eq!(HEARTBEAT, "300ms", "PERIOD_MS follows the harness's heartbeat");
        let bus: Arc<dyn Bus> = Arc::new(connect(url, "cockpit/test@freshness").await);
        let label = bus.describe();
        let handle = backend::spawn(bus, "cockpit/test@freshness".into());
        let app = cockpit_app(label);
        Cockpit { app, handle }
    }

    /// Applies what the backend has sent so far, ticks the clock and draws `panel`.
    fn look(&mut self, panel: Panel) -> String {
        while let Ok(update) = self.handle.updates.try_recv() {
            self.app.now = now_ms();
            for effect in self.app.apply(update) {
                carry_out(&self.handle, effect);
            }
        }
        self.app.update(Action::Tick(now_ms()));
        if self.app.panel != panel {
            self.app.update(Action::ShowPanel(panel));
        }
        crate::cockpit_support::screen(&mut self.app, WIDTH)
    }

    /// Looks at `panel` every 50 ms until `done` holds for what it shows; returns that
    /// screen. Panics with the last screen after `WAIT`.
    async fn until(&mut self, panel: Panel, what: &str, done: impl Fn(&App, &str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let shown = self.look(panel);
            if done(&self.app, &shown) {
                return shown;
            }
            if Instant::now() > deadline {
                panic!("timed out after {WAIT:?} waiting for: {what}\nlast screen:\n{shown}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn header(shown: &str) -> &str {
    shown.lines().next().unwrap_or_default()
}

/// The row of a table that mentions `needle`.
fn row<'a>(shown: &'a str, needle: &str) -> &'a str {
    shown.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no row with {needle:?}:\n{shown}"))
}

async fn live_with_instances(cockpit: &mut Cockpit, running: usize) -> String {
    let want = format!("instances {running}/{running} running │");
    cockpit
        .until(Panel::Instances, &format!("live, {want}"), |_, s| {
            header(s).contains("● live") && header(s).contains(&want) && !s.contains("not live")
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_on_nats_says_no_controller_when_it_dies_and_live_when_it_returns() {
    let name = "cockpit_on_nats_says_no_controller_when_it_dies_and_live_when_it_returns";
    let Some(mut plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let mut cockpit = Cockpit::start(&plane.url()).await;
    let shown = live_with_instances(&mut cockpit, 2).await;
    assert!(row(&shown, "shop-web").contains("● running"), "{shown}");
    // A few beacons teach the cockpit the controller's period (its health loop ticks every
    // 250 ms, so a 300 ms period beacons every 500 ms).
    cockpit
        .until(Panel::Instances, "the beacon's period learnt", |a, _| {
            a.replica.controller_period() < backend::DEFAULT_PERIOD_MS
        })
        .await;
    let period = cockpit.app.replica.controller_period();
    assert!((PERIOD_MS..=2 * PERIOD_MS).contains(&period), "beacons every {period} ms");

    let killed = Instant::now();
    blocking(|| plane.controller.kill9());
    let shown = cockpit
        .until(Panel::Instances, "the header says no controller", |_, s| {
            header(s).contains("✕ no controller for")
        })
        .await;
    let noticed = killed.elapsed();
    let heard = cockpit.app.replica.controller_heard;
    eprintln!(
        "controller killed -> header says no controller after {noticed:?} (beacon period learnt: {} ms, \
         last heard {} ms before the kill was noticed)",
        cockpit.app.replica.controller_period(),
        now_ms().saturating_sub(heard)
    );
    // Three periods and the screen's poll; the rest is slack for a loaded machine.
    assert!(noticed < Duration::from_millis(3 * period) + Duration::from_secs(5), "{noticed:?}");
    // Every panel says not live; what the controller said is unknown, not healthy.
    assert!(shown.contains("⚠ not live: no controller"), "{shown}");
    assert!(header(&shown).contains("instances 0/2 running (2 unknown)"), "{shown}");
    assert!(header(&shown).contains("routes 0/2 serving (2 unknown)"), "{shown}");
    assert!(row(&shown, "shop-web").contains("? running"), "{shown}");
    assert!(!shown.contains("● running"), "{shown}");
    for panel in [Panel::Hosts, Panel::Routes, Panel::Events, Panel::Audit, Panel::Apps] {
        let shown = cockpit.look(panel);
        assert!(shown.contains("⚠ not live: no controller"), "{panel:?}:\n{shown}");
    }
    // The agents still beat: their hosts are up, heard directly.
    let shown = cockpit.look(Panel::Hosts);
    assert!(header(&shown).contains("hosts 2/2 up │"), "{shown}");

    // A controller again: live again, the instances running.
    blocking(|| plane.restart_controller("c1"));
    let shown = live_with_instances(&mut cockpit, 2).await;
    assert!(row(&shown, "shop-web").contains("● running"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_on_nats_shows_a_killed_agents_host_stale_with_its_age_without_a_controller() {
    let name = "cockpit_on_nats_shows_a_killed_agents_host_stale_with_its_age_without_a_controller";
    let Some(mut plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let snap = blocking(|| snapshot(&plane.url()));
    let on_h1 = snap["instances"].as_array().map_or(0, |v| v.iter().filter(|i| i["host"] == "h1").count());
    let mut cockpit = Cockpit::start(&plane.url()).await;
    live_with_instances(&mut cockpit, 2).await;

    // Nobody is left to call h1 stale: the controller goes first, then h1's agent.
    blocking(|| plane.controller.kill9());
    cockpit.until(Panel::Hosts, "no controller", |_, s| header(s).contains("✕ no controller for")).await;
    blocking(|| plane.agents[0].kill9());
    let shown = cockpit
        .until(Panel::Hosts, "h1 shown stale with its age", |_, s| {
            let h1 = s.lines().find(|l| l.contains(" h1 ")).unwrap_or_default();
            h1.contains("◐ stale ") && header(s).contains("hosts 1/2 up (1 silent)")
        })
        .await;
    let h1 = row(&shown, " h1 ");
    let h2 = row(&shown, " h2 ");
    assert!(h2.contains("● up"), "h2 beats on: {h2}");
    // The age is there, in seconds, in the state and the heartbeat column.
    let age = h1.split("◐ stale ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default();
    assert!(age.ends_with('s') && age[..age.len() - 1].parse::<u64>().is_ok(), "an age in seconds: {h1}");
    // Its last word from the controller was "up": the screen did not keep it.
    assert_eq!(cockpit.app.replica.fleet.hosts["h1"].state, HostState::Up, "no controller said stale");
    assert!(!h1.contains("● up"), "{h1}");

    let shown = cockpit.look(Panel::Instances);
    for line in shown.lines().filter(|l| l.contains(" h1 ")) {
        assert!(line.contains("? running"), "an instance on silent h1: {line}");
    }
    assert_eq!(
        shown.lines().filter(|l| l.contains(" h1 ") && l.contains("? running")).count(),
        on_h1,
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_on_nats_is_not_live_while_the_bus_is_down_and_live_again_after() {
    let name = "cockpit_on_nats_is_not_live_while_the_bus_is_down_and_live_again_after";
    let Some(mut plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    let mut cockpit = Cockpit::start(&plane.url()).await;
    live_with_instances(&mut cockpit, 2).await;

    blocking(|| plane.nats.stop());
    let shown = cockpit
        .until(Panel::Instances, "not live while nats-server is down", |_, s| {
            header(s).contains("✕ reconnecting for") && s.contains("⚠ not live")
        })
        .await;
    assert!(!header(&shown).contains("● live"), "{shown}");
    // The silence is shown on the rows too once it lasts 3 periods.
    let shown = cockpit
        .until(Panel::Instances, "the instances' facts are old", |_, s| {
            s.lines().filter(|l| l.contains("shop-web")).all(|l| l.contains("? running"))
        })
        .await;
    assert!(!shown.contains("● running"), "{shown}");

    blocking(|| plane.nats.start_again());
    let ready = Instant::now();
    let shown = live_with_instances(&mut cockpit, 2).await;
    eprintln!("nats-server ready -> cockpit live with its instances running: {:?}", ready.elapsed());
    assert!(row(&shown, "shop-web").contains("● running"), "{shown}");
    let shown = cockpit.look(Panel::Hosts);
    assert!(header(&shown).contains("hosts 2/2 up │"), "{shown}");
    assert!(!shown.contains("stale"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_on_nats_shows_no_traffic_when_every_route_of_an_app_is_disabled() {
    let name = "cockpit_on_nats_shows_no_traffic_when_every_route_of_an_app_is_disabled";
    let Some(plane) = blocking(|| Plane::start(name, PlaneConfig::default())) else { return };
    plane.deploy_async("shop-web", "1.0.0", 2).await;
    plane.deploy_async("api", "1.0.0", 1).await;
    let mut cockpit = Cockpit::start(&plane.url()).await;
    live_with_instances(&mut cockpit, 3).await;
    let shown = cockpit
        .until(Panel::Apps, "three serving routes", |_, s| header(s).contains("routes 3/3 serving"))
        .await;
    assert!(row(&shown, "shop-web").contains("● ok"), "{shown}");

    let snap = blocking(|| snapshot(&plane.url()));
    let backends: Vec<String> = snap["routes"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|r| r["app"] == "shop-web")
                .filter_map(|r| r["backend"].as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(backends.len(), 2, "{snap}");
    for b in &backends {
        ctl_ok_async(&plane.url(), &["route", "disable", "--app", "shop-web", "--backend", b]).await;
    }
    let shown = cockpit
        .until(Panel::Apps, "shop-web gets no traffic", |_, s| {
            s.lines().any(|l| l.contains("shop-web") && l.contains("✕ no traffic"))
        })
        .await;
    let web = row(&shown, "shop-web");
    assert!(web.contains("2/2") && web.contains("0/2") && !web.contains("● ok"), "{web}");
    assert!(row(&shown, " api ").contains("● ok"), "{shown}");
    assert!(header(&shown).contains("routes 1/3 serving"), "the header counts serving routes:\n{shown}");
    assert!(header(&shown).contains("● live") && header(&shown).contains("instances 3/3 running"), "{shown}");
}
