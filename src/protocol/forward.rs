//! Port-forward on the wire: one TCP connection tunnelled between a user and the agent of
//! the instance's host (docs/protocol.md §4, "Port-forward"). The user opens it with a
//! request; then each side sends `Frame`s: data in numbered chunks, cumulative acks, a
//! keep-alive, and a close. The credit window (`SendWindow`, `RecvWindow`) bounds what is
//! in flight each way, so a slow reader on either side stops the sender and nothing
//! buffers without bound. Pure: the pump that moves bytes is `client::tunnel`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most bytes one data frame carries.
pub const FWD_CHUNK_MAX: usize = 32 * 1024;
/// The most bytes a side may have sent and not had acked.
pub const FWD_WINDOW_BYTES: u64 = 256 * 1024;
/// The most data frames a side may have sent and not had acked: the byte window alone
/// would let a sender of one-byte chunks queue 256 Ki frames at its peer.
pub const FWD_WINDOW_FRAMES: u64 = 512;
/// A receiver acks at least this often (bytes written), and whenever it has written all
/// it received, so a bulk transfer costs one ack per 64 KiB and a small exchange is acked
/// at once.
pub const FWD_ACK_EVERY: u64 = 64 * 1024;
/// Each side sends a keep-alive this often.
pub const FWD_KEEPALIVE_EVERY_MS: u64 = 5_000;
/// Each side ends a tunnel whose peer has sent nothing for this long.
pub const FWD_KEEPALIVE_TIMEOUT_MS: u64 = 15_000;

/// The one rule of which port of an instance may be forwarded: its app's own. The agent
/// holds to it (authority is its own), and clients check it first for a clear error
/// before anything listens.
pub fn check_port(instance: &str, app_port: u16, port: u16) -> Result<(), String> {
    match port == app_port {
        true => Ok(()),
        false => Err(format!("{instance} publishes only port {app_port}, not {port}")),
    }
}

/// What a user sends an agent about a tunnel: `qd.v1.agent.<host>.fwd.<user>.<verb>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdVerb {
    /// A request: connect to an instance's port, and stream to the user's `stream`.
    Open,
    Data,
    Ack,
    Close,
    Keepalive,
}

impl FwdVerb {
    pub const ALL: [FwdVerb; 5] =
        [FwdVerb::Open, FwdVerb::Data, FwdVerb::Ack, FwdVerb::Close, FwdVerb::Keepalive];

    pub fn as_str(self) -> &'static str {
        match self {
            FwdVerb::Open => "open",
            FwdVerb::Data => "data",
            FwdVerb::Ack => "ack",
            FwdVerb::Close => "close",
            FwdVerb::Keepalive => "keepalive",
        }
    }

    pub fn parse(s: &str) -> Option<FwdVerb> {
        FwdVerb::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// `open`: connect to `port` of `instance` (the app's port), and send what it says on
/// `stream`, `qd.v1.fwd.<user>.<connection id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwdOpen {
    pub instance: String,
    pub port: u16,
    pub stream: String,
}

/// The agent's yes to an `open`: it is connected to `addr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwdOpened {
    pub instance: String,
    pub addr: String,
}

/// One frame of a tunnel, either way. Its stream names the tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwdPacket {
    pub stream: String,
    pub frame: Frame,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// The next `data.len()` bytes of this direction; `seq` counts data frames from 0.
    /// `fin`: this direction ends after them (the sender's TCP peer half-closed).
    Data {
        seq: u64,
        data: Chunk,
        #[serde(default)]
        fin: bool,
    },
    /// The receiver has written `bytes` bytes and `frames` data frames of this direction
    /// to its TCP peer, in all: the sender may have a window more in flight.
    Ack {
        bytes: u64,
        frames: u64,
    },
    /// The tunnel ends, and why: the sender has closed its side.
    Close {
        reason: String,
    },
    Keepalive,
}

impl Frame {
    /// The verb a user's frame goes out with.
    pub fn verb(&self) -> FwdVerb {
        match self {
            Frame::Data { .. } => FwdVerb::Data,
            Frame::Ack { .. } => FwdVerb::Ack,
            Frame::Close { .. } => FwdVerb::Close,
            Frame::Keepalive => FwdVerb::Keepalive,
        }
    }
}

/// A chunk's bytes, base64 on the wire, at most `FWD_CHUNK_MAX` of them: a longer one does
/// not decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk(pub Bytes);

impl Serialize for Chunk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Chunk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Chunk, D::Error> {
        use serde::de::Error;
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let too_long = || D::Error::custom(format!("a data chunk holds at most {FWD_CHUNK_MAX} bytes"));
        // Most oversized chunks are refused before any decoding.
        if text.len() > FWD_CHUNK_MAX.div_ceil(3) * 4 {
            return Err(too_long());
        }
        let bytes =
            STANDARD.decode(text.as_bytes()).map_err(|e| D::Error::custom(format!("data chunk: {e}")))?;
        match bytes.len() > FWD_CHUNK_MAX {
            true => Err(too_long()),
            false => Ok(Chunk(Bytes::from(bytes))),
        }
    }
}

/// The sender's side of one direction: how much more it may send now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendWindow {
    sent_bytes: u64,
    sent_frames: u64,
    acked_bytes: u64,
    acked_frames: u64,
}

impl SendWindow {
    /// How many bytes the next data frame may carry now (0: wait for an ack).
    pub fn room(&self) -> usize {
        if self.sent_frames - self.acked_frames >= FWD_WINDOW_FRAMES {
            return 0;
        }
        let free = FWD_WINDOW_BYTES - (self.sent_bytes - self.acked_bytes);
        (free as usize).min(FWD_CHUNK_MAX)
    }

    /// A data frame of `len` bytes went out: returns its `seq`.
    pub fn sent(&mut self, len: usize) -> u64 {
        let seq = self.sent_frames;
        self.sent_frames += 1;
        self.sent_bytes += len as u64;
        seq
    }

    /// The peer's ack. An older ack than one already seen (reordered) changes nothing; one
    /// of more than was sent is a broken peer.
    pub fn acked(&mut self, bytes: u64, frames: u64) -> Result<(), String> {
        if bytes > self.sent_bytes || frames > self.sent_frames {
            return Err(format!(
                "the peer acked {bytes} bytes in {frames} frames, but only {} in {} were sent",
                self.sent_bytes, self.sent_frames
            ));
        }
        self.acked_bytes = self.acked_bytes.max(bytes);
        self.acked_frames = self.acked_frames.max(frames);
        Ok(())
    }

    /// Bytes sent in all.
    pub fn total(&self) -> u64 {
        self.sent_bytes
    }
}

/// The receiver's side of one direction: checks each data frame against the window and
/// says when to ack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecvWindow {
    received_bytes: u64,
    received_frames: u64,
    written_bytes: u64,
    written_frames: u64,
    acked_bytes: u64,
}

impl RecvWindow {
    /// A data frame arrived. Out of order (a frame lost on the bus) or beyond the window
    /// (a peer that ignores it) ends the tunnel: the bytes cannot be put right.
    pub fn received(&mut self, seq: u64, len: usize) -> Result<(), String> {
        if seq != self.received_frames {
            return Err(format!(
                "data frame {seq} arrived where {} was due: data was lost",
                self.received_frames
            ));
        }
        let in_flight = self.received_bytes + len as u64 - self.written_bytes;
        if len > FWD_CHUNK_MAX
            || in_flight > FWD_WINDOW_BYTES
            || self.received_frames + 1 - self.written_frames > FWD_WINDOW_FRAMES
        {
            return Err(format!(
                "the peer overran its window ({in_flight} bytes in flight, at most {FWD_WINDOW_BYTES})"
            ));
        }
        self.received_frames += 1;
        self.received_bytes += len as u64;
        Ok(())
    }

    /// One data frame of `len` bytes is written to the TCP peer: the ack to send, if one
    /// is due (`FWD_ACK_EVERY` bytes since the last, or nothing left to write).
    pub fn written(&mut self, len: usize) -> Option<Frame> {
        self.written_frames += 1;
        self.written_bytes += len as u64;
        let drained = self.written_frames == self.received_frames;
        (drained || self.written_bytes - self.acked_bytes >= FWD_ACK_EVERY).then(|| {
            self.acked_bytes = self.written_bytes;
            Frame::Ack { bytes: self.written_bytes, frames: self.written_frames }
        })
    }

    /// Bytes received in all.
    pub fn total(&self) -> u64 {
        self.received_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Envelope, decode, encode};

    /// A sender that is never acked stops at the window; acks reopen it by what they ack.
    #[test]
    fn a_sender_stops_at_the_window_until_acked() {
        let mut w = SendWindow::default();
        let mut sent = 0u64;
        while w.room() > 0 {
            let n = w.room();
            w.sent(n);
            sent += n as u64;
        }
        assert_eq!(sent, FWD_WINDOW_BYTES, "exactly a window in flight");
        w.acked(64 * 1024, 2).unwrap();
        assert_eq!(w.room(), FWD_CHUNK_MAX, "room again after an ack");
        // A late, older ack changes nothing.
        w.acked(1, 1).unwrap();
        assert_eq!(w.room(), FWD_CHUNK_MAX);
        assert!(w.acked(FWD_WINDOW_BYTES + 1, 8).unwrap_err().contains("only"));
    }

    /// One-byte chunks fill the frame window long before the byte window.
    #[test]
    fn tiny_chunks_are_bounded_by_the_frame_window() {
        let mut w = SendWindow::default();
        for _ in 0..FWD_WINDOW_FRAMES {
            assert!(w.room() > 0);
            w.sent(1);
        }
        assert_eq!(w.room(), 0);
        w.acked(1, 1).unwrap();
        assert!(w.room() > 0);
    }

    /// The receiver refuses a gap and a peer beyond the window, and acks at the interval
    /// or when it has written all it received.
    #[test]
    fn a_receiver_checks_order_and_window_and_acks_when_due() {
        let mut r = RecvWindow::default();
        assert!(r.received(1, 10).unwrap_err().contains("lost"), "a gap");
        r.received(0, 10).unwrap();
        assert_eq!(r.written(10), Some(Frame::Ack { bytes: 10, frames: 1 }), "drained: ack at once");
        for seq in 1..=8 {
            r.received(seq, FWD_CHUNK_MAX).unwrap();
        }
        assert!(r.received(9, 1).unwrap_err().contains("overran"), "a window and a byte");
        assert_eq!(r.written(FWD_CHUNK_MAX), None, "32 KiB since the last ack, more to write");
        assert!(matches!(r.written(FWD_CHUNK_MAX), Some(Frame::Ack { frames: 3, .. })), "64 KiB");
        r.received(9, 1).unwrap();
        assert_eq!(r.total(), 10 + 8 * FWD_CHUNK_MAX as u64 + 1);
    }

    /// The sender's and the receiver's rules agree: a sender that keeps to its room is
    /// never refused, whatever the chunk sizes and however late the writes.
    #[test]
    fn a_sender_within_its_room_is_never_refused() {
        let (mut s, mut r) = (SendWindow::default(), RecvWindow::default());
        let mut queue = std::collections::VecDeque::new();
        let sizes = [1usize, 7, FWD_CHUNK_MAX, 300, 4096];
        for i in 0..20_000usize {
            let want = sizes[i % sizes.len()];
            let n = s.room().min(want);
            if n > 0 {
                let seq = s.sent(n);
                r.received(seq, n).unwrap();
                queue.push_back(n);
            }
            // The reader writes only every third turn: it is the slow one.
            if i % 3 == 0
                && let Some(n) = queue.pop_front()
                && let Some(Frame::Ack { bytes, frames }) = r.written(n)
            {
                s.acked(bytes, frames).unwrap();
            }
            assert!(queue.iter().sum::<usize>() as u64 <= FWD_WINDOW_BYTES);
        }
    }

    #[test]
    fn frames_round_trip_and_refuse_oversized_chunks() {
        let data = Frame::Data { seq: 3, data: Chunk(Bytes::from_static(b"GET / HTTP/1.0\r\n")), fin: false };
        for frame in
            [data, Frame::Ack { bytes: 1, frames: 1 }, Frame::Close { reason: "x".into() }, Frame::Keepalive]
        {
            let p = FwdPacket { stream: "qd.v1.fwd.alice.c1".into(), frame };
            let bytes = encode(&Envelope::new("t", &p)).unwrap();
            assert_eq!(decode::<FwdPacket>(&bytes).unwrap().body, p);
        }
        let big = Frame::Data { seq: 0, data: Chunk(Bytes::from(vec![0u8; FWD_CHUNK_MAX + 1])), fin: false };
        let bytes = encode(&Envelope::new("t", FwdPacket { stream: "s".into(), frame: big })).unwrap();
        let err = decode::<FwdPacket>(&bytes).unwrap_err().to_string();
        assert!(err.contains("at most 32768 bytes"), "{err}");
        let bad = br#"{"v":2,"id":"1","ts":1,"source":"t","body":{"stream":"s","frame":{"type":"data","seq":0,"data":"@@"}}}"#;
        assert!(decode::<FwdPacket>(bad).unwrap_err().to_string().contains("data chunk"));
    }
}
