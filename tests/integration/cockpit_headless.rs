//! The cockpit without a terminal: Actions in, model and buffer out, against the embedded
//! sandbox's real controller and simulated agents on the in-process bus.

use std::time::Duration;

use quarterdeck::actions::keymap::Keymap;
use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::{App, Overlay};
use quarterdeck::backend::{self, BackendHandle, Command};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{Constraints, DeployRequest, InstanceState, RouteState};
use quarterdeck::views::theme::{ColorMode, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::support::fast_sandbox;

fn screen(app: &mut App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(140, 30)).unwrap();
    app.page_rows = quarterdeck::views::body_rows(30);
    terminal.draw(|f| quarterdeck::views::render(app, f)).unwrap();
    let buf = terminal.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

/// Feeds backend updates into the app (carrying out its effects) until `done` holds.
async fn pump(app: &mut App, handle: &mut BackendHandle, what: &str, mut done: impl FnMut(&App) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(app) {
        let update = tokio::time::timeout_at(deadline, handle.updates.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
            .expect("backend open");
        app.now = now_ms();
        for effect in app.update(Action::Backend(Box::new(update))) {
            carry_out(handle, effect);
        }
    }
}

fn carry_out(handle: &BackendHandle, effect: Effect) {
    match effect {
        Effect::Send(cmd) => handle.commands.send(Command::Send(cmd)).unwrap(),
        Effect::Resync => handle.commands.send(Command::Resync).unwrap(),
        Effect::Quit | Effect::Copy(_) => {}
    }
}

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
    let mut app = App::new("sandbox", Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms());
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
    assert!(screen(&mut app).contains("instances 2/2 running"));

    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    let target = app.selected_instance().unwrap().clone();
    assert!(app.update(Action::Restart).is_empty(), "nothing is sent before the confirmation");
    assert!(matches!(app.overlay(), Some(Overlay::Confirm(_))));
    let shown = screen(&mut app);
    assert!(
        shown.contains("Confirm") && shown.contains(&format!("Restart instance {}", target.id)),
        "{shown}"
    );

    // Refused first: nothing is sent and the dialog closes.
    assert!(app.update(Action::Cancelled).is_empty());
    assert!(app.overlay().is_none());
    assert!(screen(&mut app).contains("cancelled"));

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
    let shown = screen(&mut app);
    let row = shown.lines().find(|l| l.contains(&target.endpoint)).expect("the instance's row");
    assert!(row.contains("● running"), "{row}");
    assert!(row.contains("   1 "), "restart count shown: {row}");
    app.update(Action::ShowPanel(Panel::Events));
    let shown = screen(&mut app);
    assert!(shown.contains("OPERATION_SUCCEEDED") && shown.contains("restarted 1 instance"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_a_route_through_the_confirm_dialog() {
    let (_sb, mut app, mut handle) = cockpit_on_sandbox(2).await;
    app.update(Action::ShowPanel(Panel::Routes));
    let route = app.selected_route().unwrap().clone();
    app.update(Action::ToggleRoute);
    let shown = screen(&mut app);
    assert!(shown.contains(&format!("Disable route {} -> {}?", route.domain, route.backend)), "{shown}");
    for e in app.update(Action::Confirmed) {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "route disabled", |a| {
        a.replica.fleet.routes.get(&route.key()).is_some_and(|r| r.state == RouteState::Disabled)
    })
    .await;
    assert!(screen(&mut app).contains("○ disabled"));
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
    let shown = screen(&mut app);
    assert!(shown.contains(&format!("refused: restart instance {}", ghost.id)), "{shown}");
    assert!(shown.contains("no instance"), "{shown}");
}
