//! Replies already given, by command id: the controller and the agents answer a repeated
//! command from here, so the same id never starts a second operation or container.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct ReplyCache {
    replies: HashMap<String, Vec<u8>>,
    order: VecDeque<String>,
    capacity: usize,
    /// The bytes of the kept replies and ids, and the most it may be: a count alone does
    /// not bound memory when replies quote what they were sent.
    bytes: usize,
    max_bytes: usize,
}

/// The bytes a cache keeps at most unless told otherwise.
pub const MAX_BYTES: usize = 16 << 20;

impl ReplyCache {
    pub fn new(capacity: usize) -> Self {
        ReplyCache::with_budget(capacity, MAX_BYTES)
    }

    pub fn with_budget(capacity: usize, max_bytes: usize) -> Self {
        ReplyCache { replies: HashMap::new(), order: VecDeque::new(), capacity, bytes: 0, max_bytes }
    }

    pub fn get(&self, command_id: &str) -> Option<Vec<u8>> {
        self.replies.get(command_id).cloned()
    }

    /// Remembers an answer; the oldest are forgotten past the capacity or the byte budget
    /// (the newest is always kept, so a repeat of the last command is answered).
    pub fn insert(&mut self, command_id: &str, reply: Vec<u8>) {
        let size = reply.len();
        match self.replies.insert(command_id.to_string(), reply) {
            Some(old) => self.bytes = self.bytes - old.len() + size,
            None => {
                self.bytes += size + command_id.len();
                self.order.push_back(command_id.to_string());
            }
        }
        while self.order.len() > self.capacity.max(1) || (self.bytes > self.max_bytes && self.order.len() > 1)
        {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(reply) = self.replies.remove(&old) {
                self.bytes -= reply.len() + old.len();
            }
        }
    }

    /// The bytes of replies and ids kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_answers() {
        let mut c = ReplyCache::new(2);
        c.insert("a", b"1".to_vec());
        c.insert("a", b"2".to_vec());
        c.insert("b", b"3".to_vec());
        c.insert("c", b"4".to_vec());
        assert_eq!(c.get("a"), None);
        assert_eq!(c.get("b"), Some(b"3".to_vec()));
        assert_eq!(c.get("c"), Some(b"4".to_vec()));
        assert_eq!(c.bytes(), 4, "two ids and two replies of one byte each");
    }

    #[test]
    fn forgets_the_oldest_past_its_byte_budget() {
        let mut c = ReplyCache::with_budget(1_000, 100);
        for i in 0..50 {
            c.insert(&format!("id{i:02}"), vec![b'x'; 20]);
            assert!(c.bytes() <= 100, "{} bytes after {i}", c.bytes());
        }
        assert_eq!(c.get("id49"), Some(vec![b'x'; 20]));
        assert_eq!(c.get("id00"), None);
        // One reply larger than the budget is still kept, alone.
        c.insert("big", vec![b'y'; 500]);
        assert_eq!(c.get("big").map(|r| r.len()), Some(500));
        assert_eq!(c.get("id49"), None);
        assert_eq!(c.bytes(), 503);
    }
}
