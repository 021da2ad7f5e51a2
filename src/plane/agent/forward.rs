//! The agent's end of port-forwards: on a user's `open` it connects to the instance's
//! published address (`RuntimeDriver::forward_target`: the app's port only), then pumps
//! bytes between that connection and the user's stream (`client::tunnel`). A tunnel ends
//! on either side's close, on a missing keep-alive, or when the instance is removed. Each
//! tunnel belongs to the user whose `open` made it: its stream is under that user's name,
//! and only that user's frames (the user is in their subject, where the server checks it)
//! reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::driver::{DriverError, RuntimeDriver};
use crate::bus::{self, Bus, Message, Subscription};
use crate::client::tunnel::{self, EndKind, Ended, FrameOut, Peer, Timing};
use crate::protocol::clock::now_ms;
use crate::protocol::exec::{SessionEnd, SessionReport};
use crate::protocol::forward::{FWD_WINDOW_FRAMES, Frame, FwdOpen, FwdOpened, FwdPacket, FwdVerb};
use crate::protocol::subjects::{self, SessionKind};
use crate::protocol::{Envelope, ErrorCode, Reply, WireError, decode, encode, validate};

/// How long the agent tries to connect to an instance for an `open`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a tunnel looks whether its instance is still there.
const INSTANCE_POLL: Duration = Duration::from_secs(1);
/// The frames one tunnel may have waiting: a window of data frames, as many acks, and a
/// few keep-alives. Only a peer that ignores the window fills it.
const QUEUE: usize = 2 * FWD_WINDOW_FRAMES as usize + 16;

/// The tunnels an agent is serving, by stream.
pub struct Forwards {
    host: String,
    source: String,
    bus: Arc<dyn Bus>,
    driver: Arc<dyn RuntimeDriver>,
    tunnels: Mutex<HashMap<String, mpsc::Sender<Result<Frame, String>>>>,
    pub timing: Timing,
}

impl Forwards {
    pub fn new(host: String, source: String, bus: Arc<dyn Bus>, driver: Arc<dyn RuntimeDriver>) -> Forwards {
        Forwards { host, source, bus, driver, tunnels: Mutex::default(), timing: Timing::default() }
    }

    /// How many tunnels are open (tests, diagnostics).
    pub fn active(&self) -> usize {
        self.tunnels.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Serves every forward request to this host until the subscription ends. An `open`
    /// gets a task of its own (it connects to the instance); frames are handed to their
    /// tunnel without waiting, so one slow tunnel holds up no other.
    pub async fn serve(self: Arc<Self>, mut requests: Subscription) {
        while let Some(msg) = requests.next().await {
            let (user, verb) =
                match subjects::parse_session_request(SessionKind::Forward, &self.host, &msg.subject) {
                    Ok((user, verb)) => (user.to_string(), verb.to_string()),
                    Err(why) => {
                        self.answer(&msg, Reply::<FwdOpened>::Error(WireError::bad_request(why))).await;
                        continue;
                    }
                };
            match FwdVerb::parse(&verb) {
                Some(FwdVerb::Open) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        let result = me.open(&user, &msg.payload).await;
                        if let Err(e) = &result {
                            log::warn!("{}: port-forward for {user} refused: {}", me.host, e.reason);
                        }
                        me.answer(&msg, Reply::from(result)).await;
                    });
                }
                Some(verb) => self.frame(&user, verb, &msg.payload),
                None => {
                    let why = format!(
                        "{} is not a port-forward verb: use open, data, ack, close, keepalive",
                        msg.subject
                    );
                    self.answer(&msg, Reply::<FwdOpened>::Error(WireError::bad_request(why))).await;
                }
            }
        }
    }

    async fn answer<T: serde::Serialize>(&self, msg: &Message, reply: Reply<T>) {
        let Some(to) = &msg.reply else { return };
        let bytes = encode(&Envelope::new(&self.source, reply)).unwrap_or_default();
        if let Err(e) = self.bus.publish(to, Bytes::from(bytes)).await {
            log::warn!("{}: could not answer {}: {e}", self.host, msg.subject);
        }
    }

    /// A user's frame for one of its tunnels. Another user's stream, or one not open, is
    /// dropped: frames are publishes, with nobody to answer.
    fn frame(&self, user: &str, verb: FwdVerb, payload: &[u8]) {
        let packet = match decode::<FwdPacket>(payload) {
            Ok(env) => env.body,
            Err(e) => return log::info!("{}: a bad port-forward frame from {user}: {e}", self.host),
        };
        if packet.frame.verb() != verb
            || !subjects::is_session_stream_of(SessionKind::Forward, user, &packet.stream)
        {
            return log::info!(
                "{}: a {} frame from {user} on {} dropped",
                self.host,
                verb.as_str(),
                packet.stream
            );
        }
        let Ok(mut tunnels) = self.tunnels.lock() else { return };
        let Some(tx) = tunnels.get(&packet.stream) else { return };
        if tx.try_send(Ok(packet.frame)).is_err() {
            // Full: the peer ignores the window. Dropping the sender ends the tunnel.
            log::warn!("{}: {user}'s tunnel {} overran its queue: closed", self.host, packet.stream);
            tunnels.remove(&packet.stream);
        }
    }

    async fn open(self: &Arc<Self>, user: &str, payload: &[u8]) -> Result<FwdOpened, WireError> {
        let env = decode::<FwdOpen>(payload).map_err(|e| WireError::bad_request(e.to_string()))?;
        env.check_deadline(now_ms())?;
        let req = env.body;
        if !subjects::is_session_stream_of(SessionKind::Forward, user, &req.stream) {
            return Err(WireError::bad_request(format!(
                "tunnel stream subject {} must be {} plus a connection id (letters, digits, - and _, at \
                 most 64): a stream of {user}'s own",
                validate::quoted(&req.stream),
                subjects::session_stream(SessionKind::Forward, user, ""),
            )));
        }
        validate::instance_id(&req.instance).map_err(WireError::bad_request)?;
        let addr = self.driver.forward_target(&req.instance, req.port).await.map_err(|e| match e {
            DriverError::NotFound(_) => WireError::not_found(e.to_string()),
            DriverError::Failed(why) => WireError::bad_request(why),
        })?;
        let rx = self.claim(&req.stream)?;
        let tcp = self.connect(&req, addr).await?;
        let opened = FwdOpened { instance: req.instance.clone(), addr: addr.to_string() };
        // Audited as every session is: reported at its start and its end, and the
        // controller records each (`qd.v1.agent.<host>.session`).
        let report = SessionReport {
            kind: SessionKind::Forward.into(),
            user: user.to_string(),
            session: req.stream.rsplit('.').next().unwrap_or_default().to_string(),
            instance: req.instance.clone(),
            what: format!("port {}", req.port),
            started_at: now_ms(),
            end: None,
        };
        tokio::spawn(self.clone().pump(tcp, rx, req, report));
        Ok(opened)
    }

    /// Takes `stream` for a new tunnel: the receiver of the peer's frames, or a conflict
    /// when it is open already.
    fn claim(&self, stream: &str) -> Result<mpsc::Receiver<Result<Frame, String>>, WireError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut tunnels = self.tunnels.lock().map_err(|_| WireError::new(ErrorCode::Internal, "poisoned"))?;
        if tunnels.contains_key(stream) {
            return Err(WireError::new(ErrorCode::Conflict, format!("tunnel {stream} is open already")));
        }
        tunnels.insert(stream.to_string(), tx);
        Ok(rx)
    }

    /// Connects to the instance's port; a failure gives the claimed stream back.
    async fn connect(&self, req: &FwdOpen, addr: std::net::SocketAddr) -> Result<TcpStream, WireError> {
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            failed => {
                self.forget(&req.stream);
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {CONNECT_TIMEOUT:?}"),
                };
                let why = format!("cannot connect to {} at {addr}: {why}", req.instance);
                return Err(WireError::new(ErrorCode::Unavailable, why));
            }
        };
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// Pumps one tunnel to its end, reported at its start and its end.
    async fn pump(
        self: Arc<Self>,
        tcp: TcpStream,
        rx: mpsc::Receiver<Result<Frame, String>>,
        req: FwdOpen,
        report: SessionReport,
    ) {
        let out = FrameOut {
            bus: self.bus.clone(),
            source: self.source.clone(),
            stream: req.stream.clone(),
            to: Peer::User,
        };
        let incoming =
            Box::pin(futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            ));
        let outside = Box::pin(removed(self.driver.clone(), req.instance.clone()));
        self.report(&report).await;
        let ended = tunnel::pump(tcp, out, incoming, outside, self.timing).await;
        self.forget(&req.stream);
        log::info!(
            "{}: port-forward {} of {} to {}:{} ended: {} ({} bytes in, {} out)",
            self.host,
            req.stream,
            report.user,
            req.instance,
            req.port,
            ended.reason,
            ended.received,
            ended.sent
        );
        self.report(&SessionReport { end: Some(session_end(&ended)), ..report }).await;
    }

    async fn report(&self, report: &SessionReport) {
        let env = Envelope::new(&self.source, report);
        if let Err(err) = bus::publish(self.bus.as_ref(), &subjects::session_report(&self.host), &env).await {
            log::warn!("{}: session report for {} not sent: {err}", self.host, report.session);
        }
    }

    fn forget(&self, stream: &str) {
        if let Ok(mut tunnels) = self.tunnels.lock() {
            tunnels.remove(stream);
        }
    }
}

/// Ends when the driver no longer has the instance.
async fn removed(driver: Arc<dyn RuntimeDriver>, instance: String) -> String {
    loop {
        tokio::time::sleep(INSTANCE_POLL).await;
        if !driver.has(&instance).await {
            return format!("{instance} was removed");
        }
    }
}

/// How a tunnel's end goes into the audit trail: a word for programs (the session
/// vocabulary: `closed`, `closed_by_user`, `viewer_lost`, `instance_removed`, `failed`),
/// then the bytes each way and the reason in words.
fn session_end(ended: &Ended) -> SessionEnd {
    let reason = match ended.how {
        EndKind::Closed => "closed",
        EndKind::ClosedByPeer => "closed_by_user",
        EndKind::PeerLost => "viewer_lost",
        EndKind::Outside => "instance_removed",
        EndKind::Failed => "failed",
    };
    let detail = format!(
        "{} bytes to the instance, {} from it; {}",
        ended.received,
        ended.sent,
        validate::cut_owned(ended.reason.clone(), 200)
    );
    SessionEnd { ended_at: now_ms(), exit_code: None, reason: reason.into(), detail, recording: None }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::bus::LocalBus;
    use crate::client::forward::{self, ForwardNews, Target};
    use crate::plane::agent::driver::StepSender;
    use crate::protocol::{HostMetrics, InstanceReport, InstanceSpec, InstanceState};

    /// One instance, listening at `addr` for its app port 8080, until `removed`.
    struct Fake {
        addr: SocketAddr,
        removed: AtomicBool,
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
            id == "web-0-abcd" && !self.removed.load(Ordering::SeqCst)
        }
        async fn forward_target(&self, id: &str, port: u16) -> Result<SocketAddr, DriverError> {
            let report = InstanceReport {
                id: id.into(),
                app: "web".into(),
                version: "1".into(),
                index: 0,
                state: InstanceState::Running,
                ip: self.addr.ip().to_string(),
                port: self.addr.port(),
                container_id: "c".into(),
                started_at: None,
                cpu_pct: 0.0,
                mem_used_mb: 0,
                mem_limit_mb: 0,
                last_exit: None,
            };
            super::super::driver::forward_target(&report, 8080, port)
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
    }

    /// An agent serving forwards for host h1 on `bus`, to a fake instance listening on
    /// the returned listener; its session reports come on the returned subscription.
    async fn agent(bus: Arc<dyn Bus>, timing: Timing) -> (Arc<Fake>, TcpListener, Subscription) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(Fake { addr: listener.local_addr().unwrap(), removed: AtomicBool::new(false) });
        let reports = bus.subscribe(&subjects::session_report("h1")).await.unwrap();
        let mut forwards = Forwards::new("h1".into(), "agent/h1".into(), bus.clone(), fake.clone());
        forwards.timing = timing;
        let requests =
            bus.subscribe(&subjects::session_requests_to(SessionKind::Forward, "h1")).await.unwrap();
        tokio::spawn(Arc::new(forwards).serve(requests));
        (fake, listener, reports)
    }

    /// The next session report's end.
    async fn next_end(reports: &mut Subscription) -> SessionEnd {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), reports.next()).await.unwrap().unwrap();
            if let Some(end) = decode::<SessionReport>(&msg.payload).unwrap().body.end {
                return end;
            }
        }
    }

    /// The instance goes: its tunnels close, the client's connection ends, and the end
    /// is reported as `instance_removed`.
    #[tokio::test]
    async fn a_tunnel_ends_when_its_instance_is_removed() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let (fake, listener, mut reports) = agent(bus.clone(), Timing::default()).await;
        let (news_tx, mut news) = mpsc::channel(16);
        let target = Target { host: "h1".into(), instance: "web-0-abcd".into(), port: 8080 };
        let fwd = forward::start(bus.clone(), "ctl/test".into(), target, 0, news_tx).await.unwrap();
        let mut client = TcpStream::connect(fwd.local).await.unwrap();
        let (mut served, _) = listener.accept().await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        served.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        assert!(matches!(news.recv().await, Some(ForwardNews::Opened { .. })));
        fake.removed.store(true, Ordering::SeqCst);
        let end = next_end(&mut reports).await;
        assert_eq!(end.reason, "instance_removed", "{end:?}");
        assert!(
            end.detail.starts_with("5 bytes to the instance, 0 from it; web-0-abcd was removed"),
            "{end:?}"
        );
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the client's connection ended");
        match tokio::time::timeout(Duration::from_secs(10), news.recv()).await.unwrap() {
            Some(ForwardNews::Closed { ended, .. }) => assert_eq!(ended.reason, "web-0-abcd was removed"),
            other => panic!("{other:?}"),
        }
    }

    /// A client that opens a tunnel and then says nothing, not even a keep-alive, loses
    /// it: the agent closes its connection to the instance and reports `viewer_lost`.
    #[tokio::test]
    async fn a_silent_client_loses_its_tunnel() {
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let timing = Timing {
            keepalive_every: Duration::from_secs(60),
            keepalive_timeout: Duration::from_millis(300),
        };
        let (_fake, listener, mut reports) = agent(bus.clone(), timing).await;
        let stream = subjects::session_stream(SessionKind::Forward, "alice", "c1");
        let open = FwdOpen { instance: "web-0-abcd".into(), port: 8080, stream };
        let subject = subjects::session_request(SessionKind::Forward, "h1", "alice", "open");
        let env = Envelope::new("test", open.clone());
        let opened: FwdOpened =
            bus::request(bus.as_ref(), &subject, &env, Duration::from_secs(10)).await.expect("opened");
        assert_eq!(opened.instance, "web-0-abcd");
        let (mut served, _) = listener.accept().await.unwrap();
        let end = next_end(&mut reports).await;
        assert_eq!(end.reason, "viewer_lost", "{end:?}");
        let mut rest = Vec::new();
        served.read_to_end(&mut rest).await.unwrap();
        // Another port than the app's, and an unknown instance, are refused by name.
        let wrong = Envelope::new("test", FwdOpen { port: 9999, ..open.clone() });
        let err = bus::request::<_, FwdOpened>(bus.as_ref(), &subject, &wrong, Duration::from_secs(10)).await;
        assert!(err.unwrap_err().to_string().contains("web-0-abcd publishes only port 8080, not 9999"));
    }
}
