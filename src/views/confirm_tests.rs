//! Snapshot and cell-style tests of the confirm dialog, drawn from the fixed-seed fixture through
//! the shared headless harness (`views::harness`).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::views::harness::{app, disable_routes, draw, find, text, type_text};

#[test]
fn confirm_dialog() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    assert_snapshot!(text(&draw(&mut app, 100, 16)));
}

/// A restart confirmed while the bus is down: refused, the dialog still open.
fn confirmed_while_not_live() -> App {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    let down = crate::bus::Connection::Disconnected { since: app.now, reason: "disconnected".into() };
    app.apply(crate::backend::Inbound::Feed(crate::backend::Feed::Connection(down)));
    app.update(Action::Confirmed);
    app
}

#[test]
fn confirm_dialog_not_live() {
    let mut app = confirmed_while_not_live();
    let screen = text(&draw(&mut app, 100, 18));
    assert!(screen.contains("⚠ not live: this will not be sent"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn a_confirm_dialog_error_that_wraps_is_shown_whole() {
    let mut app = confirmed_while_not_live();
    // 60 columns: the refusal takes two rows, and the dialog grows to hold both.
    let screen = text(&draw(&mut app, 60, 24));
    assert!(screen.contains("not sent: reconnecting"), "{screen}");
    assert!(screen.contains("║ Esc "), "the end of the refusal is cut off:\n{screen}");
}

#[test]
fn typed_name_dialog() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    // shop-web is the last app by name and tagged prod.
    app.update(Action::Bottom);
    app.update(Action::Restart);
    type_text(&mut app, "shop");
    let screen = text(&draw(&mut app, 100, 16));
    assert_snapshot!(screen);
    assert!(screen.contains("⚠ prod: type shop-web and Enter to confirm"), "{screen}");
    assert!(screen.contains("◀ 1 ▶ at a time, of 3"), "{screen}");
}

#[test]
fn disabling_an_apps_last_serving_backend_is_named_in_the_confirm_dialog() {
    let mut app = app();
    disable_routes(&mut app, "api-gateway", 1);
    app.update(Action::ShowPanel(Panel::Routes));
    let enabled = |app: &App, name: &str| {
        app.rows(Panel::Routes)
            .iter()
            .position(|k| match k {
                crate::app::rows::RowKey::Route(a, b) => {
                    a == name
                        && app.replica.fleet.routes[&(a.clone(), b.clone())].state
                            == crate::protocol::RouteState::Enabled
                }
                _ => false,
            })
            .expect("an enabled route")
    };
    // Not the last one: no warning.
    let pos = enabled(&app, "session-cache");
    app.selections[Panel::Routes.index()].index = pos;
    app.update(Action::ToggleRoute);
    let screen = text(&draw(&mut app, 100, 16));
    assert!(screen.contains("Disable route") && !screen.contains("last serving"), "{screen}");
    app.update(Action::Cancelled);
    // api-gateway's last enabled route.
    let pos = enabled(&app, "api-gateway");
    app.selections[Panel::Routes.index()].index = pos;
    app.update(Action::ToggleRoute);
    let buf = draw(&mut app, 100, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(
        screen.contains("⚠ this is api-gateway's last serving backend: api-gateway will get no"),
        "{screen}"
    );
    let (x, y) = find(&buf, "⚠ this is api-gateway").expect("warning");
    assert_eq!(buf[(x, y)].fg, app.theme.warn.fg.unwrap_or(Color::Reset));
    // Confirmed, it is sent as usual.
    assert_eq!(app.update(Action::Confirmed).len(), 1);
}
