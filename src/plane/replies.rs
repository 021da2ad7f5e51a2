//! Replies already given, by command id: the controller and the agents answer a repeated
//! command from here, so the same id never starts a second operation or container.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct ReplyCache {
    replies: HashMap<String, Vec<u8>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl ReplyCache {
    pub fn new(capacity: usize) -> Self {
        ReplyCache { replies: HashMap::new(), order: VecDeque::new(), capacity }
    }

    pub fn get(&self, command_id: &str) -> Option<Vec<u8>> {
        self.replies.get(command_id).cloned()
    }

    /// Remembers an answer; the oldest is forgotten past the capacity.
    pub fn insert(&mut self, command_id: &str, reply: Vec<u8>) {
        if self.replies.insert(command_id.to_string(), reply).is_none() {
            self.order.push_back(command_id.to_string());
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.replies.remove(&old);
                }
            }
        }
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
    }
}
