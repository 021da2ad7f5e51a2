//! The confirm dialog for destructive actions: `[y/N]`, No by default. A rolling restart
//! also asks its batch size; an app tagged `prod` asks for its name to be typed instead of
//! `y`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::actions::Pending;
use crate::app::FrameContext;

pub fn render(app: &FrameContext, pending: &Pending, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    // The question, then what it would cost, each on a line of its own (a warning, such
    // as an app's last serving backend, is drawn as one).
    let lines: Vec<&str> = pending.question.lines().collect();
    let longest = lines.iter().map(|l| l.chars().count() as u16).max().unwrap_or(0);
    // Never wider than the screen, so the wrapped rows counted below are the ones drawn.
    let width = (longest + 6).clamp(44, 76).min(area.width).max(5);
    // Borders and padding take 4 columns; a long line wraps onto more lines.
    let question_lines: u16 =
        lines.iter().map(|l| (l.chars().count() as u16).div_ceil(width - 4).max(1)).sum::<u16>().max(1);
    let mut text: Vec<Line> = lines
        .iter()
        .enumerate()
        .map(|(n, l)| Line::from(Span::styled(l.to_string(), if n == 0 { t.text } else { t.warn })))
        .collect();
    text.push(Line::from(""));
    if app.not_live().is_some() {
        text.push(Line::from(Span::styled("⚠ not live: this will not be sent", t.bad)));
    }
    if let Some(b) = pending.batch {
        text.push(Line::from(vec![
            Span::styled("batch: ", t.muted),
            Span::styled(format!("◀ {} ▶", b.value), t.accent),
            Span::styled(format!(" at a time, of {} (←/→ or digits)", b.max), t.muted),
        ]));
    }
    match &pending.typed {
        Some(name) => {
            text.push(Line::from(vec![
                Span::styled("⚠ prod: type ", t.warn),
                Span::styled(name.clone(), t.title),
                Span::styled(" and Enter to confirm", t.warn),
            ]));
            text.push(Line::from(vec![
                Span::styled("> ", t.accent),
                Span::styled(pending.input.clone(), t.text),
                Span::styled("█", t.accent),
            ]));
            text.push(Line::from(Span::styled("Esc cancels", t.muted)));
        }
        None => text.push(Line::from(vec![
            Span::styled("[y]", t.warn),
            Span::styled(" yes    ", t.text),
            Span::styled("[N]", t.accent),
            Span::styled(" no (Enter, Esc)", t.text),
        ])),
    }
    if let Some(err) = &pending.error {
        text.push(Line::from(Span::styled(format!("✕ {err}"), t.bad)));
    }
    // `text` holds the question's lines too: counted once, wrapped; 2 for the borders.
    // The error may wrap too: its rows beyond the first are counted here.
    let error_rows =
        pending.error.as_ref().map_or(0, |e| (e.chars().count() as u16 + 2).div_ceil(width - 4).max(1) - 1);
    let height = question_lines + text.len().saturating_sub(lines.len()) as u16 + error_rows + 2;
    let popup = super::centered(area, width, height);
    frame.render_widget(Clear, popup);
    let title = if pending.typed.is_some() { " Confirm: prod " } else { " Confirm " };
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.warn)
        .padding(ratatui::widgets::Padding::horizontal(1))
        .title(Span::styled(title, t.title));
    frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: true }), popup);
}

#[cfg(test)]
#[path = "confirm_tests.rs"]
mod tests;
