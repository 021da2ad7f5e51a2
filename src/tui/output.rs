//! What reaches the terminal: each frame is collected whole and leaves in one write,
//! wrapped in a synchronized update, or not at all when it changes nothing on screen.
//!
//! ratatui writes colour resets and the cursor state on every draw, even when its buffer
//! diff is empty; over SSH that is bytes every second for an idle cockpit. This backend
//! wraps crossterm's and passes on only what changes the screen, so an unchanged frame
//! writes nothing, not even the synchronized-update brackets.

use std::io::{self, Write};

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::queue;
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};

/// Collects a frame's bytes; its `flush` sends them in one write, wrapped in a
/// synchronized update, or nothing when nothing was written.
pub struct FrameWriter<W: Write> {
    pending: Vec<u8>,
    out: W,
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut frame = Vec::with_capacity(self.pending.len() + 32);
        queue!(frame, BeginSynchronizedUpdate)?;
        frame.append(&mut self.pending);
        queue!(frame, EndSynchronizedUpdate)?;
        // Keep the larger allocation for the next frame.
        std::mem::swap(&mut frame, &mut self.pending);
        let sent = self.out.write_all(&self.pending).and_then(|_| self.out.flush());
        self.pending.clear();
        sent
    }
}

/// crossterm's backend over a `FrameWriter`, passing on only what changes the screen:
/// cells the diff found, and the cursor when it moves or shows or hides. Nothing in a
/// draw flushes but ratatui's own flush at its end, so a frame leaves whole.
pub struct FrameBackend<W: Write> {
    inner: CrosstermBackend<FrameWriter<W>>,
    cursor_visible: Option<bool>,
    /// Where the cursor was last put; forgotten when cells are drawn, which moves it.
    cursor_at: Option<Position>,
    /// Whether anything was passed on since the last flush.
    dirty: bool,
    frames: u64,
}

impl<W: Write> FrameBackend<W> {
    pub fn new(out: W) -> FrameBackend<W> {
        let writer = FrameWriter { pending: Vec::with_capacity(64 * 1024), out };
        FrameBackend {
            inner: CrosstermBackend::new(writer),
            cursor_visible: None,
            cursor_at: None,
            dirty: false,
            frames: 0,
        }
    }

    /// Forgets what the terminal was told about the cursor, after something else (a shell,
    /// while suspended) wrote to it.
    pub fn forget(&mut self) {
        self.cursor_visible = None;
        self.cursor_at = None;
    }

    /// Frames sent to the terminal so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

/// Writes that are not frames (the clipboard's OSC 52) leave on their own flush.
impl<W: Write> Write for FrameBackend<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Write::flush(&mut self.inner)
    }
}

impl<W: Write> Backend for FrameBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        // crossterm writes colour resets after any draw, even an empty one.
        let mut content = content.peekable();
        if content.peek().is_none() {
            return Ok(());
        }
        self.cursor_at = None;
        self.dirty = true;
        self.inner.draw(content)
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.dirty = true;
        self.inner.append_lines(n)
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.cursor_visible == Some(false) {
            return Ok(());
        }
        self.cursor_visible = Some(false);
        // queued, not executed: crossterm's own would flush half a frame.
        self.dirty = true;
        queue!(self.inner, Hide)
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.cursor_visible == Some(true) {
            return Ok(());
        }
        self.cursor_visible = Some(true);
        self.dirty = true;
        queue!(self.inner, Show)
    }

    /// Where the cursor was last put, without asking the terminal. The cockpit is
    /// fullscreen: ratatui asks only to put the cursor back after a clear. Asking the
    /// terminal is a round trip, and right after a job-control stop the terminal may still
    /// be in the shell's modes and answer as typed text, or never.
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(self.cursor_at.unwrap_or_default())
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let position = position.into();
        if self.cursor_at == Some(position) {
            return Ok(());
        }
        self.cursor_at = Some(position);
        self.dirty = true;
        queue!(self.inner, MoveTo(position.x, position.y))
    }

    fn clear(&mut self) -> io::Result<()> {
        self.cursor_at = None;
        self.dirty = true;
        self.inner.clear()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.cursor_at = None;
        self.dirty = true;
        self.inner.clear_region(clear_type)
    }

    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }

    /// ratatui calls this once, at the end of a draw: the frame leaves.
    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.dirty) {
            self.frames += 1;
        }
        Backend::flush(&mut self.inner)
    }
}
