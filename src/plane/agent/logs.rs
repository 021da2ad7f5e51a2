//! Log streams from an agent to viewers: `cmd.logs` starts one, lines go out in batches on
//! the viewer's `qd.v1.logs.<viewer id>`, and the stream ends when the viewer sends
//! `cmd.logs_stop`, when its keep-alives stop arriving (a viewer that crashed or lost its
//! connection never sends a stop), or when the log itself ends. One stream per viewer
//! subject: a new request for the same subject replaces the old stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::driver::{LogReceiver, RuntimeDriver};
use crate::bus::{self, Bus};
use crate::protocol::subjects::{self, LOGS_KEEPALIVE_TIMEOUT_MS};
use crate::protocol::{
    AgentAck, Envelope, ErrorCode, LOGS_TAIL_MAX, LogBatch, LogsRequest, LogsStreamRef, WireError,
};

/// Most lines in one batch.
const BATCH_LINES: usize = 500;
/// Lines wait at most this long before their batch leaves.
const BATCH_WAIT: Duration = Duration::from_millis(100);

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
        driver: &dyn RuntimeDriver,
        source: String,
        req: LogsRequest,
    ) -> Result<AgentAck, WireError> {
        if !subjects::is_logs_stream(&req.stream) {
            return Err(WireError::bad_request(format!(
                "log stream subject {:?} must be {}<viewer id> (letters, digits, - and _)",
                req.stream,
                subjects::LOGS_PREFIX
            )));
        }
        if !driver.has(&req.instance).await {
            return Err(WireError::new(
                ErrorCode::NotFound,
                format!("no instance {} on this host", req.instance),
            ));
        }
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
            source,
            subject: req.stream.clone(),
            instance: req.instance.clone(),
            timeout: self.keepalive_timeout,
        };
        let streams = self.streams.clone();
        tokio::spawn(async move {
            let subject = task.subject.clone();
            task.run(lines, alive).await;
            if let Ok(mut s) = streams.lock()
                && s.get(&subject).is_some_and(|e| e.generation == generation)
            {
                s.remove(&subject);
            }
        });
        Ok(AgentAck { instance_id: req.instance })
    }

    /// The viewer closed its logs view.
    pub fn stop(&self, r: &LogsStreamRef) -> bool {
        self.streams.lock().map(|mut s| s.remove(&r.stream).is_some()).unwrap_or(false)
    }

    /// The viewer is still there.
    pub fn keepalive(&self, r: &LogsStreamRef) -> bool {
        self.streams
            .lock()
            .map(|s| s.get(&r.stream).map(|e| e.keepalive.send(()).is_ok()).unwrap_or(false))
            .unwrap_or(false)
    }
}

struct Stream {
    bus: Arc<dyn Bus>,
    source: String,
    subject: String,
    instance: String,
    timeout: Duration,
}

impl Stream {
    async fn run(&self, mut lines: LogReceiver, mut alive: watch::Receiver<()>) {
        let mut seq = 0;
        let mut batch = Vec::new();
        let mut flush = tokio::time::interval(BATCH_WAIT);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let end = loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => {
                        batch.push(line);
                        if batch.len() >= BATCH_LINES {
                            self.publish(&mut seq, std::mem::take(&mut batch), None).await;
                        }
                    }
                    None => break "the log ended (the container stopped or has no more output)".to_string(),
                },
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

    async fn publish(&self, seq: &mut u64, lines: Vec<crate::protocol::LogLine>, end: Option<String>) {
        let body = LogBatch { instance: self.instance.clone(), seq: *seq, lines, end };
        *seq += 1;
        let env = Envelope::new(&self.source, body);
        if let Err(err) = bus::publish(self.bus.as_ref(), &self.subject, &env).await {
            log::warn!("log batch for {} not sent: {err}", self.subject);
        }
    }
}
