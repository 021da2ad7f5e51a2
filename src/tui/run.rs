//! The event loop: one `select!` over terminal input, backend updates, a frame timer, a
//! clock tick and the signals. Input is echoed at once; data redraws are capped at 20 a
//! second, metrics (heartbeats) are drawn with the 1 s clock, and nothing is written when
//! nothing on screen changed. Each frame first readies the app's frame context, then draws
//! it; the layout drawn is kept for the mouse.

use std::io::Write;
use std::ops::ControlFlow;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::{FutureExt, StreamExt};
use tokio::signal::unix::{Signal, SignalKind, signal};

use ratatui::Terminal;
use ratatui::backend::Backend;

use super::output::FrameBackend;
use super::shell::{Shell, Step};
use super::switch::{Connect, Switching};
use super::terminal::{self, Tui};
use crate::actions::prompt::{self, InputMode};
use crate::actions::{Action, Effect};
use crate::app::App;
use crate::backend::{BackendHandle, BackendRequest};
use crate::protocol::clock::now_ms;
use crate::views::Drawn;

const FRAME: Duration = Duration::from_millis(50);
/// How many backend updates are folded into one model change before a frame may be drawn.
const BATCH: usize = 4096;

/// Why the loop ended: the exit status says it to the shell (128 + the signal's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    /// SIGHUP: the terminal went away.
    Hangup,
    /// SIGTERM.
    Terminated,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Quit => 0,
            Exit::Hangup => 128 + 1,
            Exit::Terminated => 128 + 15,
        }
    }
}

/// Runs the cockpit until it ends; `connect` reaches another plane for `:context NAME`.
pub async fn run(
    terminal: &mut Tui,
    app: &mut App,
    mut backend: BackendHandle,
    connect: Connect,
) -> std::io::Result<Exit> {
    // `None` while a shell has the terminal: its keys are the shell's, not crossterm's.
    let mut input = Some(EventStream::new());
    let mut shell = Shell::default();
    let mut frame_timer = tokio::time::interval(FRAME);
    frame_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    let mut sig = Signals::new()?;
    let mut data_dirty = true;
    let mut backend_open = true;
    let mut switching = Switching::default();

    let (_, mut drawn) = draw(terminal, app)?;
    loop {
        let mut effects = Vec::new();
        let mut draw_now = false;
        tokio::select! {
            ev = next_input(&mut input) => match on_input(ev, terminal, app, &drawn)? {
                ControlFlow::Continue(turn) => (effects, draw_now) = turn,
                ControlFlow::Break(exit) => return Ok(exit),
            },
            step = shell.step() => match on_shell_step(step, terminal, app, &mut input, &mut shell, &mut sig)? {
                ControlFlow::Continue(draw) => draw_now = draw,
                ControlFlow::Break(exit) => return Ok(exit),
            },
            // Applied while a shell has the terminal too: the cockpit comes back live.
            update = backend.updates.recv(), if backend_open => match update {
                Some(first) => data_dirty |= ingest(app, first, &mut backend, &mut effects),
                None => backend_open = false,
            },
            (name, result) = switching.done() => {
                super::switch::finish(app, &mut backend, &name, result).await;
                backend_open = true;
                draw_now = true;
            },
            _ = frame_timer.tick() => {
                if data_dirty {
                    draw_now = true;
                }
            },
            _ = clock.tick() => effects = on_clock(terminal, app, &shell, &mut drawn)?,
            _ = sig.tstp.recv() => draw_now = job_control(terminal, app, &shell, Job::Stop)?,
            _ = sig.cont.recv() => draw_now = job_control(terminal, app, &shell, Job::Continue)?,
            _ = sig.term.recv() => {
                shell.stop().await;
                return Ok(Exit::Terminated);
            }
            _ = sig.hup.recv() => {
                shell.stop().await;
                return Ok(Exit::Hangup);
            }
        }
        let mut io =
            Io { backend: &backend, shell: &mut shell, switching: &mut switching, connect: &connect };
        match carry_out(effects, terminal, app, &mut io).await? {
            Carried::Quit => return Ok(Exit::Quit),
            _ if app.should_quit => return Ok(Exit::Quit),
            Carried::Said => draw_now = true,
            Carried::Done => {}
        }
        if draw_now && !shell.has_terminal() {
            app.now = now_ms().max(app.now);
            drawn = draw(terminal, app)?.1;
            data_dirty = false;
        }
    }
}

/// The clock's second: the app's time moves on (drawn unless a shell has the terminal),
/// and merged logs pick up instances that joined.
fn on_clock(
    terminal: &mut Tui,
    app: &mut App,
    shell: &Shell,
    drawn: &mut Drawn,
) -> std::io::Result<Vec<Effect>> {
    if shell.has_terminal() {
        app.update(Action::Tick(now_ms()));
    } else {
        *drawn = tick(terminal, app, now_ms())?.1;
    }
    Ok(app.follow_log_instances())
}

/// A stop (Ctrl-Z, SIGTSTP) or a continue from outside.
#[derive(Clone, Copy)]
enum Job {
    Stop,
    Continue,
}

/// Gives the terminal back on a stop and takes it again on a continue; says whether to
/// draw. The shell's terminal is the shell's: a stop or continue from outside is its
/// business until it ends, and the screen is taken back then anyway.
fn job_control(terminal: &mut Tui, app: &App, shell: &Shell, job: Job) -> std::io::Result<bool> {
    if shell.has_terminal() {
        return Ok(false);
    }
    match job {
        Job::Stop => terminal::suspend(terminal, app.mouse)?,
        Job::Continue => terminal::resume(terminal, app.mouse)?,
    }
    Ok(true)
}

/// The signals the loop hears.
struct Signals {
    term: Signal,
    hup: Signal,
    tstp: Signal,
    cont: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            tstp: signal(SignalKind::from_raw(signal_hook::consts::SIGTSTP))?,
            cont: signal(SignalKind::from_raw(signal_hook::consts::SIGCONT))?,
        })
    }
}

/// A terminal event: the effects it asks for and whether to draw, or the loop's end.
fn on_input(
    ev: Option<std::io::Result<TermEvent>>,
    terminal: &mut Tui,
    app: &mut App,
    drawn: &Drawn,
) -> std::io::Result<ControlFlow<Exit, (Vec<Effect>, bool)>> {
    let mut effects = Vec::new();
    let mut draw_now = false;
    match ev {
        Some(Ok(TermEvent::Key(key))) if is_suspend(&key) => {
            terminal::suspend(terminal, app.mouse)?;
            draw_now = true;
        }
        Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
            if let Some(action) = key_action(app, &key) {
                effects = app.update(action);
                draw_now = true;
            }
        }
        Some(Ok(TermEvent::Mouse(mouse))) => {
            if let Some(action) = super::mouse::action(&mouse, drawn) {
                effects = app.update(action);
                draw_now = true;
            }
        }
        Some(Ok(TermEvent::Resize(_, _))) => {
            app.update(Action::Resize);
            draw_now = true;
        }
        Some(Ok(_)) => {}
        Some(Err(err)) => return Err(err),
        // The terminal's input ended: nothing more can be asked of the cockpit.
        None => return Ok(ControlFlow::Break(Exit::Quit)),
    }
    Ok(ControlFlow::Continue((effects, draw_now)))
}

/// A step of the shell: the terminal handed over or taken back. Continues with whether to
/// draw, or ends the loop when a signal ended the shell.
fn on_shell_step(
    step: Step,
    terminal: &mut Tui,
    app: &mut App,
    input: &mut Option<EventStream>,
    shell: &mut Shell,
    sig: &mut Signals,
) -> std::io::Result<ControlFlow<Exit, bool>> {
    match step {
        Step::Opened(Ok(session)) => {
            *input = None;
            terminal::restore();
            shell.run(session);
            Ok(ControlFlow::Continue(false))
        }
        Step::Opened(Err(err)) => {
            app.shell_not_opened(&err);
            Ok(ControlFlow::Continue(true))
        }
        Step::Ended(ended) => {
            // A hang-up or a TERM under the shell ended it too (the session's loop
            // hears them as well): end here, without taking back a terminal that
            // may be gone.
            if sig.hup.recv().now_or_never().is_some() {
                return Ok(ControlFlow::Break(Exit::Hangup));
            }
            if sig.term.recv().now_or_never().is_some() {
                return Ok(ControlFlow::Break(Exit::Terminated));
            }
            terminal::resume(terminal, app.mouse)?;
            *input = Some(EventStream::new());
            app.shell_ended(ended);
            Ok(ControlFlow::Continue(true))
        }
    }
}

/// What carrying out a batch of effects left to do.
enum Carried {
    Done,
    /// The status line has news (a log saved, or not).
    Said,
    Quit,
}

/// What effects are carried out through, besides the terminal and the app.
struct Io<'a> {
    backend: &'a BackendHandle,
    shell: &'a mut Shell,
    switching: &'a mut Switching,
    connect: &'a Connect,
}

/// Carries out what `App::update` asked for: commands to the backend, the clipboard, a
/// saved log, mouse capture, a shell to open, a plane to switch to.
async fn carry_out(
    effects: Vec<Effect>,
    terminal: &mut Tui,
    app: &mut App,
    io: &mut Io<'_>,
) -> std::io::Result<Carried> {
    let Io { backend, shell, .. } = io;
    let mut carried = Carried::Done;
    for effect in effects {
        let command = match effect {
            Effect::Quit => return Ok(Carried::Quit),
            Effect::Send(cmd) => BackendRequest::Send(cmd),
            Effect::Resync => BackendRequest::Resync,
            Effect::Logs(start) => BackendRequest::Logs(start),
            Effect::LogsStop => BackendRequest::LogsStop,
            Effect::Forward(start) => BackendRequest::Forward(start),
            Effect::ForwardStop(session) => BackendRequest::ForwardStop(session),
            Effect::Upload(req) => BackendRequest::Upload(req),
            Effect::Releases(app) => BackendRequest::Releases(app),
            Effect::Export(req) => BackendRequest::Export(req),
            Effect::Copy(text) => {
                terminal::copy(terminal, &text)?;
                continue;
            }
            Effect::Exec(start) => {
                shell.open(&backend.exec, start);
                continue;
            }
            Effect::MouseCapture(on) => {
                terminal::set_mouse(on)?;
                continue;
            }
            Effect::SwitchContext(name) => {
                io.switching.start(io.connect, name);
                continue;
            }
            Effect::SaveLog { path, text, lines } => {
                match tokio::fs::write(&path, text).await {
                    Ok(()) => app.say(crate::app::Level::Info, format!("saved {lines} lines to {path}")),
                    Err(err) => app.say(crate::app::Level::Error, format!("could not save {path}: {err}")),
                }
                carried = Carried::Said;
                continue;
            }
        };
        // The backend gone means the cockpit is ending; nothing is left to tell.
        let _ = backend.commands.send(command);
    }
    Ok(carried)
}

/// The terminal's next event; never, while a shell has the terminal.
async fn next_input(input: &mut Option<EventStream>) -> Option<std::io::Result<TermEvent>> {
    match input {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Ctrl-Z suspends, whatever has the keys: raw mode turned the terminal's own into a key.
fn is_suspend(key: &crossterm::event::KeyEvent) -> bool {
    use crossterm::event::{KeyCode, KeyModifiers};
    key.kind == KeyEventKind::Press
        && key.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(key.code, KeyCode::Char('z' | 'Z'))
}

/// Draws a frame of the app; writes nothing when nothing on screen changed. Returns whether
/// it wrote, and what it drew where.
pub fn draw<W: Write>(
    terminal: &mut Terminal<FrameBackend<W>>,
    app: &mut App,
) -> std::io::Result<(bool, Drawn)> {
    let before = terminal.backend().frames();
    let drawn = render(terminal, app)?;
    Ok((terminal.backend().frames() != before, drawn))
}

/// One frame on any backend (the terminal's, or a test's): the app readies the frame
/// context for the size the frame will have (the table's index is rebuilt at most once
/// per frame, however many events came in), then the views draw from it and say where
/// they put the tabs and rows. The draw itself changes nothing in the app.
pub fn render<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) -> Result<Drawn, B::Error> {
    terminal.autoresize()?;
    let height = terminal.get_frame().area().height;
    let ctx = app.frame_context(crate::views::body_rows(height));
    let mut drawn = Drawn::default();
    terminal.draw(|frame| drawn = crate::views::render(&ctx, frame))?;
    Ok(drawn)
}

/// The clock's tick: the views' ages move on, and a frame is drawn at once. Only text that
/// the new time changes is written (see `output`), and the times on screen are coarse
/// (`protocol::clock`), so an idle cockpit writes nothing; a late heartbeat, a status line
/// that expires or a data age past its limit is written the second it shows. The bench
/// calls this too, so its idle figure is the loop's.
pub fn tick<W: Write>(
    terminal: &mut Terminal<FrameBackend<W>>,
    app: &mut App,
    now: u64,
) -> std::io::Result<(bool, Drawn)> {
    app.update(Action::Tick(now));
    draw(terminal, app)
}

/// Applies a backend update and the burst behind it as one model change (one frame);
/// says whether the screen's data changed beyond metrics.
fn ingest(
    app: &mut App,
    first: crate::backend::Inbound,
    backend: &mut BackendHandle,
    effects: &mut Vec<Effect>,
) -> bool {
    let structure = app.replica.structure;
    let mut metrics_only = is_metrics(&first);
    effects.extend(app.apply(first));
    for _ in 0..BATCH {
        match backend.updates.try_recv() {
            Ok(more) => {
                metrics_only &= is_metrics(&more);
                effects.extend(app.apply(more));
            }
            Err(_) => break,
        }
    }
    // Metrics alone wait for the 1 s clock: a large fleet heartbeats all the time, and
    // redrawing for each would keep the cockpit busy.
    !metrics_only || app.replica.structure != structure
}

/// Heartbeats change metrics; whatever else the backend says changes what is on screen.
fn is_metrics(update: &crate::backend::Inbound) -> bool {
    use crate::backend::{Feed, Inbound};
    matches!(update, Inbound::Feed(Feed::Heartbeat(_) | Feed::Beacon(_)))
}

/// Dialogs and text fields take keys first (a `q` typed in the palette is text); otherwise
/// the keymap decides.
fn key_action(app: &App, key: &crossterm::event::KeyEvent) -> Option<Action> {
    if let Some(action) = crate::app::logs::key_action(app, key) {
        return Some(action);
    }
    if let Some(action) = crate::app::releases::key_action(app, key) {
        return Some(action);
    }
    match app.input_mode() {
        InputMode::Normal => app.keymap.action_for(key),
        mode => prompt::action_for(mode, key),
    }
}
