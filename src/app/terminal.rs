//! Taking the terminal and always giving it back: raw mode and the alternate screen on the
//! way in; restored on quit, on panic, and on SIGTERM/SIGHUP (the run loop handles those).

use std::io::{self, BufWriter, Stdout, Write};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::{Frame, Terminal};

use super::output::FrameBackend;

/// Frames are collected whole and leave in one write, or not at all (`output`).
pub type Tui = Terminal<FrameBackend<BufWriter<Stdout>>>;

pub fn init() -> io::Result<Tui> {
    install_panic_hook();
    // A failure half-way (raw mode on, the screen or the mouse taken) gives it all back.
    take().inspect_err(|_| restore())
}

fn take() -> io::Result<Tui> {
    crossterm::terminal::enable_raw_mode()?;
    // Mouse capture on (click selects, the wheel scrolls; `m` turns it off). `restore`
    // turns it off again on every way out: quit, error, panic (the hook), SIGTERM/SIGHUP.
    execute!(io::stdout(), crossterm::terminal::EnterAlternateScreen, EnableMouseCapture)?;
    let backend = FrameBackend::new(BufWriter::with_capacity(256 * 1024, io::stdout()));
    let mut terminal = Terminal::new(backend)?;
    terminal.clear()?;
    Ok(terminal)
}

/// Turns mouse capture on or off (`m`), so the terminal's own text selection works.
pub fn set_mouse(on: bool) -> io::Result<()> {
    match on {
        true => execute!(io::stdout(), EnableMouseCapture),
        false => execute!(io::stdout(), DisableMouseCapture),
    }
}

/// Gives the terminal back. Safe to call twice.
pub fn restore() {
    let _ = execute!(io::stdout(), DisableMouseCapture);
    ratatui::restore();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Draws one frame: one write inside a synchronized update, so the terminal shows it
/// whole, and no write at all when nothing on screen changed. Returns whether it wrote.
pub fn draw<W: Write>(
    terminal: &mut Terminal<FrameBackend<W>>,
    render: impl FnOnce(&mut Frame),
) -> io::Result<bool> {
    let before = terminal.backend().frames();
    terminal.draw(render)?;
    Ok(terminal.backend().frames() != before)
}

/// Puts `text` on the clipboard of the terminal the operator sits at, through OSC 52, so
/// it works over SSH (and in tmux with `set-clipboard on`).
pub fn copy(terminal: &mut Tui, text: &str) -> io::Result<()> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let out = terminal.backend_mut();
    write!(out, "\x1b]52;c;{encoded}\x07")?;
    out.flush()
}
