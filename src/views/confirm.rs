//! The confirm dialog for destructive actions: `[y/N]`, No by default.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::actions::Pending;
use crate::app::App;

pub fn render(app: &App, pending: &Pending, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let question_len = pending.question.chars().count() as u16;
    let width = (question_len + 6).clamp(40, 72);
    // Borders and padding take 4 columns; a long question wraps onto more lines.
    let question_lines = question_len.div_ceil(width - 4).max(1);
    let popup = super::centered(area, width, question_lines + 4);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.warn)
        .padding(ratatui::widgets::Padding::horizontal(1))
        .title(Span::styled(" Confirm ", t.title));
    let text = vec![
        Line::from(Span::styled(pending.question.clone(), t.text)),
        Line::from(""),
        Line::from(vec![
            Span::styled("[y]", t.warn),
            Span::styled(" yes    ", t.text),
            Span::styled("[N]", t.accent),
            Span::styled(" no (Enter, Esc)", t.text),
        ]),
    ];
    frame.render_widget(Paragraph::new(text).block(block).wrap(Wrap { trim: true }), popup);
}
