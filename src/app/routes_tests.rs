//! Headless tests of the route actions.

use crate::actions::{Action, Panel};
use crate::app::rows::RowKey;
use crate::protocol::ControlCommand;
use crate::protocol::subjects::RouteVerb;
use crate::views::harness::{app, question, sent, type_text};

/// Enabling an enabled route (or disabling a disabled one) is a no-op that says so and
/// sends nothing; among marked routes, those already so are left out and named as such.
#[test]
fn enabling_an_enabled_route_is_a_no_op_that_says_so() {
    use crate::protocol::RouteState;
    let mut app = app();
    let (key, route) =
        app.replica.fleet.routes.iter().next().map(|(k, r)| (k.clone(), r.clone())).expect("a route");
    assert_eq!(route.state, RouteState::Enabled);
    app.update(Action::Palette);
    type_text(&mut app, &format!("route enable {} {}", key.0, key.1));
    let effects = app.update(Action::Submit);
    assert!(effects.is_empty() && app.overlay().is_none(), "{effects:?} {:?}", app.overlay());
    let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert_eq!(said, format!("route {} -> {} is already enabled: nothing sent", route.domain, route.backend));
    // The other way round it is a command, confirmed as usual.
    app.update(Action::Palette);
    type_text(&mut app, &format!("route disable {} {}", key.0, key.1));
    app.update(Action::Submit);
    assert!(question(&app).starts_with("Disable route"), "{}", question(&app));
    app.overlays.clear();

    // Marks: the second route is disabled already; `e` goes the way of the first
    // (disable) and sends one command.
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::Top);
    let second = match app.rows(Panel::Routes).get(1) {
        Some(RowKey::Route(a, b)) => (a.clone(), b.clone()),
        other => panic!("{other:?}"),
    };
    app.replica.fleet.routes.get_mut(&second).expect("second route").state = RouteState::Disabled;
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let q = question(&app);
    assert!(q.contains("1 marked already disabled: left as they are"), "{q}");
    let commands = sent(&app.update(Action::Confirmed));
    assert_eq!(commands.len(), 1, "{commands:?}");
    let ControlCommand::Route(RouteVerb::Disable, req) = &commands[0] else { panic!("{commands:?}") };
    assert_ne!((req.app.clone(), req.backend.clone()), second);
}
