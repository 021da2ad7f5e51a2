//! The cockpit without a terminal: Actions in, model and buffer out, against the embedded
//! sandbox's real controller and simulated agents on the in-process bus.

use quarterdeck::actions::{Action, Panel};
use quarterdeck::app::{App, Overlay};
use quarterdeck::backend::{self, BackendHandle};
use quarterdeck::protocol::{Constraints, DeployRequest, InstanceState, RouteState};

use crate::cockpit_support::cockpit_app;
use crate::support::{carry_out, fast_sandbox, pump};

async fn cockpit_on_sandbox(hosts: usize) -> (quarterdeck::plane::sandbox::Sandbox, App, BackendHandle) {
    let sb = fast_sandbox(hosts).await;
    sb.deploy(DeployRequest {
        app: "shop-web".into(),
        version: "1.0.0".into(),
        instances: 2,
        image: Some("tomcat:8.5".into()),
        port: Some(8080),
        constraints: Some(Constraints { azs: vec![], tags: vec![], cpu: 0.5, memory_mb: 512 }),
        ..DeployRequest::default()
    })
    .await
    .unwrap();
    let mut handle = backend::spawn(sb.bus.clone(), "cockpit/test@headless".into());
    let mut app = cockpit_app("sandbox");
    pump(&mut app, &mut handle, "two running instances with routes", |a| {
        a.replica.fleet.instances.values().filter(|i| i.state == InstanceState::Running).count() == 2
            && a.replica.fleet.routes.len() == 2
    })
    .await;
    (sb, app, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_through_the_confirm_dialog() {
    let (_sb, mut app, mut handle) = cockpit_on_sandbox(2).await;
    assert!(crate::cockpit_support::screen(&mut app, 140).contains("instances 2/2 running"));

    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().unwrap().clone();
    assert!(app.update(Action::Restart).is_empty(), "nothing is sent before the confirmation");
    assert!(matches!(app.overlay(), Some(Overlay::Confirm(_))));
    let shown = crate::cockpit_support::screen(&mut app, 140);
    assert!(
        shown.contains("Confirm") && shown.contains(&format!("Restart instance {}", target.id)),
        "{shown}"
    );

    // Refused first: nothing is sent and the dialog closes.
    assert!(app.update(Action::Cancelled).is_empty());
    assert!(app.overlay().is_none());
    assert!(crate::cockpit_support::screen(&mut app, 140).contains("cancelled"));

    app.update(Action::Restart);
    let effects = app.update(Action::Confirmed);
    assert_eq!(effects.len(), 1, "{effects:?}");
    for e in effects {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "the instance restarted once and runs again", |a| {
        let restarted = a.replica.fleet.instances.get(&target.id).is_some_and(|i| {
            i.restarts == 1 && i.state == InstanceState::Running && i.started_at > target.started_at
        });
        let finished = a.replica.events.iter().any(|e| {
            e.kind == quarterdeck::protocol::EventKind::OperationSucceeded && e.message.contains("restarted")
        });
        restarted && finished
    })
    .await;
    let shown = crate::cockpit_support::screen(&mut app, 140);
    let row = shown.lines().find(|l| l.contains(&target.endpoint)).expect("the instance's row");
    assert!(row.contains("● running"), "{row}");
    assert!(row.contains("   1 "), "restart count shown: {row}");
    app.update(Action::ShowPanel(Panel::Events));
    let shown = crate::cockpit_support::screen(&mut app, 140);
    assert!(shown.contains("OPERATION_SUCCEEDED") && shown.contains("restarted 1 instance"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_a_route_through_the_confirm_dialog() {
    let (_sb, mut app, mut handle) = cockpit_on_sandbox(2).await;
    app.update(Action::ShowPanel(Panel::Routes));
    let route = app.selected_route().unwrap().clone();
    app.update(Action::ToggleRoute);
    let shown = crate::cockpit_support::screen(&mut app, 140);
    assert!(shown.contains(&format!("Disable route {} -> {}?", route.domain, route.backend)), "{shown}");
    for e in app.update(Action::Confirmed) {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "route disabled", |a| {
        a.replica.fleet.routes.get(&route.key()).is_some_and(|r| r.state == RouteState::Disabled)
    })
    .await;
    assert!(crate::cockpit_support::screen(&mut app, 140).contains("○ disabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_is_shown_not_swallowed() {
    let (_sb, mut app, mut handle) = cockpit_on_sandbox(2).await;
    app.update(Action::ShowPanel(Panel::Instances));
    // The replica holds an instance the controller no longer has (as after a missed
    // event): the operator's restart must come back as a visible refusal.
    let mut ghost = app.selected_instance().unwrap().clone();
    ghost.id = format!("{}-gone", ghost.id);
    app.replica.fleet.instances.clear();
    app.replica.fleet.instances.insert(ghost.id.clone(), ghost.clone());
    app.update(Action::Restart);
    for e in app.update(Action::Confirmed) {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "a refusal in the status line", |a| {
        a.status.as_ref().is_some_and(|s| s.text.contains("refused"))
    })
    .await;
    let shown = crate::cockpit_support::screen(&mut app, 140);
    assert!(shown.contains(&format!("refused: restart instance {}", ghost.id)), "{shown}");
    assert!(shown.contains("no instance"), "{shown}");
}
