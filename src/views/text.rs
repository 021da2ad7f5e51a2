//! Text straight into the frame's buffer, for the lines every frame draws (table rows, the
//! header, the tabs, the footer). ratatui's `Paragraph` and `Buffer::set_stringn` split
//! every string into graphemes and measure each; most of what a frame draws is plain
//! ASCII or a single-cell symbol (`●`, `✓`, `│`), which is written a character per cell
//! here. Anything else goes through `set_stringn`, so it is drawn as a `Span` would be.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};
use unicode_width::UnicodeWidthChar;

/// Whether `c` always takes exactly one cell on its own: printable ASCII, or a symbol from
/// the blocks the views draw with (punctuation, arrows, box drawing, shapes, dingbats) that
/// is one cell wide. Anything that joins with its neighbours (combining marks, joiners,
/// variation selectors) is outside these blocks, so a string of such characters has one
/// grapheme per character.
fn single_cell(c: char) -> bool {
    matches!(c, ' '..='~') || (matches!(c, '\u{2010}'..='\u{2BFF}') && c.width() == Some(1))
}

/// Writes `text` at `(x, y)`, at most `width` cells wide, patching `style` onto each cell
/// written. Returns the cells used.
pub fn put(buf: &mut Buffer, x: u16, y: u16, text: &str, width: u16, style: Style) -> u16 {
    let width = width.min(buf.area.right().saturating_sub(x));
    if width == 0 || !buf.area.contains(ratatui::layout::Position { x, y }) {
        return 0;
    }
    if !text.chars().all(single_cell) {
        let (end, _) = buf.set_stringn(x, y, text, width as usize, style);
        return end.saturating_sub(x);
    }
    let from = buf.index_of(x, y);
    let cells = buf.content[from..from + width as usize].iter_mut().zip(text.char_indices());
    // Most table text has no style of its own; patching nothing is skipped.
    let restyle = style != Style::default();
    let mut used = 0;
    for (cell, (at, c)) in cells {
        // A cell left blank by the reset needs no new symbol to show a space.
        if c != ' ' || cell.symbol() != " " {
            cell.set_symbol(&text[at..at + c.len_utf8()]);
        }
        if restyle {
            cell.set_style(style);
        }
        used += 1;
    }
    used
}

/// Draws `line` on the first row of `area`, left-aligned and cut at its width, over `base`
/// patched onto the whole row: what `Paragraph::new(line).style(base)` draws, and through
/// it when the line has a character that may not take one cell.
pub fn put_line(buf: &mut Buffer, area: Rect, line: &Line<'_>, base: Style) {
    let row = Rect { height: 1, ..area.intersection(buf.area) };
    if row.is_empty() {
        return;
    }
    if !line.spans.iter().all(|s| s.content.chars().all(single_cell)) {
        Paragraph::new(line.clone()).style(base).render(row, buf);
        return;
    }
    if base != Style::default() {
        buf.set_style(row, base);
    }
    let mut x = row.x;
    for span in &line.spans {
        let left = row.right().saturating_sub(x);
        if left == 0 {
            break;
        }
        x += put(buf, x, row.y, &span.content, left, line.style.patch(span.style));
    }
}

/// `line` cut to `width` cells, its last cell `…` when anything was cut, as table cells
/// are (`table::cut`): for the lines a dialog builds, which a `Paragraph` would cut silently.
pub fn ellipsized(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let Line { style, alignment, spans } = line;
    let mut kept = Vec::with_capacity(spans.len());
    let mut used = 0;
    for span in spans {
        let room = width.saturating_sub(used);
        let w = span.width();
        // More follows the span that reaches the edge, so it ends in `…`.
        if w >= room {
            let mut text: String = String::with_capacity(room + 3);
            let mut taken = 0;
            for c in span.content.chars() {
                let cw = c.width().unwrap_or(0);
                if taken + cw > room.saturating_sub(1) {
                    break;
                }
                text.push(c);
                taken += cw;
            }
            if room > 0 {
                text.push('…');
            }
            kept.push(ratatui::text::Span::styled(text, span.style));
            break;
        }
        used += w;
        kept.push(span);
    }
    Line { style, alignment, spans: kept }
}

pub use crate::app::cells::size;

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Color;
    use ratatui::text::Span;

    /// The fast path draws what `Paragraph` draws, cell for cell, wide and joined
    /// characters included.
    #[test]
    fn a_line_is_drawn_as_paragraph_draws_it() {
        let area = Rect::new(0, 0, 24, 1);
        let base = Style::default().bg(Color::Blue);
        for text in [
            "plain ascii",
            "● running │ ✓ ⚠ ◆ ▶ x",
            "日本語 wide",
            "e\u{301}cole",
            "👍🏽 ok",
            "cut here at twenty-four cells, past the end",
        ] {
            let line =
                Line::from(vec![Span::styled(text, Style::default().fg(Color::Red)), Span::raw(" tail")]);
            let mut want = Buffer::empty(area);
            Paragraph::new(line.clone()).style(base).render(area, &mut want);
            let mut got = Buffer::empty(area);
            put_line(&mut got, area, &line, base);
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn a_line_too_wide_ends_in_an_ellipsis_at_its_width() {
        let red = Style::default().fg(Color::Red);
        let line = || Line::from(vec![Span::raw("step "), Span::styled("downloaded, checksum ok", red)]);
        let cut = ellipsized(line(), 16);
        assert_eq!(cut.to_string(), "step downloaded…");
        assert_eq!(cut.width(), 16);
        assert_eq!(cut.spans[1].style, red, "the cut span keeps its style");
        // Cut where a span ends: the `…` still says more follows.
        assert_eq!(ellipsized(line(), 5).to_string(), "step…");
        assert_eq!(ellipsized(line(), 28), line(), "what fits is left whole");
        assert_eq!(ellipsized(Line::from("日本語 wide"), 6).to_string(), "日本…");
    }

    #[test]
    fn put_stops_at_the_width_and_the_buffer_edge() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 2));
        assert_eq!(put(&mut buf, 2, 0, "abcdef", 3, Style::default()), 3);
        assert_eq!(put(&mut buf, 8, 1, "abcdef", 9, Style::default()), 2);
        assert_eq!(put(&mut buf, 0, 5, "abc", 3, Style::default()), 0);
        assert_eq!(buf, Buffer::with_lines(["  abc     ", "        ab"]));
    }
}
