//! Snapshot tests for every panel and dialog, from the fixed-seed fixture, plus cell-style
//! checks that the theme's meaning reaches the screen (oxker's and gitui's pattern).

use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use crate::actions::keymap::Keymap;
use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::Update;
use crate::plane::fixture::{T0, fixture};
use crate::views::theme::{ColorMode, Theme};

fn app() -> App {
    let mut app =
        App::new("sandbox", Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), T0 + 60_000);
    let (fleet, events) = fixture(42, 6, 0);
    app.update(Action::Backend(Box::new(Update::Snapshot(fleet))));
    app.update(Action::Backend(Box::new(Update::History(events))));
    app
}

fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    app.page_rows = super::body_rows(h);
    terminal.draw(|f| super::render(app, f)).expect("draw");
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

#[test]
fn confirm_dialog() {
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Restart);
    assert_snapshot!(text(&draw(&mut app, 100, 16)));
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
fn only_visible_rows_are_drawn_and_the_selection_stays_on_screen() {
    let mut app = app();
    let (fleet, _) = fixture(42, 6, 400);
    app.update(Action::Backend(Box::new(Update::Snapshot(fleet))));
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
    app.update(Action::Backend(Box::new(Update::Router(Box::new(status.clone())))));
    app.update(Action::ShowPanel(Panel::Routes));
    let screen = text(&draw(&mut app, 120, 16));
    assert_snapshot!(screen);
    assert!(
        screen.contains("● router router-1 up · 127.0.0.1:8080 · gen 12 · 6 backends · reloaded 3s ago"),
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
        command_id: format!("cmd-{rev:04}"),
        source: "cockpit/alice@bastion-1".into(),
        operator: Some(Operator {
            user: "alice@bastion-1".into(),
            ssh_client: Some("10.0.0.5:52344".into()),
            nats_user: Some("ops".into()),
        }),
        request: what,
        outcome,
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

fn feed(app: &mut App, e: crate::protocol::Event) {
    app.update(Action::Backend(Box::new(Update::Event(e))));
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

#[test]
fn audit_panel() {
    let mut app = app();
    let e = audit_event(&app, serde_json::json!({"app": "shop-web", "batch": 2}), "restart", true);
    feed(&mut app, e);
    let e = audit_event(&app, serde_json::json!({"instance": "shop-web-9-0000"}), "restart", false);
    feed(&mut app, e);
    app.update(Action::ShowPanel(Panel::Audit));
    let buf = draw(&mut app, 150, 10);
    let screen = text(&buf);
    assert_snapshot!(screen);
    assert!(screen.contains("alice@bastion-1  cockpit · ssh 10.0.0.5:52344 · nats ops"), "{screen}");
    assert!(screen.contains("✕ refused: no instance"), "{screen}");
    let (x, y) = find(&buf, "✓ accepted as").expect("an accepted record");
    assert_eq!(buf[(x, y)].fg, app.theme.ok.fg.unwrap_or(Color::Reset));
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 24));
    assert!(screen.contains("ssh client") && screen.contains("10.0.0.5:52344"), "{screen}");
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
    app.update(Action::Sort);
    app.update(Action::SortReverse);
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
