//! The releases part of an app's detail pane: a window of its releases (newest first,
//! `*` the current one, `>` the selected one) and the diff a rollback to the selected one
//! would make. Bounded by the screen's height, so it fits at 80x24.

use ratatui::text::{Line, Span};

use crate::app::FrameContext;
use crate::protocol::clock::age;
use crate::protocol::release::{FieldChange, ReleaseList};

/// Rows of releases and of diff shown on a small screen (under 30 rows), and on others.
const SMALL: (usize, usize) = (3, 3);
const LARGE: (usize, usize) = (6, 8);

pub fn lines(app: &FrameContext, width: usize, height: u16) -> Vec<Line<'static>> {
    let t = &app.theme;
    let (release_rows, diff_rows) = if height < 30 { SMALL } else { LARGE };
    // The detail's own keys (`app::releases::key_action`).
    let hint = "[ ] select, b rolls back".to_string();
    let head = |text: String| {
        Line::from(vec![Span::styled(format!(" {:<14}", "releases"), t.muted), Span::styled(text, t.text)])
    };
    let r = &app.releases;
    let list = match &r.list {
        None => return vec![head("asking the controller…".into())],
        Some(Err(e)) => return vec![Line::from(Span::styled(format!(" releases      ⚠ {e}"), t.warn))],
        Some(Ok(list)) if list.releases.is_empty() => return vec![head("none yet".into())],
        Some(Ok(list)) => list,
    };
    let mut out = vec![Line::from(vec![
        Span::styled(format!(" {:<14}", "releases"), t.muted),
        Span::styled(format!("{} kept; ", list.releases.len()), t.text),
        Span::styled(hint, t.muted),
    ])];
    // Newest first; the window keeps the selected one in view.
    let newest_first: Vec<_> = list.releases.iter().rev().collect();
    let at = newest_first.iter().position(|x| Some(x.number) == r.selected).unwrap_or(0);
    let start = at
        .saturating_sub(release_rows.saturating_sub(1))
        .min(newest_first.len().saturating_sub(release_rows));
    let image_width = width.saturating_sub(60).clamp(10, 40);
    for x in newest_first.iter().skip(start).take(release_rows) {
        let selected = Some(x.number) == r.selected;
        let mark = match (selected, list.current == Some(x.number)) {
            (true, true) => ">*",
            (true, false) => "> ",
            (false, true) => " *",
            (false, false) => "  ",
        };
        let text = format!(
            " {mark}{:>3}  {:<7} {:<10} {:<14} {:<10} {} x{}",
            x.number,
            age(app.now.saturating_sub(x.when)),
            cut(&x.who, 10),
            cut(&x.cause.to_string(), 14),
            cut(&x.spec.version, 10),
            cut(&x.image_short(), image_width),
            x.spec.instances
        );
        out.push(Line::from(Span::styled(text, if selected { t.selection } else { t.text })));
    }
    out.extend(diff_lines(app, list, width, diff_rows));
    out
}

/// The diff from the current release to the selected one: what a rollback changes, at most
/// `rows` fields, then how many more.
fn diff_lines(app: &FrameContext, list: &ReleaseList, width: usize, rows: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let r = &app.releases;
    let mut out = Vec::new();
    let (Some(changes), Some((selected, current))) = (r.diff(), r.pair()) else { return out };
    if changes.is_empty() {
        out.push(Line::from(Span::styled(
            format!("   release {} is the current spec", selected.number),
            t.muted,
        )));
        return out;
    }
    out.push(Line::from(Span::styled(
        format!("   diff {} → {} (what a rollback changes)", current.number, selected.number),
        t.muted,
    )));
    // Field, two values and the arrow on one line of the pane.
    let value_width = width.saturating_sub(30) / 2;
    for c in changes.iter().take(rows) {
        out.push(Line::from(vec![
            Span::styled(format!("   {:<20} ", cut(&c.field, 20)), t.muted),
            Span::styled(cut(&FieldChange::show(&c.from), value_width), t.text),
            Span::styled(" → ", t.muted),
            Span::styled(cut(&FieldChange::show(&c.to), value_width), t.text),
        ]));
    }
    if changes.len() > rows {
        out.push(Line::from(Span::styled(
            format!(
                "   … {} more (ctl diff {} {} {})",
                changes.len() - rows,
                list.app,
                current.number,
                selected.number
            ),
            t.muted,
        )));
    }
    out
}

/// `s` in at most `n` cells, the cut marked with `…` (the tables' rule).
fn cut(s: &str, n: usize) -> String {
    super::table::cut(s, u16::try_from(n).unwrap_or(u16::MAX)).into_owned()
}

#[cfg(test)]
#[path = "releases_tests.rs"]
mod tests;
