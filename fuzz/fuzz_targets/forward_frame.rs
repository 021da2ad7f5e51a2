//! Port-forward, the part chosen by the first byte: the `open` an agent decodes on
//! `qd.v1.agent.<host>.fwd.<user>.open` and the frames both sides decode
//! (`plane/agent/forward.rs`, `client/tunnel.rs`), with their checks; and the credit
//! window (`SendWindow`, `RecvWindow`) driven by the input, with an honest sender and with
//! a hostile peer.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use quarterdeck::protocol::forward::{
    FWD_CHUNK_MAX, FWD_WINDOW_BYTES, FWD_WINDOW_FRAMES, Frame, FwdOpen, FwdPacket, FwdVerb, RecvWindow,
    SendWindow, check_port,
};
use quarterdeck::protocol::subjects::SessionKind;
use quarterdeck::protocol::{decode, validate};
use quarterdeck_fuzz::{envelope_round_trip, round_trip, session_stream_checks, split};

/// The input read as numbers, zeros once it runs out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| (n << 8) | u64::from(self.byte()))
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the receiver holds unwritten never exceeds the window.
fn bounded(queue: &VecDeque<usize>) {
    assert!(queue.iter().sum::<usize>() as u64 <= FWD_WINDOW_BYTES, "more than a window of bytes held");
    assert!(queue.len() as u64 <= FWD_WINDOW_FRAMES, "more than a window of frames held");
}

/// A sender that keeps to its room is never refused, its acks are always taken, what is
/// held stays within the window, and once everything is written and acked the sender has
/// room again (no deadlock), whatever the chunk sizes, write order and ack delays.
fn honest(mut s: Script) {
    let (mut send, mut recv) = (SendWindow::default(), RecvWindow::default());
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut acks: VecDeque<(u64, u64)> = VecDeque::new();
    let mut steps = 0;
    while !s.done() && steps < 4096 {
        steps += 1;
        match s.byte() % 5 {
            0 | 1 => {
                let room = send.room();
                assert!(room <= FWD_CHUNK_MAX, "room {room}");
                // A read fills at most the room; 0 bytes is the fin frame.
                let n = usize::from(s.u16()) % (FWD_CHUNK_MAX + 1);
                if room == 0 {
                    continue;
                }
                let n = n.min(room);
                let seq = send.sent(n);
                if let Err(why) = recv.received(seq, n) {
                    panic!("a sender within its room was refused: {why}");
                }
                queue.push_back(n);
                bounded(&queue);
            }
            2 => {
                if let Some(n) = queue.pop_front()
                    && let Some(Frame::Ack { bytes, frames }) = recv.written(n)
                {
                    acks.push_back((bytes, frames));
                }
            }
            3 => {
                if let Some((bytes, frames)) = acks.pop_front() {
                    send.acked(bytes, frames).expect("the receiver's ack is taken");
                }
            }
            _ => {
                // The bus may deliver a later ack first; the older one then changes nothing.
                if let Some((bytes, frames)) = acks.pop_back() {
                    send.acked(bytes, frames).expect("a reordered ack is taken");
                }
            }
        }
        assert_eq!(send.total(), recv.total(), "bytes sent and received differ");
    }
    while let Some(n) = queue.pop_front() {
        if let Some(Frame::Ack { bytes, frames }) = recv.written(n) {
            acks.push_back((bytes, frames));
        }
    }
    while let Some((bytes, frames)) = acks.pop_front() {
        send.acked(bytes, frames).expect("the receiver's ack is taken");
    }
    assert!(send.room() > 0, "everything written and acked, and still no room: a deadlock");
}

/// A hostile peer: data frames of any number and size (a decoded chunk holds at most
/// FWD_CHUNK_MAX), acks of any numbers. What the window lets through stays within it,
/// and an ack it takes never claims more than was sent.
fn hostile(mut s: Script) {
    let (mut send, mut recv) = (SendWindow::default(), RecvWindow::default());
    let mut queue: VecDeque<usize> = VecDeque::new();
    let (mut sent_bytes, mut sent_frames) = (0u64, 0u64);
    let mut due = 0u64;
    let mut steps = 0;
    while !s.done() && steps < 4096 {
        steps += 1;
        match s.byte() % 4 {
            0 => {
                // The peer picks the sequence number: mostly the due one, sometimes any.
                let seq = match s.byte() {
                    0 => s.u64(),
                    _ => due,
                };
                let len = usize::from(s.u16()) % (FWD_CHUNK_MAX + 1);
                if recv.received(seq, len).is_ok() {
                    assert_eq!(seq, due, "a frame out of order was taken");
                    due += 1;
                    queue.push_back(len);
                    bounded(&queue);
                }
            }
            1 => {
                if let Some(n) = queue.pop_front() {
                    let _ = recv.written(n);
                }
            }
            2 => {
                let n = send.room().min(usize::from(s.u16()));
                if n > 0 {
                    send.sent(n);
                    sent_bytes += n as u64;
                    sent_frames += 1;
                }
            }
            _ => {
                let (bytes, frames) = (s.u64() % (sent_bytes + 2), s.u64() % (sent_frames + 2));
                let taken = send.acked(bytes, frames).is_ok();
                assert_eq!(taken, bytes <= sent_bytes && frames <= sent_frames, "ack {bytes}/{frames}");
                assert!(send.room() <= FWD_CHUNK_MAX);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, payload)) = split(data) else { return };
    match selector % 4 {
        0 => {
            let Ok(env) = decode::<FwdOpen>(payload) else { return };
            envelope_round_trip(&env);
            round_trip(&env.body);
            let open = &env.body;
            // The agent's checks before it connects anywhere.
            if session_stream_checks(SessionKind::Forward, &open.stream)
                && validate::instance_id(&open.instance).is_ok()
            {
                assert!(check_port(&open.instance, open.port, open.port).is_ok());
                if let Err(why) = check_port(&open.instance, open.port.wrapping_add(1), open.port) {
                    assert!(why.contains(&open.port.to_string()), "{why}");
                }
            }
        }
        1 => {
            // Either side: a frame of the tunnel's stream, of the verb it came on.
            let Ok(env) = decode::<FwdPacket>(payload) else { return };
            envelope_round_trip(&env);
            round_trip(&env.body);
            let packet = env.body;
            let verb = packet.frame.verb();
            assert_eq!(FwdVerb::parse(verb.as_str()), Some(verb));
            session_stream_checks(SessionKind::Forward, &packet.stream);
            if let Frame::Data { data, .. } = &packet.frame {
                assert!(data.0.len() <= FWD_CHUNK_MAX, "a chunk of {} bytes decoded", data.0.len());
            }
        }
        2 => honest(Script(payload)),
        _ => hostile(Script(payload)),
    }
});
