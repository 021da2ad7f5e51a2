//! The pump of one port-forward connection: a TCP stream on one side, the bus on the other.
//! The same on both ends (the user's forwarder and the agent), which differ only in where
//! their frames go (`FrameOut`) and where the peer's come from. Each direction keeps to
//! the credit window (`protocol::forward`): TCP is read only while the peer has room, and
//! the peer's data is written to TCP before it is acked, so a slow reader on either side
//! stops the other sender and nothing here holds more than a window.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bus::{self, Bus};
use crate::protocol::Envelope;
use crate::protocol::forward::{
    Chunk, FWD_CHUNK_MAX, FWD_KEEPALIVE_EVERY_MS, FWD_KEEPALIVE_TIMEOUT_MS, Frame, FwdPacket, RecvWindow,
    SendWindow,
};
use crate::protocol::subjects::{self, SessionKind};

/// Where one end's frames go.
#[derive(Clone)]
pub struct FrameOut {
    pub bus: Arc<dyn Bus>,
    pub source: String,
    /// The tunnel's stream, `qd.v1.fwd.<user>.<connection id>`, which every frame names.
    pub stream: String,
    pub to: Peer,
}

/// Which end this is, by where its frames go.
#[derive(Clone)]
pub enum Peer {
    /// The user's end: frames go to the agent, `qd.v1.agent.<host>.fwd.<user>.<verb>`.
    Agent { host: String, user: String },
    /// The agent's end: frames go on the stream itself.
    User,
}

impl FrameOut {
    pub async fn send(&self, frame: Frame) -> Result<(), bus::RequestError> {
        let subject = match &self.to {
            Peer::Agent { host, user } => {
                subjects::session_request(SessionKind::Forward, host, user, frame.verb().as_str())
            }
            Peer::User => self.stream.clone(),
        };
        let env = Envelope::new(&self.source, FwdPacket { stream: self.stream.clone(), frame });
        bus::publish(self.bus.as_ref(), &subject, &env).await
    }
}

/// The peer's frames, in the order they came; `Err` is one that could not be read.
pub type Incoming = Pin<Box<dyn Stream<Item = Result<Frame, String>> + Send>>;

/// How a tunnel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub reason: String,
    /// Bytes read from this end's TCP peer and sent through the tunnel.
    pub sent: u64,
    /// Bytes that came through the tunnel and were written to this end's TCP peer.
    pub received: u64,
    pub how: EndKind,
}

/// How a tunnel ended, in a word a program can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    /// Both TCP peers closed their side, and all was written.
    Closed,
    /// The other end sent a close (or its frames stopped).
    ClosedByPeer,
    /// The other end went silent past the keep-alive timeout.
    PeerLost,
    /// What ended it from outside (the forward stopped, the instance removed).
    Outside,
    /// This end's TCP connection or the bus failed, or the peer broke the protocol.
    Failed,
}

/// What ends the tunnel from outside, with its reason (the agent: its instance removed).
pub type Outside = Pin<Box<dyn Future<Output = String> + Send>>;

/// The time rules of one tunnel, shorter in tests.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub keepalive_every: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            keepalive_every: Duration::from_millis(FWD_KEEPALIVE_EVERY_MS),
            keepalive_timeout: Duration::from_millis(FWD_KEEPALIVE_TIMEOUT_MS),
        }
    }
}

/// Moves bytes both ways until both directions ended (each side's TCP peer half-closed
/// and all was written), either end closes, the peer goes silent, or `outside` says so.
pub async fn pump(
    tcp: TcpStream,
    out: FrameOut,
    mut incoming: Incoming,
    outside: Outside,
    timing: Timing,
) -> Ended {
    let (mut rd, wr) = tcp.into_split();
    let mut p = Pump {
        out,
        wr,
        send: SendWindow::default(),
        recv: RecvWindow::default(),
        queue: Default::default(),
        written: 0,
        read_done: false,
        peer_fin: false,
        write_shut: false,
    };
    let mut buf = vec![0u8; FWD_CHUNK_MAX];
    let mut keepalive = tokio::time::interval(timing.keepalive_every);
    keepalive.tick().await;
    let silence = tokio::time::sleep(timing.keepalive_timeout);
    tokio::pin!(silence);
    tokio::pin!(outside);
    loop {
        if p.read_done && p.write_shut {
            return p.end("closed by both sides".into(), EndKind::Closed);
        }
        let room = p.send.room();
        let ended = tokio::select! {
            got = rd.read(&mut buf[..room.max(1)]), if !p.read_done && room > 0 => p.on_read(got, &buf).await,
            // `write` is cancel-safe (it wrote `n` bytes or nothing), so a frame that wins
            // the select loses no byte here, and the front chunk is popped only once all
            // of it is written.
            // (select! makes every branch's future, even a disabled one's: no indexing.)
            wrote = p.wr.write(p.queue.front().map_or(&[][..], |b| &b[p.written..])), if !p.queue.is_empty() => {
                p.on_written(wrote).await
            }
            frame = incoming.next() => {
                silence.as_mut().reset(tokio::time::Instant::now() + timing.keepalive_timeout);
                p.on_frame(frame).await
            }
            _ = keepalive.tick() => {
                let _ = p.out.send(Frame::Keepalive).await;
                None
            }
            _ = &mut silence => {
                let why = format!("no keep-alive from the peer for {} s", timing.keepalive_timeout.as_secs());
                Some(p.fail(why, EndKind::PeerLost).await)
            }
            why = &mut outside => Some(p.fail(why, EndKind::Outside).await),
        };
        if let Some(ended) = ended {
            return ended;
        }
    }
}

/// The state `pump`'s arms share; each `on_*` step returns how the tunnel ended, if it did.
struct Pump {
    out: FrameOut,
    wr: tokio::net::tcp::OwnedWriteHalf,
    send: SendWindow,
    recv: RecvWindow,
    queue: std::collections::VecDeque<Bytes>,
    /// How much of the queue's front chunk is written.
    written: usize,
    /// This direction ended (our TCP peer's EOF, sent on as a fin).
    read_done: bool,
    /// The other direction ended: the peer's fin came; once the queue is written, our TCP
    /// peer is half-closed.
    peer_fin: bool,
    write_shut: bool,
}

impl Pump {
    fn end(&self, reason: String, how: EndKind) -> Ended {
        Ended { reason, sent: self.send.total(), received: self.recv.total(), how }
    }

    /// Tells the peer why this end stops, then ends.
    async fn fail(&self, why: String, how: EndKind) -> Ended {
        let _ = self.out.send(Frame::Close { reason: why.clone() }).await;
        self.end(why, how)
    }

    /// Our TCP peer read from, `got` bytes of `buf`: sent on as a data frame.
    async fn on_read(&mut self, got: std::io::Result<usize>, buf: &[u8]) -> Option<Ended> {
        let (data, fin) = match got {
            Ok(0) => (Bytes::new(), true),
            Ok(n) => (Bytes::copy_from_slice(&buf[..n]), false),
            Err(e) => return Some(self.fail(format!("the connection failed: {e}"), EndKind::Failed).await),
        };
        self.read_done = fin;
        let seq = self.send.sent(data.len());
        if let Err(e) = self.out.send(Frame::Data { seq, data: Chunk(data), fin }).await {
            return Some(self.end(format!("cannot reach the bus: {e}"), EndKind::Failed));
        }
        None
    }

    /// Part of the queue's front chunk written to our TCP peer: a whole chunk is acked.
    async fn on_written(&mut self, wrote: std::io::Result<usize>) -> Option<Ended> {
        let n = match wrote {
            Ok(0) => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
            other => other,
        };
        match n {
            Err(e) => return Some(self.fail(format!("the connection failed: {e}"), EndKind::Failed).await),
            Ok(n) => self.written += n,
        }
        if self.queue.front().is_some_and(|b| self.written == b.len()) {
            self.written = 0;
            let n = self.queue.pop_front().map(|b| b.len()).unwrap_or(0);
            if let Some(ack) = self.recv.written(n) {
                let _ = self.out.send(ack).await;
            }
        }
        self.shut_if_done().await;
        None
    }

    /// A frame from the peer (or the end of its frames).
    async fn on_frame(&mut self, frame: Option<Result<Frame, String>>) -> Option<Ended> {
        match frame {
            None => Some(self.end("the peer's frames stopped coming".into(), EndKind::ClosedByPeer)),
            Some(Err(why)) => {
                Some(self.fail(format!("a bad frame from the peer: {why}"), EndKind::Failed).await)
            }
            Some(Ok(Frame::Data { seq, data, fin })) => self.on_data(seq, data, fin).await,
            Some(Ok(Frame::Ack { bytes, frames })) => match self.send.acked(bytes, frames) {
                Err(why) => Some(self.fail(why, EndKind::Failed).await),
                Ok(()) => None,
            },
            Some(Ok(Frame::Close { reason })) => Some(self.end(reason, EndKind::ClosedByPeer)),
            Some(Ok(Frame::Keepalive)) => None,
        }
    }

    /// The peer's data, queued to be written to our TCP peer once its window checks.
    async fn on_data(&mut self, seq: u64, data: Chunk, fin: bool) -> Option<Ended> {
        let checked = match self.peer_fin {
            true => Err(format!("data frame {seq} after the end of the data")),
            false => self.recv.received(seq, data.0.len()),
        };
        if let Err(why) = checked {
            return Some(self.fail(why, EndKind::Failed).await);
        }
        self.peer_fin = fin;
        self.queue.push_back(data.0);
        // An empty fin frame is "written" at once: it still counts as a
        // frame of the window.
        if self.queue.back().is_some_and(Bytes::is_empty) {
            self.queue.pop_back();
            if let Some(ack) = self.recv.written(0) {
                let _ = self.out.send(ack).await;
            }
        }
        self.shut_if_done().await;
        None
    }

    /// Half-closes our TCP peer once the peer's fin came and all before it is written.
    async fn shut_if_done(&mut self) {
        if self.peer_fin && self.queue.is_empty() && !self.write_shut {
            let _ = self.wr.shutdown().await;
            self.write_shut = true;
        }
    }
}

/// The frames of `stream` out of a bus subscription's messages: a message of another
/// stream, or one that does not decode, is a bad frame.
pub fn frames_of(sub: crate::bus::Subscription, stream: String) -> Incoming {
    Box::pin(sub.map(move |msg| {
        let packet = crate::protocol::decode::<FwdPacket>(&msg.payload).map_err(|e| e.to_string())?.body;
        match packet.stream == stream {
            true => Ok(packet.frame),
            false => Err(format!("a frame of {} on {stream}", packet.stream)),
        }
    }))
}
