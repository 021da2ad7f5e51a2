//! Shell completions and the manual page, generated from the same clap definitions as
//! the parser, so neither can fall behind a flag.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write a page per command into this directory (quarterdeck.1, quarterdeck-ctl.1,
    /// quarterdeck-ctl-deploy.1, ...) instead of printing quarterdeck.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The binary's name in completions and pages: what a user types.
const NAME: &str = "quarterdeck";

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), NAME, &mut out);
    out
}

/// The top-level manual page, in roff.
pub fn man_page() -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| format!("cannot render the manual page: {e}"))?;
    Ok(out)
}

pub fn run_completions(args: CompletionsArgs) -> Result<(), String> {
    emit(&completions(args.shell))
}

pub fn run_man(args: ManArgs) -> Result<(), String> {
    match args.dir {
        None => emit(&man_page()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(|e| format!("cannot write the manual pages into {}: {e}", dir.display()))
        }
    }
}

fn emit(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // `quarterdeck man | head` closed the pipe: what was read is all that was wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("cannot write to stdout: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_completion_knows_the_subcommands_and_their_flags() {
        let script = String::from_utf8(completions(Shell::Bash)).expect("utf-8");
        assert!(script.contains("quarterdeck"), "names the binary");
        for word in ["ctl", "deploy", "controller", "completions", "--nats", "--cmd", "--arg"] {
            assert!(script.contains(word), "bash completion lacks {word}");
        }
    }

    #[test]
    fn every_shell_gets_a_script() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
            let script = String::from_utf8(completions(shell)).expect("utf-8");
            assert!(script.contains("deploy"), "{shell}: no deploy");
        }
    }

    #[test]
    fn the_man_page_is_roff_with_the_commands() {
        let page = String::from_utf8(man_page().expect("rendered")).expect("utf-8");
        assert!(page.starts_with(".ie") || page.contains("\n.TH "), "a roff page with .TH:\n{page}");
        assert!(page.contains(".TH quarterdeck 1"), "{page}");
        assert!(page.contains("\\-\\-nats"), "the bus flags are in it");
        assert!(page.contains("ctl"), "the subcommands are listed");
    }

    #[test]
    fn man_dir_writes_a_page_per_command() {
        let dir = std::env::temp_dir().join(format!("qd-man-{}", std::process::id()));
        run_man(ManArgs { dir: Some(dir.clone()) }).expect("written");
        for page in ["quarterdeck.1", "quarterdeck-ctl.1", "quarterdeck-ctl-deploy.1"] {
            let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.contains(".TH"), "{page} is roff");
        }
        let deploy = std::fs::read_to_string(dir.join("quarterdeck-ctl-deploy.1")).expect("read");
        assert!(deploy.contains("\\-\\-cmd"), "the deploy page has its flags");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
