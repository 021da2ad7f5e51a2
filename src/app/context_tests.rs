//! Headless tests of `:context` and the live switch: the old plane's state goes, the header
//! names the new one, and a failed switch leaves the cockpit where it was.

use ratatui::style::Color;

use super::PlaneLabel;
use crate::actions::{Action, Effect, Panel};
use crate::app::Overlay;
use crate::backend::Connection;
use crate::context::Context;
use crate::views::harness::{app, draw, find, screen, type_text};

fn context(name: &str, production: bool) -> Context {
    Context {
        name: name.into(),
        nats: format!("nats://127.0.0.1:1/{name}"),
        creds: None,
        nkey: None,
        colour: Some(Color::Yellow),
        production,
    }
}

fn palette(app: &mut crate::app::App, line: &str) -> Vec<Effect> {
    app.update(Action::Palette);
    let mut effects = type_text(app, line);
    effects.extend(app.update(Action::Submit));
    effects
}

#[test]
fn context_names_a_known_context_or_lists_them() {
    let mut app = app();
    app.contexts = vec![context("staging", false), context("prod", true)];
    assert_eq!(palette(&mut app, "context prod"), vec![Effect::SwitchContext("prod".into())]);
    assert!(screen(&mut app, 120, 20).contains("connecting to prod"));
    // Nothing of the plane goes before the switch is done: the rows stay, truthfully.
    assert!(!app.replica.fleet.apps.is_empty());
    assert!(palette(&mut app, "context qa").is_empty());
    let s = screen(&mut app, 120, 20);
    assert!(s.contains("no context \"qa\"; contexts: staging, prod"), "{s}");
    assert!(palette(&mut app, "context").is_empty());
    let s = screen(&mut app, 140, 20);
    assert!(s.contains("contexts: staging, prod ⚠ production — :context NAME switches"), "{s}");
    assert!(palette(&mut app, "context sandbox").is_empty(), "already there");
    // Tab completes the contexts' names.
    app.update(Action::Palette);
    type_text(&mut app, "context st");
    app.update(Action::Complete);
    match app.overlay() {
        Some(Overlay::Palette(p)) => assert_eq!(p.input, "context staging "),
        other => panic!("the palette: {other:?}"),
    }
}

#[test]
fn a_switch_drops_everything_of_the_old_plane_and_the_header_names_the_new() {
    let mut app = app();
    app.contexts = vec![context("b", true)];
    // The old plane's marks, filter, selection, dialog, logs and refusal.
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    app.update(Action::Mark);
    assert!(!app.view(Panel::Instances).marks.is_empty());
    app.views[Panel::Hosts.index()].set_filter(crate::app::rows::Filter::parse("az1"));
    app.read_only = true;
    app.read_only_reason = Some("the server refused".into());
    app.overlays.push(Overlay::Help);
    let old_app = app.replica.fleet.apps.keys().next().cloned().expect("an app");
    app.switched(
        PlaneLabel { name: "b".into(), colour: Some(Color::Yellow), production: true },
        Connection::Connected,
    );
    assert!(app.replica.fleet.apps.is_empty() && app.replica.fleet.instances.is_empty());
    assert!(app.replica.events.is_empty(), "no events of the old plane");
    assert!(app.view(Panel::Instances).marks.is_empty());
    assert!(app.view(Panel::Hosts).filter.is_none());
    assert_eq!(app.selection().index, 0);
    assert!(app.overlays.is_empty() && app.logs.is_none());
    assert!(!app.read_only && app.read_only_reason.is_none(), "the new plane's probe decides");
    assert!(app.production && app.bus_label == "b");
    let buf = draw(&mut app, 120, 20);
    let s = crate::views::harness::text(&buf);
    let header = s.lines().next().unwrap_or_default();
    assert!(header.contains(" b ") && header.contains("⚠ PROD") && header.contains("loading"), "{s}");
    assert!(!s.contains(&old_app), "{s}");
    let (x, y) = find(&buf, " b ").expect("the name");
    assert_eq!(buf[(x + 1, y)].fg, Color::Yellow, "in the context's colour");
}

#[test]
fn read_only_by_flag_survives_a_switch() {
    let mut app = app();
    app.read_only = true;
    app.switched(PlaneLabel::plain("b"), Connection::Connected);
    assert!(app.read_only);
}

#[test]
fn a_failed_switch_stays_on_the_plane_it_was_on() {
    let mut app = app();
    let apps = app.replica.fleet.apps.len();
    app.switch_failed("b", "cannot connect to nats://127.0.0.1:1: connection refused");
    assert_eq!(app.replica.fleet.apps.len(), apps);
    let s = screen(&mut app, 140, 20);
    assert!(s.lines().next().is_some_and(|h| h.contains("sandbox")), "{s}");
    assert!(
        s.contains(
            "cannot switch to b: cannot connect to nats://127.0.0.1:1: connection refused; still on sandbox"
        ),
        "{s}"
    );
}
