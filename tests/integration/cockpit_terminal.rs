//! The cockpit in a real terminal, driven through tmux as an on-call engineer would use it:
//! Ctrl-Z suspends it to the shell and `fg` brings it back drawn whole, SIGHUP ends it with
//! status 129 and the terminal given back (raw mode off, the cursor shown), and TERM decides the colours it sends. Each test
//! has a tmux server of its own (`-L`), so nothing here touches another tmux. Needs tmux
//! (./scripts/test installs it).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::cockpit_support::{TMUX_WAIT as WAIT, Tmux};

const BIN: &str = env!("CARGO_BIN_EXE_quarterdeck");

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
    t.type_text(&cockpit(""));
    t.keys(&["Enter"]);
    let before = t.wait_for(&DRAWN, "the cockpit's first frame");
    let host_line = before.lines().find(|l| l.contains("host-")).expect("a host row").trim().to_string();
    let host =
        host_line.split_whitespace().find(|w| w.starts_with("host-")).expect("a host name").to_string();

    t.keys(&["C-z"]);
    // The shell has the terminal: its job report and prompt, on the normal screen.
    let suspended = t.wait_for(&["Stopped", "qd$"], "Ctrl-Z gives the terminal to the shell");
    assert!(!suspended.contains("2 Instances"), "the cockpit's screen is gone:\n{suspended}");
    assert!(t.cursor_visible(), "the shell's cursor shows while the cockpit is suspended");

    t.type_text("fg");
    t.keys(&["Enter"]);
    // Every part of the screen comes back, not only what changed since the suspend.
    let after = t.wait_for(&[&DRAWN[..], &[host.as_str()]].concat(), "fg redraws the whole screen");
    assert!(!after.contains("Stopped"), "the cockpit's screen is back:\n{after}");

    // Still alive and taking keys: `2` shows the Instances panel.
    t.keys(&["2"]);
    t.wait_for(&["VERSION", "UPTIME"], "the resumed cockpit takes keys");
    t.keys(&["q"]);
    t.wait_for(&["qd$"], "the cockpit quits to the shell");
    assert!(t.cursor_visible(), "the shell's cursor shows after the cockpit quits");
}

#[test]
fn a_stop_from_outside_and_fg_bring_the_screen_back_whole() {
    // SIGSTOP cannot be caught: the shell writes its job report over the cockpit's screen,
    // and only SIGCONT on `fg` says the screen must be drawn again.
    let Some(t) = Tmux::start("stop", SHELL) else { return };
    t.wait_for(&["qd$"], "the shell's prompt");
    t.type_text(&cockpit(""));
    t.keys(&["Enter"]);
    let before = t.wait_for(&DRAWN, "the cockpit's first frame");
    let host = before.split_whitespace().find(|w| w.starts_with("host-")).expect("a host name").to_string();
    let pid = t.shells_child();
    let sent = Command::new("kill").args(["-STOP", &pid.to_string()]).status().expect("kill runs");
    assert!(sent.success());
    t.wait_for(&["Stopped", "qd$"], "SIGSTOP gives the terminal to the shell");
    t.type_text("fg");
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
    t.type_text(&format!("{}; echo \"exit=$?\"", cockpit("")));
    t.keys(&["Enter"]);
    t.wait_for(&DRAWN, "the cockpit's first frame");
    let pid = t.shells_child();
    let sent = Command::new("kill").args(["-HUP", &pid.to_string()]).status().expect("kill runs");
    assert!(sent.success());
    let screen = t.wait_for(&["exit=129"], "SIGHUP's exit status");
    assert!(!screen.contains("2 Instances"), "the alternate screen was left:\n{screen}");
    assert!(t.cursor_visible(), "the shell's cursor shows after SIGHUP");
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
