//! Snapshot tests for every panel and dialog, from the fixed-seed fixture, plus cell-style
//! checks that the theme's meaning reaches the screen (oxker's and gitui's pattern).

use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::Inbound;
use crate::plane::fixture::{T0, fixture};
use crate::theme::{ColorMode, Theme};

fn app() -> App {
    crate::app::fixture_app(0)
}

fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    crate::tui::render(&mut terminal, app).expect("draw");
    terminal.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The first cell whose row contains `needle`, at the column where `needle` starts.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(byte) = line.find(needle) {
            let col = line[..byte].chars().count() as u16;
            return Some((col, y));
        }
    }
    None
}

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
fn instances_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Down);
    assert_snapshot!(text(&draw(&mut app, 120, 16)));
}

#[test]
fn routes_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    assert_snapshot!(text(&draw(&mut app, 120, 16)));
}

#[test]
fn events_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Events));
    assert_snapshot!(text(&draw(&mut app, 120, 20)));
}

#[test]
fn help_overlay() {
    let mut app = app();
    app.update(Action::Help);
    assert_snapshot!(text(&draw(&mut app, 120, 24)));
}

/// At 80x24 a description longer than its column wraps under itself: every word of
/// every description is on screen.
#[test]
fn help_lines_wrap_at_80x24() {
    let mut app = app();
    app.update(Action::Help);
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    for b in crate::actions::keymap::BINDABLE {
        for word in b.describe().split(' ') {
            assert!(screen.contains(word), "{:?}: {word:?} is cut: {screen}", b.describe());
        }
    }
    assert!(!screen.contains('…'), "{screen}");
}

#[test]
fn confirm_dialog() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    assert_snapshot!(text(&draw(&mut app, 100, 16)));
}

/// A restart confirmed while the bus is down: refused, the dialog still open.
fn confirmed_while_not_live() -> App {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    let down = crate::bus::Connection::Disconnected { since: app.now, reason: "disconnected".into() };
    app.apply(crate::backend::Inbound::Connection(down));
    app.update(Action::Confirmed);
    app
}

#[test]
fn confirm_dialog_not_live() {
    let mut app = confirmed_while_not_live();
    let screen = text(&draw(&mut app, 100, 18));
    assert!(screen.contains("⚠ not live: this will not be sent"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn a_confirm_dialog_error_that_wraps_is_shown_whole() {
    let mut app = confirmed_while_not_live();
    // 60 columns: the refusal takes two rows, and the dialog grows to hold both.
    let screen = text(&draw(&mut app, 60, 24));
    assert!(screen.contains("not sent: reconnecting"), "{screen}");
    assert!(screen.contains("║ Esc "), "the end of the refusal is cut off:\n{screen}");
}

#[test]
fn detail_pane() {
    let mut app = app();
    app.update(Action::Detail);
    assert_snapshot!(text(&draw(&mut app, 100, 30)));
}

#[test]
fn narrow_terminal_keeps_the_essentials() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 80, 24);
    let screen = text(&buf);
    assert_snapshot!(screen);
    for must in ["APP", "HOST", "STATE", "CPU", "MEM", "● running", "q quit", "? help"] {
        assert!(screen.contains(must), "{must:?} missing at 80x24:\n{screen}");
    }
}

/// An event with these changes and this kind and message, next in revision order.
fn event_with(
    app: &App,
    kind: crate::protocol::EventKind,
    message: &str,
    changes: Vec<crate::protocol::Change>,
) -> crate::protocol::Event {
    crate::protocol::Event {
        rev: app.replica.fleet.revision + 1,
        ts: app.now,
        kind,
        app: Some("shop-web".into()),
        host: None,
        instance: None,
        operation_id: None,
        message: message.into(),
        changes,
        audit: None,
    }
}

/// At 80x24 the columns that carry state (ROUTE's flags, RST) stay and decoration
/// (ENDPOINT, ID) goes first; a 3-digit instance index shows whole.
#[test]
fn at_80x24_state_outranks_decoration_and_indexes_show_whole() {
    use crate::protocol::{Change, EventKind, RouteState};
    let mut app = app();
    let mut i =
        app.replica.fleet.instances.values().find(|i| i.app == "shop-web").cloned().expect("an instance");
    let route = app
        .replica
        .fleet
        .routes
        .values()
        .find(|r| r.app == i.app && r.backend == i.endpoint)
        .cloned()
        .expect("its route");
    (i.index, i.restarts) = (123, 12);
    let changes = vec![
        Change::Instance(i.clone()),
        Change::Route(crate::protocol::Route { state: RouteState::Disabled, ..route }),
    ];
    let e = event_with(&app, EventKind::RouteDisabled, "route disabled", changes);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Instances));
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    let header = screen.lines().find(|l| l.contains("APP")).expect("the header");
    for kept in ["#", "STATE", "RST", "ROUTE"] {
        assert!(header.contains(kept), "{kept} dropped at 80x24: {header}");
    }
    for dropped in ["ENDPOINT", " ID"] {
        assert!(!header.contains(dropped), "{dropped} kept over state at 80x24: {header}");
    }
    let row = screen.lines().find(|l| l.contains(" 123 ")).expect("index 123 whole");
    assert!(row.contains("○ off") && row.contains(" 12 "), "{row}");
}

/// The Events panel's KIND column fits `NEW_INSTANCE_AND_DEPLOY…` (more when there is
/// room), and a message too long for the screen ends in `…`.
#[test]
fn events_cut_long_kinds_and_messages_with_an_ellipsis() {
    use crate::protocol::EventKind;
    let mut app = app();
    let long = "shop-web-2-af11 on host-04: pulling registry.lab:5000/shop/web:2, 3 layers of 40 MB, then the health check";
    let e = event_with(&app, EventKind::NewInstanceAndDeployWarRequest, long, vec![]);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Events));
    let screen = text(&draw(&mut app, 80, 24));
    assert_snapshot!(screen);
    let row = screen.lines().find(|l| l.contains("NEW_INSTANCE")).expect("the event's row");
    // Cut with `…`, whole up to `NEW_INSTANCE_AND_DEPLOY` at least, and the app still shown.
    assert!(row.contains("NEW_INSTANCE_AND_DEPLOY") && row.contains("… shop-web"), "{row}");
    assert!(row.trim_end_matches('│').trim_end().ends_with('…'), "{row}");
}

#[test]
fn states_are_coloured_and_named() {
    let mut app = app();
    let t = app.theme.clone();
    // Select the last row, so the first row shows the plain state colours.
    app.update(Action::Bottom);
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "● up").expect("an up host");
    assert_eq!(buf[(x + 2, y)].fg, t.ok.fg.unwrap_or(Color::Reset));
    // The header badge says "live" in the ok colour.
    let (x, y) = find(&buf, "● live").expect("live badge");
    assert_eq!(buf[(x, y)].fg, t.ok.fg.unwrap_or(Color::Reset));
    // The selected row carries the selection style.
    let (x, y) = find(&buf, "▶   host-06").expect("selected row");
    assert_eq!(buf[(x + 2, y)].bg, t.selection.bg.unwrap_or(Color::Reset));
}

/// A replica following a flood says how far behind it is, in the warning colour, and says
/// nothing once it has caught up.
#[test]
fn header_says_how_far_behind_a_late_replica_is() {
    let mut app = app();
    let t = app.theme.clone();
    app.apply(Inbound::Pending(12_345));
    let buf = draw(&mut app, 140, 6);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let (x, y) = find(&buf, "behind 12,345 events").expect("the lag in the header");
    assert_eq!(y, 0, "in the header:\n{screen}");
    assert_eq!(buf[(x, y)].fg, t.warn.fg.unwrap_or(Color::Reset));
    // A narrow terminal keeps it, short.
    let narrow = text(&draw(&mut app, 80, 6));
    assert!(narrow.lines().next().is_some_and(|l| l.contains("-12,345")), "{narrow}");
    // Caught up: nothing.
    app.apply(Inbound::Pending(0));
    let screen = text(&draw(&mut app, 140, 6));
    assert!(!screen.contains("behind"), "{screen}");
    // Not live (a fresh snapshot is on its way): the badge says so, not the lag.
    app.apply(Inbound::Pending(7));
    app.replica.mark_resyncing();
    let screen = text(&draw(&mut app, 140, 6));
    assert!(screen.contains("resyncing") && !screen.contains("behind"), "{screen}");
}

#[test]
fn no_color_uses_words_and_reverse_video() {
    let mut app = app();
    app.theme = Theme::default_for(ColorMode::None);
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "● up").expect("an up host");
    assert_eq!(buf[(x + 2, y)].fg, Color::Reset);
    let (x, y) = find(&buf, "▶   host-01").expect("selected row");
    assert!(buf[(x + 2, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
}

#[test]
fn a_crashed_instance_and_a_lost_host_say_so() {
    let mut app = app();
    // Not the first instance: that row is selected and drawn in the selection style.
    let id = app.replica.fleet.instances.keys().nth(1).cloned().expect("an instance");
    if let Some(i) = app.replica.fleet.instances.get_mut(&id) {
        i.state = crate::protocol::InstanceState::Crashed;
    }
    if let Some(h) = app.replica.fleet.hosts.get_mut("host-02") {
        h.state = crate::protocol::HostState::Lost;
    }
    let t = app.theme.clone();
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "✕ lost").expect("lost host shown by word");
    assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset));
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 120, 16);
    let (x, y) = find(&buf, "✕ crashed").expect("crashed instance shown by word");
    assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset));
    assert!(text(&buf).contains("instances 6/7 running"));
}

#[test]
fn a_crash_shows_its_reason_in_the_panel_and_the_detail() {
    use crate::protocol::{ExitInfo, InstanceState};
    let mut app = app();
    let ids: Vec<String> = app.replica.fleet.instances.keys().take(4).cloned().collect();
    let exits = [ExitInfo::new(3, false, T0), ExitInfo::new(137, true, T0), ExitInfo::new(137, false, T0)];
    for (id, exit) in ids.iter().skip(1).zip(exits) {
        if let Some(i) = app.replica.fleet.instances.get_mut(id) {
            i.state = InstanceState::Crashed;
            i.last_exit = Some(exit);
        }
    }
    let t = app.theme.clone();
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 120, 16);
    for cell in ["✕ exit 3", "✕ OOM", "✕ SIGKILL"] {
        let (x, y) = find(&buf, cell).unwrap_or_else(|| panic!("{cell} missing:\n{}", text(&buf)));
        assert_eq!(buf[(x, y)].fg, t.bad.fg.unwrap_or(Color::Reset), "{cell} in the bad colour");
    }
    // The filter finds crashes by their reason.
    app.update(Action::Filter);
    type_text(&mut app, "OOM");
    app.update(Action::Submit);
    let shown = text(&draw(&mut app, 120, 16));
    assert!(shown.contains("✕ OOM") && !shown.contains("✕ exit 3"), "{shown}");
    // The detail of the instance that exited 3 says so, with when.
    let mut app = self::app();
    if let Some(i) = app.replica.fleet.instances.get_mut(&ids[0]) {
        i.state = InstanceState::Crashed;
        i.last_exit = Some(ExitInfo::new(3, false, T0));
    }
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Detail);
    let shown = text(&draw(&mut app, 120, 40));
    let line = shown.lines().find(|l| l.contains("last exit")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains("exit 3 at "), "{line}");
}

#[test]
fn only_visible_rows_are_drawn_and_the_selection_stays_on_screen() {
    let mut app = app();
    let (fleet, _) = fixture(42, 6, 400);
    app.apply(Inbound::Snapshot(fleet));
    app.update(Action::ShowPanel(Panel::Instances));
    let _ = draw(&mut app, 100, 20);
    for _ in 0..50 {
        app.update(Action::Down);
    }
    let buf = draw(&mut app, 100, 20);
    let screen = text(&buf);
    assert!(screen.contains("[51/407]"), "{screen}");
    assert!(screen.contains("▶"), "selection visible:\n{screen}");
    app.update(Action::Bottom);
    let screen = text(&draw(&mut app, 100, 20));
    assert!(screen.contains("[407/407]") && screen.contains("▶"), "{screen}");
}

#[test]
fn an_event_detail_shows_its_operation_step_by_step() {
    use crate::protocol::{Operation, OperationKind, OperationState, OperationStep, StepName, StepState};
    let mut app = app();
    let step = |name, state, at: u64| OperationStep {
        name,
        instance: Some("shop-web-0-ab12".into()),
        state,
        started_at: T0 + at,
        finished_at: (state != StepState::Running).then_some(T0 + at + 1500),
        detail: String::new(),
    };
    let op = Operation {
        id: "op-0000000001".into(),
        kind: OperationKind::Deploy,
        app: "shop-web".into(),
        target: "shop-web@1.1.0 x1".into(),
        steps: vec![
            step(StepName::NewInstanceAndDeployWarRequest, StepState::Done, 0),
            step(StepName::Download, StepState::Done, 1500),
            step(StepName::HealthCheck, StepState::Failed, 3000),
        ],
        state: OperationState::Failed,
        error: Some("shop-web-0-ab12 failed: it is unhealthy".into()),
        started_at: T0,
        finished_at: Some(T0 + 4500),
        command_id: None,
        compacted: None,
    };
    app.replica.fleet.operations.insert(op.id.clone(), op.clone());
    let mut ev = app.replica.events.back().cloned().expect("an event");
    ev.rev += 1;
    ev.operation_id = Some(op.id.clone());
    ev.kind = crate::protocol::EventKind::OperationFailed;
    ev.message = "shop-web-0-ab12 failed: it is unhealthy".into();
    app.replica.events.push_back(ev);
    app.update(Action::ShowPanel(Panel::Events));
    app.update(Action::Detail);
    let buf = draw(&mut app, 120, 30);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("✕ HEALTH_CHECK"), "{screen}");
    assert!(screen.contains("✓ DOWNLOAD"), "{screen}");
    let (x, y) = find(&buf, "✕ HEALTH_CHECK").expect("failed step");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));

    // Compacted, as an end leaves it, with no step event kept: the counts, and where the
    // detail is, never an empty list that looks like an operation without steps.
    let kept = app.replica.fleet.operations.get_mut(&op.id).expect("the operation");
    kept.compacted = Some(crate::protocol::StepCounts::of(&kept.steps));
    kept.steps.clear();
    let screen = text(&draw(&mut app, 120, 30));
    assert!(!screen.contains("HEALTH_CHECK"), "{screen}");
    assert!(screen.contains("3 steps (2 done, 1 failed)"), "{screen}");
    assert!(screen.contains("failed: shop-web-0-ab12 failed"), "{screen}");
}

#[test]
fn unmanaged_containers_and_host_warnings_are_flagged() {
    let mut app = app();
    if let Some(h) = app.replica.fleet.hosts.get_mut("host-01") {
        h.warnings = vec!["storage driver devicemapper on loop devices: use direct-lvm".into()];
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

#[test]
fn routes_panel_shows_the_router_and_stale_backends() {
    let mut app = app();
    let key = app.replica.fleet.routes.keys().nth(1).cloned().expect("a route");
    if let Some(r) = app.replica.fleet.routes.get_mut(&key) {
        r.stale = true;
    }
    let status = crate::protocol::RouterStatus {
        id: "router-1".into(),
        generation: 12,
        last_reload: Some(T0 + 57_000),
        last_error: None,
        backends: 6,
        listen: "127.0.0.1:8080".into(),
        revision: 23,
    };
    app.apply(Inbound::Router(Box::new(status.clone())));
    app.update(Action::ShowPanel(Panel::Routes));
    let screen = text(&draw(&mut app, 120, 16));
    assert_snapshot!(screen);
    assert!(
        screen.contains("● router router-1 up · 127.0.0.1:8080 · gen 12 · 6 backends · reloaded <1m ago"),
        "{screen}"
    );
    assert!(screen.contains("◐ stale"), "{screen}");
    // A router that stops reporting is called silent, not up.
    app.now += 60_000;
    let screen = text(&draw(&mut app, 120, 16));
    assert!(screen.contains("✕ router router-1 silent for 1m"), "{screen}");
    app.routers.clear();
    let screen = text(&draw(&mut app, 120, 16));
    assert!(screen.contains("no router has reported"), "{screen}");
}

// ---------------------------------------------------------------------------------------
// Operator workflows (#5): palette, filter, sort, apps, audit, prod confirmation, forms
// ---------------------------------------------------------------------------------------

/// An `AUDIT` event as the controller records it, one revision above the replica.
pub(crate) fn audit_event(
    app: &App,
    what: serde_json::Value,
    verb: &str,
    ok: bool,
) -> crate::protocol::Event {
    use crate::protocol::{AuditOutcome, AuditRecord, Event, EventKind, Operator, WireError};
    let rev = app.replica.fleet.revision + 1;
    let outcome = if ok {
        AuditOutcome {
            accepted: true,
            operation_id: Some(format!("op-{rev:010}")),
            detail: None,
            error: None,
        }
    } else {
        AuditOutcome {
            accepted: false,
            operation_id: None,
            detail: None,
            error: Some(WireError::not_found("no instance \"shop-web-9-0000\"")),
        }
    };
    let record = AuditRecord {
        verb: verb.into(),
        by: Some("alice".into()),
        command_id: format!("cmd-{rev:04}"),
        source: "cockpit/alice@bastion-1".into(),
        operator: Some(Operator {
            user: "alice@bastion-1".into(),
            ssh_client: Some("10.0.0.5:52344".into()),
            nats_user: Some("ops".into()),
        }),
        request: what,
        outcome,
        repeated: None,
    };
    Event {
        rev,
        ts: T0 + 50_000 + rev * 1000,
        kind: EventKind::Audit,
        app: Some("shop-web".into()),
        host: None,
        instance: None,
        operation_id: None,
        message: format!("{}: {} -> {}", record.who(), record.what(), record.result()),
        changes: vec![],
        audit: Some(Box::new(record)),
    }
}

/// An operation event for `op`, one revision above the replica's: opened (`error` none,
/// running, the whole operation) or closed (failed with `error`, the end alone).
pub(crate) fn operation_event(app: &App, op: &str, error: Option<&str>) -> crate::protocol::Event {
    use crate::protocol::{
        Change, Event, EventKind, Operation, OperationEnded, OperationKind, OperationState, StepCounts,
    };
    let rev = app.replica.fleet.revision + 1;
    let (kind, state) = match error {
        None => (EventKind::OperationStarted, OperationState::Running),
        Some(_) => (EventKind::OperationFailed, OperationState::Failed),
    };
    let operation = Operation {
        id: op.into(),
        kind: OperationKind::Restart,
        app: "shop-web".into(),
        target: "app shop-web".into(),
        steps: vec![],
        state,
        error: error.map(str::to_string),
        started_at: T0,
        finished_at: error.map(|_| T0 + 1),
        command_id: None,
        compacted: None,
    };
    Event {
        rev,
        ts: T0 + 50_000 + rev * 1000,
        kind,
        app: Some("shop-web".into()),
        host: None,
        instance: None,
        operation_id: Some(op.into()),
        message: error.unwrap_or("restart app shop-web").into(),
        changes: vec![match error {
            None => Change::Operation(operation),
            Some(e) => Change::OperationEnded(OperationEnded {
                id: op.into(),
                state,
                error: Some(e.into()),
                finished_at: T0 + 1,
                steps: StepCounts::default(),
            }),
        }],
        audit: None,
    }
}

fn feed(app: &mut App, e: crate::protocol::Event) {
    app.apply(Inbound::Event(e));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Action::Input(c));
    }
}

#[test]
fn apps_panel() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    let screen = text(&draw(&mut app, 120, 12));
    assert_snapshot!(screen);
    assert!(screen.contains("3/3") && screen.contains("prod") && screen.contains("● ok"), "{screen}");
}

/// An app the controller cannot place says why in its row and in its detail.
#[test]
fn apps_panel_says_why_an_app_is_short() {
    use crate::protocol::{Change, Event, EventKind};
    let mut app = app();
    let mut short = app.replica.fleet.apps.get("shop-web").cloned().expect("shop-web");
    short.instances += 2;
    short.shortfall = Some("waiting for capacity: no up host is in AZ az1".into());
    let rev = app.replica.fleet.revision + 1;
    feed(
        &mut app,
        Event {
            rev,
            ts: T0 + 50_000,
            kind: EventKind::AppUpdated,
            app: Some("shop-web".into()),
            host: None,
            instance: None,
            operation_id: None,
            message: "shop-web is short of instances".into(),
            changes: vec![Change::App(short)],
            audit: None,
        },
    );
    app.update(Action::ShowPanel(Panel::Apps));
    let screen = text(&draw(&mut app, 120, 12));
    let row = screen.lines().find(|l| l.contains("shop-web")).unwrap_or_default().to_string();
    assert!(row.contains("⚠ waiting"), "{screen}");
    let idx =
        app.rows(Panel::Apps).iter().position(|k| *k == crate::app::rows::RowKey::Id("shop-web".into()));
    app.update(Action::Top);
    for _ in 0..idx.expect("its row") {
        app.update(Action::Down);
    }
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 40));
    assert!(screen.contains("⚠ waiting for capacity: no up host is in AZ az1"), "{screen}");
}

#[test]
fn audit_panel() {
    let mut app = app();
    let e = audit_event(&app, serde_json::json!({"app": "shop-web", "batch": 2}), "restart", true);
    feed(&mut app, e);
    let e = audit_event(&app, serde_json::json!({"instance": "shop-web-9-0000"}), "restart", false);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Audit));
    // The restart's operation is not in the replica: its end is unknown, not "accepted".
    let op = "op-0000000024";
    let screen = text(&draw(&mut app, 200, 10));
    assert!(screen.contains(&format!("? outcome unknown ({op})")), "{screen}");
    let e = operation_event(&app, op, None);
    feed(&mut app, e);
    assert!(text(&draw(&mut app, 200, 10)).contains(&format!("… running ({op})")));
    let e = operation_event(&app, op, Some("shop-web-1-ab12 did not become healthy"));
    feed(&mut app, e);
    let buf = draw(&mut app, 200, 10);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("alice cockpit · alice@bastion-1 · ssh 10.0.0.5:52344"), "{screen}");
    assert!(screen.contains("✕ refused: no instance"), "{screen}");
    let (x, y) = find(&buf, "✕ failed: shop-web-1-ab12").expect("the failed restart");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    app.update(Action::Down);
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 24));
    assert!(screen.contains("ssh client") && screen.contains("10.0.0.5:52344"), "{screen}");
    assert!(screen.contains(&format!("✕ failed: shop-web-1-ab12 did not become healthy ({op})")), "{screen}");
}

#[test]
fn palette_with_completions() {
    let mut app = app();
    app.update(Action::Palette);
    type_text(&mut app, "restart app ");
    app.update(Action::Complete);
    let screen = text(&draw(&mut app, 100, 16));
    assert_snapshot!(screen);
    assert!(screen.contains(":restart app api-gateway"), "Tab put the first of several in place:\n{screen}");
    assert!(screen.contains("session-cache  shop-web"), "{screen}");
}

#[test]
fn palette_names_what_is_wrong() {
    let mut app = app();
    app.update(Action::Palette);
    type_text(&mut app, "route disable shop-web 10.1.1");
    app.update(Action::Submit);
    let screen = text(&draw(&mut app, 100, 16));
    assert!(screen.contains("✕ backend \"10.1.1\" is not valid: expected IPv4:PORT"), "{screen}");
}

#[test]
fn filtered_panel_title() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Filter);
    type_text(&mut app, "shop");
    app.update(Action::Submit);
    app.update(Action::SortBy('A'));
    app.update(Action::SortBy('A'));
    let screen = text(&draw(&mut app, 120, 12));
    assert_snapshot!(screen);
    assert!(screen.contains("filter /shop/ (3 of 7) sort APP ↓"), "{screen}");
}

#[test]
fn typed_name_dialog() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    // shop-web is the last app by name and tagged prod.
    app.update(Action::Bottom);
    app.update(Action::Restart);
    type_text(&mut app, "shop");
    let screen = text(&draw(&mut app, 100, 16));
    assert_snapshot!(screen);
    assert!(screen.contains("⚠ prod: type shop-web and Enter to confirm"), "{screen}");
    assert!(screen.contains("◀ 1 ▶ at a time, of 3"), "{screen}");
}

#[test]
fn route_form_and_read_only_badge() {
    let mut app = app();
    app.read_only = true;
    app.update(Action::ShowPanel(Panel::Routes));
    app.update(Action::AddRoute);
    let screen = text(&draw(&mut app, 100, 14));
    assert!(screen.contains("READ-ONLY"), "{screen}");
    assert!(screen.contains("read-only: add route refused"), "{screen}");
    app.read_only = false;
    app.update(Action::AddRoute);
    type_text(&mut app, "10.101.1.99:8080");
    let screen = text(&draw(&mut app, 100, 14));
    assert_snapshot!(screen);
    assert!(screen.contains("backend  10.101.1.99:8080█"), "{screen}");
}

// -- the guided deploy wizard ---------------------------------------------------------------

/// The wizard on shop-web (prod, the last app by name), prefilled from its spec.
fn wizard_on_shop_web() -> App {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Bottom);
    app.update(Action::Deploy);
    app
}

fn wizard(app: &App) -> &crate::app::Wizard {
    match app.overlay() {
        Some(crate::app::Overlay::Wizard(w)) => w,
        other => panic!("no wizard open: {other:?}"),
    }
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

// -- logs view, detail sparklines (#5 part 2) ----------------------------------------------

fn logs_app() -> App {
    use crate::backend::LogsEvent;
    use crate::protocol::{LogBatch, LogLine, LogSource};
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Logs);
    app.apply(Inbound::Logs { session: 1, event: LogsEvent::Streaming });
    let texts = [
        "INFO [main] o.a.c.startup.Catalina Server startup in 2130 ms",
        "INFO [http-nio-8080-exec-1] GET /cart 200 12ms",
        "INFO [http-nio-8080-exec-2] GET /api/items 200 8ms",
        "SEVERE [http-nio-8080-exec-3] Servlet.service() threw exception: Connection pool Error",
        "INFO [http-nio-8080-exec-4] GET /login 200 31ms",
        "INFO [http-nio-8080-exec-5] GET /checkout 500 912ms",
        "WARN [pool-1] HikariPool-1 - Connection is not available, error after 30000ms",
        "INFO [http-nio-8080-exec-6] GET /health 200 1ms",
        "INFO [http-nio-8080-exec-7] GET / 200 4ms",
        "INFO [http-nio-8080-exec-8] GET /static/app.js 304 2ms",
        "INFO [http-nio-8080-exec-9] GET /cart 200 10ms",
        "INFO [http-nio-8080-exec-1] GET /api/items/42 404 3ms",
    ];
    let lines = texts
        .iter()
        .enumerate()
        .map(|(k, t)| LogLine {
            ts: T0 + k as u64 * 500,
            source: if t.starts_with("SEVERE") { LogSource::Stderr } else { LogSource::Stdout },
            text: t.to_string(),
        })
        .collect();
    let batch = LogBatch { instance: "x".into(), seq: 0, lines, end: None };
    app.apply(Inbound::Logs { session: 1, event: LogsEvent::Batch(batch) });
    app
}

#[test]
fn logs_view_with_a_search() {
    let mut app = logs_app();
    app.page_rows = super::body_rows(16);
    app.update(Action::Filter);
    for c in "error".chars() {
        app.update(Action::Input(c));
    }
    let typing = text(&draw(&mut app, 110, 16));
    assert!(typing.contains("/error▏"), "{typing}");
    app.update(Action::Submit);
    let buf = draw(&mut app, 110, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("/error match 1/2"), "{screen}");
    assert!(screen.contains("last 10000 kept"), "{screen}");
    // Matches are highlighted (reversed, not by colour alone), whatever their case.
    let (x, y) = find(&buf, "Error").expect("the first match");
    assert!(buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    let (x, y) = find(&buf, "error after").expect("the second match");
    assert!(buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    let (x, y) = find(&buf, "GET /cart").expect("a plain line");
    assert!(!buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED));
    // The current match carries the ▶ mark; n moves it.
    assert!(screen.lines().any(|l| l.contains("▶") && l.contains("pool Error")), "{screen}");
    app.update(Action::LogView(crate::actions::LogKey::NextMatch));
    let screen = text(&draw(&mut app, 110, 16));
    assert!(screen.contains("/error match 2/2"), "{screen}");
    assert!(screen.lines().any(|l| l.contains("▶") && l.contains("error after")), "{screen}");
}

/// Heartbeats every 2 s for 80 s: the host's CPU jumps when an instance is deployed on it
/// at sample 20, and an instance crashes at sample 30.
fn host_with_history() -> (App, String) {
    use crate::protocol::{Event, EventKind, Heartbeat, HostInfo};
    let mut app = app();
    let host = app.selected_host().cloned().expect("a host");
    let inst = app.replica.fleet.instances_on(&host.id).next().cloned().expect("an instance on it");
    for k in 0..40u64 {
        app.now = T0 + k * 2_000;
        let mut metrics = host.metrics.clone();
        metrics.cpu_pct = if k < 20 { 10.0 + (k % 3) as f32 } else { 70.0 + (k % 4) as f32 * 5.0 };
        metrics.mem_total_mb = 16_384;
        metrics.mem_used_mb = 6_000 + k * 50;
        let hb = Heartbeat {
            host: HostInfo {
                id: host.id.clone(),
                hostname: host.hostname.clone(),
                ip: host.ip.clone(),
                az: host.az.clone(),
                tags: host.tags.clone(),
                cpu_cores: host.cpu_cores,
                memory_total_mb: host.memory_total_mb,
                agent_version: host.agent_version.clone(),
                warnings: vec![],
            },
            metrics,
            instances: vec![],
            period_ms: 2_000,
            unmanaged: vec![],
        };
        app.apply(Inbound::Heartbeat(Box::new(hb)));
    }
    // The clock's tick, as the event loop gives it each second: the other hosts, silent
    // for 19 s, are judged.
    app.update(Action::Tick(app.now));
    let event = |rev, ts, kind| Event {
        rev,
        ts,
        kind,
        app: Some(inst.app.clone()),
        host: None,
        instance: Some(inst.id.clone()),
        operation_id: None,
        message: String::new(),
        changes: vec![],
        audit: None,
    };
    app.replica.events.push_back(event(9_001, T0 + 20 * 2_000 - 700, EventKind::InstanceDeployed));
    app.replica.events.push_back(event(9_002, T0 + 30 * 2_000 - 700, EventKind::InstanceCrashed));
    (app, host.id)
}

#[test]
fn host_detail_with_sparklines_and_event_markers() {
    let (mut app, host) = host_with_history();
    app.update(Action::Detail);
    let buf = draw(&mut app, 120, 40);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains(&format!("Host {host}")), "{screen}");
    assert!(screen.contains("▲ deploy  ↻ restart  ✕ crash"), "{screen}");
    let row_of = |label: &str| screen.lines().position(|l| l.contains(&format!("│ {label} "))).expect(label);
    let line = |y: usize| screen.lines().nth(y).unwrap_or_default().chars().collect::<Vec<char>>();
    let (cpu, events) = (line(row_of("cpu trend")), line(row_of("events")));
    let deploy = events.iter().position(|c| *c == '▲').expect("a deploy marker");
    let crash = events.iter().position(|c| *c == '✕').expect("a crash marker");
    assert_eq!(crash - deploy, 10, "ten heartbeats apart");
    // The spike starts in the deploy's column: low before it, high from it on.
    assert!(cpu[deploy - 1] <= '▂', "{:?}", cpu[deploy - 1]);
    assert!(cpu[deploy] >= '▆', "{:?}", cpu[deploy]);
    assert!(screen.contains("no warnings from the"), "docker diagnostics:\n{screen}");
}

#[test]
fn instance_and_app_details_show_their_sparklines() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    let inst = app.selected_instance().cloned().expect("an instance");
    for k in 0..10u64 {
        app.now = T0 + k * 2_000;
        let report = crate::protocol::InstanceReport {
            id: inst.id.clone(),
            app: inst.app.clone(),
            version: inst.version.clone(),
            index: inst.index,
            state: inst.state,
            ip: inst.ip.clone(),
            port: inst.port,
            container_id: String::new(),
            started_at: None,
            cpu_pct: k as f32 * 10.0,
            mem_used_mb: 100,
            mem_limit_mb: 256,
            last_exit: None,
        };
        let host = app.replica.fleet.hosts[&inst.host].clone();
        let hb = crate::protocol::Heartbeat {
            host: crate::protocol::HostInfo {
                id: host.id.clone(),
                hostname: host.hostname.clone(),
                ip: host.ip.clone(),
                az: host.az.clone(),
                tags: vec![],
                cpu_cores: host.cpu_cores,
                memory_total_mb: host.memory_total_mb,
                agent_version: host.agent_version.clone(),
                warnings: vec![],
            },
            metrics: host.metrics.clone(),
            instances: vec![report],
            period_ms: 2_000,
            unmanaged: vec![],
        };
        app.apply(Inbound::Heartbeat(Box::new(hb)));
    }
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 40));
    assert!(screen.contains("▁▂▂▃▄▅▅▆▇▇"), "a rising cpu sparkline:\n{screen}");
    app.update(Action::Back);
    app.update(Action::ShowPanel(Panel::Apps));
    let idx = app.rows(Panel::Apps).iter().position(|k| *k == crate::app::rows::RowKey::Id(inst.app.clone()));
    app.update(Action::Top);
    for _ in 0..idx.expect("its app") {
        app.update(Action::Down);
    }
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 40));
    assert_snapshot!(screen);
    assert!(screen.contains("versions"), "{screen}");
    assert!(screen.contains("running of"), "{screen}");
    assert!(screen.contains("▲ deploy"), "{screen}");
}

#[test]
fn wizard_uploading_the_artifact_then_sending() {
    let dir = std::env::temp_dir().join(format!("qd-view-upload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("shop-web-2.0.0.tar.gz");
    std::fs::write(&file, vec![7u8; 2048]).expect("artifact");
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_view_wraps_a_long_line_under_its_text() {
    use crate::protocol::{LogBatch, LogLine, LogSource};
    let mut app = logs_app();
    let long = format!("ERROR begin {} the very end", "payload ".repeat(20));
    let line = LogLine { ts: T0 + 9_000, source: LogSource::Stdout, text: long };
    let batch = LogBatch { instance: "x".into(), seq: 1, lines: vec![line], end: None };
    app.apply(Inbound::Logs { session: 1, event: crate::backend::LogsEvent::Batch(batch) });
    let screen = text(&draw(&mut app, 80, 16));
    // Every part of the line is on screen, the newest line last, rows indented under the text.
    assert!(screen.contains("ERROR begin payload"), "{screen}");
    assert!(screen.contains("the very end"), "{screen}");
    let rows: Vec<&str> = screen.lines().collect();
    let first = rows.iter().position(|l| l.contains("ERROR begin")).expect("the line");
    assert!(rows[first + 1].starts_with("│          payload"), "{screen}");
    assert!(rows[first + 2..].iter().any(|l| l.contains("the very end")), "{screen}");
}

// -- freshness: a silent source is shown as unknown, with its age -------------------------

/// Every host of the fixture beats at `now`, with a 2 s period.
fn all_hosts_beat(app: &mut App, now: u64) {
    app.now = now;
    let hosts: Vec<crate::protocol::Host> = app.replica.fleet.hosts.values().cloned().collect();
    for h in hosts {
        let hb = crate::backend::replica_test_heartbeat(&h, 2_000);
        app.apply(Inbound::Heartbeat(Box::new(hb)));
    }
}

/// The controller's beacon every 2 s, the last at `now`.
fn beacons_until(app: &mut App, now: u64) {
    for k in (0..4).rev() {
        app.now = now - k * 2_000;
        let rev = app.replica.fleet.revision;
        app.apply(Inbound::Beacon(rev));
    }
}

#[test]
fn no_controller_for_three_beacon_periods_is_said_in_the_header_and_every_panel() {
    let mut app = app();
    let t = T0 + 60_000;
    beacons_until(&mut app, t);
    all_hosts_beat(&mut app, t + 6_000);
    app.update(Action::Tick(t + 6_000));
    let screen = text(&draw(&mut app, 150, 16));
    assert!(
        screen.contains("● live") && !screen.contains("not live"),
        "3 periods is not yet silent:\n{screen}"
    );

    app.update(Action::Tick(t + 6_001));
    app.update(Action::ShowPanel(Panel::Instances));
    let buf = draw(&mut app, 150, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("✕ no controller for 6s"), "{screen}");
    assert!(screen.contains("⚠ not live: no controller"), "{screen}");
    // The hosts beat: they are up. What the controller said of instances and routes is
    // unknown, and not counted as healthy.
    assert!(screen.contains("hosts 6/6 up │"), "{screen}");
    assert!(screen.contains("instances 0/7 running (7 unknown)"), "{screen}");
    assert!(screen.contains("routes 0/7 serving (7 unknown)"), "{screen}");
    assert!(screen.contains("? running 6s old") && !screen.contains("● running"), "{screen}");
    let (x, y) = find(&buf, "✕ no controller").expect("badge");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    for panel in [Panel::Hosts, Panel::Routes, Panel::Events, Panel::Apps] {
        app.update(Action::ShowPanel(panel));
        let screen = text(&draw(&mut app, 150, 16));
        assert!(screen.contains("⚠ not live: no controller"), "{panel:?}:\n{screen}");
        if panel == Panel::Routes {
            assert_eq!(screen.matches("? running 6s").count(), 7, "every backend's instance:\n{screen}");
        }
    }
    let screen = text(&draw(&mut app, 150, 16));
    assert!(screen.contains("? 2 unknown") && !screen.contains("● ok"), "Apps:\n{screen}");
    let row = screen.lines().find(|l| l.contains("api-gateway")).expect("api-gateway's row");
    assert!(row.contains("0/2") && !row.contains("2/2"), "nothing known to run or serve: {row}");

    // A beacon: live again at once.
    app.now = t + 6_500;
    app.apply(Inbound::Beacon(app.replica.fleet.revision));
    let screen = text(&draw(&mut app, 150, 16));
    assert!(screen.contains("● live") && !screen.contains("unknown"), "{screen}");
}

#[test]
fn a_silent_host_is_stale_with_its_age_and_its_instances_unknown() {
    let mut app = app();
    let t = T0 + 60_000;
    all_hosts_beat(&mut app, t);
    // host-02 goes silent; the others and the controller go on.
    let others: Vec<crate::protocol::Host> =
        app.replica.fleet.hosts.values().filter(|h| h.id != "host-02").cloned().collect();
    for at in [t + 2_000, t + 4_000, t + 6_000, t + 8_000] {
        app.now = at;
        for h in &others {
            let hb = crate::backend::replica_test_heartbeat(h, 2_000);
            app.apply(Inbound::Heartbeat(Box::new(hb)));
        }
        app.apply(Inbound::Beacon(app.replica.fleet.revision));
    }
    app.update(Action::Tick(t + 8_000));
    let buf = draw(&mut app, 150, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let row = screen.lines().find(|l| l.contains("host-02")).expect("host-02's row");
    assert!(row.contains("◐ stale 8s") && row.contains("8s"), "{row}");
    assert!(screen.contains("hosts 5/6 up (1 silent)"), "{screen}");
    assert!(screen.contains("● live"), "the controller is heard:\n{screen}");
    let on_host_02 = app.replica.fleet.instances_on("host-02").count();
    assert!(
        screen.contains(&format!("instances {}/7 running ({on_host_02} unknown)", 7 - on_host_02)),
        "{screen}"
    );
    // No controller has said so: the fleet still has it up.
    assert_eq!(app.replica.fleet.hosts["host-02"].state, crate::protocol::HostState::Up);

    app.update(Action::ShowPanel(Panel::Instances));
    let screen = text(&draw(&mut app, 150, 16));
    let row = screen.lines().find(|l| l.contains("host-02")).expect("an instance on host-02");
    assert!(row.contains("? running 8s old"), "{row}");
    assert_eq!(screen.matches("? running").count(), on_host_02, "{screen}");

    // The filter finds what is unknown, and follows when the host speaks again.
    app.update(Action::Filter);
    type_text(&mut app, "unknown");
    app.update(Action::Submit);
    assert_eq!(app.row_count(Panel::Instances), on_host_02);
    app.now = t + 8_500;
    let host_02 = app.replica.fleet.hosts["host-02"].clone();
    let hb = crate::backend::replica_test_heartbeat(&host_02, 2_000);
    app.apply(Inbound::Heartbeat(Box::new(hb)));
    app.refresh_views();
    assert_eq!(app.row_count(Panel::Instances), 0, "heard again: nothing is unknown");
}

/// Every route of `app_name` disabled, one event each.
fn disable_routes(app: &mut App, app_name: &str, keep: usize) {
    let routes: Vec<crate::protocol::Route> =
        app.replica.fleet.routes.values().filter(|r| r.app == app_name).skip(keep).cloned().collect();
    for r in routes {
        let rev = app.replica.fleet.revision + 1;
        let route = crate::protocol::Route { state: crate::protocol::RouteState::Disabled, ..r };
        feed(
            app,
            crate::protocol::Event {
                rev,
                ts: app.now,
                kind: crate::protocol::EventKind::RouteDisabled,
                app: Some(app_name.into()),
                host: None,
                instance: None,
                operation_id: None,
                message: String::new(),
                changes: vec![crate::protocol::Change::Route(route)],
                audit: None,
            },
        );
    }
}

#[test]
fn an_app_whose_routes_are_all_disabled_gets_no_traffic() {
    let mut app = app();
    disable_routes(&mut app, "shop-web", 0);
    app.update(Action::ShowPanel(Panel::Apps));
    let buf = draw(&mut app, 120, 12);
    let screen = text(&buf);
    assert_snapshot!(screen);
    let row = screen.lines().find(|l| l.contains("shop-web")).expect("shop-web's row");
    assert!(row.contains("3/3") && row.contains("0/3") && row.contains("✕ no traffic"), "{row}");
    assert!(!row.contains("● ok"), "{row}");
    assert!(screen.contains("routes 4/7 serving"), "the header counts serving routes:\n{screen}");
    let (x, y) = find(&buf, "✕ no traffic").expect("state");
    assert_eq!(buf[(x, y)].fg, app.theme.bad.fg.unwrap_or(Color::Reset));
    // The filter sees the word too.
    app.update(Action::Filter);
    type_text(&mut app, "no traffic");
    app.update(Action::Submit);
    assert_eq!(app.row_count(Panel::Apps), 1);
    // The routes themselves are disabled, and still backed: not stale.
    app.update(Action::ShowPanel(Panel::Routes));
    let screen = text(&draw(&mut app, 120, 16));
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("shop-web.dianping")).collect();
    assert_eq!(rows.len(), 3, "{screen}");
    assert!(rows.iter().all(|l| l.contains("○ disabled") && !l.contains("stale")), "{screen}");
}

#[test]
fn disabling_an_apps_last_serving_backend_is_named_in_the_confirm_dialog() {
    let mut app = app();
    disable_routes(&mut app, "api-gateway", 1);
    app.update(Action::ShowPanel(Panel::Routes));
    let enabled = |app: &App, name: &str| {
        app.rows(Panel::Routes)
            .iter()
            .position(|k| match k {
                crate::app::rows::RowKey::Route(a, b) => {
                    a == name
                        && app.replica.fleet.routes[&(a.clone(), b.clone())].state
                            == crate::protocol::RouteState::Enabled
                }
                _ => false,
            })
            .expect("an enabled route")
    };
    // Not the last one: no warning.
    let pos = enabled(&app, "session-cache");
    app.selections[Panel::Routes.index()].index = pos;
    app.update(Action::ToggleRoute);
    let screen = text(&draw(&mut app, 100, 16));
    assert!(screen.contains("Disable route") && !screen.contains("last serving"), "{screen}");
    app.update(Action::Cancelled);
    // api-gateway's last enabled route.
    let pos = enabled(&app, "api-gateway");
    app.selections[Panel::Routes.index()].index = pos;
    app.update(Action::ToggleRoute);
    let buf = draw(&mut app, 100, 16);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(
        screen.contains("⚠ this is api-gateway's last serving backend: api-gateway will get no"),
        "{screen}"
    );
    let (x, y) = find(&buf, "⚠ this is api-gateway").expect("warning");
    assert_eq!(buf[(x, y)].fg, app.theme.warn.fg.unwrap_or(Color::Reset));
    // Confirmed, it is sent as usual.
    assert_eq!(app.update(Action::Confirmed).len(), 1);
}
