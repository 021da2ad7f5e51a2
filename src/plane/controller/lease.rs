//! Only one controller is active at a time. The active one holds a lease in a JetStream KV
//! bucket and renews it; a second one waits, and takes over once the lease has expired.
//! Every write is compare-and-set on the key's revision, so two controllers can never both
//! believe they hold it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::LeaseHold;
use super::store::StoreError;
use crate::bus::NatsBus;
use crate::protocol::clock::now_ms;

const BUCKET: &str = "qd_leader";
const KEY: &str = "controller";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseValue {
    holder: String,
    expires_at: u64,
    /// Unique to one term of one process: a renewal of ours that the server applied after
    /// we gave up on it (a paused or restarted server replays it) is told apart from
    /// another controller's write, even one with the same holder id.
    #[serde(default)]
    term: String,
}

pub struct Lease {
    kv: async_nats::jetstream::kv::Store,
    holder: String,
    term: String,
    ttl: Duration,
    revision: u64,
    /// Nobody else can take the lease before this: the last write's start plus the TTL.
    held_until: Instant,
}

impl Lease {
    /// Waits until this controller holds the lease. The same holder id (a restarted
    /// controller) takes its own lease back at once; another waits for it to expire. The
    /// bucket keeps `replicas` copies on a cluster.
    pub async fn acquire(
        bus: &NatsBus,
        holder: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Lease, StoreError> {
        let js = bus.jetstream();
        let kv = match js.get_key_value(BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(async_nats::jetstream::kv::Config {
                    bucket: BUCKET.into(),
                    history: 1,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| StoreError(format!("lease bucket: {e}")))?,
        };
        crate::bus::replicas::ensure(&js, &format!("KV_{BUCKET}"), replicas).await.map_err(StoreError)?;
        let mut lease = Lease {
            kv,
            holder: holder.to_string(),
            term: crate::protocol::envelope::new_id(),
            ttl,
            revision: 0,
            held_until: Instant::now(),
        };
        let mut waiting_logged = false;
        loop {
            match lease.try_take().await {
                Ok(true) => {
                    log::info!("controller {holder} holds the lease");
                    return Ok(lease);
                }
                Ok(false) => {
                    if !waiting_logged {
                        log::info!("standby: another controller holds the lease; waiting for it to expire");
                        waiting_logged = true;
                    }
                }
                Err(e) => log::warn!("lease: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn value(&self) -> Bytes {
        let v = LeaseValue {
            holder: self.holder.clone(),
            expires_at: now_ms() + self.ttl.as_millis() as u64,
            term: self.term.clone(),
        };
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
    }

    async fn try_take(&mut self) -> Result<bool, StoreError> {
        let started = Instant::now();
        let entry = self.kv.entry(KEY).await.map_err(|e| StoreError(format!("lease read: {e}")))?;
        let current = entry
            .as_ref()
            .filter(|e| !e.value.is_empty())
            .and_then(|e| serde_json::from_slice::<LeaseValue>(&e.value).ok());
        let result = match (&entry, current) {
            (None, _) => self.kv.create(KEY, self.value()).await.map_err(|e| e.to_string()),
            (Some(_), Some(held)) if held.holder != self.holder && held.expires_at > now_ms() => {
                return Ok(false);
            }
            (Some(e), _) => self.kv.update(KEY, self.value(), e.revision).await.map_err(|e| e.to_string()),
        };
        match result {
            Ok(rev) => {
                self.revision = rev;
                self.held_until = started + self.ttl;
                Ok(true)
            }
            // Someone else wrote first: not ours this time.
            Err(_) => Ok(false),
        }
    }

    /// Renews the lease every third of its TTL, telling `hold` how long the controller may
    /// act. A renewal that fails (the bus is down) fences the leader: it must stop acting,
    /// since the lease may expire before the bus returns (and a renewal that merely comes
    /// late fences it too, by time). Renewal is then retried quickly; when it succeeds on
    /// the same key revision, nobody else wrote the lease meanwhile, so nobody else led and
    /// the in-memory state is still the truth: it leads on. Returns only when another
    /// controller wrote the lease: the caller must stop leading, and reload the state from
    /// the store before it leads again.
    pub async fn keep(mut self, hold: impl Fn(LeaseHold)) -> String {
        let period = self.ttl / 3;
        // Quick retries while fenced: the bus returning must end the fence within a second.
        let retry = period.min(Duration::from_millis(500));
        let mut fenced = false;
        hold(LeaseHold::Until(self.held_until));
        loop {
            tokio::time::sleep(if fenced { retry } else { period }).await;
            let started = Instant::now();
            // Bounded: a request on a dead connection must not outlive the lease.
            let renewed =
                tokio::time::timeout(period, self.kv.update(KEY, self.value(), self.revision)).await;
            let failure = match renewed {
                Ok(Ok(rev)) => {
                    self.revision = rev;
                    self.held_until = started + self.ttl;
                    hold(LeaseHold::Until(self.held_until));
                    if fenced {
                        log::info!("lease renewed: {} leads again", self.holder);
                        fenced = false;
                    }
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {period:?}"),
            };
            if !fenced {
                log::warn!(
                    "lease renewal failed: {failure}; fenced: no commands, no judgements until it is renewed"
                );
                fenced = true;
                hold(LeaseHold::Fenced);
            }
            match tokio::time::timeout(period, self.kv.entry(KEY)).await {
                Ok(Ok(Some(entry))) if entry.revision != self.revision => {
                    let held = serde_json::from_slice::<LeaseValue>(&entry.value).ok();
                    if held.as_ref().is_some_and(|h| h.term == self.term) {
                        // Our own renewal, applied late: nobody else wrote in between.
                        // Still fenced until a renewal on this revision succeeds.
                        log::info!("lease: a late renewal of ours was applied (revision {})", entry.revision);
                        self.revision = entry.revision;
                        continue;
                    }
                    return match held {
                        Some(h) if h.holder != self.holder && h.expires_at > now_ms() => {
                            format!("another controller ({}) holds the lease", h.holder)
                        }
                        _ => "the lease was written by another controller while this one was fenced".into(),
                    };
                }
                Ok(Ok(None)) => return "the lease key was removed".into(),
                // The bus is still down, or the key is as we left it: try again.
                _ => {}
            }
        }
    }
}
