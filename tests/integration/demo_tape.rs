//! Replays demo.tape against the sandbox in tmux and checks the screen after each step,
//! so the tape cannot drift from the product. Needs tmux (./scripts/test installs it).

use std::time::{Duration, Instant};

use crate::cockpit_support::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_quarterdeck");

/// One step of the tape that the replay carries out.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Type(String),
    Key(&'static str, usize),
    Sleep(Duration),
    Expect(String),
}

fn duration(s: &str) -> Duration {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().unwrap_or(0))
    } else {
        Duration::from_secs_f64(s.trim_end_matches('s').parse().unwrap_or(0.0))
    }
}

/// The steps after `# replay: start`, in VHS syntax: Type, Enter, Escape, Tab, Space,
/// Backspace, arrows, Ctrl+X, Sleep, an optional repeat count, and `# expect:` checks.
fn parse(tape: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut started = false;
    for line in tape.lines().map(str::trim) {
        if line == "# replay: start" {
            started = true;
            continue;
        }
        if !started || line.is_empty() {
            continue;
        }
        if let Some(text) = line.strip_prefix("# expect:") {
            steps.push(Step::Expect(text.trim().to_string()));
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let count = rest.trim().parse::<usize>().unwrap_or(1);
        let key = |k| Step::Key(k, count);
        let step = match cmd.split('@').next().unwrap_or(cmd) {
            "Type" => Step::Type(rest.trim().trim_matches('"').to_string()),
            "Sleep" => Step::Sleep(duration(rest)),
            "Enter" => key("Enter"),
            "Escape" => key("Escape"),
            "Tab" => key("Tab"),
            "Space" => key("Space"),
            "Backspace" => key("BSpace"),
            "Up" => key("Up"),
            "Down" => key("Down"),
            "Left" => key("Left"),
            "Right" => key("Right"),
            "Ctrl+C" => key("C-c"),
            other => panic!("demo.tape: unsupported command {other:?} in {line:?}"),
        };
        steps.push(step);
    }
    steps
}

#[test]
fn the_tape_parses_every_command_it_uses() {
    let steps = parse("# replay: start\nType \"2\"\nSleep 500ms\nDown 3\n# expect: Instances\nEnter\n");
    assert_eq!(
        steps,
        vec![
            Step::Type("2".into()),
            Step::Sleep(Duration::from_millis(500)),
            Step::Key("Down", 3),
            Step::Expect("Instances".into()),
            Step::Key("Enter", 1),
        ]
    );
}

#[test]
fn demo_tape_replays_against_the_sandbox() {
    let tape = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo.tape")).expect("demo.tape");
    let steps = parse(&tape);
    assert!(steps.iter().filter(|s| matches!(s, Step::Expect(_))).count() >= 8, "the tape checks too little");
    // A fixed seed and the tape's own window size; the cockpit runs exactly as a user would.
    let cmd = format!("{BIN} --seed 42 --sandbox-crash-rate 0; sleep 30");
    let Some(t) = Tmux::start_sized("demo_tape", &cmd, 140, 40) else { return };
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Type(text) => t.type_text(text),
            Step::Key(key, count) => {
                for _ in 0..*count {
                    t.keys(&[key]);
                }
            }
            // The tape's pauses are for viewers; the replay only waits for what it checks.
            Step::Sleep(_) => std::thread::sleep(Duration::from_millis(100)),
            Step::Expect(text) => {
                t.wait_for(&[text.as_str()], &format!("demo.tape step {n}"));
            }
        }
    }
    // The tape ends with `q`: the cockpit exits and gives the terminal back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.run(&["list-panes", "-t", "t", "-F", "#{pane_current_command}"]).contains("quarterdeck") {
        assert!(Instant::now() < deadline, "the cockpit did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}
