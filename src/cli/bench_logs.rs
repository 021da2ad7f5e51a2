//! `quarterdeck bench logs`: the cockpit's merged logs view under an app whose instances
//! all log fast. A stand-in agent on an in-process bus answers each instance's
//! `logs.<user>.start` and publishes `LogBatch`es as an agent does (one each 100 ms per
//! stream); the cockpit side runs on a thread of its own, as the cockpit's event loop
//! does: the streams (`backend::logs_session`), the app applying each batch, and a frame
//! every 50 ms into a byte counter. It reports the lines per second the view took, the
//! CPU time that thread used (from /proc, so Linux only; 0 elsewhere), the frame times and
//! what the buffer kept. A measurement, never an assertion.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::bench::{Counter, counting_terminal, draw, percentile};
use super::parse;
use crate::actions::keymap::Keymap;
use crate::actions::{Action, Effect, Panel};
use crate::app::App;
use crate::backend::{Inbound, logs_session};
use crate::bus::{self, Bus, LocalBus};
use crate::plane::fixture::{T0, fixture};
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::{self, LogsVerb};
use crate::protocol::{AgentAck, Envelope, Fleet, LogBatch, LogLine, LogSource, LogsRequest, Reply, decode};
use crate::theme::{ColorMode, Theme};

/// The stand-in agent's host and the benched app.
const HOST: &str = "bench-host";
const APP: &str = "bench-web";
/// How often a stream sends a batch, as an agent's does at most.
const BATCH_EVERY: Duration = Duration::from_millis(100);
/// How often a frame is drawn: the cockpit's data redraw rate.
const FRAME_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Args)]
pub struct LogsBenchArgs {
    /// Instances of the app, one log stream each.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub instances: u32,
    /// Lines per second each instance logs.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = parse::duration, value_name = "DURATION")]
    pub duration: Duration,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: LogsBenchArgs) -> Result<ExitCode, String> {
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
    let requests = bus.subscribe(&subjects::logs_requests_to(HOST)).await.map_err(|e| e.to_string())?;
    let agent = tokio::spawn(stand_in_agent(bus.clone(), requests, args.rate));
    let cockpit_args = args.clone();
    let cockpit = std::thread::Builder::new()
        .name("qd-bench-cockpit".into())
        .spawn(move || cockpit_side(bus, &cockpit_args))
        .map_err(|e| e.to_string())?;
    let report = tokio::task::spawn_blocking(move || cockpit.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the cockpit thread panicked".to_string())??;
    agent.abort();
    print(&args, &report);
    Ok(ExitCode::SUCCESS)
}

/// What the cockpit side measured.
struct Report {
    seconds: f64,
    lines: u64,
    batches: u64,
    cpu_ms: f64,
    frames: usize,
    frame_ms: Vec<f64>,
    kept: usize,
    dropped: u64,
    lost_batches: u64,
    bytes: usize,
}

/// Answers every start with `ok` and streams `rate` lines a second to it until its stop.
async fn stand_in_agent(bus: Arc<dyn Bus>, mut requests: crate::bus::Subscription, rate: u32) {
    let mut streams: Vec<(String, oneshot::Sender<()>)> = Vec::new();
    while let Some(msg) = requests.next().await {
        let Ok((_, verb)) = subjects::parse_logs_request(HOST, &msg.subject) else { continue };
        match verb {
            LogsVerb::Start => {
                let Ok(env) = decode::<LogsRequest>(&msg.payload) else { continue };
                let (stop, stopped) = oneshot::channel();
                streams.push((env.body.stream.clone(), stop));
                tokio::spawn(stream(bus.clone(), env.body, rate, stopped));
                let reply = Reply::Ok(AgentAck { instance_id: String::new() });
                let _ = bus::respond(bus.as_ref(), &msg, "bench-agent", &reply).await;
            }
            LogsVerb::Stop | LogsVerb::Keepalive => {}
        }
    }
}

async fn stream(bus: Arc<dyn Bus>, req: LogsRequest, rate: u32, mut stop: oneshot::Receiver<()>) {
    let per_batch = (rate as usize * BATCH_EVERY.as_millis() as usize / 1000).max(1);
    let mut tick = tokio::time::interval(BATCH_EVERY);
    let mut seq = 0;
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => return,
        }
        let now = now_ms();
        // Spread over the last interval, as lines logged meanwhile would be.
        let lines = (0..per_batch)
            .map(|k| {
                n += 1;
                let ts = now.saturating_sub(100 - (k * 100 / per_batch) as u64);
                let text =
                    format!("INFO [http-nio-8080-exec-{}] GET /api/items/{n} 200 {}ms", k % 10, n % 97);
                LogLine { ts, source: LogSource::Stdout, text }
            })
            .collect();
        let batch = LogBatch { instance: req.instance.clone(), seq, lines, end: None };
        seq += 1;
        if bus::publish(bus.as_ref(), &req.stream, &Envelope::new("bench-agent", batch)).await.is_err() {
            return;
        }
    }
}

/// A fleet whose one app `APP` has `n` running instances on `HOST`.
fn bench_fleet(n: u32) -> Result<Fleet, String> {
    let (mut fleet, _) = fixture(7, 1, 0);
    let mut spec = fleet.apps.values().next().cloned().ok_or("the fixture has an app")?;
    let template = fleet.instances.values().next().cloned().ok_or("the fixture has an instance")?;
    spec.name = APP.into();
    fleet.apps.insert(APP.into(), spec);
    for index in 0..n {
        let mut i = template.clone();
        i.id = format!("{APP}-{index}-b{index:03}");
        i.app = APP.into();
        i.index = index;
        i.host = HOST.into();
        i.state = crate::protocol::InstanceState::Running;
        fleet.instances.insert(i.id.clone(), i);
    }
    Ok(fleet)
}

fn cockpit_side(bus: Arc<dyn Bus>, args: &LogsBenchArgs) -> Result<Report, String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut app = App::new("bench", Theme::default_for(ColorMode::TrueColor), Keymap::defaults(), T0);
        app.apply(Inbound::Feed(crate::backend::Feed::Snapshot(bench_fleet(args.instances)?)));
        app.update(Action::ShowPanel(Panel::Apps));
        while app.selected_app().is_some_and(|a| a.name != APP) {
            app.update(Action::Down);
        }
        let (tx, mut rx) = mpsc::channel::<Inbound>(16_384);
        let mut stops = Vec::new();
        for effect in app.update(Action::Logs) {
            if let Effect::Logs(start) = effect {
                let (stop, stopped) = oneshot::channel();
                stops.push(stop);
                tokio::spawn(logs_session(bus.clone(), "bench-cockpit".into(), start, stopped, tx.clone()));
            }
        }
        drop(tx);
        let counter = Counter::default();
        let mut terminal = counting_terminal(&counter)?;
        let mut frame = tokio::time::interval(FRAME_EVERY);
        let (start, cpu0) = (Instant::now(), thread_cpu_ms());
        let end = tokio::time::Instant::now() + args.duration;
        let (mut lines, mut batches, mut frame_ms) = (0u64, 0u64, Vec::new());
        loop {
            tokio::select! {
                update = rx.recv() => {
                    let Some(update) = update else { break };
                    if let Inbound::Logs { event: crate::backend::LogsEvent::Batch(b), .. } = &update {
                        lines += b.lines.len() as u64;
                        batches += 1;
                    }
                    app.apply(update);
                }
                _ = frame.tick() => {
                    let t = Instant::now();
                    draw(&mut terminal, &mut app)?;
                    frame_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                _ = tokio::time::sleep_until(end) => break,
            }
        }
        let (seconds, cpu_ms) = (start.elapsed().as_secs_f64(), thread_cpu_ms() - cpu0);
        for stop in stops {
            let _ = stop.send(());
        }
        let view = app.logs.as_ref().ok_or("the logs view is open")?;
        Ok(Report {
            seconds,
            lines,
            batches,
            cpu_ms,
            frames: frame_ms.len(),
            frame_ms,
            kept: view.lines.len(),
            dropped: view.dropped,
            lost_batches: view.lost_batches(),
            bytes: counter.bytes(),
        })
    })
}

/// CPU time (user + system) of the calling thread so far, in ms; 0 without /proc.
fn thread_cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else { return 0.0 };
    // The fields after the command's closing parenthesis; utime and stime are the 12th and
    // 13th of them, in clock ticks (100 a second on Linux).
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) * 10.0
}

fn print(args: &LogsBenchArgs, r: &Report) {
    let mut sorted = r.frame_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let offered = f64::from(args.instances) * f64::from(args.rate);
    let rate = r.lines as f64 / r.seconds.max(1e-9);
    let cpu_pct = r.cpu_ms / (r.seconds * 10.0);
    let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
    if args.json {
        let v = json!({
            "instances": args.instances, "rate_per_instance": args.rate, "offered_lines_per_s": offered,
            "seconds": r.seconds, "lines": r.lines, "batches": r.batches, "lines_per_s": rate,
            "cockpit_cpu_pct": cpu_pct, "frames": r.frames, "frame_ms_p50": p50, "frame_ms_p99": p99,
            "buffer_lines": r.kept, "dropped": r.dropped, "lost_batches": r.lost_batches, "bytes": r.bytes,
        });
        println!("{v}");
        return;
    }
    println!(
        "merged logs: {} instances x {} lines/s = {offered:.0} lines/s offered, for {:.1} s",
        args.instances, args.rate, r.seconds
    );
    println!(
        "  taken by the view   {rate:.0} lines/s ({} lines in {} batches, {} lost)",
        r.lines, r.batches, r.lost_batches
    );
    println!("  cockpit thread CPU  {cpu_pct:.1} % of one core ({:.0} ms)", r.cpu_ms);
    println!("  frames              {} drawn, p50 {p50:.2} ms, p99 {p99:.2} ms, {} bytes", r.frames, r.bytes);
    println!("  buffer              {} lines kept, {} dropped (bound 10000)", r.kept, r.dropped);
}
