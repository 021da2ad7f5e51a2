//! The text-entry overlays: the command palette (`:`) with its completions and errors,
//! the filter prompt (`/`), and the route form (`a`, `w`). All drawn at the bottom of the
//! body, over the table, so the rows being acted on stay visible.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use crate::app::{FrameContext, PaletteState, RouteForm};
use crate::protocol::subjects::RouteVerb;

/// The cursor, drawn as a block: the terminal's own cursor stays hidden.
const CURSOR: &str = "█";

/// `✕ err` in lines of at most `width`, none cut.
fn error_lines(t: &crate::theme::Theme, err: &str, width: usize) -> Vec<Line<'static>> {
    super::wizard::wrap(&format!("✕ {err}"), width)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, t.bad)))
        .collect()
}

/// A box of `lines` text lines at the bottom of `area`.
fn bottom_box(area: Rect, lines: u16) -> Rect {
    let h = (lines + 2).min(area.height);
    Rect { x: area.x, y: area.y + area.height - h, width: area.width, height: h }
}

pub fn render_palette(app: &FrameContext, p: &PaletteState, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let mut lines = vec![Line::from(vec![
        Span::styled(":", t.accent),
        Span::styled(p.input.clone(), t.text),
        Span::styled(CURSOR, t.accent),
    ])];
    // An error wraps: it says what to type instead.
    let inner = area.width.saturating_sub(2) as usize;
    if let Some(err) = &p.error {
        lines.extend(error_lines(t, err, inner));
    }
    if !p.candidates.is_empty() {
        // As many candidates as fit on one line; the rest are counted.
        let width = area.width.saturating_sub(4) as usize;
        let mut shown = String::new();
        let mut count = 0;
        for c in &p.candidates {
            if shown.chars().count() + c.chars().count() + 2 > width.saturating_sub(12) {
                break;
            }
            shown.push_str(c);
            shown.push_str("  ");
            count += 1;
        }
        if count < p.candidates.len() {
            shown.push_str(&format!("(+{} more)", p.candidates.len() - count));
        }
        lines.push(Line::from(Span::styled(shown, t.muted)));
    }
    let popup = bottom_box(area, lines.len() as u16);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(Span::styled(" Command ", t.title))
        .title_bottom(
            Line::from(Span::styled(" Tab completes · ↑↓ history · Enter runs · Esc closes ", t.muted))
                .right_aligned(),
        );
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

pub fn render_filter(app: &FrameContext, text: &str, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let shown = app.row_count(app.panel);
    let total = app.total_rows(app.panel);
    let mut spans = vec![
        Span::styled("/", t.accent),
        Span::styled(text.to_string(), t.text),
        Span::styled(CURSOR, t.accent),
    ];
    spans.push(Span::styled(format!("   {shown} of {total} rows"), t.muted));
    if let Some(f) = &app.view(app.panel).filter
        && !f.is_regex()
    {
        spans.push(Span::styled("  (not a regex: plain text)", t.warn));
    }
    let popup = bottom_box(area, 1);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(Span::styled(" Filter ", t.title))
        .title_bottom(
            Line::from(Span::styled(
                " regex, case-insensitive · !inverts · Enter keeps · Esc clears ",
                t.muted,
            ))
            .right_aligned(),
        );
    frame.render_widget(Paragraph::new(Line::from(spans)).block(block), popup);
}

pub fn render_form(app: &FrameContext, form: &RouteForm, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    let title = match form.verb {
        RouteVerb::Weight => " Route weight ",
        _ => " Add route ",
    };
    let field = |n: usize, label: &str, value: &str, hint: &str| -> Line<'static> {
        let focused = form.focus == n;
        let editable = form.fields().contains(&n);
        let marker = if focused { "▶ " } else { "  " };
        let mut spans = vec![
            Span::styled(format!("{marker}{label:<9}"), if focused { t.accent } else { t.muted }),
            Span::styled(value.to_string(), if editable { t.text } else { t.muted }),
        ];
        if focused {
            spans.push(Span::styled(CURSOR, t.accent));
        }
        spans.push(Span::styled(format!("   {hint}"), t.muted));
        Line::from(spans)
    };
    let mut lines = vec![
        field(0, "app", &form.app, "an existing app"),
        field(1, "backend", &form.backend, "IPv4:PORT, e.g. 10.101.1.31:8080"),
        field(2, "weight", &form.weight, "1 to 1000"),
    ];
    if let Some(err) = &form.error {
        lines.extend(error_lines(t, err, area.width.saturating_sub(2) as usize));
    }
    let popup = bottom_box(area, lines.len() as u16);
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.accent)
        .title(Span::styled(title, t.title))
        .title_bottom(
            Line::from(Span::styled(" Tab next field · Enter checks and asks · Esc closes ", t.muted))
                .right_aligned(),
        );
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
#[path = "palette_tests.rs"]
mod tests;
