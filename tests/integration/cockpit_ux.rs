//! The rough edges of #17 an on-call engineer hits, against the embedded sandbox's real
//! controller: the Events panel following the newest event, bulk route changes that name
//! their targets, and a change to what is so already, which sends nothing.

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::rows::RowKey;
use quarterdeck::app::{App, Overlay};
use quarterdeck::backend::{BackendHandle, BackendRequest};
use quarterdeck::protocol::ControlCommand;
use quarterdeck::protocol::{OperationState, RestartBody, RestartRequest, RouteState};

use crate::cockpit_support::type_text;
use crate::cockpit_workflows::cockpit;
use crate::support::{carry_out, pump};

fn newest(app: &App) -> Option<u64> {
    app.replica.events.iter().map(|e| e.rev).max()
}

fn selected(app: &App) -> Option<u64> {
    app.selected_event().map(|e| e.rev)
}

/// Restarts one instance through the real controller and waits until its events (at
/// least `more` beyond what the cockpit has) have arrived; then the frame's refresh.
async fn restart_and_wait(app: &mut App, handle: &mut BackendHandle, more: u64) {
    let id = app.replica.fleet.instances.keys().next().cloned().expect("an instance");
    let cmd = ControlCommand::Restart(RestartBody::from(RestartRequest::Instance(id)));
    handle.commands.send(BackendRequest::Send(cmd)).expect("backend open");
    let from = newest(app).unwrap_or(0);
    // Until the restart ended too, so that the next one is not refused as overlapping.
    pump(app, handle, "the restart's events and its end", |a| {
        newest(a).unwrap_or(0) >= from + more
            && a.replica.fleet.operations.values().all(|o| o.state != OperationState::Running)
    })
    .await;
    app.refresh_views();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_events_follow_the_newest_until_the_operator_moves() {
    let (_sb, mut app, mut handle) = cockpit(false).await;
    app.update(Action::ShowPanel(Panel::Events));
    assert_eq!(selected(&app), newest(&app));
    restart_and_wait(&mut app, &mut handle, 2).await;
    assert_eq!(selected(&app), newest(&app), "the newest event is selected as it arrives");
    assert_eq!(app.follow_state(Panel::Events), Some((true, Some("g"))));

    app.update(Action::Down);
    let kept = selected(&app);
    assert_ne!(kept, newest(&app));
    restart_and_wait(&mut app, &mut handle, 2).await;
    assert_eq!(selected(&app), kept, "paused: the selection stays on its event");
    assert_eq!(app.follow_state(Panel::Events), Some((false, Some("g"))));

    app.update(Action::Top);
    restart_and_wait(&mut app, &mut handle, 2).await;
    assert_eq!(selected(&app), newest(&app), "g follows again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_bulk_route_disable_names_its_targets_and_a_second_one_sends_nothing() {
    let (_sb, mut app, mut handle) = cockpit(false).await;
    app.update(Action::ShowPanel(Panel::Routes));
    let keys: Vec<(String, String)> = app
        .rows(Panel::Routes)
        .iter()
        .filter_map(|k| match k {
            RowKey::Route(a, b) => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    app.update(Action::Mark);
    app.update(Action::Mark);
    app.update(Action::ToggleRoute);
    let Some(Overlay::Confirm(pending)) = app.overlay() else { panic!("no dialog: {:?}", app.overlay()) };
    let want = format!("Disable 2 routes: {} {}, {} {}?", keys[0].0, keys[0].1, keys[1].0, keys[1].1);
    assert!(pending.question.starts_with(&want), "{}", pending.question);
    // shop-web is prod: its name is typed.
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert_eq!(effects.iter().filter(|e| matches!(e, Effect::Send(_))).count(), 2, "{effects:?}");
    for e in effects {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "both routes disabled by the controller", |a| {
        keys[..2]
            .iter()
            .all(|k| a.replica.fleet.routes.get(k).is_some_and(|r| r.state == RouteState::Disabled))
    })
    .await;

    // Disabling a disabled route again is a no-op: nothing is sent, and it says so.
    app.update(Action::Palette);
    type_text(&mut app, &format!("route disable {} {}", keys[0].0, keys[0].1));
    let effects = app.update(Action::Submit);
    assert!(effects.is_empty() && app.overlay().is_none(), "{effects:?} {:?}", app.overlay());
    let said = app.status.as_ref().map(|s| s.text.clone()).unwrap_or_default();
    assert!(said.ends_with("is already disabled: nothing sent"), "{said}");
    assert_eq!(app.replica.fleet.routes[&keys[2]].state, RouteState::Enabled, "the third untouched");
}
