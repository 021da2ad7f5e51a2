//! Bounded history reads (issue 13, fault 6), on a real nats-server.
//!
//! The fault: `qd.v1.ctl.history` read the whole stream per request, each on its own
//! unbounded task; with 200k events, 100 concurrent requests got no answer in 60 s. Now a
//! read starts `limit` messages from the end of the stream, and only a few run at once:
//! the others are refused at once as `unavailable` (retryable).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quarterdeck::bus::{self, Bus, NatsBus, RequestError};
use quarterdeck::protocol::clock::now_ms;
use quarterdeck::protocol::{Envelope, ErrorCode, Event, EventKind, HistoryRequest, encode, subjects};

use crate::nats_support::{
    NatsServer, Proc, WAIT, block_on, connect, eventually, eventually_async, try_snapshot,
};

/// How many events the test puts in the stream, and how many requests it sends at once.
const EVENTS: u64 = 200_000;
const REQUESTS: usize = 100;
/// The acceptance bound of issue 13: every request answered within this.
const BOUND: Duration = Duration::from_secs(5);

/// Publishes `EVENTS` well-formed events straight into `QD_EVENTS`, acks pipelined.
async fn fill(bus: &NatsBus) {
    let js = bus.jetstream();
    let subject = subjects::event(&EventKind::HealthCheck.subject_token(), Some("filler"));
    let mut acks = Vec::with_capacity(2_000);
    for rev in 1..=EVENTS {
        let event = Event {
            rev,
            ts: now_ms(),
            kind: EventKind::HealthCheck,
            app: Some("filler".into()),
            host: Some("h1".into()),
            instance: Some(format!("filler-{rev}")),
            operation_id: None,
            message: format!("filler event {rev}: health check passed on 10.0.0.{}:8080", rev % 250),
            changes: vec![],
            audit: None,
        };
        let bytes = encode(&Envelope::new("test/filler", event)).expect("encode an event");
        acks.push(js.publish(subject.clone(), Bytes::from(bytes)).await.expect("publish an event"));
        if acks.len() == 2_000 {
            for ack in acks.drain(..) {
                ack.await.expect("the stream stored the event");
            }
        }
    }
    for ack in acks {
        ack.await.expect("the stream stored the event");
    }
}

#[test]
fn nats_history_answers_100_concurrent_reads_of_a_200k_event_stream_within_5s() {
    let test = "nats_history_answers_100_concurrent_reads_of_a_200k_event_stream_within_5s";
    let Some(nats) = NatsServer::start(test) else { return };
    let _controller = Proc::controller(&nats, "c1", &[]);
    let url = nats.url();
    eventually(WAIT, "the controller answers", || try_snapshot(&url).map(|_| ()));
    block_on(async {
        let bus = Arc::new(connect(&url, "test/history").await);
        let filled = Instant::now();
        fill(&bus).await;
        eprintln!("{EVENTS} events stored in {:?}", filled.elapsed());

        let start = Instant::now();
        let reads = (0..REQUESTS).map(|i| {
            let bus = bus.clone();
            async move {
                // Half ask as the cockpit does (the last hour, at most 5 000), half with
                // no bounds at all (the controller's cap applies).
                let body = match i % 2 {
                    0 => HistoryRequest { since_ts: Some(now_ms() - 3_600_000), limit: Some(5_000) },
                    _ => HistoryRequest { since_ts: None, limit: None },
                };
                let env = Envelope::new(format!("test/reader-{i}"), body);
                let got: Result<Vec<Event>, RequestError> = bus::request(
                    bus.as_ref() as &dyn Bus,
                    subjects::CTL_HISTORY,
                    &env,
                    Duration::from_secs(30),
                )
                .await;
                (got, start.elapsed())
            }
        });
        let answers = futures_util::future::join_all(reads).await;
        let slowest = answers.iter().map(|(_, t)| *t).max().unwrap_or_default();
        let mut read = 0;
        let mut busy = 0;
        for (i, (got, took)) in answers.iter().enumerate() {
            match got {
                Ok(events) => {
                    read += 1;
                    assert!(!events.is_empty(), "request {i}: an empty history");
                    let newest = events.last().map(|e| e.rev);
                    assert_eq!(newest, Some(EVENTS), "request {i}: the newest event is the last stored");
                    let revs: Vec<u64> = events.iter().map(|e| e.rev).collect();
                    assert!(revs.windows(2).all(|w| w[1] == w[0] + 1), "request {i}: oldest first, no gap");
                }
                Err(RequestError::Refused(e)) if e.code == ErrorCode::Unavailable => busy += 1,
                Err(e) => panic!("request {i}: no answer after {took:?}: {e}"),
            }
        }
        eprintln!(
            "{REQUESTS} history requests: {read} read, {busy} refused as busy; slowest answer {slowest:?}"
        );
        assert!(slowest <= BOUND, "the slowest of {REQUESTS} history requests took {slowest:?}");
        assert!(read >= 1, "at least one read ran");

        // The cap frees up: one more read, alone, gets the history (a permit is given back
        // just after its answer is sent, so a busy refusal is retried).
        let env = Envelope::new("test/after", HistoryRequest { since_ts: None, limit: Some(100) });
        let after: Vec<Event> = eventually_async(WAIT, "a read after the burst", || async {
            bus::request(bus.as_ref() as &dyn Bus, subjects::CTL_HISTORY, &env, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        assert_eq!(after.len(), 100);
        assert_eq!(after.first().map(|e| e.rev), Some(EVENTS - 99));
    });
}
