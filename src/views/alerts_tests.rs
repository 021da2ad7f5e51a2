//! Snapshot and cell-style tests of the Alerts panel and the header's alert count, drawn
//! from the fixture with one alert of each kind (`harness::alerts_app`).

use insta::assert_snapshot;
use ratatui::style::{Color, Modifier};

use crate::actions::{Action, Panel};
use crate::protocol::{AlertState, EventKind};
use crate::views::harness::{alerts_app, app, draw, feed_alert, find, text};

#[test]
fn alerts_panel_120x40() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Alerts));
    let buf = draw(&mut app, 120, 40);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let t = &app.theme;
    // The first row is selected, drawn in the selection's colours: the second fires too.
    let (x, y) = find(&buf, "● firing").expect("a firing row");
    assert_eq!(buf[(x, y + 1)].symbol(), "●", "{screen}");
    assert_eq!(buf[(x, y + 1)].fg, t.bad.fg.unwrap_or(Color::Reset));
    let (x, y) = find(&buf, "✓ acked alice@bastion-1").expect("an acknowledged row, with who");
    assert_eq!(buf[(x, y)].fg, t.warn.fg.unwrap_or(Color::Reset));
    let (x, y) = find(&buf, "○ resolved").expect("a resolved row");
    assert_eq!(buf[(x, y)].fg, t.muted.fg.unwrap_or(Color::Reset));
}

#[test]
fn alerts_panel_80x24() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Alerts));
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    assert!(screen.contains("7 Alerts"), "the tab fits:\n{screen}");
    assert!(screen.contains("host/host-02"), "{screen}");
}

#[test]
fn no_alerts_says_so_and_the_header_shows_no_count() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Alerts));
    let screen = text(&draw(&mut app, 120, 12));
    assert!(screen.contains("no alerts: nothing is firing"), "{screen}");
    assert!(!screen.lines().next().unwrap_or_default().contains("alert"), "{screen}");
}

/// Red and bold while any fires; dim once every active alert is acknowledged; gone when
/// they resolve.
#[test]
fn the_header_counts_active_alerts_red_while_any_fires() {
    let mut app = alerts_app();
    let t = app.theme.clone();
    let buf = draw(&mut app, 160, 6);
    let (x, y) = find(&buf, "● 3 alerts (1 acked)").expect("the count in the header");
    assert_eq!(y, 0);
    assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset));
    assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
    let narrow = text(&draw(&mut app, 80, 24));
    assert!(narrow.lines().next().is_some_and(|l| l.contains("●3")), "short at 80 columns:\n{narrow}");

    let firing: Vec<_> =
        app.replica.fleet.alerts.values().filter(|a| a.state == AlertState::Firing).cloned().collect();
    for mut a in firing {
        a.state = AlertState::Acknowledged;
        a.acked_by = Some("bob@h".into());
        feed_alert(&mut app, a);
    }
    let buf = draw(&mut app, 160, 6);
    let (x, y) = find(&buf, "✓ 3 alerts acked").expect("the acknowledged count");
    assert_eq!(buf[(x, y)].fg, t.muted.fg.unwrap_or(Color::Reset));

    let active: Vec<_> = app.replica.fleet.alerts.values().filter(|a| a.state.is_active()).cloned().collect();
    for mut a in active {
        a.state = AlertState::Resolved;
        a.resolved_at = Some(app.now);
        feed_alert(&mut app, a);
    }
    let header = text(&draw(&mut app, 160, 6)).lines().next().unwrap_or_default().to_string();
    assert!(!header.contains("alert"), "{header}");
}

/// ALERT_FIRING is a bad event in the Events panel; its other kinds are not.
#[test]
fn events_show_alert_firing_in_the_bad_tone() {
    let mut app = alerts_app();
    app.update(Action::ShowPanel(Panel::Events));
    let buf = draw(&mut app, 140, 20);
    let screen = text(&buf);
    let (x, y) = find(&buf, "✕ ALERT_FIRING").expect("the firing event, marked");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    assert!(screen.contains("ALERT_RESOLVED") && !screen.contains("✕ ALERT_RESOLVED"), "{screen}");
    assert!(EventKind::AlertFiring.is_bad() && !EventKind::AlertAcknowledged.is_bad());
}
