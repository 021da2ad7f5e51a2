//! Snapshot and cell-style tests of the guided deploy wizard, drawn from the fixed-seed fixture
//! through the shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::Inbound;
use crate::plane::fixture::T0;
use crate::views::harness::{app, draw, text, type_text, wizard};

/// The wizard on shop-web (prod, the last app by name), prefilled from its spec.
fn wizard_on_shop_web() -> App {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Bottom);
    app.update(Action::Deploy);
    app
}

/// Clears the focused field and types `text` into it.
fn retype(app: &mut App, text: &str) {
    app.update(Action::ClearInput);
    type_text(app, text);
}

#[test]
fn wizard_form_shows_each_error_beside_its_field() {
    let mut app = wizard_on_shop_web();
    // The version is focused after the app was picked.
    retype(&mut app, "2.0 beta");
    for _ in 0..7 {
        app.update(Action::HistoryNext);
    }
    retype(&mut app, "0");
    let screen = text(&draw(&mut app, 120, 24));
    assert_snapshot!(screen);
    assert!(screen.contains("version   2.0 beta  ✕ version \"2.0 beta\" is not valid"), "{screen}");
    assert!(screen.contains("cpu       0█  ✕ 0 cores is out of range"), "{screen}");
    assert!(screen.contains("image     tomcat"), "prefilled from the app's spec:\n{screen}");
    // Enter does not go on: it names the first field in error.
    app.update(Action::Submit);
    assert_eq!(wizard(&app).step, crate::app::wizard::Step::Form);
    assert!(wizard(&app).error.as_deref().is_some_and(|e| e.starts_with("version:")));
}

#[test]
fn wizard_plan_preview() {
    let mut app = wizard_on_shop_web();
    retype(&mut app, "2.0.0");
    app.update(Action::Submit);
    let screen = text(&draw(&mut app, 120, 30));
    assert_snapshot!(screen);
    assert!(screen.contains("Deploy 2/4: plan"), "{screen}");
    assert!(screen.contains("✓ fits  #1 →"), "{screen}");
    let plan = wizard(&app).plan.clone().expect("a plan");
    assert_eq!(plan.placements.len(), 3);
    assert!(plan.no_fit.is_none());
}

#[test]
fn wizard_plan_says_why_nothing_fits() {
    let mut app = wizard_on_shop_web();
    retype(&mut app, "2.0.0");
    for _ in 0..5 {
        app.update(Action::HistoryNext);
    }
    retype(&mut app, "az9");
    app.update(Action::Submit);
    let screen = text(&draw(&mut app, 120, 30));
    assert_snapshot!(screen);
    assert!(screen.contains("✕ nothing fits: cannot place 3 instance(s) of shop-web"), "{screen}");
    assert!(screen.contains("no up host is in AZ az9"), "{screen}");
    // Enter cannot confirm a plan that does not fit.
    app.update(Action::Submit);
    assert_eq!(wizard(&app).step, crate::app::wizard::Step::Plan);
}

/// The wizard confirmed for shop-web@2.0.0 and accepted as `op-wiz`, with an operation
/// in the replica `state` at its end.
fn wizard_sent(state: crate::protocol::OperationState) -> App {
    use crate::protocol::{
        Accepted, Operation, OperationKind, OperationState, OperationStep, StepName, StepState,
    };
    let mut app = wizard_on_shop_web();
    retype(&mut app, "2.0.0");
    app.update(Action::Submit);
    app.update(Action::Submit);
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert_eq!(effects.len(), 1, "one deploy sent");
    let what = wizard(&app).sent[0].what.clone();
    let step = |name, inst: Option<&str>, state, start: u64, end: Option<u64>, detail: &str| OperationStep {
        name,
        instance: inst.map(str::to_string),
        state,
        started_at: T0 + start,
        finished_at: end.map(|e| T0 + e),
        detail: detail.into(),
    };
    let i0 = Some("shop-web-0-c0de");
    let i1 = Some("shop-web-1-c0de");
    let mut steps = vec![
        step(
            StepName::AllocateRepositoryRequest,
            None,
            StepState::Done,
            1_000,
            Some(1_004),
            "slot shop-web@2.0.0",
        ),
        step(StepName::Upload, None, StepState::Done, 1_004, Some(1_010), "image tomcat only: no artifact"),
        step(StepName::NewInstanceAndDeployWarRequest, i0, StepState::Done, 1_010, Some(1_050), "on host-01"),
        step(StepName::Download, i0, StepState::Done, 1_050, Some(1_900), "shop-web@2.0.0 downloaded"),
        step(StepName::Restart, i0, StepState::Done, 1_900, Some(1_950), "container started"),
        step(StepName::HealthCheck, i0, StepState::Done, 1_950, Some(3_200), "healthy"),
        step(StepName::AddRouteRequest, i0, StepState::Done, 3_200, Some(3_210), "route added"),
        step(StepName::InstanceDeployed, i0, StepState::Done, 3_210, Some(3_210), "deployed"),
        step(StepName::NewInstanceAndDeployWarRequest, i1, StepState::Done, 3_300, Some(3_340), "on host-02"),
    ];
    let (op_state, error, finished) = match state {
        OperationState::Running => {
            steps.push(step(StepName::Download, i1, StepState::Running, 3_340, None, ""));
            (state, None, None)
        }
        OperationState::Failed => {
            steps.push(step(StepName::Download, i1, StepState::Done, 3_340, Some(4_000), "downloaded"));
            steps.push(step(
                StepName::HealthCheck,
                i1,
                StepState::Failed,
                4_000,
                Some(9_000),
                "container exited right after start",
            ));
            let e = "roll stopped after 1 of 3: container exited right after start".to_string();
            (state, Some(e), Some(T0 + 9_000))
        }
        OperationState::Succeeded => (state, None, Some(T0 + 9_000)),
    };
    let op = Operation {
        id: "op-wiz".into(),
        kind: OperationKind::Deploy,
        app: "shop-web".into(),
        target: "shop-web@2.0.0 x3".into(),
        steps,
        state: op_state,
        error,
        started_at: T0 + 1_000,
        finished_at: finished,
        command_id: None,
        compacted: None,
    };
    app.replica.fleet.operations.insert(op.id.clone(), op);
    let accepted = Accepted { operation_id: Some("op-wiz".into()), rev: 1 };
    app.apply(Inbound::CommandDone { what, result: Ok(accepted) });
    app
}

#[test]
fn wizard_live_progress() {
    let mut app = wizard_sent(crate::protocol::OperationState::Running);
    app.update(Action::Tick(T0 + 4_100));
    let screen = text(&draw(&mut app, 120, 30));
    assert_snapshot!(screen);
    assert!(screen.contains("operation op-wiz"), "{screen}");
    assert!(screen.contains("✓ ALLOCATE_REPOSITORY_REQUEST"), "{screen}");
    assert!(screen.contains("instance shop-web-0-c0de"), "{screen}");
    assert!(screen.contains("… DOWNLOAD"), "{screen}");
    assert!(screen.contains("1.2s"), "the health check's timing:\n{screen}");
    // Not finished: r does not roll back yet.
    app.update(Action::Input('r'));
    assert_eq!(wizard(&app).step, crate::app::wizard::Step::Progress);
}

/// A deploy's steps that do not fit scroll: the latest are shown as they come, with a
/// line for what is above; ↑/k, ↓/j, g and G move through them.
#[test]
fn wizard_progress_scrolls_when_the_steps_do_not_fit() {
    let mut app = wizard_sent(crate::protocol::OperationState::Running);
    app.update(Action::Tick(T0 + 4_100));
    let screen = text(&draw(&mut app, 120, 14));
    assert_snapshot!(screen);
    assert!(screen.contains("… DOWNLOAD") && screen.contains("running for"), "the latest:\n{screen}");
    assert!(screen.contains("line(s) above") && !screen.contains("ALLOCATE_REPOSITORY"), "{screen}");
    assert!(screen.contains("operation op-wiz"), "the heading stays:\n{screen}");

    // ↑ moves the window one line toward the first step.
    let above = |screen: &str| -> usize {
        let at = screen.find("↑ ").map(|i| &screen[i + "↑ ".len()..]).unwrap_or("0 ");
        at.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let before = above(&screen);
    app.update(Action::HistoryPrev);
    let screen = text(&draw(&mut app, 120, 14));
    assert_eq!(above(&screen), before - 1, "{screen}");
    assert!(screen.contains("↓ 2 newer line(s)") && !screen.contains("… DOWNLOAD"), "{screen}");

    // g: the first steps; G: the latest again.
    app.update(Action::Input('g'));
    let screen = text(&draw(&mut app, 120, 14));
    assert!(
        screen.contains("✓ ALLOCATE_REPOSITORY_REQUEST") && !screen.contains("line(s) above"),
        "{screen}"
    );
    app.update(Action::Input('j'));
    app.update(Action::Input('G'));
    let screen = text(&draw(&mut app, 120, 14));
    assert!(screen.contains("… DOWNLOAD") && !screen.contains("newer line(s)"), "{screen}");
    // Where everything fits, nothing scrolls.
    let screen = text(&draw(&mut app, 120, 40));
    assert!(screen.contains("✓ ALLOCATE_REPOSITORY_REQUEST") && screen.contains("… DOWNLOAD"), "{screen}");
    assert!(!screen.contains("line(s) above"), "{screen}");
}

/// A pull in progress shows as a running step with its bytes, not cut off.
#[test]
fn wizard_shows_a_pull_in_progress_with_its_bytes() {
    let mut app = wizard_sent(crate::protocol::OperationState::Running);
    let op = app.replica.fleet.operations.get_mut("op-wiz").expect("op-wiz");
    let last = op.steps.last_mut().expect("a step");
    last.name = crate::protocol::StepName::PullImage;
    last.detail = "1048576 of 2097951 bytes, 2 layer(s) pulled of 127.0.0.1:5000/shop/web".into();
    app.update(Action::Tick(T0 + 4_100));
    let screen = text(&draw(&mut app, 120, 30));
    assert!(screen.contains("… PULL_IMAGE"), "{screen}");
    assert!(screen.contains("1048576 of 2097951 bytes"), "{screen}");
}

/// An ended operation keeps only its step counts: the wizard rebuilds its steps from the
/// step events the cockpit keeps, and says where they are once those are gone.
#[test]
fn wizard_shows_an_ended_operations_steps_from_its_events() {
    use crate::protocol::{Change, EventKind, StepCounts, StepDelta};
    let mut app = wizard_sent(crate::protocol::OperationState::Failed);
    let op = app.replica.fleet.operations["op-wiz"].clone();
    let before = text(&draw(&mut app, 120, 30));
    let mut rev = app.replica.events.back().map_or(0, |e| e.rev);
    for (index, step) in op.steps.iter().enumerate() {
        rev += 1;
        let mut e = app.replica.events.back().cloned().expect("an event");
        e.rev = rev;
        e.kind = EventKind::Download;
        e.operation_id = Some(op.id.clone());
        let index = u32::try_from(index).expect("a few steps");
        e.changes = vec![Change::OperationStep(StepDelta { op: op.id.clone(), index, step: step.clone() })];
        app.replica.events.push_back(e);
    }
    let compacted = app.replica.fleet.operations.get_mut("op-wiz").expect("op-wiz");
    compacted.compacted = Some(StepCounts::of(&compacted.steps));
    compacted.steps.clear();
    let screen = text(&draw(&mut app, 120, 30));
    for line in ["✓ ALLOCATE_REPOSITORY_REQUEST", "instance shop-web-1-c0de", "✕ HEALTH_CHECK"] {
        assert!(screen.contains(line), "{line} is rebuilt from the events:\n{screen}");
    }
    assert_eq!(
        screen.lines().filter(|l| l.contains("HEALTH_CHECK")).count(),
        before.lines().filter(|l| l.contains("HEALTH_CHECK")).count(),
        "the same steps as before the compaction:\n{screen}"
    );
    // The events holding its first steps are gone: the counts, and where the rest is.
    app.replica.events.retain(|e| e.operation_id.as_deref() != Some("op-wiz") || e.rev > rev - 3);
    let screen = text(&draw(&mut app, 120, 30));
    assert!(!screen.contains("ALLOCATE_REPOSITORY_REQUEST"), "no partial step list:\n{screen}");
    let total = op.steps.len();
    assert!(
        screen.contains(&format!("{total} steps (")) && screen.contains("in the event history"),
        "{screen}"
    );
    assert!(screen.contains("✕ failed: roll stopped after 1 of 3"), "{screen}");
}

#[test]
fn wizard_failure_offers_a_rollback() {
    let mut app = wizard_sent(crate::protocol::OperationState::Failed);
    let screen = text(&draw(&mut app, 120, 30));
    assert_snapshot!(screen);
    assert!(screen.contains("✕ failed: roll stopped after 1 of 3"), "{screen}");
    assert!(screen.contains("r rolls back to shop-web@"), "{screen}");
    app.update(Action::Input('r'));
    assert_eq!(wizard(&app).step, crate::app::wizard::Step::ConfirmRollback);
    // prod: the name is typed; `y` alone does not send.
    let screen = text(&draw(&mut app, 120, 30));
    assert!(screen.contains("Roll shop-web back to shop-web@"), "{screen}");
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    let [crate::actions::Effect::Send(crate::protocol::ControlCommand::Deploy(req))] = effects.as_slice()
    else {
        panic!("one rollback deploy: {effects:?}");
    };
    let prev = app.replica.fleet.apps["shop-web"].clone();
    assert_eq!((req.version.as_str(), req.instances), (prev.version.as_str(), prev.instances));
    assert_eq!(req.image.as_deref(), Some(prev.image.as_str()));
}

#[test]
fn wizard_uploading_the_artifact_then_sending() {
    let scratch = crate::app::scratch::ScratchArtifact::new("view-upload", "shop-web-2.0.0.tar.gz", 2048);
    let (dir, file) = (&scratch.dir, scratch.file.clone());
    let mut app = wizard_on_shop_web();
    retype(&mut app, "2.0.0");
    app.update(Action::HistoryNext);
    retype(&mut app, &file.display().to_string());
    app.update(Action::Submit);
    app.update(Action::Submit);
    type_text(&mut app, "shop-web");
    let effects = app.update(Action::Submit);
    assert!(matches!(effects.as_slice(), [crate::actions::Effect::Upload(_)]), "{effects:?}");
    app.update(Action::Tick(app.now + 1_200));
    // The path is a temporary directory's: show it as a fixed one in the snapshot.
    let screen = text(&draw(&mut app, 120, 16)).replace(&dir.display().to_string(), "/builds");
    assert_snapshot!(screen);
    assert!(screen.contains("sent once the artifact is uploaded"), "{screen}");
    assert!(screen.contains("… UPLOAD") && screen.contains("(2.0 KB)"), "{screen}");

    let artifact =
        crate::protocol::ArtifactRef { name: "shop-web-2.0.0".into(), sha256: "c".repeat(64), size: 2048 };
    let done = crate::backend::upload::Uploaded { artifact, already_there: false };
    let effects = app.apply(Inbound::Uploaded { path: file, result: Ok(done) });
    assert!(
        matches!(effects.as_slice(), [crate::actions::Effect::Send(_)]),
        "the deploy follows: {effects:?}"
    );
    let screen = text(&draw(&mut app, 120, 16));
    assert!(screen.contains("✓ UPLOAD") && screen.contains("uploaded: shop-web-2.0.0"), "{screen}");
}

/// At 80 columns nothing the wizard says is cut silently: a form's error wraps under its
/// field, whole; the plan's placements and a step's detail too long for a line end in `…`.
#[test]
fn wizard_at_80_columns_wraps_errors_and_cuts_with_an_ellipsis() {
    let mut app = wizard_on_shop_web();
    retype(&mut app, "2.0 beta");
    let screen = text(&draw(&mut app, 80, 30));
    let rows: Vec<&str> = screen.lines().collect();
    let at =
        rows.iter().position(|l| l.contains("✕ version \"2.0 beta\"")).unwrap_or_else(|| panic!("{screen}"));
    assert!(rows[at + 1].contains("'+' or '-'"), "the error's end, on the next line:\n{screen}");

    retype(&mut app, "2.0.0");
    for _ in 0..4 {
        app.update(Action::HistoryNext);
    }
    retype(&mut app, "8");
    app.update(Action::Submit);
    let screen = text(&draw(&mut app, 80, 30));
    let fits = screen.lines().find(|l| l.contains("✓ fits")).unwrap_or_else(|| panic!("{screen}"));
    assert!(fits.contains("#1 →") && fits.trim_end_matches(['│', ' ']).ends_with('…'), "{fits}");

    let mut app = wizard_sent(crate::protocol::OperationState::Failed);
    let screen = text(&draw(&mut app, 80, 40));
    let failed = screen.lines().find(|l| l.contains("✕ HEALTH_CHECK")).unwrap_or_else(|| panic!("{screen}"));
    assert!(
        failed.contains("container exited") && failed.trim_end_matches(['│', ' ']).ends_with('…'),
        "{failed}"
    );
}
