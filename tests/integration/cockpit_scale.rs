//! `+` and `-` in the cockpit against the embedded sandbox's real controller: the prod
//! app's name typed, the command through the backend, the app's instances and routes
//! following.

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::{App, Overlay};
use quarterdeck::protocol::{ControlCommand, InstanceState, OperationKind, OperationState, ScaleRequest};

use crate::cockpit_support::type_text;
use crate::cockpit_workflows::cockpit;
use crate::support::{carry_out, pump};

/// Running instances and routes of shop-web, and how many scales succeeded.
fn counts(a: &App) -> (usize, usize, usize) {
    let f = &a.replica.fleet;
    let running = f.instances_of("shop-web").filter(|i| i.state == InstanceState::Running).count();
    let routes = f.routes.values().filter(|r| r.app == "shop-web").count();
    let scaled = f
        .operations
        .values()
        .filter(|o| o.kind == OperationKind::Scale && o.state == OperationState::Succeeded)
        .count();
    (running, routes, scaled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_plus_and_minus_scale_a_prod_app_through_the_controller() {
    let (_sb, mut app, mut handle) = cockpit(false).await;
    app.update(Action::ShowPanel(Panel::Apps));
    assert_eq!(app.selected_app().map(|a| a.name.as_str()), Some("shop-web"));
    for (key, to, scaled) in [(Action::ScaleUp, 4, 1), (Action::ScaleDown, 3, 2)] {
        app.update(key);
        assert!(matches!(app.overlay(), Some(Overlay::Confirm(p)) if p.typed.as_deref() == Some("shop-web")));
        type_text(&mut app, "shop-web");
        let effects = app.update(Action::Submit);
        let want = ControlCommand::Scale(ScaleRequest { app: "shop-web".into(), instances: to });
        assert_eq!(effects, vec![Effect::Send(want)]);
        for e in effects {
            carry_out(&handle, e);
        }
        pump(&mut app, &mut handle, &format!("shop-web at {to}, routed"), |a| {
            counts(a) == (to as usize, to as usize, scaled)
                && a.replica.fleet.apps.get("shop-web").is_some_and(|s| s.instances == to)
        })
        .await;
    }
}
