//! The one headless cockpit every unit and snapshot test drives, the views' and the app's
//! alike: the fixture app, drawing it to a test buffer, reading the buffer back as text,
//! typing, and the events tests feed it. Test-only (`#[cfg(test)]`).

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use crate::actions::keymap::Keymap;
use crate::actions::{Action, Effect, Panel};
use crate::app::App;
use crate::app::rows::RowKey;
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::{T0, fixture};
use crate::protocol::ControlCommand;
use crate::theme::{ColorMode, Theme};
use crate::views::Drawn;

/// The headless app every unit test starts from: the fixed-seed fixture fleet of 6 hosts
/// (plus `extra_instances`) and its events, the clock a minute after the fixture's.
pub(crate) fn fixture_app(extra_instances: usize) -> App {
    let theme = Theme::default_for(ColorMode::TrueColor);
    let mut app = App::new("sandbox", theme, Keymap::defaults(), T0 + 60_000);
    let (fleet, events) = fixture(42, 6, extra_instances);
    app.apply(Inbound::Feed(Feed::Snapshot(fleet)));
    app.apply(Inbound::Feed(Feed::History(events)));
    app
}

/// The fixture app with no extra instances: 6 hosts, 7 instances.
pub(crate) fn app() -> App {
    fixture_app(0)
}

/// The app drawn once at `w`x`h`, as the terminal would show it.
pub(crate) fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    draw_layout(app, w, h).1
}

/// The app drawn once at `w`x`h`: the layout drawn (for clicks) and the buffer.
pub(crate) fn draw_layout(app: &mut App, w: u16, h: u16) -> (Drawn, Buffer) {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    let drawn = crate::tui::render(&mut terminal, app).expect("draw");
    (drawn, terminal.backend().buffer().clone())
}

/// Each row of the buffer as a line of text, trailing blanks trimmed.
pub(crate) fn text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The app drawn at `w`x`h`, read back as text.
pub(crate) fn screen(app: &mut App, w: u16, h: u16) -> String {
    text(&draw(app, w, h))
}

/// The first cell whose row contains `needle`, at the column where `needle` starts.
pub(crate) fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(byte) = line.find(needle) {
            let col = line[..byte].chars().count() as u16;
            return Some((col, y));
        }
    }
    None
}

/// An event with these changes and this kind and message, next in revision order.
pub(crate) fn event_with(
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

/// `e` applied as the next event from the bus.
pub(crate) fn feed(app: &mut App, e: crate::protocol::Event) {
    app.apply(Inbound::Feed(Feed::Event(e)));
}

/// Each character of `text` typed into the app, and the effects the keystrokes asked for.
pub(crate) fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| app.update(Action::Input(c))).collect()
}

/// The open wizard; a test that expects one fails here when none is open.
pub(crate) fn wizard(app: &App) -> &crate::app::Wizard {
    match app.overlay() {
        Some(crate::app::Overlay::Wizard(w)) => w,
        other => panic!("no wizard open: {other:?}"),
    }
}

/// The open confirm dialog's question; a test that expects one fails here when none is open.
pub(crate) fn question(app: &App) -> String {
    match app.overlay() {
        Some(crate::app::Overlay::Confirm(p)) => p.question.clone(),
        other => panic!("no confirm dialog: {other:?}"),
    }
}

/// Every route of `app_name` disabled, one event each.
pub(crate) fn disable_routes(app: &mut App, app_name: &str, keep: usize) {
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

/// The commands among `effects`, in order: what the keystrokes sent to the controller.
pub(crate) fn sent(effects: &[Effect]) -> Vec<ControlCommand> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The ids of `panel`'s rows, in the order the table shows them.
pub(crate) fn row_ids(app: &App, panel: Panel) -> Vec<String> {
    app.rows(panel).iter().map(RowKey::id_text).collect()
}

/// An event from the controller carrying `changes`, at the replica's next revision.
pub(crate) fn change_event(app: &App, changes: Vec<crate::protocol::Change>) -> Inbound {
    Inbound::Feed(Feed::Event(crate::protocol::Event {
        rev: app.replica.fleet.revision + 1,
        ts: app.now,
        kind: crate::protocol::EventKind::InstanceState,
        app: None,
        host: None,
        instance: None,
        operation_id: None,
        message: "test".into(),
        changes,
        audit: None,
    }))
}

/// A running operation on `app` with these pulls: `(instance, bytes fetched)`.
pub(crate) fn running_op(id: &str, app: &str, pulls: &[(&str, u64)], now: u64) -> crate::protocol::Operation {
    use crate::protocol::{OperationKind, OperationState, OperationStep, StepName, StepState};
    crate::protocol::Operation {
        id: id.into(),
        kind: OperationKind::Deploy,
        app: app.into(),
        target: format!("{app}@2 x3"),
        steps: pulls
            .iter()
            .map(|(instance, done)| OperationStep {
                name: StepName::PullImage,
                instance: Some(instance.to_string()),
                state: StepState::Running,
                started_at: now,
                finished_at: None,
                detail: format!("{done} of 99999999 bytes, 1 layer(s) pulled of web"),
            })
            .collect(),
        state: OperationState::Running,
        error: None,
        started_at: now,
        finished_at: None,
        command_id: None,
        compacted: None,
    }
}

/// An alert as the controller keeps it: `rule` on `subject`, in `state` since `since`
/// (acknowledged by alice when so).
pub(crate) fn alert(
    rule: crate::protocol::AlertRule,
    subject: &str,
    state: crate::protocol::AlertState,
    since: u64,
) -> crate::protocol::Alert {
    use crate::protocol::{Alert, AlertState, AlertSubject};
    let subject = AlertSubject::parse(subject).expect("a subject");
    Alert {
        id: Alert::id_of(rule, &subject),
        rule,
        subject,
        state,
        since,
        changed_at: since,
        resolved_at: (state == AlertState::Resolved).then_some(since + 30_000),
        summary: format!("{} seen", rule.as_str()),
        causes: vec![3, 4],
        acked_by: (state == AlertState::Acknowledged).then(|| "alice@bastion-1".into()),
    }
}

/// `alert` applied as the controller's next event, `ALERT_FIRING` (or the kind its
/// state has); returns its id.
pub(crate) fn feed_alert(app: &mut App, a: crate::protocol::Alert) -> String {
    use crate::protocol::{AlertState, Change, EventKind};
    let kind = match a.state {
        AlertState::Firing => EventKind::AlertFiring,
        AlertState::Acknowledged => EventKind::AlertAcknowledged,
        AlertState::Resolved => EventKind::AlertResolved,
    };
    let id = a.id.clone();
    let mut e = event_with(app, kind, &format!("{} {}", a.rule.as_str(), a.subject), vec![Change::Alert(a)]);
    e.app = None;
    feed(app, e);
    id
}

/// The fixture with one alert of each subject kind and state: an instance's crash loop
/// firing (newest), a host down firing, an app's failed deploy acknowledged, a route's
/// 5xx resolved.
pub(crate) fn alerts_app() -> App {
    use crate::protocol::{AlertRule, AlertState};
    let mut app = app();
    let instance = app.replica.fleet.instances.keys().next().cloned().expect("an instance");
    let (route_app, backend) = app.replica.fleet.routes.keys().next().cloned().expect("a route");
    let t = T0;
    let alerts = [
        alert(AlertRule::HostDown, "host/host-02", AlertState::Firing, t + 10_000),
        alert(AlertRule::CrashLoop, &format!("instance/{instance}"), AlertState::Firing, t + 20_000),
        alert(AlertRule::DeployFailed, "app/shop-web", AlertState::Acknowledged, t + 5_000),
        alert(AlertRule::Route5xx, &format!("route/{route_app}/{backend}"), AlertState::Resolved, t),
    ];
    for a in alerts {
        feed_alert(&mut app, a);
    }
    app
}

/// One backend's numbers in a router's traffic, for `router_traffic`: app, backend,
/// requests, 5xx, p50 and p99 in µs.
pub(crate) type BackendLoad<'a> = (&'a str, &'a str, u64, u64, u64, u64);

/// A router's status carrying `loads` over a `window_ms` window ending at `at`, each
/// app's numbers the sum of its backends' (plus `lost`, requests no backend took, per app).
pub(crate) fn router_traffic(
    id: &str,
    at: u64,
    window_ms: u64,
    loads: &[BackendLoad<'_>],
    lost: &[(&str, u64)],
) -> crate::protocol::RouterStatus {
    use crate::protocol::{Traffic, TrafficStats};
    let mut traffic = Traffic { at, window_ms, ..Traffic::default() };
    for &(app, backend, requests, errors_5xx, p50, p99) in loads {
        let stats = TrafficStats { requests, errors_5xx, p50_us: Some(p50), p99_us: Some(p99) };
        traffic.backends.entry(app.into()).or_default().insert(backend.into(), stats);
        let a = traffic.apps.entry(app.into()).or_default();
        a.requests += requests;
        a.errors_5xx += errors_5xx;
        a.p50_us = a.p50_us.max(Some(p50));
        a.p99_us = a.p99_us.max(Some(p99));
    }
    for &(app, n) in lost {
        let a = traffic.apps.entry(app.into()).or_default();
        a.requests += n;
        a.errors_5xx += n;
    }
    crate::protocol::RouterStatus {
        id: id.into(),
        generation: 3,
        last_reload: Some(at.saturating_sub(30_000)),
        last_error: None,
        backends: loads.len(),
        listen: "127.0.0.1:8080".into(),
        revision: 23,
        traffic: Some(traffic),
    }
}

/// Feeds a router's status to the app, as the backend would.
pub(crate) fn feed_router(app: &mut App, status: crate::protocol::RouterStatus) {
    app.apply(Inbound::Feed(Feed::Router(Box::new(status))));
}
