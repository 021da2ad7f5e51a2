//! An exec session on the terminal, the one interactive loop `ctl exec` and the cockpit
//! (after it gave the terminal back) both run: raw mode on; keys from the terminal go to
//! the process's stdin, its output to stdout, and SIGWINCH becomes a resize. The terminal
//! is restored on every way out: the process exits, the container dies, the agent or bus
//! is lost, SIGHUP or SIGTERM, an error.
//!
//! Keys are read from a descriptor of our own on /dev/tty, opened non-blocking: a blocking
//! read would outlive the session and take the cockpit's next keystroke, and making the
//! shared stdin non-blocking would leave it so for the shell after us.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::signal::unix::{SignalKind, signal};

use crate::client::exec::{ExecEvent, ExecOutcome, ExecSession};
use crate::protocol::exec::EXEC_CHUNK_MAX;

/// The terminal's size, 80x24 when it cannot be read.
pub fn terminal_size() -> (u16, u16) {
    crossterm::terminal::size().ok().filter(|(c, r)| *c > 0 && *r > 0).unwrap_or((80, 24))
}

/// Raw mode while it lives (also `ctl secret set`'s hidden prompt).
pub(crate) struct Raw;

impl Raw {
    pub(crate) fn on() -> Result<Raw, String> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| format!("cannot put the terminal in raw mode: {e}"))?;
        Ok(Raw)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Runs `session` on the terminal until it ends; how it ended. The terminal is as it was
/// before, whatever the way out.
pub async fn run(mut session: ExecSession) -> Result<ExecOutcome, String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/tty")
        .map_err(|e| format!("no terminal to run the session on (/dev/tty: {e})"))?;
    // Not a pipe, but pollable as one: the reactor reads it as it reads a FIFO.
    let mut keys = pipe::Receiver::from_file_unchecked(tty).map_err(|e| format!("/dev/tty: {e}"))?;
    let mut winch = signal(SignalKind::window_change()).map_err(|e| e.to_string())?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let _raw = Raw::on()?;
    let mut buf = vec![0u8; EXEC_CHUNK_MAX];
    let control = session.control.clone();
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            event = session.events.recv() => match event {
                Some(ExecEvent::Out(_, bytes)) => {
                    if stdout.write_all(&bytes).and_then(|()| stdout.flush()).is_err() {
                        let _ = control.stop().await;
                    }
                }
                Some(ExecEvent::Lost(n)) => {
                    let _ = write!(stdout, "\r\n[quarterdeck: {n} output frames lost]\r\n");
                }
                Some(ExecEvent::End(outcome)) => return Ok(outcome),
                None => return Err("the session ended without saying how".into()),
            },
            read = keys.read(&mut buf) => match read {
                Ok(0) => {
                    let _ = control.close_stdin().await;
                }
                Ok(n) => {
                    if let Err(err) = control.input(&buf[..n]).await {
                        return Err(format!("input not sent: {err}"));
                    }
                }
                Err(err) => return Err(format!("/dev/tty: {err}")),
            },
            _ = winch.recv() => {
                let (cols, rows) = terminal_size();
                let _ = control.resize(cols, rows).await;
            }
            _ = hangup.recv() => {
                let _ = control.stop().await;
                return Err("hang-up: the session was stopped".into());
            }
            _ = term.recv() => {
                let _ = control.stop().await;
                return Err("terminated: the session was stopped".into());
            }
        }
    }
}
