//! Log streams from an agent to viewers: a `logs.<user>.start` starts one, lines go out in
//! batches on the viewer's `qd.v1.logs.<user>.<viewer id>`, and the stream ends when the
//! viewer sends `logs.<user>.stop`, when its keep-alives stop arriving (a viewer that
//! crashed or lost its connection never sends a stop), when the instance is removed, or
//! (without `follow`) when the tail is sent. Each stream belongs to the user whose request
//! started it: its subject is under that user's name, and only that user's requests (the
//! user is in their subject, where the server checks it) reach it. A followed log outlives its container's run: when the instance
//! starts again (the health manager's restart after a crash), the stream says so with a
//! marker line and goes on with the new run's lines. One stream per viewer subject: a new
//! request for the same subject replaces the old stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::driver::{LogReceiver, RuntimeDriver};
use crate::bus::{self, Bus};
use crate::protocol::clock::now_ms;
use crate::protocol::subjects::{self, LOGS_KEEPALIVE_TIMEOUT_MS};
use crate::protocol::{
    AgentAck, Envelope, ErrorCode, ExitInfo, InstanceState, LOGS_TAIL_MAX, LogBatch, LogLine, LogSource,
    LogsRequest, LogsStreamRef, WireError, validate,
};

/// Most lines in one batch.
const BATCH_LINES: usize = 500;
/// Lines wait at most this long before their batch leaves.
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// How far ahead of the agent's clock a `since` may be (clocks of two machines differ);
/// beyond it the request is refused, not answered with nothing.
const SINCE_AHEAD_MAX_MS: u64 = 60_000;
/// How often a followed stream whose container stopped looks for the instance's next run.
const RESTART_POLL: Duration = Duration::from_millis(250);

struct Entry {
    /// Tells the stream's task the viewer is still there; dropping it ends the stream.
    keepalive: watch::Sender<()>,
    generation: u64,
}

/// The streams an agent is serving, by viewer subject.
pub struct LogStreams {
    streams: Arc<Mutex<HashMap<String, Entry>>>,
    next: Mutex<u64>,
    /// How long a stream lives without a keep-alive.
    pub keepalive_timeout: Duration,
}

impl Default for LogStreams {
    fn default() -> Self {
        LogStreams {
            streams: Arc::default(),
            next: Mutex::new(0),
            keepalive_timeout: Duration::from_millis(LOGS_KEEPALIVE_TIMEOUT_MS),
        }
    }
}

impl LogStreams {
    /// How many streams are being served (tests, diagnostics).
    pub fn active(&self) -> usize {
        self.streams.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub async fn start(
        &self,
        bus: Arc<dyn Bus>,
        driver: Arc<dyn RuntimeDriver>,
        source: String,
        user: &str,
        req: LogsRequest,
    ) -> Result<AgentAck, WireError> {
        if !subjects::is_logs_stream_of(user, &req.stream) {
            return Err(WireError::bad_request(format!(
                "log stream subject {} must be {}{user}.<viewer id> (letters, digits, - and _, at \
                 most 64): a stream of {user}'s own",
                validate::quoted(&req.stream),
                subjects::LOGS_PREFIX,
            )));
        }
        if let Some(since) = req.since.filter(|&s| s > now_ms() + SINCE_AHEAD_MAX_MS) {
            return Err(WireError::bad_request(format!(
                "since {} is in the future: a log has no lines after now",
                crate::protocol::clock::datetime(since)
            )));
        }
        if !driver.has(&req.instance).await {
            return Err(WireError::new(
                ErrorCode::NotFound,
                format!("no instance {} on this host", req.instance),
            ));
        }
        // Read before the log is opened, so a start after it counts as a new run.
        let run = current_run(driver.as_ref(), &req.instance).await;
        let lines = driver
            .logs(&req.instance, req.tail.min(LOGS_TAIL_MAX), req.follow)
            .await
            .map_err(|e| WireError::new(ErrorCode::Internal, e.to_string()))?;
        let (keepalive, alive) = watch::channel(());
        let generation = {
            let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        // Replacing the entry drops the old sender, which ends the old stream.
        if let Ok(mut streams) = self.streams.lock() {
            streams.insert(req.stream.clone(), Entry { keepalive, generation });
        }
        let task = Stream {
            bus,
            driver,
            source,
            subject: req.stream.clone(),
            instance: req.instance.clone(),
            follow: req.follow,
            since: req.since.unwrap_or(0),
            timeout: self.keepalive_timeout,
        };
        let streams = self.streams.clone();
        tokio::spawn(async move {
            let subject = task.subject.clone();
            task.run(lines, run, alive).await;
            if let Ok(mut s) = streams.lock()
                && s.get(&subject).is_some_and(|e| e.generation == generation)
            {
                s.remove(&subject);
            }
        });
        Ok(AgentAck { instance_id: req.instance })
    }

    /// `user`'s viewer is still there (`stop` false), or closed its logs view (`stop`).
    /// Another user's stream is `not_found`, as an unknown one is, so nobody learns
    /// another's stream ids, let alone ends or keeps them.
    pub fn touch(&self, user: &str, r: &LogsStreamRef, stop: bool) -> Result<AgentAck, WireError> {
        let found = subjects::is_logs_stream_of(user, &r.stream)
            && self.streams.lock().is_ok_and(|mut s| match stop {
                true => s.remove(&r.stream).is_some(),
                false => s.get(&r.stream).is_some_and(|e| e.keepalive.send(()).is_ok()),
            });
        match found {
            true => Ok(AgentAck { instance_id: String::new() }),
            false => Err(WireError::new(
                ErrorCode::NotFound,
                format!("{user} has no log stream {}", validate::quoted(&r.stream)),
            )),
        }
    }
}

/// Which run of its container an instance is in: its start time, as the driver reports it.
type Run = Option<u64>;

async fn current_run(driver: &dyn RuntimeDriver, id: &str) -> Run {
    driver.list().await.ok()?.into_iter().find(|r| r.id == id)?.started_at
}

/// What a followed stream whose log ended finds when it looks at its instance.
enum Next {
    /// Running again since `Run`: its last exit, if known, for the marker.
    Restarted(Run, Option<ExitInfo>),
    /// The driver no longer has it.
    Removed,
    /// Not running again yet.
    Waiting,
}

async fn next_run(driver: &dyn RuntimeDriver, id: &str, run: Run) -> Next {
    let Ok(list) = driver.list().await else { return Next::Waiting };
    match list.into_iter().find(|r| r.id == id) {
        None => Next::Removed,
        Some(r)
            if matches!(r.state, InstanceState::Running | InstanceState::Unhealthy)
                && r.started_at.is_some()
                && r.started_at != run =>
        {
            Next::Restarted(r.started_at, r.last_exit)
        }
        Some(_) => Next::Waiting,
    }
}

/// The line a followed log shows between two runs of its container.
pub fn restart_marker(exit: Option<ExitInfo>, ts: u64) -> LogLine {
    let text = match exit {
        Some(x) => format!("── restarted ({}) ──", x.reason()),
        None => "── restarted ──".to_string(),
    };
    LogLine { ts, source: LogSource::Stdout, text }
}

/// Why a stream ended, or the next run's lines to go on with and the marker before them.
enum Gap {
    End(String),
    Resume(Run, LogReceiver, LogLine),
}

struct Stream {
    bus: Arc<dyn Bus>,
    driver: Arc<dyn RuntimeDriver>,
    source: String,
    subject: String,
    instance: String,
    follow: bool,
    /// Lines older than this are left out (0: none); a line of unknown time is kept.
    since: u64,
    timeout: Duration,
}

impl Stream {
    async fn run(&self, mut lines: LogReceiver, mut run: Run, mut alive: watch::Receiver<()>) {
        let mut seq = 0;
        let mut batch = Vec::new();
        // The newest line's time: the next run's log is read from just after it.
        let mut last_ts = 0;
        let mut flush = tokio::time::interval(BATCH_WAIT);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut poll = tokio::time::interval(RESTART_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // `Some` while the container is stopped and the stream waits for its next run.
        let mut stopped_at: Option<u64> = None;
        let end = loop {
            tokio::select! {
                line = lines.recv(), if stopped_at.is_none() => match line {
                    Some(line) if line.ts != 0 && line.ts < self.since => {}
                    Some(line) => {
                        last_ts = last_ts.max(line.ts);
                        batch.push(line);
                        if batch.len() >= BATCH_LINES {
                            self.publish(&mut seq, std::mem::take(&mut batch), None).await;
                        }
                    }
                    None if self.follow => stopped_at = Some(now_ms()),
                    None => break "the log ended (the tail was sent)".to_string(),
                },
                _ = poll.tick(), if stopped_at.is_some() => {
                    match self.after_stop(run, last_ts, stopped_at.unwrap_or_default()).await {
                        Some(Gap::Resume(next, rx, marker)) => {
                            batch.push(marker);
                            lines = rx;
                            run = next;
                            stopped_at = None;
                        }
                        Some(Gap::End(why)) => break why,
                        None => {}
                    }
                }
                _ = flush.tick() => {
                    if !batch.is_empty() {
                        self.publish(&mut seq, std::mem::take(&mut batch), None).await;
                    }
                }
                changed = alive.changed() => match changed {
                    Ok(()) => deadline.as_mut().reset(tokio::time::Instant::now() + self.timeout),
                    Err(_) => break "stopped by the viewer".to_string(),
                },
                _ = &mut deadline => {
                    break format!("no keep-alive from the viewer for {} s", self.timeout.as_secs());
                }
            }
        };
        // Dropping `lines` (when this returns) stops the driver's reader.
        log::debug!("log stream {} of {} ended: {end}", self.subject, self.instance);
        self.publish(&mut seq, batch, Some(end)).await;
    }

    /// The container stopped: once the instance runs again, its new lines (from just after
    /// the last one sent) and the marker that goes before them; `None` while it waits.
    async fn after_stop(&self, run: Run, last_ts: u64, stopped_at: u64) -> Option<Gap> {
        match next_run(self.driver.as_ref(), &self.instance, run).await {
            Next::Waiting => None,
            Next::Removed => Some(Gap::End("the instance was removed".into())),
            Next::Restarted(next, exit) => {
                let since = if last_ts > 0 { last_ts + 1 } else { stopped_at };
                Some(match self.driver.logs_since(&self.instance, since).await {
                    Ok(rx) => Gap::Resume(next, rx, restart_marker(exit, next.unwrap_or_else(now_ms))),
                    Err(e) => Gap::End(format!("cannot follow the restarted container: {e}")),
                })
            }
        }
    }

    async fn publish(&self, seq: &mut u64, lines: Vec<crate::protocol::LogLine>, end: Option<String>) {
        let body = LogBatch { instance: self.instance.clone(), seq: *seq, lines, end };
        *seq += 1;
        let env = Envelope::new(&self.source, body);
        if let Err(err) = bus::publish(self.bus.as_ref(), &self.subject, &env).await {
            log::warn!("log batch for {} not sent: {err}", self.subject);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use crate::plane::agent::driver::{DriverError, StepSender};
    use crate::protocol::{HostMetrics, InstanceReport, InstanceSpec, decode};
    use async_trait::async_trait;
    use tokio::sync::mpsc;

    /// One instance whose state and log the test drives.
    #[derive(Default)]
    struct Fake {
        report: Mutex<Option<InstanceReport>>,
        /// Each log opened: the sender the test writes to, and `since` when it was a
        /// re-attach.
        opened: Mutex<Vec<(mpsc::Sender<LogLine>, Option<u64>)>>,
    }

    impl Fake {
        fn set(&self, state: InstanceState, started_at: u64, exit: Option<ExitInfo>) {
            let mut r = self.report.lock().unwrap();
            *r = Some(InstanceReport {
                id: "web-0-abcd".into(),
                app: "web".into(),
                version: "1".into(),
                index: 0,
                state,
                ip: "127.0.0.1".into(),
                port: 1,
                container_id: "c".into(),
                started_at: Some(started_at),
                cpu_pct: 0.0,
                mem_used_mb: 0,
                mem_limit_mb: 0,
                last_exit: exit,
            });
        }

        fn open(&self, since: Option<u64>) -> LogReceiver {
            let (tx, rx) = mpsc::channel(16);
            self.opened.lock().unwrap().push((tx, since));
            rx
        }

        /// Closes the current log, as Docker's does when the container stops.
        fn stop_log(&self) {
            if let Some(last) = self.opened.lock().unwrap().last_mut() {
                let (closed, _) = mpsc::channel(1);
                last.0 = closed;
            }
        }

        async fn say(&self, ts: u64, text: &str) {
            let tx = self.opened.lock().unwrap().last().map(|(tx, _)| tx.clone()).unwrap();
            tx.send(LogLine { ts, source: LogSource::Stdout, text: text.into() }).await.unwrap();
        }
    }

    #[async_trait]
    impl RuntimeDriver for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn capacity(&self) -> (u32, u64) {
            (1, 1)
        }
        async fn host_metrics(&self) -> HostMetrics {
            HostMetrics::default()
        }
        async fn list(&self) -> Result<Vec<InstanceReport>, DriverError> {
            Ok(self.report.lock().unwrap().clone().into_iter().collect())
        }
        async fn has(&self, id: &str) -> bool {
            self.report.lock().unwrap().as_ref().is_some_and(|r| r.id == id)
        }
        async fn deploy(&self, _: InstanceSpec, _: StepSender) -> Result<(), DriverError> {
            Ok(())
        }
        async fn restart(&self, _: &str, _: StepSender) -> Result<(), DriverError> {
            Ok(())
        }
        async fn remove(&self, _: &str) -> Result<(), DriverError> {
            *self.report.lock().unwrap() = None;
            Ok(())
        }
        async fn logs(&self, _: &str, _: u32, _: bool) -> Result<LogReceiver, DriverError> {
            Ok(self.open(None))
        }
        async fn logs_since(&self, _: &str, since_ms: u64) -> Result<LogReceiver, DriverError> {
            Ok(self.open(Some(since_ms)))
        }
    }

    /// Lines and the end reason of every batch on `stream` until `until` holds or 5 s pass.
    async fn read_until(
        sub: &mut crate::bus::Subscription,
        seen: &mut Vec<String>,
        until: impl Fn(&[String]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !until(seen) {
            let msg = tokio::time::timeout_at(deadline, sub.next()).await.expect("in time").expect("open");
            let batch = decode::<LogBatch>(&msg.payload).expect("a batch").body;
            seen.extend(batch.lines.into_iter().map(|l| l.text));
            seen.extend(batch.end.map(|e| format!("END {e}")));
        }
    }

    #[tokio::test]
    async fn a_followed_log_goes_on_after_a_restart_with_a_marker_and_ends_on_removal() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let fake = Arc::new(Fake::default());
        fake.set(InstanceState::Running, 1_000, None);
        let stream = subjects::logs_stream("alice", "viewer");
        let mut sub = bus.subscribe(&stream).await.unwrap();
        let streams = LogStreams::default();
        let req = LogsRequest { instance: "web-0-abcd".into(), tail: 10, follow: true, stream, since: None };
        streams.start(bus.clone(), fake.clone(), "agent/h".into(), "alice", req).await.unwrap();
        fake.say(2_000, "first run").await;
        let mut seen = Vec::new();
        read_until(&mut sub, &mut seen, |s| s.iter().any(|l| l == "first run")).await;
        // The container exits 3: its log ends, the stream waits for the next run.
        fake.stop_log();
        fake.set(InstanceState::Crashed, 1_000, Some(ExitInfo::new(3, false, 2_500)));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(fake.opened.lock().unwrap().len(), 1, "no new read before the restart");
        assert!(!seen.iter().any(|l| l.starts_with("END")), "{seen:?}");
        // The health manager starts it again.
        fake.set(InstanceState::Running, 3_000, Some(ExitInfo::new(3, false, 2_500)));
        let waited = tokio::time::Instant::now();
        while fake.opened.lock().unwrap().len() < 2 {
            assert!(waited.elapsed() < Duration::from_secs(5), "the log is read again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(fake.opened.lock().unwrap()[1].1, Some(2_001), "from just after the last line sent");
        fake.say(3_100, "second run").await;
        read_until(&mut sub, &mut seen, |s| s.iter().any(|l| l == "second run")).await;
        let at = |needle: &str| seen.iter().position(|l| l == needle).unwrap();
        assert!(at("first run") < at("── restarted (exit 3) ──"), "{seen:?}");
        assert!(at("── restarted (exit 3) ──") < at("second run"), "{seen:?}");
        // Removed: the stream ends and says why.
        fake.stop_log();
        *fake.report.lock().unwrap() = None;
        read_until(&mut sub, &mut seen, |s| s.iter().any(|l| l.starts_with("END"))).await;
        assert_eq!(seen.last().map(String::as_str), Some("END the instance was removed"));
    }

    #[tokio::test]
    async fn a_tail_without_follow_ends_with_the_log() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let fake = Arc::new(Fake::default());
        fake.set(InstanceState::Running, 1_000, None);
        let stream = subjects::logs_stream("alice", "viewer");
        let mut sub = bus.subscribe(&stream).await.unwrap();
        let streams = LogStreams::default();
        let req = LogsRequest { instance: "web-0-abcd".into(), tail: 10, follow: false, stream, since: None };
        streams.start(bus.clone(), fake.clone(), "agent/h".into(), "alice", req).await.unwrap();
        fake.say(2_000, "only line").await;
        fake.stop_log();
        let mut seen = Vec::new();
        read_until(&mut sub, &mut seen, |s| s.iter().any(|l| l.starts_with("END"))).await;
        assert_eq!(seen, ["only line", "END the log ended (the tail was sent)"]);
    }

    #[tokio::test]
    async fn since_leaves_out_older_lines_keeps_those_of_unknown_time_and_refuses_the_future() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let fake = Arc::new(Fake::default());
        fake.set(InstanceState::Running, 1_000, None);
        let stream = subjects::logs_stream("alice", "viewer");
        let mut sub = bus.subscribe(&stream).await.unwrap();
        let streams = LogStreams::default();
        let req = LogsRequest {
            instance: "web-0-abcd".into(),
            tail: 10,
            follow: false,
            stream,
            since: Some(2_000),
        };
        let future = LogsRequest { since: Some(now_ms() + 3_600_000), ..req.clone() };
        let err = streams.start(bus.clone(), fake.clone(), "agent/h".into(), "alice", future).await;
        let err = err.expect_err("a since an hour ahead");
        assert!(err.code == ErrorCode::BadRequest && err.reason.contains("in the future"), "{err:?}");
        streams.start(bus.clone(), fake.clone(), "agent/h".into(), "alice", req).await.unwrap();
        fake.say(1_999, "too old").await;
        fake.say(0, "of unknown time").await;
        fake.say(2_000, "just in time").await;
        fake.stop_log();
        let mut seen = Vec::new();
        read_until(&mut sub, &mut seen, |s| s.iter().any(|l| l.starts_with("END"))).await;
        assert_eq!(seen, ["of unknown time", "just in time", "END the log ended (the tail was sent)"]);
    }

    /// A stream belongs to the user that started it: another user can neither start one
    /// on its subject, nor keep it alive, nor stop it, and is told `not_found` as for a
    /// stream that does not exist.
    #[tokio::test]
    async fn another_users_stream_is_out_of_reach() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let fake = Arc::new(Fake::default());
        fake.set(InstanceState::Running, 1_000, None);
        let streams = LogStreams::default();
        let alices = subjects::logs_stream("alice", "v1");
        let req = |stream: &str| LogsRequest {
            instance: "web-0-abcd".into(),
            tail: 10,
            follow: true,
            stream: stream.into(),
            since: None,
        };
        let refused = streams.start(bus.clone(), fake.clone(), "agent/h".into(), "bob", req(&alices)).await;
        let err = refused.expect_err("bob started a stream on alice's subject");
        assert_eq!(err.code, ErrorCode::BadRequest, "{err:?}");
        assert!(err.reason.contains("qd.v1.logs.bob.") && err.reason.contains("bob's own"), "{err:?}");
        streams.start(bus.clone(), fake.clone(), "agent/h".into(), "alice", req(&alices)).await.unwrap();
        let r = LogsStreamRef { stream: alices.clone() };
        for stop in [false, true] {
            let err = streams.touch("bob", &r, stop).expect_err("bob reached alice's stream");
            assert_eq!(err.code, ErrorCode::NotFound, "{err:?}");
            let unknown = streams.touch("bob", &LogsStreamRef { stream: "qd.v1.logs.bob.v9".into() }, stop);
            assert_eq!(unknown.map_err(|e| e.code), Err(ErrorCode::NotFound), "the same answer as unknown");
        }
        assert_eq!(streams.active(), 1, "alice's stream still runs");
        assert!(streams.touch("alice", &r, false).is_ok(), "her keep-alive");
        assert!(streams.touch("alice", &r, true).is_ok(), "her stop");
        assert_eq!(streams.active(), 0);
        assert!(streams.touch("alice", &r, true).is_err(), "stopped already");
    }
}
