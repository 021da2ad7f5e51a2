//! The logs view (`l`): the instance's lines, newest at the bottom while following, with
//! the search's matches highlighted (and the current one marked), and the state of the
//! stream in the title. Builds lines for the visible window only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::App;
use crate::app::logs::{LOG_LINES_KEPT, LogState, LogView, find_ci};
use crate::protocol::LogSource;
use crate::protocol::clock::hms;
use crate::views::theme::Theme;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = &app.logs else { return };
    let t = &app.theme;
    frame.render_widget(Clear, area);
    let rows = area.height.saturating_sub(2) as usize;
    let start = view.first_shown(rows);
    let end = (start + rows).min(view.lines.len());
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(title(view, t, start, end))
        .title_bottom(
            keys(view, t, app.keymap.keys_for(crate::actions::keymap::Bindable::Back)).right_aligned(),
        );
    let highlight = t.warn.add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let lines: Vec<Line> = (start..end)
        .map(|i| {
            let l = &view.lines[i];
            let current = view.current == Some(i);
            let gutter = match (current, l.source) {
                (true, _) => Span::styled("▶", t.accent),
                (false, LogSource::Stderr) => Span::styled("!", t.bad),
                (false, LogSource::Stdout) => Span::raw(" "),
            };
            let ts = if l.ts > 0 { hms(l.ts) } else { "--:--:--".into() };
            let text_style = if l.source == LogSource::Stderr { t.bad } else { t.text };
            let mut spans = vec![gutter, Span::styled(format!("{ts} "), t.muted)];
            // The current match stays in sight on a narrow screen: its line starts a little
            // before the match, after an ellipsis.
            let room = (area.width as usize).saturating_sub(12);
            let text = match (current, view.search.as_deref()) {
                (true, Some(q)) => shifted_to_match(&l.text, q, room),
                _ => std::borrow::Cow::Borrowed(l.text.as_str()),
            };
            spans.extend(highlighted(&text, view.search.as_deref(), text_style, highlight));
            Line::from(spans)
        })
        .collect();
    let body = Paragraph::new(lines).block(block);
    frame.render_widget(body, area);
    if view.lines.is_empty() {
        let msg = Rect { x: area.x + 2, y: area.y + 1, width: area.width.saturating_sub(4), height: 1 };
        let text = match &view.state {
            LogState::Connecting => format!("asking {} for the logs of {} …", view.host, view.instance),
            LogState::Refused(r) => format!("✕ refused: {r}"),
            _ => "no log lines yet".into(),
        };
        frame.render_widget(Span::styled(text, t.muted), msg);
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

fn title<'a>(view: &LogView, t: &Theme, start: usize, end: usize) -> Line<'a> {
    let (state, style) = match &view.state {
        LogState::Connecting => ("… connecting".to_string(), t.warn),
        LogState::Streaming if view.follow => ("● following".to_string(), t.ok),
        LogState::Streaming => ("‖ paused (f follows)".to_string(), t.warn),
        LogState::Ended(why) => (format!("■ ended: {why}"), t.muted),
        LogState::Refused(why) => (format!("✕ refused: {why}"), t.bad),
    };
    // Most important first: a narrow screen cuts the end.
    let mut spans = vec![
        Span::styled(format!(" Logs {} on {} ", view.instance, view.host), t.title),
        Span::styled(format!("{state} "), style),
    ];
    if let Some(q) = &view.search {
        let count = view.match_count();
        let at = view
            .current
            .map(|c| view.lines.iter().take(c + 1).filter(|l| view.is_match(l)).count())
            .unwrap_or(0);
        spans.push(Span::styled(format!("/{q} match {at}/{count} "), t.accent));
    }
    if view.lost_batches > 0 {
        spans.push(Span::styled(format!("⚠ {} batches lost ", view.lost_batches), t.warn));
    }
    let first = start + usize::from(end > start);
    spans.push(Span::styled(
        format!("[{first}-{end} of {}, last {LOG_LINES_KEPT} kept] ", view.lines.len()),
        t.muted,
    ));
    if view.dropped > 0 {
        spans.push(Span::styled(format!("{} older dropped ", view.dropped), t.muted));
    }
    Line::from(spans)
}

fn keys<'a>(view: &LogView, t: &Theme, back: String) -> Line<'a> {
    let follow = if view.follow { "f pause" } else { "f follow" };
    Line::from(Span::styled(format!(" {follow}  / search  n/N match  w save  {back} close "), t.muted))
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

/// The text from a little before the first match of `q` when the match would end past
/// `room` characters, with a leading ellipsis; otherwise the text as it is.
fn shifted_to_match<'a>(text: &'a str, q: &str, room: usize) -> std::borrow::Cow<'a, str> {
    let Some((s, e)) = find_ci(text, q, 0) else { return std::borrow::Cow::Borrowed(text) };
    if text[..e].chars().count() <= room {
        return std::borrow::Cow::Borrowed(text);
    }
    let keep_before = room.saturating_sub(q.chars().count()) / 3;
    let from = text[..s].char_indices().rev().nth(keep_before.saturating_sub(1)).map_or(0, |(i, _)| i);
    std::borrow::Cow::Owned(format!("…{}", &text[from..]))
}

#[cfg(test)]
mod tests {
    use super::shifted_to_match;

    #[test]
    fn a_match_past_the_edge_is_brought_into_sight() {
        let text = format!("{}needle tail", "x".repeat(100));
        let shown = shifted_to_match(&text, "NEEDLE", 40);
        assert!(shown.starts_with('…') && shown.contains("needle tail"), "{shown}");
        assert!(shown.find("needle").is_some_and(|i| i < 40), "{shown}");
        assert_eq!(shifted_to_match("short needle", "needle", 40), "short needle");
    }
}
