//! Issue 5 on real services: a deploy driven through the cockpit's wizard actions, over a
//! real nats-server, produces running containers on a real dockerd. The new version's
//! artifact is a file the wizard uploads to the JetStream Object Store itself.

use std::sync::Arc;
use std::time::Duration;

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::App;
use quarterdeck::app::wizard::{Field, Step};
use quarterdeck::backend::upload::RepoSource;
use quarterdeck::backend::{self, Identity};
use quarterdeck::bus::Bus;

use crate::cockpit_support::{cockpit_app, type_text, wizard};
use crate::docker_support::inspect;
use crate::nats_support::{Mode, assert_audited_as_harness_user, connect, eventually};
use crate::stack_support::Stack;
use crate::support::{carry_out, pump};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_deploy_on_nats_and_docker_runs_containers() {
    wizard_deploy_runs_containers(Mode::Open, "wizard_deploy_on_nats_and_docker_runs_containers").await;
}

/// The same with roles on: the cockpit is the operator alice, uploading and deploying on a
/// bus where every process is its own user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_deploy_on_nats_and_docker_runs_containers_with_roles() {
    wizard_deploy_runs_containers(Mode::Roles, "wizard_deploy_on_nats_and_docker_runs_containers_with_roles")
        .await;
}

async fn wizard_deploy_runs_containers(mode: Mode, name: &str) {
    let Some(stack) = tokio::task::block_in_place(|| Stack::start_two_hosts(name, mode)) else { return };
    // Version 1 from ctl, with its artifact; the wizard then rolls out version 2 with a new
    // artifact file of its own.
    let out = tokio::task::block_in_place(|| stack.deploy("1", "2", "served by version 1", &[]));
    assert!(out.ok(), "{out}");
    let v2 = stack.artifact("site-2-from-the-wizard", "served by the wizard's upload");

    let nats = connect(&stack.url(), "cockpit/wizard-test").await;
    let identity =
        Identity { repository: Some(RepoSource::ObjectStore(Box::new(nats.clone()))), ..Identity::default() };
    let bus: Arc<dyn Bus> = Arc::new(nats);
    let mut handle = backend::spawn_cockpit(bus, "cockpit/wizard-test".into(), identity);
    let mut app = cockpit_app("nats");
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
    let type_into = |app: &mut App, field: Field, text: &str| {
        while wizard(app).focused() != field {
            app.update(Action::HistoryNext);
        }
        app.update(Action::ClearInput);
        type_text(app, text);
    };
    type_into(&mut app, Field::Version, "2");
    type_into(&mut app, Field::Artifact, v2.to_str().unwrap());
    assert_eq!(wizard(&app).check(Field::Artifact), None);
    app.update(Action::Submit);
    let plan = wizard(&app).plan.clone().expect("a plan");
    assert!(plan.no_fit.is_none(), "{plan:?}");
    assert_eq!(plan.placements.len(), 2);
    app.update(Action::Submit);
    assert_eq!(wizard(&app).step, Step::Confirm);
    // The upload goes first; the deploy is sent when it is done (the pump carries it out).
    let effects = app.update(Action::Input('y'));
    assert!(matches!(effects.as_slice(), [Effect::Upload(_)]), "{effects:?}");
    for e in effects {
        carry_out(&handle, e);
    }
    pump(&mut app, &mut handle, "the wizard's deploy finished", |a| {
        wizard(a).finished(&a.replica.fleet).is_some()
    })
    .await;
    assert_eq!(wizard(&app).finished(&app.replica.fleet), Some(Ok("site@2 x2".into())));
    let upload = wizard(&app).sent.last().and_then(|s| s.upload.clone()).expect("an upload");
    let uploaded = upload.result.expect("ended").expect("uploaded");
    assert_eq!(uploaded.artifact.name, "site@2", "the slot ALLOCATE_REPOSITORY_REQUEST named");
    assert_eq!(app.replica.fleet.apps["site"].run.artifact.as_ref(), Some(&uploaded.artifact));
    // The cockpit's deploy is on record under the user it acts as: alice, with roles on.
    tokio::task::block_in_place(|| {
        assert_audited_as_harness_user(&stack.url(), mode, "deploy", |r| r["version"] == "2")
    });

    // Two containers of version 2 run on the docker hosts, and they serve the artifact.
    let running_v2 = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(20), "two version-2 containers", || {
            let ids = stack.containers(&["label=quarterdeck.version=2"]);
            if ids.len() == 2 { Ok(ids) } else { Err(format!("{ids:?}")) }
        })
    });
    for id in &running_v2 {
        assert_eq!(inspect(id, "{{.State.Running}}"), "true");
    }
    let port = stack.port;
    let (status, _, body) =
        tokio::task::block_in_place(|| crate::stack_support::get(port, "site.test")).unwrap();
    assert_eq!((status, body.as_str()), (200, "served by the wizard's upload"));
    stack.nats.assert_no_violations();
}
