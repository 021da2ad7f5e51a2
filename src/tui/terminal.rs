//! Taking the terminal and always giving it back: raw mode, the alternate screen and the
//! mouse on the way in (the frames hide the cursor); all undone, and the cursor shown, on
//! quit, on panic, on SIGTERM/SIGHUP (the run loop handles those), and while the cockpit
//! is suspended (Ctrl-Z), taken again when it is continued (`fg`).

use std::io::{self, BufWriter, Stdout, Write};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::Terminal;

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

/// Ctrl-Z (or a SIGTSTP from outside): gives the terminal back and stops, as the shell's
/// job control would have (raw mode turns the key into input, and the SIGTSTP handler
/// takes the signal's default away: this stops with SIGSTOP, as the default would). When
/// `fg` continues the process, the terminal is taken again (`resume`).
pub fn suspend(terminal: &mut Tui, mouse: bool) -> io::Result<()> {
    restore();
    signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGTSTP)?;
    resume(terminal, mouse)
}

/// Takes the terminal again after a stop (Ctrl-Z, or a SIGSTOP from outside, which no
/// handler sees: SIGCONT says it is over) and has the next frame drawn whole, since the
/// shell wrote over the screen meanwhile. Taking what is already taken changes nothing.
pub fn resume(terminal: &mut Tui, mouse: bool) -> io::Result<()> {
    // crossterm skips enabling what it believes enabled; after a SIGSTOP the shell has put
    // its own modes back behind its back.
    let _ = crossterm::terminal::disable_raw_mode();
    crossterm::terminal::enable_raw_mode()?;
    execute!(io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    set_mouse(mouse)?;
    // Forget what the screen showed: the next frame writes every cell.
    terminal.backend_mut().forget();
    terminal.clear()
}

/// Gives the terminal back. Safe to call twice.
pub fn restore() {
    // ratatui's restore leaves the cursor as the frames left it, hidden; the `Show` a
    // dropped `Terminal` queues stays in our frame writer, which only a draw flushes.
    let _ = execute!(io::stdout(), DisableMouseCapture, crossterm::cursor::Show);
    ratatui::restore();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
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
