//! The help overlay, generated from the keymap so that it cannot drift from it. A
//! description too long for its column wraps under itself instead of being cut.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::FrameContext;

/// The widest the help gets: two columns of key and description.
const MAX_WIDTH: u16 = 96;

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let bindings = app.keymap.bindings();
    let width = area.width.min(MAX_WIDTH);
    // Inside the borders, two columns.
    let column = (width.saturating_sub(2) / 2) as usize;
    let labels: Vec<String> = bindings
        .iter()
        .map(|(_, keys)| keys.iter().map(|k| k.label()).collect::<Vec<_>>().join(" "))
        .collect();
    // A leading space, the longest label, a space before the description.
    let key_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) + 2;
    let text_width = column.saturating_sub(key_width);
    let mut entries: Vec<Vec<Line>> = Vec::with_capacity(bindings.len());
    for ((action, _), label) in bindings.iter().zip(&labels) {
        let parts = super::wizard::wrap(action.describe(), text_width);
        let lines = parts.into_iter().enumerate().map(|(n, part)| {
            let key = if n == 0 { format!(" {label}") } else { String::new() };
            Line::from(vec![Span::styled(format!("{key:<key_width$}"), t.accent), Span::styled(part, t.text)])
        });
        entries.push(lines.collect());
    }
    // The left column takes whole entries, in order, up to half the lines (or what fits).
    let total: usize = entries.iter().map(Vec::len).sum();
    let fits = area.height.saturating_sub(2) as usize;
    let half = total.div_ceil(2).min(fits);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for entry in entries {
        if right.is_empty() && left.len() + entry.len() <= half {
            left.extend(entry)
        } else {
            right.extend(entry)
        }
    }
    // A screen too small for all of it says what it left out.
    if right.len() > fits && fits > 0 {
        let left_out = right.len() + 1 - fits;
        right.truncate(fits - 1);
        right.push(Line::from(Span::styled(
            format!(" … {left_out} more lines: a taller terminal shows them"),
            t.warn,
        )));
    }
    let height = left.len().max(right.len()) as u16 + 2;
    let popup = super::centered(area, width, height);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(Span::styled(" Keys ", t.title))
        .title_bottom(Line::from(Span::styled(" Esc or ? closes ", t.muted)).right_aligned());
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [l, r] = Layout::horizontal([Constraint::Length(column as u16), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}

#[cfg(test)]
#[path = "help_tests.rs"]
mod tests;
