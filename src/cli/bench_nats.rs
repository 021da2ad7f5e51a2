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

use serde_json::json;
use tokio::sync::mpsc;

use super::BusArgs;
use super::bench::{BenchArgs, Counter, counting_terminal, draw};
use super::bench_events::{EventStream, StandIn};
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Effect, Panel};
use crate::app::App;
use crate::backend::{self, BackendRequest, Feed, Inbound, Sync};
use crate::bus::Bus;
use crate::plane::fixture::fixture;
use crate::protocol::clock::now_ms;
use crate::theme::{ColorMode, Theme};

/// The event loop's frame period (`app/run.rs`).
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

    // What the bench holds before the cockpit connects (the stand-in's fleet; it encodes
    // events as it publishes them): the peak's growth from here bounds the cockpit's share.
    // It also holds the snapshot pages the stand-in encodes to answer it, so it is an
    // upper bound, and so is `rss_mb` of the cockpit's own.
    let before_cockpit_mb = super::bench::rss_mb();
    let cockpit = Arc::new(bus_args.connect_now("bench-cockpit").await?);
    let handle = backend::spawn(cockpit.clone(), "cockpit/bench".into());
    let mut updates = handle.updates;
    let commands = handle.commands;
    let mut app =
        App::new(cockpit.describe(), Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), now_ms());
    app.update(Action::ShowPanel(Panel::Instances));
    let counter = Counter::default();
    let mut terminal = counting_terminal(&counter)?;
    let mut tally = Tally::default();

    let deadline = Instant::now() + SNAPSHOT_WAIT;
    while app.replica.sync != Sync::Live {
        let update = tokio::time::timeout_at(deadline.into(), updates.recv())
            .await
            .map_err(|_| "the cockpit got no snapshot within 30 s".to_string())?
            .ok_or("the cockpit's backend stopped")?;
        tally.feed(&mut app, update, &commands);
    }
    draw(&mut terminal, &mut app)?;

    let started = Instant::now();
    let publisher = {
        let stand_in = stand_in.clone();
        tokio::spawn(async move { stand_in.publish(events).await })
    };
    // Generous: the debug build is many times slower than the release build.
    let deadline = started + Duration::from_secs(60) + Duration::from_micros(events * 100);
    let mut next_frame = started + FRAME;
    let mut dirty = false;
    let mut timed_out = false;
    let mut frames = 0u64;
    // When the publisher was done, and what the cockpit had applied by then: what it
    // applied after is its catch-up, at its own pace, the publisher out of the way.
    let mut stored: Option<(Instant, u64)> = None;
    while !(app.replica.sync == Sync::Live && app.replica.fleet.revision >= last) {
        if stored.is_none() && publisher.is_finished() {
            stored = Some((Instant::now(), tally.applied));
        }
        tokio::select! {
            update = updates.recv() => {
                let Some(first) = update else { break };
                tally.feed(&mut app, first, &commands);
                for _ in 0..BATCH {
                    match updates.try_recv() {
                        Ok(more) => tally.feed(&mut app, more, &commands),
                        Err(_) => break,
                    }
                }
                dirty = true;
            }
            _ = tokio::time::sleep_until(next_frame.into()) => {
                if dirty {
                    draw(&mut terminal, &mut app)?;
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
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let (catch_up_s, caught_up) = match stored {
        Some((at, applied)) => (at.elapsed().as_secs_f64().max(1e-9), tally.applied.saturating_sub(applied)),
        None => (0.0, 0),
    };
    let published_in = publisher.await.map_err(|e| e.to_string())?;
    let published = stand_in.sent();
    let resyncs = stand_in.snapshots().saturating_sub(1);
    if let Some(stand_in) = Arc::into_inner(stand_in) {
        stand_in.stop().await;
    }

    let out = json!({
        "events": events,
        "published": published,
        "applied": tally.applied,
        "dropped": published.saturating_sub(tally.applied),
        "slow_consumers": cockpit.slow_consumers(),
        "rev_gaps": app.replica.gaps,
        "resyncs": resyncs,
        "max_behind": tally.max_behind,
        "catch_up_events": caught_up,
        "catch_up_seconds": (catch_up_s * 1000.0).round() / 1000.0,
        "catch_up_events_per_s": if caught_up > 0 { (caught_up as f64 / catch_up_s).round() } else { 0.0 },
        "revision": app.replica.fleet.revision,
        "last_revision": last,
        "timed_out": timed_out,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "nats_events_per_s": (tally.applied as f64 / elapsed).round(),
        "frames": frames,
        "publish_seconds": published_in.as_ref().map(|s| (s * 1000.0).round() / 1000.0).unwrap_or(0.0),
        "instances": args.instances,
        "rss_mb": round1(super::bench::peak_rss_mb()),
        "rss_growth_mb": round1(super::bench::peak_rss_mb() - before_cockpit_mb),
    });
    if args.json {
        println!("{out}");
    } else if let Some(map) = out.as_object() {
        for (k, v) in map {
            println!("{k:<24} {v}");
        }
    }
    published_in?;
    Ok(ExitCode::SUCCESS)
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
