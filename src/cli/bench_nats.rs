//! `quarterdeck bench --nats URL`: the cockpit's ingest through a real nats-server.
//!
//! The bench plays the controller on one connection (`bench_events::StandIn`): it stores
//! the events in revision order in the JetStream event stream, as the controller commits
//! them, answers `ctl.snapshot` (the synthetic fleet at the revision published so far) and
//! `ctl.history`, and beacons. On a second connection it runs the cockpit's own backend
//! (`backend::spawn`, as `quarterdeck --nats` does), which follows the stream, and feeds its
//! updates to an `App`, drawing frames into a byte counter at the event loop's rate. It
//! reports how fast the events were applied and whether any were lost (slow-consumer
//! reports, revision gaps, resyncs), how far behind the cockpit fell, and its memory.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::BusArgs;
use super::bench::{BenchArgs, Counter, CountingTerminal, counting_terminal, draw, print_figures};
use super::bench_events::{EventStream, StandIn};
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Effect, Panel};
use crate::app::App;
use crate::backend::{self, BackendRequest, Feed, Inbound, Sync};
use crate::bus::{Bus, NatsBus};
use crate::plane::fixture::fixture;
use crate::protocol::clock::now_ms;
use crate::theme::{ColorMode, Theme};

/// The event loop's frame period (`tui/run.rs`).
const FRAME: Duration = Duration::from_millis(50);
/// Updates folded into one model change, as the event loop does.
const BATCH: usize = 4096;
/// How long the cockpit may take to get its first snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(30);

pub async fn run(bus_args: &BusArgs, args: &BenchArgs) -> Result<ExitCode, String> {
    // What goes wrong on the way (a follow that broke, a resync) is said on stderr; the
    // figures go to stdout.
    super::logging::init("bench", bus_args.log_level.min(log::LevelFilter::Warn));
    let (start, _) = fixture(7, args.hosts as usize, args.instances.saturating_sub(7) as usize);
    let events = u64::from(args.events);
    let last = EventStream::new(&start).rev(events - 1);

    let controller = Arc::new(bus_args.connect_now("bench-controller").await?);
    let stand_in = Arc::new(StandIn::start(controller, start).await?);
    let mut cockpit = Cockpit::start(bus_args).await?;
    cockpit.wait_live().await?;

    let started = Instant::now();
    let publisher = {
        let stand_in = stand_in.clone();
        tokio::spawn(async move { stand_in.publish(events).await })
    };
    let followed = cockpit.follow(&publisher, started, events, last).await?;
    let published_in = publisher.await.map_err(|e| e.to_string())?;
    let stood_in = StoodIn {
        published: stand_in.sent(),
        resyncs: stand_in.snapshots().saturating_sub(1),
        seconds: published_in.as_ref().map(|s| (s * 1000.0).round() / 1000.0).unwrap_or(0.0),
    };
    if let Some(stand_in) = Arc::into_inner(stand_in) {
        stand_in.stop().await;
    }

    print_figures(&figures(args, last, &cockpit, &followed, &stood_in), args.json);
    published_in?;
    Ok(ExitCode::SUCCESS)
}

/// The cockpit under test: its own backend on a connection of its own, the app it feeds,
/// and the terminal its frames are counted on.
struct Cockpit {
    bus: Arc<NatsBus>,
    app: App,
    updates: mpsc::Receiver<Inbound>,
    commands: mpsc::UnboundedSender<BackendRequest>,
    terminal: CountingTerminal,
    tally: Tally,
    /// What the bench held before the cockpit connected, in MB.
    before_mb: f64,
}

/// How the cockpit followed the published events.
struct Followed {
    seconds: f64,
    frames: u64,
    timed_out: bool,
    /// Events applied after the publisher was done, and in how long: the cockpit's
    /// catch-up, at its own pace, the publisher out of the way.
    catch_up: (u64, f64),
}

/// What the stand-in controller did.
struct StoodIn {
    published: u64,
    resyncs: u64,
    /// How long publishing took (0 when it failed).
    seconds: f64,
}

impl Cockpit {
    async fn start(bus_args: &BusArgs) -> Result<Cockpit, String> {
        // What the bench holds before the cockpit connects (the stand-in's fleet; it encodes
        // events as it publishes them): the peak's growth from here bounds the cockpit's
        // share. It also holds the snapshot pages the stand-in encodes to answer it, so it
        // is an upper bound, and so is `rss_mb` of the cockpit's own.
        let before_mb = super::bench::rss_mb();
        let bus = Arc::new(bus_args.connect_now("bench-cockpit").await?);
        let handle = backend::spawn(bus.clone(), "cockpit/bench".into());
        let mut app =
            App::new(bus.describe(), Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms());
        app.update(Action::ShowPanel(Panel::Instances));
        let terminal = counting_terminal(&Counter::default())?;
        Ok(Cockpit {
            bus,
            app,
            updates: handle.updates,
            commands: handle.commands,
            terminal,
            tally: Tally::default(),
            before_mb,
        })
    }

    /// Until the first snapshot is applied, then its first frame.
    async fn wait_live(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + SNAPSHOT_WAIT;
        while self.app.replica.sync != Sync::Live {
            let update = tokio::time::timeout_at(deadline.into(), self.updates.recv())
                .await
                .map_err(|_| "the cockpit got no snapshot within 30 s".to_string())?
                .ok_or("the cockpit's backend stopped")?;
            self.tally.feed(&mut self.app, update, &self.commands);
        }
        draw(&mut self.terminal, &mut self.app)
    }

    /// The event loop's work while the events are published: updates applied in batches,
    /// a frame at most every `FRAME` when something changed, until the cockpit is live at
    /// the `last` revision (`events` after it started), its backend stops, or a generous deadline passes.
    async fn follow<T>(
        &mut self,
        publisher: &tokio::task::JoinHandle<T>,
        started: Instant,
        events: u64,
        last: u64,
    ) -> Result<Followed, String> {
        // Generous: the debug build is many times slower than the release build.
        let deadline = started + Duration::from_secs(60) + Duration::from_micros(events * 100);
        let mut next_frame = started + FRAME;
        let mut dirty = false;
        let mut timed_out = false;
        let mut frames = 0u64;
        // When the publisher was done, and what the cockpit had applied by then: what it
        // applied after is its catch-up, at its own pace, the publisher out of the way.
        let mut stored: Option<(Instant, u64)> = None;
        while !(self.app.replica.sync == Sync::Live && self.app.replica.fleet.revision >= last) {
            if stored.is_none() && publisher.is_finished() {
                stored = Some((Instant::now(), self.tally.applied));
            }
            tokio::select! {
                update = self.updates.recv() => {
                    let Some(first) = update else { break };
                    self.feed_batch(first);
                    dirty = true;
                }
                _ = tokio::time::sleep_until(next_frame.into()) => {
                    if dirty {
                        draw(&mut self.terminal, &mut self.app)?;
                        frames += 1;
                        dirty = false;
                    }
                    next_frame += FRAME;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    timed_out = true;
                    break;
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let catch_up = match stored {
            Some((at, applied)) => {
                (self.tally.applied.saturating_sub(applied), at.elapsed().as_secs_f64().max(1e-9))
            }
            None => (0, 0.0),
        };
        Ok(Followed { seconds, frames, timed_out, catch_up })
    }

    /// `first`, then what else is waiting, up to a batch, folded in as the event loop does.
    fn feed_batch(&mut self, first: Inbound) {
        self.tally.feed(&mut self.app, first, &self.commands);
        for _ in 0..BATCH {
            match self.updates.try_recv() {
                Ok(more) => self.tally.feed(&mut self.app, more, &self.commands),
                Err(_) => break,
            }
        }
    }
}

/// The bench's figures, one JSON object.
fn figures(args: &BenchArgs, last: u64, cockpit: &Cockpit, followed: &Followed, stood_in: &StoodIn) -> Value {
    let tally = &cockpit.tally;
    let replica = &cockpit.app.replica;
    let (caught_up, catch_up_s) = followed.catch_up;
    json!({
        "events": u64::from(args.events),
        "published": stood_in.published,
        "applied": tally.applied,
        "dropped": stood_in.published.saturating_sub(tally.applied),
        "slow_consumers": cockpit.bus.slow_consumers(),
        "rev_gaps": replica.gaps,
        "resyncs": stood_in.resyncs,
        "max_behind": tally.max_behind,
        "catch_up_events": caught_up,
        "catch_up_seconds": (catch_up_s * 1000.0).round() / 1000.0,
        "catch_up_events_per_s": if caught_up > 0 { (caught_up as f64 / catch_up_s).round() } else { 0.0 },
        "revision": replica.fleet.revision,
        "last_revision": last,
        "timed_out": followed.timed_out,
        "seconds": (followed.seconds * 1000.0).round() / 1000.0,
        "nats_events_per_s": (tally.applied as f64 / followed.seconds).round(),
        "frames": followed.frames,
        "publish_seconds": stood_in.seconds,
        "instances": args.instances,
        "rss_mb": round1(super::bench::peak_rss_mb()),
        "rss_growth_mb": round1(super::bench::peak_rss_mb() - cockpit.before_mb),
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// What the cockpit did with the updates it was given.
#[derive(Default)]
struct Tally {
    /// Events applied one by one, each at the revision after the last (not skipped over
    /// by a snapshot).
    applied: u64,
    /// The most events the backend's follow said were waiting behind the cockpit.
    max_behind: u64,
}

impl Tally {
    /// Hands one update to the app, as the event loop does, and carries out its resync.
    fn feed(&mut self, app: &mut App, update: Inbound, commands: &mpsc::UnboundedSender<BackendRequest>) {
        if let Inbound::Feed(Feed::Pending(n)) = &update {
            self.max_behind = self.max_behind.max(*n);
        }
        let next = match &update {
            Inbound::Feed(Feed::Event(ev))
                if app.replica.sync == Sync::Live && ev.rev == app.replica.fleet.revision + 1 =>
            {
                Some(ev.rev)
            }
            _ => None,
        };
        for effect in app.apply(update) {
            if matches!(effect, Effect::Resync) {
                let _ = commands.send(BackendRequest::Resync);
            }
        }
        if next.is_some_and(|rev| app.replica.fleet.revision == rev) {
            self.applied += 1;
        }
    }
}
