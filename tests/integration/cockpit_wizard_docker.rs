//! Issue 5 on real services: a deploy driven through the cockpit's wizard actions, over a
//! real nats-server, produces running containers on a real dockerd.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::keymap::Keymap;
use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::wizard::Step;
use quarterdeck::app::{App, Overlay, Wizard};
use quarterdeck::backend::{self, Identity};
use quarterdeck::bus::{Bus, NatsBus, NatsOptions};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::views::theme::{ColorMode, Theme};

use crate::docker_support::{docker, inspect};
use crate::nats_support::eventually;
use crate::stack_support::Stack;
use crate::support::{carry_out, pump};

fn wizard(app: &App) -> &Wizard {
    match app.overlays.last() {
        Some(Overlay::Wizard(w)) => w,
        other => panic!("no wizard open: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_deploy_on_nats_and_docker_runs_containers() {
    let name = "wizard_deploy_on_nats_and_docker_runs_containers";
    let Some(stack) = tokio::task::block_in_place(|| Stack::start(name)) else { return };
    // Version 1 from ctl, with its artifact; the wizard then rolls out version 2 of it.
    let out = tokio::task::block_in_place(|| stack.deploy("1", "2", "served by the wizard's deploy", &[]));
    assert!(out.ok(), "{out}");

    let opts = NatsOptions { url: stack.url(), name: "cockpit/wizard-test".into(), ..NatsOptions::default() };
    let bus: Arc<dyn Bus> = Arc::new(NatsBus::connect(&opts).await.expect("nats"));
    let mut handle = backend::spawn_cockpit(bus, "cockpit/wizard-test".into(), Identity::default());
    let mut app = App::new("nats", Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms());
    pump(&mut app, &mut handle, "the app and its two instances", |a| {
        a.replica
            .fleet
            .instances_of("site")
            .filter(|i| i.state == quarterdeck::protocol::InstanceState::Running)
            .count()
            == 2
    })
    .await;

    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Deploy);
    app.update(Action::ClearInput);
    for c in "2".chars() {
        app.update(Action::Input(c));
    }
    app.update(Action::Submit);
    let plan = wizard(&app).plan.clone().expect("a plan");
    assert!(plan.no_fit.is_none(), "{plan:?}");
    assert_eq!(plan.placements.len(), 2);
    app.update(Action::Submit);
    assert_eq!(wizard(&app).step, Step::Confirm);
    let effects = app.update(Action::Input('y'));
    assert!(matches!(effects.as_slice(), [Effect::Send(_)]), "{effects:?}");
    for e in effects {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "the wizard's deploy finished", |a| {
        wizard(a).finished(&a.replica.fleet).is_some()
    })
    .await;
    assert_eq!(wizard(&app).finished(&app.replica.fleet), Some(Ok("site@2 x2".into())));

    // Two containers of version 2 run on the docker host, and they serve the artifact.
    let host = stack.host.clone();
    let running_v2 = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(20), "two version-2 containers", || {
            let ids = docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=quarterdeck.host={host}"),
                "--filter",
                "label=quarterdeck.version=2",
            ]);
            let ids: Vec<String> = ids.split_whitespace().map(str::to_string).collect();
            if ids.len() == 2 { Ok(ids) } else { Err(format!("{ids:?}")) }
        })
    });
    for id in &running_v2 {
        assert_eq!(inspect(id, "{{.State.Running}}"), "true");
    }
    let port = stack.port;
    let (status, _, body) =
        tokio::task::block_in_place(|| crate::stack_support::get(port, "site.test")).unwrap();
    assert_eq!((status, body.as_str()), (200, "served by the wizard's deploy"));
}
