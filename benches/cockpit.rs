//! The cockpit's hot paths at fleet scale (1,000 hosts, 20,000 instances), the same code
//! `quarterdeck bench` times, so a regression shows in review: `cargo bench`.
//!
//! - `frame_after_metrics`: 50 hosts' heartbeats applied, then one 200x50 frame of the
//!   Instances panel through the cockpit's own output path (build, render, diff, write);
//! - `buffer_diff_floor`: ratatui's bare `Buffer::diff` of two such frames, the floor the
//!   frame is compared with;
//! - `first_frame`: the snapshot's wire bytes to a complete first frame;
//! - `ingest_event`: one event envelope decoded from wire bytes and applied through
//!   `App::update`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use quarterdeck::backend::{Feed, Inbound};
use quarterdeck::cli::bench::{Counter, app_from_wire, counting_terminal, draw, metric_batch, snapshot_wire};
use quarterdeck::cli::bench_events::EventStream;
use quarterdeck::plane::rng::Rng;
use quarterdeck::protocol::{Event, decode_body};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The fleet: 1,000 hosts and 20,000 instances under `cargo bench`; a tenth of that when
/// `cargo test --all-targets` runs each bench once as a test (a debug build), so the
/// suite checks the benches work without spending minutes on them.
fn scale() -> (u32, u32) {
    match std::env::args().any(|a| a == "--bench") {
        true => (1000, 20_000),
        false => (100, 2000),
    }
}

fn scale_app() -> quarterdeck::app::App {
    let (hosts, instances) = scale();
    let wire = snapshot_wire(hosts, instances).expect("snapshot");
    app_from_wire(&wire).expect("app")
}

fn frames(c: &mut Criterion) {
    let mut app = scale_app();
    let counter = Counter::default();
    let mut terminal = counting_terminal(&counter).expect("terminal");
    draw(&mut terminal, &mut app).expect("first frame");
    let mut rng = Rng::new(11);
    // Batches made ahead: the bench times applying and drawing them, not making them.
    let batches: Vec<_> = (0..16).map(|_| metric_batch(&app.replica.fleet, &mut rng, 50)).collect();
    let mut next = 0;
    c.bench_function("frame_after_metrics", |b| {
        b.iter(|| {
            for hb in &batches[next % batches.len()] {
                app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb.clone()))));
            }
            next += 1;
            draw(&mut terminal, &mut app).expect("frame");
        })
    });

    let mut t = Terminal::new(TestBackend::new(200, 50)).expect("terminal");
    quarterdeck::tui::render(&mut t, &mut app).expect("draw");
    let before = t.backend().buffer().clone();
    for hb in &batches[0] {
        app.apply(Inbound::Feed(Feed::Heartbeat(Box::new(hb.clone()))));
    }
    quarterdeck::tui::render(&mut t, &mut app).expect("draw");
    let after = t.backend().buffer().clone();
    c.bench_function("buffer_diff_floor", |b| b.iter(|| black_box(before.diff(&after).len())));
}

fn first_frame(c: &mut Criterion) {
    let (hosts, instances) = scale();
    let wire = snapshot_wire(hosts, instances).expect("snapshot");
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function("first_frame", |b| {
        b.iter(|| {
            let mut app = app_from_wire(&wire).expect("app");
            let counter = Counter::default();
            let mut terminal = counting_terminal(&counter).expect("terminal");
            draw(&mut terminal, &mut app).expect("frame");
            black_box(counter.bytes())
        })
    });
    group.finish();
}

fn ingest(c: &mut Criterion) {
    let mut app = scale_app();
    let stream = EventStream::new(&app.replica.fleet);
    let mut n = 0u64;
    c.bench_function("ingest_event", |b| {
        b.iter_custom(|iters| {
            // Encoded untimed, in revision order after what was applied before.
            let wires: Vec<Vec<u8>> =
                (n..n + iters).filter_map(|k| stream.wire(&app.replica.fleet, k).map(|(_, w)| w)).collect();
            n += iters;
            let t = Instant::now();
            for w in &wires {
                let ev: Event = decode_body(w).expect("an event");
                app.apply(Inbound::Feed(Feed::Event(ev)));
            }
            t.elapsed()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = frames, first_frame, ingest
}
criterion_main!(benches);
