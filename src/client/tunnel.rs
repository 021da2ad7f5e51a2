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
    let (mut rd, mut wr) = tcp.into_split();
    let mut send = SendWindow::default();
    let mut recv = RecvWindow::default();
    let mut queue: std::collections::VecDeque<Bytes> = Default::default();
    let mut buf = vec![0u8; FWD_CHUNK_MAX];
    // How much of the queue's front chunk is written.
    let mut written = 0;
    // This direction ended (our TCP peer's EOF, sent on as a fin).
    let mut read_done = false;
    // The other direction ended: the peer's fin came; once the queue is written, our TCP
    // peer is half-closed.
    let mut peer_fin = false;
    let mut write_shut = false;
    let mut keepalive = tokio::time::interval(timing.keepalive_every);
    keepalive.tick().await;
    let silence = tokio::time::sleep(timing.keepalive_timeout);
    tokio::pin!(silence);
    tokio::pin!(outside);
    let end = |reason: String, how: EndKind, s: &SendWindow, r: &RecvWindow| Ended {
        reason,
        sent: s.total(),
        received: r.total(),
        how,
    };
    loop {
        if read_done && write_shut {
            return end("closed by both sides".into(), EndKind::Closed, &send, &recv);
        }
        let room = send.room();
        tokio::select! {
            got = rd.read(&mut buf[..room.max(1)]), if !read_done && room > 0 => {
                let (data, fin) = match got {
                    Ok(0) => (Bytes::new(), true),
                    Ok(n) => (Bytes::copy_from_slice(&buf[..n]), false),
                    Err(e) => {
                        let why = format!("the connection failed: {e}");
                        let _ = out.send(Frame::Close { reason: why.clone() }).await;
                        return end(why, EndKind::Failed, &send, &recv);
                    }
                };
                read_done = fin;
                let seq = send.sent(data.len());
                if let Err(e) = out.send(Frame::Data { seq, data: Chunk(data), fin }).await {
                    return end(format!("cannot reach the bus: {e}"), EndKind::Failed, &send, &recv);
                }
            }
            // `write` is cancel-safe (it wrote `n` bytes or nothing), so a frame that wins
            // the select loses no byte here, and the front chunk is popped only once all
            // of it is written.
            // (select! makes every branch's future, even a disabled one's: no indexing.)
            wrote = wr.write(queue.front().map_or(&[][..], |b| &b[written..])), if !queue.is_empty() => {
                let n = match wrote {
                    Ok(0) => Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    other => other,
                };
                match n {
                    Err(e) => {
                        let why = format!("the connection failed: {e}");
                        let _ = out.send(Frame::Close { reason: why.clone() }).await;
                        return end(why, EndKind::Failed, &send, &recv);
                    }
                    Ok(n) => written += n,
                }
                if queue.front().is_some_and(|b| written == b.len()) {
                    written = 0;
                    let n = queue.pop_front().map(|b| b.len()).unwrap_or(0);
                    if let Some(ack) = recv.written(n) {
                        let _ = out.send(ack).await;
                    }
                }
                if peer_fin && queue.is_empty() && !write_shut {
                    let _ = wr.shutdown().await;
                    write_shut = true;
                }
            }
            frame = incoming.next() => {
                silence.as_mut().reset(tokio::time::Instant::now() + timing.keepalive_timeout);
                match frame {
                    None => return end("the peer's frames stopped coming".into(), EndKind::ClosedByPeer, &send, &recv),
                    Some(Err(why)) => {
                        let why = format!("a bad frame from the peer: {why}");
                        let _ = out.send(Frame::Close { reason: why.clone() }).await;
                        return end(why, EndKind::Failed, &send, &recv);
                    }
                    Some(Ok(Frame::Data { seq, data, fin })) => {
                        let checked = match peer_fin {
                            true => Err(format!("data frame {seq} after the end of the data")),
                            false => recv.received(seq, data.0.len()),
                        };
                        if let Err(why) = checked {
                            let _ = out.send(Frame::Close { reason: why.clone() }).await;
                            return end(why, EndKind::Failed, &send, &recv);
                        }
                        peer_fin = fin;
                        queue.push_back(data.0);
                        // An empty fin frame is "written" at once: it still counts as a
                        // frame of the window.
                        if queue.back().is_some_and(Bytes::is_empty) {
                            queue.pop_back();
                            if let Some(ack) = recv.written(0) {
                                let _ = out.send(ack).await;
                            }
                        }
                        if peer_fin && queue.is_empty() && !write_shut {
                            let _ = wr.shutdown().await;
                            write_shut = true;
                        }
                    }
                    Some(Ok(Frame::Ack { bytes, frames })) => {
                        if let Err(why) = send.acked(bytes, frames) {
                            let _ = out.send(Frame::Close { reason: why.clone() }).await;
                            return end(why, EndKind::Failed, &send, &recv);
                        }
                    }
                    Some(Ok(Frame::Close { reason })) => return end(reason, EndKind::ClosedByPeer, &send, &recv),
                    Some(Ok(Frame::Keepalive)) => {}
                }
            }
            _ = keepalive.tick() => {
                let _ = out.send(Frame::Keepalive).await;
            }
            _ = &mut silence => {
                let why = format!("no keep-alive from the peer for {} s", timing.keepalive_timeout.as_secs());
                let _ = out.send(Frame::Close { reason: why.clone() }).await;
                return end(why, EndKind::PeerLost, &send, &recv);
            }
            why = &mut outside => {
                let _ = out.send(Frame::Close { reason: why.clone() }).await;
                return end(why, EndKind::Outside, &send, &recv);
            }
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
