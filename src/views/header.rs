//! The header line (connection, revision, fleet totals, data age) and the panel tabs.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::actions::Panel;
use crate::app::{FrameContext, Link};
use crate::backend::Sync;
use crate::protocol::clock::age;

/// Data older than this is flagged, with its age, whatever the connection says.
const OLD_DATA_MS: u64 = 10_000;

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let sep = Span::styled(" │ ", t.header);
    let groups = groups(app);
    // Long labels when they fit, short ones on narrow terminals.
    let spans = |short: bool| -> Vec<Span<'static>> {
        let mut out = Vec::new();
        for (n, group) in groups.iter().enumerate() {
            if n > 0 {
                out.push(sep.clone());
            }
            out.extend(group.iter().map(|p| Span::styled(p.pick(short).to_string(), p.style)));
        }
        out
    };
    let long = spans(false);
    let fits = long.iter().map(|s| s.width()).sum::<usize>() <= area.width as usize;
    let line = Line::from(if fits { long } else { spans(true) });
    super::text::put_line(frame.buffer_mut(), area, &line, t.header);
}

/// One piece of the header: its text on a wide and on a narrow terminal, and its style.
struct Part {
    long: String,
    short: String,
    style: Style,
}

impl Part {
    fn new(long: String, short: String, style: Style) -> Part {
        Part { long, short, style }
    }

    fn same(text: impl Into<String>, style: Style) -> Part {
        let text = text.into();
        Part { short: text.clone(), long: text, style }
    }

    fn pick(&self, short: bool) -> &str {
        if short { &self.short } else { &self.long }
    }
}

/// The header's groups, drawn apart by a separator: the name (and read-only), the link,
/// the revision, hosts, instances, routes, and the data's age.
fn groups(app: &FrameContext) -> Vec<Vec<Part>> {
    let t = &app.theme;
    let f = &app.replica.fleet;
    let bg = t.header.bg.map(|c| Style::default().bg(c)).unwrap_or_default();
    let bold = t.header.add_modifier(ratatui::style::Modifier::BOLD);
    let mut name = vec![Part::new(" Quarterdeck".into(), " QD".into(), bold)];
    // Read-only is said first, in words, whatever the width.
    if app.read_only {
        let reversed = ratatui::style::Modifier::REVERSED | ratatui::style::Modifier::BOLD;
        name.push(Part::same(" ", t.header));
        name.push(Part::same(" READ-ONLY ", t.warn.add_modifier(reversed)));
    }
    let (badge, badge_style) = link_badge(app);
    // Late, not lossy: a flood the cockpit cannot keep pace with is said in words, and
    // nothing is said once it has caught up.
    let lag = app.replica.lag().map(crate::protocol::audit::thousands).map_or_else(
        || Part::same("", t.warn.patch(bg)),
        |n| Part::new(format!(", behind {n} events"), format!(" -{n}"), t.warn.patch(bg)),
    );
    let mut link = plane(app);
    link.extend([Part::same(" ", t.header), Part::same(badge, badge_style.patch(bg)), lag]);
    // Counted once per change of the fleet's structure, not per frame. What is unknown (a
    // silent host, a silent controller) is not counted as healthy, and is said apart.
    let facts = app.facts();
    let totals = facts.totals(&app.replica, app.now);
    let (up, running, desired) = (totals.hosts_up, totals.running, facts.desired);
    // Long: ` (2 unknown)`; short: ` ?2`.
    let unknown = |n: usize, word: &str| {
        if n > 0 { (format!(" ({n} {word})"), format!(" ?{n}")) } else { (String::new(), String::new()) }
    };
    let (hosts_unknown, hosts_q) = unknown(totals.hosts_silent, "silent");
    let (inst_unknown, inst_q) = unknown(totals.running_unknown, "unknown");
    let (routes_unknown, routes_q) = unknown(totals.serving_unknown, "unknown");
    let short_of = |short: bool| if short { t.warn.patch(bg) } else { t.header.patch(bg) };
    let hosts = Part::new(
        format!("hosts {up}/{} up{hosts_unknown}", f.hosts.len()),
        format!("hosts {up}/{}{hosts_q}", f.hosts.len()),
        short_of(up < f.hosts.len()),
    );
    let instances = Part::new(
        format!("instances {running}/{desired} running{inst_unknown}"),
        format!("inst {running}/{desired}{inst_q}"),
        short_of((running as u64) < desired),
    );
    let routes = Part::new(
        format!("routes {}/{} serving{routes_unknown}", totals.serving, f.routes.len()),
        format!("rt {}/{}{routes_q}", totals.serving, f.routes.len()),
        short_of(totals.serving < f.routes.len()),
    );
    // Apps that take requests with no serving route, in the Apps panel's word for them
    // (`✕ no route`): said in red beside the routes.
    let unserved = crate::app::traffic::unserved_apps(&app.traffic, &app.replica, facts, app.now);
    let unserved = match unserved {
        0 => Part::same("", t.header),
        n => Part::new(format!(", ✕ {n} no route"), format!(" ✕{n}"), t.bad.patch(bg)),
    };
    let data = match app.data_age() {
        Some(ms) if ms > OLD_DATA_MS => Part::same(format!("⚠ data {} old", age(ms)), t.warn.patch(bg)),
        // Fresh data says so in one word, so the header is not repainted every second.
        Some(_) => Part::same(format!("data <{}s", OLD_DATA_MS / 1000), t.header),
        None => Part::same("no data yet", t.header),
    };
    let rev = Part::same(format!("rev {}", f.revision), t.header);
    let mut out = vec![name, link];
    out.extend(alert_count(app, bg));
    out.extend([vec![rev], vec![hosts], vec![instances], vec![routes, unserved], vec![data]]);
    out
}

/// The active alerts (firing and acknowledged), early in the line so that 80 columns
/// show it: red while any fires, dim when all are owned, nothing when there are none.
/// With a silent controller they are the alerts as last heard, beside the link's word.
fn alert_count(app: &FrameContext, bg: Style) -> Option<Vec<Part>> {
    let t = &app.theme;
    let active = crate::app::alerts::active(&app.replica);
    let n = active.firing + active.acknowledged;
    let word = if n == 1 { "alert" } else { "alerts" };
    let part = match (active.firing, n) {
        (_, 0) => return None,
        (0, n) => Part::new(format!("✓ {n} {word} acked"), format!("✓{n}"), t.muted.patch(bg)),
        // `●` is the Alerts panel's mark for firing.
        (firing, n) if firing == n => {
            Part::new(format!("● {n} {word}"), format!("●{n}"), bold(t.bad.patch(bg)))
        }
        (firing, n) => {
            Part::new(format!("● {n} {word} ({} acked)", n - firing), format!("●{n}"), bold(t.bad.patch(bg)))
        }
    };
    Some(vec![part])
}

fn bold(style: Style) -> Style {
    style.add_modifier(ratatui::style::Modifier::BOLD)
}

/// The plane's name (the context's, `sandbox`, or a bare URL's host) in the context's
/// colour, and a production plane marked in words, whatever the width or the colours.
fn plane(app: &FrameContext) -> Vec<Part> {
    let t = &app.theme;
    let bold = ratatui::style::Modifier::BOLD;
    let name = match app.plane_colour {
        Some(c) => t.header.fg(c).add_modifier(bold),
        None => t.header.add_modifier(bold),
    };
    let mut parts = vec![Part::same(app.bus_label.clone(), name)];
    if app.production {
        let marker = t.bad.add_modifier(ratatui::style::Modifier::REVERSED | bold);
        parts.push(Part::same(" ", t.header));
        parts.push(Part::new(" ⚠ PRODUCTION ".into(), " ⚠ PROD ".into(), marker));
    }
    parts
}

/// The link's state in a word, worst first: reconnecting, no controller, loading,
/// resyncing, live.
fn link_badge(app: &FrameContext) -> (String, Style) {
    let t = &app.theme;
    let silent_controller = app.replica.controller_silence(app.now);
    match (app.link, app.replica.sync) {
        (Link::Reconnecting { since }, _) => {
            (format!("✕ reconnecting for {}", age(app.now.saturating_sub(since))), t.bad)
        }
        (_, _) if let Some(ms) = silent_controller => {
            (format!("✕ no controller for {}", super::silence_age(ms)), t.bad)
        }
        (_, Sync::Loading) => ("◌ loading".into(), t.warn),
        (_, Sync::Resyncing) => ("↻ resyncing".into(), t.warn),
        (_, Sync::Live) => ("● live".into(), t.ok),
    }
}

/// The tabs' labels and where each starts on the tabs row.
fn tab_positions() -> impl Iterator<Item = (Panel, u16, String)> {
    let mut x = 1u16;
    Panel::ALL.iter().enumerate().map(move |(n, panel)| {
        let label = format!(" {} {} ", n + 1, panel.title());
        let at = x;
        x += label.chars().count() as u16 + 1;
        (*panel, at, label)
    })
}

/// Draws the tabs and returns the columns each was drawn at (relative to the screen), so a
/// click is read back from what was drawn.
pub fn render_tabs(app: &FrameContext, frame: &mut Frame, area: Rect) -> Vec<(Panel, std::ops::Range<u16>)> {
    let t = &app.theme;
    let mut spans = vec![Span::raw(" ")];
    let mut drawn = Vec::with_capacity(Panel::ALL.len());
    for (panel, at, label) in tab_positions() {
        let style = if panel == app.panel {
            t.selection.add_modifier(ratatui::style::Modifier::BOLD)
        } else {
            t.muted
        };
        let from = area.x.saturating_add(at);
        drawn.push((panel, from..from.saturating_add(label.chars().count() as u16)));
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    super::text::put_line(frame.buffer_mut(), area, &Line::from(spans), Style::default());
    drawn
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
