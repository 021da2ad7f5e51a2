//! The help overlay, generated from the keymap so that it cannot drift from it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::FrameContext;

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let bindings = app.keymap.bindings();
    let half = bindings.len().div_ceil(2);
    let popup = super::centered(area, 96, half as u16 + 2);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(Span::styled(" Keys ", t.title))
        .title_bottom(Line::from(Span::styled(" Esc or ? closes ", t.muted)).right_aligned());
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    let lines = |part: &[(crate::actions::keymap::Bindable, Vec<crate::actions::keymap::Key>)]| -> Vec<Line> {
        part.iter()
            .map(|(action, keys)| {
                let keys: Vec<String> = keys.iter().map(|k| k.label()).collect();
                Line::from(vec![
                    Span::styled(format!(" {:<12}", keys.join(" ")), t.accent),
                    Span::styled(action.describe(), t.text),
                ])
            })
            .collect()
    };
    let (a, b) = bindings.split_at(half.min(bindings.len()));
    frame.render_widget(Paragraph::new(lines(a)), left);
    frame.render_widget(Paragraph::new(lines(b)), right);
}
