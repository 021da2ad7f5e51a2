//! Snapshot and cell-style tests of the hosts panel, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;

use crate::actions::Action;
use crate::plane::fixture::T0;
use crate::views::harness::{app, draw, text};

#[test]
fn hosts_panel() {
    let mut app = app();
    assert_snapshot!(text(&draw(&mut app, 120, 16)));
}

/// Pulls in progress show on their host's row with the bytes fetched so far; the
/// controller's own PULL_IMAGE (no instance) and ended pulls do not.
#[test]
fn hosts_panel_shows_the_pulls_in_progress() {
    use crate::protocol::{Operation, OperationKind, OperationState, OperationStep, StepName, StepState};
    let mut app = app();
    let on_host = |host: &str| {
        let mut ids: Vec<String> = app.replica.fleet.instances_on(host).map(|i| i.id.clone()).collect();
        ids.sort();
        ids
    };
    let (one, six) = (on_host("host-01"), on_host("host-06"));
    let step = |instance: Option<&str>, state: StepState, detail: &str| OperationStep {
        name: StepName::PullImage,
        instance: instance.map(str::to_string),
        state,
        started_at: T0,
        finished_at: None,
        detail: detail.into(),
    };
    let op = Operation {
        id: "op-pull".into(),
        kind: OperationKind::Deploy,
        app: "shop-web".into(),
        target: "shop-web@2 x3".into(),
        steps: vec![
            step(None, StepState::Done, "registry.lab:5000/shop/web:2 is sha256:ab12"),
            step(Some(&one[0]), StepState::Running, "12897484 of 41943040 bytes, 3 layer(s) pulled of web"),
            step(Some(&six[0]), StepState::Running, "1048576 of 2097152 bytes, 1 layer(s) pulled of web"),
            step(Some(&six[1]), StepState::Running, "2097152 of 4194304 bytes, 1 layer(s) pulled of web"),
            step(Some(&one[0]), StepState::Done, "41943040 of 41943040 bytes, 3 layer(s) in 4.1s"),
        ],
        state: OperationState::Running,
        error: None,
        started_at: T0,
        finished_at: None,
        command_id: None,
        compacted: None,
    };
    app.replica.fleet.operations.insert(op.id.clone(), op);
    let screen = text(&draw(&mut app, 120, 16));
    assert_snapshot!(screen);
    let row = |host: &str| screen.lines().find(|l| l.contains(host)).expect("the host's row").to_string();
    assert!(row("host-01").contains("⇣ 12.3 MB"), "{}", row("host-01"));
    assert!(row("host-06").contains("⇣2 3.0 MB"), "{}", row("host-06"));
    assert!(!row("host-02").contains('⇣'), "{}", row("host-02"));
}

#[test]
fn unmanaged_containers_and_host_warnings_are_flagged() {
    let mut app = app();
    if let Some(h) = app.replica.fleet.hosts.get_mut("host-01") {
        h.info.warnings = vec!["storage driver devicemapper on loop devices: use direct-lvm".into()];
        h.unmanaged = vec![crate::protocol::ContainerReport {
            container_id: "f00dcafe00112233".into(),
            name: "hand-made".into(),
            image: "busybox".into(),
            state: "running".into(),
            cpu_pct: 3.0,
            mem_used_mb: 12,
            mem_limit_mb: 0,
        }];
    }
    let screen = text(&draw(&mut app, 120, 16));
    assert!(screen.contains("1+1⚠"), "{screen}");
    assert!(screen.contains("⚠ web"), "{screen}");
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 30));
    assert_snapshot!(screen);
    assert!(
        screen.contains("unmanaged containers (never touched)") && screen.contains("hand-made"),
        "{screen}"
    );
    assert!(screen.contains("devicemapper on loop devices"), "{screen}");
}

/// A cordoned host and a draining one say so in STATE, with a symbol and the word, at
/// both sizes the panels are drawn at.
#[test]
fn cordoned_and_draining_hosts_show_in_the_state_column() {
    use crate::protocol::HostSchedule;
    let mut app = app();
    app.replica.fleet.hosts.get_mut("host-02").expect("host-02").schedule = HostSchedule::Cordoned;
    app.replica.fleet.hosts.get_mut("host-03").expect("host-03").schedule =
        HostSchedule::Draining { done: 3, total: 7 };
    let wide = text(&draw(&mut app, 120, 40));
    assert_snapshot!("hosts_schedule_120x40", wide);
    let narrow = text(&draw(&mut app, 80, 24));
    assert_snapshot!("hosts_schedule_80x24", narrow);
    for screen in [&wide, &narrow] {
        let row = |host: &str| screen.lines().find(|l| l.contains(host)).expect("the host's row").to_string();
        assert!(row("host-02").contains("⊘ cordoned"), "{}", row("host-02"));
        assert!(row("host-03").contains("⇄ draining 3/7"), "{}", row("host-03"));
        assert!(row("host-01").contains("● up"), "{}", row("host-01"));
    }
    // The detail pane says it too, and how to undo it.
    app.update(Action::Down);
    app.update(Action::Detail);
    let detail = text(&draw(&mut app, 120, 40));
    assert!(
        detail.contains("schedule") && detail.contains("⊘ cordoned (no new instance; c uncordons)"),
        "{detail}"
    );
}
