//! The detail pane (Enter) for the selected row of the current panel.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::actions::Panel;
use crate::app::FrameContext;
use std::collections::VecDeque;

use crate::app::cells::{latency_label, pct_5xx_label, rps_label};
use crate::app::traffic::{HIGH_5XX_PCT, Rates, TRAFFIC_KEPT, TrafficHistory, TrafficSample};
use crate::backend::{History, Sample};
use crate::protocol::clock::{age, datetime, uptime};
use crate::protocol::{Event, EventKind, Host};
use crate::theme::Theme;

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    // The popup's inner width, which the sparklines fill.
    let width = area.width.saturating_sub(8).max(40).saturating_sub(2) as usize;
    let (title, lines) = match app.panel {
        Panel::Hosts => host(app, width),
        Panel::Instances => instance(app, width),
        Panel::Routes => route(app, width),
        Panel::Events => event(app),
        Panel::Audit => audit(app),
        Panel::Apps => app_detail(app, width, area.height),
        Panel::Alerts => alert(app),
    };
    let popup = super::centered(area, area.width.saturating_sub(8).max(40), lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(Span::styled(format!(" {title} "), t.title))
        .title_bottom(Line::from(Span::styled(" Esc closes ", t.muted)).right_aligned());
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), popup);
}

fn kv<'a>(t: &Theme, key: &str, value: impl Into<String>) -> Line<'a> {
    Line::from(vec![Span::styled(format!(" {key:<14}"), t.muted), Span::styled(value.into(), t.text)])
}

fn host(app: &FrameContext, width: usize) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(h) = app.selected_host() else { return ("Host".into(), vec![]) };
    let m = &h.metrics;
    let mut lines = vec![
        {
            // As the Hosts panel shows it: a silent host is stale, with its silence.
            let (state, silent) = app.replica.host_state(h, app.now);
            let label = super::hosts::state_label(state);
            kv(
                t,
                "state",
                silent.map_or(label.to_string(), |ms| {
                    format!("{label}, silent for {}", super::silence_age(ms))
                }),
            )
        },
        kv(t, "hostname", h.info.hostname.clone()),
        kv(t, "address", format!("{} in {}", h.info.ip, h.info.az)),
        kv(t, "tags", h.info.tags.join(", ")),
        kv(t, "capacity", format!("{} cores, {} MB", h.info.cpu_cores, h.info.memory_total_mb)),
        kv(t, "cpu", format!("{:.1}%  load {:.2} {:.2} {:.2}", m.cpu_pct, m.load1, m.load5, m.load15)),
        kv(t, "memory", format!("{} / {} MB ({:.0}%)", m.mem_used_mb, m.mem_total_mb, m.mem_pct())),
        kv(t, "disk", format!("{} / {} GB", m.disk_used_mb / 1024, m.disk_total_mb / 1024)),
        kv(t, "network", format!("rx {} KB/s  tx {} KB/s", m.net_rx_bps / 1024, m.net_tx_bps / 1024)),
        kv(
            t,
            "heartbeat",
            app.replica
                .heartbeat_age(&h.info.id, app.now)
                .map(|a| format!("{} ago", age(a)))
                .unwrap_or_else(|| "never".into()),
        ),
        kv(t, "agent", h.info.agent_version.clone()),
    ];
    // An operator's cordon or drain, and how to undo it; nothing for an open host.
    if !h.schedule.is_open() {
        let how = match h.schedule {
            crate::protocol::HostSchedule::Draining { .. } => "no new instance; its instances are moving off",
            _ => "no new instance; c uncordons",
        };
        lines.insert(
            1,
            kv(t, "schedule", format!("{} ({how})", crate::app::cells::schedule_label(h.schedule))),
        );
    }
    let f = &app.replica.fleet;
    let on_host = |e: &&Event| {
        e.host.as_deref() == Some(h.info.id.as_str())
            || e.instance.as_ref().and_then(|i| f.instances.get(i)).is_some_and(|i| i.host == h.info.id)
    };
    let events: Vec<&Event> = app.replica.events.iter().filter(on_host).collect();
    let history: Vec<&History> = app.replica.host_history.get(&h.info.id).into_iter().collect();
    lines.extend(sparklines(t, &history, &events, width));
    // Docker's own diagnostics (storage driver, discard ...), as the agent reports them.
    if h.info.warnings.is_empty() {
        lines.push(kv(
            t,
            "diagnostics",
            format!("no warnings from the {} driver", driver_of(&h.info.agent_version)),
        ));
    }
    for w in &h.info.warnings {
        lines.push(Line::from(Span::styled(format!(" ⚠ {w}"), t.warn)));
    }
    lines.extend(host_containers(app, h));
    (format!("Host {}", h.info.id), lines)
}

/// A host's instances, then the containers no agent manages, which are never touched.
fn host_containers(app: &FrameContext, h: &Host) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = Vec::new();
    lines.push(Line::from(Span::styled(" instances", t.muted)));
    for i in app.replica.fleet.instances_on(&h.info.id) {
        lines.push(Line::from(format!("   {:<24} {:<10} {}", i.id, i.state.as_str(), i.endpoint)));
    }
    if !h.unmanaged.is_empty() {
        lines.push(Line::from(Span::styled(" unmanaged containers (never touched)", t.warn)));
        for c in &h.unmanaged {
            let id = &c.container_id[..c.container_id.len().min(12)];
            lines.push(Line::from(format!(
                "   ⚠ {:<20} {id} {:<10} {} cpu {:.0}% mem {} MB",
                c.name, c.state, c.image, c.cpu_pct, c.mem_used_mb
            )));
        }
    }
    lines
}

fn instance(app: &FrameContext, width: usize) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(i) = app.selected_instance() else { return ("Instance".into(), vec![]) };
    let image = app.replica.fleet.apps.get(&i.app).map(|a| a.image.clone()).unwrap_or_default();
    let mut lines = vec![
        kv(t, "state", super::instances::state_cell(app, i).text),
        kv(t, "app", format!("{}@{} (index {})", i.app, i.version, i.index)),
        kv(t, "host", i.host.clone()),
        kv(t, "endpoint", i.endpoint.clone()),
        kv(t, "container", i.container_id.clone()),
        kv(t, "image", image),
        kv(t, "limits", format!("{:.2} cores, {} MB", i.cpu_limit, i.mem_limit_mb)),
        kv(t, "usage", format!("cpu {:.1}%, memory {} MB", i.cpu_pct, i.mem_used_mb)),
        kv(
            t,
            "started",
            i.started_at
                .map(|s| format!("{} (up {})", datetime(s), uptime(app.now.saturating_sub(s))))
                .unwrap_or_else(|| "-".into()),
        ),
        kv(t, "restarts", i.restarts.to_string()),
        kv(t, "last exit", last_exit(i.last_exit, app.now)),
    ];
    if let Some(f) = app.forwards.by_instance.get(&i.id) {
        lines.push(kv(t, "forward", f.describe(&app.keymap.keys_for(crate::actions::Action::Forward))));
    }
    let mine: Vec<&Event> =
        app.replica.events.iter().filter(|e| e.instance.as_deref() == Some(&i.id)).collect();
    let history: Vec<&History> = app.replica.instance_history.get(&i.id).into_iter().collect();
    lines.extend(sparklines(t, &history, &mine, width));
    lines.push(Line::from(Span::styled(" recent events", t.muted)));
    let recent: Vec<_> =
        app.replica.events.iter().rev().filter(|e| e.instance.as_deref() == Some(&i.id)).take(6).collect();
    for e in recent {
        lines.push(Line::from(format!(
            "   {} {:<22} {}",
            crate::protocol::clock::hms(e.ts),
            e.kind.as_str(),
            e.message
        )));
    }
    (format!("Instance {}", i.id), lines)
}

/// `exit 3 at 2026-12-05 21:40:12 (2m ago), code 3`, or `-` when it never ended.
fn last_exit(exit: Option<crate::protocol::ExitInfo>, now: u64) -> String {
    let Some(x) = exit else { return "-".into() };
    let mut text = x.reason();
    if x.at > 0 {
        text.push_str(&format!(" at {} ({} ago)", datetime(x.at), uptime(now.saturating_sub(x.at))));
    }
    if x.oom || x.signal.is_some() {
        text.push_str(&format!(", exit code {}", x.code));
    }
    text
}

fn route(app: &FrameContext, width: usize) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(r) = app.selected_route() else { return ("Route".into(), vec![]) };
    let mut lines = vec![
        kv(t, "app", r.app.clone()),
        kv(t, "domain", r.domain.clone()),
        kv(t, "backend", r.backend.clone()),
        kv(t, "state", r.state.as_str()),
        kv(t, "weight", r.weight.to_string()),
    ];
    if let Some(app_spec) = app.replica.fleet.apps.get(&r.app) {
        let running = app
            .replica
            .fleet
            .instances_of(&r.app)
            .filter(|i| i.state == crate::protocol::InstanceState::Running)
            .count();
        lines.push(kv(
            t,
            "app spec",
            format!("{}@{} image {} port {}", app_spec.name, app_spec.version, app_spec.image, app_spec.port),
        ));
        lines.push(kv(t, "instances", format!("{running} running of {} desired", app_spec.instances)));
    }
    lines.push(kv(t, "traffic", traffic_now(app.traffic.route(&r.app, &r.backend))));
    lines.extend(traffic_sparklines(t, app.traffic.route_history(&r.app, &r.backend), width));
    (format!("Route {} -> {}", r.domain, r.backend), lines)
}

fn event(app: &FrameContext) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(e) = app.selected_event() else { return ("Event".into(), vec![]) };
    let lines = vec![
        kv(t, "revision", e.rev.to_string()),
        kv(t, "time", datetime(e.ts)),
        kv(t, "kind", e.kind.as_str()),
        kv(t, "app", e.app.clone().unwrap_or_default()),
        kv(t, "host", e.host.clone().unwrap_or_default()),
        kv(t, "instance", e.instance.clone().unwrap_or_default()),
        kv(t, "operation", e.operation_id.clone().unwrap_or_default()),
        kv(t, "message", e.message.clone()),
        kv(t, "changes", e.changes.len().to_string()),
    ];
    let mut lines = lines;
    // The operation's progress, step by step, as its events built it.
    if let Some(op) = e.operation_id.as_ref().and_then(|id| app.replica.fleet.operations.get(id)) {
        let state = match (op.state, &op.error) {
            (crate::protocol::OperationState::Failed, Some(err)) => format!("failed: {err}"),
            (s, _) => format!("{s:?}").to_lowercase(),
        };
        lines.push(kv(t, "operation", format!("{} {}: {state}", op.id, op.target)));
        let steps = crate::app::facts::operation_steps(&app.replica, op);
        if let (None, Some(counts)) = (&steps, op.compacted) {
            lines.push(kv(t, "steps", crate::app::facts::compacted_note(counts)));
        }
        for step in steps.iter().flat_map(|s| s.iter()) {
            let took = step
                .finished_at
                .map(|f| format!("{:.1}s", f.saturating_sub(step.started_at) as f64 / 1000.0));
            let mark = match step.state {
                crate::protocol::StepState::Done => ("✓", t.ok),
                crate::protocol::StepState::Running => ("…", t.warn),
                crate::protocol::StepState::Failed => ("✕", t.bad),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("   {} ", mark.0), mark.1),
                Span::styled(format!("{:<36}", step.name.as_str()), t.text),
                Span::styled(
                    format!(
                        "{:<22} {:>6} {}",
                        step.instance.clone().unwrap_or_default(),
                        took.unwrap_or_default(),
                        step.detail
                    ),
                    t.muted,
                ),
            ]));
        }
    }
    (format!("Event {}", e.rev), lines)
}

fn audit(app: &FrameContext) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(e) = app.selected_audit() else { return ("Audit".into(), vec![]) };
    let Some(a) = e.audit.as_deref() else {
        return ("Audit".into(), vec![kv(t, "message", e.message.clone())]);
    };
    let op = a.operator.clone().unwrap_or_default();
    let mut lines = vec![
        kv(t, "time", datetime(e.ts)),
        kv(t, "command", a.what()),
        kv(t, "verb", a.verb.clone()),
        kv(t, "command id", a.command_id.clone()),
        kv(t, "source", a.source.clone()),
        kv(t, "user", a.by.clone().unwrap_or_else(|| "-".into())),
        kv(t, "login", if op.user.is_empty() { "-".into() } else { op.user.clone() }),
        kv(t, "ssh client", op.ssh_client.clone().unwrap_or_else(|| "-".into())),
        kv(t, "nats user", op.nats_user.clone().unwrap_or_else(|| "-".into())),
    ];
    let (verdict, result) = a.conclusion(super::audit::operation_end(app, a).as_ref());
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<14}", "result"), t.muted),
        Span::styled(format!("{} {result}", verdict.mark()), super::audit::verdict_style(t, verdict)),
    ]));
    lines.push(kv(t, "request", serde_json::to_string(&a.request).unwrap_or_default()));
    lines.push(kv(t, "revision", e.rev.to_string()));
    (format!("Audit {}", a.command_id), lines)
}

/// Enter on the Alerts panel jumps to the subject; this pane is what a click could open.
fn alert(app: &FrameContext) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(a) = app.selected_alert() else { return ("Alert".into(), vec![]) };
    let causes: Vec<String> = a.causes.iter().map(u64::to_string).collect();
    let lines = vec![
        kv(t, "state", a.state.as_str()),
        kv(t, "rule", a.rule.as_str()),
        kv(t, "subject", a.subject.to_string()),
        kv(t, "since", datetime(a.since)),
        kv(t, "acknowledged", a.acked_by.clone().unwrap_or_else(|| "-".into())),
        kv(t, "summary", a.summary.clone()),
        kv(t, "caused by revs", if causes.is_empty() { "-".into() } else { causes.join(", ") }),
    ];
    (format!("Alert {}", a.id), lines)
}

fn app_detail(app: &FrameContext, width: usize, height: u16) -> (String, Vec<Line<'static>>) {
    let t = &app.theme;
    let Some(a) = app.selected_app() else { return ("App".into(), vec![]) };
    let f = &app.replica.fleet;
    let running =
        f.instances_of(&a.name).filter(|i| i.state == crate::protocol::InstanceState::Running).count();
    let mut lines = vec![
        kv(t, "version", a.version.clone()),
        kv(t, "instances", format!("{running} running of {} desired", a.instances)),
        kv(t, "image", format!("{} port {}", a.image, a.port)),
        kv(t, "domain", a.domain.clone()),
        kv(t, "tags", a.tags.join(", ")),
        kv(
            t,
            "placement",
            format!(
                "{:.2} cores, {} MB; az {}; host tags {}",
                a.constraints.cpu,
                a.constraints.memory_mb,
                if a.constraints.azs.is_empty() { "any".into() } else { a.constraints.azs.join(",") },
                if a.constraints.tags.is_empty() { "any".into() } else { a.constraints.tags.join(",") }
            ),
        ),
    ];
    // Versions actually running, against the desired one.
    let mut versions: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for i in f.instances_of(&a.name) {
        *versions.entry(i.version.as_str()).or_default() += 1;
    }
    let versions: Vec<String> = versions
        .iter()
        .map(|(v, n)| format!("{v} x{n}{}", if *v == a.version { "" } else { " (not desired)" }))
        .collect();
    lines.push(kv(t, "versions", if versions.is_empty() { "-".into() } else { versions.join(", ") }));
    if let Some(why) = &a.shortfall {
        lines.push(kv(t, "short", format!("⚠ {why}")));
    }
    lines.extend(env_lines(t, &a.run));
    // Before the sparklines and lists, so a small screen cuts those, not the releases.
    lines.extend(super::releases::lines(app, width, height));
    // The app's instances summed, with its deploys, restarts and crashes on the time axis.
    let histories: Vec<&History> =
        f.instances_of(&a.name).filter_map(|i| app.replica.instance_history.get(&i.id)).collect();
    let events: Vec<&Event> =
        app.replica.events.iter().filter(|e| e.app.as_deref() == Some(&a.name)).collect();
    lines.extend(sparklines(t, &histories, &events, width));
    // Only where routers read traffic: a plane without it keeps the line for the lists.
    if app.routers.values().any(|(st, _)| st.traffic.is_some()) {
        lines.push(kv(t, "traffic", traffic_now(app.traffic.app(&a.name))));
    }
    lines.extend(traffic_sparklines(t, app.traffic.app_history(&a.name), width));
    lines.push(Line::from(Span::styled(" instances", t.muted)));
    for i in f.instances_of(&a.name) {
        lines.push(Line::from(format!(
            "   {:<24} {:<8} {:<10} {:<8} {}",
            i.id,
            i.version,
            i.state.as_str(),
            i.host,
            i.endpoint
        )));
    }
    lines.push(Line::from(Span::styled(" routes", t.muted)));
    for r in f.routes.values().filter(|r| r.app == a.name) {
        lines.push(Line::from(format!("   {:<20} {:<10} weight {}", r.backend, r.state.as_str(), r.weight)));
    }
    (format!("App {}", a.name), lines)
}

/// An app's env variables with their values, and its secrets by name, version and sha8:
/// a secret's value never reaches the cockpit. Control characters are shown escaped.
fn env_lines(t: &Theme, run: &crate::protocol::RunSpec) -> Vec<Line<'static>> {
    let shown = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
            .collect()
    };
    let key = |first: bool, name: &str| if first { name.to_string() } else { String::new() };
    let env =
        run.env.iter().enumerate().map(|(n, (k, v))| kv(t, &key(n == 0, "env"), format!("{k}={}", shown(v))));
    let secrets =
        run.secrets.iter().enumerate().map(|(n, (k, r))| {
            kv(t, &key(n == 0, "secrets"), format!("{k}  v{}  sha8 {}", r.version, r.sha8))
        });
    env.chain(secrets).collect()
}

/// `docker` from `0.1.0/docker`.
fn driver_of(agent_version: &str) -> &str {
    agent_version.rsplit('/').next().unwrap_or(agent_version)
}

// -- sparklines and event markers ------------------------------------------------------

/// The label column of the detail panes (` key` padded), which sparklines line up with.
const LABEL: usize = 15;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// An event that shows on a time axis, by how much it matters: a crash outranks a
/// restart, which outranks a deploy, when two fall on one column.
fn marker(kind: EventKind) -> Option<(u8, char)> {
    match kind {
        EventKind::InstanceCrashed | EventKind::HostLost => Some((3, '✕')),
        EventKind::Restart => Some((2, '↻')),
        EventKind::InstanceDeployed => Some((1, '▲')),
        _ => None,
    }
}

/// Columns of equal time, ending at the newest sample.
#[derive(Debug, Clone, Copy)]
struct Grid {
    end: u64,
    step: u64,
    cols: usize,
}

/// A sample on a time axis: a heartbeat's metrics, or a router status's traffic.
trait Timed {
    fn ts(&self) -> u64;
}

impl Timed for Sample {
    fn ts(&self) -> u64 {
        self.ts
    }
}

impl Timed for TrafficSample {
    fn ts(&self) -> u64 {
        self.ts
    }
}

impl Grid {
    /// From the histories' spacing (a heartbeat or status period); `None` without any
    /// sample.
    fn of<T: Timed>(histories: &[&VecDeque<T>], cols: usize) -> Option<Grid> {
        let end = histories.iter().filter_map(|h| h.back()).map(Timed::ts).max()?;
        let step = histories
            .iter()
            .filter(|h| h.len() >= 2)
            .map(|h| {
                let (a, b) = (h.front().map_or(0, Timed::ts), h.back().map_or(0, Timed::ts));
                b.saturating_sub(a) / (h.len() as u64 - 1)
            })
            .max()
            .filter(|s| *s > 0)
            .unwrap_or(2_000)
            .max(100);
        Some(Grid { end, step, cols: cols.max(1) })
    }

    fn start(&self) -> u64 {
        self.end.saturating_sub(self.step * self.cols as u64)
    }

    /// The column a time falls in: sample `k` stands for the interval that ends at it.
    fn column(&self, ts: u64) -> Option<usize> {
        if ts > self.end + self.step || ts <= self.start() {
            return None;
        }
        // `end - ts` in [m*step, (m+1)*step) is the interval ending at the m-th sample
        // before the newest.
        let back = self.end.saturating_sub(ts) / self.step;
        self.cols.checked_sub(1 + back as usize)
    }
}

/// The per-column value of the histories (summed across them; the last sample of a column
/// wins within one history).
fn columns<T: Timed>(grid: &Grid, histories: &[&VecDeque<T>], value: impl Fn(&T) -> f32) -> Vec<Option<f32>> {
    let mut out = vec![None; grid.cols];
    for h in histories {
        let mut mine: Vec<Option<f32>> = vec![None; grid.cols];
        for s in h.iter() {
            if let Some(c) = grid.column(s.ts()) {
                mine[c] = Some(value(s));
            }
        }
        // Heartbeats jitter: a column that got no sample between two that did holds the
        // value before it, rather than showing a hole.
        let first = mine.iter().position(Option::is_some).unwrap_or(grid.cols);
        for c in first + 1..grid.cols {
            if mine[c].is_none() {
                mine[c] = mine[c - 1];
            }
        }
        for (o, m) in out.iter_mut().zip(mine) {
            if let Some(v) = m {
                *o = Some(o.unwrap_or(0.0) + v);
            }
        }
    }
    out
}

fn bars(values: &[Option<f32>], max: f32) -> String {
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(v) => BARS[((v / max.max(1.0)).clamp(0.0, 1.0) * 7.0).round() as usize],
        })
        .collect()
}

/// Sparklines of CPU and memory over the histories, and under them a row of markers for
/// the events, each in the column of the heartbeat interval it happened in, so that a CPU
/// spike that began at a deploy shows under the ▲.
fn sparklines(t: &Theme, histories: &[&History], events: &[&Event], width: usize) -> Vec<Line<'static>> {
    // As many columns as there are samples, up to the width: the axis spans the data.
    let samples = histories.iter().map(|h| h.len()).max().unwrap_or(0);
    let cols = width.saturating_sub(LABEL + 12).min(crate::backend::METRICS_KEPT).min(samples.max(8));
    let Some(grid) = Grid::of(histories, cols).filter(|_| cols >= 8) else {
        return vec![kv(t, "metrics", "no heartbeat samples yet")];
    };
    let mut lines = Vec::new();
    for (name, values) in [
        ("cpu trend", columns(&grid, histories, |s| s.cpu_pct)),
        ("memory trend", columns(&grid, histories, |s| s.mem_pct)),
    ] {
        let now = values.iter().rev().flatten().next().copied().unwrap_or(0.0);
        let peak = values.iter().flatten().copied().fold(0.0_f32, f32::max);
        lines.push(Line::from(vec![
            Span::styled(format!(" {name:<width$}", width = LABEL - 1), t.muted),
            Span::styled(bars(&values, peak.max(100.0)), t.accent),
            Span::styled(format!(" {now:>3.0}% ^{peak:.0}%"), t.text),
        ]));
    }
    let mut row: Vec<(u8, char)> = vec![(0, ' '); grid.cols];
    for e in events {
        if let (Some(m), Some(c)) = (marker(e.kind), grid.column(e.ts))
            && m.0 > row[c].0
        {
            row[c] = m;
        }
    }
    let glyphs: String = row.iter().map(|m| m.1).collect();
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<width$}", "events", width = LABEL - 1), t.muted),
        Span::styled(glyphs, t.warn),
    ]));
    let span_s = grid.step * grid.cols as u64 / 1000;
    let left = format!("-{}", crate::protocol::clock::age(span_s * 1000));
    lines.push(Line::from(vec![
        Span::raw(" ".repeat(LABEL)),
        Span::styled(format!("{left:<w$}now", w = grid.cols.saturating_sub(3)), t.muted),
    ]));
    lines.push(Line::from(vec![
        Span::raw(" ".repeat(LABEL)),
        Span::styled("▲ deploy  ↻ restart  ✕ crash", t.muted),
    ]));
    lines
}

/// A route's or app's traffic now, in words: unknown while no router's is fresh.
fn traffic_now(rates: Option<Rates>) -> String {
    let Some(r) = rates else { return "unknown: no router has reported fresh traffic".into() };
    if r.requests == 0 {
        return "no requests".into();
    }
    let lat = |us: Option<u64>| us.map_or("-".into(), latency_label);
    format!(
        "{} rps · {} 5xx · p50 {} · p99 {}",
        rps_label(r.rps),
        r.pct_5xx().map_or("-".into(), pct_5xx_label),
        lat(r.p50_us),
        lat(r.p99_us)
    )
}

/// Sparklines of requests per second, the 5xx share and p99 over the traffic history,
/// one column per status period, ending at the newest sample.
fn traffic_sparklines(t: &Theme, history: Option<&TrafficHistory>, width: usize) -> Vec<Line<'static>> {
    let histories: Vec<&TrafficHistory> = history.into_iter().collect();
    let samples = history.map_or(0, VecDeque::len);
    let cols = width.saturating_sub(LABEL + 14).min(TRAFFIC_KEPT).min(samples.max(8));
    let Some(grid) = Grid::of(&histories, cols).filter(|_| cols >= 8 && samples > 0) else {
        return vec![];
    };
    let mut lines = Vec::new();
    type Shown = fn(f32) -> String;
    let rows: [(&str, Vec<Option<f32>>, f32, Shown); 3] = [
        ("rps trend", columns(&grid, &histories, |s| s.rps), 1.0, |v| rps_label(v as f64)),
        ("5xx trend", columns(&grid, &histories, |s| s.pct_5xx), HIGH_5XX_PCT as f32 * 2.0, |v| {
            pct_5xx_label(v as f64)
        }),
        ("p99 trend", columns(&grid, &histories, |s| s.p99_ms), 1.0, |v| {
            latency_label((v.max(0.0) * 1000.0) as u64)
        }),
    ];
    for (name, values, floor, shown) in rows {
        let now = values.iter().rev().flatten().next().copied().unwrap_or(0.0);
        let peak = values.iter().flatten().copied().fold(0.0_f32, f32::max);
        let bad = name == "5xx trend" && now as f64 > HIGH_5XX_PCT;
        lines.push(Line::from(vec![
            Span::styled(format!(" {name:<width$}", width = LABEL - 1), t.muted),
            Span::styled(bars(&values, peak.max(floor)), if bad { t.bad } else { t.accent }),
            Span::styled(format!(" {} ^{}", shown(now), shown(peak)), t.text),
        ]));
    }
    let left = format!("-{}", crate::protocol::clock::age(grid.step * grid.cols as u64));
    lines.push(Line::from(vec![
        Span::raw(" ".repeat(LABEL)),
        Span::styled(format!("{left:<w$}now", w = grid.cols.saturating_sub(3)), t.muted),
    ]));
    lines
}

#[cfg(test)]
#[path = "detail_tests.rs"]
mod tests;
