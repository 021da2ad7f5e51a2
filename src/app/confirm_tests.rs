//! Headless tests of the confirm round trip: nothing before `y`, nothing while not live, typed names for prod apps.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::actions::prompt::{self, InputMode};
use crate::actions::{Action, Panel};
use crate::app::Overlay;
use crate::backend::Inbound;
use crate::protocol::{ControlCommand, RestartBody, RestartRequest};
use crate::views::harness::{app, screen, sent, type_text};

#[test]
fn restart_confirmed_and_refused() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().cloned().expect("an instance");
    assert!(app.update(Action::Restart).is_empty(), "nothing before the confirmation");
    assert_eq!(app.input_mode(), InputMode::Confirm);
    // Refused: nothing is sent.
    assert!(app.update(Action::Cancelled).is_empty());
    assert!(app.overlay().is_none());
    assert!(screen(&mut app, 120, 14).contains("cancelled"));
    // Keys other than y/n do nothing in the dialog.
    app.update(Action::Restart);
    assert!(app.update(Action::Restart).is_empty());
    assert!(app.update(Action::Submit).is_empty());
    let effects = app.update(Action::Confirmed);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Restart(RestartBody::from(RestartRequest::Instance(target.id.clone())))]
    );
    assert!(screen(&mut app, 120, 14).contains(&format!("sent: restart instance {}", target.id)));
}

/// Not live: the dialog says so and `y` sends nothing; once live again it does.
#[test]
fn confirm_refuses_while_not_live() {
    use crate::bus::Connection;
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().cloned().expect("an instance");
    app.update(Action::Restart);
    let live = screen(&mut app, 120, 16);
    assert!(!live.contains("not live"), "{live}");
    let down = Connection::Disconnected { since: app.now, reason: "disconnected".into() };
    app.apply(Inbound::Feed(crate::backend::Feed::Connection(down)));
    assert_eq!(app.input_mode(), InputMode::Confirm, "the dialog stays open");
    assert!(screen(&mut app, 120, 16).contains("⚠ not live: this will not be sent"));
    assert!(app.update(Action::Confirmed).is_empty(), "nothing is sent while not live");
    assert!(app.update(Action::Submit).is_empty());
    assert_eq!(app.input_mode(), InputMode::Confirm);
    let shown = screen(&mut app, 120, 16);
    assert!(shown.contains("not sent: reconnecting"), "{shown}");
    // Back and live again (a fresh snapshot after the reconnect): `y` sends.
    app.apply(Inbound::Feed(crate::backend::Feed::Connection(Connection::Connected)));
    let (fleet, _) = crate::plane::fixture::fixture(42, 6, 0);
    app.apply(Inbound::Feed(crate::backend::Feed::Snapshot(fleet)));
    assert!(!screen(&mut app, 120, 16).contains("⚠ not live"));
    let effects = app.update(Action::Confirmed);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Restart(RestartBody::from(RestartRequest::Instance(target.id.clone())))]
    );
}

#[test]
fn prod_apps_need_their_name_typed() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Bottom);
    assert_eq!(app.selected_app().map(|a| a.name.as_str()), Some("shop-web"));
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::TypedConfirm);
    // `y` is just a letter here.
    let y = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE);
    let action = prompt::action_for(app.input_mode(), &y).expect("an action");
    assert!(app.update(action).is_empty());
    assert!(app.update(Action::Confirmed).is_empty(), "no y/N shortcut for prod");
    assert!(app.update(Action::Submit).is_empty(), "\"y\" is not the name");
    assert!(screen(&mut app, 100, 20).contains("type shop-web exactly to confirm"));
    app.update(Action::ClearInput);
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert_eq!(
        sent(&effects),
        vec![ControlCommand::Restart(RestartBody::from(RestartRequest::App("shop-web".into())))]
    );
    // Not prod: `y` is enough.
    app.update(Action::Top);
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::Confirm);
}

/// "Is this prod" is one rule, `protocol::App::is_prod`: the confirm dialog and the
/// wizard both ask it, so a tag added to an app changes both.
#[test]
fn the_prod_rule_is_the_apps_tag_for_the_dialog_and_the_wizard() {
    let mut app = app();
    let spec = app.replica.fleet.apps.get_mut("api-gateway").expect("api-gateway");
    assert!(!spec.is_prod());
    spec.tags.push(crate::protocol::PROD_TAG.into());
    assert!(app.replica.fleet.apps["api-gateway"].is_prod());
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Top);
    assert_eq!(app.selected_app().map(|a| a.name.as_str()), Some("api-gateway"));
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::TypedConfirm, "a restart of a prod app asks for its name");
    app.overlays.clear();
    app.update(Action::Deploy);
    let Some(Overlay::Wizard(w)) = app.overlay() else { panic!("no wizard: {:?}", app.overlay()) };
    assert!(w.is_prod(), "the wizard asks the same rule");
}

/// The one rule: a production context asks for the target's name on every change; a host's
/// change (no app) types the context's name; elsewhere only prod-labelled apps ask.
#[test]
fn the_typed_name_rule() {
    use super::typed_name;
    assert_eq!(typed_name(false, "dev", &[("web", false)]), None);
    assert_eq!(typed_name(false, "dev", &[("web", true), ("api", false)]), Some("web".into()));
    assert_eq!(typed_name(true, "prod", &[("web", false), ("api", false)]), Some("web,api".into()));
    assert_eq!(typed_name(true, "prod", &[]), Some("prod".into()));
    assert_eq!(typed_name(false, "dev", &[]), None);
}

/// On a production context a restart of an app not labelled prod needs its name typed,
/// and so does a deploy in the wizard: every change, through the one rule.
#[test]
fn a_production_context_asks_for_the_typed_name_on_every_change() {
    let mut app = app();
    app.production = true;
    app.bus_label = "prod-eu".into();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().cloned().expect("an instance");
    assert!(!app.replica.fleet.apps.get(&target.app).is_some_and(crate::protocol::AppSpec::is_prod));
    app.update(Action::Restart);
    assert_eq!(app.input_mode(), InputMode::TypedConfirm);
    assert!(app.update(Action::Confirmed).is_empty(), "y alone sends nothing");
    type_text(&mut app, &target.app);
    let effects = app.update(Action::Submit);
    assert_eq!(sent(&effects).len(), 1, "sent once the app's name is typed");
    // A host's restart types the names of the apps on it.
    app.update(Action::ShowPanel(Panel::Hosts));
    app.update(Action::Restart);
    match app.overlay() {
        Some(Overlay::Confirm(p)) => assert!(p.typed.is_some(), "{p:?}"),
        other => panic!("a typed confirm: {other:?}"),
    }
    app.update(Action::Cancelled);
    // The wizard's deploy follows the same rule.
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Deploy);
    match app.overlay() {
        Some(Overlay::Wizard(w)) => assert!(w.is_prod(), "a typed name in the wizard too"),
        other => panic!("the wizard: {other:?}"),
    }
}
