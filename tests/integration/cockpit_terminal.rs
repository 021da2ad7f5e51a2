//! The cockpit in a real terminal, driven through tmux as an on-call engineer would use it:
//! Ctrl-Z suspends it to the shell and `fg` brings it back drawn whole, SIGHUP ends it with
//! status 129 and the terminal given back, and TERM decides the colours it sends. Each test
//! has a tmux server of its own (`-L`), so nothing here touches another tmux. Needs tmux
//! (./scripts/test installs it).

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_quarterdeck");
/// The sandbox starts in a few seconds; a loaded machine gets far more.
const WAIT: Duration = Duration::from_secs(60);

/// A tmux server and its one session, both gone on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts `command` in a 120x30 window, or says why the test skips.
    fn start(test: &str, command: &str) -> Option<Tmux> {
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
                "120",
                "-y",
                "30",
            ])
            .arg(command)
            .status()
            .expect("tmux starts");
        assert!(status.success(), "tmux new-session failed");
        Some(t)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket]).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "t", k]);
        }
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// The screen with its colours and attributes, as SGR sequences.
    fn styled_screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-e", "-t", "t"])
    }

    /// Waits until the screen shows everything in `texts`; returns that screen.
    fn wait_for(&self, texts: &[&str], what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{what}: expected {texts:?} on screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process the pane's shell is running in the foreground (the cockpit).
    fn shells_child(&self) -> u32 {
        let shell = self.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
        let shell = shell.trim();
        let deadline = Instant::now() + WAIT;
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

/// An interactive shell with job control and a prompt that is easy to find.
const SHELL: &str = "env -u NO_COLOR -u COLORTERM PS1='qd$ ' bash --norc --noprofile -i";

/// The sandbox cockpit, as a user starts it.
fn cockpit(env: &str) -> String {
    format!("{env} {BIN} --seed 42 --sandbox-crash-rate 0")
}

/// What a drawn cockpit shows: the tabs and the Hosts table's header.
const DRAWN: [&str; 3] = ["1 Hosts", "2 Instances", "HOST"];

#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_brings_the_screen_back_whole() {
    let Some(t) = Tmux::start("suspend", SHELL) else { return };
    t.wait_for(&["qd$"], "the shell's prompt");
    t.run(&["send-keys", "-t", "t", "-l", &cockpit("")]);
    t.keys(&["Enter"]);
    let before = t.wait_for(&DRAWN, "the cockpit's first frame");
    let host_line = before.lines().find(|l| l.contains("host-")).expect("a host row").trim().to_string();
    let host =
        host_line.split_whitespace().find(|w| w.starts_with("host-")).expect("a host name").to_string();

    t.keys(&["C-z"]);
    // The shell has the terminal: its job report and prompt, on the normal screen.
    let suspended = t.wait_for(&["Stopped", "qd$"], "Ctrl-Z gives the terminal to the shell");
    assert!(!suspended.contains("2 Instances"), "the cockpit's screen is gone:\n{suspended}");

    t.run(&["send-keys", "-t", "t", "-l", "fg"]);
    t.keys(&["Enter"]);
    // Every part of the screen comes back, not only what changed since the suspend.
    let after = t.wait_for(&[&DRAWN[..], &[host.as_str()]].concat(), "fg redraws the whole screen");
    assert!(!after.contains("Stopped"), "the cockpit's screen is back:\n{after}");

    // Still alive and taking keys: `2` shows the Instances panel.
    t.keys(&["2"]);
    t.wait_for(&["VERSION", "ENDPOINT"], "the resumed cockpit takes keys");
    t.keys(&["q"]);
    t.wait_for(&["qd$"], "the cockpit quits to the shell");
}

#[test]
fn a_stop_from_outside_and_fg_bring_the_screen_back_whole() {
    // SIGSTOP cannot be caught: the shell writes its job report over the cockpit's screen,
    // and only SIGCONT on `fg` says the screen must be drawn again.
    let Some(t) = Tmux::start("stop", SHELL) else { return };
    t.wait_for(&["qd$"], "the shell's prompt");
    t.run(&["send-keys", "-t", "t", "-l", &cockpit("")]);
    t.keys(&["Enter"]);
    let before = t.wait_for(&DRAWN, "the cockpit's first frame");
    let host = before.split_whitespace().find(|w| w.starts_with("host-")).expect("a host name").to_string();
    let pid = t.shells_child();
    let sent = Command::new("kill").args(["-STOP", &pid.to_string()]).status().expect("kill runs");
    assert!(sent.success());
    t.wait_for(&["Stopped", "qd$"], "SIGSTOP gives the terminal to the shell");
    t.run(&["send-keys", "-t", "t", "-l", "fg"]);
    t.keys(&["Enter"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let screen = t.screen();
        let whole = DRAWN.iter().chain([&host.as_str()]).all(|s| screen.contains(s));
        if whole && !screen.contains("Stopped") {
            break;
        }
        assert!(Instant::now() < deadline, "fg: the screen is not drawn whole again:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["q"]);
    t.wait_for(&["qd$"], "the cockpit quits to the shell");
}

#[test]
fn sighup_ends_the_cockpit_with_status_129_and_the_terminal_given_back() {
    let Some(t) = Tmux::start("sighup", SHELL) else { return };
    t.wait_for(&["qd$"], "the shell's prompt");
    t.run(&["send-keys", "-t", "t", "-l", &format!("{}; echo \"exit=$?\"", cockpit(""))]);
    t.keys(&["Enter"]);
    t.wait_for(&DRAWN, "the cockpit's first frame");
    let pid = t.shells_child();
    let sent = Command::new("kill").args(["-HUP", &pid.to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let screen = t.wait_for(&["exit=129"], "SIGHUP's exit status");
    assert!(!screen.contains("2 Instances"), "the alternate screen was left:\n{screen}");
    // Raw mode is off again: the terminal is line-buffered, with echo.
    t.run(&[
        "send-keys",
        "-t",
        "t",
        "-l",
        "stty -a | tr ' ' '\\n' | grep -E -x -- '-?(icanon|echo)' | tr '\\n' ,",
    ]);
    t.keys(&["Enter"]);
    t.wait_for(&["icanon,echo,"], "the terminal's modes after SIGHUP");
}

/// The SGR colour parameters a styled capture uses, e.g. `31`, `38;5;239`.
fn colours(styled: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seq in styled.split('\x1b').filter_map(|s| s.strip_prefix('[')) {
        let Some(end) = seq.find('m') else { continue };
        let params: Vec<&str> = seq[..end].split(';').collect();
        let mut i = 0;
        while i < params.len() {
            let p = params[i];
            match p {
                "38" | "48" if params.get(i + 1) == Some(&"5") => {
                    out.push(params[i..(i + 3).min(params.len())].join(";"));
                    i += 3;
                }
                "38" | "48" if params.get(i + 1) == Some(&"2") => {
                    out.push(params[i..(i + 5).min(params.len())].join(";"));
                    i += 5;
                }
                // 39 and 49 are the default colours: no colour at all.
                _ if (30..=37).contains(&p.parse::<u32>().unwrap_or(0))
                    || (40..=47).contains(&p.parse::<u32>().unwrap_or(0))
                    || (90..=107).contains(&p.parse::<u32>().unwrap_or(0)) =>
                {
                    out.push(p.to_string());
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }
    out
}

#[test]
fn term_linux_and_vt100_get_eight_colours_and_dumb_none() {
    for (term, eight) in [("linux", true), ("vt100", true), ("dumb", false)] {
        let test = format!("term-{term}");
        let Some(t) = Tmux::start(&test, &cockpit(&format!("env -u NO_COLOR -u COLORTERM TERM={term}")))
        else {
            return;
        };
        t.wait_for(&DRAWN, &format!("TERM={term}: the first frame"));
        let used = colours(&t.styled_screen());
        // crossterm writes the 8 as palette entries 0-7 (`38;5;1`), which consoles read.
        let basic = |c: &String| match c.split(';').collect::<Vec<_>>()[..] {
            [n] => n.parse::<u32>().is_ok_and(|n| (30..=37).contains(&n) || (40..=47).contains(&n)),
            ["38" | "48", "5", n] => n.parse::<u32>().is_ok_and(|n| n < 8),
            _ => false,
        };
        if eight {
            assert!(!used.is_empty(), "TERM={term}: the screen has colour");
            let beyond: Vec<&String> = used.iter().filter(|c| !basic(c)).collect();
            assert!(beyond.is_empty(), "TERM={term}: colours beyond the 8: {beyond:?}");
        } else {
            assert!(used.is_empty(), "TERM={term}: no colour at all, got {used:?}");
        }
        t.keys(&["q"]);
    }
}

#[test]
fn sgr_colours_are_read_from_a_capture() {
    assert_eq!(colours("\x1b[31m a \x1b[38;5;239m b \x1b[39m\x1b[1;44m c"), ["31", "38;5;239", "44"]);
    assert_eq!(colours("\x1b[38;2;1;2;3m\x1b[7m"), ["38;2;1;2;3"]);
    assert!(colours("plain \x1b[0m\x1b[1m").is_empty());
}
