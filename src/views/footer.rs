//! The footer: the latest status message while it lasts, otherwise key hints drawn from the
//! keymap.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::text::put_line;

use crate::actions::{Action, Panel};
use crate::app::{FrameContext, Level};

/// In order of importance: what doesn't fit is left off the end.
const HINTS: [(Action, &str); 11] = [
    (Action::Help, "help"),
    (Action::Quit, "quit"),
    (Action::Palette, "command"),
    (Action::Filter, "filter"),
    (Action::Restart, "restart"),
    (Action::Sort, "sort"),
    (Action::Mark, "mark"),
    (Action::Detail, "detail"),
    (Action::ToggleRoute, "route on/off"),
    (Action::AddRoute, "add route"),
    (Action::Copy, "copy"),
];

/// The Alerts panel's own: `a` and what Enter does there come first.
const ALERT_HINTS: [(Action, &str); 9] = [
    (Action::Help, "help"),
    (Action::Quit, "quit"),
    (Action::Palette, "command"),
    (Action::Filter, "filter"),
    (Action::Ack, "ack"),
    (Action::Detail, "go to subject"),
    (Action::Mark, "mark"),
    (Action::Sort, "sort"),
    (Action::Copy, "copy"),
];

pub fn render(app: &FrameContext, frame: &mut Frame, area: Rect) {
    let t = &app.theme;
    if let Some(status) = &app.status {
        let (mark, style) = match status.level {
            Level::Info => ("ℹ", t.accent),
            Level::Warn => ("⚠", t.warn),
            Level::Error => ("✕", t.bad),
        };
        let line = Line::from(vec![Span::styled(format!(" {mark} {}", status.text), style)]);
        put_line(frame.buffer_mut(), area, &line, Style::default());
        return;
    }
    // The mouse state, right-aligned: with capture off the terminal selects text.
    let mouse_keys = app.keymap.label_for(Action::Mouse);
    let mouse = format!(" {mouse_keys} mouse {} ", if app.mouse { "on" } else { "off" });
    let mouse_width = mouse.chars().count();
    let mut spans = Vec::new();
    let mut used = mouse_width;
    let hints: &[(Action, &str)] = if app.panel == Panel::Alerts { &ALERT_HINTS } else { &HINTS };
    for &(action, label) in hints {
        let keys = app.keymap.label_for(action);
        let width = keys.chars().count() + label.chars().count() + 3;
        if keys.is_empty() || used + width > area.width as usize {
            continue;
        }
        used += width;
        spans.push(Span::styled(format!(" {keys}"), t.accent));
        spans.push(Span::styled(format!(" {label} "), t.muted));
    }
    put_line(frame.buffer_mut(), area, &Line::from(spans), Style::default());
    if !mouse_keys.is_empty() && mouse_width <= area.width as usize {
        let style = if app.mouse { t.muted } else { t.warn };
        let w = mouse_width as u16;
        let at = Rect { x: area.x + area.width - w, width: w, ..area };
        put_line(frame.buffer_mut(), at, &Line::from(Span::styled(mouse, style)), Style::default());
    }
}
