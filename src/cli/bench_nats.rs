//! `quarterdeck bench --nats URL`: the cockpit's ingest through a real nats-server.
//!
//! The bench plays the controller on one connection: it answers `ctl.snapshot` (the
//! synthetic fleet at the revision published so far) and `ctl.history`, and publishes the
//! events in revision order. On a second connection it runs the cockpit's own backend
//! (`backend::spawn`, as `quarterdeck --nats` does) and feeds its updates to an `App`, drawing
//! frames into a byte counter at the event loop's rate. It reports how fast the events were
//! applied and whether any were lost: slow-consumer reports, revision gaps, resyncs.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::BusArgs;
use super::bench::{BenchArgs, Counter, counting_terminal, draw};
use super::bench_events::EventStream;
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Effect, Panel};
use crate::app::App;
use crate::backend::{self, Command, Sync, Update};
use crate::bus::{self, Bus, Subscription};
use crate::plane::controller::paging;
use crate::plane::fixture::fixture;
use crate::protocol::clock::now_ms;
use crate::protocol::{Event, Fleet, Reply, SnapshotRequest, decode, subjects};
use crate::views::theme::{ColorMode, Theme};

/// The event loop's frame period (`app/run.rs`).
const FRAME: Duration = Duration::from_millis(50);
/// Updates folded into one model change, as the event loop does.
const BATCH: usize = 4096;
/// How long the cockpit may take to get its first snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(30);

pub async fn run(bus_args: &BusArgs, args: &BenchArgs) -> Result<ExitCode, String> {
    let (start, _) = fixture(7, args.hosts as usize, args.instances.saturating_sub(7) as usize);
    let stream = EventStream::new(&start);
    let events = u64::from(args.events);
    // Encoded before the clock starts: the bench measures the cockpit, not the publisher.
    let wires = encode_all(&stream, &start, events)?;
    let last = stream.rev(events - 1);

    let controller = Arc::new(bus_args.connect("bench-controller").await?);
    // Connected (the client connects in the background), so the server's limits (the
    // max_payload that sizes snapshot pages) are known.
    controller.flush().await.map_err(|e| e.to_string())?;
    let published = Arc::new(AtomicU64::new(0));
    let snapshots = Arc::new(AtomicU64::new(0));
    let serving =
        serve(controller.clone(), Arc::new(start), Arc::new(stream), published.clone(), snapshots.clone())
            .await?;

    // What the bench holds before the cockpit connects (the fleet, the encoded events):
    // the peak's growth from here bounds the cockpit's share. It also holds the snapshot
    // pages the bench encodes to answer it, so it is an upper bound.
    let before_cockpit_mb = super::bench::rss_mb();
    let cockpit = Arc::new(bus_args.connect("bench-cockpit").await?);
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
    let publisher = tokio::spawn(publish(controller.clone(), wires, published.clone()));
    // Generous: the debug build is many times slower than the release build.
    let deadline = started + Duration::from_secs(60) + Duration::from_micros(events * 100);
    let mut next_frame = started + FRAME;
    let mut dirty = false;
    let mut timed_out = false;
    let mut frames = 0u64;
    while !(app.replica.sync == Sync::Live && app.replica.fleet.revision >= last) {
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
    let published_in = publisher.await.map_err(|e| e.to_string())?;
    serving.abort();
    let published = published.load(Ordering::Relaxed);

    let out = json!({
        "events": events,
        "published": published,
        "applied": tally.applied,
        "dropped": published.saturating_sub(tally.applied),
        "slow_consumers": cockpit.slow_consumers(),
        "rev_gaps": app.replica.gaps,
        "resyncs": snapshots.load(Ordering::Relaxed).saturating_sub(1),
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
}

impl Tally {
    /// Hands one update to the app, as the event loop does, and carries out its resync.
    fn feed(&mut self, app: &mut App, update: Update, commands: &mpsc::UnboundedSender<Command>) {
        let next = match &update {
            Update::Event(ev)
                if app.replica.sync == Sync::Live && ev.rev == app.replica.fleet.revision + 1 =>
            {
                Some(ev.rev)
            }
            _ => None,
        };
        for effect in app.update(Action::Backend(Box::new(update))) {
            if matches!(effect, Effect::Resync) {
                let _ = commands.send(Command::Resync);
            }
        }
        if next.is_some_and(|rev| app.replica.fleet.revision == rev) {
            self.applied += 1;
        }
    }
}

/// Every event's subject and wire bytes, the bytes in one buffer.
fn encode_all(stream: &EventStream, start: &Fleet, events: u64) -> Result<Vec<(String, Bytes)>, String> {
    let mut buffer = Vec::new();
    let mut spans = Vec::with_capacity(events as usize);
    for n in 0..events {
        let (subject, bytes) = stream.wire(start, n).ok_or("the fleet has no instances")?;
        spans.push((subject, buffer.len(), buffer.len() + bytes.len()));
        buffer.extend_from_slice(&bytes);
    }
    let buffer = Bytes::from(buffer);
    Ok(spans.into_iter().map(|(subject, from, to)| (subject, buffer.slice(from..to))).collect())
}

/// Publishes the events in order, counting each once it is handed to the client. Returns
/// how long that took, up to the server's answer to a flush after the last.
async fn publish(
    bus: Arc<crate::bus::NatsBus>,
    wires: Vec<(String, Bytes)>,
    published: Arc<AtomicU64>,
) -> Result<f64, String> {
    let started = Instant::now();
    for (subject, bytes) in wires {
        bus.publish(&subject, bytes).await.map_err(|e| e.to_string())?;
        published.fetch_add(1, Ordering::Relaxed);
    }
    bus.flush().await.map_err(|e| e.to_string())?;
    Ok(started.elapsed().as_secs_f64())
}

/// Answers the cockpit's snapshot and history requests as the controller would.
async fn serve(
    bus: Arc<crate::bus::NatsBus>,
    start: Arc<Fleet>,
    stream: Arc<EventStream>,
    published: Arc<AtomicU64>,
    snapshots: Arc<AtomicU64>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let subscribe = |subject: &'static str| {
        let bus = bus.clone();
        async move { bus.subscribe(subject).await.map_err(|e| e.to_string()) }
    };
    let mut snapshot_requests: Subscription = subscribe(subjects::CTL_SNAPSHOT).await?;
    let mut history_requests: Subscription = subscribe(subjects::CTL_HISTORY).await?;
    // The subscriptions must reach the server before the cockpit asks.
    bus.flush().await.map_err(|e| e.to_string())?;
    let pages = paging::Pages::default();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(msg) = snapshot_requests.next() => {
                    // Everything published so far is in the snapshot; later events follow it.
                    let fleet = || stream.fleet_after(&start, published.load(Ordering::Relaxed));
                    let req = decode::<SnapshotRequest>(&msg.payload).map(|env| env.body).unwrap_or_default();
                    // A read starts with an unpaged request or page 0; the other pages are
                    // the same snapshot.
                    if req.rev.is_none() {
                        snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = if req.page.is_none() {
                        bus::respond(bus.as_ref(), &msg, "controller", &Reply::Ok(fleet())).await
                    } else {
                        // Paged as the controller pages it, so a fleet over max_payload gets through.
                        let max_part = paging::part_size(bus.max_payload());
                        let answer = pages.page(&req, max_part, |reusable| {
                            let fleet = fleet();
                            if Some(fleet.revision) == reusable {
                                return Ok((fleet.revision, None));
                            }
                            paging::fleet_text(&fleet).map(|text| (fleet.revision, Some(text)))
                        });
                        bus::respond(bus.as_ref(), &msg, "controller", &Reply::from(answer)).await
                    };
                }
                Some(msg) = history_requests.next() => {
                    let none: Vec<Event> = Vec::new();
                    let _ = bus::respond(bus.as_ref(), &msg, "controller", &Reply::Ok(none)).await;
                }
                else => return,
            }
        }
    }))
}
