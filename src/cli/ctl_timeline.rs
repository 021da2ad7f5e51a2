//! `ctl note` and `ctl timeline`: a line for the incident's timeline, and the handover
//! (`protocol::timeline`) of a window of the history, as Markdown or JSON, to stdout or
//! a file.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::protocol::Event;
use crate::protocol::clock::now_ms;
use crate::protocol::timeline::{self, Timeline};

#[derive(Debug, Args)]
pub struct NoteArgs {
    /// The note: its words are joined with spaces. One line of 1 to 2000 characters.
    #[arg(required = true, value_name = "TEXT", num_args = 1.., allow_hyphen_values = true)]
    pub words: Vec<String>,
    /// The command id; sending the same id again adds no second note.
    /// [default: a new random id]
    #[arg(long, value_name = "ID")]
    pub command_id: Option<String>,
}

impl NoteArgs {
    pub fn text(&self) -> String {
        self.words.join(" ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Markdown, to paste into an incident ticket.
    Md,
    /// JSON: `{plane, since, until, summary, entries: [{ts, time, rev, kind, ...}]}`.
    Json,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Where the window starts: a duration back from now (30m, 2h, 1d) or an RFC 3339 time
    /// (2026-12-06T10:00:00Z).
    #[arg(long, default_value = "2h", value_parser = window_start, value_name = "WHEN")]
    pub since: u64,
    /// Where it ends, in the same forms [default: now].
    #[arg(long, value_parser = window_start, value_name = "WHEN")]
    pub until: Option<u64>,
    /// `md`: Markdown to paste into a ticket; `json` (or ctl's `--json`): the same entries
    /// for scripts.
    #[arg(long, value_enum, default_value = "md")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `--since` and `--until`: `30m`, `2h`, `1d` back from now, or an RFC 3339 time.
fn window_start(s: &str) -> Result<u64, String> {
    super::parse::since(s).map_err(|e| e.replace("a log has no lines after now", "the history ends now"))
}

/// What `ctl timeline` prints or writes, and a warning when the history it got was cut.
pub fn render(
    plane: &str,
    args: &TimelineArgs,
    events: &[Event],
) -> Result<(String, Option<String>), String> {
    let until = args.until.unwrap_or_else(now_ms);
    if until < args.since {
        return Err("--until is before --since: the window is empty".into());
    }
    let t: Timeline = timeline::build(plane, args.since, until, events);
    let text = match args.format {
        Format::Md => t.markdown(),
        Format::Json => serde_json::to_string_pretty(&t).map_err(|e| e.to_string())? + "\n",
    };
    Ok((text, crate::client::timeline::cut_warning(events, args.since)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_takes_durations_and_times_and_says_what_is_wrong() {
        let now = now_ms();
        let two_h = window_start("2h").expect("2h");
        assert!(now - two_h >= 7_200_000 && now - two_h < 7_260_000);
        assert_eq!(window_start("2026-12-06T10:00:00Z"), Ok(1_796_551_200_000));
        assert!(window_start("yesterday").unwrap_err().contains("not a duration"));
        assert!(window_start("3x").unwrap_err().contains("unknown unit"));
        assert!(window_start("2999-01-01T00:00:00Z").unwrap_err().contains("the history ends now"));
    }

    #[test]
    fn an_empty_window_is_refused() {
        let args = TimelineArgs { since: 2000, until: Some(1000), format: Format::Json, output: None };
        assert!(render("p", &args, &[]).unwrap_err().contains("--until is before --since"));
        let args = TimelineArgs { since: 1000, until: Some(2000), format: Format::Json, output: None };
        let (text, warn) = render("p", &args, &[]).expect("render");
        assert!(text.contains("\"entries\": []") && warn.is_none(), "{text}");
    }
}
