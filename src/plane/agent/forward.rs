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
        let (tx, rx) = mpsc::channel(QUEUE);
        {
            let mut tunnels =
                self.tunnels.lock().map_err(|_| WireError::new(ErrorCode::Internal, "poisoned"))?;
            if tunnels.contains_key(&req.stream) {
                return Err(WireError::new(
                    ErrorCode::Conflict,
                    format!("tunnel {} is open already", req.stream),
                ));
            }
            tunnels.insert(req.stream.clone(), tx);
        }
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
        let me = self.clone();
        tokio::spawn(async move {
            me.report(&report).await;
            let ended = tunnel::pump(tcp, out, incoming, outside, me.timing).await;
            me.forget(&req.stream);
            log::info!(
                "{}: port-forward {} of {} to {}:{} ended: {} ({} bytes in, {} out)",
                me.host,
                req.stream,
                report.user,
                req.instance,
                req.port,
                ended.reason,
                ended.received,
                ended.sent
            );
            me.report(&SessionReport { end: Some(session_end(&ended)), ..report }).await;
        });
        Ok(opened)
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
