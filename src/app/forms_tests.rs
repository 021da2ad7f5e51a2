//! Headless tests of the route forms, driven through the whole App on the fixture.

use crate::actions::{Action, Panel};
use crate::app::Overlay;
use crate::protocol::ControlCommand;
use crate::protocol::subjects::RouteVerb;
use crate::views::harness::{app, screen, sent, type_text};

#[test]
fn route_weight_form_validates_then_confirms() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::Weight);
    app.update(Action::ClearInput);
    type_text(&mut app, "5000");
    app.update(Action::Submit);
    match app.overlay() {
        Some(Overlay::Form(form)) => assert!(form.error.as_deref().is_some_and(|e| e.contains("1 to 1000"))),
        other => panic!("{other:?}"),
    }
    app.update(Action::Backspace);
    app.update(Action::Backspace);
    app.update(Action::Backspace);
    app.update(Action::Submit);
    assert!(screen(&mut app, 120, 16).contains("to 5?"));
    let effects = app.update(Action::Confirmed);
    assert!(
        matches!(sent(&effects).as_slice(), [ControlCommand::Route(RouteVerb::Weight, r)] if r.weight == Some(5))
    );
}
