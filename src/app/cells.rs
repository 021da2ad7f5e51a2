//! One row model per table: one function per panel gives a row's cells, each with the
//! text shown, the key it sorts by and the tone it is drawn in. The filter matches the
//! cells' text, the sort orders by their keys, and the views draw them: what `/changing`
//! finds is what the screen says is changing, and a column sorts by what it shows.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::facts::{AppHealth, FleetFacts};
use super::pulls::HostPulls;
use super::rows::{RowKey, event_by_rev};
pub use super::sort_key::SortKey;
use super::traffic::{Rates, TrafficBook};
use crate::actions::Panel;
use crate::backend::Replica;
use crate::protocol::clock::{age, ago_coarse, heartbeat_age, hms, uptime_coarse};
use crate::protocol::{
    Alert, AlertState, AppSpec, Event, EventKind, Host, HostSchedule, HostState, Instance, InstanceState,
    Route, RouteState, Verdict,
};

/// What a cell means, for the theme to colour: the views map each to a style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
    Text,
    Muted,
    Accent,
    Ok,
    Warn,
    Bad,
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowCell<'a> {
    pub text: Cow<'a, str>,
    pub key: SortKey<'a>,
    pub tone: Tone,
    /// Numbers line up on the right.
    pub right: bool,
}

/// A row: its cells in the order of the panel's columns, and words only the filter sees
/// (`silent`, an instance's `unknown`).
#[derive(Debug, Clone, Default)]
pub struct Row<'a> {
    pub cells: Vec<RowCell<'a>>,
    pub flags: &'static str,
}

impl Row<'_> {
    /// The text a filter matches: every cell as shown, then the flags, space-separated.
    pub fn hay(&self) -> String {
        let mut out = String::with_capacity(self.cells.iter().map(|c| c.text.len() + 1).sum::<usize>() + 8);
        for (n, c) in self.cells.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            out.push_str(&c.text);
        }
        if !self.flags.is_empty() {
            out.push(' ');
            out.push_str(self.flags);
        }
        out
    }

    /// The sort keys, one per cell, owned to be kept.
    pub fn keys(self) -> Vec<SortKey<'static>> {
        let owned = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        self.cells
            .into_iter()
            .map(|c| match c.key {
                SortKey::Shown if c.text.is_empty() || c.text == "-" => SortKey::Missing,
                SortKey::Shown => SortKey::Text(owned(c.text)),
                SortKey::Text(t) => SortKey::Text(owned(t)),
                SortKey::Version(v) => SortKey::Version(owned(v)),
                SortKey::Missing => SortKey::Missing,
                SortKey::Num(v) => SortKey::Num(v),
                SortKey::Pair(a, b) => SortKey::Pair(a, b),
            })
            .collect()
    }
}

/// What the row functions read: the replica, the facts counted from it and the clock.
#[derive(Clone, Copy)]
pub struct RowSource<'a> {
    pub replica: &'a Replica,
    pub facts: &'a FleetFacts,
    /// The routers' traffic, summed per route and app.
    pub traffic: &'a TrafficBook,
    pub now: u64,
}

fn cell<'a>(text: impl Into<Cow<'a, str>>, key: SortKey<'a>, tone: Tone) -> RowCell<'a> {
    RowCell { text: text.into(), key, tone, right: false }
}

/// A cell sorted by its text.
fn text<'a>(text: impl Into<Cow<'a, str>>, tone: Tone) -> RowCell<'a> {
    cell(text, SortKey::Shown, tone)
}

/// A number, shown on the right.
fn num<'a>(text: impl Into<Cow<'a, str>>, key: SortKey<'a>, tone: Tone) -> RowCell<'a> {
    RowCell { right: true, ..cell(text, key, tone) }
}

fn version(v: &str) -> SortKey<'_> {
    if v.is_empty() { SortKey::Missing } else { SortKey::Version(v.into()) }
}

/// The row of a panel's row key, or `None` when the key names nothing (any more).
/// `pulls` is the Hosts panel's (`pulls::by_host`), counted once by the caller.
pub fn row<'a>(
    src: RowSource<'a>,
    pulls: &BTreeMap<&str, HostPulls>,
    panel: Panel,
    key: &RowKey,
) -> Option<Row<'a>> {
    let f = &src.replica.fleet;
    match (panel, key) {
        (Panel::Hosts, RowKey::Id(id)) => {
            let h = f.hosts.get(id)?;
            Some(host_row(src, h, pulls.get(h.info.id.as_str())))
        }
        (Panel::Instances, RowKey::Id(id)) => Some(instance_row(src, f.instances.get(id)?)),
        (Panel::Routes, RowKey::Route(app, backend)) => {
            Some(route_row(src, f.routes.get(&(app.clone(), backend.clone()))?))
        }
        (Panel::Events, RowKey::Rev(rev)) => Some(event_row(event_by_rev(&src.replica.events, *rev)?)),
        (Panel::Audit, RowKey::Rev(rev)) => Some(audit_row(src, event_by_rev(&src.replica.audit, *rev)?)),
        (Panel::Apps, RowKey::Id(name)) => Some(app_row(src, f.apps.get(name)?)),
        (Panel::Alerts, RowKey::Id(id)) => {
            Some(alert_row(src, super::alerts::by_id(src.replica, id)?.as_ref()))
        }
        _ => None,
    }
}

/// `42%`: a whole percentage.
pub fn pct(v: f32) -> String {
    // Whole numbers format several times faster than floats, and a table formats a
    // percentage per row per frame; `{:.0}` rounds ties to even, as this does.
    if (0.0..1e9).contains(&v) { format!("{}%", v.round_ties_even() as u64) } else { format!("{v:.0}%") }
}

/// A byte count as people read it: `512 B`, `1.5 KB`, `12.3 MB`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// How long a source has been silent, as the cockpit shows it: whole seconds at least (a
/// silence is past 3 periods, so `850ms` would only be noise), then `age`'s units.
pub fn silence_age(ms: u64) -> String {
    age(ms.max(1_000))
}

/// A load's tone: warn from 75 %, bad from 90 %.
fn level(v: f32) -> Tone {
    if v >= 90.0 {
        Tone::Bad
    } else if v >= 75.0 {
        Tone::Warn
    } else {
        Tone::Text
    }
}

/// `● up`, `◐ stale`, `✕ lost`: a symbol and a word, never colour alone.
pub fn host_state_label(state: HostState) -> &'static str {
    match state {
        HostState::Up => "● up",
        HostState::Stale => "◐ stale",
        HostState::Lost => "✕ lost",
    }
}

/// `⊘ cordoned`, `⇄ draining 3/7`: a symbol besides the word, never colour alone.
pub fn schedule_label(schedule: HostSchedule) -> String {
    match schedule {
        HostSchedule::Open => String::new(),
        HostSchedule::Cordoned => format!("⊘ {}", schedule.label()),
        HostSchedule::Draining { .. } => format!("⇄ {}", schedule.label()),
    }
}

/// `⇣ 12.3 MB`, `⇣2 24.6 MB` for two images: the bytes fetched so far, with a symbol.
pub fn pull_label(pulls: &HostPulls) -> String {
    let size = size(pulls.bytes.done);
    match pulls.count {
        1 => format!("⇣ {size}"),
        n => format!("⇣{n} {size}"),
    }
}

pub fn host_row<'a>(src: RowSource<'_>, h: &'a Host, pulls: Option<&HostPulls>) -> Row<'a> {
    // Derived with the heartbeat's age: a silent host is never shown up.
    let (state, silent) = src.replica.host_state(h, src.now);
    let state_tone = match state {
        HostState::Up => Tone::Ok,
        HostState::Stale => Tone::Warn,
        HostState::Lost => Tone::Bad,
    };
    let state_cell = match silent {
        Some(ms) => format!("{} {}", host_state_label(state), silence_age(ms)).into(),
        None => Cow::Borrowed(host_state_label(state)),
    };
    // An operator's cordon or drain: in place of "up" (the word says it is up and takes
    // nothing), after a silent host's state.
    let (state_cell, state_tone) = match (h.schedule, state) {
        (HostSchedule::Open, _) => (state_cell, state_tone),
        (s, HostState::Up) => (Cow::Owned(schedule_label(s)), Tone::Warn),
        (s, _) => (Cow::Owned(format!("{state_cell} {}", schedule_label(s))), state_tone),
    };
    let heard = src.replica.heartbeat_age(&h.info.id, src.now);
    // A silent host's heartbeat age by the second, however short its period.
    let hb = match (silent, heard) {
        (Some(ms), _) => silence_age(ms),
        (None, Some(ms)) => heartbeat_age(ms),
        (None, None) => "-".into(),
    };
    let hb_key = heard.map_or(SortKey::Missing, |ms| SortKey::Num(ms as f64));
    let count = src.facts.instances_on(&h.info.id);
    // Containers no agent manages are counted apart and flagged.
    let count_text = match h.unmanaged.len() {
        0 => count.to_string(),
        n => format!("{count}+{n}⚠"),
    };
    let mut tags = h.info.tags.join(",");
    if !h.info.warnings.is_empty() {
        tags = format!("⚠ {tags}");
    }
    let mem = h.metrics.mem_pct();
    let cpu = h.metrics.cpu_pct;
    let pull = match pulls {
        Some(p) => num(pull_label(p), SortKey::Num(p.bytes.done as f64), Tone::Warn),
        None => num("", SortKey::Missing, Tone::Text),
    };
    Row {
        cells: vec![
            text(h.info.id.as_str(), Tone::Text),
            text(h.info.az.as_str(), Tone::Text),
            cell(h.info.ip.as_str(), ip_key(&h.info.ip), Tone::Text),
            num(pct(cpu), SortKey::Num(cpu as f64), level(cpu)),
            num(pct(mem), SortKey::Num(mem as f64), level(mem)),
            num(count_text, SortKey::Pair(count as f64, h.unmanaged.len() as f64), {
                if h.unmanaged.is_empty() { Tone::Text } else { Tone::Warn }
            }),
            num(hb, hb_key, if silent.is_some() { Tone::Warn } else { Tone::Text }),
            cell(state_cell, SortKey::Text(state.as_str().into()), state_tone),
            pull,
            text(tags, if h.info.warnings.is_empty() { Tone::Muted } else { Tone::Warn }),
        ],
        flags: if silent.is_some() { "silent" } else { "" },
    }
}

/// An IPv4 address sorts by its numbers; anything else as text.
fn ip_key(ip: &str) -> SortKey<'_> {
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(a) => SortKey::Num(u32::from(a) as f64),
        Err(_) => SortKey::Text(ip.into()),
    }
}

/// A symbol and a word for each instance state, and its tone.
pub fn instance_state_label(state: InstanceState) -> (&'static str, Tone) {
    // Whole labels, not formatted: the table shows one per row per frame.
    match state {
        InstanceState::Running => ("● running", Tone::Ok),
        InstanceState::New => ("◌ new", Tone::Warn),
        InstanceState::Deploying => ("◌ deploying", Tone::Warn),
        InstanceState::Starting => ("◌ starting", Tone::Warn),
        InstanceState::Unhealthy => ("◐ unhealthy", Tone::Warn),
        InstanceState::Crashed => ("✕ crashed", Tone::Bad),
        InstanceState::Stopped => ("○ stopped", Tone::Muted),
        InstanceState::Removed => ("○ removed", Tone::Muted),
    }
}

/// Room for `? running 40s old` in the Instances panel's STATE column.
pub const INSTANCE_STATE_WIDTH: usize = 17;

/// An instance's state: its label, or when its facts are old (its host or the controller
/// is silent) the state last known, marked unknown, with their age.
pub fn instance_state<'a>(replica: &Replica, now: u64, i: &Instance) -> (Cow<'a, str>, Tone) {
    match replica.instance_age(&i.host, now) {
        Some(ms) => {
            let text = format!("? {} {} old", i.state.as_str(), silence_age(ms));
            // A long state word keeps its age and drops the "old".
            let text = if text.chars().count() > INSTANCE_STATE_WIDTH {
                format!("? {} {}", i.state.as_str(), silence_age(ms))
            } else {
                text
            };
            (text.into(), Tone::Warn)
        }
        None => {
            let (label, tone) = instance_state_label(i.state);
            match (i.state, i.last_exit) {
                (InstanceState::Crashed, Some(exit)) => (format!("✕ {}", exit.short()).into(), tone),
                _ => (label.into(), tone),
            }
        }
    }
}

/// The routing word for an instance, and its tone: `✓` routed, `○ off` disabled,
/// `⚠ unrouted` for a running instance no route sends traffic to, `-` otherwise.
pub fn route_word(
    facts: &FleetFacts,
    app: &str,
    endpoint: &str,
    state: InstanceState,
) -> (&'static str, Tone) {
    match facts.endpoint(app, endpoint).and_then(|e| e.route) {
        Some(RouteState::Disabled) => ("○ off", Tone::Muted),
        Some(_) => ("✓", Tone::Ok),
        None if state == InstanceState::Running && !endpoint.is_empty() => ("⚠ unrouted", Tone::Warn),
        None => ("-", Tone::Muted),
    }
}

pub fn instance_row<'a>(src: RowSource<'_>, i: &'a Instance) -> Row<'a> {
    let up = match (i.state, i.started_at) {
        (InstanceState::Running | InstanceState::Unhealthy, Some(s)) => Some(s),
        _ => None,
    };
    let uptime = match up {
        Some(s) => num(uptime_coarse(s, src.now), SortKey::Num(src.now.saturating_sub(s) as f64), Tone::Text),
        None => num("-", SortKey::Missing, Tone::Text),
    };
    let mem_pct = crate::protocol::percent(i.mem_used_mb, i.mem_limit_mb);
    let (state, state_tone) = instance_state(src.replica, src.now, i);
    let old = src.replica.instance_age(&i.host, src.now).is_some();
    // Sorted by the state, not by how old the facts are.
    let state_key = if old {
        SortKey::Text(format!("? {}", i.state.as_str()).into())
    } else {
        SortKey::Text(i.state.as_str().into())
    };
    let (route, route_tone) = route_word(src.facts, &i.app, &i.endpoint, i.state);
    Row {
        cells: vec![
            text(i.app.as_str(), Tone::Text),
            cell(i.version.as_str(), version(&i.version), Tone::Text),
            num(i.index.to_string(), SortKey::Num(i.index as f64), Tone::Text),
            text(i.host.as_str(), Tone::Text),
            text(if i.endpoint.is_empty() { "-" } else { i.endpoint.as_str() }, Tone::Text),
            cell(state, state_key, state_tone),
            uptime,
            num(
                i.restarts.to_string(),
                SortKey::Num(i.restarts as f64),
                if i.restarts > 0 { Tone::Warn } else { Tone::Text },
            ),
            num(pct(i.cpu_pct), SortKey::Num(i.cpu_pct as f64), Tone::Text),
            // Sorted as shown: by the memory used, then by the limit.
            num(
                format!("{}/{}M", i.mem_used_mb, i.mem_limit_mb),
                SortKey::Pair(i.mem_used_mb as f64, i.mem_limit_mb as f64),
                level(mem_pct),
            ),
            text(route, route_tone),
            text(i.id.as_str(), Tone::Muted),
        ],
        flags: if old { "unknown" } else { "" },
    }
}

pub fn route_row<'a>(src: RowSource<'_>, r: &'a Route) -> Row<'a> {
    // Stale: the controller says so, or no running instance serves the backend now.
    let backing = src.facts.endpoint(&r.app, &r.backend);
    let stale = r.stale || !backing.is_some_and(|e| e.backed());
    let (state, tone) = match (r.state, stale) {
        (RouteState::Enabled, true) => ("◐ stale", Tone::Warn),
        (RouteState::Disabled, true) => ("○ off,stale", Tone::Muted),
        (RouteState::Enabled, false) => ("● enabled", Tone::Ok),
        (RouteState::Disabled, false) => ("○ disabled", Tone::Muted),
    };
    // The instance's state is the controller's word on its host's report: unknown, with
    // its age, when either is silent.
    let old = backing.and_then(|e| src.replica.instance_age(&e.host, src.now));
    let (inst, inst_tone, inst_key) = match backing.map(|e| e.first) {
        Some(s) if let Some(ms) = old => {
            (format!("? {} {}", s.as_str(), silence_age(ms)), Tone::Warn, format!("? {}", s.as_str()))
        }
        Some(s) if s == InstanceState::Running => {
            (s.as_str().to_string(), Tone::Text, s.as_str().to_string())
        }
        Some(s) => (format!("⚠ {}", s.as_str()), Tone::Warn, s.as_str().to_string()),
        None => ("⚠ none".to_string(), Tone::Warn, String::new()),
    };
    Row {
        cells: vec![
            text(r.app.as_str(), Tone::Text),
            text(r.domain.as_str(), Tone::Text),
            text(r.backend.as_str(), Tone::Text),
            text(state, tone),
            num(r.weight.to_string(), SortKey::Num(r.weight as f64), Tone::Text),
            cell(
                inst,
                if inst_key.is_empty() { SortKey::Missing } else { SortKey::Text(inst_key.into()) },
                inst_tone,
            ),
        ]
        .into_iter()
        .chain(traffic_cells(src.traffic.route(&r.app, &r.backend)))
        .collect(),
        flags: "",
    }
}

pub fn event_row(e: &Event) -> Row<'_> {
    let bad = e.kind.is_bad();
    let kind: Cow<'_, str> =
        if bad { format!("✕ {}", e.kind.as_str()).into() } else { e.kind.as_str().into() };
    Row {
        cells: vec![
            cell(hms(e.ts), SortKey::Num(e.ts as f64), Tone::Muted),
            num(e.rev.to_string(), SortKey::Num(e.rev as f64), Tone::Muted),
            cell(kind, SortKey::Text(e.kind.as_str().into()), if bad { Tone::Bad } else { Tone::Accent }),
            text(e.app.as_deref().unwrap_or("-"), Tone::Text),
            text(event_message(e), Tone::Text),
        ],
        flags: "",
    }
}

/// The message column: a note with who wrote it (`— alice@jump`), as the timeline names
/// them; any other event's message as it is.
fn event_message(e: &Event) -> Cow<'_, str> {
    match (e.kind, e.audit.as_deref()) {
        (EventKind::Note, Some(r)) => {
            format!("{} — {}", e.message, crate::protocol::timeline::author(r)).into()
        }
        _ => e.message.as_str().into(),
    }
}

/// A verdict's tone.
pub fn verdict_tone(verdict: Verdict) -> Tone {
    match verdict {
        Verdict::Good => Tone::Ok,
        Verdict::Bad => Tone::Bad,
        Verdict::Pending => Tone::Warn,
        Verdict::Unknown => Tone::Muted,
    }
}

pub fn audit_row<'a>(src: RowSource<'_>, e: &'a Event) -> Row<'a> {
    let time = cell(hms(e.ts), SortKey::Num(e.ts as f64), Tone::Muted);
    // Without its record (a payload this build cannot read) the message stands in for
    // the command, and the other columns are blank, not missing: a cell per column.
    let Some(a) = e.audit.as_deref() else {
        return Row {
            cells: vec![
                time,
                text("", Tone::Text),
                text("", Tone::Muted),
                text(e.message.as_str(), Tone::Text),
                text("", Tone::Text),
                text("", Tone::Muted),
            ],
            flags: "",
        };
    };
    let (verdict, result) = a.conclusion(a.operation_end(&src.replica.fleet.operations).as_ref());
    Row {
        cells: vec![
            time,
            text(a.user(), Tone::Text),
            text(a.via(), Tone::Muted),
            text(a.what(), Tone::Text),
            cell(
                format!("{} {result}", verdict.mark()),
                SortKey::Text(result.clone().into()),
                verdict_tone(verdict),
            ),
            text(a.command_id.as_str(), Tone::Muted),
        ],
        flags: "",
    }
}

/// An app's state word and tone: why it waits, or how it is.
pub fn app_state_label(
    health: AppHealth,
    waiting_for: Option<&str>,
    unknown: usize,
) -> (Cow<'static, str>, Tone) {
    match (waiting_for, health) {
        // The controller is waiting to place them: say why, not just that they are missing.
        (Some(why), _) => (format!("⚠ {why}").into(), Tone::Warn),
        (None, AppHealth::Changing) => ("◌ changing".into(), Tone::Warn),
        (None, AppHealth::Unknown) => (format!("? {unknown} unknown").into(), Tone::Warn),
        (None, AppHealth::Down) => ("✕ down".into(), Tone::Bad),
        (None, AppHealth::NoTraffic) => ("✕ no traffic".into(), Tone::Bad),
        (None, AppHealth::Degraded) => ("◐ degraded".into(), Tone::Warn),
        (None, AppHealth::Ok) => ("● ok".into(), Tone::Ok),
    }
}

pub fn app_row<'a>(src: RowSource<'_>, a: &'a AppSpec) -> Row<'a> {
    let counts = src.facts.app(&a.name);
    let st = src.facts.app_state(src.replica, a, src.now);
    // Other versions still running, e.g. during a rolling update.
    let others: Vec<&str> = counts.versions.keys().map(String::as_str).filter(|v| *v != a.version).collect();
    let shown: Cow<'a, str> = match others.as_slice() {
        [] => a.version.as_str().into(),
        o => format!("{} (+{})", a.version, o.join(",")).into(),
    };
    let traffic = src.traffic.app(&a.name);
    let (state, tone) = match super::traffic::unserved(traffic, &st) {
        // Requests arrive and nothing serves them: said before any other state, at once.
        Some(rps) => (format!("✕ no route ({} rps)", rps_label(rps)).into(), Tone::Bad),
        None => app_state_label(st.health, st.waiting_for(a), st.unknown),
    };
    let prod = a.is_prod();
    Row {
        cells: vec![
            text(a.name.as_str(), Tone::Text),
            cell(shown, version(&a.version), Tone::Text),
            num(
                format!("{}/{}", st.running, a.instances),
                SortKey::Pair(st.running as f64, a.instances as f64),
                if (st.running as u32) < a.instances { Tone::Warn } else { Tone::Text },
            ),
            text(a.image.as_str(), Tone::Muted),
            text(a.domain.as_str(), Tone::Text),
            text(a.tags.join(","), if prod { Tone::Warn } else { Tone::Muted }),
            // Serving of all: a disabled or unbacked route is not counted as one that serves.
            num(
                format!("{}/{}", st.serving, st.routes),
                SortKey::Pair(st.serving as f64, st.routes as f64),
                if st.serving == 0 && st.routes > 0 { Tone::Warn } else { Tone::Text },
            ),
        ]
        .into_iter()
        .chain(traffic_cells(traffic))
        .chain([text(state, tone)])
        .collect(),
        flags: "",
    }
}

/// `● firing`, `✓ acked alice@h1`, `○ resolved`: a symbol and a word, and the tone.
pub fn alert_state_label(a: &Alert) -> (Cow<'static, str>, Tone) {
    match a.state {
        AlertState::Firing => ("● firing".into(), Tone::Bad),
        AlertState::Acknowledged => match &a.acked_by {
            Some(who) => (format!("✓ acked {who}").into(), Tone::Warn),
            None => ("✓ acked".into(), Tone::Warn),
        },
        AlertState::Resolved => ("○ resolved".into(), Tone::Muted),
    }
}

/// An alert's row. Owned: the cockpit's own `no_controller` alert is made per lookup.
pub fn alert_row(src: RowSource<'_>, a: &Alert) -> Row<'static> {
    let (state, tone) = alert_state_label(a);
    // Ages to the minute, as uptimes: the rows change once a minute, not every second.
    let since = ago_coarse(src.now.saturating_sub(a.since));
    // A silenced subject still fires and shows; only its webhooks wait.
    let silenced = super::alerts::silenced_for(src.replica, &a.subject, src.now);
    let summary = match silenced {
        Some(ms) => format!("⊘ silenced {} · {}", ago_coarse(ms), a.summary),
        None => a.summary.clone(),
    };
    let summary_tone = if a.state == AlertState::Resolved { Tone::Muted } else { Tone::Text };
    Row {
        cells: vec![
            cell(state, SortKey::Text(a.state.as_str().into()), tone),
            text(a.rule.as_str(), Tone::Text),
            text(a.subject.to_string(), Tone::Text),
            num(since, SortKey::Num(src.now.saturating_sub(a.since) as f64), Tone::Muted),
            text(summary, summary_tone),
        ],
        flags: if silenced.is_some() { "silenced" } else { "" },
    }
}

/// `1234`, `12.5`, `0.3`, `0`: requests per second, a decimal only while it says
/// something.
pub fn rps_label(rps: f64) -> String {
    if rps >= 99.95 || rps == 0.0 { format!("{rps:.0}") } else { format!("{rps:.1}") }
}

/// `0.4%`, `12%`: a 5xx share, a decimal below 10 %.
pub fn pct_5xx_label(pct: f64) -> String {
    if pct >= 9.95 { format!("{pct:.0}%") } else { format!("{pct:.1}%") }
}

/// `850µs`, `4.2ms`, `120ms`, `1.5s`: a latency.
pub fn latency_label(us: u64) -> String {
    match us {
        u if u < 1_000 => format!("{u}µs"),
        u if u < 9_950 => format!("{:.1}ms", u as f64 / 1000.0),
        u if u < 999_500 => format!("{:.0}ms", u as f64 / 1000.0),
        u => format!("{:.1}s", u as f64 / 1_000_000.0),
    }
}

/// The RPS, 5XX% and P99 cells: `–` and dim while no router's traffic is fresh (unknown,
/// not zero), dim with no request, the 5xx share bad above `HIGH_5XX_PCT`.
fn traffic_cells(rates: Option<Rates>) -> [RowCell<'static>; 3] {
    let unknown = || num("–", SortKey::Missing, Tone::Muted);
    let Some(r) = rates else { return [unknown(), unknown(), unknown()] };
    let idle = r.requests == 0;
    let rps = num(rps_label(r.rps), SortKey::Num(r.rps), if idle { Tone::Muted } else { Tone::Text });
    let pct = match r.pct_5xx() {
        Some(p) => num(
            pct_5xx_label(p),
            SortKey::Num(p),
            if super::traffic::high_5xx(&r) { Tone::Bad } else { Tone::Text },
        ),
        None => num("-", SortKey::Missing, Tone::Muted),
    };
    let p99 = match r.p99_us {
        Some(us) if !idle => num(latency_label(us), SortKey::Num(us as f64), Tone::Text),
        _ => num("-", SortKey::Missing, Tone::Muted),
    };
    [rps, pct, p99]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::sort_key::compare;
    use std::cmp::Ordering;

    #[test]
    fn percentages_read_as_the_float_format_would() {
        for v in [
            0.0f32,
            0.4,
            0.5,
            1.5,
            2.5,
            42.49,
            42.5,
            99.5,
            100.0,
            1234.5,
            -0.3,
            -7.0,
            f32::NAN,
            f32::INFINITY,
        ] {
            assert_eq!(pct(v), format!("{v:.0}%"), "{v}");
        }
        let mut v = 0.0f32;
        while v < 200.0 {
            assert_eq!(pct(v), format!("{v:.0}%"), "{v}");
            v += 0.05;
        }
    }

    #[test]
    fn ips_sort_by_their_numbers() {
        assert_eq!(compare(&ip_key("10.0.0.9"), &ip_key("10.0.0.10")), Ordering::Less);
        assert!(matches!(ip_key("::1"), SortKey::Text(_)));
    }
}
