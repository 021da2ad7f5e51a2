//! The guided deploy wizard (`d`) against the embedded sandbox's real controller: from
//! the plan preview to success; to a failed health check and a rollback to the previous
//! spec; and a plan that says why nothing fits.

use quarterdeck::actions::{Action, Effect, Panel};
use quarterdeck::app::App;
use quarterdeck::app::wizard::Step;
use quarterdeck::backend::{self, BackendHandle, Identity};
use quarterdeck::protocol::{Constraints, DeployRequest, InstanceState};

use crate::cockpit_support::{cockpit_app, screen_rows, type_text, wizard};
use crate::support::{carry_out, fast_sandbox, pump};

/// Rows of the screen: tall enough for every step of a two-instance deploy.
const ROWS: u16 = 60;

async fn cockpit() -> (quarterdeck::plane::sandbox::Sandbox, App, BackendHandle) {
    let sb = fast_sandbox(2).await;
    sb.deploy(DeployRequest {
        app: "shop-web".into(),
        version: "1.0.0".into(),
        instances: 2,
        image: Some("tomcat:8.5".into()),
        port: Some(8080),
        constraints: Some(Constraints { azs: vec![], tags: vec![], cpu: 0.25, memory_mb: 256 }),
        ..DeployRequest::default()
    })
    .await
    .unwrap();
    let mut handle = backend::spawn_cockpit(sb.bus.clone(), "cockpit/test".into(), Identity::default());
    let mut app = cockpit_app("sandbox");
    pump(&mut app, &mut handle, "two running instances", |a| {
        a.replica.fleet.instances.values().filter(|i| i.state == InstanceState::Running).count() == 2
            && a.replica.fleet.operations.values().all(|o| o.finished_at.is_some())
    })
    .await;
    (sb, app, handle)
}

/// `d` on shop-web in the Apps panel: the form, prefilled, the version focused.
fn open_on_shop_web(app: &mut App) {
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Deploy);
    assert_eq!(wizard(app).value(quarterdeck::app::wizard::Field::Image), "tomcat:8.5");
}

/// Sets the focused field, `down` fields below the version.
fn set(app: &mut App, down: usize, text: &str) {
    for _ in 0..down {
        app.update(Action::HistoryNext);
    }
    app.update(Action::ClearInput);
    type_text(app, text);
    for _ in 0..down {
        app.update(Action::HistoryPrev);
    }
}

fn send(app: &mut App, handle: &BackendHandle, action: Action) {
    let effects = app.update(action);
    assert!(matches!(effects.as_slice(), [Effect::Send(_)]), "one command sent: {effects:?}");
    for e in effects {
        carry_out(handle, e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_deploys_from_the_plan_to_success() {
    let (_sb, mut app, mut handle) = cockpit().await;
    open_on_shop_web(&mut app);
    set(&mut app, 0, "1.1.0");
    app.update(Action::Submit);
    let plan = wizard(&app).plan.clone().expect("a plan");
    assert_eq!(plan.placements.len(), 2, "{plan:?}");
    assert!(plan.no_fit.is_none());
    let shown = screen_rows(&mut app, 160, ROWS);
    assert!(shown.contains("Deploy 2/4: plan") && shown.contains("CPU LEFT"), "{shown}");
    app.update(Action::Submit);
    assert_eq!(wizard(&app).step, Step::Confirm);
    send(&mut app, &handle, Action::Input('y'));
    pump(&mut app, &mut handle, "the wizard's deploy finished", |a| {
        wizard(a).finished(&a.replica.fleet).is_some()
    })
    .await;
    assert_eq!(wizard(&app).finished(&app.replica.fleet), Some(Ok("shop-web@1.1.0 x2".into())));
    let shown = screen_rows(&mut app, 160, ROWS);
    for step in ["ALLOCATE_REPOSITORY_REQUEST", "UPLOAD", "DOWNLOAD", "HEALTH_CHECK", "INSTANCE_DEPLOYED"] {
        assert!(shown.contains(step), "{step} shown:\n{shown}");
    }
    assert!(shown.contains("✓ succeeded: shop-web@1.1.0 x2 in"), "{shown}");
    assert!(shown.contains("r rolls back to shop-web@1.0.0 x2"), "an unwanted deploy can go back:\n{shown}");
    assert!(app.replica.fleet.instances_of("shop-web").all(|i| i.version == "1.1.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_shows_the_failure_and_rolls_back() {
    let (_sb, mut app, mut handle) = cockpit().await;
    open_on_shop_web(&mut app);
    set(&mut app, 0, "2.0.0");
    // The sim's rule: an image named *crashloop* crashes right after it starts.
    set(&mut app, 2, "tomcat-crashloop:9");
    app.update(Action::Submit);
    app.update(Action::Submit);
    send(&mut app, &handle, Action::Input('y'));
    pump(&mut app, &mut handle, "the wizard's deploy failed", |a| {
        wizard(a).finished(&a.replica.fleet).is_some()
    })
    .await;
    let outcome = wizard(&app).finished(&app.replica.fleet).expect("finished");
    let reason = outcome.expect_err("the deploy fails");
    // The agent reports the crash (or the driver's error) first, whichever comes first.
    assert!(reason.contains("crashed") || reason.contains("exited right after start"), "{reason}");
    let shown = screen_rows(&mut app, 160, ROWS);
    assert!(shown.contains("✕ failed:") && shown.contains("r rolls back to shop-web@1.0.0 x2"), "{shown}");
    assert!(shown.contains("✕ HEALTH_CHECK") || shown.contains("✕ RESTART"), "{shown}");

    app.update(Action::Input('r'));
    assert_eq!(wizard(&app).step, Step::ConfirmRollback);
    let shown = screen_rows(&mut app, 160, ROWS);
    assert!(shown.contains("Roll shop-web back to shop-web@1.0.0 x2 (image tomcat:8.5)?"), "{shown}");
    send(&mut app, &handle, Action::Input('y'));
    pump(&mut app, &mut handle, "the rollback finished", |a| {
        let w = wizard(a);
        w.sent.len() == 2 && w.finished(&a.replica.fleet).is_some()
    })
    .await;
    assert_eq!(wizard(&app).finished(&app.replica.fleet), Some(Ok("shop-web@1.0.0 x2".into())));
    let spec = &app.replica.fleet.apps["shop-web"];
    assert_eq!((spec.version.as_str(), spec.image.as_str(), spec.instances), ("1.0.0", "tomcat:8.5", 2));
    let running: Vec<_> = app
        .replica
        .fleet
        .instances_of("shop-web")
        .filter(|i| i.state == InstanceState::Running && i.version == "1.0.0")
        .collect();
    assert_eq!(running.len(), 2, "{:?}", app.replica.fleet.instances);
    let shown = screen_rows(&mut app, 160, ROWS);
    assert!(shown.contains("rollback: deploy shop-web@1.0.0 x2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wizard_plan_says_why_nothing_fits_and_sends_nothing() {
    let (_sb, mut app, _handle) = cockpit().await;
    open_on_shop_web(&mut app);
    set(&mut app, 0, "1.2.0");
    set(&mut app, 7, "64");
    app.update(Action::Submit);
    let plan = wizard(&app).plan.clone().expect("a plan");
    let why = plan.no_fit.expect("nothing fits");
    assert!(why.contains("not enough CPU"), "{why}");
    assert!(
        screen_rows(&mut app, 160, ROWS).contains("✕ nothing fits: cannot place 2 instance(s) of shop-web")
    );
    assert!(app.update(Action::Submit).is_empty());
    assert_eq!(wizard(&app).step, Step::Plan);
    // Esc goes back to the form, with the values kept.
    app.update(Action::Back);
    assert_eq!(wizard(&app).step, Step::Form);
    assert_eq!(wizard(&app).value(quarterdeck::app::wizard::Field::Cpu), "64");
}
