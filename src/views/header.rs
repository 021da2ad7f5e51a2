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
    let f = &app.replica.fleet;
    let sep = Span::styled(" │ ", t.header);
    let silent_controller = app.replica.controller_silence(app.now);
    let (badge, badge_style): (String, Style) = match (app.link, app.replica.sync) {
        (Link::Reconnecting { since }, _) => {
            (format!("✕ reconnecting for {}", age(app.now.saturating_sub(since))), t.bad)
        }
        (_, _) if let Some(ms) = silent_controller => {
            (format!("✕ no controller for {}", super::silence_age(ms)), t.bad)
        }
        (_, Sync::Loading) => ("◌ loading".into(), t.warn),
        (_, Sync::Resyncing) => ("↻ resyncing".into(), t.warn),
        (_, Sync::Live) => ("● live".into(), t.ok),
    };
    let bg = t.header.bg.map(|c| Style::default().bg(c)).unwrap_or_default();
    // Late, not lossy: a flood the cockpit cannot keep pace with is said in words, and
    // nothing is said once it has caught up.
    let lag = app.replica.lag().map(|n| {
        let n = crate::protocol::audit::thousands(n);
        (format!(", behind {n} events"), format!(" -{n}"))
    });
    // Counted once per change of the fleet's structure, not per frame.
    let facts = app.facts();
    // What is unknown (a silent host, a silent controller) is not counted as healthy, and
    // is said apart.
    let totals = facts.totals(&app.replica, app.now);
    let (up, running, desired) = (totals.hosts_up, totals.running, facts.desired);
    // Long: ` (2 unknown)`; short: ` ?2`.
    let unknown = |n: usize, word: &str| {
        if n > 0 { (format!(" ({n} {word})"), format!(" ?{n}")) } else { (String::new(), String::new()) }
    };
    let (hosts_unknown, hosts_q) = unknown(totals.hosts_silent, "silent");
    let (inst_unknown, inst_q) = unknown(totals.running_unknown, "unknown");
    let (routes_unknown, routes_q) = unknown(totals.serving_unknown, "unknown");
    let data = match app.data_age() {
        Some(ms) if ms > OLD_DATA_MS => Span::styled(format!("⚠ data {} old", age(ms)), t.warn.patch(bg)),
        // Fresh data says so in one word, so the header is not repainted every second.
        Some(_) => Span::styled(format!("data <{}s", OLD_DATA_MS / 1000), t.header),
        None => Span::styled("no data yet", t.header),
    };
    let hosts_style = if up < f.hosts.len() { t.warn } else { t.header };
    let inst_style = if (running as u64) < desired { t.warn } else { t.header };
    let routes_style = if totals.serving < f.routes.len() { t.warn } else { t.header };
    // Long labels when they fit, short ones on narrow terminals.
    let segments = |short: bool| -> Vec<Span<'static>> {
        let pick = |long: String, brief: String| if short { brief } else { long };
        vec![
            Span::styled(
                pick(" Quarterdeck".into(), " QD".into()),
                t.header.add_modifier(ratatui::style::Modifier::BOLD),
            ),
            sep.clone(),
            Span::styled(app.bus_label.clone(), t.header),
            Span::styled(" ", t.header),
            Span::styled(badge.clone(), badge_style.patch(bg)),
            Span::styled(
                lag.as_ref().map(|(long, brief)| pick(long.clone(), brief.clone())).unwrap_or_default(),
                t.warn.patch(bg),
            ),
            sep.clone(),
            Span::styled(format!("rev {}", f.revision), t.header),
            sep.clone(),
            Span::styled(
                pick(
                    format!("hosts {up}/{} up{hosts_unknown}", f.hosts.len()),
                    format!("hosts {up}/{}{hosts_q}", f.hosts.len()),
                ),
                hosts_style.patch(bg),
            ),
            sep.clone(),
            Span::styled(
                pick(
                    format!("instances {running}/{desired} running{inst_unknown}"),
                    format!("inst {running}/{desired}{inst_q}"),
                ),
                inst_style.patch(bg),
            ),
            sep.clone(),
            Span::styled(
                pick(
                    format!("routes {}/{} serving{routes_unknown}", totals.serving, f.routes.len()),
                    format!("rt {}/{}{routes_q}", totals.serving, f.routes.len()),
                ),
                routes_style.patch(bg),
            ),
            sep.clone(),
            data.clone(),
        ]
    };
    // Read-only is said first, in words, whatever the width.
    let badge_ro = app.read_only.then(|| {
        Span::styled(
            " READ-ONLY ",
            t.warn.add_modifier(ratatui::style::Modifier::REVERSED | ratatui::style::Modifier::BOLD),
        )
    });
    let segments = |short: bool| -> Vec<Span<'static>> {
        let mut out = segments(short);
        if let Some(b) = &badge_ro {
            out.insert(1, Span::styled(" ", t.header));
            out.insert(2, b.clone());
        }
        out
    };
    let long = segments(false);
    let fits = long.iter().map(|s| s.width()).sum::<usize>() <= area.width as usize;
    let line = Line::from(if fits { long } else { segments(true) });
    super::text::put_line(frame.buffer_mut(), area, &line, t.header);
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
