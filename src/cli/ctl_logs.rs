//! `quarterdeck ctl logs APP|INSTANCE`: the logs of one instance, or of every instance of
//! an app merged in time order, each line with its instance's word (`#3`) as the
//! cockpit's merged view shows it. The streams are the cockpit's (one per instance,
//! `backend::logs_session`), and so is the merge (`app::logs::LogView`).
//!
//! Without `--follow` it prints what the agents have and exits: every stream ends after
//! its tail. With `--follow` a line is printed once `HOLD` has passed since its time, so
//! lines of instances whose batches arrive at different moments still come out in time
//! order; a line later than that is printed at once.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::parse;
use crate::app::logs::{LogFeed, LogState, LogView, Logged};
use crate::backend::{Inbound, LogsEvent, logs_session};
use crate::bus::Bus;
use crate::protocol::clock::{datetime, now_ms};
use crate::protocol::{Fleet, InstanceState, LOGS_TAIL_MAX, LogsStart};

/// How long a followed line waits for older lines of other instances.
const HOLD: Duration = Duration::from_secs(1);
/// How often followed lines are printed.
const PRINT_EVERY: Duration = Duration::from_millis(200);
/// Without --follow: how long a stream may stay silent before its log counts as not
/// ending (the agent's own keep-alive timeout).
const NO_NEWS: Duration = Duration::from_millis(crate::protocol::subjects::LOGS_KEEPALIVE_TIMEOUT_MS);
/// How long the stops have to leave after Ctrl-C.
const STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// An app (every instance of it, merged in time order, each line prefixed by its
    /// instance's index as `#3`) or one instance, by id.
    #[arg(value_name = "APP|INSTANCE")]
    pub target: String,
    /// After what is there, keep printing new lines as they come (Ctrl-C ends), of the
    /// instances there when it started.
    #[arg(long, short)]
    pub follow: bool,
    /// Only lines from this time on: a duration back from now (10m, 1h) or an RFC 3339
    /// time (2026-11-25T10:12:01Z).
    #[arg(long, value_parser = parse::since, value_name = "DURATION|TIMESTAMP")]
    pub since: Option<u64>,
    /// Only the last N lines of the merged log (each instance is asked for its last N).
    /// [default: all the agents send, at most 10000 per instance]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=i64::from(LOGS_TAIL_MAX)))]
    pub tail: Option<u32>,
}

/// The instances `target` names: itself, or every instance of the app with a container
/// to read, by index. An unknown name is an error that says where names are listed.
pub fn resolve(fleet: &Fleet, target: &str) -> Result<(Option<String>, Vec<LogFeed>), String> {
    if let Some(i) = fleet.instances.get(target) {
        return Ok((None, vec![LogFeed::new(0, i.host.clone(), i.id.clone(), i.index)]));
    }
    let mut of_app: Vec<_> = fleet.instances.values().filter(|i| i.app == target).collect();
    if of_app.is_empty() && !fleet.apps.contains_key(target) {
        return Err(format!("no app or instance {target:?} (`quarterdeck ctl instances` lists them)"));
    }
    of_app.retain(|i| {
        !matches!(i.state, InstanceState::New | InstanceState::Deploying | InstanceState::Removed)
    });
    if of_app.is_empty() {
        return Err(format!("app {target} has no instance with a container to read logs from"));
    }
    of_app.sort_by(|a, b| (a.index, &a.id).cmp(&(b.index, &b.id)));
    let feeds =
        of_app.iter().enumerate().map(|(k, i)| LogFeed::new(k as u64, i.host.clone(), i.id.clone(), i.index));
    Ok((Some(target.to_string()), feeds.collect()))
}

/// How lines are printed: JSON objects, or text with the word coloured on a terminal.
struct Printer {
    json: bool,
    colour: bool,
}

/// ANSI foregrounds the words cycle through on a terminal (as the cockpit's theme
/// series does).
const COLOURS: [u8; 5] = [36, 32, 33, 34, 35];

impl Printer {
    /// False once stdout is closed (`ctl logs app | head`).
    fn print(&self, view: &LogView, lines: &[Logged]) -> bool {
        let mut out = std::io::stdout().lock();
        for l in lines {
            let feed = view.feeds.get(l.feed);
            let written = if self.json {
                let instance = feed.map_or("", |f| f.instance.as_str());
                let obj = json!({"ts": l.ts, "instance": instance, "source": l.source, "text": l.text});
                writeln!(out, "{obj}")
            } else {
                let time = if l.ts > 0 { datetime(l.ts) } else { "-".repeat(19) };
                let text = super::printable::printable(&l.text);
                match (view.prefix(l.feed), feed) {
                    (Some(word), Some(f)) if self.colour => {
                        let c = COLOURS[f.index as usize % COLOURS.len()];
                        let w = view.prefix_width();
                        writeln!(out, "{time} \x1b[{c}m{word:<w$}\x1b[0m {text}")
                    }
                    (Some(word), _) => writeln!(out, "{time} {word:<w$} {text}", w = view.prefix_width()),
                    (None, _) => writeln!(out, "{time} {text}"),
                }
            };
            if written.is_err() {
                return false;
            }
        }
        out.flush().is_ok()
    }
}

pub async fn run(
    bus: Arc<dyn Bus>,
    source: String,
    json: bool,
    fleet: &Fleet,
    args: LogsArgs,
) -> Result<ExitCode, String> {
    let (app, feeds) = resolve(fleet, &args.target)?;
    let mut view = LogView::of(app, feeds);
    let colour = !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let printer = Printer { json, colour };
    let (tx, mut rx) = mpsc::channel::<Inbound>(1024);
    let (stops, tasks) = start_streams(&bus, &source, &view, &args, &tx);
    drop(tx);
    let mut failed = Vec::new();
    let mut tick = tokio::time::interval(PRINT_EVERY);
    // With --follow, the tail is cut to --tail once every stream answered and a hold passed.
    let mut tail_cut: Option<tokio::time::Instant> = None;
    let mut tail_done = false;
    let mut last_news = tokio::time::Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            update = rx.recv() => {
                last_news = tokio::time::Instant::now();
                let Some(Inbound::Logs { session, event }) = update else { break };
                let Some(k) = view.feed_of(session) else { continue };
                failed.extend(take(&mut view, k, event, &args));
                if tail_cut.is_none() && view.feeds.iter().all(|f| f.state != LogState::Connecting) {
                    tail_cut = Some(tokio::time::Instant::now() + HOLD);
                }
            }
            _ = tick.tick(), if args.follow => {
                if !tail_done && tail_cut.is_some_and(|t| t <= tokio::time::Instant::now()) {
                    tail_done = true;
                    cut_to_tail(&mut view, args.tail);
                }
                if tail_done {
                    let ready = view.take_until(now_ms().saturating_sub(HOLD.as_millis() as u64));
                    if !printer.print(&view, &ready) {
                        break;
                    }
                }
            }
            // A tail whose stream never ends (its agent went away) does not hang the command.
            _ = tokio::time::sleep_until(last_news + NO_NEWS), if !args.follow => {
                failed.extend(unfinished(&view));
                break;
            }
            _ = &mut ctrl_c => break,
        }
    }
    for stop in stops {
        let _ = stop.send(());
    }
    // The stops go out before the process ends, so the agents stop reading at once.
    let _ = tokio::time::timeout(STOP_GRACE, futures_util::future::join_all(tasks)).await;
    if !tail_done {
        cut_to_tail(&mut view, args.tail);
    }
    let rest = view.take_until(u64::MAX);
    printer.print(&view, &rest);
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One stream per feed of the view, each with its stop.
fn start_streams(
    bus: &Arc<dyn Bus>,
    source: &str,
    view: &LogView,
    args: &LogsArgs,
    tx: &mpsc::Sender<Inbound>,
) -> (Vec<oneshot::Sender<()>>, Vec<tokio::task::JoinHandle<()>>) {
    view.feeds
        .iter()
        .map(|f| {
            let start = LogsStart {
                session: f.session,
                host: f.host.clone(),
                instance: f.instance.clone(),
                tail: args.tail.unwrap_or(LOGS_TAIL_MAX),
                follow: args.follow,
                since: args.since,
            };
            let (stop, stopped) = oneshot::channel();
            (stop, tokio::spawn(logs_session(bus.clone(), source.to_string(), start, stopped, tx.clone())))
        })
        .unzip()
}

/// News of feed `k`'s stream into the view; a stream that could not start is said on
/// stderr and returned.
fn take(view: &mut LogView, k: usize, event: LogsEvent, args: &LogsArgs) -> Option<String> {
    match event {
        LogsEvent::Streaming => view.feeds[k].state = LogState::Streaming,
        LogsEvent::Refused(err) => {
            let text = crate::app::failures::failed(&format!("logs of {}", view.feeds[k].instance), &err);
            eprintln!("{}", super::printable::printable(&text));
            view.feeds[k].state = LogState::Refused(text.clone());
            return Some(text);
        }
        LogsEvent::Batch(batch) => {
            // An agent that does not know `since` sends older lines too.
            let since = args.since.unwrap_or(0);
            view.push(k, batch.lines.into_iter().filter(|l| l.ts == 0 || l.ts >= since));
            if let Some(end) = batch.end {
                if args.follow {
                    let f = &view.feeds[k];
                    eprintln!("{} {} ended: {}", f.word(), f.instance, super::printable::printable(&end));
                }
                view.feeds[k].state = LogState::Ended(end);
            }
        }
    }
    None
}

/// The streams still open when a tail should have ended, said on stderr.
fn unfinished(view: &LogView) -> Vec<String> {
    let open = view.feeds.iter().filter(|f| matches!(f.state, LogState::Connecting | LogState::Streaming));
    open.map(|f| {
        let text = format!("the log of {} did not end: no news for {} s", f.instance, NO_NEWS.as_secs());
        eprintln!("{text}");
        text
    })
    .collect()
}

/// Keeps only the last `tail` lines of the buffer.
fn cut_to_tail(view: &mut LogView, tail: Option<u32>) {
    let Some(tail) = tail else { return };
    let over = view.lines.len().saturating_sub(tail as usize);
    view.lines.drain(..over);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plane::fixture::fixture;

    #[test]
    fn a_target_is_an_instance_or_every_instance_of_an_app_and_an_unknown_one_is_an_error() {
        let (fleet, _) = fixture(42, 6, 0);
        let inst = fleet.instances.values().next().expect("an instance").clone();
        let (app, feeds) = resolve(&fleet, &inst.id).expect("an instance");
        assert_eq!((app, feeds.len(), feeds[0].instance.clone()), (None, 1, inst.id.clone()));
        let (app, feeds) = resolve(&fleet, &inst.app).expect("an app");
        assert_eq!(app.as_deref(), Some(inst.app.as_str()));
        let all = fleet.instances.values().filter(|i| i.app == inst.app).count();
        assert_eq!(feeds.len(), all);
        assert!(feeds.windows(2).all(|w| w[0].index <= w[1].index), "by index");
        let err = resolve(&fleet, "no-such-app").expect_err("unknown");
        assert!(err.contains("no app or instance \"no-such-app\"") && err.contains("ctl instances"), "{err}");
    }

    #[test]
    fn the_tail_is_the_last_lines_of_the_merged_log() {
        let mut view = LogView::merged("a".into(), vec![LogFeed::new(0, "h".into(), "a-0".into(), 0)]);
        let line = |ts| crate::protocol::LogLine {
            ts,
            source: crate::protocol::LogSource::Stdout,
            text: ts.to_string(),
        };
        view.push(0, (1..=5).map(line));
        cut_to_tail(&mut view, Some(2));
        let left: Vec<u64> = view.take_until(u64::MAX).iter().map(|l| l.ts).collect();
        assert_eq!(left, [4, 5]);
    }
}
