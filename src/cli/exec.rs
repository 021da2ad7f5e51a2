//! `quarterdeck ctl exec` and `ctl exec-replay`: a process in an instance's container,
//! interactive on a terminal or, for scripts, its output and exit code; and the playback of
//! a session's recording.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::bus::{Bus, NatsBus};
use crate::client::exec::{self, ExecEvent, ExecOptions, ExecOutcome, ExecSession};
use crate::plane::agent::recording;
use crate::protocol::exec::{EXEC_CHUNK_MAX, ExecFd, SESSIONS_BUCKET};
use crate::repository::{ObjectStoreRepository, Repository};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The instance's id (see `ctl instances`).
    pub instance: String,

    /// A terminal for the process even with a command (the default without one, when
    /// stdin and stdout are terminals).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Read-only: refuse, before anything is sent (as the cockpit's read-only mode does).
    #[arg(long)]
    pub read_only: bool,

    /// The command and its arguments, after `--`; none: a shell (/bin/bash, else /bin/sh).
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecReplayArgs {
    /// The session id the audit trail names (`ctl audit`: the recording).
    pub session: String,

    /// Play faster (2 = twice as fast) or slower (0.5); 0.01 to 100.
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = parse_speed_factor)]
    pub speed: f64,

    /// Print the output at once, without its timing.
    #[arg(long, conflicts_with = "speed")]
    pub no_wait: bool,
}

fn parse_speed_factor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.01..=100.0).contains(&x) => Ok(x),
        Ok(x) => Err(format!("{x}: use 0.01 to 100")),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Refused before anything is sent: called before the bus is even connected.
pub fn refuse_read_only(a: &ExecArgs) -> Result<(), String> {
    if a.read_only {
        Err(format!("read-only: exec in {} refused; nothing was sent", a.instance))
    } else {
        Ok(())
    }
}

/// Whether this run is interactive: stdin and stdout are terminals, and a shell or `-t`.
fn interactive(a: &ExecArgs) -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && (a.cmd.is_empty() || a.tty)
}

pub async fn exec(bus: &NatsBus, source: &str, a: ExecArgs, timeout: Duration) -> Result<ExitCode, String> {
    refuse_read_only(&a)?;
    let fleet = crate::client::snapshot::fetch_fleet(bus, source, timeout)
        .await
        .map_err(|e| format!("snapshot: {e}"))?;
    let target = exec::find_instance(&fleet, &a.instance).map_err(|e| e.to_string())?;
    let bus: Arc<dyn Bus> = Arc::new(bus.clone());
    if interactive(&a) {
        let (cols, rows) = crate::tui::exec::terminal_size();
        let opts = ExecOptions { cmd: a.cmd, tty: true, cols, rows };
        let session = exec::open(bus, source, &target, opts).await.map_err(|e| e.to_string())?;
        let outcome = crate::tui::exec::run(session).await?;
        if let Some(m) = outcome.message().filter(|_| !matches!(outcome, ExecOutcome::Exited(_))) {
            // After whatever the process left on its last line (a prompt).
            eprintln!("\nquarterdeck: {m}");
        }
        return Ok(ExitCode::from(outcome.exit_status()));
    }
    let opts = ExecOptions { cmd: a.cmd, tty: false, cols: 0, rows: 0 };
    let session = exec::open(bus, source, &target, opts).await.map_err(|e| e.to_string())?;
    let outcome = pipe(session).await?;
    if let Some(m) = outcome.message().filter(|_| !matches!(outcome, ExecOutcome::Exited(_))) {
        eprintln!("quarterdeck: {m}");
    }
    Ok(ExitCode::from(outcome.exit_status()))
}

/// Without a terminal: stdin to the process (then its end of file), its stdout and stderr
/// to ours, apart; Ctrl-C stops the session.
async fn pipe(mut session: ExecSession) -> Result<ExecOutcome, String> {
    let control = session.control.clone();
    // A blocking read on a thread of its own: ctl ends when the session does, whatever
    // the read is waiting for.
    let (chunks, mut chunk_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; EXEC_CHUNK_MAX];
        while let Ok(n @ 1..) = stdin.read(&mut buf) {
            if chunks.blocking_send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let feeder = tokio::spawn(async move {
        while let Some(chunk) = chunk_rx.recv().await {
            if control.input(&chunk).await.is_err() {
                return;
            }
        }
        let _ = control.close_stdin().await;
    });
    let mut interrupted = false;
    let outcome = loop {
        let event = tokio::select! {
            e = session.events.recv() => e,
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                let _ = session.control.stop().await;
                continue;
            }
        };
        match event {
            Some(ExecEvent::Out(fd, bytes)) => {
                let written = match fd {
                    ExecFd::Stdout => {
                        std::io::stdout().lock().write_all(&bytes).and_then(|()| std::io::stdout().flush())
                    }
                    ExecFd::Stderr => std::io::stderr().lock().write_all(&bytes),
                };
                // Our reader went away (`| head`): end the session, as a pipe would.
                if written.is_err() {
                    let _ = session.control.stop().await;
                }
            }
            Some(ExecEvent::Lost(n)) => eprintln!("quarterdeck: {n} output frames lost on the way"),
            Some(ExecEvent::End(outcome)) => break outcome,
            None => return Err("the session ended without saying how".into()),
        }
    };
    feeder.abort();
    Ok(outcome)
}

pub async fn replay(bus: &NatsBus, a: ExecReplayArgs) -> Result<ExitCode, String> {
    crate::protocol::exec::token("session id", &a.session)?;
    let store = ObjectStoreRepository::reader_of(bus, SESSIONS_BUCKET);
    let bytes = store.get(&a.session).await.map_err(|e| format!("recording {}: {e}", a.session))?;
    let text =
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("recording {} is not UTF-8", a.session))?;
    let events = recording::parse(&text)?;
    let mut out = std::io::stdout().lock();
    let mut at = 0.0;
    for (t, data) in events {
        if !a.no_wait && t > at {
            std::thread::sleep(Duration::from_secs_f64(((t - at) / a.speed).min(5.0)));
        }
        at = t;
        if out.write_all(data.as_bytes()).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
