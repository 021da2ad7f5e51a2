//! The user's end of a port-forward: a TCP listener on 127.0.0.1, and for each connection
//! it accepts a tunnel of its own to the instance's agent (`open`, then `client::tunnel`'s
//! pump). Shared by `ctl port-forward` and the cockpit's backend; UI-free: what happens
//! to each connection is told as `ForwardNews`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::tunnel::{self, Ended, FrameOut, Peer, Timing};
use crate::bus::{self, Bus};
use crate::protocol::envelope::new_id;
use crate::protocol::forward::{FwdOpen, FwdOpened, FwdVerb, check_port};
use crate::protocol::subjects::{self, SessionKind};
use crate::protocol::{Envelope, Fleet, WireError, validate};

/// The most connections one forward carries at once; a connection beyond it is closed at
/// once, and said so.
pub const MAX_CONNECTIONS: usize = 64;

/// How long an agent has to answer an `open` (it connects to the instance first).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a forward goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub instance: String,
    /// The instance's port (its app's).
    pub port: u16,
}

impl Target {
    /// Where a forward to `instance` goes, from the fleet: its host, and `port` when it is
    /// its app's (`None`: the app's).
    pub fn of(fleet: &Fleet, instance: &str, port: Option<u16>) -> Result<Target, String> {
        let i = fleet.instances.get(instance).ok_or_else(|| {
            format!("no instance {} in the fleet (see `ctl instances`)", validate::quoted(instance))
        })?;
        let app_port =
            fleet.apps.get(&i.app).map(|a| a.port).ok_or_else(|| format!("{instance}: no app {}", i.app))?;
        let port = port.unwrap_or(app_port);
        check_port(instance, app_port, port)?;
        Ok(Target { host: i.host.clone(), instance: instance.to_string(), port })
    }
}

/// What happened to one of a forward's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardNews {
    /// The agent connected to the instance for it.
    Opened {
        conn: String,
        from: SocketAddr,
    },
    /// It could not be tunnelled: the agent refused, did not answer, or the server refused
    /// this user.
    Refused {
        conn: String,
        why: String,
    },
    Closed {
        conn: String,
        ended: Ended,
    },
}

/// A running forward. Dropping it (or `stop`) closes the listener and every tunnel, each
/// with a close to the agent.
pub struct Forwarder {
    pub local: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Forwarder {
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        self.accept.abort();
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a forward did not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    /// The server refused this user the tunnels' streams (no `port-forward` grant), or
    /// the bus failed.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error("{0}")]
    Listen(String),
}

/// Checks that this user may forward at all, listens on `127.0.0.1:local` (0: a free
/// port), and serves until stopped. A user without the grant is refused here, by the
/// server, before anything listens.
pub async fn start(
    bus: Arc<dyn Bus>,
    source: String,
    target: Target,
    local: u16,
    news: mpsc::Sender<ForwardNews>,
) -> Result<Forwarder, StartError> {
    let user = bus.user();
    // The server refuses a subscription to the streams of a user without the grant: ask
    // once now, so the refusal is the forward's, not each connection's.
    let probe = subjects::session_stream(SessionKind::Forward, &user, &format!("p{}", new_id()));
    drop(bus.subscribe(&probe).await?);
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, local))
        .await
        .map_err(|e| StartError::Listen(format!("cannot listen on 127.0.0.1:{local}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError::Listen(format!("cannot listen on 127.0.0.1:{local}: {e}")))?;
    let (stop, stopped) = watch::channel(false);
    let accept = tokio::spawn(accept(listener, Conn { bus, source, user, target, news, stopped }));
    Ok(Forwarder { local, stop, accept })
}

/// What every connection of one forward shares.
#[derive(Clone)]
struct Conn {
    bus: Arc<dyn Bus>,
    source: String,
    user: String,
    target: Target,
    news: mpsc::Sender<ForwardNews>,
    stopped: watch::Receiver<bool>,
}

async fn accept(listener: TcpListener, conn: Conn) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, from) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("port-forward: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let id = format!("c{}", new_id());
        let Ok(permit) = open.clone().try_acquire_owned() else {
            let why = format!("{MAX_CONNECTIONS} connections are open already");
            let _ = conn.news.send(ForwardNews::Refused { conn: id, why }).await;
            continue;
        };
        let conn = conn.clone();
        tokio::spawn(async move {
            let _permit = permit;
            conn.serve(id, tcp, from).await;
        });
    }
}

impl Conn {
    async fn serve(self, id: String, tcp: TcpStream, from: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let stream = subjects::session_stream(SessionKind::Forward, &self.user, &id);
        // Subscribed before the open, so not a byte the agent sends is missed.
        let sub = match self.bus.subscribe(&stream).await {
            Ok(s) => s,
            Err(e) => return self.refused(id, e.to_string()).await,
        };
        let t = &self.target;
        let open = FwdOpen { instance: t.instance.clone(), port: t.port, stream: stream.clone() };
        let subject =
            subjects::session_request(SessionKind::Forward, &t.host, &self.user, FwdVerb::Open.as_str());
        let env = Envelope::new(&self.source, open);
        let asked: Result<FwdOpened, _> = bus::request(self.bus.as_ref(), &subject, &env, OPEN_TIMEOUT).await;
        if let Err(e) = asked {
            return self.refused(id, opening_error(e, &t.host)).await;
        }
        let _ = self.news.send(ForwardNews::Opened { conn: id.clone(), from }).await;
        let out = FrameOut {
            bus: self.bus.clone(),
            source: self.source.clone(),
            stream: stream.clone(),
            to: Peer::Agent { host: t.host.clone(), user: self.user.clone() },
        };
        let mut stopped = self.stopped.clone();
        let outside = Box::pin(async move {
            let _ = stopped.wait_for(|s| *s).await;
            "the forward was stopped".to_string()
        });
        let ended = tunnel::pump(tcp, out, tunnel::frames_of(sub, stream), outside, Timing::default()).await;
        let _ = self.news.send(ForwardNews::Closed { conn: id, ended }).await;
    }

    async fn refused(&self, conn: String, why: String) {
        let _ = self.news.send(ForwardNews::Refused { conn, why }).await;
    }
}

/// An `open` that failed, in words: no agent answering names the host.
fn opening_error(e: bus::RequestError, host: &str) -> String {
    match e {
        bus::RequestError::Bus(bus::BusError::NoResponders { .. }) => {
            format!("the agent of {host} is not answering (no responders)")
        }
        bus::RequestError::Refused(WireError { code, reason }) => {
            format!("refused: {reason} ({})", code.as_str())
        }
        other => other.to_string(),
    }
}
