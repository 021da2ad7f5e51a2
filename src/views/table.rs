//! The shared table: columns sized from what they show, that drop out by priority on
//! narrow terminals, rows built for the visible window only, text cut with `…`, and the
//! selection kept on screen.

use std::borrow::Cow;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use super::text::{ellipsized, put};
use crate::app::cells::{Row, Tone};
use crate::app::rows::RowKey;
use crate::app::{FrameContext, window_start};
use crate::theme::Theme;

/// Where a table's rows were drawn, for mouse hit-testing: screen row `first_row + n`
/// (n < `height`) shows the panel's row `start + n`, when there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableArea {
    pub first_row: u16,
    pub height: u16,
    pub start: usize,
    pub total: usize,
}

impl TableArea {
    /// The panel's row drawn at this screen row, if any.
    pub fn row_at(&self, y: u16) -> Option<usize> {
        let n = y.checked_sub(self.first_row).filter(|n| *n < self.height)?;
        Some(self.start + usize::from(n)).filter(|i| *i < self.total)
    }
}

pub struct Column {
    pub title: &'static str,
    /// The most the column takes for its content before any spare width is shared out
    /// (then a column whose text is cut gets it back first): longer text is cut with `…`,
    /// narrower content takes less.
    pub width: u16,
    /// Lower goes first when the terminal is too narrow; 0 is never dropped.
    pub priority: u8,
    /// Whether the column takes a share of spare width (names, domains, messages).
    pub grow: bool,
}

/// How a column is drawn, without its title: the titles are the row model's
/// (`app::columns`), which the sort reads too.
#[derive(Clone, Copy)]
pub struct Size {
    width: u16,
    priority: u8,
    grow: bool,
}

pub const fn col(width: u16, priority: u8) -> Size {
    Size { width, priority, grow: false }
}

/// A column that takes a share of spare width.
pub const fn wide(width: u16, priority: u8) -> Size {
    Size { width, priority, grow: true }
}

/// A table's columns: the row model's titles, each with its size. Both are arrays of `N`,
/// so a title without a size (or the other way) does not compile.
pub const fn titled<const N: usize>(titles: [&'static str; N], sizes: [Size; N]) -> [Column; N] {
    let mut out = [const { Column { title: "", width: 0, priority: 0, grow: false } }; N];
    let mut i = 0;
    while i < N {
        let Size { width, priority, grow } = sizes[i];
        out[i] = Column { title: titles[i], width, priority, grow };
        i += 1;
    }
    out
}

/// The widths of the kept columns in `width`, from their natural widths (`natural`,
/// one per column): spare width first goes to the columns whose content is cut, up to
/// their content's width (`content`), then to the growing columns in equal shares (to
/// the last column when none grows).
pub fn widths(columns: &[Column], natural: &[u16], content: &[u16], kept: &[usize], width: u16) -> Vec<u16> {
    let used: u16 = kept.iter().map(|&i| natural[i]).sum::<u16>() + kept.len().saturating_sub(1) as u16;
    let mut spare = width.saturating_sub(used);
    let mut out: Vec<u16> = kept.iter().map(|&i| natural[i]).collect();
    for (n, &i) in kept.iter().enumerate() {
        let more = content[i].saturating_sub(natural[i]).min(spare);
        out[n] += more;
        spare -= more;
    }
    let growers: Vec<usize> = (0..kept.len()).filter(|&n| columns[kept[n]].grow).collect();
    let growers = if growers.is_empty() { vec![kept.len().saturating_sub(1)] } else { growers };
    let share = spare / growers.len().max(1) as u16;
    for (k, &n) in growers.iter().enumerate() {
        if let Some(w) = out.get_mut(n) {
            // The first grower also takes the remainder.
            *w += share + if k == 0 { spare % growers.len().max(1) as u16 } else { 0 };
        }
    }
    out
}

/// Which columns fit in `width` at their natural widths, in their original order. The
/// last kept column takes what is left.
pub fn fit(columns: &[Column], natural: &[u16], width: u16) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..columns.len()).collect();
    let need = |kept: &[usize]| -> u16 {
        kept.iter().map(|&i| natural[i]).sum::<u16>() + kept.len().saturating_sub(1) as u16
    };
    let mut dropped = Vec::new();
    while need(&kept) > width && kept.len() > 1 {
        let Some(pos) = kept
            .iter()
            .enumerate()
            .filter(|(_, i)| columns[**i].priority > 0)
            .min_by_key(|(p, i)| (columns[**i].priority, std::cmp::Reverse(*p)))
            .map(|(p, _)| p)
        else {
            break;
        };
        dropped.push(kept.remove(pos));
    }
    // A column dropped to make room for one that then went too comes back if it fits in
    // what is left, the most important first: dropping ENDPOINT for ID must not lose both.
    for &i in dropped.iter().rev() {
        let at = kept.partition_point(|&k| k < i);
        kept.insert(at, i);
        if need(&kept) > width {
            kept.remove(at);
        }
    }
    kept
}

/// Each column's content width: its widest cell among `rows` (the visible window), or
/// its title. A column of numbers (right-aligned cells) takes its whole `width` instead:
/// numbers that change at each heartbeat then never move the columns around them.
pub fn content_widths(columns: &[Column], rows: &[(Vec<Cell<'_>>, bool)]) -> Vec<u16> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cells = || rows.iter().filter_map(move |(cells, _)| cells.get(i));
            let widest = cells().map(|c| text_width(&c.text)).max().unwrap_or(0).max(text_width(c.title));
            let numbers = cells().any(|c| c.right);
            let widest = if numbers { widest.max(c.width as usize) } else { widest };
            widest.min(u16::MAX as usize) as u16
        })
        .collect()
}

/// Each column's natural width: its content's, at most its `width`.
pub fn natural_widths(columns: &[Column], content: &[u16]) -> Vec<u16> {
    columns.iter().zip(content).map(|(c, &w)| w.min(c.width)).collect()
}

/// How many cells `text` takes.
fn text_width(text: &str) -> usize {
    if text.is_ascii() { text.len() } else { unicode_width::UnicodeWidthStr::width(text) }
}

/// `text` cut to `width` cells, ending in `…` when cut.
pub fn cut(text: &str, width: u16) -> Cow<'_, str> {
    let width = width as usize;
    if text_width(text) <= width {
        return Cow::Borrowed(text);
    }
    if width == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::with_capacity(width + 3);
    let mut used = 0;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

pub struct TableView<'a> {
    pub title: String,
    pub columns: &'a [Column],
    pub total: usize,
    pub selected: usize,
    pub offset: usize,
    pub empty_text: &'a str,
    /// What the title says after the counts: the filter, the sort, the marks.
    pub notes: Vec<Span<'static>>,
    /// Whether rows can be marked; then a one-character gutter shows `◆` on marked rows.
    pub markable: bool,
}

/// One table cell: its text and the style of that text. Borrowed where the row's data
/// already holds the text, so a frame allocates only what it formats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell<'a> {
    pub text: Cow<'a, str>,
    pub style: Style,
    /// Lined up on the right of its column (numbers).
    pub right: bool,
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(text: &'a str) -> Self {
        Cell { text: Cow::Borrowed(text), style: Style::default(), right: false }
    }
}

impl From<String> for Cell<'_> {
    fn from(text: String) -> Self {
        Cell { text: Cow::Owned(text), style: Style::default(), right: false }
    }
}

/// What ratatui's `Table` puts before each row when a row is selected.
const HIGHLIGHT: &str = "▶ ";
const HIGHLIGHT_WIDTH: u16 = 2;

/// Draws a bordered table. `row(i)` builds the cells of row `i` and says whether it is
/// marked; it is called only for the rows on screen.
///
/// The cells go straight into the frame's buffer. This draws what ratatui's `Table` with a
/// highlight symbol and fixed column widths draws, without its per-cell `Text` and layout
/// work, which cost more than the rest of the frame together at 20k rows.
pub fn render<'r>(
    app: &FrameContext,
    frame: &mut Frame,
    area: Rect,
    view: TableView<'_>,
    mut row: impl FnMut(usize) -> (Vec<Cell<'r>>, bool),
) -> TableArea {
    let theme = &app.theme;
    let selected = view.selected.min(view.total.saturating_sub(1));
    // A long filter or note is cut with `…` at the corner, not silently.
    let title = ellipsized(
        title_line(app, &view.title, view.total, selected, view.notes),
        area.width.saturating_sub(2) as usize,
    );
    // Borders, the highlight symbol and the mark gutter take their share first.
    let gutter = if view.markable { 2 } else { 0 };
    let inner_width = area.width.saturating_sub(4 + gutter);
    let height = area.height.saturating_sub(3) as usize;
    let start = window_start(selected, view.offset, height, view.total);
    let end = (start + height).min(view.total);
    // The visible rows are built first: the columns are sized from them.
    let rows: Vec<(Vec<Cell<'r>>, bool)> = (start..end).map(&mut row).collect();
    let content = content_widths(view.columns, &rows);
    let natural = natural_widths(view.columns, &content);
    let kept = fit(view.columns, &natural, inner_width);

    let area = area.intersection(frame.area());
    let buf = frame.buffer_mut();
    style_area(buf, area, theme.text);
    let inner = frame_box(buf, area, theme.border, &title);
    if inner.is_empty() {
        return TableArea::default();
    }
    let xs = column_xs(view.markable, &widths(view.columns, &natural, &content, &kept, inner_width));
    let grid = Grid { inner, xs: &xs, kept: &kept, markable: view.markable };
    let header_y = inner.y;
    style_area(buf, Rect { height: 1, ..inner }, theme.muted);
    let columns = xs.iter().skip(gutter as usize / 2);
    for (&(cx, w), &i) in columns.zip(&kept) {
        grid.cell(buf, cx, w, header_y, &Cell::from(view.columns[i].title));
    }

    let body_height = inner.height.saturating_sub(1) as usize;
    for (n, (cells, marked)) in rows.iter().take(body_height).enumerate() {
        let y = inner.y + 1 + n as u16;
        grid.row(buf, theme, y, cells, *marked, start + n == selected);
    }
    if view.total == 0 {
        let msg = Rect { x: area.x + 2, y: area.y + 2, width: area.width.saturating_sub(4), height: 1 };
        frame.render_widget(Span::styled(view.empty_text, theme.muted), msg);
    }
    TableArea { first_row: inner.y + 1, height: body_height as u16, start, total: view.total }
}

/// Where a table's cells go: inside `inner`, at the columns' `xs` (the mark gutter's
/// first when `markable`), showing the `kept` columns.
struct Grid<'a> {
    inner: Rect,
    xs: &'a [(u16, u16)],
    kept: &'a [usize],
    markable: bool,
}

impl Grid<'_> {
    /// One cell at column offset `cx`, `w` wide (cut at the inner edge).
    fn cell(&self, buf: &mut Buffer, cx: u16, w: u16, y: u16, cell: &Cell<'_>) {
        let inner = self.inner;
        let w = w.min(inner.width.saturating_sub(cx));
        if w == 0 {
            return;
        }
        let text = cut(&cell.text, w);
        let pad = if cell.right { w.saturating_sub(text_width(&text) as u16) } else { 0 };
        put(buf, inner.x + cx + pad, y, &text, w - pad, cell.style);
    }

    /// One body row at `y`: its mark, the highlight when `selected`, and its kept cells.
    fn row(&self, buf: &mut Buffer, theme: &Theme, y: u16, cells: &[Cell<'_>], marked: bool, selected: bool) {
        let inner = self.inner;
        let row_area = Rect { y, height: 1, ..inner };
        if marked {
            style_area(buf, row_area, theme.accent);
        }
        if selected {
            put(buf, inner.x, y, HIGHLIGHT, HIGHLIGHT_WIDTH.min(inner.width), Style::default());
        }
        let mut slots = self.xs.iter();
        if self.markable
            && let Some(&(cx, _)) = slots.next()
            && marked
        {
            put(buf, inner.x + cx, y, "◆", 1, theme.accent);
        }
        for (&(cx, w), cell) in slots.zip(self.kept.iter().filter_map(|&k| cells.get(k))) {
            self.cell(buf, cx, w, y, cell);
        }
        if selected {
            style_area(buf, row_area, theme.selection);
        }
    }
}

/// The table's title: its name, where the selection is, the notes (filter, sort, marks),
/// and, when the data may be out of date, why.
fn title_line(
    app: &FrameContext,
    name: &str,
    total: usize,
    selected: usize,
    notes: Vec<Span<'static>>,
) -> Line<'static> {
    let theme = &app.theme;
    let mut title = vec![
        Span::styled(format!(" {name} "), theme.title),
        Span::styled(
            if total > 0 { format!("[{}/{total}] ", selected + 1) } else { "[0] ".into() },
            theme.muted,
        ),
    ];
    title.extend(notes);
    // No panel shows data that may be out of date without saying so.
    if let Some(why) = app.staleness() {
        title.push(Span::styled(format!("⚠ {why} "), theme.warn));
    }
    Line::from(title)
}

/// Each drawn column's x offset within the table's inside and its width: after the
/// highlight symbol (and the mark gutter, first when rows can be marked), one space apart.
fn column_xs(markable: bool, widths: &[u16]) -> Vec<(u16, u16)> {
    let mut xs: Vec<(u16, u16)> = Vec::with_capacity(widths.len() + 1);
    let mut x = HIGHLIGHT_WIDTH;
    if markable {
        xs.push((x, 1));
        x += 2;
    }
    for &w in widths {
        xs.push((x, w));
        x = x.saturating_add(w + 1);
    }
    xs
}

/// Draws a rounded border with `title` on its top edge and returns what is inside: what
/// `Block::bordered().border_type(Rounded).title(..)` draws, without the no-op style pass
/// over every cell of the area that `Block` makes when it has no style of its own.
fn frame_box(buf: &mut Buffer, area: Rect, style: Style, title: &Line<'_>) -> Rect {
    if area.width < 2 || area.height < 2 {
        return Rect { width: 0, height: 0, ..area };
    }
    let (left, right, top, bottom) = (area.left(), area.right() - 1, area.top(), area.bottom() - 1);
    for x in left + 1..right {
        buf[(x, top)].set_symbol("─").set_style(style);
        buf[(x, bottom)].set_symbol("─").set_style(style);
    }
    for y in top + 1..bottom {
        buf[(left, y)].set_symbol("│").set_style(style);
        buf[(right, y)].set_symbol("│").set_style(style);
    }
    buf[(left, top)].set_symbol("╭").set_style(style);
    buf[(right, top)].set_symbol("╮").set_style(style);
    buf[(left, bottom)].set_symbol("╰").set_style(style);
    buf[(right, bottom)].set_symbol("╯").set_style(style);
    buf.set_line(left + 1, top, title, area.width - 2);
    Rect { x: left + 1, y: top + 1, width: area.width - 2, height: area.height - 2 }
}

/// Patches `style` onto every cell of `area`, a row slice at a time.
fn style_area(buf: &mut Buffer, area: Rect, style: Style) {
    // The terminal's own colours and no modifiers change nothing on the blank cells a
    // table starts from (nothing else draws under it), and that is the default theme's
    // text style: skip the ten thousand no-op patches.
    let plain = |c: Option<Color>| c.is_none_or(|c| c == Color::Reset);
    if plain(style.fg) && plain(style.bg) && style.add_modifier.is_empty() && style.sub_modifier.is_empty() {
        return;
    }
    let area = area.intersection(buf.area);
    for y in area.top()..area.bottom() {
        let from = buf.index_of(area.x, y);
        for cell in &mut buf.content[from..from + area.width as usize] {
            cell.set_style(style);
        }
    }
}

/// What a panel's table is: which panel, its columns, what it says when empty.
#[derive(Clone, Copy)]
pub struct PanelSpec {
    pub panel: crate::actions::Panel,
    pub columns: &'static [Column],
    pub empty_text: &'static str,
    pub markable: bool,
}

/// The title notes: the active filter, the sort column and direction, the marks.
pub fn notes(app: &FrameContext, panel: crate::actions::Panel, columns: &[Column]) -> Vec<Span<'static>> {
    let t = &app.theme;
    let view = app.view(panel);
    let mut notes = Vec::new();
    if let Some(f) = &view.filter {
        let shown = app.row_count(panel);
        notes.push(Span::styled(format!("filter {} ", f.label()), t.accent));
        notes.push(Span::styled(format!("({shown} of {}) ", app.total_rows(panel)), t.muted));
    }
    if let Some(s) = view.sort
        && let Some(col) = columns.get(s.column)
    {
        notes.push(Span::styled(
            format!("sort {} {} ", col.title, if s.descending { "↓" } else { "↑" }),
            t.accent,
        ));
    }
    if !view.marks.is_empty() {
        notes.push(Span::styled(format!("◆ {} marked ", view.marks.len()), t.accent));
    }
    match app.follow_state(panel) {
        Some((true, _)) => notes.push(Span::styled("● following ", t.ok)),
        Some((false, Some(key))) => notes.push(Span::styled(format!("⏸ paused ({key}: newest) "), t.warn)),
        Some((false, None)) => notes.push(Span::styled("⏸ paused ", t.warn)),
        None => {}
    }
    notes
}

/// What an empty table says when its rows are all filtered out.
pub const NO_MATCH: &str = "no match: Esc clears the filter";

/// Draws one panel's table from its row index (filtered and sorted): looks up and builds
/// cells for the visible rows only.
pub fn render_panel<'a, T: 'a>(
    app: &'a FrameContext<'a>,
    frame: &mut Frame,
    area: Rect,
    spec: &PanelSpec,
    lookup: impl Fn(&RowKey) -> Option<&'a T>,
    cells: impl Fn(&'a FrameContext<'a>, &'a T) -> Vec<Cell<'a>>,
) -> TableArea {
    let PanelSpec { panel, columns, empty_text, markable } = *spec;
    let keys = app.rows(panel);
    // Rows there, none through the filter: say so, not that there is nothing at all.
    let empty_text = if keys.is_empty() && app.total_rows(panel) > 0 { NO_MATCH } else { empty_text };
    let sel = app.selections[panel.index()];
    let total = keys.len();
    let marks = &app.view(panel).marks;
    let view = TableView {
        title: panel.title().to_string(),
        columns,
        total,
        selected: sel.index,
        offset: sel.offset,
        empty_text,
        notes: notes(app, panel, columns),
        markable,
    };
    render(app, frame, area, view, |i| match keys.get(i) {
        Some(k) => (lookup(k).map(|item| cells(app, item)).unwrap_or_default(), marks.contains(k)),
        None => (vec![], false),
    })
}

/// The theme's style for a cell's tone.
pub fn tone_style(theme: &Theme, tone: Tone) -> Style {
    match tone {
        Tone::Text => theme.text,
        Tone::Muted => theme.muted,
        Tone::Accent => theme.accent,
        Tone::Ok => theme.ok,
        Tone::Warn => theme.warn,
        Tone::Bad => theme.bad,
    }
}

/// A row of the row model (`app::cells`), styled by the theme.
pub fn row_cells<'a>(theme: &Theme, row: Row<'a>) -> Vec<Cell<'a>> {
    row.cells
        .into_iter()
        .map(|c| Cell { text: c.text, style: tone_style(theme, c.tone), right: c.right })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_drop_low_priority_columns_first() {
        let cols = titled(["A", "B", "C", "D"], [col(10, 0), col(10, 1), col(10, 2), col(10, 0)]);
        let natural = [10; 4];
        assert_eq!(fit(&cols, &natural, 80), vec![0, 1, 2, 3]);
        assert_eq!(fit(&cols, &natural, 32), vec![0, 2, 3]);
        assert_eq!(fit(&cols, &natural, 21), vec![0, 3]);
        // Narrow content keeps more columns.
        assert_eq!(fit(&cols, &[10, 3, 10, 3], 32), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_column_dropped_for_one_that_went_too_comes_back_when_it_fits() {
        let cols = titled(["A", "B", "C"], [col(10, 0), col(10, 1), col(20, 2)]);
        let natural = [10, 10, 20];
        // B goes first, then C, which does not fit either; B alone fits again.
        assert_eq!(fit(&cols, &natural, 25), vec![0, 1]);
        assert_eq!(fit(&cols, &natural, 31), vec![0, 2], "C, more important, fits instead of B");
        assert_eq!(fit(&cols, &natural, 42), vec![0, 1, 2]);
        assert_eq!(fit(&cols, &natural, 15), vec![0]);
    }

    #[test]
    fn spare_width_goes_to_growing_columns() {
        let cols = titled(["A", "B", "C"], [col(10, 0), wide(10, 0), wide(10, 0)]);
        assert_eq!(widths(&cols, &[10; 3], &[10; 3], &[0, 1, 2], 43), vec![10, 16, 15]);
        let plain = titled(["A", "B"], [col(10, 0), col(10, 0)]);
        assert_eq!(widths(&plain, &[10; 2], &[10; 2], &[0, 1], 30), vec![10, 19]);
        // A cut column gets its content's width back first.
        assert_eq!(widths(&cols, &[10; 3], &[14, 10, 10], &[0, 1, 2], 43), vec![14, 14, 13]);
        assert_eq!(widths(&cols, &[10; 3], &[40, 10, 10], &[0, 1, 2], 43), vec![21, 10, 10]);
    }

    #[test]
    fn columns_are_sized_from_their_content_up_to_their_width() {
        let cols = titled(["KIND", "#", "X", "N"], [col(24, 0), col(4, 0), col(3, 0), col(5, 0)]);
        let number = |text: &'static str| Cell { right: true, ..Cell::from(text) };
        let long = Cell::from("NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST");
        let rows = vec![
            (vec![long, Cell::from("123"), Cell::from(""), number("7")], false),
            (vec![Cell::from("UPLOAD"), Cell::from("7"), Cell::from(""), number("12")], false),
        ];
        let content = content_widths(&cols, &rows);
        // Numbers take their column's whole width, whatever they are now.
        assert_eq!(content, vec![35, 3, 1, 5]);
        assert_eq!(natural_widths(&cols, &content), vec![24, 3, 1, 5]);
        assert_eq!(natural_widths(&cols, &content_widths(&cols, &[])), vec![4, 1, 1, 1]);
    }

    #[test]
    fn cut_text_ends_in_an_ellipsis() {
        assert_eq!(cut("NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST", 24), "NEW_INSTANCE_AND_DEPLOY…");
        assert_eq!(cut("short", 24), "short");
        assert_eq!(cut("exact", 5), "exact");
        assert_eq!(cut("● running", 5), "● ru…");
        assert_eq!(cut("abc", 1), "…");
        assert_eq!(cut("abc", 0), "");
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod snapshot_tests;
