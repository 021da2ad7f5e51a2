//! Headless tests of `+` / `-` and `:scale`: the confirm dialog says what changes, a prod
//! app asks for its name, read-only refuses before any dialog.

use crate::actions::prompt::InputMode;
use crate::actions::{Action, Panel};
use crate::app::Overlay;
use crate::protocol::{ControlCommand, ScaleRequest};
use crate::views::harness::{app, screen, sent, type_text};

fn scale(app: &str, instances: u32) -> ControlCommand {
    ControlCommand::Scale(ScaleRequest { app: app.into(), instances })
}

#[test]
fn plus_on_an_app_asks_to_scale_it_up_by_one_and_sends_once_confirmed() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Top);
    let (name, n) = app.selected_app().map(|a| (a.name.clone(), a.instances)).expect("an app");
    assert!(!app.replica.fleet.apps[&name].is_prod(), "{name}");
    assert!(app.update(Action::ScaleUp).is_empty(), "nothing before the confirmation");
    assert_eq!(app.input_mode(), InputMode::Confirm);
    let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no dialog: {:?}", app.overlay()) };
    assert_eq!(p.question, format!("Scale {name} up from {n} to {} instance(s)?", n + 1));
    assert!(screen(&mut app, 120, 16).contains(&format!("Scale {name} up from {n} to {}", n + 1)));
    let effects = app.update(Action::Confirmed);
    assert_eq!(sent(&effects), vec![scale(&name, n + 1)]);
    assert!(screen(&mut app, 120, 16).contains(&format!("sent: scale {name} to {}", n + 1)));
}

#[test]
fn minus_on_an_instance_scales_its_app_down_and_a_prod_app_needs_its_name_typed() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let prod =
        app.replica.fleet.apps.values().find(|a| a.is_prod()).map(|a| a.name.clone()).expect("a prod app");
    // The selection on one of its instances.
    let mut guard = 0;
    while app.selected_instance().is_none_or(|i| i.app != prod) {
        app.update(Action::Down);
        guard += 1;
        assert!(guard < 100, "no instance of {prod}");
    }
    let n = app.replica.fleet.apps[&prod].instances;
    app.update(Action::ScaleDown);
    assert_eq!(app.input_mode(), InputMode::TypedConfirm, "a prod app asks for its name");
    assert!(app.update(Action::Confirmed).is_empty(), "no y/N shortcut for prod");
    type_text(&mut app, &prod);
    let effects = app.update(Action::Submit);
    assert_eq!(sent(&effects), vec![scale(&prod, n - 1)]);
}

#[test]
fn scale_from_the_palette_and_its_bad_input() {
    let mut app = app();
    let name = app.replica.fleet.apps.keys().next().cloned().expect("an app");
    let n = app.replica.fleet.apps[&name].instances;
    let palette = |app: &mut crate::app::App, line: &str| {
        app.update(Action::Palette);
        type_text(app, line);
        app.update(Action::Submit)
    };
    assert!(palette(&mut app, &format!("scale {name} 0")).is_empty());
    let Some(Overlay::Confirm(p)) = app.overlay() else { panic!("no dialog: {:?}", app.overlay()) };
    assert!(
        p.question.contains("to 0 instance(s)?") && p.question.contains("the app is kept"),
        "{}",
        p.question
    );
    assert_eq!(p.commands, vec![scale(&name, 0)]);
    app.overlays.clear();
    for (line, says) in [
        (format!("scale {name} {n}"), "nothing to scale".to_string()),
        (format!("scale {name} 501"), "0 to 500, not 501".to_string()),
        (format!("scale {name} many"), "\"many\" is not a whole number".to_string()),
        ("scale nope 2".to_string(), "no app \"nope\"".to_string()),
        (format!("scale {name}"), "scale APP N".to_string()),
    ] {
        assert!(palette(&mut app, &line).is_empty(), "{line}");
        let shown = screen(&mut app, 160, 16);
        assert!(shown.contains(&says), "{line}: {shown}");
        app.overlays.clear();
    }
}

#[test]
fn read_only_refuses_a_scale_before_any_dialog() {
    let mut app = app();
    app.read_only = true;
    app.update(Action::ShowPanel(Panel::Apps));
    for action in [Action::ScaleUp, Action::ScaleDown] {
        let effects = [app.update(action), app.update(Action::Confirmed)].concat();
        assert!(sent(&effects).is_empty(), "{effects:?}");
        assert!(app.overlay().is_none(), "no dialog opened: {:?}", app.overlay());
        assert!(screen(&mut app, 160, 16).contains("read-only: scale refused"));
    }
}

#[test]
fn minus_at_0_asks_nothing_and_says_why() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Top);
    let name = app.selected_app().map(|a| a.name.clone()).expect("an app");
    app.replica.fleet.apps.get_mut(&name).expect("the app").instances = 0;
    assert!(app.update(Action::ScaleDown).is_empty());
    assert!(app.overlay().is_none(), "no dialog: {:?}", app.overlay());
    let shown = screen(&mut app, 160, 16);
    assert!(shown.contains(&format!("{name} has 0 instance(s) desired: it cannot go past 0")), "{shown}");
}
