//! The operator workflows of #5 against the embedded sandbox's real controller: the audit
//! trail reaching the Audit panel with the operator's identity, batched and marked
//! restarts, route weights, and read-only mode that never puts a command on the bus.

use std::time::Duration;

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::{App, Overlay};
use quarterdeck::backend::{self, BackendHandle, BackendRequest, Identity, Inbound};
use quarterdeck::bus::Bus;
use quarterdeck::protocol::ControlCommand;
use quarterdeck::protocol::subjects::RouteVerb;
use quarterdeck::protocol::{
    Constraints, DeployRequest, EventKind, InstanceState, OperationState, Operator, RestartBody,
    RestartRequest, RouteRequest, subjects,
};

use crate::cockpit_support::{cockpit_app, type_text};
use crate::support::{carry_out, fast_sandbox, pump};

fn alice() -> Operator {
    Operator::from_parts("alice", "bastion-1", Some("10.0.0.5 52344 10.0.0.1 22"), Some("ops".into()))
}

pub(crate) async fn cockpit(read_only: bool) -> (quarterdeck::plane::sandbox::Sandbox, App, BackendHandle) {
    let sb = fast_sandbox(2).await;
    sb.deploy(DeployRequest {
        app: "shop-web".into(),
        version: "1.0.0".into(),
        instances: 3,
        image: Some("tomcat:8.5".into()),
        port: Some(8080),
        constraints: Some(Constraints { azs: vec![], tags: vec![], cpu: 0.25, memory_mb: 256 }),
        tags: Some(vec!["prod".into()]),
        ..DeployRequest::default()
    })
    .await
    .unwrap();
    let identity = Identity { operator: Some(alice()), read_only, repository: None };
    let mut handle = backend::spawn_cockpit(sb.bus.clone(), "cockpit/alice@bastion-1".into(), identity);
    let mut app = cockpit_app("sandbox");
    app.read_only = read_only;
    pump(&mut app, &mut handle, "three running instances with routes", |a| {
        a.replica.fleet.instances.values().filter(|i| i.state == InstanceState::Running).count() == 3
            && a.replica.fleet.routes.len() == 3
    })
    .await;
    (sb, app, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_prod_restart_in_batches_is_audited_with_the_operator() {
    let (_sb, mut app, mut handle) = cockpit(false).await;
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Restart);
    assert!(matches!(app.overlay(), Some(Overlay::Confirm(p)) if p.typed.as_deref() == Some("shop-web")));
    app.update(Action::Adjust(1));
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert_eq!(
        effects,
        vec![Effect::Send(ControlCommand::Restart(RestartBody {
            target: RestartRequest::App("shop-web".into()),
            batch: Some(2)
        }))]
    );
    for e in effects {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "the restart succeeded and was audited", |a| {
        let done = a
            .replica
            .fleet
            .operations
            .values()
            .any(|o| o.target.contains("2 at a time") && o.state == OperationState::Succeeded);
        done && !a.replica.audit.is_empty()
    })
    .await;
    assert!(app.replica.fleet.instances.values().all(|i| i.restarts == 1), "every instance restarted once");
    let record = app.replica.audit.back().and_then(|e| e.audit.clone()).expect("an audit record");
    assert_eq!(record.verb, "restart");
    assert_eq!(record.source, "cockpit/alice@bastion-1");
    assert_eq!(record.operator, Some(alice()));
    // On the sandbox nobody logs in: the login this process runs as is the user, and the
    // identity the client gave is the context.
    let me = quarterdeck::protocol::subjects::token(&quarterdeck::bus::user::login_name());
    assert_eq!(record.by.as_deref(), Some(me.as_str()));
    assert!(record.outcome.accepted && record.outcome.operation_id.is_some(), "{record:?}");

    app.update(Action::ShowPanel(Panel::Audit));
    let shown = crate::cockpit_support::screen(&mut app, 240);
    assert!(shown.contains(&format!("{me} ")), "{shown}");
    assert!(shown.contains("cockpit · alice@bastion-1 · ssh 10.0.0.5:52344"), "{shown}");
    assert_eq!(record.via(), "cockpit · alice@bastion-1 · ssh 10.0.0.5:52344 · nats ops");
    assert!(
        shown.contains("restart app shop-web (batch 2)") && shown.contains("✓ succeeded (op-"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_refusals_are_audited_and_weights_change() {
    let (_sb, mut app, mut handle) = cockpit(false).await;
    let route = app.replica.fleet.routes.values().next().cloned().expect("a route");
    let weight = ControlCommand::Route(
        RouteVerb::Weight,
        RouteRequest { app: route.app.clone(), backend: route.backend.clone(), weight: Some(7) },
    );
    handle.commands.send(BackendRequest::Send(weight)).unwrap();
    let refused = ControlCommand::Restart(RestartBody::from(RestartRequest::Instance("nope-0-0000".into())));
    handle.commands.send(BackendRequest::Send(refused)).unwrap();
    pump(&mut app, &mut handle, "the weight changed and both commands were audited", |a| {
        // The sandbox's deploy, the weight and the refusal.
        a.replica.fleet.routes.get(&route.key()).is_some_and(|r| r.weight == 7) && a.replica.audit.len() >= 3
    })
    .await;
    let kinds: Vec<EventKind> = app.replica.events.iter().rev().take(4).map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::RouteWeightChanged), "{kinds:?}");
    let results: Vec<String> =
        app.replica.audit.iter().filter_map(|e| e.audit.as_ref().map(|a| a.result())).collect();
    assert!(results.iter().any(|r| r.starts_with("refused: no instance \"nope-0-0000\"")), "{results:?}");
    assert!(results.iter().any(|r| r == "accepted"), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cockpit_read_only_never_sends_a_command() {
    let (sb, mut app, mut handle) = cockpit(true).await;
    // A spy on every controller subject: reads (snapshot, history) may pass, commands not.
    let mut spy = sb.bus.subscribe(subjects::CTL_ALL).await.unwrap();
    // The app refuses every acting key...
    for panel in Panel::ALL {
        app.update(Action::ShowPanel(panel));
        for action in [
            Action::Restart,
            Action::Remove,
            Action::ToggleRoute,
            Action::AddRoute,
            Action::Ack,
            Action::Weight,
            Action::Deploy,
        ] {
            let effects = app.update(action);
            assert!(effects.iter().all(|e| !matches!(e, Effect::Send(_))), "{effects:?}");
            assert!(app.update(Action::Confirmed).is_empty());
        }
    }
    assert!(crate::cockpit_support::screen(&mut app, 160).contains("READ-ONLY"));
    // ...and the backend refuses whatever reaches it anyway, without touching the bus.
    let restart = ControlCommand::Restart(RestartBody::from(RestartRequest::App("shop-web".into())));
    handle.commands.send(BackendRequest::Send(restart)).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match handle.updates.recv().await {
                Some(Inbound::CommandDone { result, .. }) => return result,
                Some(_) => continue,
                None => panic!("backend closed"),
            }
        }
    })
    .await
    .expect("an answer");
    assert!(answer.is_err_and(|e| e == quarterdeck::backend::CommandError::ReadOnly));
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(50), spy.next()).await {
        assert!(
            msg.subject == subjects::CTL_SNAPSHOT || msg.subject == subjects::CTL_HISTORY,
            "read-only cockpit sent {}",
            msg.subject
        );
    }
    assert!(sb.controller.snapshot().instances.values().all(|i| i.restarts == 0));
}
