//! `quarterdeck bench`: measures the cockpit's real code paths headless, against a
//! synthetic fleet, and prints the figures (one JSON line with --json). The frame is drawn
//! through the same crossterm backend the cockpit uses, into a byte counter instead of a
//! terminal, so the bytes are the bytes a terminal would get.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use serde_json::{Value, json};

use super::BusArgs;
use super::bench_events::EventStream;
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Panel};
use crate::app::App;
use crate::backend::{Feed, Inbound};
use crate::plane::fixture::{T0, fixture};
use crate::plane::rng::Rng;
use crate::protocol::{Envelope, Event, Fleet, Heartbeat, InstanceReport, decode, decode_body, encode};
use crate::theme::{ColorMode, Theme};
use crate::tui::output::FrameBackend;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Hosts in the synthetic fleet.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub hosts: u32,
    /// Instances in the synthetic fleet (at least the seed apps' 7). With --nats the
    /// snapshot goes by pages, as the controller sends it, whatever its size.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(7..=1_000_000))]
    pub instances: u32,
    /// Frames to time (in-process only), each with ratatui's bare diff floor timed beside
    /// it after its own batch of heartbeats.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub frames: u32,
    /// Event envelopes to decode and apply for the ingest rate. With --nats: events to
    /// publish through the server to the cockpit's backend.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1000..=10_000_000))]
    pub events: u32,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
}

const W: u16 = 200;
const H: u16 = 50;

/// Counts what the backend writes, as a terminal would receive it.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// Bytes written so far.
    pub fn bytes(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

pub type CountingTerminal = Terminal<FrameBackend<Counter>>;

/// A W x H terminal that writes into `counter`.
pub fn counting_terminal(counter: &Counter) -> Result<CountingTerminal, String> {
    let options = TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, W, H)) };
    Terminal::with_options(FrameBackend::new(counter.clone()), options).map_err(|e| e.to_string())
}

/// One frame as the event loop draws it: the views' indexes, then render, diff and write.
pub fn draw(terminal: &mut CountingTerminal, app: &mut App) -> Result<(), String> {
    crate::tui::draw(terminal, app).map(|_| ()).map_err(|e| e.to_string())
}

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident memory of this process, in MB.
pub(super) fn peak_rss_mb() -> f64 {
    proc_status_mb("VmHWM:")
}

/// Resident memory of this process now, in MB.
pub(super) fn rss_mb() -> f64 {
    proc_status_mb("VmRSS:")
}

/// A size in kB from /proc/self/status, in MB; 0 where there is no /proc.
fn proc_status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Heartbeats for `hosts` hosts with new metrics for their instances: one batch of
/// metric-only updates.
pub fn metric_batch(fleet: &Fleet, rng: &mut Rng, hosts: usize) -> Vec<Heartbeat> {
    fleet
        .hosts
        .values()
        .take(hosts)
        .map(|h| {
            let mut metrics = h.metrics.clone();
            metrics.cpu_pct = rng.range(1.0, 95.0) as f32;
            Heartbeat {
                host: h.info.clone(),
                metrics,
                instances: fleet
                    .instances_on(&h.info.id)
                    .map(|i| InstanceReport {
                        cpu_pct: rng.range(0.0, 100.0) as f32,
                        mem_used_mb: rng.between(10, i.mem_limit_mb.max(11)),
                        ..InstanceReport::of(i)
                    })
                    .collect(),
                period_ms: 2000,
                unmanaged: vec![],
            }
        })
        .collect()
}

/// Applies one batch of metric-only heartbeats from 50 hosts, as the event loop would.
fn apply_metrics(app: &mut App, rng: &mut Rng) {
    for hb in metric_batch(&app.replica.fleet, rng, 50) {
        app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb))));
    }
}

/// Events per chunk of wire bytes: the bench never holds more encoded events than this.
const INGEST_CHUNK: u64 = 4096;

/// Ingest: event envelopes decoded from wire bytes and applied to the cockpit's own
/// replica through `App::update`, as the event loop does, on one core. The wire bytes are
/// made in chunks, untimed. Fails unless every event was applied.
fn ingest(app: &mut App, events: u32) -> Result<f64, String> {
    let events = u64::from(events);
    let stream = EventStream::new(&app.replica.fleet);
    let mut wires: Vec<Vec<u8>> = Vec::with_capacity(INGEST_CHUNK as usize);
    let mut busy = Duration::ZERO;
    let mut n = 0;
    while n < events {
        let end = (n + INGEST_CHUNK).min(events);
        wires.clear();
        for k in n..end {
            let (_, bytes) = stream.wire(&app.replica.fleet, k).ok_or("the fleet has no instances")?;
            wires.push(bytes);
        }
        let t = Instant::now();
        for w in &wires {
            let ev = decode_body::<Event>(w).map_err(|e| e.to_string())?;
            app.apply(Inbound::Feed(Feed::Event(ev)));
        }
        busy += t.elapsed();
        n = end;
    }
    let want = stream.rev(events - 1);
    if app.replica.fleet.revision != want {
        return Err(format!("ingest stopped at revision {}, not {want}", app.replica.fleet.revision));
    }
    Ok(events as f64 / busy.as_secs_f64().max(1e-9))
}

/// Runs the bench: in this process, or through the nats-server at `--nats`.
pub async fn run(bus: BusArgs, args: BenchArgs) -> Result<ExitCode, String> {
    match &bus.nats {
        Some(_) => super::bench_nats::run(&bus, &args).await,
        None => run_local(&args),
    }
}

/// The snapshot reply's wire bytes for a synthetic fleet of this size.
pub fn snapshot_wire(hosts: u32, instances: u32) -> Result<Vec<u8>, String> {
    let (fleet, _) = fixture(7, hosts as usize, instances.saturating_sub(7) as usize);
    encode(&Envelope::new("bench", crate::protocol::Reply::Ok(&fleet))).map_err(|e| e.to_string())
}

/// From a snapshot's wire bytes to a cockpit on the Instances panel, ready to draw.
pub fn app_from_wire(wire: &[u8]) -> Result<App, String> {
    let env: Envelope<crate::protocol::Reply<Fleet>> = decode(wire).map_err(|e| e.to_string())?;
    let snapshot = env.body.into_result().map_err(|e| e.to_string())?;
    let theme = Theme::default_for(ColorMode::TrueColor);
    let mut app = App::new("bench", theme, Keymap::defaults(), T0 + 60_000);
    app.apply(Inbound::Feed(Feed::Snapshot(snapshot)));
    app.update(Action::ShowPanel(Panel::Instances));
    Ok(app)
}

fn run_local(args: &BenchArgs) -> Result<ExitCode, String> {
    let mut rng = Rng::new(11);

    // First frame: from the snapshot's wire bytes to a complete frame. The bench keeps no
    // fleet of its own: the cockpit's replica is the only one resident.
    let wire = snapshot_wire(args.hosts, args.instances)?;
    let counter = Counter::default();
    let mut terminal = counting_terminal(&counter)?;
    let started = Instant::now();
    let mut app = app_from_wire(&wire)?;
    drop(wire);
    draw(&mut terminal, &mut app)?;
    let first_frame_ms = started.elapsed().as_secs_f64() * 1000.0;

    let floor = diff_floor(&mut app, &mut rng)?;
    draw(&mut terminal, &mut app)?;
    let timed = time_frames(&mut app, &mut terminal, &counter, &mut rng, args.frames, &floor)?;
    let idle_bytes = idle_bytes(&mut app, &mut terminal, &counter)?;
    let ingest_events_per_s = ingest(&mut app, args.events)?;

    let out = json!({
        "hosts": args.hosts,
        "instances": args.instances,
        "frame_us_p50": percentile(&timed.frame_us, 0.5).round(),
        "frame_us_p99": percentile(&timed.frame_us, 0.99).round(),
        "diff_us_p50": percentile(&timed.diff_us, 0.5).round(),
        "first_frame_ms": (first_frame_ms * 10.0).round() / 10.0,
        "ingest_events_per_s": ingest_events_per_s.round(),
        "rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
        "bytes_per_update_frame": percentile(&timed.frame_bytes, 0.5),
        "idle_bytes": idle_bytes,
    });
    print_figures(&out, args.json);
    Ok(ExitCode::SUCCESS)
}

/// Two frames one batch of metrics apart, for the floor: ratatui's bare `Buffer::diff` of
/// them changes as many cells as a timed frame.
fn diff_floor(app: &mut App, rng: &mut Rng) -> Result<(Buffer, Buffer), String> {
    let mut a = Terminal::new(TestBackend::new(W, H)).map_err(|e| e.to_string())?;
    crate::tui::render(&mut a, app).map_err(|e| e.to_string())?;
    let prev = a.backend().buffer().clone();
    apply_metrics(app, rng);
    crate::tui::render(&mut a, app).map_err(|e| e.to_string())?;
    let next = a.backend().buffer().clone();
    Ok((prev, next))
}

/// The timed frames and floors, each sorted.
struct Timed {
    frame_us: Vec<f64>,
    frame_bytes: Vec<f64>,
    diff_us: Vec<f64>,
}

/// Frames after a batch of metric updates (build, render, diff and write), and the floor,
/// timed in turn: each right after a batch is made and applied, so both find the caches as
/// the event loop would, and a slow spell of the machine falls on both.
fn time_frames(
    app: &mut App,
    terminal: &mut CountingTerminal,
    counter: &Counter,
    rng: &mut Rng,
    frames: u32,
    (prev, next): &(Buffer, Buffer),
) -> Result<Timed, String> {
    let mut frame_us = Vec::with_capacity(frames as usize);
    let mut frame_bytes = Vec::with_capacity(frames as usize);
    let mut diff_us = Vec::with_capacity(frames as usize);
    for _ in 0..frames {
        apply_metrics(app, rng);
        let before = counter.bytes();
        let t = Instant::now();
        draw(terminal, app)?;
        frame_us.push(t.elapsed().as_secs_f64() * 1e6);
        frame_bytes.push((counter.bytes() - before) as f64);

        apply_metrics(app, rng);
        let t = Instant::now();
        std::hint::black_box(prev.diff(next).len());
        diff_us.push(t.elapsed().as_secs_f64() * 1e6);
        // Drawn untimed, so the next timed frame has one batch's changes, not two.
        draw(terminal, app)?;
    }
    frame_us.sort_by(f64::total_cmp);
    frame_bytes.sort_by(f64::total_cmp);
    diff_us.sort_by(f64::total_cmp);
    Ok(Timed { frame_us, frame_bytes, diff_us })
}

/// Idle: the bytes written in two seconds of clock ticks and no events, through the event
/// loop's own tick.
fn idle_bytes(app: &mut App, terminal: &mut CountingTerminal, counter: &Counter) -> Result<usize, String> {
    let before = counter.bytes();
    for _ in 0..2 {
        let now = app.now + 1000;
        crate::tui::tick(terminal, app, now).map_err(|e| e.to_string())?;
    }
    Ok(counter.bytes() - before)
}

/// A bench's figures: one JSON line, or a `key value` line per figure.
pub(super) fn print_figures(out: &Value, as_json: bool) {
    if as_json {
        println!("{out}");
    } else if let Some(map) = out.as_object() {
        for (k, v) in map {
            println!("{k:<24} {v}");
        }
    }
}
