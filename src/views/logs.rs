//! The logs view (`l`): the instance's lines (or, merged, every instance's of an app,
//! each prefixed by its instance's word `#3` in its colour), newest at the bottom while
//! following, with the search's matches highlighted (and the current one marked), and
//! the state of the stream in the title. A long line wraps under its text, so nothing of it is lost off
//! the right edge. Builds lines for the visible window only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::FrameContext;
use crate::app::logs::{LOG_LINES_KEPT, LogState, LogView, find_ci};
use crate::protocol::LogSource;
use crate::protocol::clock::hms;
use crate::theme::Theme;

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.logs else { return };
    let t = &app.theme;
    frame.render_widget(Clear, area);
    let rows = area.height.saturating_sub(2) as usize;
    // Gutter (1), time (9) and, merged, the instance's word come before the text; wrapped
    // rows are indented under it.
    let width = view.prefix_width();
    let head = GUTTER + if width > 0 { width + 1 } else { 0 };
    let text_width = (area.width as usize).saturating_sub(2 + head).max(10);
    let shown = shown_lines(view, rows, text_width);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(super::text::ellipsized(title(view, t, &shown), area.width.saturating_sub(2) as usize))
        .title_bottom(keys(view, t, app.keymap.keys_for(crate::actions::Action::Back)).right_aligned());
    let lines: Vec<Line> = shown
        .iter()
        .flat_map(|&i| line_rows(view, t, i, Columns { width, head, text_width }))
        .take(rows)
        .collect();
    let body = Paragraph::new(lines).block(block);
    frame.render_widget(body, area);
    if shown.is_empty() {
        let msg = Rect { x: area.x + 2, y: area.y + 1, width: area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Span::styled(empty_message(view), t.muted), msg);
    }
    if let Some(typed) = &view.typing {
        let y = area.y + area.height.saturating_sub(1);
        let prompt = Rect { x: area.x + 1, y, width: area.width.saturating_sub(2), height: 1 };
        frame.render_widget(Clear, prompt);
        frame.render_widget(
            Line::from(vec![Span::styled("/", t.accent), Span::styled(format!("{typed}▏"), t.text)]),
            prompt,
        );
    }
}

/// The indexes of the lines that fit whole in `rows` rows of `text_width`: the last ones
/// while following, else from the first shown (moved down to the current match if long
/// lines above it would push it out).
fn shown_lines(view: &LogView, rows: usize, text_width: usize) -> Vec<usize> {
    let height = |i: usize| view.lines[i].text.chars().count().div_ceil(text_width).max(1);
    // The last shown lines that fit whole: where following starts, and as far down as
    // paging goes.
    let (mut tail, mut used) = (view.lines.len(), 0);
    while let Some(p) = view.prev_shown(tail).filter(|&p| used + height(p) <= rows) {
        used += height(p);
        tail = p;
    }
    let start = if view.follow { tail } else { view.first_shown(rows).min(tail) };
    let fill = |start: usize| {
        let (mut shown, mut used) = (Vec::new(), 0);
        let mut at = view.next_shown(start);
        while let Some(i) = at.filter(|_| used < rows) {
            used += height(i);
            shown.push(i);
            at = view.next_shown(i + 1);
        }
        // A last line that does not fit whole is cut: it is not counted as shown.
        if used > rows && shown.len() > 1 {
            shown.pop();
        }
        shown
    };
    let shown = fill(start);
    // Long lines above the current match can push it out of the window: start at it then.
    match view.current.filter(|&c| shown.last().is_none_or(|&l| c > l)) {
        Some(c) => fill(c),
        None => shown,
    }
}

/// Where a line's parts go: the instance word's `width`, the `head` before the text, and
/// the text's width.
#[derive(Clone, Copy)]
struct Columns {
    width: usize,
    head: usize,
    text_width: usize,
}

/// The rows of line `i`: gutter, time, instance word and text on the first, the rest of
/// the text wrapped under it.
fn line_rows<'a>(view: &'a LogView, t: &'a Theme, i: usize, at: Columns) -> impl Iterator<Item = Line<'a>> {
    let Columns { width, head, text_width } = at;
    let highlight = t.warn.add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let l = &view.lines[i];
    let current = view.current == Some(i);
    let gutter = match (current, l.source) {
        (true, _) => Span::styled("▶", t.accent),
        (false, LogSource::Stderr) => Span::styled("!", t.bad),
        (false, LogSource::Stdout) => Span::raw(" "),
    };
    let ts = if l.ts > 0 { hms(l.ts) } else { "--:--:--".into() };
    let prefix = view.prefix(l.feed).map(|word| {
        let index = view.feeds.get(l.feed).map_or(0, |f| f.index as usize);
        Span::styled(format!("{word:<width$} "), t.series(index))
    });
    let text_style = if l.source == LogSource::Stderr { t.bad } else { t.text };
    let text = highlighted(&l.text, view.search.as_deref(), text_style, highlight);
    wrapped(text, text_width).into_iter().enumerate().map(move |(k, mut row)| {
        let start = match k {
            0 => [gutter.clone(), Span::styled(format!("{ts} "), t.muted)]
                .into_iter()
                .chain(prefix.clone())
                .collect(),
            _ => vec![Span::raw(" ".repeat(head))],
        };
        row.splice(0..0, start);
        Line::from(row)
    })
}

/// What an empty window says: why no line is shown.
fn empty_message(view: &LogView) -> String {
    let filtered = view.only.filter(|_| !view.lines.is_empty());
    match (&view.state, &view.app, view.feeds.as_slice()) {
        _ if let Some(k) = filtered => format!("no line of #{k} in the buffer (i: the next instance)"),
        (LogState::Connecting, None, [one, ..]) => {
            format!("asking {} for the logs of {} …", one.host, one.instance)
        }
        (LogState::Connecting, Some(app), []) => {
            format!("no instance of {app} has a container yet: each joins as it starts")
        }
        (LogState::Connecting, Some(app), feeds) => {
            format!("asking for the logs of {app}'s {} instances …", feeds.len())
        }
        (LogState::Refused(r), _, _) => format!("✕ {r}"),
        _ => "no log lines yet".into(),
    }
}

fn title<'a>(view: &LogView, t: &Theme, shown: &[usize]) -> Line<'a> {
    let (state, style) = match &view.state {
        LogState::Connecting => ("… connecting".to_string(), t.warn),
        LogState::Streaming if view.follow => ("● following".to_string(), t.ok),
        LogState::Streaming => ("‖ paused (f follows)".to_string(), t.warn),
        LogState::Ended(why) => (format!("■ ended: {why}"), t.muted),
        LogState::Refused(why) => (format!("✕ {why}"), t.bad),
    };
    // Most important first: a narrow screen cuts the end, with `…`.
    let name = match (&view.app, view.feeds.first()) {
        (Some(app), _) => format!(" Logs of {app}: {} instances merged ", view.feeds.len()),
        (None, Some(f)) => format!(" Logs {} on {} ", f.instance, f.host),
        (None, None) => " Logs ".to_string(),
    };
    let mut spans = vec![Span::styled(name, t.title), Span::styled(format!("{state} "), style)];
    if let Some(k) = view.only {
        spans.push(Span::styled(format!("only #{k} (i: next) "), t.series(k as usize)));
    }
    if let Some(q) = &view.search {
        let count = view.match_count();
        let at = view
            .current
            .map(|c| (0..=c).filter(|&i| view.visible(i) && view.is_match(&view.lines[i])).count())
            .unwrap_or(0);
        spans.push(Span::styled(format!("/{q} match {at}/{count} "), t.accent));
    }
    let lost = view.lost_batches();
    if lost > 0 {
        spans.push(Span::styled(format!("⚠ {lost} batches lost "), t.warn));
    }
    // Counted among the shown lines: with a filter, the buffer's positions would not do.
    let ordinal = |i: usize| match view.only {
        None => i,
        Some(_) => (0..i).filter(|&k| view.visible(k)).count(),
    };
    let (first, end) = match (shown.first(), shown.last()) {
        (Some(&a), Some(&b)) => (ordinal(a) + 1, ordinal(b) + 1),
        _ => (0, 0),
    };
    spans.push(Span::styled(
        format!("[{first}-{end} of {}, last {LOG_LINES_KEPT} kept] ", view.shown_count()),
        t.muted,
    ));
    if view.dropped > 0 {
        spans.push(Span::styled(format!("{} older dropped ", view.dropped), t.muted));
    }
    Line::from(spans)
}

fn keys<'a>(view: &LogView, t: &Theme, back: String) -> Line<'a> {
    let follow = if view.follow { "f pause" } else { "f follow" };
    let one = if view.is_merged() { "  i/0-9 one instance" } else { "" };
    Line::from(Span::styled(format!(" {follow}  / search  n/N match{one}  w save  {back} close "), t.muted))
}

/// The text in spans, each case-insensitive match of `query` in `hit` style.
fn highlighted<'a>(text: &str, query: Option<&str>, style: Style, hit: Style) -> Vec<Span<'a>> {
    let Some(q) = query.filter(|q| !q.is_empty()) else { return vec![Span::styled(text.to_string(), style)] };
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some((s, e)) = find_ci(text, q, at) {
        if s > at {
            spans.push(Span::styled(text[at..s].to_string(), style));
        }
        spans.push(Span::styled(text[s..e].to_string(), hit));
        at = e;
    }
    if at < text.len() {
        spans.push(Span::styled(text[at..].to_string(), style));
    }
    spans
}

/// The width of the gutter mark and the time before a line's text.
const GUTTER: usize = 10;

/// Spans cut into rows of at most `width` characters, styles kept across the cuts.
fn wrapped(spans: Vec<Span<'static>>, width: usize) -> Vec<Vec<Span<'static>>> {
    let mut rows = vec![Vec::new()];
    let mut room = width;
    for span in spans {
        let mut rest: &str = &span.content;
        while !rest.is_empty() {
            if room == 0 {
                rows.push(Vec::new());
                room = width;
            }
            let cut = rest.char_indices().nth(room).map_or(rest.len(), |(i, _)| i);
            let (piece, tail) = rest.split_at(cut);
            room -= piece.chars().count();
            if let Some(row) = rows.last_mut() {
                row.push(Span::styled(piece.to_string(), span.style));
            }
            rest = tail;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use ratatui::style::Style;
    use ratatui::text::Span;

    use super::wrapped;

    #[test]
    fn a_long_line_wraps_into_rows_and_keeps_each_part_styled() {
        let hit = Style::new().bold();
        let spans = vec![Span::raw("x".repeat(12)), Span::styled("needle", hit), Span::raw("tail")];
        let rows = wrapped(spans, 10);
        let text: Vec<String> = rows.iter().map(|r| r.iter().map(|s| s.content.as_ref()).collect()).collect();
        assert_eq!(text, ["xxxxxxxxxx", "xxneedleta", "il"]);
        // The match cut at no row boundary keeps its style whole on its row.
        assert!(rows[1].iter().any(|s| s.content == "needle" && s.style == hit));
        assert_eq!(wrapped(vec![Span::raw("")], 10).len(), 1, "an empty line is one row");
    }
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod snapshot_tests;
