//! Snapshot and cell-style tests of the detail pane, drawn from the fixed-seed fixture through the
//! shared headless harness (`views::harness`).

use insta::assert_snapshot;
use ratatui::style::Color;

use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::T0;
use crate::views::harness::{app, draw, find, text};

#[test]
fn detail_pane() {
    let mut app = app();
    app.update(Action::Detail);
    assert_snapshot!(text(&draw(&mut app, 100, 30)));
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

/// Heartbeats every 2 s for 80 s: the host's CPU jumps when an instance is deployed on it
/// at sample 20, and an instance crashes at sample 30.
fn host_with_history() -> (App, String) {
    use crate::protocol::{Event, EventKind, Heartbeat};
    let mut app = app();
    let host = app.selected_host().cloned().expect("a host");
    let inst = app.replica.fleet.instances_on(&host.info.id).next().cloned().expect("an instance on it");
    for k in 0..40u64 {
        app.now = T0 + k * 2_000;
        let mut metrics = host.metrics.clone();
        metrics.cpu_pct = if k < 20 { 10.0 + (k % 3) as f32 } else { 70.0 + (k % 4) as f32 * 5.0 };
        metrics.mem_total_mb = 16_384;
        metrics.mem_used_mb = 6_000 + k * 50;
        let hb = Heartbeat {
            host: host.info.clone(),
            metrics,
            instances: vec![],
            period_ms: 2_000,
            unmanaged: vec![],
        };
        app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb))));
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
    (app, host.info.id)
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
            host: crate::protocol::HostInfo { tags: vec![], ..host.info.clone() },
            metrics: host.metrics.clone(),
            instances: vec![report],
            period_ms: 2_000,
            unmanaged: vec![],
        };
        app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb))));
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

/// An app's detail lists its env with values and its secrets by name, version and sha8.
#[test]
fn an_app_detail_shows_its_env_and_its_secrets_without_values() {
    let mut app = app();
    let name = app.replica.fleet.apps.keys().next().cloned().expect("an app");
    if let Some(a) = app.replica.fleet.apps.get_mut(&name) {
        a.run.env = [("GREETING".to_string(), "hi\u{1b}[31m".to_string())].into();
        let r = crate::protocol::SecretRef { version: 3, sha8: "0123abcd".into() };
        a.run.secrets = [("DB_PASS".to_string(), r)].into();
    }
    app.update(Action::ShowPanel(Panel::Apps));
    app.update(Action::Top);
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 40));
    assert!(screen.contains(&format!("App {name}")), "{screen}");
    assert!(screen.contains("env           GREETING=hi\\u{1b}[31m"), "escaped:\n{screen}");
    assert!(screen.contains("secrets       DB_PASS  v3  sha8 0123abcd"), "{screen}");
}

/// A forwarded instance's detail pane shows where the forward listens (`F`).
#[test]
fn an_instance_detail_shows_its_port_forward() {
    use crate::backend::ForwardEvent;
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Instances));
    app.update(Action::Forward);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 40123));
    app.apply(Inbound::Forward { session: 1, event: ForwardEvent::Listening(local) });
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 100, 30));
    assert!(screen.contains("forward"), "{screen}");
    assert_snapshot!(screen);
}

/// A route's and its app's detail show RPS, 5xx and p99 sparklines over the statuses
/// received, one column per status period.
#[test]
fn route_and_app_details_show_traffic_sparklines() {
    use crate::views::harness::{feed_router, router_traffic};
    let mut app = app();
    app.update(Action::ShowPanel(Panel::Routes));
    let r = app.selected_route().cloned().expect("a route");
    for k in 1..=12u64 {
        app.now = T0 + 60_000 + k * 2_000;
        let now = app.now;
        // Rising requests; 5xx only in the last three periods.
        let errors = if k > 9 { 20 * k } else { 0 };
        let loads = [(r.app.as_str(), r.backend.as_str(), 100 * k, errors, 1_000, 10_000 * k)];
        feed_router(&mut app, router_traffic("router-1", now, 2_000, &loads, &[]));
    }
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 40));
    assert_snapshot!("route_detail_with_traffic", screen);
    let line = |name: &str| screen.lines().find(|l| l.contains(name)).unwrap_or_default().to_string();
    assert!(line("rps trend").contains("▂▂▃▃▄▅▅▆▆▇▇█"), "a rising rps sparkline:\n{screen}");
    assert!(line("5xx trend").contains("▁▁▁▁▁▁▁▁▁███"), "5xx at the end:\n{screen}");
    assert!(line("p99 trend").contains("120ms"), "{screen}");
    assert!(line("traffic").contains("600 rps · 20% 5xx"), "{screen}");
    app.update(Action::Back);
    app.update(Action::ShowPanel(Panel::Apps));
    let idx = app.rows(Panel::Apps).iter().position(|k| *k == crate::app::rows::RowKey::Id(r.app.clone()));
    app.update(Action::Top);
    for _ in 0..idx.expect("its app") {
        app.update(Action::Down);
    }
    app.update(Action::Detail);
    let screen = text(&draw(&mut app, 120, 60));
    let line = |name: &str| screen.lines().find(|l| l.contains(name)).unwrap_or_default().to_string();
    assert!(line("rps trend").contains("▂▂▃▃▄▅▅▆▆▇▇█"), "the app's too:\n{screen}");
}
