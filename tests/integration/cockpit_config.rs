//! A bad config file stops the cockpit before it takes the terminal (issue 12, fault 7):
//! the real binary, with its config directory (`$XDG_CONFIG_HOME/quarterdeck`, else
//! `$HOME/.config/quarterdeck`) in a temporary directory, exits non-zero with the file, the
//! line, the key and the nearest known key, and writes nothing to the terminal: no
//! alternate screen, even when it has a real terminal (a pseudo-terminal from `script`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::nats_support::BIN;

/// The escape that switches to the alternate screen: the cockpit's first write.
const ALT_SCREEN: &str = "\u{1b}[?1049h";

struct ConfigHome(PathBuf);

impl ConfigHome {
    fn new(test: &str) -> ConfigHome {
        let dir = std::env::temp_dir().join(format!("qd-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("quarterdeck")).expect("config dir");
        ConfigHome(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join("quarterdeck").join(name);
        std::fs::write(&path, text).expect("config file");
        path
    }

    /// The cockpit as an operator starts it: no bus (the sandbox), this config home.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_remove("NATS_URL")
            .env("XDG_CONFIG_HOME", &self.0)
            .env("HOME", &self.0)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The cockpit with a pseudo-terminal of its own; killed after 20 s (an old build
    /// would sit in its event loop). stdout and stderr both arrive on the terminal.
    fn on_a_terminal(&self) -> Output {
        self.command("timeout")
            .args(["20", "script", "-q", "-e", "-c", BIN, "/dev/null"])
            .output()
            .expect("script")
    }
}

impl Drop for ConfigHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check_refused(home: &ConfigHome, file: &Path, expected: &str) {
    let out = home.command(BIN).output().expect("the cockpit runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "exit code {:?}: {stderr}", out.status.code());
    let line = format!("quarterdeck: {}: {expected}", file.display());
    assert!(stderr.lines().any(|l| l == line), "expected {line:?} in: {stderr}");
    assert_eq!(stdout, "", "nothing written to the screen");

    let tty = home.on_a_terminal();
    let screen = text(&tty.stdout);
    assert_eq!(tty.status.code(), Some(1), "exits at once with an error: {screen}");
    assert!(screen.contains(expected), "{screen:?}");
    assert!(!screen.contains(ALT_SCREEN), "the terminal was taken: {screen:?}");
}

#[test]
fn cockpit_config_a_typo_stops_the_cockpit_before_the_screen_opens() {
    let home = ConfigHome::new("cockpit-config-typo");
    let config = home.write("config.toml", "# operator settings\nreadonly = true\n");
    check_refused(&home, &config, "line 2: unknown key 'readonly' — did you mean 'read_only'?");

    let config = home.write("config.toml", "read_only = yes\n");
    let out = home.command(BIN).output().expect("the cockpit runs");
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.starts_with(&format!("quarterdeck: {}: line 1: ", config.display())), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn cockpit_config_a_bad_keys_file_stops_the_cockpit_too() {
    let home = ConfigHome::new("cockpit-config-keys");
    home.write("config.toml", "read_only = true\n");
    let keys = home.write("keys.toml", "[keys]\nquit = [\"q\"]\nrestrat = [\"R\"]\n");
    check_refused(&home, &keys, "line 3: unknown action 'restrat' — did you mean 'restart'?");
}
