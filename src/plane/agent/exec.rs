//! Exec sessions from an agent to one user each (docs/protocol.md §4 "Exec"): an
//! `exec.<user>.start` runs a process in an instance's container through the runtime
//! driver; its output goes out in frames on the user's `qd.v1.exec.<user>.<session id>`;
//! input, resizes, keep-alives and the stop come on `exec.<user>.<verb>`, and reach only a
//! session of that user (the user is in the subject, where the server checks it). The
//! session ends when the process exits, when the viewer stops it, when its keep-alives
//! stop (the process is killed: a dead viewer never leaves one running), or when the
//! container dies. Its start and end are reported to the controller for the audit trail,
//! and its output is recorded (asciicast v2) into the sessions bucket when one is given.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::driver::{DriverError, ExecProcess, RuntimeDriver};
use super::recording::Recording;
use crate::bus::{self, Bus};
use crate::protocol::clock::now_ms;
use crate::protocol::exec::{
    EXEC_ALIVE_EVERY_MS, EXEC_KEEPALIVE_TIMEOUT_MS, ExecEnd, ExecEndReason, ExecFrame, ExecInput,
    ExecPayload, ExecRef, ExecRequest, ExecResize, ExecStarted, ExecVerb, SessionEnd, SessionReport,
    check_size, check_stream, cmd_line, decode_chunk, encode_chunk,
};
use crate::protocol::subjects::{self, SessionKind};
use crate::protocol::{Envelope, ErrorCode, WireError, validate};
use crate::repository::Repository;

/// Controls a session's task takes; input waits here while the process reads slowly.
const CONTROLS: usize = 1024;
/// How long the agent waits for Docker to tell an ended process's exit code.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(5);

enum Control {
    Input(ExecInput),
    Resize(u16, u16),
    Keepalive,
    Stop,
}

/// The sessions an agent runs, by stream subject.
pub struct ExecSessions {
    sessions: Arc<Mutex<HashMap<String, mpsc::Sender<Control>>>>,
    /// How long a session lives without a keep-alive.
    pub keepalive_timeout: Duration,
    /// Where recordings go (the sessions bucket), if anywhere.
    pub recordings: Option<Arc<dyn Repository>>,
}

impl Default for ExecSessions {
    fn default() -> Self {
        ExecSessions {
            sessions: Arc::default(),
            keepalive_timeout: Duration::from_millis(EXEC_KEEPALIVE_TIMEOUT_MS),
            recordings: None,
        }
    }
}

/// Who runs the sessions: the agent's bus, its source and host.
#[derive(Clone)]
pub struct Agent {
    pub bus: Arc<dyn Bus>,
    pub driver: Arc<dyn RuntimeDriver>,
    pub source: String,
    pub host: String,
}

fn refused(e: DriverError) -> WireError {
    match e {
        DriverError::NotFound(id) => {
            WireError::new(ErrorCode::NotFound, format!("no instance {id} on this host"))
        }
        DriverError::Failed(why) => WireError::new(ErrorCode::Unavailable, why),
    }
}

impl ExecSessions {
    pub fn with_recordings(recordings: Option<Arc<dyn Repository>>) -> ExecSessions {
        ExecSessions { recordings, ..ExecSessions::default() }
    }

    /// How many sessions run (tests, diagnostics).
    pub fn active(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub async fn start(&self, agent: Agent, user: &str, req: ExecRequest) -> Result<ExecStarted, WireError> {
        req.check(user).map_err(WireError::bad_request)?;
        if self.sessions.lock().is_ok_and(|s| s.contains_key(&req.stream)) {
            return Err(WireError::new(
                ErrorCode::Conflict,
                format!("session {} is running already", validate::quoted(&req.stream)),
            ));
        }
        if !agent.driver.has(&req.instance).await {
            return Err(WireError::new(
                ErrorCode::NotFound,
                format!("no instance {} on this host", req.instance),
            ));
        }
        let process = agent
            .driver
            .exec(&req.instance, req.cmd.clone(), req.tty, (req.cols, req.rows))
            .await
            .map_err(refused)?;
        let session = req.stream.rsplit('.').next().unwrap_or_default().to_string();
        let started = ExecStarted { session: session.clone(), cmd: process.cmd.clone() };
        let (tx, rx) = mpsc::channel(CONTROLS);
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(req.stream.clone(), tx);
        }
        let report = SessionReport {
            kind: SessionKind::Exec.into(),
            user: user.to_string(),
            session,
            instance: req.instance.clone(),
            what: validate::cut_owned(cmd_line(&process.cmd), 1024),
            started_at: now_ms(),
            end: None,
        };
        let recording = self
            .recordings
            .clone()
            .map(|store| (store, Recording::new(report.started_at, (req.cols, req.rows), &report.what)));
        let task = Session { agent, stream: req.stream.clone(), report, timeout: self.keepalive_timeout };
        let sessions = self.sessions.clone();
        tokio::spawn(async move {
            task.send_report(&task.report).await;
            let stream = task.stream.clone();
            task.run(process, rx, recording).await;
            if let Ok(mut s) = sessions.lock() {
                s.remove(&stream);
            }
        });
        Ok(started)
    }

    /// A publish of `user` about one of its sessions (`input`, `resize`, `keepalive`,
    /// `stop`). Another user's session is `not_found`, as an unknown one is.
    pub fn control(&self, user: &str, verb: ExecVerb, payload: &[u8]) -> Result<(), WireError> {
        use crate::protocol::decode;
        let bad = |e: crate::protocol::ProtocolError| WireError::bad_request(e.to_string());
        let (stream, control) = match verb {
            ExecVerb::Input => {
                let input = decode::<ExecInput>(payload).map_err(bad)?.body;
                decode_chunk(&input.data).map_err(WireError::bad_request)?;
                (input.stream.clone(), Control::Input(input))
            }
            ExecVerb::Resize => {
                let r = decode::<ExecResize>(payload).map_err(bad)?.body;
                check_size(r.cols, r.rows).map_err(WireError::bad_request)?;
                (r.stream, Control::Resize(r.cols, r.rows))
            }
            ExecVerb::Keepalive => (decode::<ExecRef>(payload).map_err(bad)?.body.stream, Control::Keepalive),
            ExecVerb::Stop => (decode::<ExecRef>(payload).map_err(bad)?.body.stream, Control::Stop),
            ExecVerb::Start => return Err(WireError::bad_request("a start is a request of its own")),
        };
        let tx = check_stream(user, &stream)
            .ok()
            .and_then(|()| self.sessions.lock().ok()?.get(&stream).cloned())
            .ok_or_else(|| {
                WireError::new(
                    ErrorCode::NotFound,
                    format!("{user} has no exec session {}", validate::quoted(&stream)),
                )
            })?;
        tx.try_send(control).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => WireError::new(
                ErrorCode::Unavailable,
                "the session's input is full: the process reads too slowly",
            ),
            mpsc::error::TrySendError::Closed(_) => {
                WireError::new(ErrorCode::NotFound, "the session has ended")
            }
        })
    }
}

struct Session {
    agent: Agent,
    stream: String,
    report: SessionReport,
    timeout: Duration,
}

/// The session ended before the process did: it is killed, and the end says so.
async fn killed(handle: &dyn super::driver::ExecHandle, reason: ExecEndReason, detail: String) -> ExecEnd {
    let detail = match handle.kill().await {
        Ok(()) => detail,
        Err(err) => format!("{detail}; the kill failed: {err}"),
    };
    ExecEnd { exit_code: handle.exit_code().await.ok().flatten(), reason, detail }
}

impl Session {
    async fn run(
        &self,
        process: ExecProcess,
        mut controls: mpsc::Receiver<Control>,
        mut recording: Option<(Arc<dyn Repository>, Recording)>,
    ) {
        let ExecProcess { mut output, handle, .. } = process;
        let mut seq = 0u64;
        let mut next_input = 0u64;
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut alive = tokio::time::interval(Duration::from_millis(EXEC_ALIVE_EVERY_MS));
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut said = false;
        // `None`: the process's output ended; otherwise why the session ends before that.
        let early: Option<(ExecEndReason, String)> = loop {
            tokio::select! {
                out = output.recv() => match out {
                    Some((fd, bytes)) => {
                        if let Some((_, r)) = recording.as_mut() {
                            r.output(now_ms(), &bytes);
                        }
                        self.publish(&mut seq, ExecPayload::Out { fd, data: encode_chunk(&bytes) }).await;
                        said = true;
                    }
                    None => break None,
                },
                control = controls.recv() => match control {
                    Some(Control::Input(input)) => self.input(input, &mut next_input, handle.as_ref()).await,
                    Some(Control::Resize(cols, rows)) => {
                        if let Err(err) = handle.resize(cols, rows).await {
                            log::info!("exec {}: resize failed: {err}", self.stream);
                        }
                    }
                    Some(Control::Keepalive) => deadline.as_mut().reset(tokio::time::Instant::now() + self.timeout),
                    Some(Control::Stop) | None => break Some((ExecEndReason::Stopped, "stopped by the viewer".into())),
                },
                _ = alive.tick() => {
                    if !said {
                        self.publish(&mut seq, ExecPayload::Alive).await;
                    }
                    said = false;
                }
                _ = &mut deadline => {
                    break Some((
                        ExecEndReason::ViewerLost,
                        format!("no keep-alive from the viewer for {} s: the process was killed", self.timeout.as_secs()),
                    ));
                }
            }
        };
        let end = match early {
            Some((reason, detail)) => killed(handle.as_ref(), reason, detail).await,
            None => self.ended(handle.as_ref()).await,
        };
        log::info!(
            "exec {} on {} ended: {} {}",
            self.stream,
            self.report.instance,
            end.reason.as_str(),
            end.detail
        );
        self.publish(&mut seq, ExecPayload::End(end.clone())).await;
        self.report_end(end, recording).await;
    }

    /// A chunk of the viewer's input, written to the process (a gap in its numbers is
    /// only logged: the bytes that came are still the viewer's).
    async fn input(&self, input: ExecInput, next_input: &mut u64, handle: &dyn super::driver::ExecHandle) {
        if input.seq != *next_input {
            log::warn!("exec {}: input chunk {} came when {next_input} was due", self.stream, input.seq);
        }
        // The user's number: u64::MAX must not overflow.
        *next_input = input.seq.saturating_add(1);
        let written = match decode_chunk(&input.data) {
            Ok(bytes) if !bytes.is_empty() => handle.write(&bytes).await,
            _ => Ok(()),
        };
        let closed = if input.eof { handle.close_stdin().await } else { Ok(()) };
        if let Err(err) = written.and(closed) {
            log::info!("exec {}: input not written: {err}", self.stream);
        }
    }

    /// Saves the recording, if any, and sends the session's report with its end.
    async fn report_end(&self, end: ExecEnd, recording: Option<(Arc<dyn Repository>, Recording)>) {
        let recording = match recording {
            Some((store, r)) => self.save(store.as_ref(), r).await,
            None => None,
        };
        let mut report = self.report.clone();
        report.end = Some(SessionEnd {
            ended_at: now_ms(),
            exit_code: end.exit_code,
            reason: end.reason.as_str().to_string(),
            detail: validate::cut_owned(end.detail, 2 * validate::QUOTE_MAX),
            recording,
        });
        self.send_report(&report).await;
    }

    /// The process's output ended: how it ended (its exit code, or its container's death).
    async fn ended(&self, handle: &dyn super::driver::ExecHandle) -> ExecEnd {
        let waited = tokio::time::Instant::now();
        let code = loop {
            match handle.exit_code().await {
                Ok(Some(code)) => break Some(code),
                Ok(None) if waited.elapsed() < EXIT_CODE_WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => break None,
            }
        };
        // Asked of the runtime itself: the driver's cache learns of a death a moment later.
        // A process killed by a signal may have died with its container, whose stop the
        // runtime records a moment after the process's output closes: looked at again for
        // up to a second.
        let mut running = handle.container_running().await.unwrap_or(true);
        if running && code.is_none_or(|c| c >= 128) {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                running = handle.container_running().await.unwrap_or(true);
                if !running {
                    break;
                }
            }
        }
        let removed = !self.agent.driver.has(&self.report.instance).await;
        match (running && !removed, code) {
            (false, _) => ExecEnd {
                exit_code: code,
                reason: ExecEndReason::ContainerDied,
                detail: match (removed, code) {
                    (true, _) => "the instance was removed".into(),
                    (false, Some(c)) => format!("the container stopped (the process's exit code: {c})"),
                    (false, None) => "the container stopped".into(),
                },
            },
            (true, Some(code)) => {
                ExecEnd { exit_code: Some(code), reason: ExecEndReason::Exited, detail: String::new() }
            }
            (true, None) => ExecEnd {
                exit_code: None,
                reason: ExecEndReason::Failed,
                detail: format!(
                    "the runtime did not tell the exit code within {} s",
                    EXIT_CODE_WAIT.as_secs()
                ),
            },
        }
    }

    async fn publish(&self, seq: &mut u64, what: ExecPayload) {
        let env = Envelope::new(&self.agent.source, ExecFrame { seq: *seq, what });
        *seq += 1;
        if let Err(err) = bus::publish(self.agent.bus.as_ref(), &self.stream, &env).await {
            log::warn!("exec frame for {} not sent: {err}", self.stream);
        }
    }

    async fn send_report(&self, report: &SessionReport) {
        let env = Envelope::new(&self.agent.source, report);
        let subject = subjects::session_report(&self.agent.host);
        if let Err(err) = bus::publish(self.agent.bus.as_ref(), &subject, &env).await {
            log::warn!("session report for {} not sent: {err}", self.stream);
        }
    }

    /// Stores the recording; its object's name, or `None` (said in the log) when it failed.
    async fn save(&self, store: &dyn Repository, recording: Recording) -> Option<String> {
        let name = self.report.session.clone();
        match store.put(&name, Bytes::from(recording.finish())).await {
            Ok(_) => Some(name),
            Err(err) => {
                log::warn!("exec {}: recording not stored: {err}", self.stream);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use crate::plane::agent::driver::{ExecChunk, ExecHandle, StepSender};
    use crate::protocol::exec::{ExecFd, SessionKindWire};
    use crate::protocol::{HostMetrics, InstanceReport, InstanceSpec, decode};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// One instance whose exec the test drives: output in, what the agent did out.
    #[derive(Default)]
    struct Fake {
        output: Mutex<Option<mpsc::Sender<ExecChunk>>>,
        written: Arc<Mutex<Vec<u8>>>,
        killed: Arc<AtomicBool>,
        exit: Arc<Mutex<Option<i64>>>,
    }

    struct FakeHandle {
        written: Arc<Mutex<Vec<u8>>>,
        killed: Arc<AtomicBool>,
        exit: Arc<Mutex<Option<i64>>>,
    }

    #[async_trait]
    impl ExecHandle for FakeHandle {
        async fn write(&self, bytes: &[u8]) -> Result<(), DriverError> {
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(())
        }
        async fn close_stdin(&self) -> Result<(), DriverError> {
            Ok(())
        }
        async fn resize(&self, _: u16, _: u16) -> Result<(), DriverError> {
            Ok(())
        }
        async fn exit_code(&self) -> Result<Option<i64>, DriverError> {
            Ok(*self.exit.lock().unwrap())
        }
        async fn container_running(&self) -> Result<bool, DriverError> {
            Ok(true)
        }
        async fn kill(&self) -> Result<(), DriverError> {
            self.killed.store(true, Ordering::SeqCst);
            Ok(())
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
            Ok(vec![])
        }
        async fn has(&self, id: &str) -> bool {
            id == "web-0-abcd"
        }
        async fn deploy(&self, _: InstanceSpec, _: StepSender) -> Result<(), DriverError> {
            Ok(())
        }
        async fn restart(&self, _: &str, _: StepSender) -> Result<(), DriverError> {
            Ok(())
        }
        async fn remove(&self, _: &str) -> Result<(), DriverError> {
            Ok(())
        }
        async fn exec(
            &self,
            _: &str,
            cmd: Vec<String>,
            _: bool,
            _: (u16, u16),
        ) -> Result<ExecProcess, DriverError> {
            let (tx, rx) = mpsc::channel(8);
            *self.output.lock().unwrap() = Some(tx);
            let handle = FakeHandle {
                written: self.written.clone(),
                killed: self.killed.clone(),
                exit: self.exit.clone(),
            };
            Ok(ExecProcess { cmd, output: rx, handle: Box::new(handle) })
        }
    }

    struct Scene {
        bus: Arc<dyn Bus>,
        fake: Arc<Fake>,
        sessions: ExecSessions,
        stream: crate::bus::Subscription,
        reports: crate::bus::Subscription,
        subject: String,
    }

    async fn scene(timeout: Duration) -> Scene {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let fake = Arc::new(Fake::default());
        let subject = subjects::session_stream(SessionKind::Exec, "alice", "s1");
        let stream = bus.subscribe(&subject).await.unwrap();
        let reports = bus.subscribe(&subjects::session_report("h1")).await.unwrap();
        let sessions = ExecSessions { keepalive_timeout: timeout, ..ExecSessions::default() };
        let agent =
            Agent { bus: bus.clone(), driver: fake.clone(), source: "agent/h1".into(), host: "h1".into() };
        let req = ExecRequest {
            instance: "web-0-abcd".into(),
            cmd: vec!["cat".into()],
            tty: false,
            cols: 0,
            rows: 0,
            stream: subject.clone(),
        };
        let started = sessions.start(agent, "alice", req).await.unwrap();
        assert_eq!(
            (started.session.as_str(), started.cmd.as_slice()),
            ("s1", ["cat".to_string()].as_slice())
        );
        Scene { bus, fake, sessions, stream, reports, subject }
    }

    async fn frame(sub: &mut crate::bus::Subscription) -> ExecFrame {
        let msg =
            tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("in time").expect("open");
        decode::<ExecFrame>(&msg.payload).expect("a frame").body
    }

    /// The next frame that is not `alive`.
    async fn said(sub: &mut crate::bus::Subscription) -> ExecFrame {
        loop {
            let f = frame(sub).await;
            if f.what != ExecPayload::Alive {
                return f;
            }
        }
    }

    async fn report(sub: &mut crate::bus::Subscription) -> SessionReport {
        let msg =
            tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("in time").expect("open");
        decode::<SessionReport>(&msg.payload).expect("a report").body
    }

    fn input(stream: &str, seq: u64, bytes: &[u8]) -> Vec<u8> {
        let body = ExecInput { stream: stream.into(), seq, data: encode_chunk(bytes), eof: false };
        crate::protocol::encode(&Envelope::new("ctl/alice", body)).unwrap()
    }

    #[tokio::test]
    async fn output_goes_out_in_order_input_comes_in_and_the_exit_ends_it() {
        let mut s = scene(Duration::from_secs(60)).await;
        let start = report(&mut s.reports).await;
        assert_eq!(
            (start.kind, start.user.as_str(), start.end.is_none()),
            (SessionKindWire::Exec, "alice", true)
        );
        s.sessions.control("alice", ExecVerb::Input, &input(&s.subject, 0, b"hi\n")).unwrap();
        let out = s.fake.output.lock().unwrap().clone().unwrap();
        out.send((ExecFd::Stdout, b"hi\n".to_vec())).await.unwrap();
        let f = said(&mut s.stream).await;
        assert_eq!(f.what, ExecPayload::Out { fd: ExecFd::Stdout, data: encode_chunk(b"hi\n") });
        assert_eq!(s.fake.written.lock().unwrap().as_slice(), b"hi\n");
        // The process exits 3: its output closes, the code is read.
        *s.fake.exit.lock().unwrap() = Some(3);
        drop(out);
        *s.fake.output.lock().unwrap() = None;
        let end = said(&mut s.stream).await;
        assert!(end.seq > f.seq, "in order");
        assert_eq!(
            end.what,
            ExecPayload::End(ExecEnd {
                exit_code: Some(3),
                reason: ExecEndReason::Exited,
                detail: String::new()
            })
        );
        let end = report(&mut s.reports).await.end.expect("the end report");
        assert_eq!((end.exit_code, end.reason.as_str()), (Some(3), "exited"));
        assert!(!s.fake.killed.load(Ordering::SeqCst), "an exited process is not killed");
        let _ = s.bus;
    }

    /// The input count is the user's number: the largest a u64 holds must not overflow
    /// (`seq + 1` panicked the session's task in a debug build).
    #[tokio::test]
    async fn an_input_numbered_u64_max_is_written_and_the_session_goes_on() {
        let mut s = scene(Duration::from_secs(60)).await;
        let _start = report(&mut s.reports).await;
        s.sessions.control("alice", ExecVerb::Input, &input(&s.subject, u64::MAX, b"a")).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while s.fake.written.lock().unwrap().as_slice() != b"a" {
            assert!(tokio::time::Instant::now() < deadline, "the input numbered u64::MAX was not written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s.sessions.control("alice", ExecVerb::Input, &input(&s.subject, 0, b"b")).unwrap();
        while s.fake.written.lock().unwrap().as_slice() != b"ab" {
            assert!(tokio::time::Instant::now() < deadline, "the session did not go on");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_viewer_whose_keep_alives_stop_has_its_process_killed() {
        let mut s = scene(Duration::from_millis(300)).await;
        let f = said(&mut s.stream).await;
        let ExecPayload::End(end) = f.what else { panic!("{f:?}") };
        assert_eq!(end.reason, ExecEndReason::ViewerLost);
        assert!(end.detail.contains("no keep-alive"), "{end:?}");
        assert!(s.fake.killed.load(Ordering::SeqCst), "the process was killed");
        assert_eq!(s.sessions.active(), 0);
    }

    #[tokio::test]
    async fn a_session_is_reached_by_its_own_user_only_and_a_stop_kills_it() {
        let mut s = scene(Duration::from_secs(60)).await;
        let stop = crate::protocol::encode(&Envelope::new("ctl/bob", ExecRef { stream: s.subject.clone() }))
            .unwrap();
        let err = s.sessions.control("bob", ExecVerb::Stop, &stop).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound, "{err:?}");
        let err =
            s.sessions.control("alice", ExecVerb::Input, &input(&s.subject, 0, &[0; 40_000])).unwrap_err();
        assert!(err.reason.contains("at most 32768 bytes"), "{err:?}");
        let resize = crate::protocol::encode(&Envelope::new(
            "ctl/alice",
            ExecResize { stream: s.subject.clone(), cols: 0, rows: 10 },
        ))
        .unwrap();
        assert!(s.sessions.control("alice", ExecVerb::Resize, &resize).unwrap_err().reason.contains("0x10"));
        s.sessions.control("alice", ExecVerb::Stop, &stop).unwrap();
        let f = said(&mut s.stream).await;
        let ExecPayload::End(end) = f.what else { panic!("{f:?}") };
        assert_eq!(end.reason, ExecEndReason::Stopped);
        assert!(s.fake.killed.load(Ordering::SeqCst));
    }
}
