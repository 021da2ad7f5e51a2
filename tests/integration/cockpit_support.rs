//! The cockpit as the integration tests drive it, in one place: headless (a fresh app, its
//! screen drawn to a test buffer and read back as text, typing, the open wizard; the unit
//! tests' twin is `src/views/harness.rs`, test-only inside the crate, so not reachable from
//! here), or in a real terminal through tmux (`Tmux`: keys in, the screen out).

use std::process::Command;
use std::time::{Duration, Instant};

use quarterdeck::actions::keymap::Keymap;
use quarterdeck::actions::{Action, Effect};
use quarterdeck::app::{App, Overlay, Wizard};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::theme::{ColorMode, Theme};

/// A cockpit with nothing in its replica yet, the default keys and colours, the clock now;
/// `bus_label` is what its header says it is connected to.
pub fn cockpit_app(bus_label: impl Into<String>) -> App {
    App::new(bus_label, Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms())
}

/// The cockpit's screen, `width` x 30, as text.
pub fn screen(app: &mut App, width: u16) -> String {
    screen_rows(app, width, 30)
}

/// The cockpit's screen, `width` x `rows`, as text, one line per row.
pub fn screen_rows(app: &mut App, width: u16, rows: u16) -> String {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, rows)).expect("test terminal");
    quarterdeck::tui::render(&mut terminal, app).expect("draw");
    let buf = terminal.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

/// Each character of `text` typed into the app, and the effects the keystrokes asked for.
pub fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| app.update(Action::Input(c))).collect()
}

/// The open wizard; a test that expects one fails here when none is open.
pub fn wizard(app: &App) -> &Wizard {
    match app.overlays.last() {
        Some(Overlay::Wizard(w)) => w,
        other => panic!("no wizard open: {other:?}"),
    }
}

// -- the cockpit in a real terminal, driven through tmux ----------------------------------

/// How long a tmux test waits for the screen: the sandbox starts in a few seconds, a loaded
/// machine takes far more.
pub const TMUX_WAIT: Duration = Duration::from_secs(60);

/// A tmux server and its one session, both gone on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a 120x30 window, or says why the test skips.
    pub fn start(test: &str, command: &str) -> Option<Tmux> {
        Tmux::start_sized(test, command, 120, 30)
    }

    /// Starts `command` in a `width`x`height` window on a tmux server of its own (`-L`, no
    /// config file), or says why the test skips: no tmux outside CI.
    pub fn start_sized(test: &str, command: &str, width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but tmux is missing: run ./scripts/test");
            }
            eprintln!("skipped: {test}: no tmux (run ./scripts/test)");
            return None;
        }
        let t = Tmux { socket: format!("qd-{test}-{}", std::process::id()) };
        let status = Command::new("tmux")
            .args([
                "-L",
                &t.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(command)
            .status()
            .expect("tmux starts");
        assert!(status.success(), "tmux new-session failed");
        Some(t)
    }

    /// Runs a tmux command against this server; its output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Sends each of `keys` by its tmux name (`Enter`, `C-z`, `q`).
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "t", k]);
        }
    }

    /// Types `text` as it is, each character a key.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// The screen with its colours and attributes, as SGR sequences.
    pub fn styled_screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", "t"])
    }

    /// Waits until the screen shows everything in `texts`; returns that screen.
    pub fn wait_for(&self, texts: &[&str], what: &str) -> String {
        let deadline = Instant::now() + TMUX_WAIT;
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{what}: expected {texts:?} on screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the terminal shows its cursor (tmux's `cursor_flag`): the cockpit hides it,
    /// and must show it again whenever it gives the terminal back.
    pub fn cursor_visible(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "t", "#{cursor_flag}"]).trim() == "1"
    }

    /// The process the pane's shell is running in the foreground (the cockpit).
    pub fn shells_child(&self) -> u32 {
        let shell = self.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
        let shell = shell.trim();
        let deadline = Instant::now() + TMUX_WAIT;
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                return pid.parse().expect("a pid");
            }
            assert!(Instant::now() < deadline, "the shell {shell} started nothing");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Quiet: the session may have ended with the cockpit already.
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
    }
}
