//! Whole-screen tests that span panels: the layout at 80x24, the theme reaching every
//! cell, and freshness said in the header and every panel. Each panel's and dialog's own
//! snapshot tests live beside it (`hosts_tests.rs`, `wizard_tests.rs`, ...).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::T0;
use crate::theme::{ColorMode, Theme};
use crate::views::harness::{app, draw, find, text, type_text};

#[test]
fn narrow_terminal_keeps_the_essentials() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 80, 24);
    let screen = text(&buf);
    assert_snapshot!(screen);
    for must in ["APP", "HOST", "STATE", "CPU", "MEM", "● running", "q quit", "? help"] {
        assert!(screen.contains(must), "{must:?} missing at 80x24:\n{screen}");
    }
}

#[test]
fn states_are_coloured_and_named() {
    let mut app = app();
    let t = app.theme.clone();
    // Select the last row, so the first row shows the plain state colours.
    app.update(Action::Bottom);
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "● up").expect("an up host");
    assert_eq!(buf[(x + 2, y)].fg, t.ok.fg.unwrap_or(Color::Reset));
    // The header badge says "live" in the ok colour.
    let (x, y) = find(&buf, "● live").expect("live badge");
    assert_eq!(buf[(x, y)].fg, t.ok.fg.unwrap_or(Color::Reset));
    // The selected row carries the selection style.
    let (x, y) = find(&buf, "▶   host-06").expect("selected row");
    assert_eq!(buf[(x + 2, y)].bg, t.selection.bg.unwrap_or(Color::Reset));
}

#[test]
fn no_color_uses_words_and_reverse_video() {
    let mut app = app();
    app.theme = Theme::default_for(ColorMode::None);
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "● up").expect("an up host");
    assert_eq!(buf[(x + 2, y)].fg, Color::Reset);
    let (x, y) = find(&buf, "▶   host-01").expect("selected row");
    assert!(buf[(x + 2, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
}

#[test]
fn a_crashed_instance_and_a_lost_host_say_so() {
    let mut app = app();
    // Not the first instance: that row is selected and drawn in the selection style.
    let id = app.replica.fleet.instances.keys().nth(1).cloned().expect("an instance");
    if let Some(i) = app.replica.fleet.instances.get_mut(&id) {
        i.state = crate::protocol::InstanceState::Crashed;
    }
    if let Some(h) = app.replica.fleet.hosts.get_mut("host-02") {
        h.state = crate::protocol::HostState::Lost;
    }
    let t = app.theme.clone();
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "✕ lost").expect("lost host shown by word");
    assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset));
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "✕ crashed").expect("crashed instance shown by word");
    assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset));
    assert!(text(&buf).contains("instances 6/7 running"));
}

/// Every host of the fixture beats at `now`, with a 2 s period.
fn all_hosts_beat(app: &mut App, now: u64) {
    app.now = now;
    let hosts: Vec<crate::protocol::Host> = app.replica.fleet.hosts.values().cloned().collect();
    for h in hosts {
        let hb = crate::backend::replica_test_heartbeat(&h, 2_000);
        app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb))));
    }
}

/// The controller's beacon every 2 s, the last at `now`.
fn beacons_until(app: &mut App, now: u64) {
    for k in (0..4).rev() {
        app.now = now - k * 2_000;
        let rev = app.replica.fleet.revision;
        app.apply(Inbound::Feed(Feed::Beacon(rev)));
    }
}

#[test]
fn no_controller_for_three_beacon_periods_is_said_in_the_header_and_every_panel() {
    let mut app = app();
    let t = T0 + 60_000;
    beacons_until(&mut app, t);
    all_hosts_beat(&mut app, t + 6_000);
    app.update(Action::Tick(t + 6_000));
    let screen = text(&draw(&mut app, 170, 16));
    assert!(
        screen.contains("● live") && !screen.contains("not live"),
        "3 periods is not yet silent:\n{screen}"
    );

    app.update(Action::Tick(t + 6_001));
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 170, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("✕ no controller for 6s"), "{screen}");
    assert!(screen.contains("⚠ not live: no controller"), "{screen}");
    // The cockpit's own alert is counted (the header is 170 wide for it).
    assert!(screen.lines().next().is_some_and(|h| h.contains("│ ● 1 alert │")), "{screen}");
    // The hosts beat: they are up. What the controller said of instances and routes is
    // unknown, and not counted as healthy.
    assert!(screen.contains("hosts 6/6 up │"), "{screen}");
    assert!(screen.contains("instances 0/7 running (7 unknown)"), "{screen}");
    assert!(screen.contains("routes 0/7 serving (7 unknown)"), "{screen}");
    assert!(screen.contains("? running 6s old") && !screen.contains("● running"), "{screen}");
    let (x, y) = find(&buf, "✕ no controller").expect("badge");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    for panel in [Panel::Hosts, Panel::Routes, Panel::Events, Panel::Apps] {
        app.update(Action::ShowPanel(panel));
        let screen = text(&draw(&mut app, 170, 16));
        assert!(screen.contains("⚠ not live: no controller"), "{panel:?}:\n{screen}");
        if panel == Panel::Routes {
            assert_eq!(screen.matches("? running 6s").count(), 7, "every backend's instance:\n{screen}");
        }
    }
    let screen = text(&draw(&mut app, 170, 16));
    assert!(screen.contains("? 2 unknown") && !screen.contains("● ok"), "Apps:\n{screen}");
    let row = screen.lines().find(|l| l.contains("api-gateway")).expect("api-gateway's row");
    assert!(row.contains("0/2") && !row.contains("2/2"), "nothing known to run or serve: {row}");

    // A beacon: live again at once.
    app.now = t + 6_500;
    app.apply(Inbound::Feed(Feed::Beacon(app.replica.fleet.revision)));
    let screen = text(&draw(&mut app, 170, 16));
    assert!(screen.contains("● live") && !screen.contains("unknown"), "{screen}");
}

#[test]
fn a_silent_host_is_stale_with_its_age_and_its_instances_unknown() {
    let mut app = app();
    let t = T0 + 60_000;
    all_hosts_beat(&mut app, t);
    // host-02 goes silent; the others and the controller go on.
    let others: Vec<crate::protocol::Host> =
        app.replica.fleet.hosts.values().filter(|h| h.info.id != "host-02").cloned().collect();
    for at in [t + 2_000, t + 4_000, t + 6_000, t + 8_000] {
        app.now = at;
        for h in &others {
            let hb = crate::backend::replica_test_heartbeat(h, 2_000);
            app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb))));
        }
        app.apply(Inbound::Feed(Feed::Beacon(app.replica.fleet.revision)));
    }
    app.update(Action::Tick(t + 8_000));
    let buf = draw(&mut app, 150, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let row = screen.lines().find(|l| l.contains("host-02")).expect("host-02's row");
    assert!(row.contains("◐ stale 8s") && row.contains("8s"), "{row}");
    assert!(screen.contains("hosts 5/6 up (1 silent)"), "{screen}");
    assert!(screen.contains("● live"), "the controller is heard:\n{screen}");
    let on_host_02 = app.replica.fleet.instances_on("host-02").count();
    assert!(
        screen.contains(&format!("instances {}/7 running ({on_host_02} unknown)", 7 - on_host_02)),
        "{screen}"
    );
    // No controller has said so: the fleet still has it up.
    assert_eq!(app.replica.fleet.hosts["host-02"].state, crate::protocol::HostState::Up);

    app.update(Action::ShowPanel(Panel::Instances));
    let screen = text(&draw(&mut app, 150, 16));
    let row = screen.lines().find(|l| l.contains("host-02")).expect("an instance on host-02");
    assert!(row.contains("? running 8s old"), "{row}");
    assert_eq!(screen.matches("? running").count(), on_host_02, "{screen}");

    // The filter finds what is unknown, and follows when the host speaks again.
    app.update(Action::Filter);
    type_text(&mut app, "unknown");
    app.update(Action::Submit);
    assert_eq!(app.row_count(Panel::Instances), on_host_02);
    app.now = t + 8_500;
    let host_02 = app.replica.fleet.hosts["host-02"].clone();
    let hb = crate::backend::replica_test_heartbeat(&host_02, 2_000);
    app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb))));
    app.refresh_views();
    assert_eq!(app.row_count(Panel::Instances), 0, "heard again: nothing is unknown");
}
